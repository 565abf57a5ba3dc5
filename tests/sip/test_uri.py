"""URIs: parsing, escaping, wire form and RFC 3261 section 19.1.4 equivalence."""

from __future__ import annotations

import pytest

from rtcgw.sip import AbsoluteUri, LocalProtocolError, SipParseError, SipUri, TelUri, parse_uri


def sip(text: str) -> SipUri:
    uri = parse_uri(text)
    assert isinstance(uri, SipUri)
    return uri


# -- SIP URIs ---------------------------------------------------------------------------


def test_parts_of_a_full_sip_uri() -> None:
    uri = sip("sips:alice:secret@Atlanta.Example.com:5061;transport=TCP;lr;maddr=239.255.255.1")
    assert uri.scheme == "sips"
    assert uri.user == "alice"
    assert uri.password == "secret"
    assert uri.host == "Atlanta.Example.com"  # kept as written
    assert uri.port == 5061
    assert uri.params == (("transport", "TCP"), ("lr", None), ("maddr", "239.255.255.1"))
    assert uri.transport == "tcp"
    assert uri.lr
    assert uri.maddr == "239.255.255.1"
    assert uri.host_port == "Atlanta.Example.com:5061"


def test_uri_without_user_or_port() -> None:
    uri = sip("sip:proxy.example.com")
    assert (uri.user, uri.password, uri.port, uri.params) == (None, None, None, ())
    assert uri.host_port == "proxy.example.com"
    assert not uri.lr
    assert uri.transport is None


def test_scheme_is_case_insensitive() -> None:
    assert sip("SIP:bob@example.com").scheme == "sip"


def test_empty_password_is_kept() -> None:
    uri = sip("sip:bob:@example.com")
    assert uri.password == ""
    assert str(uri) == "sip:bob:@example.com"


@pytest.mark.parametrize(
    ("text", "host", "port"),
    [
        ("sip:[2001:db8::10]", "[2001:db8::10]", None),
        ("sip:alice@[2001:db8::10]:5070;transport=ws", "[2001:db8::10]", 5070),
        ("sip:[::ffff:192.0.2.1]:5060", "[::ffff:192.0.2.1]", 5060),
        ("sip:[::1]", "[::1]", None),
    ],
)
def test_ipv6_references(text: str, host: str, port: int | None) -> None:
    uri = sip(text)
    assert (uri.host, uri.port) == (host, port)
    assert str(uri) == text


def test_user_param_and_phone_numbers() -> None:
    uri = sip("sip:+12125551212@gateway.example.com;user=Phone")
    assert uri.user == "+12125551212"
    assert uri.user_param == "phone"


def test_params_keep_order_and_flags() -> None:
    uri = sip("sip:h.example.com;b=2;a;c=")
    assert uri.params == (("b", "2"), ("a", None), ("c", ""))
    assert uri.param("A") is None and uri.has_param("A")
    assert uri.param("c") == ""
    assert str(uri) == "sip:h.example.com;b=2;a;c="


def test_with_and_without_param() -> None:
    uri = sip("sip:h.example.com;transport=udp;lr")
    assert str(uri.with_param("Transport", "tcp")) == "sip:h.example.com;transport=tcp;lr"
    assert str(uri.with_param("ob")) == "sip:h.example.com;transport=udp;lr;ob"
    assert str(uri.without_param("LR")) == "sip:h.example.com;transport=udp"
    assert uri.params == (("transport", "udp"), ("lr", None))  # unchanged: immutable


def test_headers() -> None:
    uri = sip("sip:alice@atlanta.com?subject=project%20x&priority=urgent")
    assert uri.headers == (("subject", "project x"), ("priority", "urgent"))
    assert str(uri) == "sip:alice@atlanta.com?subject=project%20x&priority=urgent"


def test_header_without_value_is_tolerated() -> None:
    assert sip("sip:a@b.example?x").headers == (("x", ""),)


# -- escaping ---------------------------------------------------------------------------


def test_escapes_are_decoded_and_reencoded_only_where_needed() -> None:
    # RFC 4475 section 3.1.1.3
    uri = sip("sip:sips%3Auser%40example.com@example.net")
    assert uri.user == "sips:user@example.com"
    assert str(uri) == "sip:sips%3Auser%40example.com@example.net"
    assert str(sip("sip:%75se%72@example.com")) == "sip:user@example.com"


