"""SIP over TCP and TLS, and WebSocket over TLS (wss), through the running gateway."""

from __future__ import annotations

import ssl
from pathlib import Path

import trio
from trio_websocket import open_websocket

from rtcgw.sip import Response, parse_message
from rtcgw.sip.framing import KeepAlivePing, StreamFramer
from rtcgw.supervisor.tls import make_self_signed
from tests.integration.browser import browser
from tests.integration.gateway import run_gateway
from tests.integration.sipclient import WsPeer, options
from tests.integration.sipp import finish, free_udp_port, start_sipp

ARGS = ("--pbx", "127.0.0.1:9", "--ws", "127.0.0.1:0", "--sip", "127.0.0.1:0")


async def _read_event(stream: trio.abc.Stream, framer: StreamFramer) -> bytes | KeepAlivePing:
    while (event := framer.next_event()) is None:
        chunk = await stream.receive_some(65536)
        assert chunk, "the gateway closed the connection"
        framer.feed(bytes(chunk))
    return event


async def _options_over_stream(stream: trio.abc.Stream, via: str, call_id: str) -> Response:
    # RFC 5626 section 4.4.1: a CRLF CRLF ping on a stream gets a single CRLF pong. Read it
    # raw: a framer skips pongs by design.
    await stream.send_all(b"\r\n\r\n")
    assert await stream.receive_some(2) == b"\r\n"
    framer = StreamFramer()
    await stream.send_all(options("gw@127.0.0.1", via=via, call_id=call_id))
    reply = await _read_event(stream, framer)
    assert isinstance(reply, bytes)
    message = parse_message(reply)
    assert isinstance(message, Response)
    return message


async def test_options_over_tcp_with_keepalive() -> None:
    with trio.fail_after(60):
        async with run_gateway(ARGS) as gateway:
            host, port = gateway.address("TCP")
            stream = await trio.open_tcp_stream(host, port)
            async with stream:
                local = stream.socket.getsockname()
                reply = await _options_over_stream(stream, f"TCP {local[0]}:{local[1]}", "tcp-ping")
            assert (reply.status, reply.call_id) == (200, "tcp-ping")


async def test_options_over_sip_tls_and_wss(tmp_path: Path) -> None:
    pair = make_self_signed(tmp_path / "tls")
    config = tmp_path / "gateway.toml"
    config.write_text(
        f"""
[interfaces.wss]
type = "websocket"
transport = "wss"
listen = "127.0.0.1:0"
tls_certificate = "{pair.certificate}"
tls_key = "{pair.key}"

[interfaces.sip_udp]
type = "sip"
transport = "udp"
listen = "127.0.0.1:0"

[interfaces.sip_tls]
type = "sip"
transport = "tls"
listen = "127.0.0.1:0"
tls_certificate = "{pair.certificate}"
tls_key = "{pair.key}"

[pbx]
address = "127.0.0.1:9"
""",
        encoding="utf-8",
    )
    client_tls = ssl.create_default_context(cafile=str(pair.certificate))
    with trio.fail_after(60):
        async with run_gateway(("-c", str(config))) as gateway:
            host, port = gateway.address("TLS")
            tcp = await trio.open_tcp_stream(host, port)
            stream = trio.SSLStream(tcp, client_tls, server_hostname="localhost")
            async with stream:
                reply = await _options_over_stream(stream, "TLS client.invalid", "tls-ping")
            assert (reply.status, reply.call_id) == (200, "tls-ping")

            host, port = gateway.address("WSS")
            async with open_websocket(
                host, port, "/", use_ssl=client_tls, subprotocols=["sip"]
            ) as ws:
                peer = WsPeer(ws)
                await peer.send(options("gw@127.0.0.1", via="WSS a.invalid", call_id="wss"))
                answer = await peer.receive()
                assert isinstance(answer, Response)
                assert (answer.status, answer.call_id) == (200, "wss")


async def test_call_to_a_pbx_over_tcp() -> None:
    # The gateway opens the TCP connection toward the PBX itself (RFC 3261 18.1.1) and
    # reads the answers, and the PBX's BYE-less flow, on that same connection.
    pbx_port = free_udp_port()
    args = (
        "--pbx",
        f"sip:127.0.0.1:{pbx_port};transport=tcp",
        "--ws",
        "127.0.0.1:0",
        "--sip",
        "127.0.0.1:0",
    )
    with trio.fail_after(60):
        sipp = await start_sipp("-t", "t1", "-sn", "uas", "-p", str(pbx_port), "-m", "1")
        async with run_gateway(args) as gateway, browser(gateway.address("WS"), "alice") as alice:
            call, final = await alice.invite("bob")
            assert final.status == 200, final
            await alice.ack(call)
            assert (await alice.bye(call)).status == 200
        assert await finish(sipp) == 0
