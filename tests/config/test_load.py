"""Loading: files, TOML syntax, many problems at once, and valid variants of each section."""

from __future__ import annotations

import re
from ipaddress import IPv6Address, ip_network
from pathlib import Path

import pytest

from rtcgw.config import (
    AllSources,
    CodecWhitelist,
    Conditions,
    ConfigError,
    ConfigProblem,
    ForceSrtp,
    GatewaySettings,
    InterfaceKind,
    RegisterCaching,
    RegisterThrottling,
    Reply,
    RetargetFromCache,
    SrtpKeying,
    StripVideo,
    load_config,
    load_config_text,
)
from rtcgw.sip.transport import Transport
from tests.config.config_snippets import BASE, MINIMAL, PBX, ROUTE_PBX, WS_ONLY, rule


def test_several_problems_are_reported_at_once_in_file_order() -> None:
    text = (
        "[gateway]\nworkers = -2\ncolour = 1\n"
        '[interfaces.ws]\ntype = "websocket"\ntransport = "wss"\n'
        "[media.m]\nrtp_port_range = [30001, 30000]\n" + PBX
    )
    with pytest.raises(ConfigError) as caught:
        load_config_text(text, source="gw.toml")
    paths = [problem.key_path for problem in caught.value.problems]
    assert paths == [
        "gateway.workers",
        "gateway.colour",
        "interfaces.ws.tls_certificate",
        "interfaces.ws.tls_key",
        "media.m.rtp_port_range",
    ]
    # str() is what check-config prints: one problem per line, each naming the file.
    lines = str(caught.value).splitlines()
    assert len(lines) == 5
    assert lines[0] == "gw.toml: gateway.workers: -2 is below the minimum 0"
    assert all(line.startswith("gw.toml: ") for line in lines)


def test_problems_in_rules_of_several_realms_are_all_reported() -> None:
    text = (
        BASE
        + rule("rtc.a_rules", '{ action = "anchor_rtpp" }')
        + rule("pbx.a_rules", '{ action = "route", destination = "nobody" }')
        + rule("pbx.c_rules", '{ action = "reply", code = 99, reason = "x" }', name="c")
    )
    with pytest.raises(ConfigError) as caught:
        load_config_text(text, source="gateway.toml")
    paths = {problem.key_path for problem in caught.value.problems}
    assert paths == {
        "realms.rtc.a_rules[0].actions[0]",
        "realms.pbx.a_rules[0].actions[0].destination",
        "realms.pbx.c_rules[0].actions[0].code",
    }


def test_toml_syntax_error_names_the_file_line_and_column() -> None:
    with pytest.raises(ConfigError) as caught:
        load_config_text('[gateway]\nname = "x"\nworkers = \n', source="gateway.toml")
    (problem,) = caught.value.problems
    assert (problem.source, problem.line, problem.key_path) == ("gateway.toml", 3, "")
    assert problem.column is not None
    assert re.fullmatch(r"gateway\.toml:3:\d+: TOML syntax: .+", str(problem))


def test_toml_error_without_position_still_names_the_file() -> None:
    with pytest.raises(ConfigError) as caught:
        load_config_text("a = 1\na = 2\n", source="gateway.toml")
    assert str(caught.value).startswith("gateway.toml")
    assert "TOML syntax" in str(caught.value)


def test_missing_file_is_a_config_error_naming_it(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path / "absent.toml")
    (problem,) = caught.value.problems
    assert problem.source == "absent.toml"
    assert "cannot read" in problem.reason and "absent.toml" in problem.reason


def test_non_utf8_file_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "latin1.toml"
    path.write_bytes('[gateway]\nname = "caf\xe9"\n'.encode("latin-1"))
    with pytest.raises(ConfigError, match=r"latin1\.toml: not UTF-8 text"):
        load_config(path)


