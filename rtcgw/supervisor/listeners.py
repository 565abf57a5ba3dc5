"""The supervisor's listeners: SIP over UDP, TCP/TLS and WebSocket (RFC 7118).

Listeners own the sockets and connections and do no SIP beyond framing: each complete
message goes to ``Gateway.inbound`` with where it came from, which picks a worker. Bad
input never takes a listener down: an oversize datagram is dropped, a stream that breaks
framing is closed, a WebSocket message over the limit closes that connection with 1009
(trio-websocket does it), and every such event is logged and counted.

WebSocket handshakes must offer the ``sip`` subprotocol (RFC 7118 section 4.1) or are
refused with 400. SIP messages may come in text or binary frames (RFC 7118 section 5.1);
a binary frame that is not SIP text closes the connection with 1003 (unsupported data).
A client's RFC 5626 double-CRLF keep-alive is answered with a single CRLF.
"""

from __future__ import annotations

import socket
import ssl
from typing import Protocol

import trio
from trio_websocket import ConnectionClosed, WebSocketRequest, WebSocketServer

from rtcgw.observability.logging import get_logger
from rtcgw.observability.metrics import (
    SIP_MESSAGES_DROPPED,
    SIP_STREAM_ERRORS,
    WEBSOCKET_ACTIVE,
    WEBSOCKET_CLOSED,
    DropReason,
    StreamError,
    WebSocketClose,
)
from rtcgw.sip.errors import SipParseError
from rtcgw.sip.framing import PONG, KeepAlivePing, StreamFramer
from rtcgw.sip.transport import Peer, Transport
from rtcgw.supervisor.connections import Connection, ConnectionTable

__all__ = ["Gateway", "serve_stream", "serve_udp", "serve_websocket", "unsupported_binary"]

log = get_logger()

#: RFC 6455 section 7.4.1: "1003 indicates that an endpoint is terminating the connection
#: because it has received a type of data it cannot accept".
CLOSE_UNSUPPORTED_DATA = 1003
#: RFC 6455 section 7.4.1: "1009 indicates that an endpoint is terminating the connection
#: because it has received a message that is too big for it to process".
CLOSE_MESSAGE_TOO_BIG = 1009
_PING = b"\r\n\r\n"
_WS_CONNECT_TIMEOUT_S = 10.0
_WS_DISCONNECT_TIMEOUT_S = 5.0


class Gateway(Protocol):
    """What listeners need from the supervisor."""

    connections: ConnectionTable
    max_message_bytes: int
    #: the whole node drains: new WebSocket clients are refused (503)
    draining: bool

    async def inbound(self, data: bytes, interface: str, source: Peer) -> None:
        """Hand one complete SIP message from ``source`` to a worker."""

    async def connection_closed(self, connection: Connection, reason: str) -> None:
        """A stream connection ended: tell the workers."""


def unsupported_binary(data: bytes) -> bool:
    """True for a binary WebSocket frame that cannot be a SIP message (not UTF-8 text)."""
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return True
    return False


async def serve_udp(gateway: Gateway, sock: socket.socket, interface: str) -> None:
    """Receive SIP datagrams on ``sock`` forever and hand them on."""
    udp = trio.socket.from_stdlib_socket(sock)
    limit = gateway.max_message_bytes
    while True:
        try:
            data, address = await udp.recvfrom(limit + 1)
        except ConnectionResetError:
            continue  # an ICMP port-unreachable for something we sent earlier
        if len(data) > limit:
            SIP_MESSAGES_DROPPED.labels(DropReason.OVERSIZE.value).inc()
            log.warning("sip.udp.oversize", interface=interface, source=address[0], bytes=len(data))
            continue
        if not data.strip(b"\r\n\x00 "):
            continue  # RFC 5626 keep-alive (or padding): nothing to answer over UDP
        await gateway.inbound(data, interface, Peer(Transport.UDP, address[0], address[1]))