def test_escaped_parameters_are_not_unescaped_twice() -> None:
    # RFC 4475 3.1.1.3: "the "name" uri-parameter has a value of "value%41", which is NOT
    # equivalent to "valueA"."
    uri = sip("sip:cal%6Cer@host5.example.net;%6C%72;n%61me=v%61lue%25%34%31")
    assert uri.user == "caller"
    assert uri.params == (("lr", None), ("name", "value%41"))
    assert uri.lr
    assert str(uri) == "sip:caller@host5.example.net;lr;name=value%2541"


def test_user_part_may_hold_semicolons_and_escaped_at() -> None:
    # RFC 4475 section 3.1.1.9
    uri = sip("sip:user;par=u%40example.net@example.com")
    assert uri.user == "user;par=u@example.net"
    assert uri.host == "example.com"
    assert uri.params == ()
    assert str(uri) == "sip:user;par=u%40example.net@example.com"


def test_escaped_null_is_kept() -> None:
    # RFC 4475 section 3.1.1.4: do not shorten the user at the NUL.
    assert sip("sip:null-%00-null@example.com").user == "null-\x00-null"
    assert sip("sip:%00%00@h.example.com").user == "\x00\x00"


def test_characters_outside_the_grammar_are_escaped_on_output() -> None:
    uri = SipUri(user="a b@c:d", password="p@ss word", host="h.example.com")
    assert str(uri) == "sip:a%20b%40c%3Ad:p%40ss%20word@h.example.com"
    assert parse_uri(str(uri)) == uri


def test_utf8_and_non_utf8_escapes_round_trip() -> None:
    assert sip("sip:j%C3%B6rg@example.com").user == "jörg"
    uri = sip("sip:%FF%FE@example.com")  # not UTF-8: kept as surrogate escapes
    assert str(uri) == "sip:%FF%FE@example.com"


def test_liberal_user_characters_are_accepted_and_normalised() -> None:
    # "#" is not allowed unescaped by RFC 3261, but PBX dial strings carry it.
    uri = sip("sip:*31#123@pbx.example.com")
    assert uri.user == "*31#123"
    assert str(uri) == "sip:*31%23123@pbx.example.com"


def test_param_and_header_reserved_characters_are_escaped() -> None:
    uri = SipUri(host="h", params=(("a;b", "c=d"),), headers=(("x&y", "p=q&r"),))
    assert str(uri) == "sip:h;a%3Bb=c%3Dd?x%26y=p%3Dq%26r"
    assert parse_uri(str(uri)) == uri


# -- tel and other schemes --------------------------------------------------------------


def test_tel_uri() -> None:
    uri = parse_uri("tel:+1-201-555-0123;ext=1234;isub")
    assert uri == TelUri("+1-201-555-0123", (("ext", "1234"), ("isub", None)))
    assert isinstance(uri, TelUri)
    assert uri.global_number
    assert uri.param("EXT") == "1234"
    assert str(uri) == "tel:+1-201-555-0123;ext=1234;isub"


def test_local_tel_uri() -> None:
    uri = parse_uri("TEL:7042;phone-context=example.com")
    assert isinstance(uri, TelUri)
    assert not uri.global_number
    assert str(uri) == "tel:7042;phone-context=example.com"


@pytest.mark.parametrize(
    "text",
    [
        "soap.beep://192.0.2.103:3002",
        "urn:service:sos",
        "http://www.example.com",
        "isbn:2983792873",
    ],
)
def test_other_schemes_are_opaque(text: str) -> None:
    uri = parse_uri(text)
    assert isinstance(uri, AbsoluteUri)
    assert str(uri) == text


