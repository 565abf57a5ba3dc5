"""Invalid configurations: every problem is reported with the file, key path and reason."""

from __future__ import annotations

from pathlib import Path

import pytest

from rtcgw.config import ConfigError, GatewayConfig, load_config_text
from tests.config.config_snippets import BASE, MINIMAL, PBX, ROUTE_PBX, WS_ONLY, rule


def load(text: str, base_dir: Path | None = None) -> GatewayConfig:
    return load_config_text(text, source="gateway.toml", base_dir=base_dir)


def problems_of(text: str, base_dir: Path | None = None) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load(text, base_dir)
    return [str(problem) for problem in caught.value.problems]


def test_base_and_minimal_snippets_are_valid() -> None:
    assert [r.name for r in load(BASE).realms] == ["rtc", "pbx"]
    assert [r.name for r in load(BASE + rule("rtc.a_rules", ROUTE_PBX)).realms] == ["rtc", "pbx"]
    assert load(MINIMAL).call_agent("pbx").interface == "sip"


CASES = [
    # -- the example of the issue, and other action problems
    (
        BASE
        + rule("rtc.a_rules", ROUTE_PBX, name="one")
        + rule("rtc.a_rules", '{ action = "anchor_rtpp" }', name="two"),
        "gateway.toml: realms.rtc.a_rules[1].actions[0]: unknown action 'anchor_rtpp'",
    ),
    (
        BASE + rule("rtc.a_rules", '{ action = "rtp_anchor" }'),
        "unknown action 'rtp_anchor' (did you mean 'rtp_anchoring'?)",
    ),
    (
        BASE + rule("rtc.a_rules", "{ offer_ice = true }"),
        "realms.rtc.a_rules[0].actions[0].action: missing",
    ),
    (
        BASE + rule("rtc.a_rules", '{ action = "rtp_anchoring", offer_ice = "yes" }'),
        "actions[0].offer_ice: expected true or false, got a string",
    ),
    (
        BASE + rule("rtc.a_rules", '{ action = "rtp_anchoring", offer_ice_lite = true }'),
        "realms.rtc.a_rules[0].actions[0].offer_ice_lite: unknown key",
    ),
    (
        BASE + rule("rtc.a_rules", '{ action = "force_srtp", keying = "zrtp" }'),
        "actions[0].keying: 'zrtp' is not one of: dtls, sdes",
    ),
    (
        BASE + rule("rtc.a_rules", '{ action = "reply", code = 200, reason = "OK" }'),
        "actions[0].code: 200 is below the minimum 400",
    ),
    (
        BASE + rule("rtc.a_rules", '{ action = "reply", code = 700, reason = "Nope" }'),
        "actions[0].code: 700 is above the maximum 699",
    ),
    (
        BASE + rule("rtc.a_rules", '{ action = "reply", code = 403 }'),
        "realms.rtc.a_rules[0].actions[0].reason: missing",
    ),
    (
        BASE + rule("rtc.a_rules", '{ action = "reply", code = 403, reason = "a\\r\\nX-Evil: 1" }'),
        "actions[0].reason: the reason phrase contains control characters",
    ),
    (
        BASE + rule("rtc.a_rules", '{ action = "codec_whitelist", codecs = [] }'),
        "actions[0].codecs: needs at least 1 item",
    ),
    (
        BASE + rule("rtc.a_rules", '{ action = "codec_blacklist", codecs = ["opus/48000"] }'),
        "actions[0].codecs[0]: codec 'opus/48000': give the encoding name only",
    ),
    (
        BASE + rule("rtc.a_rules", '{ action = "codec_whitelist", codecs = ["PCMU", "pcmu"] }'),
        "actions[0].codecs[1]: codec 'pcmu' is listed twice",
    ),
    (
        BASE
        + rule(
            "rtc.a_rules",
            '{ action = "register_caching" }, { action = "register_throttling", '
            "client_expires_s = 7200, upstream_expires_s = 600 }",
        ),
        "actions[1].client_expires_s: 7200 exceeds upstream_expires_s 600",
    ),
    (
        BASE
        + rule(
            "rtc.a_rules",
            '{ action = "register_caching" }, { action = "register_throttling", '
            "client_expires_s = 600, upstream_expires_s = 60 }",
        ),
        (
            "gateway.toml: realms.rtc.a_rules[0].actions[1].client_expires_s: 600 exceeds "
            "upstream_expires_s 60: clients must refresh at least as often as the registrar"
        ),
    ),
    (
        # Checked against the default upstream expiry too, not only one written beside it.
        BASE
        + rule(
            "rtc.a_rules",
            '{ action = "register_caching" }, '
            '{ action = "register_throttling", client_expires_s = 7200 }',
        ),
        "actions[1].client_expires_s: 7200 exceeds upstream_expires_s 3600",
    ),
    (
        BASE
        + rule(
            "rtc.a_rules",
            '{ action = "register_caching" }, '
            '{ action = "register_throttling", client_expires_s = 0 }',
        ),
        "realms.rtc.a_rules[0].actions[1].client_expires_s: 0 is below the minimum 1",
    ),
    (
        BASE
        + rule(
            "rtc.a_rules",
            '{ action = "register_caching" }, '
            '{ action = "register_throttling", client_expires_s = 1, upstream_expires_s = 0 }',
        ),
        "realms.rtc.a_rules[0].actions[1].upstream_expires_s: 0 is below the minimum 1",
    ),
    # -- how actions combine within a rule, and where they may appear
    (
        BASE + rule("rtc.a_rules", f'{ROUTE_PBX}, {{ action = "route", destination = "pbx" }}'),
        "realms.rtc.a_rules[0].actions[1]: 'route' is already at actions[0]",
    ),
    (
        BASE + rule("pbx.c_rules", ROUTE_PBX),
        "realms.pbx.c_rules[0].actions[0]: 'route' is for a_rules only",
    ),
    (
        BASE + rule("pbx.c_rules", '{ action = "retarget_from_cache" }'),
        "realms.pbx.c_rules[0].actions[0]: 'retarget_from_cache' is for a_rules only",
    ),
    (
        BASE + rule("pbx.c_rules", '{ action = "force_rtp" }, { action = "force_srtp" }'),
        "actions[1]: force_rtp and force_srtp contradict each other",
    ),
    (
        BASE + rule("rtc.a_rules", f'{{ action = "register_throttling" }}, {ROUTE_PBX}'),
        "actions[0]: register_throttling needs register_caching in the same rule",
    ),
    (
        BASE + rule("rtc.a_rules", '{ action = "register_caching" }', when='method = "INVITE"'),
        "actions[0]: 'register_caching' acts on REGISTER, which when.method excludes",
    ),
    (
        BASE
        + rule("rtc.a_rules", f'{{ action = "reply", code = 403, reason = "No" }}, {ROUTE_PBX}'),
        "realms.rtc.a_rules[0].actions[1]: never applied: 'reply' at actions[0] ends the rule",
    ),
    (
        BASE + rule("rtc.c_rules", '{ action = "force_rtp" }'),
        "rtc.c_rules[0].actions[0]: this realm has browsers, and WebRTC media is always SRTP",
    ),
    (
        BASE + rule("rtc.c_rules", '{ action = "force_srtp", keying = "sdes" }'),
        "this realm has browsers, which key SRTP with DTLS only",
    ),
    # -- rules and conditions
    (
        BASE + rule("rtc.a_rules", ROUTE_PBX, when='ruri_user = "(+"'),
        "gateway.toml: realms.rtc.a_rules[0].when.ruri_user: bad regular expression '(+'",
    ),
    (
        BASE + rule("rtc.a_rules", ROUTE_PBX, when='ruri_domain = "[a-"'),
        "realms.rtc.a_rules[0].when.ruri_domain: bad regular expression",
    ),
    (
        BASE + rule("rtc.a_rules", ROUTE_PBX, when='method = ["INVITE", "invite"]'),
        "when.method[1]: methods are case-sensitive (RFC 3261 section 7.1): write 'INVITE'",
    ),
    (
        BASE + rule("rtc.a_rules", ROUTE_PBX, when='method = "IN VITE"'),
        "when.method[0]: 'IN VITE' is not a SIP method",
    ),
    (
        BASE + rule("rtc.a_rules", ROUTE_PBX, when="method = []"),
        "when.method: empty",
    ),
    (
        BASE + rule("rtc.a_rules", ROUTE_PBX, when='ruri_usr = "1"'),
        "realms.rtc.a_rules[0].when.ruri_usr: unknown key (did you mean 'ruri_user'?)",
    ),
    (
        BASE + rule("rtc.a_rules", ROUTE_PBX, when='header = { "User-Agent" = "(+" }'),
        "realms.rtc.a_rules[0].when.header.User-Agent: bad regular expression '(+'",
    ),
    (
        BASE + rule("rtc.a_rules", ROUTE_PBX, when='header = { "User Agent" = "x" }'),
        "when.header.\"User Agent\": 'User Agent' is not a header name",
    ),
    (
        BASE + rule("rtc.a_rules", ROUTE_PBX, when='header = { From = "a", f = "b" }'),
        "when.header.f: the same header as 'From'",
    ),
    (
        BASE + rule("rtc.a_rules", ROUTE_PBX, when="header = {}"),
        "realms.rtc.a_rules[0].when.header: empty",
    ),
    (
        BASE + rule("rtc.a_rules", ROUTE_PBX, when='header = "User-Agent"'),
        "realms.rtc.a_rules[0].when.header: expected a table",
    ),
    (
        BASE + rule("rtc.a_rules", ROUTE_PBX, when="header = { Subject = 1 }"),
        "realms.rtc.a_rules[0].when.header.Subject: expected a string",
    ),
    (
        BASE + rule("rtc.a_rules", ROUTE_PBX, when='source = ["10.0.0.0/8", "10.0.0.1/8"]'),
        "realms.rtc.a_rules[0].when.source[1]: '10.0.0.1/8' has host bits set",
    ),
    (
        BASE + rule("rtc.a_rules", ROUTE_PBX, when='source = "nowhere"'),
        "when.source[0]: 'nowhere' is not a network in CIDR notation",
    ),
    (
        BASE + rule("rtc.a_rules", ROUTE_PBX, when="source = []"),
        "realms.rtc.a_rules[0].when.source: empty",
    ),
    (
        BASE + rule("rtc.a_rules", ROUTE_PBX, when="source = 10"),
        "realms.rtc.a_rules[0].when.source: expected",
    ),
    (
        BASE
        + rule(
            "pbx.a_rules",
            '{ action = "retarget_from_cache", offline_code = 399 }, '
            '{ action = "route", destination = "browsers" }',
        )
        + rule("rtc.a_rules", '{ action = "register_caching" }', name="c"),
        "pbx.a_rules[0].actions[0].offline_code: 399 is below the minimum 400",
    ),
    (
        BASE
        + rule(
            "pbx.a_rules",
            '{ action = "retarget_from_cache", offline_reason = "" }, '
            '{ action = "route", destination = "browsers" }',
        )
        + rule("rtc.a_rules", '{ action = "register_caching" }', name="c"),
        "pbx.a_rules[0].actions[0].offline_reason: the reason phrase is empty",
    ),
    (
        BASE + rule("rtc.a_rules", ROUTE_PBX, when='source_call_agent = "nobody"'),
        "when.source_call_agent: unknown call agent 'nobody'",
    ),
    (
        BASE + rule("rtc.a_rules", ROUTE_PBX, when='source_call_agent = "pbx"'),
        "when.source_call_agent: 'pbx' belongs to realm 'pbx': an A-rule of realm 'rtc'",
    ),
    (
        BASE
        + rule("rtc.a_rules", ROUTE_PBX, name="same")
        + rule("rtc.c_rules", '{ action = "strip_video" }', name="same"),
        "realms.rtc.c_rules[0].name: rule name 'same' is used twice in this realm",
    ),
    (
        BASE + rule("rtc.a_rules", ROUTE_PBX, name="has space"),
        "realms.rtc.a_rules[0].name: bad name 'has space'",
    ),
    (
        BASE + '\n[[realms.rtc.a_rules]]\nactions = [{ action = "force_rtp" }]\n',
        "realms.rtc.a_rules[0].name: missing",
    ),
    (
        BASE + '\n[[realms.rtc.a_rules]]\nname = "x"\n',
        "realms.rtc.a_rules[0]: missing actions",
    ),
    (
        BASE + rule("rtc.a_rules", ""),
        "realms.rtc.a_rules[0].actions: empty: a rule needs at least one action",
    ),
    # -- references between sections
    (
        BASE + rule("rtc.a_rules", '{ action = "route", destination = "pbxx" }'),
        (
            "realms.rtc.a_rules[0].actions[0].destination: unknown call agent 'pbxx' (did you mean "
            "'pbx'?)"
        ),
    ),
    (
        BASE + rule("pbx.a_rules", '{ action = "route", destination = "browsers" }'),
        "actions[0].destination: 'browsers' is reached through the registration cache",
    ),
    (
        BASE + rule("pbx.a_rules", '{ action = "retarget_from_cache" }'),
        "actions[0]: no rule does register_caching",
    ),
    (
        BASE + '[realms.pbx.call_agents.other]\ninterface = "nope"\nsources = "all"\n',
        "realms.pbx.call_agents.other.interface: unknown interface 'nope' (known: sip, ws)",
    ),
    (
        BASE.replace(
            "[realms.rtc.call_agents.browsers]",
            '[realms.rtc]\nmedia = "fast"\n[realms.rtc.call_agents.browsers]',
        ),
        "realms.rtc.media: unknown media interface 'fast' (known: default)",
    ),
    (
        BASE + "[media.a]\n[media.b]\nrtp_port_range = [40000, 40099]\n",
        "realms.rtc.media: missing: several media interfaces exist, name one",
    ),
    (
        BASE + '[realms.rtc.call_agents.pbx]\ninterface = "ws"\nsources = ["10.0.0.0/8"]\n',
        # Realms are visited in the order TOML defined them: "rtc" first, so "pbx" repeats.
        "realms.pbx.call_agents.pbx: call agent name 'pbx' is already used in realm 'rtc'",
    ),
    (
        BASE + '[realms.pbx.call_agents.more]\ninterface = "ws"\nsources = "all"\n',
        (
            "realms.pbx.call_agents.more.sources: all on interface 'ws' is already claimed by call "
            "agent 'browsers'"
        ),
    ),
    (
        BASE + "[realms.empty]\n",
        "realms.empty: no call agents",
    ),
    # -- call agents
    (
        BASE + '[realms.pbx.call_agents.x]\ninterface = "sip"\n',
        'realms.pbx.call_agents.x: needs sources (CIDRs or "all"), a destination, or both',
    ),
    (
        BASE + '[realms.pbx.call_agents.x]\ninterface = "sip"\nsources = ["10.0.0.300/8"]\n',
        "realms.pbx.call_agents.x.sources[0]: '10.0.0.300/8' is not a network in CIDR notation",
    ),
    (
        BASE + '[realms.pbx.call_agents.x]\ninterface = "sip"\nsources = ["10.1.2.3/8"]\n',
        "sources[0]: '10.1.2.3/8' has host bits set: did you mean '10.0.0.0/8'?",
    ),
    (
        BASE + '[realms.pbx.call_agents.x]\ninterface = "sip"\nsources = []\n',
        'realms.pbx.call_agents.x.sources: empty: list source networks or write "all"',
    ),
    (
        BASE + '[realms.pbx.call_agents.x]\ninterface = "sip"\nsources = "any"\n',
        "sources[0]: 'any' is not a network in CIDR notation",
    ),
    (
        BASE + '[realms.pbx.call_agents.x]\ninterface = "ws"\ndestination = "192.0.2.1:5060"\n',
        (
            "realms.pbx.call_agents.x.destination: a call agent on a websocket interface has no "
            "destination"
        ),
    ),
    (
        BASE.replace('"192.0.2.10:5060"', '"sip:192.0.2.10;transport=tcp"'),
        "realms.pbx.call_agents.pbx.destination: asks for tcp but interfaces.sip carries udp",
    ),
    (
        BASE.replace('"192.0.2.10:5060"', '"sip:alice@192.0.2.10"'),
        "destination: 'sip:alice@192.0.2.10': a destination names a host, not a user",
    ),
    (
        BASE.replace('"192.0.2.10:5060"', '"sip:192.0.2.10;transport=ws"'),
        "destination: 'sip:192.0.2.10;transport=ws': transport must be udp, tcp or tls",
    ),
    (
        BASE.replace('"192.0.2.10:5060"', '"http://pbx.example.com"'),
        "destination: 'http://pbx.example.com': write host:port or a sip:/sips: URI",
    ),
    # -- interfaces
    (
        '[interfaces.ws]\ntype = "websocket"\ntransport = "wss"\n' + PBX,
        "gateway.toml: interfaces.ws.tls_certificate: missing: wss needs a certificate and key",
    ),
    (
        '[interfaces.ws]\ntype = "websocket"\ntransport = "wss"\n' + PBX,
        "gateway.toml: interfaces.ws.tls_key: missing: wss needs a certificate and key",
    ),
    (
        WS_ONLY + '[interfaces.s]\ntype = "sip"\ntransport = "tls"\n' + PBX,
        "interfaces.s.tls_certificate: missing: tls needs a certificate and key",
    ),
    (
        '[interfaces.ws]\ntype = "websocket"\ntls_certificate = "cert.pem"\n' + PBX,
        "interfaces.ws.tls_certificate: only for wss or tls; this interface is ws",
    ),
    (
        '[interfaces.ws]\ntype = "websocket"\ntransport = "udp"\n' + PBX,
        "interfaces.ws.transport: 'udp' is not a websocket transport: use ws or wss",
    ),
    (
        '[interfaces.ws]\ntype = "websockets"\n' + PBX,
        "interfaces.ws.type: 'websockets' is not an interface type: use websocket or sip",
    ),
    (
        '[interfaces.ws]\nlisten = "0.0.0.0:8080"\n' + PBX,
        "interfaces.ws.type: missing (websocket or sip)",
    ),
    (
        '[interfaces.ws]\ntype = "websocket"\nlisn = "0.0.0.0:1"\n' + PBX,
        "interfaces.ws.lisn: unknown key (did you mean 'listen'?)",
    ),
    (
        '[interfaces.ws]\ntype = "websocket"\nlisten = "0.0.0.0:http"\n' + PBX,
        "interfaces.ws.listen: port 'http' is not a number from 0 to 65535",
    ),
    (
        '[interfaces.ws]\ntype = "websocket"\nlisten = "0.0.0.0:65536"\n' + PBX,
        "port '65536' is not a number from 0 to 65535",
    ),
    (
        '[interfaces.ws]\ntype = "websocket"\nlisten = "2001:db8::1:99999"\n' + PBX,
        (
            "interfaces.ws.listen: '2001:db8::1:99999' is not an address: "
            "write IPv6 with a port as [address]:port"
        ),
    ),
    (
        '[interfaces.ws]\ntype = "websocket"\nlisten = "[192.0.2.1]:8080"\n' + PBX,
        "brackets hold IPv6 addresses only",
    ),
    (
        '[interfaces.ws]\ntype = "websocket"\nlisten = "bad_host:8080"\n' + PBX,
        "'bad_host' is neither an IP address nor a host name",
    ),
    (
        '[interfaces.ws]\ntype = "websocket"\nlisten = "192.0.2.300:8080"\n' + PBX,
        "'192.0.2.300' is not a valid IP address",
    ),
    (
        '[interfaces."my ws"]\ntype = "websocket"\n' + PBX,
        "gateway.toml: interfaces.\"my ws\": bad name 'my ws'",
    ),
    (
        WS_ONLY + '[interfaces.s1]\ntype = "sip"\n[interfaces.s2]\ntype = "sip"\n'
        'listen = "0.0.0.0:5060"\n' + PBX,
        "interfaces.s2.listen: 0.0.0.0:5060 (udp) overlaps interfaces.s1.listen",
    ),
    (
        '[http]\nlisten = "0.0.0.0:8080"\n' + MINIMAL,
        "interfaces.ws.listen: 0.0.0.0:8080 (tcp) overlaps http.listen = 0.0.0.0:8080",
    ),
    (
        '[interfaces.ws]\ntype = "websocket"\nlisten = "[::]:9464"\n' + PBX,
        "interfaces.ws.listen: [::]:9464 (tcp) overlaps http.listen = 127.0.0.1:9464",
    ),
    (
        '[interfaces.s]\ntype = "sip"\n' + PBX,
        "gateway.toml: interfaces: no websocket interface",
    ),
    (
        PBX,
        "gateway.toml: interfaces: missing: declare at least one websocket interface",
    ),
    (
        '[interfaces.ws]\ntype = "websocket"\ntransport = "wss"\ntls_certificate = "c.pem"\n'
        'tls_key = "k.pem"\nrequire_client_certificate = true\n' + PBX,
        "interfaces.ws.require_client_certificate: needs tls_ca",
    ),
    # -- media
    (
        MINIMAL + "[media.m]\nrtp_port_range = [30000, 20000]\n",
        "gateway.toml: media.m.rtp_port_range: start 30000 > end 20000",
    ),
    (
        MINIMAL + "[media.m]\nrtp_port_range = [20001, 29999]\n",
        "media.m.rtp_port_range: start 20001 is odd: RTP ports start even (RFC 3550 section 11)",
    ),
    (
        MINIMAL + "[media.m]\nrtp_port_range = [20000, 70000]\n",
        "media.m.rtp_port_range: port 70000 is not from 1 to 65535",
    ),
    (
        MINIMAL + '[media.m]\nrtp_port_range = "20000-29999"\n',
        "media.m.rtp_port_range: expected [first, last] ports, got a string",
    ),
    (
        MINIMAL + "[media.m]\nrtp_port_range = [20000, 20000]\n",
        "a range needs at least an RTP/RTCP pair of ports",
    ),
    (
        "[gateway]\nworkers = 8\n" + MINIMAL + "[media.m]\nrtp_port_range = [20000, 20009]\n",
        "media.m.rtp_port_range: 10 ports cannot be split between 8 workers",
    ),
    (
        BASE + "[media.a]\n[media.b]\nrtp_port_range = [29000, 30999]\n"
        '[realms.rtc]\nmedia = "a"\n[realms.pbx]\nmedia = "b"\n',
        "media.b.rtp_port_range: 29000-30999 overlaps media.a.rtp_port_range = 20000-29999",
    ),
    (
        MINIMAL + '[media.m]\nadvertised_addresses = ["0.0.0.0"]\n',
        "media.m.advertised_addresses[0]: 0.0.0.0 cannot be advertised to peers",
    ),
    (
        MINIMAL + '[media.m]\nadvertised_addresses = ["203.0.113.1", "public.example"]\n',
        "media.m.advertised_addresses[1]: 'public.example' is not an IP address",
    ),
    (
        MINIMAL + '[media.m]\nbind_address = "*"\n',
        "media.m.bind_address: '*' is not an IP address",
    ),
    (
        MINIMAL + '[media.m]\ndtls_certificate = "c.pem"\n',
        "media.m.dtls_key: missing: give dtls_certificate and dtls_key, or neither",
    ),
    (
        MINIMAL + '[media.m]\ndtls_certificate = "c.pem"\ndtls_key = "k.pem"\n'
        'dtls_key_type = "rsa-2048"\n',
        "media.m.dtls_key_type: only for generated certificates",
    ),
    (
        MINIMAL + '[media.m]\ndtls_key_type = "ec-p384"\n',
        "media.m.dtls_key_type: 'ec-p384' is not one of: ec-p256, rsa-2048",
    ),
    (
        MINIMAL + '[media.m]\ndtls_certificate = "missing.pem"\ndtls_key = "k.pem"\n',
        "media.m.dtls_certificate: no such file: 'missing.pem'",
    ),
    # -- gateway and http
    (
        '[gateway]\nworkers = "four"\n' + MINIMAL,
        "gateway.toml: gateway.workers: expected an integer, got a string",
    ),
    (
        "[gateway]\nworkers = true\n" + MINIMAL,
        "gateway.workers: expected an integer, got a boolean",
    ),
    (
        "[gateway]\nworkers = -1\n" + MINIMAL,
        "gateway.workers: -1 is below the minimum 0",
    ),
    (
        "[gateway]\ndrain_timeout_s = -0.5\n" + MINIMAL,
        "gateway.drain_timeout_s: -0.5 is below the minimum 0",
    ),
    (
        '[gateway]\nlog_format = "xml"\n' + MINIMAL,
        "gateway.log_format: 'xml' is not one of: auto, json, console",
    ),
    (
        "[gateway]\nmax_message_bytes = 100\n" + MINIMAL,
        "gateway.max_message_bytes: 100 is below the minimum 1500",
    ),
    (
        "[gateway]\nregister_rate_per_source = -0.5\n" + MINIMAL,
        "gateway.toml: gateway.register_rate_per_source: -0.5 is below the minimum 0",
    ),
    (
        "[gateway]\nregister_rate_per_source = 100000.5\n" + MINIMAL,
        "gateway.register_rate_per_source: 100000.5 is above the maximum 100000",
    ),
    (
        "[gateway]\nregister_rate_per_source = inf\n" + MINIMAL,
        "gateway.register_rate_per_source: inf is above the maximum 100000",
    ),
    (
        "[gateway]\nregister_rate_per_source = nan\n" + MINIMAL,
        "gateway.register_rate_per_source: expected a number, got nan",
    ),
    (
        '[gateway]\nregister_rate_per_source = "20/s"\n' + MINIMAL,
        "gateway.register_rate_per_source: expected a number, got a string",
    ),
    (
        "[gateway]\nregister_burst_per_source = 0\n" + MINIMAL,
        "gateway.toml: gateway.register_burst_per_source: 0 is below the minimum 1",
    ),
    (
        "[gateway]\nregister_burst_per_source = 1000001\n" + MINIMAL,
        "gateway.register_burst_per_source: 1000001 is above the maximum 1000000",
    ),
    (
        "[gateway]\nregister_burst_per_source = 2.5\n" + MINIMAL,
        "gateway.register_burst_per_source: expected an integer, got a float",
    ),
    (
        "[gateway]\nregister_rate = 5\n" + MINIMAL,
        "gateway.register_rate: unknown key (did you mean 'register_rate_per_source'?)",
    ),
    (
        '[gateway]\nname = "my gateway"\n' + MINIMAL,
        "gateway.name: bad node name 'my gateway'",
    ),
    (
        "[gateway]\ndrain_timeout = 5\n" + MINIMAL,
        "gateway.drain_timeout: unknown key (did you mean 'drain_timeout_s'?)",
    ),
    (
        '[http]\nlisten = "127.0.0.1"\n' + MINIMAL,
        "http.listen: '127.0.0.1' has no port: write host:port",
    ),
    (
        "[gatway]\nworkers = 1\n" + MINIMAL,
        "gateway.toml: gatway: unknown key (did you mean 'gateway'?)",
    ),
    (
        'gateway = "x"\n' + MINIMAL,
        "gateway.toml: gateway: expected a table, got a string",
    ),
    # -- realms vs the [pbx] shorthand
    (
        WS_ONLY,
        "gateway.toml: realms: missing: declare [realms.<name>], or the PBX's address in [pbx]",
    ),
    (
        BASE + PBX,
        "gateway.toml: pbx: [pbx] is a shorthand for [realms]: use one or the other",
    ),
    (
        WS_ONLY + "[pbx]\n",
        "gateway.toml: pbx.address: missing",
    ),
    (
        WS_ONLY + '[pbx]\naddress = "pbx.example.com"\n',
        "gateway.toml: pbx.sources: missing: 'pbx.example.com' is a name",
    ),
    (
        WS_ONLY + '[pbx]\naddress = "192.0.2.10"\nport = 5060\n',
        "gateway.toml: pbx.port: unknown key",
    ),
    (
        WS_ONLY
        + '[interfaces.sip_a]\ntype = "sip"\nlisten = "0.0.0.0:5060"\n'
        + '[interfaces.sip_b]\ntype = "sip"\nlisten = "0.0.0.0:5070"\n'
        + PBX,
        (
            "pbx: the [pbx] shorthand needs a websocket interface and one sip interface for "
            "the PBX's transport, not 1 and 2"
        ),
    ),
]


@pytest.fixture
def config_dir(tmp_path: Path) -> Path:
    """A directory holding the certificate and key files the snippets name."""
    for name in ("cert.pem", "c.pem", "k.pem"):
        (tmp_path / name).write_text("-----BEGIN PLACEHOLDER-----\n", encoding="utf-8")
    return tmp_path


@pytest.mark.parametrize(("text", "expected"), CASES, ids=[e[:60] for _, e in CASES])
def test_problem_is_reported_with_file_key_path_and_reason(
    text: str, expected: str, config_dir: Path
) -> None:
    problems = problems_of(text, config_dir)
    assert any(expected in problem for problem in problems), "\n".join(problems)
    assert all(problem.startswith("gateway.toml") for problem in problems)
