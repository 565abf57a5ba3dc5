"""Typed header values: comma lists, Via, CSeq, name-addr."""

from __future__ import annotations

import pytest

from rtcgw.sip import (
    MAGIC_COOKIE,
    CSeq,
    LocalProtocolError,
    NameAddr,
    SipParseError,
    SipUri,
    TelUri,
    Transport,
    Via,
    is_list_header,
    parse_uri,
    split_header_values,
)

# -- comma lists ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("a, b,c", ["a", "b", "c"]),
        ("  a  ,, ,b ,", ["a", "b"]),
        ("", []),
        ('"Doe, John" <sip:j@x>, <sip:k@y>', ['"Doe, John" <sip:j@x>', "<sip:k@y>"]),
        (r'"a \", b" <sip:a@x>, c', [r'"a \", b" <sip:a@x>', "c"]),
        (r'"a \\", b', [r'"a \\"', "b"]),
        ("<sip:a@x;p=1,2>, <sip:b@y>", ["<sip:a@x;p=1,2>", "<sip:b@y>"]),
        ("SIP/2.0/UDP a;branch=1 ,\tSIP/2.0/TCP b", ["SIP/2.0/UDP a;branch=1", "SIP/2.0/TCP b"]),
        ("x>, y", ["x>", "y"]),
    ],
)
def test_split_header_values(value: str, expected: list[str]) -> None:
    assert split_header_values(value, where="Contact") == expected


@pytest.mark.parametrize("value", ['"unterminated, x', "<sip:a@b, c", r'"a\"'])
def test_split_rejects_unterminated_quote_or_bracket(value: str) -> None:
    with pytest.raises(SipParseError) as info:
        split_header_values(value, where="Route")
    assert info.value.where == "Route"


@pytest.mark.parametrize(
    "key", ["via", "route", "record-route", "contact", "supported", "allow", "p-asserted-identity"]
)
def test_list_headers(key: str) -> None:
    assert is_list_header(key)


@pytest.mark.parametrize(
    "key",
    [
        "authorization",
        "www-authenticate",
        "proxy-authenticate",
        "proxy-authorization",
        "date",
        "call-id",
        "cseq",
        "from",
        "to",
        "subject",
        "user-agent",
        "server",
        "x-unknown-header",
    ],
)
def test_not_list_headers(key: str) -> None:
    assert not is_list_header(key)


# -- Via --------------------------------------------------------------------------------


def test_via_parts() -> None:
    via = Via.parse("SIP/2.0/udp pc33.atlanta.com:5066;branch=z9hG4bK776asdhds;rport;ttl=16")
    assert via.protocol == "SIP/2.0"
    assert via.transport == "UDP"
    assert (via.host, via.port) == ("pc33.atlanta.com", 5066)
    assert via.branch == "z9hG4bK776asdhds"
    assert via.has_rport and via.rport is None
    assert via.ttl == 16
    assert via.received is None and via.maddr is None
    assert via.sent_by == "pc33.atlanta.com:5066"
    assert str(via) == "SIP/2.0/UDP pc33.atlanta.com:5066;branch=z9hG4bK776asdhds;rport;ttl=16"


def test_via_received_and_rport_value() -> None:
    via = Via.parse(
        "SIP/2.0/WSS df7jal23ls0d.invalid;branch=z9hG4bKx;received=192.0.2.7;rport=51372"
    )
    assert via.transport == "WSS"
    assert via.received == "192.0.2.7"
    assert via.rport == 51372
    assert via.has_rport


def test_via_tolerates_lws_around_slash_colon_semicolon_and_equals() -> None:
    # RFC 4475 section 3.1.1.1
    via = Via.parse(
        "SIP  /   2.0  / TCP     spindle.example.com  :  5060 ;  branch  =  z9hG4bK9ikj8 "
    )
    assert (via.protocol, via.transport, via.host, via.port) == (
        "SIP/2.0",
        "TCP",
        "spindle.example.com",
        5060,
    )
    assert via.branch == "z9hG4bK9ikj8"
    assert str(via) == "SIP/2.0/TCP spindle.example.com:5060;branch=z9hG4bK9ikj8"


@pytest.mark.parametrize(
    ("value", "host", "port", "received"),
    [
        ("SIP/2.0/UDP [2001:db8::9:1]:5060;branch=z9hG4bKas3", "[2001:db8::9:1]", 5060, None),
        ("SIP/2.0/UDP [2001:db8::9:1];branch=z9hG4bKas3", "[2001:db8::9:1]", None, None),
        (
            "SIP/2.0/UDP [2001:db8::9:1];received=2001:db8::9:255;branch=z9hG4bKas3",
            "[2001:db8::9:1]",
            None,
            "2001:db8::9:255",
        ),
        (
            "SIP/2.0/UDP h;received=[2001:db8::9:255];branch=z9hG4bKas3",
            "h",
            None,
            "[2001:db8::9:255]",
        ),
    ],
)
def test_via_ipv6(value: str, host: str, port: int | None, received: str | None) -> None:
    # RFC 5118 sections 4.5 and 4.6 show both forms of received.
    via = Via.parse(value)
    assert (via.host, via.port, via.received) == (host, port, received)
    assert Via.parse(str(via)) == via


