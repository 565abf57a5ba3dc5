"""Hypothesis properties of the SIP message layer.

1. Round trip: a generated request or response, serialised, parses back equal.
2. Normal forms: whatever text a value parser accepts, its ``str()`` parses back equal.
3. The h11 fuzz invariant: random bytes and mutated corpus messages make
   ``parse_message`` and ``StreamFramer`` (fed whole and byte by byte) either succeed or
   raise ``SipParseError`` -- never anything else.
"""

from __future__ import annotations

import contextlib
import string
from dataclasses import replace
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rtcgw.sip import (
    CSeq,
    Header,
    NameAddr,
    Request,
    Response,
    SipParseError,
    SipUri,
    StreamFramer,
    TelUri,
    Uri,
    Via,
    parse_message,
    parse_uri,
)
from rtcgw.sip.headers import TOKEN_CHARS

CORPUS = sorted((Path(__file__).resolve().parent.parent / "corpus" / "sip").rglob("*.dat"))
FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# -- building blocks --------------------------------------------------------------------

tokens = st.text(alphabet="".join(sorted(TOKEN_CHARS)), min_size=1, max_size=12)
#: Any text that UTF-8 can carry (no lone surrogates), control characters included.
any_text = st.text(alphabet=st.characters(codec="utf-8"), max_size=12)
hostnames = st.from_regex(
    r"[a-z0-9]([a-z0-9-]{0,8}[a-z0-9])?(\.[a-z0-9]{1,6}){0,3}", fullmatch=True
)
hosts = st.one_of(
    hostnames,
    st.ip_addresses(v=4).map(str),
    st.ip_addresses(v=6).map(lambda a: f"[{a}]"),
)
ports = st.none() | st.integers(0, 65535)


@st.composite
def sip_uris(draw: st.DrawFn) -> SipUri:
    user = draw(st.none() | any_text.filter(bool))
    return SipUri(
        scheme=draw(st.sampled_from(["sip", "sips"])),
        user=user,
        password=None if user is None else draw(st.none() | any_text),
        host=draw(hosts),
        port=draw(ports),
        params=tuple(
            draw(st.lists(st.tuples(any_text.filter(bool), st.none() | any_text), max_size=4))
        ),
        headers=tuple(draw(st.lists(st.tuples(any_text.filter(bool), any_text), max_size=3))),
    )


tel_uris = st.builds(
    TelUri,
    number=st.from_regex(r"\+?[0-9][0-9.()-]{0,10}", fullmatch=True),
    params=st.lists(
        st.tuples(
            st.from_regex(r"[a-z][a-z0-9-]{0,8}", fullmatch=True),
            st.none() | st.from_regex(r"[A-Za-z0-9.+-]{1,8}", fullmatch=True),
        ),
        max_size=3,
    ).map(tuple),
)
uris: st.SearchStrategy[Uri] = st.one_of(sip_uris(), tel_uris)
params = st.lists(st.tuples(tokens, st.none() | tokens), max_size=3).map(tuple)
display_names = st.none() | st.text(
    alphabet=st.characters(codec="utf-8", exclude_characters="\r\n"), max_size=12
)
name_addrs = st.builds(NameAddr, display_name=display_names, uri=uris, params=params)
#: Via parameters whose values the core reads; Via refuses bad ones (see test_headers).
VIA_CHECKED = {"branch", "ttl", "rport", "received", "maddr"}
vias = st.builds(
    Via,
    transport=st.sampled_from(["UDP", "TCP", "TLS", "WS", "WSS", "SCTP"]),
    host=hosts,
    port=ports,
    params=st.tuples(
        st.tuples(st.just("branch"), tokens.map(lambda t: "z9hG4bK" + t)),
        st.sampled_from([(), (("rport", None),), (("rport", "5060"), ("received", "192.0.2.1"))]),
        params.map(lambda ps: tuple(p for p in ps if p[0].lower() not in VIA_CHECKED)),
    ).map(lambda t: (t[0], *t[1], *t[2])),
)
#: A header value as stored: no CR or LF, no white space at either end.
header_values = st.text(
    alphabet=st.characters(codec="utf-8", exclude_characters="\r\n"), max_size=30
).map(lambda s: s.strip(" \t"))
call_ids = st.text(alphabet=string.ascii_letters + string.digits + "-.!%*_+`'~@:/", min_size=1)


