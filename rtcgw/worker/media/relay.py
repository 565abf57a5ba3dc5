"""The worker's one media task: readiness across all media sockets, drained in batches.

docs/libraries.md section 3 measured it: awaiting ``trio.socket`` once per packet costs
15-26 us of CPU per relayed packet and loses packets in bursts, while waiting once for
readiness and then draining each ready socket with plain non-blocking calls costs about
7.5 us. So every media socket is registered in one level-triggered ``epoll`` object, the task
waits for that object to become readable (or for the next timer), then reads in rounds
without going back to trio: each round asks the ``epoll`` object which sockets are ready and
reads one datagram from each, up to ``BATCH`` rounds before the task checkpoints again.

Why one datagram per socket per round: with hundreds of calls each ready socket holds about
one packet per wake-up, so draining it until ``recvfrom`` fails doubled the reads, and every
failing read costs a system call and a raised ``BlockingIOError``. Level-triggered ``epoll``
reports a socket that still holds data again in the next round, so one ``epoll_wait`` per
round replaces one failing read per socket, and a busy socket still cannot starve the others.

Handlers are plain callables ``(data, source, now) -> None`` that send with ``sendto`` on
non-blocking sockets themselves; they must never raise (a relay that dies takes every call
of the worker with it), so one that does is logged and its packet dropped. A socket or a
timer may be given the call and leg it serves (``log_context``), which only such a line
reads: the hot path never looks at it.

Timers (DTLS retransmissions, consent and media-timeout checks) are a heap of deadlines;
a cancelled timer simply finds its owner closed when it fires.
"""

from __future__ import annotations

import heapq
import itertools
import math
import select
import socket
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import final

import trio

from rtcgw.observability.logging import get_logger

__all__ = ["BATCH", "DatagramHandler", "MediaRelay", "TimerCallback"]

#: Rounds of reads (one datagram from each ready socket) before the task checkpoints: enough
#: to empty a burst, few enough that the B2BUA's tasks run between them.
BATCH = 64
#: Largest datagram read: an Ethernet MTU's worth, more than any RTP packet we relay.
MAX_DATAGRAM = 2048

DatagramHandler = Callable[[bytes, tuple[str, int], float], None]
TimerCallback = Callable[[float], None]

log = get_logger()

_NO_CONTEXT: Mapping[str, object] = MappingProxyType({})


@final
class MediaRelay:
    """Every media socket of one worker and the task that drains them."""

    def __init__(self) -> None:
        self._epoll = select.epoll()
        self._sockets: dict[int, tuple[socket.socket, DatagramHandler, bool]] = {}
        # Kept apart from the sockets' entries so that draining unpacks no more than it uses.
        self._contexts: dict[int, Mapping[str, object]] = {}
        self._timers: list[tuple[float, int, TimerCallback, Mapping[str, object]]] = []
        self._sequence = itertools.count()
        # The scope of the current wait, so that a timer added from another task (the
        # B2BUA's, through the SDP seam) can pull the wake-up earlier.
        self._wait: trio.CancelScope | None = None
        self.handler_errors = 0

    @property
    def socket_count(self) -> int:
        """How many sockets are registered."""
        return len(self._sockets)

    def register(
        self,
        sock: socket.socket,
        handler: DatagramHandler,
        *,
        log_context: Mapping[str, object] | None = None,
    ) -> None:
        """Drain ``sock`` into ``handler`` from now on (the socket must be non-blocking);
        ``log_context`` (``call_id``, ``leg``) goes on the line of a handler that fails."""
        fd = sock.fileno()
        # IPv6 recvfrom gives (host, port, flowinfo, scope_id): handlers see (host, port).
        self._sockets[fd] = (sock, handler, sock.family == socket.AF_INET6)
        if log_context:
            self._contexts[fd] = log_context
        else:
            self._contexts.pop(fd, None)  # a closed socket's number, given again
        self._epoll.register(fd, select.EPOLLIN)

    def unregister(self, sock: socket.socket) -> None:
        """Stop draining ``sock`` and close it."""
        fd = sock.fileno()
        if fd >= 0 and self._sockets.pop(fd, None) is not None:
            self._epoll.unregister(fd)
        self._contexts.pop(fd, None)
        sock.close()

    def call_at(
        self,
        deadline: float,
        callback: TimerCallback,
        *,
        log_context: Mapping[str, object] | None = None,
    ) -> None:
        """Run ``callback(now)`` once at ``deadline`` (trio clock); ``log_context`` goes on
        the line of a callback that fails."""
        entry = (deadline, next(self._sequence), callback, log_context or _NO_CONTEXT)
        heapq.heappush(self._timers, entry)
        if self._wait is not None and deadline < self._wait.deadline:
            self._wait.deadline = deadline

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Serve until cancelled; closes every socket on the way out."""
        task_status.started()
        try:
            while True:
                deadline = self._timers[0][0] if self._timers else math.inf
                with trio.move_on_at(deadline) as self._wait:
                    await trio.lowlevel.wait_readable(self._epoll.fileno())
                self._wait = None
                now = trio.current_time()
                self._fire_timers(now)
                self._drain(now)
                await trio.lowlevel.checkpoint()
        finally:
            for sock, _, _ in list(self._sockets.values()):
                sock.close()
            self._sockets.clear()
            self._contexts.clear()
            self._epoll.close()

    def _fire_timers(self, now: float) -> None:
        timers = self._timers
        while timers and timers[0][0] <= now:
            _, _, callback, context = heapq.heappop(timers)
            try:
                callback(now)
            except Exception:  # a timer's bug must not stop the relay
                self.handler_errors += 1
                log.exception("media.timer_failed", **context)

    def _drain(self, now: float) -> None:
        sockets = self._sockets
        poll = self._epoll.poll
        for _ in range(BATCH):
            ready = poll(0)
            if not ready:
                return
            for fd, _ in ready:
                entry = sockets.get(fd)
                if entry is None:  # closed by a handler earlier in this round
                    continue
                sock, handler, ipv6 = entry
                try:
                    data, source = sock.recvfrom(MAX_DATAGRAM)
                except OSError:
                    # BlockingIOError: another handler's work emptied it, rare. Otherwise an
                    # ICMP error from an earlier send (port unreachable), which Linux
                    # surfaces here; it says nothing about the next datagram, and epoll
                    # reports the socket again if one is queued.
                    continue
                if ipv6:
                    source = source[:2]
                try:
                    handler(data, source, now)
                except Exception:  # see the module docstring: drop, log, go on
                    self.handler_errors += 1
                    context = self._contexts.get(fd, _NO_CONTEXT)
                    log.exception("media.handler_failed", port=_port_of(sock), **context)
            # Later rounds see packets that arrived during this one: keep their time true.
            now = trio.current_time()


def _port_of(sock: socket.socket) -> int | None:
    """The socket's local port, None once a failing handler closed it."""
    try:
        return int(sock.getsockname()[1])
    except OSError:
        return None
