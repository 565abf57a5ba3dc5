"""parse_message: framing of one message, start lines, eager checks, message accessors."""

from __future__ import annotations

import pytest

from rtcgw.sip import (
    CSeq,
    Header,
    NameAddr,
    Request,
    Response,
    SipParseError,
    SipUri,
    Via,
    make_response,
    parse_message,
    parse_uri,
)

CRLF = "\r\n"

INVITE_LINES = [
    "INVITE sip:bob@biloxi.example.com SIP/2.0",
    "Via: SIP/2.0/WSS df7jal23ls0d.invalid;branch=z9hG4bKnashds7;rport",
    "Via: SIP/2.0/UDP bigbox3.site3.atlanta.com;branch=z9hG4bK77ef4c2312983.1",
    "Max-Forwards: 70",
    "To: Bob <sip:bob@biloxi.example.com>",
    "From: Alice <sip:alice@atlanta.example.com>;tag=1928301774",
    "Call-ID: a84b4c76e66710@pc33.atlanta.example.com",
    "CSeq: 314159 INVITE",
    "Contact: <sip:alice@df7jal23ls0d.invalid;transport=ws;ob>",
    "Record-Route: <sip:p1.example.com;lr>, <sip:p2.example.com;lr>",
    "Timestamp: 54",
    "Content-Type: application/sdp",
]


def invite(body: str = "v=0\r\n", *, extra: tuple[str, ...] = (), length: bool = True) -> bytes:
    lines = [*INVITE_LINES, *extra]
    if length:
        lines.append(f"Content-Length: {len(body.encode())}")
    return (CRLF.join(lines) + CRLF + CRLF + body).encode()


def request(data: bytes) -> Request:
    message = parse_message(data)
    assert isinstance(message, Request)
    return message


def without(name: str) -> bytes:
    """The INVITE without any line of header ``name``."""
    lines = invite().split(b"\r\n")
    return b"\r\n".join(line for line in lines if not line.startswith(name.encode() + b":"))


# -- well-formed messages ---------------------------------------------------------------


def test_request_fields() -> None:
    m = request(invite())
    assert m.method == "INVITE"
    assert m.uri == SipUri(user="bob", host="biloxi.example.com")
    assert m.version == "SIP/2.0"
    assert m.body == b"v=0\r\n"
    assert m.headers[0] == Header("Via", INVITE_LINES[1][5:])
    assert m.call_id == "a84b4c76e66710@pc33.atlanta.example.com"
    assert m.cseq == CSeq(314159, "INVITE")
    assert m.from_tag == "1928301774"
    assert m.to_tag is None
    assert m.max_forwards == 70
    assert m.content_length == 5
    assert m.content_type == "application/sdp"
    assert [v.host for v in m.vias] == ["df7jal23ls0d.invalid", "bigbox3.site3.atlanta.com"]
    assert m.top_via.has_rport
    assert [str(r.uri) for r in m.record_routes] == [
        "sip:p1.example.com;lr",
        "sip:p2.example.com;lr",
    ]
    assert m.contacts[0].sip_uri is not None and m.contacts[0].sip_uri.transport == "ws"


def test_response_fields() -> None:
    data = (
        b"SIP/2.0 180 Ringing\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nTo: <sip:b@x>;tag=9\r\n"
        b"From: <sip:a@y>;tag=1\r\nCall-ID: c1\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n"
    )
    m = parse_message(data)
    assert isinstance(m, Response)
    assert (m.status, m.reason) == (180, "Ringing")
    assert m.provisional and not m.final
    assert m.to_tag == "9"
    assert bytes(m) == data


def test_serialisation_round_trip() -> None:
    m = request(invite())
    assert bytes(m) == invite()
    assert parse_message(bytes(m)) == m


def test_compact_forms_through_accessors() -> None:
    data = (
        b"OPTIONS sip:b@x SIP/2.0\r\n"
        b"v: SIP/2.0/UDP a;branch=z9hG4bK1, SIP/2.0/TCP b;branch=z9hG4bK2\r\n"
        b"VIA: SIP/2.0/UDP c;branch=z9hG4bK3\r\nt: <sip:b@x>\r\nf: <sip:a@y>;tag=1\r\ni: c1\r\n"
        b"CSeq: 1 OPTIONS\r\nm: <sip:a@h1>, <sip:a@h2>\r\nk: 100rel, timer\r\nl: 0\r\n\r\n"
    )
    m = request(data)
    assert m.get("v") == "SIP/2.0/UDP a;branch=z9hG4bK1, SIP/2.0/TCP b;branch=z9hG4bK2"
    assert m.get("Via") == m.get("v")
    assert m.values("Via") == [
        "SIP/2.0/UDP a;branch=z9hG4bK1",
        "SIP/2.0/TCP b;branch=z9hG4bK2",
        "SIP/2.0/UDP c;branch=z9hG4bK3",
    ]
    assert [h.name for h in m.header_lines("via")] == ["v", "VIA"]
    assert m.call_id == "c1"
    assert len(m.contacts) == 2
    assert m.option_tags("Supported") == {"100rel", "timer"}
    assert m.content_length == 0
    assert m.headers[0].display == "Via"