def test_via_unknown_transport_and_params_kept() -> None:
    via = Via.parse('SIP/2.0/SCTP t2.example.com;branch=z9hG4bKklasjdhf;x-foo="a b";flag')
    assert via.transport == "SCTP"
    assert via.params == (("branch", "z9hG4bKklasjdhf"), ("x-foo", '"a b"'), ("flag", None))


def test_via_new_and_with_param() -> None:
    via = Via.new(Transport.WSS, "df7jal23ls0d.invalid", None, MAGIC_COOKIE + "abc")
    assert str(via) == "SIP/2.0/WSS df7jal23ls0d.invalid;branch=z9hG4bKabc;rport"
    assert str(Via.new("tcp", "192.0.2.1", 5060, "z9hG4bKx")).startswith(
        "SIP/2.0/TCP 192.0.2.1:5060;"
    )
    stamped = via.with_param("received", "192.0.2.9").with_param("rport", "5062")
    assert str(stamped) == (
        "SIP/2.0/WSS df7jal23ls0d.invalid;branch=z9hG4bKabc;rport=5062;received=192.0.2.9"
    )
    assert stamped.rport == 5062
    assert stamped.without_param("RPORT").has_rport is False


@pytest.mark.parametrize(
    "value",
    [
        "",
        "SIP/2.0/UDP",
        "SIP/2.0/UDP ",
        "SIP/2.0 UDP host",
        "SIP//UDP host",
        "SIP/2.0/UDPhost",
        "SIP/2.0/UDP host:",
        "SIP/2.0/UDP host:99999",
        "SIP/2.0/UDP host junk",
        "SIP/2.0/UDP host;;",
        "SIP/2.0/UDP 192.0.2.15;;,;,,",
        "SIP/2.0/UDP host;branch",
        "SIP/2.0/UDP host;branch=",
        "SIP/2.0/UDP host;received",
        "SIP/2.0/UDP host;rport=abc",
        "SIP/2.0/UDP host;rport=70000",
        "SIP/2.0/UDP host;ttl=256",
        "SIP/2.0/UDP [::1;branch=z9hG4bK1",
        "SIP/2.0/UDP [::zz];branch=z9hG4bK1",
        'SIP/2.0/UDP host;x="unterminated',
    ],
)
def test_bad_via(value: str) -> None:
    with pytest.raises(SipParseError) as info:
        Via.parse(value)
    assert info.value.where == "Via"


def test_via_built_in_code_is_checked() -> None:
    with pytest.raises(LocalProtocolError):
        Via(transport="udp", host="h")
    with pytest.raises(LocalProtocolError):
        Via(host="")
    via = Via.new("UDP", "h", None, "z9hG4bK1")
    for name, value in (("ttl", "A"), ("rport", ""), ("rport", "65536"), ("branch", None)):
        with pytest.raises(LocalProtocolError):
            via.with_param(name, value)


# -- CSeq -------------------------------------------------------------------------------


def test_cseq() -> None:
    cseq = CSeq.parse("  0009 \t INVITE ")
    assert cseq == CSeq(9, "INVITE")
    assert str(cseq) == "9 INVITE"
    assert CSeq.parse("2147483647 X-Y").seq == 2**31 - 1
    assert CSeq.parse("0 ACK").seq == 0


@pytest.mark.parametrize(
    "value",
    ["", "INVITE", "1", "1 INVITE x", "-1 INVITE", "2147483648 INVITE", "1x INVITE", "1 INV/ITE",
     "36893488147419103232 REGISTER", "\u0661 INVITE", "1\x1cINVITE"],
)  # fmt: skip
def test_bad_cseq(value: str) -> None:
    with pytest.raises(SipParseError) as info:
        CSeq.parse(value)
    assert info.value.where == "CSeq"


def test_cseq_built_in_code_is_checked() -> None:
    with pytest.raises(LocalProtocolError):
        CSeq(2**31, "INVITE")
    with pytest.raises(LocalProtocolError):
        CSeq(1, "IN VITE")


# -- name-addr --------------------------------------------------------------------------


def test_quoted_display_name_with_escapes() -> None:
    # RFC 4475 section 3.1.1.1: the quoted-pairs \\ and \" inside the display name.
    addr = NameAddr.parse(r'"J Rosenberg \\\""       <sip:jdrosen@example.com> ; tag = 98asjd8')
    assert addr.display_name == 'J Rosenberg \\"'
    assert addr.uri == parse_uri("sip:jdrosen@example.com")
    assert addr.tag == "98asjd8"
    assert str(addr) == r'"J Rosenberg \\\"" <sip:jdrosen@example.com>;tag=98asjd8'
    assert NameAddr.parse(str(addr)) == addr