# -- errors -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "",
        "sip",
        "sip:",
        ":foo",
        "<sip:user@example.com>",
        " sip:user@example.com",
        "sip:user@example.com ",
        "sip:user@exa mple.com",
        "sip:@example.com",
        "sip:user@",
        "sip:user@host:",
        "sip:user@host:65536",
        "sip:user@host:5x",
        "sip:user@host:123456",
        "sip:user@ho%73t",
        "sip:us%2@host",
        "sip:us%zzer@host",
        "sip:user%@host",
        "sip:h;;lr",
        "sip:h;=x",
        "sip:h?=x",
        "sip:[::1",
        "sip:[::1]x",
        "sip:[::1]:",
        "sip:[zz::1]",
        "sip:[]",
        "sip:[1:2:3:4:5:6:7:8:9]",
        "sip:jörg@example.com",
        'sip:a"b@example.com',
        "tel:",
        "tel:+",
        "tel:12a3x",
        "tel:123;=x",
        "tel:123;x=",
        "1sip:foo",
        "s_p:foo",
        "http:",
        "http:foo bar",
    ],
)
def test_bad_uris_raise_sip_parse_error(text: str) -> None:
    with pytest.raises(SipParseError) as info:
        parse_uri(text, where="Contact")
    assert info.value.where == "Contact"


def test_error_names_the_uri() -> None:
    with pytest.raises(SipParseError, match=r"bad port '99999' in 'sip:h:99999'"):
        parse_uri("sip:h:99999")


@pytest.mark.parametrize(
    "kwargs",
    [{"host": ""}, {"host": "h", "scheme": "tel"}, {"host": "h", "port": 70000}],
)
def test_impossible_values_built_in_code_are_local_errors(kwargs: dict[str, object]) -> None:
    with pytest.raises(LocalProtocolError):
        SipUri(**kwargs)  # type: ignore[arg-type]


# -- RFC 3261 section 19.1.4 equivalence ------------------------------------------------


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("sip:%61lice@atlanta.com;transport=TCP", "sip:alice@AtLanTa.CoM;Transport=tcp"),
        ("sip:carol@chicago.com", "sip:carol@chicago.com;newparam=5"),
        ("sip:carol@chicago.com", "sip:carol@chicago.com;security=on"),
        ("sip:carol@chicago.com;newparam=5", "sip:carol@chicago.com;security=on"),
        (
            "sip:biloxi.com;transport=tcp;method=REGISTER?to=sip:bob%40biloxi.com",
            "sip:biloxi.com;method=REGISTER;transport=tcp?to=sip:bob%40biloxi.com",
        ),
        (
            "sip:alice@atlanta.com?subject=project%20x&priority=urgent",
            "sip:alice@atlanta.com?priority=urgent&subject=project%20x",
        ),
        ("sip:a@[2001:db8::1]", "sip:a@[2001:DB8:0::1]"),
    ],
)
def test_equivalent_uris(a: str, b: str) -> None:
    assert sip(a).equivalent(sip(b))
    assert sip(b).equivalent(sip(a))


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("SIP:ALICE@AtLanTa.CoM;Transport=udp", "sip:alice@AtLanTa.CoM;Transport=UDP"),
        ("sip:bob@biloxi.com", "sip:bob@biloxi.com:5060"),
        ("sip:bob@biloxi.com", "sip:bob@biloxi.com;transport=udp"),
        ("sip:bob@biloxi.com", "sip:bob@biloxi.com:6000;transport=tcp"),
        ("sip:carol@chicago.com", "sip:carol@chicago.com?Subject=next%20meeting"),
        ("sip:bob@phone21.boxesbybob.com", "sip:bob@192.0.2.4"),
        ("sip:bob@biloxi.com", "sips:bob@biloxi.com"),
        ("sip:bob@biloxi.com;newparam=5", "sip:bob@biloxi.com;newparam=6"),
        ("sip:bob@biloxi.com;lr", "sip:bob@biloxi.com;lr=on"),
        ("sip:bob:pw@biloxi.com", "sip:bob@biloxi.com"),
    ],
)
def test_not_equivalent_uris(a: str, b: str) -> None:
    assert not sip(a).equivalent(sip(b))
    assert not sip(b).equivalent(sip(a))


def test_equivalence_is_not_equality() -> None:
    a, b = sip("sip:alice@atlanta.com"), sip("sip:alice@ATLANTA.com")
    assert a.equivalent(b)
    assert a != b
    assert not a.equivalent(parse_uri("tel:+123"))