def test_header_folding_and_whitespace() -> None:
    data = (
        b"OPTIONS sip:b@x SIP/2.0\r\nVia  : SIP  /   2.0\r\n /UDP\r\n    h;branch=z9hG4bK1\r\n"
        b"To:\r\n\t<sip:b@x>\r\nFrom: <sip:a@y>\r\n  ;tag=1\r\nCall-ID:   c1   \r\n"
        b"CSeq: 0009\r\n  OPTIONS\r\nSubject:\r\nX-Long: one\r\n two  \r\n\tthree\r\n\r\n"
    )
    m = request(data)
    assert m.get("Via") == "SIP  /   2.0 /UDP h;branch=z9hG4bK1"
    assert m.headers[0].name == "Via"
    assert m.top_via.transport == "UDP"
    assert m.get("To") == "<sip:b@x>"
    assert m.from_tag == "1"
    assert m.call_id == "c1"
    assert m.cseq == CSeq(9, "OPTIONS")
    assert m.get("Subject") == ""
    assert m.get("X-Long") == "one two three"


def test_bare_lf_and_leading_crlf_are_tolerated() -> None:
    head, _, body = invite("v=0\r\n").partition(b"\r\n\r\n")
    m = request(b"\r\n\r\n\n" + head.replace(b"\r\n", b"\n") + b"\n\n" + body)
    assert m.body == b"v=0\r\n"  # body bytes untouched
    assert m.cseq.method == "INVITE"
    assert m.get("Content-Type") == "application/sdp"


def test_missing_content_length_means_rest_of_datagram() -> None:
    m = request(invite("hello\r\nworld", length=False))
    assert m.body == b"hello\r\nworld"
    assert m.content_length is None


def test_shorter_content_length_truncates() -> None:
    # RFC 3261 section 18.3: extra octets past Content-Length in a datagram are discarded.
    data = invite("abc") + b"garbage after the body"
    assert request(data).body == b"abc"


def test_repeated_equal_content_length_is_accepted() -> None:
    assert request(invite("ab", extra=("Content-Length: 0002",))).body == b"ab"


def test_body_bytes_are_never_decoded() -> None:
    body = bytes(range(256))
    data = invite(length=False, body="").rstrip(b"") + body
    m = request(data)
    assert m.body == body


def test_utf8_in_headers_and_reason() -> None:
    data = (
        'SIP/2.0 200 Окей\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nTo: "Jörg" <sip:b@x>;tag=9\r\n'
        "From: <sip:a@y>;tag=1\r\nCall-ID: c1\r\nCSeq: 1 INVITE\r\nX-Note: 大停電\r\n\r\n"
    ).encode()
    m = parse_message(data)
    assert isinstance(m, Response)
    assert m.reason == "Окей"
    assert m.to.display_name == "Jörg"
    assert m.get("x-note") == "大停電"


@pytest.mark.parametrize(
    ("start", "status", "reason"),
    [("SIP/2.0 100 ", 100, ""), ("SIP/2.0 100", 100, ""), ("sip/2.0 699 Odd  ", 699, "Odd  ")],
)
def test_status_line_variants(start: str, status: int, reason: str) -> None:
    data = (
        f"{start}\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nTo: <sip:b@x>\r\n"
        "From: <sip:a@y>;tag=1\r\nCall-ID: c1\r\nCSeq: 1 INVITE\r\n\r\n"
    ).encode()
    m = parse_message(data)
    assert isinstance(m, Response)
    assert (m.status, m.reason, m.version) == (status, reason, "SIP/2.0")


def test_request_uri_of_other_schemes() -> None:
    data = invite().replace(b"INVITE sip:bob@biloxi.example.com", b"INVITE tel:+12015550123", 1)
    assert str(request(data).uri) == "tel:+12015550123"
    data = invite().replace(b"INVITE sip:bob@biloxi.example.com", b"INVITE urn:service:sos", 1)
    assert str(request(data).uri) == "urn:service:sos"


