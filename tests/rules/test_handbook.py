"""The handbook's example configuration (examples/gateway.toml) decides as its comments say."""

from __future__ import annotations

from pathlib import Path

import pytest

from rtcgw.config import RegisterThrottling, SrtpKeying, load_config
from rtcgw.rules import CompiledRules, MediaPolicy, decide
from tests.rules.helpers import facts

EXAMPLE = Path(__file__).parents[2] / "examples" / "gateway.toml"


@pytest.fixture(scope="module")
def rules() -> CompiledRules:
    return CompiledRules.from_config(load_config(EXAMPLE))


def test_browser_invite_goes_to_the_pbx_as_plain_rtp(rules: CompiledRules) -> None:
    decision = decide(rules, facts("INVITE", interface="wss"))
    assert decision.forwarded and not decision.retarget
    assert (decision.source_realm, decision.destination_realm) == ("rtc", "pbx")
    assert decision.destination_agent is not None and decision.destination_agent.name == "pbx"
    assert decision.source_media == MediaPolicy(
        anchoring=True, offer_ice=True, offer_rtcp_feedback=True
    )
    assert decision.source_dialog_handling and not decision.destination_dialog_handling
    assert decision.destination_media == MediaPolicy(force_rtp=True)
    assert decision.mediate_183_to_180  # 183s from the PBX reach the browser as 180
    assert decision.reason() == (
        "rtc/a:call_to_pbx -> rtp_anchoring, dialog_handling, mediate_183_to_180, route pbx; "
        "pbx/c:plain_rtp -> force_rtp"
    )


def test_pbx_invite_to_a_registered_user_is_retargeted_to_the_browser(
    rules: CompiledRules,
) -> None:
    decision = decide(
        rules,
        facts("INVITE", user="alice", interface="pbx_side", source="192.0.2.10"),
        registrations={"alice"}.__contains__,
    )
    assert decision.forwarded and decision.retarget
    assert (decision.source_realm, decision.destination_realm) == ("pbx", "rtc")
    assert decision.destination_agent is not None
    assert decision.destination_agent.name == "browsers"
    assert decision.destination_media.force_srtp is SrtpKeying.DTLS
    assert decision.destination_media.offer_ice and decision.destination_dialog_handling
    assert not decision.mediate_183_to_180  # the browser is called: no 183 goes toward it
    assert [str(hit).split(" ->")[0] for hit in decision.trace] == [
        "pbx/a:call_to_browser",
        "rtc/c:webrtc_media",
    ]


def test_pbx_invite_to_an_unregistered_user_gets_480(rules: CompiledRules) -> None:
    decision = decide(
        rules,
        facts("INVITE", user="bob", interface="pbx_side", source="192.0.2.10"),
        registrations={"alice"}.__contains__,
    )
    assert decision.reply == (480, "Temporarily Unavailable")
    assert not decision.forwarded and not decision.mediate_183_to_180
    assert decision.reason() == (
        "pbx/a:call_to_browser -> retarget_from_cache (not registered: 480 Temporarily Unavailable)"
    )


def test_browser_register_is_cached_throttled_and_sent_to_the_pbx(
    rules: CompiledRules,
) -> None:
    decision = decide(rules, facts("REGISTER", user="alice", interface="wss"))
    assert decision.forwarded
    assert decision.destination_agent is not None and decision.destination_agent.name == "pbx"
    assert decision.register_caching
    assert decision.register_throttling == RegisterThrottling(60, 3600)
    assert [hit.rule for hit in decision.trace] == ["register_upstream"]


def test_request_from_an_unknown_source_on_the_sip_interface_has_no_call_agent(
    rules: CompiledRules,
) -> None:
    decision = decide(rules, facts("INVITE", interface="pbx_side", source="198.51.100.1"))
    assert decision.source_agent is None and decision.trace == ()
    assert not decision.forwarded and decision.reply is None


def test_a_method_no_rule_covers_is_not_routed(rules: CompiledRules) -> None:
    decision = decide(rules, facts("SUBSCRIBE", interface="wss"))
    assert decision.source_realm == "rtc" and decision.trace == ()
    assert decision.destination_agent is None and decision.reply is None
