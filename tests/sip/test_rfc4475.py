"""RFC 4475 section 3.1: the SIP torture messages, valid (3.1.1) and invalid (3.1.2).

Every valid message must parse, and parse again to an equivalent message after
serialisation. Every invalid message must raise ``SipParseError`` with the answer the RFC
recommends, except the two that a robust element accepts on purpose; those have their
own tests below, citing the RFC section that allows it.
"""

from __future__ import annotations

import contextlib
import hashlib
from pathlib import Path

import pytest

from rtcgw.sip import (
    CSeq,
    KeepAlivePing,
    Message,
    Request,
    Response,
    SipParseError,
    SipUri,
    StreamFramer,
    TelUri,
    parse_message,
    parse_uri,
)

CORPUS = Path(__file__).resolve().parent.parent / "corpus" / "sip" / "rfc4475"

#: RFC 4475 section 3.1.1: name -> section.
VALID = {
    "wsinv": "3.1.1.1",
    "intmeth": "3.1.1.2",
    "esc01": "3.1.1.3",
    "escnull": "3.1.1.4",
    "esc02": "3.1.1.5",
    "lwsdisp": "3.1.1.6",
    "longreq": "3.1.1.7",
    "dblreq": "3.1.1.8",
    "semiuri": "3.1.1.9",
    "transports": "3.1.1.10",
    "mpart01": "3.1.1.11",
    "unreason": "3.1.1.12",
    "noreason": "3.1.1.13",
}

#: RFC 4475 section 3.1.2 messages we reject: name -> (section, where, status_hint).
REJECTED = {
    "badinv01": ("3.1.2.1", "Via", 400),  # "should respond with a 400 Bad Request"
    "clerr": ("3.1.2.2", "Content-Length", 400),  # over UDP: "should respond with a 400"
    "ncl": ("3.1.2.3", "Content-Length", 400),  # "should respond with an error"
    "scalar02": ("3.1.2.4", "CSeq", 400),  # "400 Bad Request due to the CSeq error"
    "scalarlg": ("3.1.2.5", "CSeq", 400),  # a response: "will simply discard it"
    "quotbal": ("3.1.2.6", "To", 400),  # "should return a 400 Bad Request error"
    "ltgtruri": ("3.1.2.7", "Request-URI", 400),  # "reasonable always to reject ... 400"
    "lwsruri": ("3.1.2.8", "request line", 400),  # "should respond with a 400"
    "lwsstart": ("3.1.2.9", "request line", 400),  # "acceptable to reject ... as malformed"
    "trws": ("3.1.2.10", "request line", 400),  # "acceptable to reject ... as malformed"
    "escruri": ("3.1.2.11", "Request-URI", 400),  # "acceptable ... to reject ... with a 400"
    "badaspec": ("3.1.2.14", "To", 400),  # "reasonable to reject ... with a 400"
    "baddn": ("3.1.2.15", "From", 400),  # "reasonable always to reject ... with a 400"
    "badvers": ("3.1.2.16", "request line", 505),  # "should respond ... with a 505"
    "mismatch01": ("3.1.2.17", "CSeq", 400),  # "will respond with a 400 Bad Request"
    "mismatch02": ("3.1.2.18", "CSeq", 501),  # "should respond with a 501 Not Implemented"
    "bigcode": ("3.1.2.19", "status line", 400),  # a response: "should simply drop it"
}

#: RFC 4475 section 3.1.2 messages a robust element accepts: see the tests below.
ACCEPTED = {"baddate": "3.1.2.12", "regbadct": "3.1.2.13"}

ALL = {**VALID, **{k: v[0] for k, v in REJECTED.items()}, **ACCEPTED}


def load(name: str) -> bytes:
    return (CORPUS / f"{name}.dat").read_bytes()


def parse(name: str) -> Message:
    return parse_message(load(name))


def request(name: str) -> Request:
    message = parse(name)
    assert isinstance(message, Request)
    return message


def assert_equivalent(a: Message, b: Message) -> None:
    """Same kind, start line, header lines (names and values) and body."""
    assert type(a) is type(b)
    if isinstance(a, Request):
        assert isinstance(b, Request)
        assert (a.method, str(a.uri)) == (b.method, str(b.uri))
    else:
        assert isinstance(b, Response)
        assert (a.status, a.reason) == (b.status, b.reason)
    assert a.version == b.version
    assert a.headers == b.headers
    assert a.body == b.body


def ids(names: object) -> list[str]:
    return [f"{name}.dat" for name in names]  # type: ignore[attr-defined]


# -- the corpus itself ------------------------------------------------------------------


def test_corpus_holds_every_section_3_1_message_unaltered() -> None:
    files = {p.stem for p in CORPUS.glob("*.dat")}
    assert files == set(ALL)
    assert len(VALID) == 13 and len(REJECTED) + len(ACCEPTED) == 19
    sums: dict[str, str] = {}
    for line in (CORPUS / "SHA256SUMS").read_text().splitlines():
        digest, filename = line.split()
        sums[filename] = digest
    for name in ALL:
        digest = hashlib.sha256(load(name)).hexdigest()
        assert sums[f"{name}.dat"] == digest, f"{name}.dat changed (line ends rewritten?)"