@pytest.mark.parametrize("method", ["ACK", "CANCEL"])
def test_ack_and_cancel_carry_their_own_method_in_cseq(method: str) -> None:
    data = invite().replace(b"INVITE sip:", method.encode() + b" sip:", 1)
    data = data.replace(b"CSeq: 314159 INVITE", b"CSeq: 314159 " + method.encode())
    assert request(data).cseq == CSeq(314159, method)


def test_unknown_headers_are_kept_as_they_are() -> None:
    m = request(invite(extra=("UnknownHeaderWithUnusualValue: ;;,,;;,;", "Date: not a date")))
    assert m.get("unknownheaderwithunusualvalue") == ";;,,;;,;"
    assert m.values("UnknownHeaderWithUnusualValue") == [";;,,;;,;"]
    assert m.get("Date") == "not a date"


# -- malformed messages -----------------------------------------------------------------


def _error(data: bytes) -> SipParseError:
    with pytest.raises(SipParseError) as info:
        parse_message(data)
    return info.value


@pytest.mark.parametrize(
    ("data", "where", "reason"),
    [
        (b"", "message", "no empty line"),
        (b"\r\n\r\n", "message", "no empty line"),
        (invite().split(b"\r\n\r\n")[0], "message", "no empty line"),
        (invite().replace(b"Max-Forwards: 70", b"Max-Forwards: 7\xff"), "message", "not UTF-8"),
        (
            invite().replace(b"Max-Forwards: 70\r\n", b"Max-Forwards: 70\r"),
            "line 4",
            "CR not followed",
        ),
        (invite().replace(b"Max-Forwards: 70", b"Max-Forwards 70"), "line 4", "without ':'"),
        (invite().replace(b"Max-Forwards: 70", b"Max Forwards: 70"), "line 4", "bad header name"),
        (invite().replace(b"Max-Forwards: 70", b": 70"), "line 4", "bad header name"),
        (invite().replace(b"SIP/2.0\r\nVia", b"SIP/2.0\r\n Via"), "line 2", "continuation"),
        (invite().replace(b"INVITE sip:", b"INVITE  sip:", 1), "request line", "expected"),
        (invite().replace(b"SIP/2.0\r\n", b"SIP/2.0 \r\n", 1), "request line", "expected"),
        (invite().replace(b"INVITE sip:", b"INV@TE sip:", 1), "request line", "not a token"),
        (invite().replace(b"SIP/2.0\r\n", b"HTTP/1.1\r\n", 1), "request line", "not a SIP version"),
        (invite().replace(b"INVITE sip:bob", b"INVITE <sip:bob", 1), "Request-URI", "no scheme"),
        (
            invite().replace(b"sip:bob@biloxi.example.com SIP", b"sip:bob@b?Route=x SIP", 1),
            "Request-URI",
            "headers are not allowed",
        ),
        (without("Via"), "Via", "missing"),
        (without("To"), "To", "missing"),
        (without("From"), "From", "missing"),
        (without("Call-ID"), "Call-ID", "missing"),
        (without("CSeq"), "CSeq", "missing"),
        (invite(extra=("From: <sip:x@y>;tag=2",)), "From", "appears 2 times"),
        (invite(extra=("t: <sip:x@y>",)), "To", "appears 2 times"),
        (invite(extra=("i: other",)), "Call-ID", "appears 2 times"),
        (invite(extra=("CSeq: 314159 INVITE",)), "CSeq", "appears 2 times"),
        (invite("ab", extra=("l: 3",)), "Content-Length", "two different values"),
        (invite(extra=("Via: SIP/2.0/UDP h;;",)), "Via", "empty parameter name"),
        (invite().replace(b"CSeq: 314159 INVITE", b"CSeq: 314159 BYE"), "CSeq", "does not match"),
        (invite().replace(b"CSeq: 314159", b"CSeq: 2147483648"), "CSeq", "2**31-1"),
        (invite().replace(b"To: Bob", b'To: "Bob'), "To", "unterminated"),
        (invite().replace(b"From: Alice", b"From: Al,ice"), "From", "display name"),
        (invite().replace(b"Call-ID: a84b", b"Call-ID: a8 4b"), "Call-ID", "not a Call-ID"),
        (invite().replace(b"Max-Forwards: 70", b"Max-Forwards: 256"), "Max-Forwards", "0..255"),
        (invite().replace(b"Max-Forwards: 70", b"Max-Forwards: -1"), "Max-Forwards", "0..255"),
        (invite().replace(b"Content-Length: 5", b"Content-Length: 6"), "Content-Length", "only 5"),
        (invite().replace(b"Content-Length: 5", b"Content-Length: 5a"), "Content-Length", "number"),
        (invite().replace(b"Content-Length: 5", b"l: " + b"9" * 5000), "Content-Length", "number"),
    ],
)
def test_malformed_messages(data: bytes, where: str, reason: str) -> None:
    error = _error(data)
    assert error.where == where
    assert reason in error.reason
    assert error.status_hint == 400
    assert str(error).startswith(f"{where}: ")


