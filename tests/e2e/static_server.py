"""A small HTTPS server of static files on loopback (trio + h11), for test pages the
gateway does not serve, such as the SIP.js phone in ``tests/e2e/sipjs/``.

Browsers load ES modules only over HTTP(S) with a JavaScript content type, and WebRTC's
getUserMedia needs a secure origin, so the page cannot be opened from a ``file:`` URL.
GET and HEAD only; a path that leaves the served folder is answered 404 like a missing
file. Each connection serves at most ``_REQUESTS_PER_CONNECTION`` requests and is closed
when idle for ``_IDLE_TIMEOUT_S``.
"""

from __future__ import annotations

import contextlib
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from urllib.parse import unquote, urlsplit

import h11
import trio

__all__ = ["CONTENT_TYPES", "resolve", "serve_static"]

CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
    ".map": "application/json",
    ".ts": "text/plain; charset=utf-8",
    ".md": "text/plain; charset=utf-8",
}
_IDLE_TIMEOUT_S = 30.0
_REQUESTS_PER_CONNECTION = 1000
_MAX_REQUEST_BYTES = 16384


def resolve(root: Path, target: str) -> Path | None:
    """The file under ``root`` that the request target names (``/`` is index.html), or
    None when there is none or the target leaves ``root``."""
    relative = unquote(urlsplit(target).path).lstrip("/")
    base = root.resolve()
    candidate = (base / relative).resolve()
    if candidate.is_dir():
        candidate = candidate / "index.html"
    if not candidate.is_relative_to(base) or not candidate.is_file():
        return None
    return candidate


@asynccontextmanager
async def serve_static(
    root: Path, *, certificate: Path, key: Path, host: str = "127.0.0.1"
) -> AsyncIterator[tuple[str, int]]:
    """Serve ``root`` over HTTPS on ``host`` (a free port); yields (host, port) and stops
    serving when the block ends."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(str(certificate), str(key))
    listeners = await trio.open_tcp_listeners(0, host=host)
    port = int(listeners[0].socket.getsockname()[1])
    secure = [trio.SSLListener(listener, context, https_compatible=True) for listener in listeners]

    async def handler(stream: trio.SSLStream[trio.SocketStream]) -> None:
        await _serve_connection(root, stream)

    async with trio.open_nursery() as nursery:
        await nursery.start(trio.serve_listeners, handler, secure)
        try:
            yield host, port
        finally:
            nursery.cancel_scope.cancel()


async def _serve_connection(root: Path, stream: trio.SSLStream[trio.SocketStream]) -> None:
    connection = h11.Connection(h11.SERVER, max_incomplete_event_size=_MAX_REQUEST_BYTES)
    # A browser that drops a connection, or fails the TLS handshake on a certificate it
    # does not trust, is no error of the server's.
    with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
        async with stream:
            for _ in range(_REQUESTS_PER_CONNECTION):
                request = await _next_request(connection, stream)
                if request is None:
                    return
                await _respond(root, connection, stream, request)
                if connection.our_state is not h11.DONE or connection.their_state is not h11.DONE:
                    return
                connection.start_next_cycle()


async def _next_request(
    connection: h11.Connection, stream: trio.SSLStream[trio.SocketStream]
) -> h11.Request | None:
    """The next request on the connection; None once the client closed it, went idle or
    sent something that is not HTTP/1.1 (which gets a 400 where it can)."""
    request: h11.Request | None = None
    with trio.move_on_after(_IDLE_TIMEOUT_S):
        while True:
            try:
                event = connection.next_event()
            except h11.RemoteProtocolError as error:
                await _send_plain(connection, stream, error.error_status_hint, "bad request\n")
                return None
            if event is h11.NEED_DATA:
                data = await stream.receive_some(65536)
                connection.receive_data(bytes(data))
            elif isinstance(event, h11.Request):
                request = event
            elif isinstance(event, h11.EndOfMessage):
                return request
            elif isinstance(event, h11.ConnectionClosed) or event is h11.PAUSED:
                return None
    return None


async def _respond(
    root: Path,
    connection: h11.Connection,
    stream: trio.SSLStream[trio.SocketStream],
    request: h11.Request,
) -> None:
    method = request.method.decode("ascii", errors="replace")
    if method not in ("GET", "HEAD"):
        await _send_plain(connection, stream, 405, "only GET and HEAD\n", allow="GET, HEAD")
        return
    path = resolve(root, request.target.decode("ascii", errors="replace"))
    if path is None:
        await _send_plain(connection, stream, 404, "not found\n")
        return
    body = path.read_bytes()
    content_type = CONTENT_TYPES.get(path.suffix, "application/octet-stream")
    headers = [
        ("Content-Type", content_type),
        ("Content-Length", str(len(body))),
        ("Cache-Control", "no-store"),
    ]
    await _send(connection, stream, h11.Response(status_code=200, headers=headers))
    await _send(connection, stream, h11.Data(data=b"" if method == "HEAD" else body))
    await _send(connection, stream, h11.EndOfMessage())


async def _send_plain(
    connection: h11.Connection,
    stream: trio.SSLStream[trio.SocketStream],
    status: int,
    text: str,
    *,
    allow: str | None = None,
) -> None:
    if connection.our_state not in (h11.IDLE, h11.SEND_RESPONSE):
        return
    body = text.encode()
    headers = [
        ("Content-Type", "text/plain; charset=utf-8"),
        ("Content-Length", str(len(body))),
        *([("Allow", allow)] if allow else []),
    ]
    await _send(connection, stream, h11.Response(status_code=status, headers=headers))
    await _send(connection, stream, h11.Data(data=body))
    await _send(connection, stream, h11.EndOfMessage())


async def _send(
    connection: h11.Connection, stream: trio.SSLStream[trio.SocketStream], event: h11.Event
) -> None:
    data = connection.send(event)
    if data:
        await stream.send_all(data)