@st.composite
def common_headers(draw: st.DrawFn, method: str) -> list[Header]:
    lines = [
        Header(draw(st.sampled_from(["Via", "v", "VIA"])), str(via))
        for via in draw(st.lists(vias, min_size=1, max_size=3))
    ]
    lines += [
        Header(draw(st.sampled_from(["To", "t"])), str(draw(name_addrs))),
        Header(draw(st.sampled_from(["From", "f"])), str(draw(name_addrs))),
        Header(draw(st.sampled_from(["Call-ID", "i"])), draw(call_ids)),
        Header("CSeq", str(CSeq(draw(st.integers(0, 2**31 - 1)), method))),
        Header("Max-Forwards", str(draw(st.integers(0, 255)))),
    ]
    lines += [
        Header("X-" + name, value)
        for name, value in draw(st.lists(st.tuples(tokens, header_values), max_size=4))
    ]
    return draw(st.permutations(lines))


@st.composite
def requests(draw: st.DrawFn) -> Request:
    method = draw(tokens)
    uri = draw(uris)
    if isinstance(uri, SipUri):
        uri = replace(uri, headers=())  # RFC 3261 19.1.1: no headers in a Request-URI
    message = Request(method, uri, tuple(draw(common_headers(method))))
    body = draw(st.binary(max_size=60))
    return message.with_body(body) if draw(st.booleans()) else message


@st.composite
def responses(draw: st.DrawFn) -> Response:
    reason = draw(header_values)
    message = Response(
        draw(st.integers(100, 699)), reason, tuple(draw(common_headers(draw(tokens))))
    )
    return message.with_body(draw(st.binary(max_size=60)))


# -- 1. round trips ---------------------------------------------------------------------


@FAST
@given(st.one_of(requests(), responses()))
def test_generated_messages_round_trip(message: Request | Response) -> None:
    assert parse_message(bytes(message)) == message


@FAST
@given(uris)
def test_generated_uris_round_trip(uri: Uri) -> None:
    assert parse_uri(str(uri)) == uri


@FAST
@given(name_addrs)
def test_generated_name_addrs_round_trip(addr: NameAddr) -> None:
    assert NameAddr.parse(str(addr)) == addr


@FAST
@given(vias)
def test_generated_vias_round_trip(via: Via) -> None:
    assert Via.parse(str(via)) == via


# -- 2. normal forms of whatever the parsers accept --------------------------------------

#: The characters that matter to SIP's grammar, to reach deep into the parsers.
SIPISH = [*"sip:tel@;=?&%<>\",/ \t[]().-_+*!~'#\\aAzZ0159", "é", "\x00"]
sipish = st.text(alphabet=st.sampled_from(SIPISH), max_size=40)


@st.composite
def perturbed(draw: st.DrawFn, values: st.SearchStrategy[object]) -> str:
    """The text of a valid value with up to three characters inserted, deleted or replaced,
    so that many inputs are still accepted but in forms a serialiser never writes."""
    text = str(draw(values))
    for _ in range(draw(st.integers(0, 3))):
        at = draw(st.integers(0, len(text)))
        char = draw(st.sampled_from(SIPISH))
        text = draw(st.sampled_from([text[:at] + char + text[at:], text[:at] + text[at + 1 :],
                                     text[:at] + char + text[at + 1 :]]))  # fmt: skip
    return text


@FAST
@given(st.one_of(sipish, perturbed(uris)))
def test_uri_parser_accepts_only_what_it_can_write_back(text: str) -> None:
    try:
        uri = parse_uri(text)
    except SipParseError:
        return
    assert parse_uri(str(uri)) == uri


