"""Rule ordering (every match applies, later overrides, reply stops) and classification."""

from __future__ import annotations

from ipaddress import ip_address

import pytest

from rtcgw.config import SrtpKeying
from rtcgw.rules import CompiledRules, classify, decide
from tests.rules.helpers import RULES_BASE, compile_text, facts, rule

ROUTE_PBX = '{ action = "route", destination = "pbx" }'
ROUTE_CARRIER = '{ action = "route", destination = "carrier" }'
REPLY = '{ action = "reply", code = 403, reason = "Forbidden" }'


@pytest.mark.parametrize(
    ("rules", "destination", "reply", "hits"),
    [
        # every matching rule applies, in file order; the later route wins
        ((("one", ROUTE_PBX), ("two", ROUTE_CARRIER)), "carrier", None, ["one", "two"]),
        ((("one", ROUTE_CARRIER), ("two", ROUTE_PBX)), "pbx", None, ["one", "two"]),
        # a reply ends evaluation: later rules never run, earlier routes are void
        ((("one", ROUTE_PBX), ("two", REPLY), ("three", ROUTE_CARRIER)), None, 403, ["one", "two"]),
        ((("one", REPLY), ("two", ROUTE_PBX)), None, 403, ["one"]),
    ],
)
def test_rule_order(
    rules: tuple[tuple[str, str], ...], destination: str | None, reply: int | None, hits: list[str]
) -> None:
    text = [rule("rtc.a_rules", actions, name=name) for name, actions in rules]
    decision = decide(compile_text(*text), facts())
    assert decision.destination_agent is None or decision.destination_agent.name == destination
    assert (decision.destination_agent is None) is (destination is None)
    assert (decision.reply or (None,))[0] == reply
    assert [hit.rule for hit in decision.trace] == hits


def test_rules_that_do_not_match_are_skipped_and_later_media_actions_override() -> None:
    rules = compile_text(
        rule("rtc.a_rules", ROUTE_PBX),
        rule("pbx.c_rules", '{ action = "codec_whitelist", codecs = ["PCMU"] }', name="a"),
        rule("pbx.c_rules", '{ action = "strip_video" }', name="b", when='method = "MESSAGE"'),
        rule("pbx.c_rules", '{ action = "codec_whitelist", codecs = ["G722"] }', name="c"),
        rule("pbx.c_rules", '{ action = "force_srtp", keying = "sdes" }', name="d"),
        rule("pbx.c_rules", '{ action = "force_rtp" }', name="e"),
        rule("pbx.c_rules", '{ action = "rtp_anchoring", offer_ice = true }', name="f"),
        rule("pbx.c_rules", '{ action = "rtp_anchoring" }', name="g"),
    )
    decision = decide(rules, facts())
    media = decision.destination_media
    assert [h.rule for h in decision.trace] == ["r", "a", "c", "d", "e", "f", "g"]
    assert media.codec_whitelist == ("G722",) and not media.strip_video
    assert media.force_rtp and media.force_srtp is None
    assert media.anchoring and not media.offer_ice


def test_force_srtp_after_force_rtp_wins() -> None:
    rules = compile_text(
        rule("rtc.a_rules", ROUTE_PBX),
        rule("pbx.c_rules", '{ action = "force_rtp" }', name="a"),
        rule("pbx.c_rules", '{ action = "force_srtp", keying = "sdes" }', name="b"),
    )
    media = decide(rules, facts()).destination_media
    assert media.force_srtp is SrtpKeying.SDES and not media.force_rtp


def test_a_reply_in_a_c_rule_ends_c_rules_and_voids_the_route() -> None:
    rules = compile_text(
        rule("rtc.a_rules", ROUTE_PBX),
        rule("pbx.c_rules", '{ action = "reply", code = 486, reason = "Busy Here" }', name="a"),
        rule("pbx.c_rules", '{ action = "strip_video" }', name="b"),
    )
    decision = decide(rules, facts())
    assert decision.reply == (486, "Busy Here") and decision.destination_agent is None
    assert not decision.destination_media.strip_video
    assert decision.reason() == "rtc/a:r -> route pbx; pbx/c:a -> reply 486 Busy Here"


def test_no_route_means_no_c_rules_and_no_destination() -> None:
    rules = compile_text(
        rule("rtc.a_rules", '{ action = "dialog_handling" }'),
        rule("pbx.c_rules", '{ action = "strip_video" }', name="c"),
    )
    decision = decide(rules, facts())
    assert decision.destination_agent is None and decision.reply is None
    assert [h.rule for h in decision.trace] == ["r"]
    assert decision.reason() == "rtc/a:r -> dialog_handling; not routed"


def test_reason_when_nothing_matches() -> None:
    decision = decide(compile_text(rule("rtc.a_rules", ROUTE_PBX, when='method = "BYE"')), facts())
    assert decision.reason() == "rtc/a: no rule matched; not routed"


CLASSIFY_BASE = (
    RULES_BASE
    + """
[realms.pbx.call_agents.net8]
interface = "sip"
sources = ["10.0.0.0/8"]

[realms.pbx.call_agents.net24]
interface = "sip"
sources = ["10.1.2.0/24", "fd00::/8"]

[realms.pbx.call_agents.host]
interface = "sip"
sources = ["10.1.2.3/32"]

[realms.pbx.call_agents.anyone]
interface = "sip"
sources = "all"
"""
)


@pytest.mark.parametrize(
    ("interface", "address", "expected"),
    [
        ("sip", "10.1.2.3", "host"),  # /32 beats /24 beats /8 beats all
        ("sip", "10.1.2.4", "net24"),
        ("sip", "10.9.9.9", "net8"),
        ("sip", "172.16.0.1", "anyone"),
        ("sip", "fd00::1", "net24"),
        ("sip", "192.0.2.10", "pbx"),  # sources taken from the destination IP
        ("sip", "::ffff:10.1.2.3", "host"),  # IPv4-mapped, as a dual-stack socket sees it
        ("ws", "10.1.2.3", "browsers"),  # interfaces are classified separately
        ("nowhere", "10.1.2.3", None),
    ],
)
def test_classify_longest_prefix_wins(interface: str, address: str, expected: str | None) -> None:
    rules = compile_text(base=CLASSIFY_BASE)
    agent = classify(rules, interface, ip_address(address))
    assert (agent.name if agent else None) == expected
    assert classify(rules.config, interface, ip_address(address)) == agent


def test_unknown_source_gets_no_call_agent_and_no_rules() -> None:
    rules: CompiledRules = compile_text(rule("rtc.a_rules", ROUTE_PBX))
    decision = decide(rules, facts(interface="sip", source="203.0.113.99"))
    assert decision.source_agent is None and decision.source_realm is None
    assert decision.trace == () and decision.reply is None and not decision.forwarded
    assert decision.reason() == "no call agent holds the source address"
