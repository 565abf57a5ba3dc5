"""Every action's effect on the Decision, in A-rules (source leg) and C-rules (destination)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from rtcgw.config import RegisterThrottling, SrtpKeying
from rtcgw.rules import Decision, MediaPolicy, decide
from tests.rules.helpers import compile_text, facts, rule

ROUTE = '{ action = "route", destination = "pbx" }'

# (action in a pbx C-rule, check of the decision of a browser INVITE routed to pbx)
C_RULE_CASES: list[tuple[str, Callable[[Decision], bool]]] = [
    (
        '{ action = "rtp_anchoring", offer_ice = true, offer_rtcp_feedback = true }',
        lambda d: (
            d.destination_media
            == MediaPolicy(anchoring=True, offer_ice=True, offer_rtcp_feedback=True)
        ),
    ),
    (
        '{ action = "rtp_anchoring" }',
        lambda d: d.destination_media == MediaPolicy(anchoring=True),
    ),
    ('{ action = "force_rtp" }', lambda d: d.destination_media == MediaPolicy(force_rtp=True)),
    (
        '{ action = "force_srtp", keying = "sdes" }',
        lambda d: d.destination_media == MediaPolicy(force_srtp=SrtpKeying.SDES),
    ),
    (
        '{ action = "force_srtp" }',
        lambda d: d.destination_media == MediaPolicy(force_srtp=SrtpKeying.DTLS),
    ),
    (
        '{ action = "codec_whitelist", codecs = ["PCMU", "PCMA"] }',
        lambda d: d.destination_media == MediaPolicy(codec_whitelist=("PCMU", "PCMA")),
    ),
    (
        '{ action = "codec_blacklist", codecs = ["G729"] }',
        lambda d: d.destination_media == MediaPolicy(codec_blacklist=("G729",)),
    ),
    ('{ action = "strip_video" }', lambda d: d.destination_media == MediaPolicy(strip_video=True)),
    (
        '{ action = "dialog_handling" }',
        lambda d: d.destination_dialog_handling and not d.source_dialog_handling,
    ),
    ('{ action = "mediate_183_to_180" }', lambda d: d.mediate_183_to_180),
    ('{ action = "dtmf_info_to_browser" }', lambda d: d.dtmf_info_to_browser),
    (
        '{ action = "reply", code = 503, reason = "Down" }',
        lambda d: d.reply == (503, "Down") and d.destination_agent is None and not d.forwarded,
    ),
]


@pytest.mark.parametrize(("action", "check"), C_RULE_CASES, ids=[c[0] for c in C_RULE_CASES])
def test_action_in_a_c_rule(action: str, check: Callable[[Decision], bool]) -> None:
    rules = compile_text(rule("rtc.a_rules", ROUTE), rule("pbx.c_rules", action, name="c"))
    decision = decide(rules, facts())
    assert check(decision), decision
    assert decision.source_media == MediaPolicy()
    assert [(h.realm, h.kind.value, h.rule) for h in decision.trace] == [
        ("rtc", "a", "r"),
        ("pbx", "c", "c"),
    ]


# (actions of an rtc A-rule, check of the decision of a browser request)
A_RULE_CASES: list[tuple[str, str, Callable[[Decision], bool]]] = [
    ("INVITE", ROUTE, lambda d: d.forwarded and d.destination_realm == "pbx"),
    (
        "INVITE",
        f'{{ action = "rtp_anchoring", offer_ice = true }}, {ROUTE}',
        lambda d: d.source_media == MediaPolicy(anchoring=True, offer_ice=True),
    ),
    (
        "INVITE",
        f'{{ action = "force_srtp" }}, {ROUTE}',  # in an A-rule: admit only SRTP
        lambda d: (
            d.source_media.force_srtp is SrtpKeying.DTLS and d.destination_media == MediaPolicy()
        ),
    ),
    (
        "INVITE",
        f'{{ action = "dialog_handling" }}, {ROUTE}',
        lambda d: d.source_dialog_handling and not d.destination_dialog_handling,
    ),
    (
        "REGISTER",
        f'{{ action = "register_caching" }}, {ROUTE}',
        lambda d: d.register_caching and d.register_throttling is None,
    ),
    (
        "REGISTER",
        (
            '{ action = "register_caching" }, '
            '{ action = "register_throttling", client_expires_s = 60, upstream_expires_s = 600 }'
        ),
        lambda d: d.register_throttling == RegisterThrottling(60, 600) and not d.forwarded,
    ),
    (
        "INVITE",
        '{ action = "reply", code = 403, reason = "Forbidden" }',
        lambda d: d.reply == (403, "Forbidden") and d.destination_agent is None,
    ),
]


@pytest.mark.parametrize(
    ("method", "actions", "check"), A_RULE_CASES, ids=[c[1][:50] for c in A_RULE_CASES]
)
def test_action_in_an_a_rule(method: str, actions: str, check: Callable[[Decision], bool]) -> None:
    decision = decide(compile_text(rule("rtc.a_rules", actions)), facts(method))
    assert check(decision), decision
    assert decision.source_agent is not None and decision.source_realm == "rtc"


RETARGET = (
    rule(
        "pbx.a_rules",
        '{ action = "retarget_from_cache" }, { action = "route", destination = "browsers" }',
        name="to_browser",
    ),
    rule("rtc.a_rules", '{ action = "register_caching" }', name="cache"),
)


@pytest.mark.parametrize(
    ("registered", "user", "expected_reply"),
    [
        ({"1000"}, "1000", None),
        ({"1000"}, "2000", (480, "Temporarily Unavailable")),
        (None, "1000", (480, "Temporarily Unavailable")),  # no view: an empty cache
        ({"1000"}, None, (480, "Temporarily Unavailable")),  # no user to look up
    ],
)
def test_retarget_from_cache_online_and_offline(
    registered: set[str] | None, user: str | None, expected_reply: tuple[int, str] | None
) -> None:
    view = None if registered is None else registered.__contains__
    decision = decide(
        compile_text(*RETARGET),
        facts(user=user, interface="sip", source="192.0.2.10"),
        registrations=view,
    )
    assert decision.retarget
    assert decision.reply == expected_reply
    assert decision.forwarded is (expected_reply is None)
    (hit, *c_hits) = decision.trace
    if expected_reply is None:
        assert decision.destination_agent is not None
        assert decision.destination_agent.name == "browsers"
        assert [a.ACTION for a in hit.actions] == ["retarget_from_cache", "route"]
    else:
        assert hit.offline and [a.ACTION for a in hit.actions] == ["retarget_from_cache"]
        assert "not registered: 480 Temporarily Unavailable" in decision.reason()
        assert c_hits == []


def test_retarget_offline_answer_is_the_actions_own() -> None:
    rules = compile_text(
        rule(
            "pbx.a_rules",
            '{ action = "retarget_from_cache", offline_code = 404, offline_reason = "Not Found" },'
            ' { action = "route", destination = "browsers" }',
        ),
        rule("rtc.a_rules", '{ action = "register_caching" }', name="cache"),
    )
    decision = decide(rules, facts(interface="sip", source="192.0.2.10"))
    assert decision.reply == (404, "Not Found")


def test_registrations_is_asked_about_the_ruri_user() -> None:
    asked: list[str] = []

    def view(user: str) -> bool:
        asked.append(user)
        return True

    decide(
        compile_text(*RETARGET),
        facts(user="+4930", interface="sip", source="192.0.2.10"),
        registrations=view,
    )
    assert asked == ["+4930"]
