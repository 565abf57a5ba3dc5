"""Pieces the integration tests share: gateway arguments, named SDP bodies, a registered
browser."""

from __future__ import annotations

import re
import secrets
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import trio
from prometheus_client.parser import text_string_to_metric_families

from rtcgw.sip import Request, Response
from tests.integration.browser import Browser, browser
from tests.integration.gateway import RunningGateway, run_gateway
from tests.integration.sipp import finish, start_scenario

DTMF = "application/dtmf-relay"


def args(pbx_port: int) -> tuple[str, ...]:
    """``rtcgw run`` arguments for the signaling tests: the handbook's configuration for a
    PBX at ``pbx_port`` (WS and SIP on loopback port 0) without its media actions.

    These tests follow SIP messages and check which SDP body reached which peer by its
    session name; with media anchored the gateway writes every body itself (that is
    tested in test_media.py), so here the bodies pass through unchanged.
    """
    command = [
        sys.executable, "-m", "rtcgw", "config", "--pbx", f"127.0.0.1:{pbx_port}",
        "--ws", "127.0.0.1:0", "--sip", "127.0.0.1:0",
    ]  # fmt: skip
    text = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    text = "".join(line for line in text.splitlines(True) if not _MEDIA_ACTION.search(line))
    # A rule keeps at least one action: dialog handling is what the rules do anyway.
    text = text.replace("actions = [\n]", 'actions = [\n  { action = "dialog_handling" },\n]')
    path = Path(tempfile.mkdtemp(prefix="rtcgw-signaling-")) / "gateway.toml"
    path.write_text(text, encoding="utf-8")
    return ("-c", str(path))


_MEDIA_ACTION = re.compile(r'action = "(rtp_anchoring|force_rtp|force_srtp)"')


def sdp(name: str, direction: str = "sendrecv") -> bytes:
    """A small audio SDP whose session name (``s=``) tells the peers which one it is."""
    return (
        f"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns={name}\r\nt=0 0\r\n"
        f"m=audio 40000 RTP/AVP 0 8 101\r\nc=IN IP4 127.0.0.1\r\n"
        f"a=rtpmap:101 telephone-event/8000\r\na={direction}\r\n"
    ).encode()


def webrtc_sdp(setup: str = "actpass", *, ufrag: str = "brws") -> bytes:
    """A browser's audio SDP as Chrome shapes it (ICE, DTLS fingerprint, rtcp-mux, BUNDLE)
    for tests that carry it without sending media: ``setup`` is actpass in an offer,
    active in an answer."""
    fingerprint = ":".join(f"{b:02X}" for b in secrets.token_bytes(32))
    return (
        "v=0\r\no=- 4611731400430051336 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"
        "a=group:BUNDLE 0\r\na=msid-semantic: WMS\r\n"
        "m=audio 9 UDP/TLS/RTP/SAVPF 0 8 101\r\nc=IN IP4 0.0.0.0\r\n"
        "a=rtcp:9 IN IP4 0.0.0.0\r\n"
        "a=candidate:1 1 udp 2122260223 127.0.0.1 9 typ host generation 0\r\n"
        f"a=ice-ufrag:{ufrag}\r\na=ice-pwd:0123456789abcdefghijklmn\r\n"
        f"a=fingerprint:sha-256 {fingerprint}\r\na=setup:{setup}\r\na=mid:0\r\n"
        "a=sendrecv\r\na=rtcp-mux\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n"
        "a=rtpmap:101 telephone-event/8000\r\n"
    ).encode()


def sdp_lines(message: Request | Response) -> list[str]:
    """The lines of a message's SDP body."""
    return message.body.decode().splitlines()


def session_name(message: Request | Response) -> str:
    """The ``s=`` line of a message's SDP body."""
    for line in message.body.decode().splitlines():
        if line.startswith("s="):
            return line[2:]
    raise AssertionError(f"no SDP session name in {message!r}")


def only_our_via(message: Request, gateway: RunningGateway) -> None:
    """A request the browser gets has one Via, the gateway's: the PBX stays hidden."""
    vias = message.vias
    assert len(vias) == 1, vias
    assert (vias[0].host, vias[0].port) == gateway.address("WS"), vias[0]


async def register(alice: Browser, gateway: RunningGateway, pbx_port: int) -> None:
    """Register ``alice`` through the gateway with sipp's plain registrar on ``pbx_port``,
    and wait until the gateway's workers know the binding."""
    registrar = await start_scenario("registrar", "-p", str(pbx_port))
    registered = await alice.register()
    assert registered.status == 200
    assert await finish(registrar) == 0
    with trio.move_on_after(10):
        await gateway.wait_for("binding.changed", where=lambda e: e.get("user") == alice.user)
        return
    recent = "\n".join(str(e) for e in gateway.events[-30:])
    raise AssertionError(f"no binding.changed for {alice.user}; the gateway's log:\n{recent}")


def gateway_uri(gateway: RunningGateway) -> str:
    """The gateway's SIP listener as sipp's remote host argument."""
    host, port = gateway.address("UDP")
    return f"{host}:{port}"


@asynccontextmanager
async def registered_browser(
    pbx_port: int, user: str = "alice"
) -> AsyncIterator[tuple[RunningGateway, Browser]]:
    """A gateway toward the sipp PBX on ``pbx_port`` and a browser registered through it."""
    async with (
        run_gateway(args(pbx_port)) as gateway,
        browser(gateway.address("WS"), user) as alice,
    ):
        await register(alice, gateway, pbx_port)
        yield gateway, alice


Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def _get(url: str) -> tuple[int, str, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as reply:
            body = reply.read().decode()
            return reply.status, reply.headers.get("Content-Type", ""), body
    except urllib.error.HTTPError as error:
        return error.code, error.headers.get("Content-Type", ""), error.read().decode()


async def http(gateway: RunningGateway, path: str) -> tuple[int, str, str]:
    """GET ``path`` from the gateway's HTTP listener: (status, Content-Type, body)."""
    host, port = gateway.address("HTTP")
    return await trio.to_thread.run_sync(_get, f"http://{host}:{port}{path}")


async def scrape(gateway: RunningGateway) -> Samples:
    """Every sample /metrics serves, by name and labels."""
    status, content_type, body = await http(gateway, "/metrics")
    assert status == 200
    assert content_type.startswith("text/plain; version=0.0.4")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(body)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float | None:
    """One sample's value, None if /metrics did not serve it."""
    return samples.get((name, frozenset(labels.items())))