def test_token_display_name_and_no_space_before_bracket() -> None:
    addr = NameAddr.parse("token1~` token2'+_   token3*%!.- <sip:mundane@example.com>")
    assert addr.display_name == "token1~` token2'+_ token3*%!.-"
    # RFC 4475 section 3.1.1.6: no LWS between display name and "<".
    assert NameAddr.parse("caller<sip:caller@example.com>;tag=323").display_name == "caller"


def test_utf8_display_names() -> None:
    assert NameAddr.parse('"Jörg Müller" <sip:j@example.com>').display_name == "Jörg Müller"
    assert NameAddr.parse("Jörg <sip:j@example.com>").display_name == "Jörg"
    assert str(NameAddr(None, parse_uri("sip:j@x")).with_tag("1")) == "<sip:j@x>;tag=1"
    assert str(NameAddr("大停電", parse_uri("sip:j@x"))) == '"大停電" <sip:j@x>'


def test_control_characters_in_display_name_round_trip() -> None:
    # RFC 4475 section 3.1.1.2: quoted-pairs of BEL, NUL and DEL.
    addr = NameAddr.parse('"BEL:\\\x07 NUL:\\\x00 DEL:\\\x7f" <sip:x@example.com>')
    assert addr.display_name == "BEL:\x07 NUL:\x00 DEL:\x7f"
    assert NameAddr.parse(str(addr)) == addr


def test_empty_quoted_display_name() -> None:
    addr = NameAddr.parse('"" <sip:x@example.com>')
    assert addr.display_name == ""
    assert str(addr) == '"" <sip:x@example.com>'


def test_addr_spec_params_are_header_params() -> None:
    # RFC 3261 section 20.10: without <>, ";..." after the URI are header parameters.
    addr = NameAddr.parse("sip:b@example.com;tag=1;user=phone")
    assert addr.display_name is None
    assert addr.uri == SipUri(user="b", host="example.com")
    assert addr.params == (("tag", "1"), ("user", "phone"))
    assert not addr.bracketed
    assert str(addr) == "<sip:b@example.com>;tag=1;user=phone"


def test_bracketed_uri_params_stay_with_the_uri() -> None:
    addr = NameAddr.parse("<sip:b@example.com;user=phone>;tag=1")
    assert addr.uri == parse_uri("sip:b@example.com;user=phone")
    assert addr.params == (("tag", "1"),)
    assert addr.sip_uri is not None and addr.sip_uri.user_param == "phone"


def test_bare_addr_spec_stays_bare() -> None:
    addr = NameAddr.parse("  sip:b@example.com ")
    assert str(addr) == "sip:b@example.com"
    assert addr == NameAddr.parse("<sip:b@example.com>")  # bracketed is not compared


def test_quoted_param_values_are_kept_with_quotes() -> None:
    addr = NameAddr.parse(
        "<sip:alice@192.0.2.2;transport=ws;ob>;expires=600;"
        '+sip.instance="<urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6>";reg-id=1;q=0.5'
    )
    assert addr.param("+sip.instance") == '"<urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6>"'
    assert addr.param("EXPIRES") == "600"
    assert addr.param("q") == "0.5"
    assert NameAddr.parse(str(addr)) == addr


def test_with_tag_replaces_and_keeps_other_params() -> None:
    addr = NameAddr.parse("Bob <sip:bob@biloxi.com>;x=1;tag=a")
    assert str(addr.with_tag("b")) == '"Bob" <sip:bob@biloxi.com>;x=1;tag=b'
    assert addr.without_param("x").params == (("tag", "a"),)
    assert addr.has_param("X") and not addr.has_param("y")


def test_tel_and_other_uris_in_name_addr() -> None:
    assert isinstance(NameAddr.parse("<tel:+1-201-555-0123>").uri, TelUri)
    assert NameAddr.parse("<http://www.example.com>;tag=3234233").sip_uri is None
    assert NameAddr.parse("tel:+12015550123;tag=x").params == (("tag", "x"),)


@pytest.mark.parametrize(
    "value",
    [
        "",
        "*",
        '"Mr. J. User <sip:j.user@example.com>',  # RFC 4475 3.1.2.6
        "Bell, Alexander <sip:a.g.bell@example.com>;tag=43",  # RFC 4475 3.1.2.15
        '"Watson, Thomas" < sip:t.watson@example.org >',  # RFC 4475 3.1.2.14
        "sip:user@example.com?Route=%3Csip:sip.example.com%3E",  # RFC 4475 3.1.2.13
        '"Joe" <sip:joe@example.org>;;;;',  # RFC 4475 3.1.2.1
        "<sip:a@b",
        "<sip:a@b> junk",
        "<sip:a@b>;tag=",
        '"Joe" sip:joe@example.org',
        "<not a uri>",
        "Bob <sip:a@b>;=x",
        '<sip:a@b>;x="open',
    ],
)
def test_bad_name_addr(value: str) -> None:
    with pytest.raises(SipParseError) as info:
        NameAddr.parse(value, where="To")
    assert info.value.where == "To"


def test_display_name_with_line_break_is_refused_in_code() -> None:
    with pytest.raises(LocalProtocolError):
        NameAddr("a\r\nVia: evil", parse_uri("sip:a@b"))
