"""The supervisor's HTTP server on loopback: routes, keep-alive, bad and slow clients."""

from __future__ import annotations

import socket

import trio

from rtcgw.observability import metrics
from rtcgw.supervisor import http
from rtcgw.supervisor.http import HttpResponse, gateway_endpoints, serve_http


def _listening() -> socket.socket:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    sock.setblocking(False)
    return sock


async def _exchange(port: int, data: bytes) -> bytes:
    """Send ``data`` and read until the server closes the connection."""
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    async with stream:
        await stream.send_all(data)
        received = b""
        while chunk := await stream.receive_some(65536):
            received += chunk
    return received


def _get(path: str, *, close: bool = True) -> bytes:
    connection = b"Connection: close\r\n" if close else b""
    return b"GET " + path.encode() + b" HTTP/1.1\r\nHost: x\r\n" + connection + b"\r\n"


async def _serve(nursery: trio.Nursery, ready: list[bool]) -> int:
    sock = _listening()
    nursery.start_soon(serve_http, sock, gateway_endpoints(lambda: ready[0]))
    return int(sock.getsockname()[1])


async def test_metrics_healthz_and_not_found() -> None:
    metrics.WORKER_RESTARTS.inc(0)  # make sure the default registry has our metrics
    ready = [True]
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            port = await _serve(nursery, ready)
            reply = await _exchange(port, _get("/metrics"))
            assert reply.startswith(b"HTTP/1.1 200 ")
            assert b"Content-Type: text/plain; version=0.0.4" in reply
            assert b"rtcgw_worker_restarts_total" in reply
            reply = await _exchange(port, _get("/healthz"))
            assert reply.startswith(b"HTTP/1.1 200 ") and reply.endswith(b"\r\n\r\nok\n")
            ready[0] = False
            assert (await _exchange(port, _get("/healthz"))).startswith(b"HTTP/1.1 503 ")
            assert (await _exchange(port, _get("/other"))).startswith(b"HTTP/1.1 404 ")
            post = b"POST /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
            assert (await _exchange(port, post)).startswith(b"HTTP/1.1 404 ")
            nursery.cancel_scope.cancel()


async def test_keep_alive_serves_requests_in_turn() -> None:
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            port = await _serve(nursery, [True])
            reply = await _exchange(port, _get("/healthz", close=False) + _get("/healthz"))
            assert reply.count(b"HTTP/1.1 200 ") == 2
            nursery.cancel_scope.cancel()


async def test_bad_and_oversize_requests_get_an_error_and_others_go_on() -> None:
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            port = await _serve(nursery, [True])
            assert (await _exchange(port, b"NOT HTTP AT ALL\r\n\r\n")).startswith(b"HTTP/1.1 400 ")
            huge_head = b"GET / HTTP/1.1\r\nX: " + b"a" * (http.MAX_HEAD_BYTES * 2) + b"\r\n\r\n"
            assert (await _exchange(port, huge_head)).startswith(b"HTTP/1.1 431 ")
            body = b"a" * (http.MAX_BODY_BYTES + 1)
            big = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(body) + body
            assert (await _exchange(port, big)).startswith(b"HTTP/1.1 413 ")
            assert (await _exchange(port, _get("/healthz"))).startswith(b"HTTP/1.1 200 ")
            nursery.cancel_scope.cancel()


async def test_idle_connection_is_closed_after_the_timeout(autojump_clock: object) -> None:
    # The autojump clock skips the idle wait; a second client is served meanwhile.
    with trio.fail_after(http.REQUEST_TIMEOUT_S * 3):
        async with trio.open_nursery() as nursery:
            port = await _serve(nursery, [True])
            idle = await trio.open_tcp_stream("127.0.0.1", port)
            async with idle:
                assert (await _exchange(port, _get("/healthz"))).startswith(b"HTTP/1.1 200 ")
                assert await idle.receive_some(100) == b""
            nursery.cancel_scope.cancel()


async def test_a_failing_responder_gives_500_and_the_server_goes_on() -> None:
    calls = 0

    async def respond(method: str, target: str) -> HttpResponse:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("boom")
        return HttpResponse(200, b"fine\n")

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            sock = _listening()
            nursery.start_soon(serve_http, sock, respond)
            port = int(sock.getsockname()[1])
            assert (await _exchange(port, _get("/"))).startswith(b"HTTP/1.1 500 ")
            assert (await _exchange(port, _get("/"))).endswith(b"fine\n")
            nursery.cancel_scope.cancel()
