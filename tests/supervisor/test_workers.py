"""A worker slot keeps going when the supervisor fails to handle one of its messages, and
never waits for a worker's socket while reading from it."""

from __future__ import annotations

import io
import json
import socket

import trio

from rtcgw.observability.logging import LogFormat, configure_logging
from rtcgw.supervisor.channel import IpcChannel
from rtcgw.supervisor.ipc import Direction, IpcMessage, Ping, Pong
from rtcgw.supervisor.workers import Outbox, WorkerSlot


async def test_a_failing_message_handler_is_logged_and_contained() -> None:
    handled: list[IpcMessage] = []

    async def on_message(slot: WorkerSlot, message: IpcMessage) -> None:
        if isinstance(message, Pong) and message.seq == 1:
            raise RuntimeError("bug while handling pong 1")
        handled.append(message)

    async def on_ready(slot: WorkerSlot) -> None:
        pass

    out = io.StringIO()
    configure_logging(LogFormat.JSON, stream=out)
    slot = WorkerSlot(
        0, 1, boot=b"", udp_fds=(), worker_args=(), on_message=on_message, on_ready=on_ready
    )
    await slot._deliver(Pong(1, active_calls=0))
    await slot._deliver(Pong(2, active_calls=0))
    assert handled == [Pong(2, active_calls=0)]
    (record,) = [json.loads(line) for line in out.getvalue().splitlines()]
    assert record["event"] == "supervisor.message_failed"
    assert record["kind"] == "Pong"
    assert "bug while handling pong 1" in record["exception"]


async def test_the_outbox_queues_without_waiting_while_the_worker_does_not_read() -> None:
    # The supervisor's reading task also sends (broadcasts): if a send could wait for a
    # full socket while the worker waits for the supervisor to read, both would stop.
    supervisor_end, worker_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    outbox = Outbox(IpcChannel(supervisor_end, receives=Direction.TO_SUPERVISOR))
    worker = IpcChannel(worker_end, receives=Direction.TO_WORKER)
    # Far more than both socket buffers hold: the last post must still return at once.
    messages = [Ping(seq) for seq in range(20_000)]
    assert all(outbox.post(message) for message in messages)
    assert outbox.queued == len(messages)
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(outbox.run)
            received = [await worker.receive() for _ in messages]
            outbox.close()
    assert received == messages
    assert not outbox.post(Ping(0))  # closed: refused, not raised
    await worker.aclose()