# -- 3.1.1: valid messages --------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(VALID), ids=ids(sorted(VALID)))
def test_valid_message_parses_and_round_trips(name: str) -> None:
    message = parse(name)
    assert_equivalent(parse_message(bytes(message)), message)
    # The typed views of every interpreted header work on it.
    assert message.vias
    assert isinstance(message.cseq, CSeq)
    assert message.from_.uri and message.to.uri and message.call_id
    _ = (message.contacts, message.routes, message.record_routes)
    _ = (message.max_forwards, message.content_length)


@pytest.mark.parametrize("name", sorted(VALID), ids=ids(sorted(VALID)))
def test_valid_message_through_a_stream(name: str) -> None:
    # Each valid message carries Content-Length, so it can also arrive over TCP.
    data = load(name)
    framer = StreamFramer()
    for i in range(len(data)):
        framer.feed(data[i : i + 1])
        event = framer.next_event()
        if event is not None:
            assert not isinstance(event, KeepAlivePing)
            assert_equivalent(parse_message(event), parse(name))
            return
    pytest.fail("the framer never produced the message")


def test_wsinv() -> None:
    m = request("wsinv")
    assert m.method == "INVITE"
    assert m.uri == SipUri(
        user="vivekg", host="chair-dnrc.example.com", params=(("unknownparam", None),)
    )
    assert m.to.tag == "1918181833n"
    assert m.from_.display_name == 'J Rosenberg \\"'
    assert m.from_tag == "98asjd8"
    assert m.max_forwards == 68
    assert m.cseq == CSeq(9, "INVITE")
    assert [(v.transport, v.host, v.branch) for v in m.vias] == [
        ("UDP", "192.0.2.2", "390skdjuw"),
        ("TCP", "spindle.example.com", "z9hG4bK9ikj8"),
        ("UDP", "192.168.255.111", "z9hG4bK30239"),
    ]
    assert m.get("Subject") == ""
    assert m.get("NewFangledHeader") == "newfangled value continued newfangled value"
    assert m.get("UnknownHeaderWithUnusualValue") == ";;,,;;,;"
    (contact,) = m.contacts
    assert contact.display_name == 'Quoted string ""'
    assert contact.params == (("newparam", "newvalue"), ("secondparam", None), ("q", "0.33"))
    (route,) = m.routes
    assert route.sip_uri is not None and route.sip_uri.lr
    assert route.sip_uri.param("unknownwith") == "value"
    assert len(m.body) == 150


def test_intmeth() -> None:
    m = request("intmeth")
    assert m.method == "!interesting-Method0123456789_*+`.%indeed'~"
    assert m.cseq == CSeq(139122385, m.method)
    assert isinstance(m.uri, SipUri)
    assert m.uri.user == "1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*"
    assert m.uri.password == "&it+has=1,weird!*pas$wo~d_too.(doesn't-it)"
    assert m.top_via.branch == "z9hG4bK-.!%66*_+`'~"
    assert m.to.display_name == "BEL:\x07 NUL:\x00 DEL:\x7f"
    assert m.from_.display_name == "token1~` token2'+_ token3*%!.-"
    assert m.from_.param("fromParam''~+*_!.-%") == '"работающий"'
    assert m.from_tag == "_token~1'+`*%!-."
    assert m.call_id == "intmeth.word%ZK-!.*_+'@word`~)(><:\\/\"][?}{"
    assert m.get("extensionHeader-!.%*+_`'~") == "\ufeff大停電"
    assert m.max_forwards == 255


def test_esc01() -> None:
    m = request("esc01")
    assert isinstance(m.uri, SipUri)
    assert m.uri.user == "sips:user@example.com"
    assert m.to.uri == parse_uri("sip:user@example.com")
    assert m.from_.sip_uri is not None and m.from_.sip_uri.user == "I have spaces"
    (contact,) = m.contacts
    assert contact.sip_uri is not None
    assert contact.sip_uri.user == "caller"
    # "the "name" uri-parameter has a value of "value%41", which is NOT equivalent to "valueA""
    assert contact.sip_uri.params == (("lr", None), ("name", "value%41"))


def test_escnull() -> None:
    m = request("escnull")
    assert m.to.sip_uri is not None and m.to.sip_uri.user == "null-\x00-null"
    # "This request registers two distinct contact URIs."
    users = [c.sip_uri.user for c in m.contacts if c.sip_uri is not None]
    assert users == ["\x00", "\x00\x00"]


def test_esc02() -> None:
    m = request("esc02")
    # "The request method is unknown. It is NOT equivalent to REGISTER."
    assert m.method == "RE%47IST%45R"
    assert m.to.display_name == "%Z%45"
    # "This message has two Contact header field values, not three."
    assert [str(c.uri) for c in m.contacts] == [
        "sip:alias1@host1.example.com",
        "sip:alias3@host3.example.com",
    ]
    assert m.get("C%6Fntact") == "<sip:alias2@host2.example.com>"
    assert m.top_via.branch == "z9hG4bK209%fzsnel234"


