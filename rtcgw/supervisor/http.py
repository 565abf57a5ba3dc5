"""The supervisor's small HTTP/1.1 server: ``/metrics`` and ``/healthz``.

h11 does the HTTP; this module does the I/O, in trio. ``serve_http`` accepts on one
listening socket, with one nursery (``trio.serve_listeners``'s) for its connections. Each
connection serves requests one after the other (keep-alive), each within
``REQUEST_TIMEOUT_S`` (the wait for it included, so an idle or slow client is dropped); a
request head over ``MAX_HEAD_BYTES`` or a body over ``MAX_BODY_BYTES`` is answered with an
error and the connection closed. A failing connection is logged and ends alone.

What to answer is a ``Responder``: ``gateway_endpoints`` gives ``GET /metrics`` (the
Prometheus text format of ``observability.metrics.registry()``), ``GET /healthz`` (200
``ok`` when every worker is ready, else 503) and 404 for anything else.
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import h11
import trio
from prometheus_client import generate_latest

from rtcgw.observability import metrics
from rtcgw.observability.logging import get_logger

__all__ = [
    "MAX_BODY_BYTES",
    "MAX_HEAD_BYTES",
    "METRICS_CONTENT_TYPE",
    "REQUEST_TIMEOUT_S",
    "HttpResponse",
    "Responder",
    "gateway_endpoints",
    "serve_http",
]

log = get_logger()

MAX_HEAD_BYTES = 8192
MAX_BODY_BYTES = 4096
REQUEST_TIMEOUT_S = 10.0
METRICS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_TEXT = "text/plain; charset=utf-8"
_LINGER_S = 1.0
_LINGER_BYTES = 65536
_SERVER = b"rtcgw"


@dataclass(frozen=True, slots=True)
class HttpResponse:
    """A complete response: status, body, its content type and any further headers."""

    status: int
    body: bytes
    content_type: str = _TEXT
    headers: tuple[tuple[str, str], ...] = ()


#: Answers one request, given its method and target (path and query).
Responder = Callable[[str, str], Awaitable[HttpResponse]]


def gateway_endpoints(ready: Callable[[], bool]) -> Responder:
    """The supervisor's endpoints; ``ready`` says whether every worker is ready."""

    async def respond(method: str, target: str) -> HttpResponse:
        path = target.partition("?")[0]
        if method == "GET" and path == "/metrics":
            body = await trio.to_thread.run_sync(_exposition)
            return HttpResponse(200, body, METRICS_CONTENT_TYPE)
        if method == "GET" and path == "/healthz":
            if ready():
                return HttpResponse(200, b"ok\n")
            return HttpResponse(503, b"workers not ready\n")
        return HttpResponse(404, b"not found\n")

    return respond


def _exposition() -> bytes:
    # Reads every process's metric files: a thread, so the supervisor's loop never waits.
    return generate_latest(metrics.registry())


async def serve_http(
    sock: socket.socket, respond: Responder, *, tls: ssl.SSLContext | None = None
) -> None:
    """Serve HTTP on ``sock`` (bound and listening) until cancelled; HTTPS with ``tls``."""
    listener: trio.abc.Listener[trio.abc.Stream] = trio.SocketListener(
        trio.socket.from_stdlib_socket(sock)
    )
    if tls is not None:
        # The handshake happens on the first read, so REQUEST_TIMEOUT_S bounds it too.
        listener = trio.SSLListener(listener, tls, https_compatible=True)

    async def handler(stream: trio.abc.Stream) -> None:
        try:
            await serve_connection(stream, respond)
        except (trio.BrokenResourceError, trio.ClosedResourceError, ssl.SSLError, OSError) as exc:
            log.debug("http.connection.broken", error=str(exc))
        except Exception:
            log.exception("http.connection.failed")
        finally:
            with trio.CancelScope(shield=True):
                await _close(stream)

    await trio.serve_listeners(handler, [listener])


async def _close(stream: trio.abc.Stream) -> None:
    """Close after our last response without losing it: a close with unread input would
    reset the connection, and the peer could lose the response. So half-close, read what
    is left (bounded in time and size), then close."""
    with trio.move_on_after(_LINGER_S):
        try:
            if isinstance(stream, trio.abc.HalfCloseableStream):
                await stream.send_eof()
            left = _LINGER_BYTES
            while left > 0 and (chunk := await stream.receive_some(left)):
                left -= len(chunk)
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            pass
    await trio.aclose_forcefully(stream)


async def serve_connection(stream: trio.abc.Stream, respond: Responder) -> None:
    """Serve the requests of one connection until it closes, errs or times out."""
    connection = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEAD_BYTES)
    while True:
        with trio.move_on_after(REQUEST_TIMEOUT_S):
            if not await _one_request(stream, connection, respond):
                return
            if connection.our_state is h11.DONE and connection.their_state is h11.DONE:
                connection.start_next_cycle()
                continue
            return
        return  # timed out


async def _one_request(
    stream: trio.abc.Stream, connection: h11.Connection, respond: Responder
) -> bool:
    """Read one request and answer it; False when the connection is over."""
    try:
        request, body_bytes = None, 0
        while True:
            event = connection.next_event()
            if event is h11.NEED_DATA:
                connection.receive_data(bytes(await stream.receive_some(MAX_HEAD_BYTES)))
            elif isinstance(event, h11.Request):
                request = event
            elif isinstance(event, h11.Data):
                body_bytes += len(event.data)
                if body_bytes > MAX_BODY_BYTES:
                    await _send(stream, connection, HttpResponse(413, b"too large\n"), close=True)
                    return False
            elif isinstance(event, h11.EndOfMessage) and request is not None:
                break
            else:  # ConnectionClosed, or PAUSED at the end of a closing cycle
                return False
    except h11.RemoteProtocolError as exc:
        if connection.our_state in (h11.IDLE, h11.SEND_RESPONSE):
            status = exc.error_status_hint
            await _send(stream, connection, HttpResponse(status, b"bad request\n"), close=True)
        return False
    method, target = request.method.decode("ascii"), request.target.decode("ascii", "replace")
    try:
        response = await respond(method, target)
    except Exception:
        log.exception("http.respond.failed", method=method, target=target)
        response = HttpResponse(500, b"internal error\n")
    await _send(stream, connection, response)
    return True


async def _send(
    stream: trio.abc.Stream,
    connection: h11.Connection,
    response: HttpResponse,
    *,
    close: bool = False,
) -> None:
    headers = [
        (b"Content-Type", response.content_type.encode("ascii")),
        (b"Content-Length", str(len(response.body)).encode("ascii")),
        (b"Server", _SERVER),
    ]
    headers.extend((name.encode("ascii"), text.encode("ascii")) for name, text in response.headers)
    if close:
        headers.append((b"Connection", b"close"))
    data = connection.send(h11.Response(status_code=response.status, headers=headers)) or b""
    data += connection.send(h11.Data(data=response.body)) or b""
    data += connection.send(h11.EndOfMessage()) or b""
    await stream.send_all(data)