def test_cseq_mismatch_message_names_both_methods() -> None:
    data = invite().replace(b"INVITE sip:", b"OPTIONS sip:", 1)
    assert str(_error(data)) == "CSeq: method 'INVITE' does not match request method 'OPTIONS'"


def test_unknown_method_with_mismatching_cseq_hints_501() -> None:
    data = invite().replace(b"INVITE sip:", b"NEWMETHOD sip:", 1)
    assert _error(data).status_hint == 501


@pytest.mark.parametrize("version", [b"SIP/3.0", b"SIP/1.0", b"SIP/2.00"])
def test_other_sip_versions_hint_505(version: bytes) -> None:
    error = _error(invite().replace(b"SIP/2.0\r\n", version + b"\r\n", 1))
    assert error.status_hint == 505


@pytest.mark.parametrize(
    "code", [b"099", b"700", b"1000", b"20", b"2x0", b"", b"\xd9\xa1\xd9\xa2\xd9\xa3"]
)
def test_bad_status_codes(code: bytes) -> None:
    data = b"SIP/2.0 " + code + b" X\r\nVia: SIP/2.0/UDP h\r\nTo: <sip:b@x>\r\nFrom: <sip:a@y>\r\n"
    data += b"Call-ID: c\r\nCSeq: 1 INVITE\r\n\r\n"
    assert _error(data).where == "status line"


# -- make_response (rtcgw/sip/message.py) -----------------------------------------------


def test_make_response_copies_the_dialog_headers_and_adds_a_to_tag() -> None:
    req = request(invite())
    resp = make_response(req, 180, to_tag="a6c85cf")
    assert (resp.status, resp.reason) == (180, "Ringing")
    assert [h.name for h in resp.headers] == [
        "Via",
        "Via",
        "To",
        "From",
        "Call-ID",
        "CSeq",
        "Record-Route",
        "Content-Length",
    ]
    assert resp.values("Via") == req.values("Via")
    assert resp.to_tag == "a6c85cf"
    assert resp.to.display_name == "Bob"
    assert resp.from_ == req.from_
    assert (resp.call_id, resp.cseq) == (req.call_id, req.cseq)
    assert resp.content_length == 0
    assert parse_message(bytes(resp)) == resp


def test_make_response_100_has_no_tag_but_copies_timestamp() -> None:
    resp = make_response(request(invite()), 100, to_tag="ignored")
    assert resp.to_tag is None
    assert resp.get("Timestamp") == "54"
    assert not resp.has("Record-Route")


def test_make_response_keeps_an_existing_to_tag_and_carries_a_body() -> None:
    req = request(
        invite().replace(b"To: Bob <sip:bob@biloxi.example.com>", b"To: <sip:b@x>;tag=old")
    )
    resp = make_response(req, 200, to_tag="new", body=b"v=0\r\n", content_type="application/sdp")
    assert resp.to_tag == "old"
    assert resp.body == b"v=0\r\n"
    assert resp.content_type == "application/sdp"
    assert resp.content_length == 5


def test_built_messages_serialise_and_parse_back() -> None:
    req = Request(
        "OPTIONS",
        parse_uri("sip:b@x;transport=tcp"),
        (
            Header("Via", str(Via.new("TCP", "h", 5060, "z9hG4bKz"))),
            Header("To", str(NameAddr(None, parse_uri("sip:b@x")))),
            Header("From", str(NameAddr("A", parse_uri("sip:a@y")).with_tag("t"))),
            Header("Call-ID", "x@y"),
            Header("CSeq", str(CSeq(1, "OPTIONS"))),
            Header("Max-Forwards", "70"),
        ),
    ).with_body(b"")
    assert parse_message(bytes(req)) == req


def test_number_accessors_accept_leading_zeros_and_only_ascii_digits() -> None:
    # RFC 4475 section 3.1.1.1 sends "Max-Forwards: 0068"; "²".isdigit() is True in Python.
    m = request(invite().replace(b"Max-Forwards: 70", b"Max-Forwards: 0068"))
    assert m.max_forwards == 68
    for bad in ("²", "1" * 5000, "256"):
        with pytest.raises(SipParseError):
            _ = m.with_header_replaced("Max-Forwards", bad).max_forwards
    with pytest.raises(SipParseError):
        _ = m.with_header_replaced("Content-Length", "¹").content_length
