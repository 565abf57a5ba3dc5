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

Overload: a worker that cannot keep up reads its IPC socket late, so what the supervisor
queued for it waits (``WorkerSlot.lag_s``). Once the oldest has waited ``OVERLOAD_LAG_S``,
new INVITEs for that worker are answered 503 with Retry-After here, so the calls it has keep
their service and callers hear at once that they should retry (or another gateway should
take them) instead of waiting for a timeout; in-dialog requests always go through.

Stopping: the first SIGTERM or SIGINT stops accepting, asks every worker to stop and
waits up to ``gateway.drain_timeout_s`` (at most ``_STOP_GRACE_MAX_S``) before killing
what is left; a second signal kills the workers at once.
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import json
import math
import signal
import socket
import ssl
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import trio

from rtcgw import __version__
from rtcgw.config import ConfigError, GatewayConfig, HostPort, Interface, InterfaceKind
from rtcgw.config.diff import config_changes
from rtcgw.observability.logging import get_logger
from rtcgw.observability.metrics import (
    CONFIG_RELOADS,
    DRAINING,
    OVERLOAD_REFUSALS,
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
from rtcgw.supervisor.control import (
    ControlError,
    ControlRequest,
    SendLine,
    arg_float,
    arg_int,
    control_path,
    serve_control,
)
from rtcgw.supervisor.dispatch import Dispatcher, find_call_id
from rtcgw.supervisor.http import gateway_endpoints, serve_http
from rtcgw.supervisor.ipc import (
    BindingChanged,
    BindingReport,
    Configure,
    ConnectionClosed,
    Drain,
    IpcMessage,
    Query,
    QueryReply,
    SipIn,
    SipOut,
    Undrain,
)
from rtcgw.supervisor.listeners import (
    serve_stream,
    serve_udp,
    serve_websocket,
    stream_connection,
)
from rtcgw.supervisor.tls import server_context
from rtcgw.supervisor.web import load_static, static_folder, web_endpoints
from rtcgw.supervisor.workers import WorkerSlot
from rtcgw.worker.boot import BoundListener, WorkerBoot

__all__ = ["Supervisor", "run_gateway"]

log = get_logger()

_STOP_GRACE_MAX_S = 30.0
_WRITE_TIMEOUT_S = 2.0
_LISTEN_BACKLOG = 1024
#: How long the supervisor waits for a worker's answer to an ``rtcgw ctl`` query.
_QUERY_TIMEOUT_S = 5.0
#: How often a drain looks at what is left.
_DRAIN_POLL_S = 0.5
#: How long ``restart-worker`` waits for the new worker to be ready.
_RESTART_READY_S = 30.0
#: Settings a running node keeps until a restart: the sockets, the workers' media and
#: boot-time settings. A reload that changes one of them is refused.
_GATEWAY_RESTART_FIELDS = (
    "workers",
    "control_socket",
    "log_format",
    "max_message_bytes",
    "media_timeout_s",
)
_RELOADABLE = frozenset({"source", "generated", "gateway", "realms"})
#: How long a message may have waited for its worker before that worker's new INVITEs are
#: refused: a worker that keeps up has nothing waiting; a call set up later than this
#: (plus what the worker's socket already holds) rings late or times out anyway.
OVERLOAD_LAG_S = 0.25
_OVERLOAD_RETRY_AFTER_S = 5


@dataclass(frozen=True, slots=True)
class _Bound:
    interface: Interface
    sock: socket.socket
    listener: BoundListener


class Supervisor:
    """Listeners, connections, the binding map and the worker slots of one gateway."""

    def __init__(
        self,
        config: GatewayConfig,
        *,
        worker_count: int,
        worker_args: tuple[str, ...] = (),
        loader: Callable[[], GatewayConfig] | None = None,
        control: Path | None = None,
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
        self._overload_logged_at: dict[int, float] = {}
        self._udp: dict[str, trio.socket.SocketType] = {}
        self._stop = trio.Event()
        self._announced = False
        self._listeners: tuple[BoundListener, ...] = ()
        self._http: tuple[str, int] | None = None
        self._web: tuple[str, int] | None = None
        self._nursery: trio.Nursery | None = None
        #: re-reads the configuration as it was read at start (``rtcgw ctl reload``, SIGHUP)
        self._loader = loader
        self._control = control or control_path(config.gateway.control_socket)
        #: True while the whole node drains: new INVITEs get 503, new WebSockets are refused
        self.draining = False
        self._config_version = 1
        self._config_loaded = time.monotonic()
        self._started = time.monotonic()
        self._boot = b""
        self._query_ids = itertools.count(1)
        self._queries: dict[int, trio.MemorySendChannel[dict[str, object]]] = {}
        self._reload_lock = trio.Lock()
        self._stop_drain: trio.CancelScope | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    async def run(
        self, *, task_status: trio.TaskStatus[tuple[BoundListener, ...]] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Bind, start the workers, serve until ``request_stop``; then stop the workers."""
        web = self.config.web
        # Read the phone's files and certificate before binding: a broken install fails here.
        web_files = None if web is None else load_static(static_folder())
        web_tls = None
        if web is not None and web.tls_certificate is not None and web.tls_key is not None:
            web_tls = server_context(web.tls_certificate, web.tls_key)
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
        try:
            web_sock = None if web is None else _listening_socket(web.listen, socket.SOCK_STREAM)
        except OSError:
            for b in bound:
                b.sock.close()
            http_sock.close()
            raise
        web_respond = None
        if web_sock is not None:
            host, port = web_sock.getsockname()[:2]
            self._web = (str(host), int(port))
            ports = {b.interface.name: b.listener.port for b in bound}
            web_respond = web_endpoints(self.config, files=web_files, ws_ports=ports)
        boot = WorkerBoot(self.config, self._listeners, self.worker_count).dumps()
        self._boot = boot
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
                if web is not None and web_sock is not None and web_respond is not None:
                    assert self._web is not None
                    nursery.start_soon(partial(serve_http, web_sock, web_respond, tls=web_tls))
                    log.info(
                        "listener.started",
                        interface="web",
                        transport="HTTPS",
                        address=_show_address(self._web),
                        path=web.path,
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
                await self._start_control(nursery)
                task_status.started(self._listeners)
                await self._stop.wait()
                await self._drain_before_stop()
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
            if web_sock is not None:
                web_sock.close()
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
        if self._stop_drain is not None:
            self._stop_drain.cancel()
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

    # -- rtcgw ctl ----------------------------------------------------------------------------

    async def _start_control(self, nursery: trio.Nursery) -> None:
        try:
            await nursery.start(serve_control, self._control, self.control)
        except ControlError as exc:
            # The gateway serves calls without it; the operator learns why from the log.
            log.warning("control.unavailable", error=str(exc))
            return
        log.info(
            "listener.started", interface="control", transport="unix", address=str(self._control)
        )

    async def control(self, request: ControlRequest, send: SendLine) -> Mapping[str, object]:
        """Answer one ``rtcgw ctl`` request (``drain`` sends progress lines first)."""
        command = request.command
        log.info("ctl.request", command=command, args=dict(request.args))
        if command == "status":
            return await self._status()
        if command == "calls":
            return await self._calls()
        if command == "call":
            call_id = request.args.get("call_id")
            if not isinstance(call_id, str) or not call_id:
                raise ControlError("call: give a CALL-ID")
            return await self._call(call_id)
        if command == "registrations":
            return self._registrations()
        if command == "drain":
            timeout = arg_float(request, "timeout_s", self.config.gateway.drain_timeout_s)
            return await self.drain(timeout, self._worker_arg(request), send)
        if command == "undrain":
            await self.undrain()
            return {"ok": True}
        if command == "reload":
            return await self.reload(dry_run=request.args.get("dry_run") is True)
        if command == "restart-worker":
            index = self._worker_arg(request)
            if index is None:
                raise ControlError("restart-worker: give a worker number")
            return await self._restart_worker(index)
        raise ControlError(f"unknown command {command!r}")

    def _worker_arg(self, request: ControlRequest) -> int | None:
        index = arg_int(request, "worker")
        if index is not None and index >= len(self.workers):
            raise ControlError(
                f"{request.command}: no worker {index} (workers are 0..{len(self.workers) - 1})"
            )
        return index

    async def _query(
        self, slot: WorkerSlot, what: str, call_id: str | None = None
    ) -> dict[str, object] | None:
        """A worker's answer to ``what``, or None if it is down or silent."""
        request_id = next(self._query_ids)
        send, receive = trio.open_memory_channel[dict[str, object]](1)
        self._queries[request_id] = send
        try:
            if not await slot.send(Query(request_id, what, call_id)):
                return None
            with trio.move_on_after(_QUERY_TIMEOUT_S):
                return await receive.receive()
            log.warning("ctl.query_timeout", worker=slot.index, what=what)
            return None
        finally:
            del self._queries[request_id]

    async def _query_all(
        self, what: str, call_id: str | None = None, slots: list[WorkerSlot] | None = None
    ) -> dict[int, dict[str, object] | None]:
        answers: dict[int, dict[str, object] | None] = {}

        async def ask(slot: WorkerSlot) -> None:
            answers[slot.index] = await self._query(slot, what, call_id)

        async with trio.open_nursery() as nursery:
            for slot in self.workers if slots is None else slots:
                nursery.start_soon(ask, slot)
        return answers

    def _query_reply(self, reply: QueryReply) -> None:
        waiting = self._queries.get(reply.request_id)
        if waiting is None:
            return  # answered after its timeout
        try:
            body = json.loads(reply.body)
        except ValueError as exc:
            log.warning("ctl.bad_reply", worker=reply.worker_index, error=str(exc))
            return
        if isinstance(body, dict):
            with contextlib.suppress(trio.WouldBlock, trio.BrokenResourceError):
                waiting.send_nowait(body)

    def state(self) -> str:
        """The node's state for ``rtcgw ctl status``."""
        if self._stop.is_set():
            return "stopping"
        if self.draining:
            return "draining"
        if any(slot.draining for slot in self.workers):
            return "partly draining"
        return "running" if self.healthy() else "starting"

    async def _status(self) -> dict[str, object]:
        answers = await self._query_all("calls")
        now = trio.current_time()
        workers: list[dict[str, object]] = []
        for slot in self.workers:
            answer = answers.get(slot.index)
            calls = answer.get("active") if answer else (slot.active_calls if slot.ready else None)
            state = "ready" if slot.ready else ("stopped" if slot.stopping() else "starting")
            if slot.ready and (self.draining or slot.draining):
                state = "draining"
            workers.append(
                {
                    "index": slot.index,
                    "pid": slot.pid,
                    "state": state,
                    "calls": calls,
                    "uptime_s": None if slot.ready_since is None else now - slot.ready_since,
                    "restarts": slot.restarts,
                }
            )
        return {
            "ok": True,
            "node": self.config.gateway.name,
            "state": self.state(),
            "version": __version__,
            "uptime_s": time.monotonic() - self._started,
            "registrations": len(self.registrations),
            "calls": sum(w["calls"] for w in workers if isinstance(w["calls"], int)),
            "config": {
                "source": self.config.source,
                "version": self._config_version,
                "age_s": time.monotonic() - self._config_loaded,
            },
            "workers": workers,
        }

    async def _calls(self) -> dict[str, object]:
        rows: list[object] = []
        answers = await self._query_all("calls")
        for index in sorted(answers):
            answer = answers[index]
            if answer and isinstance(answer.get("calls"), list):
                rows.extend(answer["calls"])  # type: ignore[arg-type]
        down = sorted(index for index, answer in answers.items() if answer is None)
        return {"ok": True, "calls": rows, "workers_not_answering": down}

    async def _call(self, call_id: str) -> dict[str, object]:
        answers = await self._query_all("call", call_id)
        for index in sorted(answers):
            answer = answers[index]
            if answer and answer.get("call"):
                return {"ok": True, "worker": index, "call": answer["call"]}
        return {
            "ok": False,
            "error": f"no call {call_id!r} on any worker (ended calls are kept for 5 minutes)",
        }

    def _registrations(self) -> dict[str, object]:
        now = trio.current_time()
        rows = [
            {
                "user": b.user,
                "aor": b.aor,
                "contact": b.contact,
                "alias": b.alias,
                "transport": b.transport.value,
                "host": b.host,
                "port": b.port,
                "connection_id": b.connection_id,
                "expires_s": max(0.0, b.remaining(now)[0]),
            }
            for b in self.registrations
        ]
        rows.sort(key=lambda r: (str(r["user"]), str(r["contact"])))
        return {"ok": True, "registrations": rows}

    def _set_draining_gauge(self) -> None:
        DRAINING.set(1 if self.draining or any(s.draining for s in self.workers) else 0)

    async def drain(
        self, timeout_s: float, worker: int | None, send: SendLine | None = None
    ) -> dict[str, object]:
        """Refuse new calls (503) on the node or one worker; wait up to ``timeout_s`` for
        the calls in progress to end; what remains is returned, not ended."""
        if worker is None:
            self.draining = True
            targets = list(self.workers)
        else:
            self.workers[worker].draining = True
            targets = [self.workers[worker]]
        self._set_draining_gauge()
        log.info("gateway.drain", worker=worker, timeout_s=timeout_s)
        for slot in targets:
            await slot.send(Drain(timeout_s))
        deadline = trio.current_time() + timeout_s
        shown = -1
        while True:
            remaining = await self._remaining(targets)
            if not remaining or trio.current_time() >= deadline:
                break
            if send is not None and len(remaining) != shown:
                shown = len(remaining)
                await send({"progress": True, "worker": worker, "remaining": remaining})
            await trio.sleep(max(0.0, min(_DRAIN_POLL_S, deadline - trio.current_time())))
        log.info("gateway.drained", worker=worker, remaining=len(remaining))
        return {
            "ok": True,
            "drained": not remaining,
            "worker": worker,
            "timeout_s": timeout_s,
            "remaining": remaining,
        }

    async def _remaining(self, targets: list[WorkerSlot]) -> list[dict[str, object]]:
        answers = await self._query_all("calls", slots=targets)
        remaining: list[dict[str, object]] = []
        for index in sorted(answers):
            answer = answers[index]
            calls = answer.get("calls") if answer else None
            if isinstance(calls, list):
                remaining.extend(c for c in calls if isinstance(c, dict))
        return remaining

    async def undrain(self) -> None:
        """Take new calls and WebSocket connections again (node and every worker)."""
        self.draining = False
        for slot in self.workers:
            slot.draining = False
            await slot.send(Undrain())
        self._set_draining_gauge()
        log.info("gateway.undrain")

    async def _drain_before_stop(self) -> None:
        """SIGTERM: drain for ``gateway.drain_timeout_s`` (at most ``_STOP_GRACE_MAX_S``)
        before the workers are stopped; a second signal cuts it short."""
        if all(slot.stopping() for slot in self.workers):
            return  # stop_now: nothing to wait for
        timeout = min(self.config.gateway.drain_timeout_s, _STOP_GRACE_MAX_S)
        with trio.CancelScope() as scope:
            self._stop_drain = scope
            await self.drain(timeout, None)

    async def reload(self, *, dry_run: bool = False) -> dict[str, object]:
        """Re-read the configuration: with ``dry_run`` say what would change; otherwise
        apply it for new calls. A broken file or a change that needs a restart is
        refused and the running configuration kept."""
        async with self._reload_lock:
            return self._reload(dry_run=dry_run) if dry_run else await self._apply_reload()

    def _reload(self, *, dry_run: bool) -> dict[str, object]:
        result = "dry_run" if dry_run else "failed"
        if self._loader is None:
            CONFIG_RELOADS.labels("failed").inc()
            return {"ok": False, "error": "this gateway was started without a reloadable config"}
        try:
            new = self._loader()
        except ConfigError as exc:
            CONFIG_RELOADS.labels("failed").inc()
            log.warning("config.reload_failed", error=str(exc))
            return {"ok": False, "error": f"{exc}\nthe running configuration is kept"}
        changes = [str(c) for c in config_changes(self.config, new)]
        restart = _needs_restart(self.config, new)
        reply: dict[str, object] = {
            "ok": True,
            "dry_run": dry_run,
            "source": new.source,
            "changes": changes,
            "needs_restart": restart,
            "config": new,
        }
        if restart and not dry_run:
            CONFIG_RELOADS.labels(result).inc()
            log.warning("config.reload_refused", needs_restart=restart)
            return {
                "ok": False,
                "error": "refused, the running configuration is kept: changing "
                + ", ".join(restart)
                + " needs a restart",
                "changes": changes,
                "needs_restart": restart,
            }
        if dry_run:
            CONFIG_RELOADS.labels(result).inc()
            del reply["config"]
        return reply

    async def _apply_reload(self) -> dict[str, object]:
        reply = self._reload(dry_run=False)
        new = reply.pop("config", None)
        if not isinstance(new, GatewayConfig):
            return reply
        old, self.config = self.config, new
        gateway = new.gateway
        if (gateway.register_rate_per_source, gateway.register_burst_per_source) != (
            old.gateway.register_rate_per_source,
            old.gateway.register_burst_per_source,
        ):
            self._register_limit = SourceRateLimiter(
                gateway.register_rate_per_source, gateway.register_burst_per_source
            )
        self._boot = WorkerBoot(new, self._listeners, self.worker_count).dumps()
        self._config_version += 1
        self._config_loaded = time.monotonic()
        for slot in self.workers:
            slot.set_boot(self._boot)
            await slot.send(Configure(slot.index, self.worker_count, self._boot))
        CONFIG_RELOADS.labels("ok").inc()
        log.info(
            "config.reloaded",
            source=new.source,
            version=self._config_version,
            changes=reply.get("changes"),
        )
        reply["version"] = self._config_version
        return reply

    async def reload_on_signal(self) -> None:
        """SIGHUP: reload, logging the outcome (there is no one to reply to)."""
        reply = await self.reload()
        if not reply.get("ok"):
            log.warning("config.sighup_reload_failed", error=reply.get("error"))

    async def _restart_worker(self, index: int) -> dict[str, object]:
        slot = self.workers[index]
        old_pid = slot.pid
        grace = min(self.config.gateway.drain_timeout_s, _STOP_GRACE_MAX_S)
        log.info("worker.restart_requested", worker=index, pid=old_pid)
        await slot.restart(grace)
        with trio.move_on_after(_RESTART_READY_S):
            while not (slot.ready and slot.pid != old_pid):
                await trio.sleep(0.05)
        if not (slot.ready and slot.pid != old_pid):
            return {"ok": False, "error": f"worker {index} was not ready again in time"}
        return {"ok": True, "worker": index, "old_pid": old_pid, "pid": slot.pid}

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
        slot = self.workers[index]
        if (
            slot.lag_s > OVERLOAD_LAG_S
            and data.startswith(b"INVITE ")
            and await self._refuse_overloaded(data, interface, source, index)
        ):
            return
        if not await slot.send(SipIn.from_peer(source, interface, data)):
            SIP_MESSAGES_DROPPED.labels(DropReason.WORKER_DOWN.value).inc()
            # Found again only here, on the rare drop: dispatching reads it without decoding.
            call_id = (find_call_id(data) or b"").decode("utf-8", "replace")
            log.warning(
                "sip.dropped",
                reason="worker down",
                worker=index,
                source=source.host,
                call_id=call_id,
            )

    async def _refuse_overloaded(
        self, data: bytes, interface: str, source: Peer, worker: int
    ) -> bool:
        """503 with Retry-After for a new INVITE toward a worker that is behind; False for
        an in-dialog one (a re-INVITE of a call that worker has), which goes through."""
        try:
            request = parse_message(data)
        except SipParseError:
            return False
        if not isinstance(request, Request) or request.to.tag is not None:
            return False
        OVERLOAD_REFUSALS.labels(str(worker)).inc()
        now = trio.current_time()
        # One line a second at most: under overload, a line per refusal would add to it.
        if now - self._overload_logged_at.get(worker, -math.inf) >= 1.0:
            self._overload_logged_at[worker] = now
            log.warning(
                "call.refused_overload",
                call_id=request.call_id,
                worker=worker,
                lag_s=round(self.workers[worker].lag_s, 3),
                retry_after_s=_OVERLOAD_RETRY_AFTER_S,
            )
        response = make_response(
            request,
            503,
            "Overloaded",
            headers=(Header("Retry-After", str(_OVERLOAD_RETRY_AFTER_S)),),
        )
        await self._send_out(SipOut.to(source, interface, bytes(response)))
        return True

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
        if self.draining or slot.draining:
            await slot.send(Drain(self.config.gateway.drain_timeout_s))
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
            if self._web is not None:
                host, port = self._web
                listeners.append(
                    {"interface": "web", "transport": "HTTPS", "host": host, "port": port}
                )
            log.info("gateway.ready", workers=self.worker_count, listeners=listeners)

    async def _worker_message(self, slot: WorkerSlot, message: IpcMessage) -> None:
        if isinstance(message, SipOut):
            await self._send_out(message)
        elif isinstance(message, BindingReport):
            await self._binding(message)
        elif isinstance(message, QueryReply):
            self._query_reply(message)
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


def _needs_restart(old: GatewayConfig, new: GatewayConfig) -> list[str]:
    """What differs between ``old`` and ``new`` that a running node cannot take."""
    found = [
        f"[{f.name}]"
        for f in dataclasses.fields(GatewayConfig)
        if f.name not in _RELOADABLE and getattr(old, f.name) != getattr(new, f.name)
    ]
    found += [
        f"gateway.{name}"
        for name in _GATEWAY_RESTART_FIELDS
        if getattr(old.gateway, name) != getattr(new.gateway, name)
    ]
    return found


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
    loader: Callable[[], GatewayConfig] | None = None,
    control: Path | None = None,
    task_status: trio.TaskStatus[tuple[BoundListener, ...]] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Run the supervisor until SIGTERM/SIGINT (drain, then stop; a second signal kills
    the workers at once); SIGHUP reloads the configuration with ``loader``."""
    supervisor = Supervisor(
        config, worker_count=worker_count, worker_args=worker_args, loader=loader, control=control
    )
    with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT, signal.SIGHUP) as signals:
        async with trio.open_nursery() as nursery:

            async def watch() -> None:
                count = 0
                async for signum in signals:
                    name = signal.Signals(signum).name
                    if signum == signal.SIGHUP:
                        log.info("signal.received", signal=name)
                        nursery.start_soon(supervisor.reload_on_signal)
                        continue
                    count += 1
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
