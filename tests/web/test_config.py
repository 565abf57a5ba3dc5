"""``[web]`` in the configuration: defaults, the borrowed certificate, validation errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from rtcgw.config import ConfigError, HostPort, IceServer, load_config_text, summarize
from rtcgw.supervisor.tls import make_self_signed

BASE = """
[interfaces.wss]
type = "websocket"
transport = "wss"
listen = "127.0.0.1:8443"
tls_certificate = "{cert}"
tls_key = "{key}"

[pbx]
address = "127.0.0.1:9"
"""
PLAIN = """
[interfaces.ws]
type = "websocket"
listen = "127.0.0.1:8080"

[pbx]
address = "127.0.0.1:9"
"""


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> str:
    pair = make_self_signed(tmp_path_factory.mktemp("tls"))
    return BASE.format(cert=pair.certificate, key=pair.key)


def _problems(text: str) -> dict[str, str]:
    with pytest.raises(ConfigError) as caught:
        load_config_text(text, source="t.toml")
    return {p.key_path: p.reason for p in caught.value.problems}


def test_no_web_table_means_no_phone(base: str) -> None:
    assert load_config_text(base, source="t.toml").web is None


def test_defaults_borrow_the_wss_certificate(base: str) -> None:
    config = load_config_text(base + "\n[web]\n", source="t.toml")
    web = config.web
    assert web is not None
    wss = config.interface("wss")
    assert (web.listen, web.path) == (HostPort("0.0.0.0", 8444), "/phone/")
    assert (web.tls_certificate, web.tls_key) == (wss.tls_certificate, wss.tls_key)
    assert (web.ice_servers, web.sip_domain, web.ws_url) == ((), None, None)
    assert "web.tls_certificate: that of interfaces.wss" in config.generated
    assert "phone at https://0.0.0.0:8444/phone/, host candidates only" in summarize(config)


def test_every_key(base: str, tmp_path: Path) -> None:
    own = make_self_signed(tmp_path)
    text = (
        base
        + f"""
[web]
listen = "127.0.0.1:9443"
path = "/app/phone/"
tls_certificate = "{own.certificate}"
tls_key = "{own.key}"
sip_domain = "example.com"
ws_url = "wss://sbc.example.com:8443/"

[[web.ice_servers]]
urls = "stun:stun.example.com:3478"

[[web.ice_servers]]
urls = ["turn:turn.example.com:3478?transport=udp", "turns:turn.example.com:5349"]
username = "u"
credential = "p"
"""
    )
    web = load_config_text(text, source="t.toml").web
    assert web is not None
    assert (web.listen, web.path) == (HostPort("127.0.0.1", 9443), "/app/phone/")
    assert (web.tls_certificate, web.tls_key) == (own.certificate, own.key)
    assert (web.sip_domain, web.ws_url) == ("example.com", "wss://sbc.example.com:8443/")
    assert web.ice_servers == (
        IceServer(urls=("stun:stun.example.com:3478",)),
        IceServer(
            urls=("turn:turn.example.com:3478?transport=udp", "turns:turn.example.com:5349"),
            username="u",
            credential="p",
        ),
    )


def test_without_wss_a_certificate_is_required() -> None:
    problems = _problems(PLAIN + "\n[web]\n")
    assert "no wss interface" in problems["web.tls_certificate"]


@pytest.mark.parametrize(
    ("table", "key", "words"),
    [
        ('path = "phone"', "web.path", "must start and end with /"),
        ('path = "/a/../b/"', "web.path", ".. segment"),
        ('path = "/a?b/"', "web.path", "use letters"),
        ('listen = "nowhere"', "web.listen", "no port"),
        ('ws_url = "https://x.example/"', "web.ws_url", "not a ws:// or wss:// URL"),
        ('sip_domain = "user@example.com"', "web.sip_domain", "not a domain"),
        ('colour = "blue"', "web.colour", "unknown key"),
        ('tls_key = "k.pem"', "web.tls_certificate", "give tls_certificate and tls_key"),
        ("[[web.ice_servers]]\nusername = 'x'", "web.ice_servers[0].urls", "missing"),
        ('[[web.ice_servers]]\nurls = "http://x"', "web.ice_servers[0].urls", "not a stun:"),
        ('[[web.ice_servers]]\nurls = "turn:t.example"', "web.ice_servers[0]", "TURN server"),
    ],
)
def test_bad_values_name_the_key(base: str, table: str, key: str, words: str) -> None:
    problems = _problems(base + "\n[web]\n" + table + "\n")
    assert key in problems, problems
    assert words in problems[key]


def test_web_listen_cannot_share_a_port(base: str) -> None:
    problems = _problems(base + '\n[web]\nlisten = "127.0.0.1:8443"\n')
    assert "overlaps interfaces.wss.listen" in problems["web.listen"]
