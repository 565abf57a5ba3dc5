"""The web phone through ``rtcgw run`` with ``[web]``: its files and settings over HTTPS,
and the page loading JsSIP in headless Chromium."""

from __future__ import annotations

import json
import os
import re
import shutil
import ssl
from pathlib import Path

import h11
import trio

from rtcgw.supervisor.tls import make_self_signed
from tests.integration.gateway import RunningGateway, run_gateway

CHROMIUM = "/usr/bin/chromium"
CONFIG = """
[interfaces.wss]
type = "websocket"
transport = "wss"
listen = "127.0.0.1:0"
tls_certificate = "{cert}"
tls_key = "{key}"

[interfaces.sip]
type = "sip"
listen = "127.0.0.1:0"

[web]
listen = "127.0.0.1:0"
{extra}

[pbx]
address = "127.0.0.1:9"
"""


async def _get(
    host: str, port: int, target: str, tls: ssl.SSLContext
) -> tuple[int, dict[str, str], bytes]:
    """One GET over a fresh TLS connection: status, headers (lower-case names), body."""
    tcp = await trio.open_tcp_stream(host, port)
    stream = trio.SSLStream(tcp, tls, server_hostname="localhost")
    async with stream:
        client = h11.Connection(h11.CLIENT)
        request = h11.Request(method="GET", target=target, headers=[("Host", f"localhost:{port}")])
        await stream.send_all(client.send(request) + client.send(h11.EndOfMessage()))
        status, headers, body = 0, {}, b""
        for _ in range(10_000):
            event = client.next_event()
            if event is h11.NEED_DATA:
                client.receive_data(await stream.receive_some(65536))
            elif isinstance(event, h11.Response):
                status = event.status_code
                headers = {k.decode().lower(): v.decode() for k, v in event.headers}
            elif isinstance(event, h11.Data):
                body += event.data
            elif isinstance(event, h11.EndOfMessage):
                return status, headers, body
        raise AssertionError(f"no complete response to GET {target}")


def _write_config(tmp_path: Path, extra: str = "") -> tuple[Path, Path]:
    pair = make_self_signed(tmp_path / "tls")
    config = tmp_path / "gateway.toml"
    config.write_text(
        CONFIG.format(cert=pair.certificate, key=pair.key, extra=extra), encoding="utf-8"
    )
    return config, pair.certificate


def _web_address(gateway: RunningGateway) -> tuple[str, int]:
    return gateway.address("HTTPS")


async def test_phone_files_and_settings_over_https(tmp_path: Path) -> None:
    extra = '[[web.ice_servers]]\nurls = "stun:stun.example.com:3478"'
    config, certificate = _write_config(tmp_path, extra)
    tls = ssl.create_default_context(cafile=str(certificate))
    with trio.fail_after(60):
        async with run_gateway(("-c", str(config)), workers=1) as gateway:
            host, port = _web_address(gateway)
            wss_port = gateway.address("WSS")[1]

            status, headers, body = await _get(host, port, "/phone/", tls)
            assert (status, headers["content-type"]) == (200, "text/html; charset=utf-8")
            assert b'id="register"' in body
            assert b'src="vendor/jssip.min.js"' in body

            status, headers, body = await _get(host, port, "/phone/phone.js", tls)
            assert (status, headers["content-type"]) == (200, "text/javascript; charset=utf-8")
            assert b"window.rtcgwPhone" in body

            status, headers, body = await _get(host, port, "/phone/vendor/jssip.min.js", tls)
            assert status == 200, "vendor/jssip.min.js is not served: run `make web`"
            assert b"JsSIP" in body[:400]
            print(f"jssip.min.js: {len(body)} bytes")

            status, headers, body = await _get(host, port, "/phone/config.json", tls)
            assert (status, headers["content-type"]) == (200, "application/json")
            assert headers["cache-control"] == "no-store"
            settings = json.loads(body)
            # The bound port of the wss interface, not the configured port 0.
            assert settings["ws_scheme"] == "wss"
            assert settings["ws_port"] == wss_port
            assert settings["sip_domain"] == "127.0.0.1"
            assert settings["ice_servers"] == [{"urls": ["stun:stun.example.com:3478"]}]

            status, _, _ = await _get(host, port, "/phone/../../pyproject.toml", tls)
            assert status == 404
            started = gateway.matching("listener.started", interface="web")
            assert started and started[0]["path"] == "/phone/"


async def test_chromium_loads_jssip(tmp_path: Path) -> None:
    # make test installs Debian's chromium: its absence is a failure, not a skip.
    assert os.access(CHROMIUM, os.X_OK), f"no Chromium at {CHROMIUM}"
    config, _ = _write_config(tmp_path)
    profile = tmp_path / "chromium-profile"
    with trio.fail_after(90):
        async with run_gateway(("-c", str(config)), workers=1) as gateway:
            host, port = _web_address(gateway)
            result = await trio.run_process(
                [
                    CHROMIUM,
                    "--headless=new",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--ignore-certificate-errors",
                    f"--user-data-dir={profile}",
                    # Lets the page's fetch of config.json finish before the DOM is dumped.
                    "--virtual-time-budget=10000",
                    "--dump-dom",
                    f"https://{host}:{port}/phone/",
                ],
                capture_stdout=True,
                capture_stderr=True,
                check=False,
            )
    shutil.rmtree(profile, ignore_errors=True)
    dom = result.stdout.decode("utf-8", "replace")
    status = re.search(r'<p id="status"[^>]*>([^<]*)</p>', dom)
    assert status is not None, f"no #status in the page (exit {result.returncode}): {dom[:500]}"
    print(f"#status: {status[1]}")
    assert re.fullmatch(r"jssip ok \d+\.\d+\.\d+; ready", status[1]), status[1]
    error = re.search(r'<p id="error"([^>]*)>([^<]*)</p>', dom)
    assert error is not None and "hidden" in error[1], error