def test_error_names_file_by_name_and_snapshot_keeps_the_path(tmp_path: Path) -> None:
    path = tmp_path / "broken.toml"
    path.write_text("[gateway]\nworkers = -1\n" + MINIMAL, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert str(caught.value).startswith("broken.toml: gateway.workers: ")
    path.write_text(MINIMAL, encoding="utf-8")
    assert load_config(path).source == str(path)


def test_tls_files_are_resolved_against_the_config_files_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config_dir = tmp_path / "etc"
    (config_dir / "tls").mkdir(parents=True)
    for name in ("gw.crt", "gw.key", "ca.pem"):
        (config_dir / "tls" / name).write_text("placeholder\n", encoding="utf-8")
    path = config_dir / "gateway.toml"
    path.write_text(
        '[interfaces.ws]\ntype = "websocket"\ntransport = "wss"\n'
        'tls_certificate = "tls/gw.crt"\ntls_key = "tls/gw.key"\ntls_ca = "tls/ca.pem"\n'
        "require_client_certificate = true\n" + PBX,
        encoding="utf-8",
    )
    monkeypatch.chdir(tmp_path)  # elsewhere: relative names must not depend on the cwd
    interface = load_config(Path("etc/gateway.toml")).interface("ws")
    assert interface.tls_certificate == config_dir / "tls" / "gw.crt"
    assert interface.tls_ca == config_dir / "tls" / "ca.pem"
    assert interface.require_client_certificate
    assert str(interface.listen) == "0.0.0.0:8443"


def test_missing_tls_file_names_the_key_and_the_file(tmp_path: Path) -> None:
    text = (
        '[interfaces.ws]\ntype = "websocket"\ntransport = "wss"\n'
        'tls_certificate = "nope.crt"\ntls_key = "nope.key"\n' + PBX
    )
    with pytest.raises(ConfigError) as caught:
        load_config_text(text, source="gateway.toml", base_dir=tmp_path)
    reasons = {p.key_path: p.reason for p in caught.value.problems}
    assert reasons["interfaces.ws.tls_certificate"].startswith("no such file: 'nope.crt'")
    assert reasons["interfaces.ws.tls_key"].startswith("no such file: 'nope.key'")


def test_config_problem_formats() -> None:
    assert str(ConfigProblem("a.toml", "x.y", "bad")) == "a.toml: x.y: bad"
    assert str(ConfigProblem("a.toml", "", "bad")) == "a.toml: bad"
    assert str(ConfigProblem("a.toml", "", "bad", line=2, column=5)) == "a.toml:2:5: bad"
    error = ConfigError([ConfigProblem("a.toml", "x", "one"), ConfigProblem("a.toml", "y", "two")])
    assert str(error) == "a.toml: x: one\na.toml: y: two"


def test_valid_variants_of_interfaces_and_call_agents() -> None:
    text = (
        '[interfaces.ws]\ntype = "websocket"\nlisten = "[::]"\n'
        '[interfaces.trunk]\ntype = "sip"\ntransport = "tcp"\nlisten = "[2001:db8::5]:5070"\n'
        '[realms.rtc.call_agents.browsers]\ninterface = "ws"\nsources = "10.0.0.0/8"\n'
        '[realms.carrier.call_agents.carrier]\ninterface = "trunk"\n'
        'destination = "sip:sbc.carrier.example;transport=tcp"\n'
        '[realms.carrier.call_agents.office]\ninterface = "trunk"\n'
        'sources = ["192.0.2.0/24", "2001:db8::/32"]\n'
    )
    config = load_config_text(text, source="gateway.toml")
    ws, trunk = config.interfaces  # a sip interface is declared, so none is added
    assert (ws.listen.host, ws.listen.port) == ("::", 8080)
    assert (trunk.transport, str(trunk.listen)) == (Transport.TCP, "[2001:db8::5]:5070")
    assert config.call_agent("browsers").sources == (ip_network("10.0.0.0/8"),)
    carrier = config.call_agent("carrier")
    assert carrier.destination is not None
    assert carrier.destination.host == "sbc.carrier.example"
    assert carrier.destination.port is None  # RFC 3263 resolution at send time
    assert carrier.destination.transport is Transport.TCP
    assert carrier.sources == ()  # a host name says nothing about request sources
    office = config.call_agent("office")
    assert office.destination is None
    assert office.sources == (ip_network("192.0.2.0/24"), ip_network("2001:db8::/32"))
    assert not config.generated[0].startswith("interfaces")


def test_sips_destination_goes_over_a_tls_interface(tmp_path: Path) -> None:
    for name in ("c.pem", "k.pem"):
        (tmp_path / name).write_text("x\n", encoding="utf-8")
    text = (
        WS_ONLY + '[interfaces.tls]\ntype = "sip"\ntransport = "tls"\n'
        'tls_certificate = "c.pem"\ntls_key = "k.pem"\n'
        '[pbx]\naddress = "sips:pbx.example.com"\nsources = ["198.51.100.7"]\n'
    )
    config = load_config_text(text, source="gateway.toml", base_dir=tmp_path)
    assert config.interface("tls").listen.port == 5061
    pbx = config.call_agent("pbx")
    assert pbx.destination is not None and pbx.destination.transport is Transport.TLS
    assert pbx.sources == (ip_network("198.51.100.7/32"),)


def test_valid_conditions_and_actions_keep_their_values_and_order() -> None:
    text = BASE + rule(
        "rtc.a_rules",
        '{ action = "codec_whitelist", codecs = ["opus", "PCMU", "telephone-event"] }, '
        '{ action = "strip_video" }, '
        '{ action = "force_srtp" }, '
        '{ action = "reply", code = 603, reason = "Decline" }',
        when='method = ["INVITE", "MESSAGE"], ruri_user = "\\\\+?[0-9]+", '
        'ruri_domain = "example\\\\.com", source_call_agent = "browsers"',
    )
    (only,) = load_config_text(text, source="gateway.toml").realm("rtc").a_rules
    assert only.when.method == ("INVITE", "MESSAGE")
    assert only.when.ruri_user is not None and only.when.ruri_user.pattern == r"\+?[0-9]+"
    assert only.when.ruri_user.fullmatch("+4930123")
    assert only.when.ruri_domain is not None and only.when.source_call_agent == "browsers"
    assert only.actions == (
        CodecWhitelist(codecs=("opus", "PCMU", "telephone-event")),
        StripVideo(),
        ForceSrtp(keying=SrtpKeying.DTLS),  # the default keying
        Reply(code=603, reason="Decline"),
    )


def test_header_and_source_conditions_keep_their_values_and_order() -> None:
    text = BASE + rule(
        "rtc.a_rules",
        ROUTE_PBX,
        when='header = { "User-Agent" = "JsSIP.*", f = ".*@example\\\\.com>.*" }, '
        'source = ["10.0.0.0/8", "2001:db8::/32"]',
    )
    (only,) = load_config_text(text, source="gateway.toml").realm("rtc").a_rules
    assert [(name, pattern.pattern) for name, pattern in only.when.header] == [
        ("user-agent", "JsSIP.*"),
        ("from", r".*@example\.com>.*"),
    ]
    assert only.when.source == (ip_network("10.0.0.0/8"), ip_network("2001:db8::/32"))


def test_one_source_network_may_be_a_string() -> None:
    text = BASE + rule("rtc.a_rules", ROUTE_PBX, when='source = "192.0.2.0/24"')
    (only,) = load_config_text(text, source="gateway.toml").realm("rtc").a_rules
    assert only.when.source == (ip_network("192.0.2.0/24"),)


def test_retarget_from_cache_offline_answer_is_configurable() -> None:
    text = (
        BASE
        + rule(
            "pbx.a_rules",
            '{ action = "retarget_from_cache", offline_code = 404, offline_reason = "Not Here" },'
            ' { action = "route", destination = "browsers" }',
        )
        + rule("rtc.a_rules", '{ action = "register_caching" }')
    )
    (only,) = load_config_text(text, source="gateway.toml").realm("pbx").a_rules
    assert only.actions[0] == RetargetFromCache(offline_code=404, offline_reason="Not Here")
    assert RetargetFromCache() == RetargetFromCache(480, "Temporarily Unavailable")


def test_rule_without_when_has_no_conditions() -> None:
    config = load_config_text(BASE + rule("pbx.c_rules", '{ action = "force_rtp" }'), source="x")
    (only,) = config.realm("pbx").c_rules
    assert only.when == Conditions()
    assert only.when.method == () and only.when.ruri_user is None


def test_a_realm_may_name_its_media_and_ipv6_media_works() -> None:
    text = (
        MINIMAL.replace(PBX, "")
        + "[media.v6]\n"
        + 'bind_address = "::"\nadvertised_addresses = ["2001:db8::10", "203.0.113.4"]\n'
        + '[realms.rtc]\nmedia = "v6"\n[realms.rtc.call_agents.browsers]\ninterface = "ws"\n'
        + 'sources = "all"\n'
    )
    config = load_config_text(text, source="gateway.toml")
    media = config.media_interface("v6")
    assert media.bind_address == IPv6Address("::")
    assert [str(a) for a in media.advertised_addresses] == ["2001:db8::10", "203.0.113.4"]
    assert config.realm("rtc").media == "v6"
    assert config.call_agent("browsers").sources is AllSources.ALL
    assert config.interface("sip").type is InterfaceKind.SIP  # the default one


def test_pbx_shorthand_with_ws_and_wss_and_sip_on_udp_and_tcp(tmp_path: Path) -> None:
    # What `rtcgw run` builds: both WebSocket flavours, SIP on udp and tcp at once.
    (tmp_path / "c.pem").write_text("x", encoding="utf-8")
    (tmp_path / "k.pem").write_text("x", encoding="utf-8")
    text = (
        '[interfaces.wss]\ntype = "websocket"\ntransport = "wss"\n'
        'tls_certificate = "c.pem"\ntls_key = "k.pem"\n'
        '[interfaces.ws]\ntype = "websocket"\ntransport = "ws"\n'
        '[interfaces.sip_udp]\ntype = "sip"\ntransport = "udp"\n'
        '[interfaces.sip_tcp]\ntype = "sip"\ntransport = "tcp"\n'
        '[pbx]\naddress = "sip:192.0.2.10:5060;transport=tcp"\n'
    )
    config = load_config_text(text, source="run", base_dir=tmp_path)
    rtc = config.realm("rtc")
    assert [(a.name, a.interface) for a in rtc.call_agents] == [
        ("browsers", "wss"),
        ("browsers_ws", "ws"),
    ]
    assert config.call_agent("pbx").interface == "sip_tcp"


def test_pbx_shorthand_address_without_transport_picks_the_udp_interface() -> None:
    text = (
        '[interfaces.ws]\ntype = "websocket"\n'
        '[interfaces.sip_tcp]\ntype = "sip"\ntransport = "tcp"\n'
        '[interfaces.sip_udp]\ntype = "sip"\ntransport = "udp"\n'
        '[pbx]\naddress = "192.0.2.10:5060"\n'
    )
    config = load_config_text(text, source="run")
    assert config.call_agent("pbx").interface == "sip_udp"


def test_overrides_edit_the_tables_before_they_are_checked() -> None:
    def workers_to_minus_one(raw: dict[str, object]) -> None:
        raw["gateway"] = {"workers": -1}

    with pytest.raises(ConfigError, match=r"gateway\.workers: -1 is below the minimum 0"):
        load_config_text(MINIMAL, source="run", overrides=workers_to_minus_one)


def test_listen_port_zero_is_allowed_and_never_clashes() -> None:
    # Port 0 asks the kernel for a free port: two such TCP listeners do not collide.
    text = (
        '[interfaces.ws]\ntype = "websocket"\nlisten = "127.0.0.1:0"\n'
        '[interfaces.sip_tcp]\ntype = "sip"\ntransport = "tcp"\nlisten = "127.0.0.1:0"\n'
        '[interfaces.sip_udp]\ntype = "sip"\ntransport = "udp"\nlisten = "127.0.0.1:0"\n'
        '[pbx]\naddress = "192.0.2.10:5060"\n'
    )
    config = load_config_text(text, source="t")
    assert {i.listen.port for i in config.interfaces} == {0}


def test_register_flood_limit_defaults() -> None:
    gateway = load_config_text(MINIMAL, source="t").gateway
    assert gateway.register_rate_per_source == 20.0
    assert isinstance(gateway.register_rate_per_source, float)
    assert gateway.register_burst_per_source == 100
    assert gateway == GatewaySettings()


@pytest.mark.parametrize(
    ("lines", "rate", "burst"),
    [
        ("register_rate_per_source = 2.5\nregister_burst_per_source = 5\n", 2.5, 5),
        # An integer rate is a rate too; 0 turns the limit off, and the bounds are inclusive.
        ("register_rate_per_source = 7\n", 7.0, 100),
        ("register_rate_per_source = 0\nregister_burst_per_source = 1\n", 0.0, 1),
        ("register_rate_per_source = 100000\nregister_burst_per_source = 1000000\n", 1e5, 10**6),
    ],
)
def test_register_flood_limit_from_the_file(
    lines: str, rate: float, burst: int, tmp_path: Path
) -> None:
    path = tmp_path / "gateway.toml"
    path.write_text("[gateway]\n" + lines + MINIMAL, encoding="utf-8")
    gateway = load_config(path).gateway
    assert gateway.register_rate_per_source == rate
    assert isinstance(gateway.register_rate_per_source, float)
    assert gateway.register_burst_per_source == burst


def test_register_throttling_takes_expiries_down_to_one_second() -> None:
    text = BASE + rule(
        "rtc.a_rules",
        '{ action = "register_caching" }, '
        '{ action = "register_throttling", client_expires_s = 1, upstream_expires_s = 1 }, '
        + ROUTE_PBX,
    )
    (only,) = load_config_text(text, source="t").realm("rtc").a_rules
    assert only.actions[:2] == (
        RegisterCaching(),
        RegisterThrottling(client_expires_s=1, upstream_expires_s=1),
    )
    assert RegisterThrottling() == RegisterThrottling(client_expires_s=60, upstream_expires_s=3600)
