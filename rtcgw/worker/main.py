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
import json
import math
import os
import signal
import socket
import sys
from collections.abc import Sequence
from typing import Protocol, assert_never

import structlog
import trio

from rtcgw.media.errors import MediaConfigError
from rtcgw.observability import metrics
from rtcgw.observability.logging import LogFormat, configure_logging, get_logger
from rtcgw.registrations import MemoryCache
from rtcgw.rules import CompiledRules
from rtcgw.sip.errors import SipError
from rtcgw.sip.events import Outgoing
from rtcgw.sip.message import Request
from rtcgw.sip.transport import Transport
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
    Query,
    QueryReply,
    Ready,
    SipIn,
    SipOut,
    Stop,
    Stopped,
    Undrain,
)
from rtcgw.worker.b2bua import (
    B2bua,
    BindingReported,
    CallAnswered,
    CallEnded,
    CallStarted,
    EndReason,
    MediaRefused,
    MessageDropped,
    Output,
    RegisterHandled,
    RequestRejected,
    RouteDecided,
)
from rtcgw.worker.boot import WorkerBoot
from rtcgw.worker.log_fields import CallLegs, notice_event
from rtcgw.worker.media.build import build_media
from rtcgw.worker.media.events import DtmfReceived, MediaEvent, MediaTimedOut
from rtcgw.worker.media.seam import MediaSeam
from rtcgw.worker.settings import b2bua_settings
from rtcgw.worker.timeline import CallTimelines

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
        media: MediaSeam | None = None,
    ) -> None:
        self.index = index
        self._media = media
        # Per active call: when its INVITE came (until the final answer) and its
        # conversion path label, for the setup histogram and the calls_active gauge.
        self._setup_from: dict[str, float] = {}
        self._paths: dict[str, str] = {}
        self._path_labels: set[str] = set()
        self.core = core
        #: the per-call timelines ``rtcgw ctl calls``/``call`` read, once the worker has them
        self.timelines: CallTimelines | None = None
        self._ipc = ipc
        self._udp = udp
        self._interfaces = {b.transport: b.interface for b in boot.listeners}
        # Each call's direction from its CallStarted, for the CallEnded metric's label.
        self._directions: dict[str, str] = {}
        #: the call and leg of each Call-ID, for the log lines (rtcgw.worker.log_fields)
        self._legs = CallLegs()

    async def run(self) -> None:
        """Serve until ``Stop`` or until the supervisor closes the channel.

        On ``Stop`` every call is hung up (BYE, 503, CANCEL as its state asks), and the
        worker serves on for at most ``STOP_LINGER_S`` so that those requests are
        answered (and retransmitted over UDP if need be) before it exits.
        """
        stop_at = math.inf
        self._set_call_gauges()  # a fresh worker shows its 0 calls at once
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

    async def handle_media_events(self, events: trio.MemoryReceiveChannel[MediaEvent]) -> None:
        """Give the B2BUA what the media relay reported: end each call found silent for
        the media timeout, send the SIP side's RFC 4733 digits to clients as INFO."""
        async for event in events:
            now = trio.current_time()
            if isinstance(event, MediaTimedOut):
                output = self.core.end_call(event.call_id, EndReason.MEDIA_TIMEOUT, now)
            elif isinstance(event, DtmfReceived):
                output = self.core.dtmf_to_client(event.call_id, event.digit, now)
            else:
                assert_never(event)
            await self._emit(output)

    async def _handle(self, message: IpcMessage) -> None:
        now = trio.current_time()
        if isinstance(message, SipIn):
            direction_in = metrics.sip_labels_of(message.data)
            if direction_in is not None:
                metrics.observe_sip_message("in", *direction_in)
            output = self.core.receive_bytes(
                message.data, message.peer, now, interface=message.interface
            )
            self._timeline_in(output, message, now)
            await self._emit(output)
        elif isinstance(message, ConnectionClosed):
            await self._emit(self.core.connection_closed(message.connection_id, now))
        elif isinstance(message, BindingChanged):
            await self._binding_changed(message, now)
        elif isinstance(message, Ping):
            await self._ipc.send(Pong(message.seq, self.core.active_calls))
        elif isinstance(message, Drain):
            log.info("worker.drain", worker=self.index, deadline_s=message.deadline_s)
            self.core.draining = True
        elif isinstance(message, Undrain):
            log.info("worker.undrain", worker=self.index)
            self.core.draining = False
        elif isinstance(message, Query):
            await self._ipc.send(answer_query(self.index, self.core, message, self.timelines))
        elif isinstance(message, Configure):
            self._reconfigure(message)
        else:
            log.warning("ipc.unexpected", worker=self.index, kind=type(message).__name__)

    def _reconfigure(self, message: Configure) -> None:
        """A reload: new requests are routed by the new rules; calls in progress keep the
        Decision they got at their INVITE (the listeners and media need a restart)."""
        try:
            boot = WorkerBoot.loads(message.config)
            rules = CompiledRules.from_config(boot.config)
        except (TypeError, ValueError) as exc:
            log.error("worker.reload_failed", worker=self.index, reason=str(exc))
            return
        self.core.set_rules(rules)
        log.info("worker.reloaded", worker=self.index, config=boot.config.source)

    async def _binding_changed(self, change: BindingChanged, now: float) -> None:
        """Mirror the supervisor's cache; unregister upstream what it dropped for good."""
        try:
            binding = change.binding(now)
        except ValueError as exc:
            where = self._legs.fields(change.call_id)
            log.warning("binding.invalid", worker=self.index, error=str(exc), **where)
            return
        cache = self.core.registrations
        if change.removed:
            cache.remove(binding.key, change.reason)
            await self._emit(self.core.binding_removed(binding, change.reason, now))
        else:
            cache.put(binding, change.reason)

    async def _emit(self, output: Output) -> None:
        for notice in output.notices:
            if isinstance(notice, BindingReported):
                await self._report(notice)
            event, values = notice_event(notice, self._legs)
            log.info(event, worker=self.index, **values)
            self._legs.note(notice)
            self._count(notice)
            self._timeline_notice(notice)
        if output.notices:
            self._set_call_gauges()
        for outgoing in output.outgoing:
            message = outgoing.message
            if isinstance(message, Request):
                metrics.observe_sip_message("out", message.method, None)
            else:
                # Our 400 to a request whose CSeq is broken has that same CSeq.
                try:
                    method = message.cseq.method
                except SipError:
                    method = "other"
                metrics.observe_sip_message("out", method, message.status)
            if self.timelines is not None:
                transport = outgoing.destination.transport.value
                self.timelines.sip(
                    outgoing.data, trio.current_time(), direction="out", transport=transport
                )
            await self._send(outgoing)

    def _set_call_gauges(self) -> None:
        worker = str(self.index)
        metrics.WORKER_CALLS_ACTIVE.labels(worker).set(self.core.active_calls)
        counts: dict[str, int] = {}
        for path in self._paths.values():
            counts[path] = counts.get(path, 0) + 1
        # A path with no call left goes to 0 rather than keeping its last count.
        self._path_labels.update(counts)
        for path in self._path_labels:
            metrics.CALLS_ACTIVE.labels(worker, path).set(counts.get(path, 0))

    def _count(self, notice: object) -> None:
        """Count the notices that have a metric (bounded labels only, never the Call-ID)."""
        if isinstance(notice, MessageDropped):
            reason = metrics.drop_reason_of(notice.reason)
            metrics.SIP_MESSAGES_DROPPED.labels(reason.value).inc()
        elif isinstance(notice, RequestRejected):
            metrics.SIP_REQUESTS_REJECTED.labels(str(notice.status)).inc()
        elif isinstance(notice, CallStarted):
            self._directions[notice.call_id] = notice.direction.value
            self._setup_from[notice.call_id] = trio.current_time()
            self._paths[notice.call_id] = "setup"
        elif isinstance(notice, CallAnswered):
            self._setup_done(notice.call_id)
            label = self._media.path_label(notice.call_id) if self._media else None
            self._paths[notice.call_id] = label or "signaling"
        elif isinstance(notice, CallEnded):
            if notice.status is not None:
                self._setup_done(notice.call_id)
            self._setup_from.pop(notice.call_id, None)
            self._paths.pop(notice.call_id, None)
            direction = self._directions.pop(notice.call_id, "unknown")
            result = notice.reason.value
            if notice.status is not None:
                result = f"{notice.status // 100}xx"
            metrics.CALLS_TOTAL.labels(direction, result).inc()
        elif isinstance(notice, RegisterHandled):
            metrics.REGISTER_REQUESTS.labels(notice.outcome.value).inc()
        elif isinstance(notice, RouteDecided):
            for realm, kind, rule in notice.hits:
                metrics.RULE_HITS.labels(realm, kind, rule).inc()

    def _setup_done(self, call_id: str) -> None:
        """Observe the time from the INVITE to its final answer, once per call."""
        started = self._setup_from.pop(call_id, None)
        if started is not None:
            direction = self._directions.get(call_id, "unknown")
            metrics.CALL_SETUP_SECONDS.labels(direction).observe(trio.current_time() - started)

    def _timeline_in(self, output: Output, message: SipIn, now: float) -> None:
        """Put a received SIP message on its call's timeline, a new call's INVITE too."""
        timelines = self.timelines
        if timelines is None:
            return
        for notice in output.notices:
            if isinstance(notice, CallStarted):
                timelines.open(notice.call_id, now, b_call_id=notice.b_call_id)
        transport = message.peer.transport.value
        timelines.sip(message.data, now, direction="in", transport=transport)

    def _timeline_notice(self, notice: object) -> None:
        """Put a call's notices on its timeline; ``CallEnded`` starts its retention."""
        timelines = self.timelines
        if timelines is None:
            return
        now = trio.current_time()
        if isinstance(notice, CallStarted):
            timelines.open(notice.call_id, now, b_call_id=notice.b_call_id)
            timelines.record(notice.call_id, "call_started", now, direction=notice.direction.value)
        elif isinstance(notice, CallAnswered):
            timelines.record(notice.call_id, "answered", now)
        elif isinstance(notice, CallEnded):
            reason = notice.reason.value
            timelines.record(notice.call_id, "ended", now, reason=reason, status=notice.status)
            timelines.ended(notice.call_id, now)
        elif isinstance(notice, RouteDecided) and notice.call_id in timelines:
            timelines.record(
                notice.call_id,
                "route_decided",
                now,
                method=notice.method,
                rules=notice.rules,
                destination=notice.destination_agent,
            )
        elif isinstance(notice, MediaRefused | RequestRejected) and notice.call_id in timelines:
            event = "media_refused" if isinstance(notice, MediaRefused) else "rejected"
            timelines.record(
                str(notice.call_id), event, now, status=notice.status, reason=notice.reason
            )

    async def _report(self, notice: BindingReported) -> None:
        report = BindingReport.of(
            notice.binding, trio.current_time(), removed=notice.removed, reason=notice.reason
        )
        await self._ipc.send(report)

    async def _send(self, outgoing: Outgoing) -> None:
        peer = outgoing.destination
        if peer.transport is Transport.UDP and peer.connection_id is None and self._udp:
            interface = self._interfaces.get(Transport.UDP)
            sock = self._udp.get(interface or "") or next(iter(self._udp.values()))
            try:
                await sock.sendto(outgoing.data, (peer.host, peer.port))
            except OSError as exc:
                call_id = outgoing.message.get("Call-ID")
                where = self._legs.fields(call_id) if call_id else {}
                log.info(
                    "sip.udp.send_failed", host=peer.host, port=peer.port, error=str(exc), **where
                )
                await self._emit(self.core.transport_failed(outgoing, trio.current_time()))
            return
        interface = self._interfaces.get(peer.transport, "")
        await self._ipc.send(SipOut.to(peer, interface, outgoing.data))


