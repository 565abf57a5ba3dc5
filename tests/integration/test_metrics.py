"""Bad input and worker deaths are counted, and /metrics sums every process's counts.

One gateway (two workers, ``--metrics 127.0.0.1:0``) gets an oversize datagram, a
malformed request with a Call-ID, a binary WebSocket frame that is not text, a handshake
without the ``sip`` subprotocol, and a SIGKILL on a worker; /metrics, scraped over HTTP,
shows each once. Values are written by the process where the event happened, so the test
scrapes until they appear (bounded), then checks them exactly.
"""

from __future__ import annotations

import os
import signal
import urllib.error
import urllib.request

import pytest
import trio
from prometheus_client.parser import text_string_to_metric_families
from trio_websocket import ConnectionClosed, ConnectionRejected, open_websocket

from tests.integration.gateway import RunningGateway, run_gateway
from tests.integration.sipclient import UdpPeer, options

MAX_BYTES = 4000
ARGS = (
    "--pbx",
    "127.0.0.1:9",
    "--ws",
    "127.0.0.1:0",
    "--sip",
    "127.0.0.1:0",
    "--max-message-bytes",
    str(MAX_BYTES),
)

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def _get(url: str) -> tuple[int, str, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as reply:
            body = reply.read().decode()
            return reply.status, reply.headers.get("Content-Type", ""), body
    except urllib.error.HTTPError as error:
        return error.code, error.headers.get("Content-Type", ""), error.read().decode()


async def _http(gateway: RunningGateway, path: str) -> tuple[int, str, str]:
    host, port = gateway.address("HTTP")
    return await trio.to_thread.run_sync(_get, f"http://{host}:{port}{path}")


async def _scrape(gateway: RunningGateway) -> Samples:
    status, content_type, body = await _http(gateway, "/metrics")
    assert status == 200
    assert content_type.startswith("text/plain; version=0.0.4")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(body)
        for sample in family.samples
    }


def _value(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset(labels.items())))


async def test_bad_input_and_a_restart_are_counted_and_served() -> None:
    expected = {
        ("rtcgw_sip_messages_dropped_total", ("reason", "oversize")): 1.0,
        ("rtcgw_sip_messages_dropped_total", ("reason", "unparseable")): 1.0,
        ("rtcgw_sip_messages_dropped_total", ("reason", "no_call_id")): 0.0,
        ("rtcgw_websocket_connections_closed_total", ("reason", "binary_not_text")): 1.0,
        ("rtcgw_websocket_connections_closed_total", ("reason", "handshake_refused")): 1.0,
        ("rtcgw_worker_restarts_total", None): 1.0,
        ("rtcgw_workers_up", None): 2.0,
        ("rtcgw_calls_active", None): 0.0,
    }
    with trio.fail_after(90):
        async with run_gateway(ARGS) as gateway:
            assert (await _http(gateway, "/healthz"))[0] == 200
            peer = await UdpPeer.open()
            with peer.sock:
                await peer.send(b"OPTIONS " + b"x" * (MAX_BYTES + 100), gateway.address("UDP"))
                broken = options("gw@127.0.0.1", via=peer.via, call_id="bad-1").replace(
                    b"CSeq: 1 OPTIONS", b"CSeq: one OPTIONS"
                )
                await peer.send(broken, gateway.address("UDP"))
                assert (await peer.receive_raw()).startswith(b"SIP/2.0 400 ")

            host, port = gateway.address("WS")
            async with open_websocket(host, port, "/", use_ssl=False, subprotocols=["sip"]) as ws:
                await ws.send_message(b"\xff\xfe\x00binary")
                with pytest.raises(ConnectionClosed) as closed:
                    await ws.get_message()
                assert closed.value.reason.code == 1003
            with pytest.raises(ConnectionRejected):
                async with open_websocket(host, port, "/", use_ssl=False, subprotocols=["chat"]):
                    pass

            pids = gateway.worker_pids()
            os.kill(pids[0], signal.SIGKILL)
            await gateway.wait_for("worker.ready", count=3)

            while True:
                samples = await _scrape(gateway)
                seen = {
                    key: _value(samples, key[0], **dict([key[1]] if key[1] else []))
                    for key in expected
                }
                if seen == expected:
                    break
                await trio.sleep(0.1)
            assert _value(samples, "rtcgw_sip_messages_dropped_total", reason="worker_down") == 0
            status, _, body = await _http(gateway, "/healthz")
            assert (status, body) == (200, "ok\n")
            assert (await _http(gateway, "/nothing-here"))[0] == 404
