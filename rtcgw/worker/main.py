"""A worker process: one trio program running one B2BUA (DESIGN.md section 1).

``python -m rtcgw.worker --index K --ipc-fd FD [--udp NAME=FD ...]`` is started by the
supervisor, never by hand. The worker waits for ``Configure`` on its IPC socket, builds
its B2BUA, reports ``Ready``, then runs one loop: the next IPC message or the B2BUA's next
deadline, whichever comes first. Everything the B2BUA outputs is sent at once: UDP from
the duplicate of the listening socket (so the source address is the listening address),
everything else through the supervisor, which owns the connections.

Exit codes: 0 after ``Stop`` or when the supervisor went away; 3 when the boot failed (a
bad ``Configure``), so that the supervisor's log says why instead of a bare restart loop.
"""

from __future__ import annotations

import argparse
import math
import os
import signal
import socket
import sys
from collections.abc import Sequence
from dataclasses import fields, is_dataclass

import trio

from rtcgw.observability import metrics
from rtcgw.observability.logging import LogFormat, configure_logging, get_logger
from rtcgw.sip.events import Outgoing
from rtcgw.sip.transport import Peer, Transport
from rtcgw.supervisor.channel import IpcChannel
from rtcgw.supervisor.ipc import (
    BindingChanged,
    BindingReport,
    Configure,
    ConnectionClosed,
    Direction,
    Drain,
    IpcMessage,
    Ping,
    Pong,
    Ready,
    SipIn,
    SipOut,
    Stop,
    Stopped,
)
from rtcgw.worker.b2bua import (
    B2bua,
    Binding,
    BindingReported,
    CallEnded,
    CallStarted,
    MessageDropped,
    Output,
    RequestRejected,
)
from rtcgw.worker.boot import WorkerBoot
from rtcgw.worker.settings import b2bua_settings

__all__ = ["EXIT_BOOT_FAILED", "STOP_LINGER_S", "main"]

EXIT_BOOT_FAILED = 3
#: How long a stopping worker keeps serving so that its BYEs and CANCELs are answered.
STOP_LINGER_S = 2.0

log = get_logger()


class WorkerRuntime:
    """The I/O edge around one B2BUA: IPC in, timers, sockets and IPC out."""

    def __init__(
        self,
        index: int,
        core: B2bua,
        *,
        ipc: IpcChannel,
        udp: dict[str, trio.socket.SocketType],
        boot: WorkerBoot,
        bindings: dict[str, Binding],
    ) -> None:
        self.index = index
        self.core = core
        self._ipc = ipc
        self._udp = udp
        self._bindings = bindings
        self._interfaces = {b.transport: b.interface for b in boot.listeners}
        # The peer behind each connection this worker has heard from, for binding reports.
        self._peers: dict[int, Peer] = {}
        # Each call's direction from its CallStarted, for the CallEnded metric's label.
        self._directions: dict[str, str] = {}

    async def run(self) -> None:
        """Serve until ``Stop`` or until the supervisor closes the channel.

        On ``Stop`` every call is hung up (BYE, 503, CANCEL as its state asks), and the
        worker serves on for at most ``STOP_LINGER_S`` so that those requests are
        answered (and retransmitted over UDP if need be) before it exits.
        """
        stop_at = math.inf
        while True:
            if stop_at < math.inf and self.core.pending_transactions == 0:
                break
            next_timer = self.core.next_deadline()
            deadline = min(math.inf if next_timer is None else next_timer, stop_at)
            with trio.move_on_at(deadline) as timer:
                message = await self._ipc.receive()
            if timer.cancelled_caught:
                if trio.current_time() >= stop_at:
                    break
                await self._emit(self.core.handle_timeout(trio.current_time()))
                continue
            if message is None:
                log.info("worker.supervisor_gone", worker=self.index)
                return
            if isinstance(message, Stop):
                if stop_at == math.inf:
                    log.info("worker.stopping", worker=self.index, calls=self.core.active_calls)
                    stop_at = trio.current_time() + STOP_LINGER_S
                    await self._emit(self.core.shutdown(trio.current_time()))
                continue
            await self._handle(message)
        await self._ipc.send(Stopped(self.index))

    async def _handle(self, message: IpcMessage) -> None:
        now = trio.current_time()
        if isinstance(message, SipIn):
            peer = message.peer
            if peer.connection_id is not None:
                self._peers[peer.connection_id] = peer
            await self._emit(self.core.receive_bytes(message.data, peer, now))
        elif isinstance(message, ConnectionClosed):
            self._peers.pop(message.connection_id, None)
            await self._emit(self.core.connection_closed(message.connection_id, now))
        elif isinstance(message, BindingChanged):
            self._binding_changed(message)
        elif isinstance(message, Ping):
            await self._ipc.send(Pong(message.seq, self.core.active_calls))
        elif isinstance(message, Drain):
            log.info("worker.drain", worker=self.index, deadline_s=message.deadline_s)
        else:
            log.warning("ipc.unexpected", worker=self.index, kind=type(message).__name__)

    def _binding_changed(self, change: BindingChanged) -> None:
        if change.connection_id is None or change.expires_s <= 0:
            self._bindings.pop(change.user, None)
            return
        self._bindings[change.user] = Binding(
            user=change.user,
            connection_id=change.connection_id,
            transport=Transport(change.transport),
            host=change.host,
            port=change.port,
            contact=change.contact,
        )

    async def _emit(self, output: Output) -> None:
        for notice in output.notices:
            if isinstance(notice, BindingReported):
                await self._report(notice)
            _log_notice(self.index, notice)
            self._count(notice)
        metrics.CALLS_ACTIVE.set(self.core.active_calls)
        for outgoing in output.outgoing:
            await self._send(outgoing)

    def _count(self, notice: object) -> None:
        """Count the notices that have a metric (bounded labels only, never the Call-ID)."""
        if isinstance(notice, MessageDropped):
            reason = metrics.drop_reason_of(notice.reason)
            metrics.SIP_MESSAGES_DROPPED.labels(reason.value).inc()
        elif isinstance(notice, RequestRejected):
            metrics.SIP_REQUESTS_REJECTED.labels(str(notice.status)).inc()
        elif isinstance(notice, CallStarted):
            self._directions[notice.call_id] = notice.direction.value
        elif isinstance(notice, CallEnded):
            direction = self._directions.pop(notice.call_id, "unknown")
            metrics.CALLS_TOTAL.labels(direction, notice.reason.value).inc()

    async def _report(self, notice: BindingReported) -> None:
        peer = self._peers.get(notice.connection_id)
        if peer is None:
            log.info("binding.dropped", reason="connection gone", call_id=notice.call_id)
            return
        await self._ipc.send(
            BindingReport(
                notice.user,
                notice.connection_id,
                peer.transport.value,
                peer.host,
                peer.port,
                notice.contact,
                notice.expires_s,
            )
        )

    async def _send(self, outgoing: Outgoing) -> None:
        peer = outgoing.destination
        if peer.transport is Transport.UDP and peer.connection_id is None and self._udp:
            interface = self._interfaces.get(Transport.UDP)
            sock = self._udp.get(interface or "") or next(iter(self._udp.values()))
            try:
                await sock.sendto(outgoing.data, (peer.host, peer.port))
            except OSError as exc:
                log.info("sip.udp.send_failed", host=peer.host, port=peer.port, error=str(exc))
                await self._emit(self.core.transport_failed(outgoing, trio.current_time()))
            return
        interface = self._interfaces.get(peer.transport, "")
        await self._ipc.send(SipOut.to(peer, interface, outgoing.data))


