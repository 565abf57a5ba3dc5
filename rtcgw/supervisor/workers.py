"""Worker processes: spawn, talk to, restart.

Each ``WorkerSlot`` keeps one worker index alive. A worker is a fresh interpreter
(``python -m rtcgw.worker``), never a fork, given one end of a socketpair for IPC and
duplicates of the UDP listening sockets so it can send SIP from the listening address
(DESIGN.md section 1). It receives its configuration in a ``Configure`` message and
reports ``Ready`` when it can take traffic.

A worker that dies is restarted after a backoff that doubles with each quick death (from
0.1 s up to 5 s) and resets once a worker has stayed up for 10 s; restarts are counted.
Only that worker's calls are lost: the registration cache lives in the supervisor and is
re-sent to the new worker. Workers are pinged every ``HEARTBEAT_INTERVAL_S``; one that says
nothing for ``HEARTBEAT_TIMEOUT_S`` is hung, and is killed and restarted like a dead one.

Messages to a worker go through its ``Outbox``: the task that reads a worker's messages
also sends (a binding one worker reports is broadcast to every worker, itself included),
and if it waited for a full socket it would stop reading while that worker waits for the
supervisor to read: both buffers full, each side waiting to write. A burst of
re-REGISTERs from a thousand browsers did exactly that. So sends are queued and written by
a task of their own, and the supervisor always keeps reading.
"""

from __future__ import annotations

import collections
import contextlib
import math
import socket
import sys
from collections.abc import Awaitable, Callable, Sequence

import trio

from rtcgw.observability import metrics
from rtcgw.observability.logging import get_logger
from rtcgw.supervisor.channel import IpcChannel
from rtcgw.supervisor.ipc import Configure, Direction, IpcMessage, Ping, Pong, Ready, Stop

__all__ = ["HEARTBEAT_INTERVAL_S", "HEARTBEAT_TIMEOUT_S", "Outbox", "WorkerSlot"]

#: How often the supervisor pings each worker, and how long a worker may stay silent (no
#: message at all, Pong included) before it is considered hung and killed.
HEARTBEAT_INTERVAL_S = 2.0
HEARTBEAT_TIMEOUT_S = 10.0
_BACKOFF_FIRST_S = 0.1
_BACKOFF_MAX_S = 5.0
_STABLE_AFTER_S = 10.0

log = get_logger()

MessageHandler = Callable[["WorkerSlot", IpcMessage], Awaitable[None]]


class Outbox:
    """Messages for one worker, queued without waiting and written in order by ``run``."""

    def __init__(self, channel: IpcChannel) -> None:
        self._channel = channel
        # Unbounded on purpose (see the module docstring): a bound would bring the wait
        # back. It only grows while the worker does not read, and a worker that stops
        # reading stops answering pings and is restarted, which drops the queue.
        self._send, self._receive = trio.open_memory_channel[IpcMessage](math.inf)
        # When each message still queued (or being written) was posted, oldest first.
        self._posted: collections.deque[float] = collections.deque()

    def post(self, message: IpcMessage) -> bool:
        """Queue ``message``; False once the outbox is closed."""
        try:
            self._send.send_nowait(message)
        except (trio.ClosedResourceError, trio.BrokenResourceError):
            return False
        self._posted.append(trio.current_time())
        return True

    @property
    def queued(self) -> int:
        """Messages waiting to be written."""
        return len(self._posted)

    @property
    def lag_s(self) -> float:
        """How long the oldest message not yet written has waited: 0 when none waits."""
        return trio.current_time() - self._posted[0] if self._posted else 0.0

    def close(self) -> None:
        """Refuse further messages; ``run`` writes what is queued, then returns."""
        self._send.close()

    async def run(self) -> None:
        """Write queued messages until closed, or until the worker's end is gone."""
        async with self._receive:
            async for message in self._receive:
                try:
                    await self._channel.send(message)
                except (trio.BrokenResourceError, trio.ClosedResourceError):
                    return
                finally:
                    self._posted.popleft()