async def serve_websocket(
    gateway: Gateway,
    sock: socket.socket,
    interface: str,
    transport: Transport,
    tls: ssl.SSLContext | None,
    *,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Accept SIP-over-WebSocket connections on ``sock`` (a listening TCP socket)."""
    listener: trio.SocketListener | trio.SSLListener[trio.SocketStream]
    listener = trio.SocketListener(trio.socket.from_stdlib_socket(sock))
    if tls is not None:
        listener = trio.SSLListener(listener, tls, https_compatible=False)

    async def handler(request: WebSocketRequest) -> None:
        # An exception escaping a handler would end the whole server (trio-websocket runs
        # handlers in its nursery), so each connection's failures stay here.
        try:
            closed_as = await _websocket_connection(gateway, request, interface, transport)
        except ConnectionClosed:
            closed_as = WebSocketClose.NORMAL
        except (trio.BrokenResourceError, trio.ClosedResourceError, ssl.SSLError, OSError) as exc:
            closed_as = WebSocketClose.BROKEN
            log.info("ws.connection.broken", interface=interface, error=str(exc))
        WEBSOCKET_CLOSED.labels(closed_as.value).inc()

    server = WebSocketServer(
        handler,
        [listener],
        max_message_size=gateway.max_message_bytes,
        connect_timeout=_WS_CONNECT_TIMEOUT_S,
        disconnect_timeout=_WS_DISCONNECT_TIMEOUT_S,
    )
    await server.run(task_status=task_status)  # type: ignore[arg-type]


async def _websocket_connection(
    gateway: Gateway, request: WebSocketRequest, interface: str, transport: Transport
) -> WebSocketClose:
    """Serve one WebSocket connection; returns how it ended (for the metric)."""
    remote = request.remote
    host, port = (str(remote.address), int(remote.port)) if remote else ("0.0.0.0", 0)  # type: ignore[union-attr]
    if gateway.draining:
        # A draining node takes no new clients: they connect to another node.
        log.info("ws.handshake.refused", interface=interface, source=host, reason="draining")
        await request.reject(503, body=b"draining\n")
        return WebSocketClose.HANDSHAKE_REFUSED
    if "sip" not in request.proposed_subprotocols:
        log.info("ws.handshake.refused", interface=interface, source=host, reason="no sip")
        await request.reject(400, body=b"SIP over WebSocket needs Sec-WebSocket-Protocol: sip\n")
        return WebSocketClose.HANDSHAKE_REFUSED
    ws = await request.accept(subprotocol="sip")

    async def send(data: bytes) -> None:
        await ws.send_message(data.decode("utf-8", errors="replace"))

    connection = gateway.connections.add(interface, transport, host, port, send)
    log.info("ws.connected", interface=interface, source=host, connection=connection.connection_id)
    reason = "closed"
    WEBSOCKET_ACTIVE.inc()
    try:
        while True:
            message = await ws.get_message()
            if isinstance(message, str):
                data = message.encode("utf-8")
            elif unsupported_binary(message):
                reason = "binary frame is not SIP text"
                log.warning("ws.binary.refused", connection=connection.connection_id)
                await ws.aclose(CLOSE_UNSUPPORTED_DATA, "SIP messages are UTF-8 text")
                return WebSocketClose.BINARY_NOT_TEXT
            else:
                data = message
            if data == _PING:
                await ws.send_message(PONG.decode())
                continue
            if not data.strip(b"\r\n"):
                continue
            await gateway.inbound(data, interface, connection.peer)
    except ConnectionClosed as closed:
        reason = f"{closed.reason.code} {closed.reason.name}" if closed.reason else reason
        if closed.reason is not None and closed.reason.code == CLOSE_MESSAGE_TOO_BIG:
            return WebSocketClose.TOO_BIG
        return WebSocketClose.NORMAL
    finally:
        WEBSOCKET_ACTIVE.dec()
        gateway.connections.remove(connection.connection_id)
        log.info("ws.closed", connection=connection.connection_id, reason=reason)
        with trio.CancelScope(shield=True):
            await gateway.connection_closed(connection, reason)


async def serve_stream(
    gateway: Gateway,
    sock: socket.socket,
    interface: str,
    transport: Transport,
    tls: ssl.SSLContext | None,
) -> None:
    """Accept SIP over TCP or TLS (RFC 3261 section 18) on a listening socket."""
    listener: trio.SocketListener | trio.SSLListener[trio.SocketStream]
    listener = trio.SocketListener(trio.socket.from_stdlib_socket(sock))
    if tls is not None:
        listener = trio.SSLListener(listener, tls, https_compatible=False)

    async def handler(stream: trio.abc.Stream) -> None:
        peer = _stream_peer(stream)
        try:
            await stream_connection(gateway, stream, interface, transport, peer)
        except (trio.BrokenResourceError, trio.ClosedResourceError, ssl.SSLError, OSError) as exc:
            SIP_STREAM_ERRORS.labels(StreamError.BROKEN.value).inc()
            log.info("sip.stream.broken", interface=interface, error=str(exc))

    await trio.serve_listeners(handler, [listener])


def _stream_peer(stream: trio.abc.Stream) -> tuple[str, int]:
    inner = stream.transport_stream if isinstance(stream, trio.SSLStream) else stream
    if isinstance(inner, trio.SocketStream):
        address = inner.socket.getpeername()
        return str(address[0]), int(address[1])
    return "0.0.0.0", 0


async def stream_connection(
    gateway: Gateway,
    stream: trio.abc.Stream,
    interface: str,
    transport: Transport,
    peer: tuple[str, int],
    *,
    task_status: trio.TaskStatus[Connection] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Frame SIP messages on one TCP/TLS connection until it closes (either side).

    ``task_status.started`` gets the registered ``Connection`` (so an outbound connection
    can be written to at once).
    """
    framer = StreamFramer(max_message_bytes=gateway.max_message_bytes)
    send_lock = trio.Lock()

    async def send(data: bytes) -> None:
        async with send_lock:
            await stream.send_all(data)

    connection = gateway.connections.add(interface, transport, peer[0], peer[1], send)
    task_status.started(connection)
    reason = "closed"
    try:
        while True:
            chunk = await stream.receive_some(65536)
            if not chunk:
                return
            framer.feed(bytes(chunk))
            while (event := framer.next_event()) is not None:
                if event is KeepAlivePing.PING:
                    await send(PONG)
                    continue
                await gateway.inbound(event, interface, connection.peer)
    except SipParseError as exc:
        # The stream can no longer be framed: nothing after this point can be trusted.
        reason = f"framing: {exc}"
        SIP_STREAM_ERRORS.labels(StreamError.FRAMING.value).inc()
        log.warning("sip.stream.framing", connection=connection.connection_id, error=str(exc))
    finally:
        gateway.connections.remove(connection.connection_id)
        with trio.CancelScope(shield=True):
            await gateway.connection_closed(connection, reason)
            await trio.aclose_forcefully(stream)
