"""The running gateway: listeners, dispatch to workers, restarts and stop, on loopback.

Each test starts ``rtcgw run`` as a real process (two workers) with a PBX address nobody
listens on: these tests exercise what the gateway answers itself.
"""

from __future__ import annotations

import os
import signal

import pytest
import trio
from trio_websocket import ConnectionClosed, ConnectionRejected, open_websocket

from rtcgw.sip import Response
from tests.integration.gateway import RunningGateway, run_gateway
from tests.integration.sipclient import UdpPeer, WsPeer, options

ARGS = ("--pbx", "127.0.0.1:9", "--ws", "127.0.0.1:0", "--sip", "127.0.0.1:0")


async def _options_over_udp(gateway: RunningGateway, call_id: str) -> Response:
    peer = await UdpPeer.open()
    with peer.sock:
        await peer.send(
            options("gw@127.0.0.1", via=peer.via, call_id=call_id), gateway.address("UDP")
        )
        reply = await peer.receive()
    assert isinstance(reply, Response)
    return reply


async def test_options_over_udp_is_answered_by_a_worker() -> None:
    with trio.fail_after(60):
        async with run_gateway(ARGS) as gateway:
            reply = await _options_over_udp(gateway, "ping-1")
            assert reply.status == 200
            assert reply.call_id == "ping-1"
            assert reply.cseq.method == "OPTIONS"


async def test_options_over_websocket_and_crlf_keepalive() -> None:
    with trio.fail_after(60):
        async with run_gateway(ARGS) as gateway:
            host, port = gateway.address("WS")
            async with open_websocket(host, port, "/", use_ssl=False, subprotocols=["sip"]) as ws:
                assert ws.subprotocol == "sip"
                peer = WsPeer(ws)
                # RFC 5626 section 4.4.1: a double-CRLF ping gets a single-CRLF pong.
                await ws.send_message("\r\n\r\n")
                assert await ws.get_message() == "\r\n"
                await peer.send(options("gw@127.0.0.1", via=peer.via, call_id="ws-ping"))
                reply = await peer.receive()
                assert isinstance(reply, Response)
                assert (reply.status, reply.call_id) == (200, "ws-ping")


async def test_websocket_handshake_without_sip_subprotocol_is_refused() -> None:
    with trio.fail_after(60):
        async with run_gateway(ARGS) as gateway:
            host, port = gateway.address("WS")
            with pytest.raises(ConnectionRejected) as rejected:
                async with open_websocket(host, port, "/", use_ssl=False, subprotocols=["chat"]):
                    pass
            assert rejected.value.status_code == 400


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        (b"\xff\xfe\x00binary", 1003),  # RFC 6455 7.4.1: data it cannot accept
        ("OPTIONS " + "x" * 70000, 1009),  # over max_message_bytes: message too big
    ],
    ids=["binary-not-text", "oversize"],
)
async def test_bad_websocket_messages_close_only_that_connection(
    payload: bytes | str, code: int
) -> None:
    with trio.fail_after(60):
        async with run_gateway(ARGS) as gateway:
            host, port = gateway.address("WS")
            async with open_websocket(host, port, "/", use_ssl=False, subprotocols=["sip"]) as good:
                async with open_websocket(
                    host, port, "/", use_ssl=False, subprotocols=["sip"]
                ) as bad:
                    await bad.send_message(payload)
                    with pytest.raises(ConnectionClosed) as closed:
                        await bad.get_message()
                    assert closed.value.reason.code == code
                peer = WsPeer(good)
                await peer.send(options("gw@127.0.0.1", via=peer.via, call_id="still-here"))
                reply = await peer.receive()
                assert isinstance(reply, Response) and reply.status == 200


async def test_malformed_request_with_a_call_id_gets_400() -> None:
    with trio.fail_after(60):
        async with run_gateway(ARGS) as gateway:
            peer = await UdpPeer.open()
            with peer.sock:
                broken = options("gw@127.0.0.1", via=peer.via, call_id="bad-1").replace(
                    b"CSeq: 1 OPTIONS", b"CSeq: one OPTIONS"
                )
                await peer.send(broken, gateway.address("UDP"))
                # The 400 copies the request's CSeq as it was (RFC 3261 8.2.6.2), so it is
                # itself unparseable: read it as bytes.
                reply = await peer.receive_raw()
            assert reply.startswith(b"SIP/2.0 400 ")
            assert b"\r\nCall-ID: bad-1\r\n" in reply


async def test_killed_worker_is_restarted_and_the_other_keeps_serving() -> None:
    with trio.fail_after(90):
        async with run_gateway(ARGS) as gateway:
            pids = gateway.worker_pids()
            assert sorted(pids) == [0, 1]
            os.kill(pids[0], signal.SIGKILL)
            await gateway.wait_for("worker.exited", where=lambda e: e["worker"] == 0)
            await gateway.wait_for("worker.ready", count=3)
            assert gateway.worker_pids()[0] != pids[0]
            assert gateway.worker_pids()[1] == pids[1]
            # Call-IDs spread over both workers: every OPTIONS is answered again.
            for n in range(8):
                reply = await _options_over_udp(gateway, f"after-restart-{n}")
                assert reply.status == 200


async def test_sigterm_stops_the_gateway_and_its_workers() -> None:
    with trio.fail_after(60):
        async with run_gateway(ARGS) as gateway:
            pids = gateway.worker_pids()
            gateway.process.send_signal(signal.SIGTERM)
            assert await gateway.process.wait() == 0
            assert gateway.matching("gateway.stopped")
            for pid in pids.values():
                with pytest.raises(ProcessLookupError):
                    os.kill(pid, 0)


async def test_hung_worker_is_killed_and_restarted() -> None:
    # SIGSTOP makes a worker hang: it answers no heartbeat, so the supervisor kills it
    # (SIGKILL reaches a stopped process) and starts a new one.
    with trio.fail_after(90):
        async with run_gateway(ARGS) as gateway:
            pids = gateway.worker_pids()
            os.kill(pids[1], signal.SIGSTOP)
            (hung,) = await gateway.wait_for("worker.unresponsive")
            assert (hung["worker"], hung["pid"]) == (1, pids[1])
            await gateway.wait_for("worker.ready", count=3)
            assert gateway.worker_pids()[1] != pids[1]
            for n in range(6):
                reply = await _options_over_udp(gateway, f"after-hang-{n}")
                assert reply.status == 200