@FAST
@given(st.one_of(sipish, perturbed(name_addrs)))
def test_name_addr_parser_accepts_only_what_it_can_write_back(text: str) -> None:
    try:
        addr = NameAddr.parse(text)
    except SipParseError:
        return
    assert NameAddr.parse(str(addr)) == addr


@FAST
@given(st.one_of(sipish, perturbed(vias)))
def test_via_parser_accepts_only_what_it_can_write_back(text: str) -> None:
    try:
        via = Via.parse(text)
    except SipParseError:
        return
    assert Via.parse(str(via)) == via


@FAST
@given(perturbed(st.builds(CSeq, st.integers(0, 2**31 - 1), tokens)))
def test_cseq_parser_accepts_only_what_it_can_write_back(text: str) -> None:
    try:
        cseq = CSeq.parse(text)
    except SipParseError:
        return
    assert CSeq.parse(str(cseq)) == cseq


# -- 3. fuzz invariant: SipParseError or success, nothing else ---------------------------


def feed_everywhere(data: bytes) -> None:
    """Parse as a datagram and frame as a stream (whole, then byte by byte)."""
    with contextlib.suppress(SipParseError):
        parse_message(data)
    for chunks in ([data], [data[i : i + 1] for i in range(len(data))]):
        framer = StreamFramer(max_message_bytes=4096)
        with contextlib.suppress(SipParseError):
            for chunk in chunks:
                framer.feed(chunk)
                while (event := framer.next_event()) is not None:
                    if isinstance(event, bytes):
                        with contextlib.suppress(SipParseError):
                            parse_message(event)


@FAST
@given(st.binary(max_size=300))
def test_random_bytes(data: bytes) -> None:
    feed_everywhere(data)


@st.composite
def mutated_corpus(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(CORPUS)).read_bytes())
    for _ in range(draw(st.integers(1, 6))):
        if not data:
            break
        at = draw(st.integers(0, len(data) - 1))
        kind = draw(st.sampled_from(["flip", "delete", "insert", "duplicate", "truncate"]))
        if kind == "flip":
            data[at] = draw(st.integers(0, 255))
        elif kind == "delete":
            del data[at : at + draw(st.integers(1, 8))]
        elif kind == "insert":
            chunk = draw(st.sampled_from([b"\r\n", b" ", b"\t", b":", b";", b",", b"<", b">", b'"',
                                          b"\\", b"%", b"@", b"\x00", b"\xff", b"\r", b"\n\n", b"=",
                                          b"9" * 30, b"\r\n ", b"\r\n\r\n"]))  # fmt: skip
            data[at:at] = chunk
        elif kind == "duplicate":
            end = min(len(data), at + draw(st.integers(1, 80)))
            data[at:at] = data[at:end]
        else:
            del data[at:]
    return bytes(data)


@FAST
@given(mutated_corpus())
def test_mutated_corpus_messages(data: bytes) -> None:
    feed_everywhere(data)


#: Header lines of known and unknown names with values made of SIP's delimiters.
header_names = st.sampled_from(
    ["Via", "v", "To", "t", "From", "f", "Call-ID", "i", "CSeq", "Max-Forwards",
     "Content-Length", "l", "Contact", "Route", "X-Y", "Bad Name", ""]
)  # fmt: skip
sip_lines = st.tuples(header_names, sipish).map(lambda nv: f"{nv[0]}:{nv[1]}")


@FAST
@given(
    st.sampled_from(["INVITE sip:a@b SIP/2.0", "SIP/2.0 200 OK", "ACK sip:x SIP/2.0", "x y z"]),
    st.lists(sip_lines, max_size=12),
    st.binary(max_size=20),
)
def test_sip_shaped_garbage(start: str, lines: list[str], body: bytes) -> None:
    data = ("\r\n".join([start, *lines]) + "\r\n\r\n").encode() + body
    feed_everywhere(data)
