"""The shipped examples load, mean what their comments say, and agree with each other."""

from __future__ import annotations

import dataclasses
import pickle
from ipaddress import IPv4Address, ip_network
from pathlib import Path

import pytest

from rtcgw.config import (
    AllSources,
    ARule,
    CRule,
    DialogHandling,
    DtlsKeyType,
    ForceRtp,
    ForceSrtp,
    GatewayConfig,
    InterfaceKind,
    Mediate183To180,
    PortRange,
    Realm,
    RegisterCaching,
    RegisterThrottling,
    RetargetFromCache,
    Route,
    RtpAnchoring,
    SrtpKeying,
    load_config,
    summarize,
)
from rtcgw.observability.logging import LogFormat
from rtcgw.sip.transport import Transport


@pytest.fixture
def gateway(repo_root: Path) -> GatewayConfig:
    return load_config(repo_root / "examples" / "gateway.toml")


@pytest.fixture
def minimal(repo_root: Path) -> GatewayConfig:
    return load_config(repo_root / "examples" / "minimal.toml")


def _action_names(rules: tuple[ARule, ...] | tuple[CRule, ...]) -> list[list[str]]:
    return [[action.ACTION for action in rule.actions] for rule in rules]


def test_gateway_example_settings(gateway: GatewayConfig) -> None:
    assert gateway.source.endswith("gateway.toml")
    assert gateway.gateway.name == "rtcgw-1"
    assert gateway.gateway.workers == 0
    assert gateway.gateway.drain_timeout_s == 30.0
    assert gateway.gateway.log_format is LogFormat.AUTO
    assert str(gateway.http.listen) == "127.0.0.1:9464"
    assert gateway.generated == ()


def test_gateway_example_interfaces(gateway: GatewayConfig, repo_root: Path) -> None:
    assert [i.name for i in gateway.interfaces] == ["wss", "pbx_side"]
    wss = gateway.interface("wss")
    assert (wss.type, wss.transport, str(wss.listen)) == (
        InterfaceKind.WEBSOCKET,
        Transport.WSS,
        "0.0.0.0:8443",
    )
    # Relative to the file's directory, wherever the loader runs from.
    assert wss.tls_certificate == (repo_root / "examples" / "tls" / "example.crt").absolute()
    assert wss.tls_key is not None and wss.tls_key.name == "example.key"
    assert wss.tls_ca is None and not wss.require_client_certificate
    sip = gateway.interface("pbx_side")
    assert (sip.type, sip.transport, sip.listen.port) == (InterfaceKind.SIP, Transport.UDP, 5060)
    assert sip.tls_certificate is None


def test_gateway_example_media(gateway: GatewayConfig) -> None:
    (media,) = gateway.media
    assert media.name == "public"
    assert media.bind_address == IPv4Address("0.0.0.0")
    assert media.advertised_addresses == (IPv4Address("203.0.113.10"),)
    assert media.rtp_port_range == PortRange(20000, 29999)
    assert media.dtls_certificate is None and media.dtls_key_type is DtlsKeyType.EC_P256


def test_gateway_example_realms_and_call_agents(gateway: GatewayConfig) -> None:
    assert [r.name for r in gateway.realms] == ["rtc", "pbx"]
    browsers = gateway.call_agent("browsers")
    assert (browsers.realm, browsers.interface) == ("rtc", "wss")
    assert browsers.sources is AllSources.ALL and browsers.destination is None
    pbx = gateway.call_agent("pbx")
    assert pbx.realm == "pbx" and pbx.interface == "pbx_side"
    assert pbx.sources == (ip_network("192.0.2.10/32"),)
    assert pbx.destination is not None
    assert (pbx.destination.host, pbx.destination.port) == ("192.0.2.10", 5060)
    assert pbx.destination.transport is Transport.UDP
    assert all(realm.media == "public" for realm in gateway.realms)


def test_gateway_example_rules_in_file_order(gateway: GatewayConfig) -> None:
    rtc, pbx = gateway.realm("rtc"), gateway.realm("pbx")
    assert [rule.name for rule in rtc.a_rules] == ["register_upstream", "call_to_pbx"]
    assert _action_names(rtc.a_rules) == [
        ["register_caching", "register_throttling", "route"],
        ["rtp_anchoring", "dialog_handling", "route"],
    ]
    assert _action_names(rtc.c_rules) == [
        ["rtp_anchoring", "force_srtp", "dialog_handling", "mediate_183_to_180"]
    ]
    assert _action_names(pbx.a_rules) == [["retarget_from_cache", "route"]]
    assert _action_names(pbx.c_rules) == [["force_rtp"]]
    assert all(isinstance(rule, ARule) for rule in (*rtc.a_rules, *pbx.a_rules))
    assert all(isinstance(rule, CRule) for rule in (*rtc.c_rules, *pbx.c_rules))


