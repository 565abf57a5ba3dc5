"""The supervisor: sockets, connections, bindings, workers, signals (DESIGN.md section 1).

It binds every listener of the configuration once, starts N workers, and from then on
only moves messages: a received SIP message goes to the worker ``Dispatcher`` picks; a
worker's ``SipOut`` goes to the connection it names (or, for TCP/TLS toward a peer with no
connection yet, to a new one). It never runs call logic.

Registrations (DESIGN.md section 1): the supervisor holds the authoritative registration
cache and is its single writer. A worker's ``BindingReport`` changes it; bindings go when
their connection closes or their client stops refreshing (``expire`` at the cache's next
expiry). Every change is pushed to every worker as ``BindingChanged``, so lookups are local
reads; a removal for "connection closed" or "expired" also tells the worker that registered
the alias to unregister it upstream. REGISTERs over a source address's flood limit are
answered 503 with Retry-After here, before any worker sees them.

Stopping: the first SIGTERM or SIGINT stops accepting, asks every worker to stop and
waits up to ``gateway.drain_timeout_s`` (at most ``_STOP_GRACE_MAX_S``) before killing
what is left; a second signal kills the workers at once.
"""

from __future__ import annotations

import signal
import socket
import ssl
from dataclasses import dataclass

import trio

from rtcgw.config import GatewayConfig, HostPort, Interface, InterfaceKind
from rtcgw.observability.logging import get_logger
from rtcgw.observability.metrics import (
    REGISTER_REQUESTS,
    REGISTRATIONS_ACTIVE,
    SIP_MESSAGES_DROPPED,
    DropReason,
    RegisterOutcome,
)
from rtcgw.registrations import Binding, MemoryCache, SourceRateLimiter
from rtcgw.sip.errors import SipParseError
from rtcgw.sip.message import Header, Request, make_response
from rtcgw.sip.parse import parse_message
from rtcgw.sip.transport import Peer, Transport
from rtcgw.supervisor.connections import Connection, ConnectionTable
from rtcgw.supervisor.dispatch import Dispatcher
from rtcgw.supervisor.http import gateway_endpoints, serve_http
from rtcgw.supervisor.ipc import (
    BindingChanged,
    BindingReport,
    ConnectionClosed,
    IpcMessage,
    SipIn,
    SipOut,
)
from rtcgw.supervisor.listeners import (
    serve_stream,
    serve_udp,
    serve_websocket,
    stream_connection,
)
from rtcgw.supervisor.tls import server_context
from rtcgw.supervisor.workers import WorkerSlot
from rtcgw.worker.boot import BoundListener, WorkerBoot

__all__ = ["Supervisor", "run_gateway"]

log = get_logger()

_STOP_GRACE_MAX_S = 30.0
_WRITE_TIMEOUT_S = 2.0
_LISTEN_BACKLOG = 1024


@dataclass(frozen=True, slots=True)
class _Bound:
    interface: Interface
    sock: socket.socket
    listener: BoundListener


