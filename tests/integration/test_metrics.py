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

import pytest
import trio
from trio_websocket import ConnectionClosed, ConnectionRejected, open_websocket

from tests.integration.common import http, scrape, value
from tests.integration.gateway import run_gateway
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


async def test_bad_input_and_a_restart_are_counted_and_served() -> None:
    expected = {
        ("rtcgw_sip_messages_dropped_total", ("reason", "oversize")): 1.0,
        ("rtcgw_sip_messages_dropped_total", ("reason", "unparseable")): 1.0,
        ("rtcgw_sip_messages_dropped_total", ("reason", "no_call_id")): 0.0,
        ("rtcgw_websocket_connections_closed_total", ("reason", "binary_not_text")): 1.0,
        ("rtcgw_websocket_connections_closed_total", ("reason", "handshake_refused")): 1.0,
        ("rtcgw_worker_restarts_total", None): 1.0,
        ("rtcgw_workers_up", None): 2.0,
        ("rtcgw_worker_calls_active", ("worker", "0")): 0.0,
        ("rtcgw_worker_calls_active", ("worker", "1")): 0.0,
    }
    with trio.fail_after(90):
        async with run_gateway(ARGS) as gateway:
            assert (await http(gateway, "/healthz"))[0] == 200
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
                samples = await scrape(gateway)
                seen = {
                    key: value(samples, key[0], **dict([key[1]] if key[1] else []))
                    for key in expected
                }
                if seen == expected:
                    break
                await trio.sleep(0.1)
            assert value(samples, "rtcgw_sip_messages_dropped_total", reason="worker_down") == 0
            status, _, body = await http(gateway, "/healthz")
            assert (status, body) == (200, "ok\n")
            assert (await http(gateway, "/nothing-here"))[0] == 404