def _log_notice(worker: int, notice: object) -> None:
    """Log a B2BUA notice as ``b2bua.<snake_case_name>`` with its fields."""
    name = type(notice).__name__
    event = "b2bua." + "".join("_" + c.lower() if c.isupper() else c for c in name).lstrip("_")
    values: dict[str, object] = {}
    if is_dataclass(notice):
        for f in fields(notice):
            value = getattr(notice, f.name)
            values[f.name] = value.value if hasattr(value, "value") else value
    log.info(event, worker=worker, **values)


async def _serve(args: argparse.Namespace) -> int:
    ipc = IpcChannel(socket.socket(fileno=args.ipc_fd), receives=Direction.TO_WORKER)
    udp = {name: trio.socket.from_stdlib_socket(socket.socket(fileno=fd)) for name, fd in args.udp}
    first = await ipc.receive()
    if not isinstance(first, Configure):
        log.error("worker.boot_failed", worker=args.index, reason=f"expected configure: {first}")
        return EXIT_BOOT_FAILED
    try:
        boot = WorkerBoot.loads(first.config)
        settings = b2bua_settings(boot)
    except (TypeError, ValueError) as exc:
        log.error("worker.boot_failed", worker=args.index, reason=str(exc))
        return EXIT_BOOT_FAILED
    bindings: dict[str, Binding] = {}
    core = B2bua(settings, shard=args.index, bindings=bindings.get)
    runtime = WorkerRuntime(args.index, core, ipc=ipc, udp=udp, boot=boot, bindings=bindings)
    await ipc.send(Ready(args.index, os.getpid()))
    try:
        await runtime.run()
    except (trio.BrokenResourceError, trio.ClosedResourceError):
        log.info("worker.supervisor_gone", worker=args.index)
    return 0


def _udp_arg(text: str) -> tuple[str, int]:
    name, sep, fd = text.partition("=")
    if not sep or not fd.isdigit():
        raise argparse.ArgumentTypeError(f"expected NAME=FD, got {text!r}")
    return name, int(fd)


def main(argv: Sequence[str] | None = None) -> int:
    """Run a worker (started by the supervisor); returns the exit code."""
    parser = argparse.ArgumentParser(prog="rtcgw.worker", description=__doc__)
    parser.add_argument("--index", type=int, required=True)
    parser.add_argument("--ipc-fd", type=int, required=True)
    parser.add_argument("--udp", type=_udp_arg, action="append", default=[])
    parser.add_argument("--log-format", default=LogFormat.AUTO.value)
    parser.add_argument("--log-level", default="info")
    args = parser.parse_args(argv)
    # Ctrl-C on a terminal signals the whole process group; stopping is the supervisor's
    # decision (it sends Stop, or kills us), so a worker ignores SIGINT.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    configure_logging(LogFormat(args.log_format), level=args.log_level)
    code: int = trio.run(_serve, args)
    return code


if __name__ == "__main__":
    sys.exit(main())