def test_gateway_example_action_fields(gateway: GatewayConfig) -> None:
    rtc, pbx = gateway.realm("rtc"), gateway.realm("pbx")
    register, invite = rtc.a_rules
    assert register.when.method == ("REGISTER",)
    assert register.actions == (
        RegisterCaching(),
        RegisterThrottling(client_expires_s=60, upstream_expires_s=3600),
        Route(destination="pbx"),
    )
    assert invite.when.method == ("INVITE",)
    assert invite.actions[0] == RtpAnchoring(offer_ice=True, offer_rtcp_feedback=True)
    (to_browser,) = rtc.c_rules
    assert ForceSrtp(keying=SrtpKeying.DTLS) in to_browser.actions
    assert to_browser.actions[-1] == Mediate183To180()
    assert pbx.a_rules[0].actions == (RetargetFromCache(), Route(destination="browsers"))
    assert pbx.c_rules[0].actions == (ForceRtp(),)
    assert DialogHandling() in invite.actions


def test_minimal_example_gets_the_documented_defaults(minimal: GatewayConfig) -> None:
    assert [(i.name, i.type, i.transport, str(i.listen)) for i in minimal.interfaces] == [
        ("ws", InterfaceKind.WEBSOCKET, Transport.WS, "0.0.0.0:8080"),
        ("sip", InterfaceKind.SIP, Transport.UDP, "0.0.0.0:5060"),
    ]
    (media,) = minimal.media
    assert media.name == "default" and media.rtp_port_range == PortRange(20000, 29999)
    assert media.advertised_addresses == ()
    assert [r.name for r in minimal.realms] == ["rtc", "pbx"]
    assert minimal.call_agent("browsers").interface == "ws"
    pbx = minimal.call_agent("pbx")
    assert pbx.interface == "sip"
    assert pbx.sources == (ip_network("192.0.2.10/32"),)
    assert str(pbx.destination) == "192.0.2.10:5060"
    assert [note.split(":")[0] for note in minimal.generated] == [
        "interfaces.sip",
        "media.default",
        "realms",
    ]
    assert minimal.gateway.workers == 0 and str(minimal.http.listen) == "127.0.0.1:9464"


def _rules_only(realm: Realm) -> tuple[object, ...]:
    return (realm.name, realm.a_rules, realm.c_rules)


def test_pbx_shorthand_generates_the_rules_the_handbook_example_spells_out(
    gateway: GatewayConfig, minimal: GatewayConfig
) -> None:
    assert [_rules_only(r) for r in minimal.realms] == [_rules_only(r) for r in gateway.realms]


def test_snapshot_is_immutable_and_picklable(gateway: GatewayConfig) -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        gateway.gateway.workers = 4  # type: ignore[misc]
    # A reload sends the snapshot to workers; it must survive the trip unchanged.
    assert pickle.loads(pickle.dumps(gateway)) == gateway


def test_lookups_raise_key_error_for_unknown_names(gateway: GatewayConfig) -> None:
    for lookup in (gateway.interface, gateway.media_interface, gateway.realm, gateway.call_agent):
        with pytest.raises(KeyError):
            lookup("nope")


def test_summary_mentions_interfaces_media_realms_and_rules(gateway: GatewayConfig) -> None:
    text = summarize(gateway)
    for expected in (
        "gateway.toml",
        "wss",
        "websocket wss on 0.0.0.0:8443",
        "sip udp on 0.0.0.0:5060",
        "ports 20000-29999",
        "advertise 203.0.113.10",
        "rtc",
        "A-rules 2 (register_upstream, call_to_pbx)",
        "C-rules 1 (plain_rtp)",
        "browsers",
        "sends to sip:192.0.2.10:5060;transport=udp",
    ):
        assert expected in text, expected
    assert "defaults applied" not in text
    assert len(text.splitlines()) <= 24  # one screen


def test_summary_lists_the_defaults_the_loader_applied(minimal: GatewayConfig) -> None:
    text = summarize(minimal)
    assert "defaults applied" in text
    assert "interfaces.sip: none declared" in text
    assert "built from [pbx]" in text