class CallTimelinesView(Protocol):
    """What ``rtcgw ctl calls`` and ``call`` read (``rtcgw.worker.timeline.CallTimelines``)."""

    def summary(self) -> list[dict[str, object]]: ...

    def detail(self, call_id: str) -> dict[str, object] | None: ...


#: A reply body above this is cut (the IPC frame limit is 1 MiB).
_MAX_REPLY_BYTES = 900_000


def answer_query(
    index: int, core: B2bua, query: Query, timelines: CallTimelinesView | None
) -> QueryReply:
    """The answer to an ``rtcgw ctl`` query: ``calls`` (a row per call) or ``call``."""
    body: dict[str, object] = {
        "worker": index,
        "active": core.active_calls,
        "draining": core.draining,
    }
    if query.what == "calls":
        if timelines is not None:
            rows = timelines.summary()
        else:
            rows = [{"call_id": call_id} for call_id in core.call_ids()]
        body["calls"] = [{**row, "worker": index} for row in rows]
    elif query.what == "call" and query.call_id is not None:
        detail = timelines.detail(query.call_id) if timelines is not None else None
        if detail is None and query.call_id in core.call_ids():
            detail = {"call_id": query.call_id, "events": []}
        body["call"] = detail
    else:
        body["error"] = f"unknown query {query.what!r}"
    data = json.dumps(body, default=str).encode()
    if len(data) > _MAX_REPLY_BYTES:
        body.pop("calls", None)
        body.pop("call", None)
        body["error"] = f"answer of {len(data)} bytes is over the IPC limit"
        data = json.dumps(body, default=str).encode()
    return QueryReply(query.request_id, index, data)


