"""config_changes: what a reload would change, from the shipped example and edits of its text."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from rtcgw.config import GatewayConfig, PortRange, load_config, load_config_text
from rtcgw.config.diff import ConfigChange, config_changes

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "gateway.toml"
TEXT = EXAMPLE.read_text()


def variant(old: str, new: str, *, count: int = 1) -> GatewayConfig:
    """The example with ``old`` (which must occur ``count`` times) replaced by ``new``."""
    assert TEXT.count(old) == count, f"{old!r} occurs {TEXT.count(old)} times in the example"
    return load_config_text(TEXT.replace(old, new), source="variant.toml", base_dir=EXAMPLE.parent)


@pytest.fixture(scope="module")
def base() -> GatewayConfig:
    return load_config(EXAMPLE)


def lines(changes: list[ConfigChange]) -> list[str]:
    return [str(change) for change in changes]


def test_same_file_read_twice_has_no_changes(base: GatewayConfig) -> None:
    again = load_config_text(TEXT, source="elsewhere.toml", base_dir=EXAMPLE.parent)
    assert again.source != base.source
    assert config_changes(base, again) == []


def test_gateway_setting_changed(base: GatewayConfig) -> None:
    new = variant("drain_timeout_s = 30 ", "drain_timeout_s = 12.5 ")
    assert config_changes(base, new) == [
        ConfigChange("changed", "gateway drain_timeout_s", "30 -> 12.5")
    ]
    assert lines(config_changes(base, new)) == ["~ changed gateway drain_timeout_s: 30 -> 12.5"]


def test_media_port_range_changed(base: GatewayConfig) -> None:
    media = dataclasses.replace(base.media[0], rtp_port_range=PortRange(30000, 30999))
    new = dataclasses.replace(base, media=(media,))
    assert config_changes(base, new) == [
        ConfigChange("changed", "media public rtp_port_range", "20000-29999 -> 30000-30999")
    ]


def test_rule_action_parameter_changed(base: GatewayConfig) -> None:
    new = variant("client_expires_s = 60,", "client_expires_s = 30,")
    assert lines(config_changes(base, new)) == [
        (
            "~ changed realm rtc a-rule register_upstream: "
            "action 2 register_throttling client_expires_s 60 -> 30"
        )
    ]


def test_rule_condition_and_action_list_changed(base: GatewayConfig) -> None:
    new = variant(
        'name = "message_to_pbx"\nwhen = { method = "MESSAGE" }\nactions = [\n',
        'name = "message_to_pbx"\nwhen = { method = ["MESSAGE", "OPTIONS"] }\n'
        'actions = [\n  { action = "dialog_handling" },\n',
    )
    (change,) = config_changes(base, new)
    assert change.kind == "changed"
    assert change.what == "realm rtc a-rule message_to_pbx"
    assert change.detail == (
        "when {method=[MESSAGE]} -> {method=[MESSAGE, OPTIONS]}; "
        "actions [route(destination=pbx)] -> [dialog_handling, route(destination=pbx)]"
    )


def test_rule_added_removed_and_reordered(base: GatewayConfig) -> None:
    rtc = base.realm("rtc")
    register, _call, message = rtc.a_rules
    extra = dataclasses.replace(message, name="message_copy")
    new_rtc = dataclasses.replace(rtc, a_rules=(message, register, extra))
    new = dataclasses.replace(base, realms=(new_rtc, base.realm("pbx")))
    assert config_changes(base, new) == [
        ConfigChange(
            "added",
            "realm rtc a-rule message_copy",
            "at position 3: when {method=[MESSAGE]}, actions [route(destination=pbx)]",
        ),
        ConfigChange(
            "removed",
            "realm rtc a-rule call_to_pbx",
            "was at position 2: when {method=[INVITE]}, actions "
            "[rtp_anchoring(offer_ice=true, offer_rtcp_feedback=true), dialog_handling, "
            "mediate_183_to_180, route(destination=pbx)]",
        ),
        ConfigChange(
            "changed",
            "realm rtc a-rules order",
            "register_upstream, message_to_pbx -> message_to_pbx, register_upstream",
        ),
    ]


def test_c_rule_change_names_its_kind(base: GatewayConfig) -> None:
    new = variant(
        '{ action = "force_rtp" },',
        '{ action = "force_rtp" },\n  { action = "codec_whitelist", codecs = ["PCMU"] },',
    )
    assert lines(config_changes(base, new)) == [
        (
            "~ changed realm pbx c-rule plain_rtp: "
            "actions [force_rtp] -> [force_rtp, codec_whitelist(codecs=[PCMU])]"
        )
    ]


def test_call_agent_and_interface_changes(base: GatewayConfig) -> None:
    new = variant(
        'destination = "sip:192.0.2.10:5060;transport=udp"\nsources = ["192.0.2.10/32"]',
        'destination = "sip:192.0.2.20:5060;transport=udp"\nsources = ["192.0.2.0/24"]',
    )
    new = dataclasses.replace(
        new,
        interfaces=(
            new.interfaces[0],
            dataclasses.replace(
                new.interfaces[1], listen=dataclasses.replace(new.interfaces[1].listen, port=5070)
            ),
        ),
    )
    assert lines(config_changes(base, new)) == [
        "~ changed interface pbx_side listen: 0.0.0.0:5060 -> 0.0.0.0:5070",
        "~ changed realm pbx call agent pbx sources: [192.0.2.10/32] -> [192.0.2.0/24]",
        (
            "~ changed realm pbx call agent pbx destination: "
            "sip:192.0.2.10:5060;transport=udp -> sip:192.0.2.20:5060;transport=udp"
        ),
    ]


def test_realm_removed_lists_its_agents_and_rules(base: GatewayConfig) -> None:
    new = dataclasses.replace(base, realms=(base.realm("rtc"),))
    changes = config_changes(base, new)
    assert [(change.kind, change.what) for change in changes] == [
        ("removed", "realm pbx"),
        ("removed", "realm pbx call agent pbx"),
        ("removed", "realm pbx a-rule call_to_browser"),
        ("removed", "realm pbx a-rule message_to_browser"),
        ("removed", "realm pbx c-rule plain_rtp"),
    ]
    assert changes[0].detail == "media public, 1 call agent(s), 2 a-rule(s), 1 c-rule(s)"
    # The reverse is the same list, added.
    back = config_changes(new, base)
    assert [(change.kind, change.what) for change in back] == [
        ("added", what) for _, what in ((c.kind, c.what) for c in changes)
    ]


def test_order_is_stable_across_calls(base: GatewayConfig) -> None:
    new = variant("register_rate_per_source = 20 ", "register_rate_per_source = 5 ")
    new = dataclasses.replace(new, realms=(new.realm("rtc"),))
    first = lines(config_changes(base, new))
    assert first[0] == "~ changed gateway register_rate_per_source: 20 -> 5"
    assert first == lines(config_changes(base, new))