class Supervisor:
    """Listeners, connections, the binding map and the worker slots of one gateway."""

    def __init__(
        self, config: GatewayConfig, *, worker_count: int, worker_args: tuple[str, ...] = ()
    ) -> None:
        if worker_count < 1:
            raise ValueError(f"worker_count must be at least 1, got {worker_count}")
        self.config = config
        self.connections = ConnectionTable()
        self.max_message_bytes = config.gateway.max_message_bytes
        self.worker_count = worker_count
        self.workers: list[WorkerSlot] = []
        self._worker_args = worker_args
        self._dispatcher = Dispatcher(worker_count)
        self.registrations = MemoryCache()
        self._register_limit = SourceRateLimiter(
            config.gateway.register_rate_per_source, config.gateway.register_burst_per_source
        )
        self._udp: dict[str, trio.socket.SocketType] = {}
        self._stop = trio.Event()
        self._announced = False
        self._listeners: tuple[BoundListener, ...] = ()
        self._http: tuple[str, int] | None = None
        self._nursery: trio.Nursery | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    async def run(
        self, *, task_status: trio.TaskStatus[tuple[BoundListener, ...]] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Bind, start the workers, serve until ``request_stop``; then stop the workers."""
        bound = [_bind(interface) for interface in self.config.interfaces]
        self._listeners = tuple(b.listener for b in bound)
        try:
            http_sock = _listening_socket(self.config.http.listen, socket.SOCK_STREAM)
        except OSError:
            for b in bound:
                b.sock.close()
            raise
        host, port = http_sock.getsockname()[:2]
        self._http = (str(host), int(port))
        boot = WorkerBoot(self.config, self._listeners, self.worker_count).dumps()
        udp_fds = [(b.interface.name, b.sock.fileno()) for b in bound if _is_udp(b.interface)]
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                for b in bound:
                    await self._start_listener(nursery, b)
                nursery.start_soon(serve_http, http_sock, gateway_endpoints(self.healthy))
                log.info(
                    "listener.started",
                    interface="http",
                    transport="HTTP",
                    address=_show_address(self._http),
                )
                self.workers = [
                    WorkerSlot(
                        index,
                        self.worker_count,
                        boot=boot,
                        udp_fds=udp_fds,
                        worker_args=self._worker_args,
                        on_message=self._worker_message,
                        on_ready=self._worker_ready,
                    )
                    for index in range(self.worker_count)
                ]
                for slot in self.workers:
                    nursery.start_soon(slot.run)
                nursery.start_soon(self._expire_bindings)
                task_status.started(self._listeners)
                await self._stop.wait()
                log.info("gateway.stopping", workers=self.worker_count)
                grace = min(self.config.gateway.drain_timeout_s, _STOP_GRACE_MAX_S)
                async with trio.open_nursery() as stopping:
                    for slot in self.workers:
                        stopping.start_soon(slot.stop, grace)
                nursery.cancel_scope.cancel()
        finally:
            for b in bound:
                b.sock.close()
            http_sock.close()
        log.info("gateway.stopped")

    def healthy(self) -> bool:
        """True while every worker is ready (``/healthz``)."""
        return bool(self.workers) and all(slot.ready for slot in self.workers)

    def request_stop(self) -> None:
        """Begin a clean stop (first SIGTERM/SIGINT)."""
        self._stop.set()

    def stop_now(self) -> None:
        """Kill every worker at once (a second signal)."""
        for slot in self.workers:
            slot.kill()
        self._stop.set()

    async def _start_listener(self, nursery: trio.Nursery, bound: _Bound) -> None:
        interface, sock = bound.interface, bound.sock
        tls = _tls_context(interface)
        name, transport = interface.name, interface.transport
        if transport is Transport.UDP:
            self._udp[name] = trio.socket.from_stdlib_socket(sock)
            nursery.start_soon(serve_udp, self, sock, name)
        elif interface.type is InterfaceKind.WEBSOCKET:
            await nursery.start(serve_websocket, self, sock, name, transport, tls)
        else:
            nursery.start_soon(serve_stream, self, sock, name, transport, tls)
        log.info(
            "listener.started", interface=name, transport=transport.value, address=_show(bound)
        )

    # -- from the listeners ------------------------------------------------------------------

    async def inbound(self, data: bytes, interface: str, source: Peer) -> None:
        """Dispatch one received SIP message to its worker (dropped if there is none)."""
        if data.startswith(b"REGISTER ") and not self._register_limit.allow(
            source.host, trio.current_time()
        ):
            await self._refuse_register(data, interface, source)
            return
        index = self._dispatcher.worker_for(data)
        if index is None:
            SIP_MESSAGES_DROPPED.labels(DropReason.NO_CALL_ID.value).inc()
            log.warning("sip.dropped", reason="no Call-ID", interface=interface, source=source.host)
            return
        if not await self.workers[index].send(SipIn.from_peer(source, interface, data)):
            SIP_MESSAGES_DROPPED.labels(DropReason.WORKER_DOWN.value).inc()
            log.warning("sip.dropped", reason="worker down", worker=index, source=source.host)

    async def _refuse_register(self, data: bytes, interface: str, source: Peer) -> None:
        """503 with Retry-After for a REGISTER over its source's flood limit (RFC 3261
        21.5.4: the client may retry after that many seconds)."""
        REGISTER_REQUESTS.labels(RegisterOutcome.RATE_LIMITED.value).inc()
        try:
            request = parse_message(data)
        except SipParseError:
            return
        if not isinstance(request, Request):
            return
        retry = self._register_limit.retry_after_s(source.host, trio.current_time())
        response = make_response(
            request,
            503,
            "Too Many Registrations",
            headers=(Header("Retry-After", str(retry)),),
        )
        log.info(
            "register.rate_limited",
            call_id=request.call_id,
            source=source.host,
            retry_after_s=retry,
        )
        await self._send_out(SipOut.to(source, interface, bytes(response)))

    async def connection_closed(self, connection: Connection, reason: str) -> None:
        """A connection ended: drop its bindings and tell every worker."""
        cid = connection.connection_id
        for binding in self.registrations.remove_connection(cid, "connection closed"):
            await self._publish(binding, removed=True, reason="connection closed")
        await self._broadcast(ConnectionClosed(cid, reason))

    async def _expire_bindings(self) -> None:
        """Drop bindings whose client stopped refreshing, at the cache's next expiry."""
        while True:
            # At most a second apart: a binding put while we sleep may expire first.
            wake = trio.current_time() + 1.0
            deadline = self.registrations.next_expiry()
            await trio.sleep_until(wake if deadline is None else min(deadline, wake))
            for binding in self.registrations.expire(trio.current_time(), "expired"):
                await self._publish(binding, removed=True, reason="expired")

    async def _publish(self, binding: Binding, *, removed: bool, reason: str) -> None:
        """Tell every worker of a change of the cache, and log it with the Call-ID."""
        REGISTRATIONS_ACTIVE.set(len(self.registrations))
        log.info(
            "binding.changed",
            call_id=binding.call_id,
            user=binding.user,
            aor=binding.aor,
            contact=binding.contact,
            alias=binding.alias,
            connection=binding.connection_id,
            removed=removed,
            reason=reason,
        )
        now = trio.current_time()
        await self._broadcast(BindingChanged.of(binding, now, removed=removed, reason=reason))

    # -- from the workers --------------------------------------------------------------------

    async def _worker_ready(self, slot: WorkerSlot) -> None:
        now = trio.current_time()
        for binding in list(self.registrations):
            await slot.send(BindingChanged.of(binding, now, removed=False, reason="registered"))
        if not self._announced and all(w.ready for w in self.workers):
            self._announced = True
            listeners = [
                {
                    "interface": b.interface,
                    "transport": b.transport.value,
                    "host": b.host,
                    "port": b.port,
                }
                for b in self._listeners
            ]
            if self._http is not None:
                host, port = self._http
                listeners.append(
                    {"interface": "http", "transport": "HTTP", "host": host, "port": port}
                )
            log.info("gateway.ready", workers=self.worker_count, listeners=listeners)

    async def _worker_message(self, slot: WorkerSlot, message: IpcMessage) -> None:
        if isinstance(message, SipOut):
            await self._send_out(message)
        elif isinstance(message, BindingReport):
            await self._binding(message)
        else:
            log.debug("ipc.message", worker=slot.index, kind=type(message).__name__)

    async def _binding(self, report: BindingReport) -> None:
        try:
            binding = report.binding(trio.current_time())
        except ValueError as exc:
            log.warning("binding.invalid", call_id=report.call_id, error=str(exc))
            return
        if report.removed:
            if self.registrations.remove(binding.key, report.reason) is not None:
                await self._publish(binding, removed=True, reason=report.reason)
            return
        if self.connections.get(binding.connection_id) is None:
            # The client left while its REGISTER was upstream: publish the removal so
            # that the worker that registered the alias takes it back.
            self.registrations.remove(binding.key, "connection closed")
            await self._publish(binding, removed=True, reason="connection closed")
            return
        self.registrations.put(binding, report.reason)
        await self._publish(binding, removed=False, reason=report.reason)

    async def _broadcast(self, message: IpcMessage) -> None:
        for slot in self.workers:
            await slot.send(message)

    async def _send_out(self, out: SipOut) -> None:
        transport = Transport(out.transport)
        if out.connection_id is not None:
            connection = self.connections.get(out.connection_id)
            if connection is None:
                log.info("sip.out.dropped", reason="connection gone", connection=out.connection_id)
                return
            await _write(connection, out.data)
            return
        if transport is Transport.UDP:
            sock = self._udp.get(out.interface) or next(iter(self._udp.values()), None)
            if sock is None:
                log.warning("sip.out.dropped", reason="no udp interface", interface=out.interface)
                return
            await sock.sendto(out.data, (out.host, out.port))
            return
        connection = self.connections.find(transport, out.host, out.port)
        if connection is None:
            connection = await self._connect(out)
        if connection is not None:
            await _write(connection, out.data)

    async def _connect(self, out: SipOut) -> Connection | None:
        """Open a TCP/TLS connection toward a SIP peer (RFC 3261 18.1.1) and read from it."""
        assert self._nursery is not None  # set for as long as run() serves
        transport = Transport(out.transport)
        try:
            stream: trio.abc.Stream = await trio.open_tcp_stream(out.host, out.port)
            if transport is Transport.TLS:
                context = ssl.create_default_context()
                stream = trio.SSLStream(stream, context, server_hostname=out.host)
        except OSError as exc:
            log.warning("sip.connect.failed", host=out.host, port=out.port, error=str(exc))
            return None
        connection: Connection = await self._nursery.start(
            stream_connection, self, stream, out.interface, transport, (out.host, out.port)
        )
        return connection