async def _serve(args: argparse.Namespace) -> int:
    ipc = IpcChannel(socket.socket(fileno=args.ipc_fd), receives=Direction.TO_WORKER)
    udp = {name: trio.socket.from_stdlib_socket(socket.socket(fileno=fd)) for name, fd in args.udp}
    first = await ipc.receive()
    if not isinstance(first, Configure):
        log.error("worker.boot_failed", worker=args.index, reason=f"expected configure: {first}")
        return EXIT_BOOT_FAILED
    # Media events (timeouts, DTMF digits) come from the relay's handlers and timers, which
    # cannot await: they are queued here for the runtime. A timeout is reported once per
    # call and a digit once per RFC 4733 event (at most a few per second per call), and
    # the runtime drains them as fast as the B2BUA takes them, so the queue stays short.
    media_send, media_events = trio.open_memory_channel[MediaEvent](math.inf)
    try:
        boot = WorkerBoot.loads(first.config)
        settings = b2bua_settings(boot)
        timelines = CallTimelines(clock=trio.current_time)
        relay, seam = build_media(
            boot, args.index, on_event=media_send.send_nowait, timelines=timelines
        )
    except (TypeError, ValueError, MediaConfigError) as exc:
        log.error("worker.boot_failed", worker=args.index, reason=str(exc))
        return EXIT_BOOT_FAILED
    rules = CompiledRules.from_config(boot.config)
    core = B2bua(settings, shard=args.index, rules=rules, registrations=MemoryCache(), sdp=seam)
    runtime = WorkerRuntime(args.index, core, ipc=ipc, udp=udp, boot=boot, media=seam)
    runtime.timelines = timelines
    await ipc.send(Ready(args.index, os.getpid()))
    try:
        async with trio.open_nursery() as nursery:
            await nursery.start(relay.run)
            nursery.start_soon(runtime.handle_media_events, media_events)
            await runtime.run()
            nursery.cancel_scope.cancel()
    except* (trio.BrokenResourceError, trio.ClosedResourceError):
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
    # Every line of this process names its worker (trio copies the context into tasks).
    structlog.contextvars.bind_contextvars(worker=args.index)
    code: int = trio.run(_serve, args)
    return code


if __name__ == "__main__":
    sys.exit(main())
