"""The web phone's responder: paths, content types, caching, traversal, config.json."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rtcgw.config import GatewayConfig, load_config_text
from rtcgw.supervisor.http import Responder
from rtcgw.supervisor.tls import make_self_signed
from rtcgw.supervisor.web import (
    JSSIP_FILE,
    WebError,
    load_static,
    phone_settings,
    static_folder,
    web_endpoints,
)

FILES = {
    "index.html": b"<!doctype html><title>phone</title>",
    "phone.js": b"// phone",
    "phone.css": b"body {}",
    JSSIP_FILE: b"// jssip",
}


def _config(tmp: Path, web: str = "", sip_listen: str = "0.0.0.0:5060") -> GatewayConfig:
    pair = make_self_signed(tmp)
    text = f"""
[interfaces.ws]
type = "websocket"
listen = "127.0.0.1:8080"

[interfaces.wss]
type = "websocket"
transport = "wss"
listen = "127.0.0.1:0"
tls_certificate = "{pair.certificate}"
tls_key = "{pair.key}"

[interfaces.sip]
type = "sip"
listen = "{sip_listen}"

[web]
{web}

[pbx]
address = "127.0.0.1:9"
"""
    return load_config_text(text, source="t.toml")


@pytest.fixture
def respond(tmp_path: Path) -> Responder:
    return web_endpoints(_config(tmp_path), files=FILES)


@pytest.mark.parametrize(
    ("target", "body", "content_type", "cache"),
    [
        ("/phone/", FILES["index.html"], "text/html; charset=utf-8", "no-cache"),
        ("/phone/?user=1", FILES["index.html"], "text/html; charset=utf-8", "no-cache"),
        ("/phone/index.html", FILES["index.html"], "text/html; charset=utf-8", "no-cache"),
        ("/phone/phone.js", FILES["phone.js"], "text/javascript; charset=utf-8", "no-cache"),
        ("/phone/phone.css", FILES["phone.css"], "text/css; charset=utf-8", "no-cache"),
        (
            "/phone/vendor/jssip.min.js",
            FILES[JSSIP_FILE],
            "text/javascript; charset=utf-8",
            "public, max-age=3600",
        ),
    ],
)
async def test_files_are_served(
    respond: Responder, target: str, body: bytes, content_type: str, cache: str
) -> None:
    response = await respond("GET", target)
    assert (response.status, response.body, response.content_type) == (200, body, content_type)
    headers = dict(response.headers)
    assert headers["Cache-Control"] == cache
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert "default-src 'self'" in headers["Content-Security-Policy"]


@pytest.mark.parametrize(
    "target",
    [
        "/",
        "/metrics",
        "/phonex/",
        "/phone/nothing.js",
        "/phone/../pyproject.toml",
        "/phone/%2e%2e/%2e%2e/pyproject.toml",
        "/phone/vendor/../../rtcgw/__init__.py",
        "/phone//etc/passwd",
        "/phone/%2Fetc%2Fpasswd",
        "/phone/vendor",
        "/phone/vendor/",
        "/phone/%ff%fe",
    ],
)
async def test_anything_else_is_not_found(respond: Responder, target: str) -> None:
    response = await respond("GET", target)
    assert (response.status, response.body) == (404, b"not found\n")


async def test_the_path_without_its_slash_redirects(respond: Responder) -> None:
    response = await respond("GET", "/phone")
    assert response.status == 308
    assert dict(response.headers)["Location"] == "/phone/"


async def test_only_get(respond: Responder) -> None:
    response = await respond("POST", "/phone/")
    assert response.status == 405
    assert dict(response.headers)["Allow"] == "GET"


async def test_config_json_from_defaults(tmp_path: Path) -> None:
    config = _config(tmp_path)
    respond = web_endpoints(config, files=FILES, ws_ports={"wss": 18443})
    response = await respond("GET", "/phone/config.json")
    assert (response.status, response.content_type) == (200, "application/json")
    assert dict(response.headers)["Cache-Control"] == "no-store"
    # A wss interface is preferred (an https page may not open ws://); its bound port is
    # used, and the wildcard SIP address leaves the domain to the page's host.
    assert json.loads(response.body) == {
        "ws_url": None,
        "ws_scheme": "wss",
        "ws_port": 18443,
        "sip_domain": None,
        "ice_servers": [],
    }


async def test_config_json_from_every_setting(tmp_path: Path) -> None:
    web = """path = "/p/"
sip_domain = "example.com"
ws_url = "wss://sbc.example.com:8443"
[[web.ice_servers]]
urls = "stun:stun.example.com"
[[web.ice_servers]]
urls = "turn:turn.example.com"
username = "u"
credential = "c"
"""
    respond = web_endpoints(_config(tmp_path, web), files=FILES)
    assert (await respond("GET", "/phone/config.json")).status == 404
    response = await respond("GET", "/p/config.json")
    assert json.loads(response.body) == {
        "ws_url": "wss://sbc.example.com:8443",
        "ws_scheme": "wss",
        "ws_port": 0,
        "sip_domain": "example.com",
        "ice_servers": [
            {"urls": ["stun:stun.example.com"]},
            {"urls": ["turn:turn.example.com"], "username": "u", "credential": "c"},
        ],
    }


def test_sip_domain_defaults_to_a_specific_sip_address(tmp_path: Path) -> None:
    assert phone_settings(_config(tmp_path, sip_listen="192.0.2.7:5060"))["sip_domain"] == (
        "192.0.2.7"
    )
    assert phone_settings(_config(tmp_path, sip_listen="[2001:db8::7]:5060"))["sip_domain"] == (
        "[2001:db8::7]"
    )


def test_without_web_there_is_no_responder(tmp_path: Path) -> None:
    config = _config(tmp_path)
    bare = load_config_text(
        '[interfaces.ws]\ntype = "websocket"\n[pbx]\naddress = "127.0.0.1:9"\n', source="bare.toml"
    )
    assert config.web is not None and bare.web is None
    with pytest.raises(WebError, match=r"bare\.toml: no \[web\] table"):
        web_endpoints(bare, files=FILES)


def test_a_folder_without_index_is_refused(tmp_path: Path) -> None:
    (tmp_path / "phone.js").write_text("//", encoding="utf-8")
    with pytest.raises(WebError, match=r"index\.html is missing"):
        load_static(tmp_path)


def test_the_package_holds_the_phone() -> None:
    files = load_static(static_folder())
    assert {"index.html", "phone.js", "phone.css"} <= set(files)
    index = files["index.html"].decode("utf-8")
    for element in (
        "user",
        "password",
        "register",
        "target",
        "call",
        "answer",
        "reject",
        "hangup",
        "mute",
        "keypad",
        "status",
        "call-state",
        "stats",
    ):
        assert f'id="{element}"' in index, element
    assert index.count("data-digit=") == 12
    assert "window.rtcgwPhone" in files["phone.js"].decode("utf-8")


def test_the_package_holds_jssip() -> None:
    files = load_static(static_folder())
    assert JSSIP_FILE in files, (
        f"{JSSIP_FILE} is missing from the package: run `make web` (npm ci in web/ and a copy)"
    )
    assert b"JsSIP" in files[JSSIP_FILE][:400]