async def _write(connection: Connection, data: bytes) -> None:
    # A peer that stops reading must not stall the worker's whole output path (nor its
    # heartbeat, read on the same loop): a write that cannot finish in time is dropped,
    # as a lost datagram would be; SIP's retransmissions and timeouts take it from there.
    try:
        with trio.move_on_after(_WRITE_TIMEOUT_S) as timer:
            await connection.send(data)
        if timer.cancelled_caught:
            log.warning("sip.out.slow_peer", connection=connection.connection_id)
    except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
        log.info("sip.out.failed", connection=connection.connection_id, error=str(exc))
    except Exception as exc:
        log.info("sip.out.failed", connection=connection.connection_id, error=repr(exc))


def _is_udp(interface: Interface) -> bool:
    return interface.transport is Transport.UDP


def _bind(interface: Interface) -> _Bound:
    kind = socket.SOCK_DGRAM if _is_udp(interface) else socket.SOCK_STREAM
    sock = _listening_socket(interface.listen, kind)
    bound_host, bound_port = sock.getsockname()[:2]
    listener = BoundListener(interface.name, interface.transport, str(bound_host), int(bound_port))
    return _Bound(interface, sock, listener)


def _listening_socket(listen: HostPort, kind: socket.SocketKind) -> socket.socket:
    host, port = listen.host, listen.port
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, kind)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        if kind == socket.SOCK_STREAM:
            sock.listen(_LISTEN_BACKLOG)
    except OSError:
        sock.close()
        raise
    sock.setblocking(False)
    return sock


