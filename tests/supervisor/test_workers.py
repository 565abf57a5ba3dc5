"""A worker slot keeps going when the supervisor fails to handle one of its messages."""

from __future__ import annotations

import io
import json

from rtcgw.observability.logging import LogFormat, configure_logging
from rtcgw.supervisor.ipc import IpcMessage, Pong
from rtcgw.supervisor.workers import WorkerSlot


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
