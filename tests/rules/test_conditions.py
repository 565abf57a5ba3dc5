"""Every condition, alone and combined: does an A-rule of realm rtc match these facts?"""

from __future__ import annotations

from typing import Any

import pytest

from rtcgw.rules import decide
from tests.rules.helpers import compile_text, facts, rule

ROUTE = '{ action = "route", destination = "pbx" }'

UA = (("user-agent", "JsSIP 3.10.0"),)

CASES: list[tuple[str, dict[str, Any], bool]] = [
    ("", {}, True),  # no conditions: always
    # method
    ('method = "INVITE"', {}, True),
    ('method = "INVITE"', {"method": "MESSAGE"}, False),
    ('method = ["INVITE", "MESSAGE"]', {"method": "MESSAGE"}, True),
    ('method = "INVITE"', {"method": "invite"}, False),  # case-sensitive
    # ruri_user: whole-value regex
    ('ruri_user = "1000"', {}, True),
    ('ruri_user = "1000"', {"user": "91000"}, False),
    ('ruri_user = "\\\\+?[0-9]+"', {"user": "+4930123"}, True),
    ('ruri_user = ".*"', {"user": None}, False),  # no user part: never holds
    ('ruri_user = "\\\\+1-201-.*"', {"user": "+1-201-555-0123", "host": None}, True),  # tel:
    # ruri_domain
    ('ruri_domain = "example\\\\.com"', {}, True),
    ('ruri_domain = "example\\\\.com"', {"host": "sub.example.com"}, False),
    ('ruri_domain = "(.+\\\\.)?example\\\\.com"', {"host": "sub.example.com"}, True),
    ('ruri_domain = ".*"', {"host": None}, False),
    # header: names case-insensitive, compact = long, any line, absent = no match
    ('header = { "User-Agent" = "JsSIP.*" }', {"headers": UA}, True),
    ('header = { "user-agent" = "JsSIP.*" }', {"headers": UA}, True),
    ('header = { "User-Agent" = "JsSIP" }', {"headers": UA}, False),  # fullmatch
    ('header = { "User-Agent" = "JsSIP.*" }', {}, False),  # absent header
    ('header = { f = ".*alice.*" }', {"headers": (("from", "<sip:alice@x>"),)}, True),
    ('header = { From = ".*alice.*" }', {"headers": (("from", "<sip:alice@x>"),)}, True),
    (
        'header = { Subject = "urgent" }',
        {"headers": (("subject", "hello"), ("subject", "urgent"))},
        True,
    ),
    (
        'header = { "User-Agent" = "JsSIP.*", Subject = "x" }',
        {"headers": UA},
        False,  # every header listed must match
    ),
    (
        'header = { "User-Agent" = "JsSIP.*", Subject = "x" }',
        {"headers": (*UA, ("subject", "x"))},
        True,
    ),
    # source CIDR
    ('source = "203.0.113.0/24"', {}, True),
    ('source = "203.0.113.0/25"', {"source": "203.0.113.200"}, False),
    ('source = ["10.0.0.0/8", "203.0.113.0/24"]', {}, True),
    ('source = "2001:db8::/32"', {}, False),  # other family
    ('source = "2001:db8::/32"', {"source": "2001:db8::7"}, True),
    ('source = "203.0.113.0/24"', {"source": "::ffff:203.0.113.7"}, True),  # v4-mapped
    # source_call_agent
    ('source_call_agent = "browsers"', {}, True),
    # combinations: all must hold
    ('method = "INVITE", ruri_user = "1000", source = "203.0.113.0/24"', {}, True),
    ('method = "INVITE", ruri_user = "1000", source = "10.0.0.0/8"', {}, False),
    ('method = "REGISTER", ruri_user = "1000"', {}, False),
    ('ruri_user = "1000", ruri_domain = "other\\\\.com"', {}, False),
]


@pytest.mark.parametrize(("when", "kwargs", "expected"), CASES, ids=[c[0] for c in CASES])
def test_condition(when: str, kwargs: dict[str, Any], expected: bool) -> None:
    rules = compile_text(rule("rtc.a_rules", ROUTE, when=when))
    decision = decide(rules, facts(**kwargs))
    assert (decision.destination_agent is not None) is expected
    assert len(decision.trace) == (1 if expected else 0)


@pytest.mark.parametrize(("source", "expected"), [("198.51.100.9", False), ("192.0.2.10", True)])
def test_source_call_agent_in_an_a_rule_tells_agents_of_the_realm_apart(
    source: str, expected: bool
) -> None:
    rules = compile_text(
        rule(
            "pbx.a_rules",
            '{ action = "reply", code = 403, reason = "No" }',
            when='source_call_agent = "pbx"',
        )
    )
    decision = decide(rules, facts(interface="sip", source=source))
    assert (decision.reply is not None) is expected


@pytest.mark.parametrize(
    ("source", "expected"), [("198.51.100.9", "carrier"), ("192.0.2.10", None)]
)
def test_source_call_agent_in_a_c_rule_names_the_agent_the_request_came_from(
    source: str, expected: str | None
) -> None:
    # PBX and carrier both route to browsers; the browsers' C-rule strips video for
    # requests from the carrier only.
    rules = compile_text(
        rule(
            "pbx.a_rules",
            '{ action = "retarget_from_cache" }, { action = "route", destination = "browsers" }',
        ),
        rule("rtc.a_rules", '{ action = "register_caching" }', name="cache"),
        rule("rtc.c_rules", '{ action = "strip_video" }', when='source_call_agent = "carrier"'),
    )
    decision = decide(rules, facts(interface="sip", source=source), registrations=lambda user: True)
    assert decision.destination_media.strip_video is (expected is not None)
    assert [hit.rule for hit in decision.trace] == (["r", "r"] if expected else ["r"])
