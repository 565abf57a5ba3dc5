"""RequestFacts from parsed requests: the R-URI parts and header names conditions see."""

from __future__ import annotations

from ipaddress import ip_address

import pytest

from rtcgw.rules import RequestFacts, ruri_parts
from rtcgw.sip import Header, Request, parse_uri


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("sip:alice@Example.COM", ("alice", "example.com")),
        ("sips:%61lice@example.com:5061;transport=tls", ("alice", "example.com")),
        ("sip:example.com", (None, "example.com")),
        ("sip:1000@[2001:DB8::1]", ("1000", "[2001:db8::1]")),
        ("tel:+1-201-555-0123;phone-context=example.com", ("+1-201-555-0123", None)),
        ("urn:service:sos", (None, None)),
    ],
)
def test_ruri_parts(uri: str, expected: tuple[str | None, str | None]) -> None:
    assert ruri_parts(parse_uri(uri)) == expected


def test_from_request_keeps_headers_in_order_with_long_lower_case_names() -> None:
    request = Request(
        method="INVITE",
        uri=parse_uri("sip:bob@example.com"),
        headers=(
            Header("f", "<sip:alice@example.com>;tag=1"),
            Header("User-Agent", "JsSIP 3.10"),
            Header("FROM", "ignored second line"),
        ),
    )
    facts = RequestFacts.from_request(
        request, interface="ws", source_address=ip_address("203.0.113.7"), source_port=5
    )
    assert (facts.method, facts.ruri_user, facts.ruri_host) == ("INVITE", "bob", "example.com")
    assert facts.headers[0] == ("from", "<sip:alice@example.com>;tag=1")
    assert facts.header_values("From") == ("<sip:alice@example.com>;tag=1", "ignored second line")
    assert facts.header_values("user-agent") == ("JsSIP 3.10",)
    assert facts.header_values("Subject") == ()
    assert (facts.interface, facts.source_port) == ("ws", 5)