def _tls_context(interface: Interface) -> ssl.SSLContext | None:
    if interface.tls_certificate is None or interface.tls_key is None:
        return None
    return server_context(
        interface.tls_certificate,
        interface.tls_key,
        ca=interface.tls_ca,
        require_client=interface.require_client_certificate,
    )


def _show(bound: _Bound) -> str:
    return _show_address((bound.listener.host, bound.listener.port))


def _show_address(address: tuple[str, int]) -> str:
    host, port = address
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


async def run_gateway(
    config: GatewayConfig,
    *,
    worker_count: int,
    worker_args: tuple[str, ...] = (),
    task_status: trio.TaskStatus[tuple[BoundListener, ...]] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Run the supervisor until SIGTERM/SIGINT; a second signal kills the workers at once."""
    supervisor = Supervisor(config, worker_count=worker_count, worker_args=worker_args)
    with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        async with trio.open_nursery() as nursery:

            async def watch() -> None:
                count = 0
                async for signum in signals:
                    count += 1
                    name = signal.Signals(signum).name
                    log.info("signal.received", signal=name, count=count)
                    if count == 1:
                        supervisor.request_stop()
                    else:
                        supervisor.stop_now()

            async def serve(*, task_status: trio.TaskStatus[tuple[BoundListener, ...]]) -> None:
                await supervisor.run(task_status=task_status)
                nursery.cancel_scope.cancel()  # only the signal watcher is left

            nursery.start_soon(watch)
            listeners = await nursery.start(serve)
            task_status.started(listeners)
    log.info("gateway.exited")