def test_lwsdisp() -> None:
    assert request("lwsdisp").from_.display_name == "caller"


def test_longreq() -> None:
    m = request("longreq")
    assert len(m.vias) == 34
    assert [v.host for v in m.vias[:33]] == [f"sip{i}.example.com" for i in range(33, 0, -1)]
    assert m.vias[-1].received == "192.0.2.5"
    assert m.to.sip_uri is not None and m.to.sip_uri.port == 6000
    assert m.to.display_name is not None and m.to.display_name.startswith("I have a user name")
    assert m.from_tag is not None and len(m.from_tag) > 150
    assert len(m.body) == 150


def test_dblreq() -> None:
    # "per section 18.3 of [RFC3261] they are just spurious noise that must be ignored."
    m = request("dblreq")
    assert m.method == "REGISTER"
    assert m.body == b""
    assert b"INVITE" not in bytes(m)


def test_semiuri() -> None:
    m = request("semiuri")
    # "The Request-URI will parse so that the user part is "user;par=u@example.net"."
    assert m.uri == SipUri(user="user;par=u@example.net", host="example.com")
    assert m.values("Accept") == [
        "application/sdp",
        "application/pkcs7-mime",
        "multipart/mixed",
        "multipart/signed",
        "message/sip",
        "message/sipfrag",
    ]


def test_transports() -> None:
    vias = request("transports").vias
    assert [v.transport for v in vias] == ["UDP", "SCTP", "TLS", "UNKNOWN", "TCP"]


def test_mpart01() -> None:
    m = request("mpart01")
    assert len(m.body) == m.content_length == 553
    assert b"\x00" in m.body  # "contains null (0x00) characters"
    assert m.body.endswith(b"--7a9cbec02ceef655--\r\n")
    assert m.top_via.has_rport and m.top_via.port == 5070


def test_unreason() -> None:
    m = parse("unreason")
    assert isinstance(m, Response)
    assert m.status == 200
    assert m.reason == "= 2**3 * 5**2 но сто девяносто девять - простое"


def test_noreason() -> None:
    m = parse("noreason")
    assert isinstance(m, Response)
    assert (m.status, m.reason) == (100, "")
    assert bytes(m).startswith(b"SIP/2.0 100 \r\n")


# -- 3.1.2: invalid messages ------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(REJECTED), ids=ids(sorted(REJECTED)))
def test_invalid_message_is_rejected(name: str) -> None:
    _section, where, status_hint = REJECTED[name]
    with pytest.raises(SipParseError) as info:
        parse(name)
    assert info.value.where == where
    assert info.value.status_hint == status_hint


def test_baddate_is_accepted() -> None:
    # RFC 4475 section 3.1.2.12: an element "shouldn't [reject] unless the contents of the
    # Date header field were actually important to its processing"; rtcgw never interprets
    # Date, so the message parses and the header is kept as it came.
    m = request("baddate")
    assert m.get("Date") == "Fri, 01 Jan 2010 16:00:00 EST"
    assert_equivalent(parse_message(bytes(m)), m)


def test_regbadct_parses_but_its_contact_does_not() -> None:
    # RFC 4475 section 3.1.2.13: "reasonable ... to respond with a 400 Bad Request". The
    # message layer checks only what every element relies on, so the REGISTER parses (a
    # proxy could forward it); the registrar reads Contact through the typed view, which
    # raises SipParseError: a URI with headers must be in "<>" (RFC 3261 section 20.10).
    m = request("regbadct")
    with pytest.raises(SipParseError) as info:
        _ = m.contacts
    assert "must be enclosed" in info.value.reason


def test_clerr_over_a_stream_waits_for_more_data() -> None:
    # RFC 4475 section 3.1.2.2: over TCP, "there's not much the receiving party could do but
    # wait for more data on the stream".
    framer = StreamFramer()
    framer.feed(load("clerr"))
    assert framer.next_event() is None


def test_ncl_over_a_stream_is_a_framing_error() -> None:
    # RFC 4475 section 3.1.2.3: over TCP "the framing error is not recoverable, and the
    # connection should be closed".
    framer = StreamFramer()
    framer.feed(load("ncl"))
    with pytest.raises(SipParseError):
        framer.next_event()


@pytest.mark.parametrize("name", sorted(ALL), ids=ids(sorted(ALL)))
def test_every_message_fed_to_a_stream_raises_nothing_but_sip_parse_error(name: str) -> None:
    framer = StreamFramer()
    data = load(name)
    with contextlib.suppress(SipParseError):
        for i in range(len(data)):
            framer.feed(data[i : i + 1])
            while (event := framer.next_event()) is not None:
                if isinstance(event, bytes):
                    with contextlib.suppress(SipParseError):
                        parse_message(event)


def test_request_uris_of_the_corpus_survive_their_string_form() -> None:
    for name in VALID:
        m = parse(name)
        if isinstance(m, Request):
            assert parse_uri(str(m.uri)) == m.uri
            assert not isinstance(m.uri, TelUri)
