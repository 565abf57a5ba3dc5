"""The shipped examples load, mean what their comments say, and agree with each other."""

from __future__ import annotations

import dataclasses
import logging
import pickle
from collections.abc import Iterator
from ipaddress import IPv4Address, ip_network
from pathlib import Path

import pytest
import structlog

from rtcgw import cli
from rtcgw.config import (
    AllSources,
    ARule,
    CallAgent,
    CRule,
    Destination,
    DialogHandling,
    DtlsKeyType,
    ForceRtp,
    ForceSrtp,
    GatewayConfig,
    GatewaySettings,
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
    load_config_text,
    summarize,
)
from rtcgw.config.run_options import RunOptions
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
    assert gateway.gateway.register_rate_per_source == 20.0
    assert gateway.gateway.register_burst_per_source == 100
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
    assert [rule.name for rule in rtc.a_rules] == [
        "register_upstream",
        "call_to_pbx",
        "message_to_pbx",
    ]
    assert _action_names(rtc.a_rules) == [
        ["register_caching", "register_throttling", "route"],
        ["rtp_anchoring", "dialog_handling", "mediate_183_to_180", "route"],
        ["route"],
    ]
    assert _action_names(rtc.c_rules) == [["rtp_anchoring", "force_srtp", "dialog_handling"]]
    assert [rule.name for rule in pbx.a_rules] == ["call_to_browser", "message_to_browser"]
    assert _action_names(pbx.a_rules) == [["retarget_from_cache", "route"]] * 2
    assert _action_names(pbx.c_rules) == [["force_rtp"]]
    assert all(isinstance(rule, ARule) for rule in (*rtc.a_rules, *pbx.a_rules))
    assert all(isinstance(rule, CRule) for rule in (*rtc.c_rules, *pbx.c_rules))


def test_gateway_example_action_fields(gateway: GatewayConfig) -> None:
    rtc, pbx = gateway.realm("rtc"), gateway.realm("pbx")
    register, invite, _message = rtc.a_rules
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
    assert Mediate183To180() in invite.actions
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


def test_gateway_example_register_limit_comment_does_its_sums(
    gateway: GatewayConfig, repo_root: Path
) -> None:
    # The comment promises room for 1200 browsers behind one address refreshing as often
    # as register_throttling lets them: rate x client expiry REGISTERs per refresh period.
    (throttling,) = [
        a for a in gateway.realm("rtc").a_rules[0].actions if isinstance(a, RegisterThrottling)
    ]
    per_period = gateway.gateway.register_rate_per_source * throttling.client_expires_s
    assert (per_period, throttling.client_expires_s) == (1200, 60)
    text = (repo_root / "examples" / "gateway.toml").read_text(encoding="utf-8")
    assert "20/s is 1200 REGISTERs a minute" in text
    assert "about 1200 browsers that\n# refresh every 60 s" in text


RUN_PBX = "198.51.100.7:5070"


def _as_run_would_have_it(realm: Realm, media: str, interfaces: dict[str, str]) -> Realm:
    """``realm`` of the example, with what is the deployment's rather than the handbook's.

    Those are the names of the listeners and of the media interface (the example names
    its own; ``rtcgw run`` names what its options create) and the PBX's address.
    """
    agents = []
    for agent in realm.call_agents:
        moved = dataclasses.replace(agent, interface=interfaces[agent.interface])
        if agent.name == "pbx":
            moved = dataclasses.replace(
                moved,
                destination=Destination(RUN_PBX, "198.51.100.7", 5070, Transport.UDP),
                sources=(ip_network("198.51.100.7/32"),),
            )
        agents.append(moved)
        if agent.name == "pbx":
            # rtcgw run listens on tcp too; the PBX may send over it (RFC 3261 18.1.1).
            agents.append(
                CallAgent(
                    name="pbx_sip_tcp",
                    realm="pbx",
                    interface="sip_tcp",
                    sources=(ip_network("198.51.100.7/32"),),
                )
            )
    return dataclasses.replace(realm, media=media, call_agents=tuple(agents))


def test_run_with_pbx_and_no_file_runs_the_handbook_example(
    gateway: GatewayConfig, repo_root: Path
) -> None:
    tls = repo_root / "examples" / "tls"

    def certificate() -> tuple[Path, Path]:
        return tls / "example.crt", tls / "example.key"

    # As `rtcgw run --pbx 198.51.100.7:5070` builds it: no file, the options as overrides.
    options = RunOptions(pbx=RUN_PBX)
    run = load_config_text("", source="command line", overrides=options.overrides(certificate))
    assert [i.name for i in run.interfaces] == ["wss", "sip_udp", "sip_tcp"]
    (media,) = run.media
    expected = tuple(
        _as_run_would_have_it(realm, media.name, {"wss": "wss", "pbx_side": "sip_udp"})
        for realm in gateway.realms
    )
    assert run.realms == expected  # realms, call agents, rules, conditions, actions


@pytest.fixture
def cli_logging() -> Iterator[None]:
    """Undo the logging set-up ``cli.main`` does, which would outlive capsys's streams."""
    saved, handlers = structlog.get_config(), logging.getLogger().handlers[:]
    level = logging.getLogger().level
    yield
    structlog.configure(**saved)
    logging.getLogger().handlers[:] = handlers
    logging.getLogger().setLevel(level)


@pytest.mark.usefixtures("cli_logging")
def test_config_command_writes_the_handbook_example_for_that_pbx(
    gateway: GatewayConfig, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["config", "--pbx", RUN_PBX, "--ws", "127.0.0.1:0"]) == 0
    written = tmp_path / "rtcgw.toml"
    written.write_text(capsys.readouterr().out, encoding="utf-8")

    assert cli.main(["check-config", str(written)]) == 0
    checked = capsys.readouterr()
    assert checked.out.startswith("OK\n"), checked.err

    loaded = load_config(written)
    assert [i.name for i in loaded.interfaces] == ["ws", "sip_udp", "sip_tcp"]
    (media,) = loaded.media
    expected = tuple(
        _as_run_would_have_it(realm, media.name, {"wss": "ws", "pbx_side": "sip_udp"})
        for realm in gateway.realms
    )
    assert loaded.realms == expected


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
        "A-rules 3 (register_upstream, call_to_pbx, message_to_pbx)",
        "C-rules 1 (plain_rtp)",
        "browsers",
        "sends to sip:192.0.2.10:5060;transport=udp",
        "20/s per source address, burst 100",
    ):
        assert expected in text, expected
    assert "defaults applied" not in text
    assert len(text.splitlines()) <= 24  # one screen


def test_summary_lists_the_defaults_the_loader_applied(minimal: GatewayConfig) -> None:
    text = summarize(minimal)
    assert "defaults applied" in text
    assert "interfaces.sip: none declared" in text
    assert "built from [pbx]" in text


def test_summary_says_when_register_floods_are_not_limited(minimal: GatewayConfig) -> None:
    off = dataclasses.replace(minimal, gateway=GatewaySettings(register_rate_per_source=0))
    assert "register     no limit per source address" in summarize(off).splitlines()
    assert "register     20/s per source address, burst 100" in summarize(minimal).splitlines()