class WorkerSlot:
    """One worker index: its current process, IPC channel and restart count."""

    def __init__(
        self,
        index: int,
        count: int,
        *,
        boot: bytes,
        udp_fds: Sequence[tuple[str, int]],
        worker_args: Sequence[str],
        on_message: MessageHandler,
        on_ready: Callable[[WorkerSlot], Awaitable[None]],
    ) -> None:
        self.index = index
        self.count = count
        self.restarts = 0
        self.pid: int | None = None
        self.ready = False
        #: the worker's calls as of its last Pong; trio time it became ready (None: not up)
        self.active_calls = 0
        self.ready_since: float | None = None
        #: this worker alone drains (``rtcgw ctl drain --worker N``); re-sent after a restart
        self.draining = False
        self._boot = boot
        self._udp_fds = tuple(udp_fds)
        self._worker_args = tuple(worker_args)
        self._on_message = on_message
        self._on_ready = on_ready
        self._channel: IpcChannel | None = None
        self._outbox: Outbox | None = None
        self._process: trio.Process | None = None
        self._stopping = False
        self._last_heard = 0.0

    @property
    def lag_s(self) -> float:
        """How long the oldest message for the worker has waited to be written to it: how
        far behind the worker is (0 when it keeps up, or is down)."""
        outbox = self._outbox
        return 0.0 if outbox is None else outbox.lag_s

    def stopping(self) -> bool:
        """True once ``stop`` or ``kill`` was called: the slot will not restart."""
        return self._stopping

    def set_boot(self, boot: bytes) -> None:
        """The pickled ``WorkerBoot`` a restarted worker gets (a reload changed it)."""
        self._boot = boot

    async def restart(self, grace_s: float) -> None:
        """Stop the current worker (``Stop``, killed after ``grace_s``); ``run`` starts a
        new one. Its calls are ended (BYE) as on a stop."""
        channel, process = self._channel, self._process
        if process is None or process.returncode is not None:
            return
        if channel is not None:
            with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
                await channel.send(Stop())
        with trio.move_on_after(grace_s):
            await process.wait()
        if process.returncode is None:
            log.warning("worker.killed", worker=self.index, pid=process.pid, grace_s=grace_s)
            process.kill()
            await process.wait()

    async def send(self, message: IpcMessage) -> bool:
        """Queue a message for the worker if it is up (never waits for the socket); False
        if it is not (restarting or stopping)."""
        outbox = self._outbox
        if outbox is None or not self.ready:
            return False
        return outbox.post(message)

    async def run(self) -> None:
        """Keep a worker running for this index until ``stop`` is called."""
        failures = 0
        while not self.stopping():
            started = trio.current_time()
            returncode = await self._run_once()
            if self.stopping():
                return
            if trio.current_time() - started >= _STABLE_AFTER_S:
                failures = 0
            delay = min(_BACKOFF_FIRST_S * 2**failures, _BACKOFF_MAX_S)
            failures += 1
            self.restarts += 1
            metrics.WORKER_RESTARTS.inc()
            log.warning(
                "worker.exited",
                worker=self.index,
                returncode=returncode,
                restart_in_s=delay,
                restarts=self.restarts,
            )
            await trio.sleep(delay)

    async def stop(self, grace_s: float) -> None:
        """Ask the worker to stop; kill it if it has not exited after ``grace_s``."""
        self._stopping = True
        channel, process = self._channel, self._process
        if channel is not None:
            with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
                await channel.send(Stop())
        if process is None:
            return
        with trio.move_on_after(grace_s):
            await process.wait()
        if process.returncode is None:
            log.warning("worker.killed", worker=self.index, pid=process.pid, grace_s=grace_s)
            process.kill()
            await process.wait()

    def kill(self) -> None:
        """Kill the current process at once (a second SIGINT)."""
        self._stopping = True
        if self._process is not None and self._process.returncode is None:
            self._process.kill()

    async def _deliver(self, message: IpcMessage) -> None:
        # One message the supervisor fails to handle must not stop the gateway: the
        # failure is logged with its traceback (a bug to fix) and the next message goes on.
        try:
            await self._on_message(self, message)
        except Exception:
            log.exception(
                "supervisor.message_failed", worker=self.index, kind=type(message).__name__
            )

    async def _run_once(self) -> int:
        parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        command = [
            sys.executable,
            "-m",
            "rtcgw.worker",
            "--index",
            str(self.index),
            "--ipc-fd",
            str(child.fileno()),
            *self._worker_args,
        ]
        for name, fd in self._udp_fds:
            command += ["--udp", f"{name}={fd}"]
        try:
            process = await trio.lowlevel.open_process(
                command, pass_fds=(child.fileno(), *(fd for _, fd in self._udp_fds))
            )
        finally:
            child.close()
        self._process, self.pid = process, process.pid
        channel = IpcChannel(parent, receives=Direction.TO_SUPERVISOR)
        outbox = Outbox(channel)
        self._channel, self._outbox = channel, outbox
        self._last_heard = trio.current_time()
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._heartbeat, channel, process)
                outbox.post(Configure(self.index, self.count, self._boot))
                nursery.start_soon(outbox.run)
                while (message := await channel.receive()) is not None:
                    self._last_heard = trio.current_time()
                    if isinstance(message, Ready):
                        if not self.ready:
                            metrics.WORKERS_UP.inc()
                        self.ready = True
                        self.ready_since = trio.current_time()
                        log.info("worker.ready", worker=self.index, pid=process.pid)
                        await self._on_ready(self)
                    elif isinstance(message, Pong):
                        self.active_calls = message.active_calls
                    else:
                        await self._deliver(message)
                nursery.cancel_scope.cancel()
        except trio.BrokenResourceError:
            pass  # the worker died while we were writing to it
        finally:
            if self.ready:
                metrics.WORKERS_UP.dec()
            self.ready = False
            self.ready_since = None
            self.active_calls = 0
            self._channel, self._outbox = None, None
            outbox.close()
            await channel.aclose()
        returncode = await process.wait()
        metrics.worker_exited(process.pid)
        return returncode

    async def _heartbeat(self, channel: IpcChannel, process: trio.Process) -> None:
        """Ping the worker; one silent for ``HEARTBEAT_TIMEOUT_S`` is hung: kill it.

        A hung worker (a busy loop, a stopped process) holds its calls hostage just like a
        dead one, so it is treated as dead and restarted by ``run``.
        """
        seq = 0
        while process.returncode is None:
            await trio.sleep(HEARTBEAT_INTERVAL_S)
            silent_s = trio.current_time() - self._last_heard
            if silent_s > HEARTBEAT_TIMEOUT_S:
                log.warning(
                    "worker.unresponsive", worker=self.index, pid=process.pid, silent_s=silent_s
                )
                process.kill()
                return
            seq += 1
            with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
                await channel.send(Ping(seq))
