"""A worker slot keeps going when the supervisor fails to handle one of its messages, and
never waits for a worker's socket while reading from it."""

from __future__ import annotations

import io
import json
import socket

import trio

from rtcgw.config import load_config_text
from rtcgw.observability.logging import LogFormat, configure_logging
from rtcgw.sip.message import Response
from rtcgw.sip.parse import parse_message
from rtcgw.sip.transport import Peer, Transport
from rtcgw.supervisor.arbiter import OVERLOAD_LAG_S, Supervisor
from rtcgw.supervisor.channel import IpcChannel
from rtcgw.supervisor.ipc import Direction, IpcMessage, Ping, Pong, SipOut
from rtcgw.supervisor.workers import Outbox, WorkerSlot
from tests.worker.b2bua.harness import CONFIG_TEXT


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


async def test_a_worker_that_is_behind_gets_no_new_invite_but_its_calls_go_on(
    autojump_clock: trio.abc.Clock,
) -> None:
    config = load_config_text(CONFIG_TEXT, source="handbook")
    supervisor = Supervisor(config, worker_count=1)
    slot = WorkerSlot(
        0, 1, boot=b"", udp_fds=(), worker_args=(), on_message=_ignore, on_ready=_nothing
    )
    supervisor.workers.append(slot)
    supervisor_end, worker_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    outbox = Outbox(IpcChannel(supervisor_end, receives=Direction.TO_SUPERVISOR))
    slot._outbox = outbox
    slot.ready = True
    sent: list[SipOut] = []

    async def send_out(message: SipOut) -> None:
        sent.append(message)

    supervisor._send_out = send_out  # type: ignore[method-assign]
    browser = Peer(Transport.WSS, "192.0.2.7", 50000, connection_id=1)
    invite = _request("INVITE", to_tag=None)
    reinvite = _request("INVITE", to_tag="b1")
    await supervisor.inbound(invite, "wss", browser)
    assert (sent, outbox.queued, slot.lag_s) == ([], 1, 0.0)  # goes to the worker
    # Nothing is written (the outbox task is not running): the worker is behind.
    await trio.sleep(2 * OVERLOAD_LAG_S)
    assert slot.lag_s == 2 * OVERLOAD_LAG_S
    await supervisor.inbound(invite, "wss", browser)
    [refusal] = sent
    response = parse_message(refusal.data)
    assert isinstance(response, Response)
    assert (response.status, response.get("Retry-After")) == (503, "5")
    await supervisor.inbound(reinvite, "wss", browser)
    assert len(sent) == 1  # an in-dialog request is never refused
    assert outbox.queued == 2
    # Once written, nothing waits: new INVITEs go through again.
    worker = IpcChannel(worker_end, receives=Direction.TO_WORKER)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(outbox.run)
        received = [await worker.receive() for _ in range(2)]
        assert slot.lag_s == 0.0
        await supervisor.inbound(invite, "wss", browser)
        received.append(await worker.receive())
        outbox.close()
    assert [type(m).__name__ for m in received] == ["SipIn"] * 3
    assert len(sent) == 1


async def _ignore(slot: WorkerSlot, message: IpcMessage) -> None:
    pass


async def _nothing(slot: WorkerSlot) -> None:
    pass


def _request(method: str, *, to_tag: str | None) -> bytes:
    to = "<sip:bob@example.com>" + (f";tag={to_tag}" if to_tag else "")
    return (
        f"{method} sip:bob@example.com SIP/2.0\r\n"
        "Via: SIP/2.0/WSS abc.invalid;branch=z9hG4bK776asdhds\r\n"
        "Max-Forwards: 70\r\n"
        f"To: {to}\r\n"
        "From: <sip:alice@example.com>;tag=1928301774\r\n"
        "Call-ID: a84b4c76e66710\r\n"
        "CSeq: 1 INVITE\r\n"
        "Contact: <sip:alice@abc.invalid;transport=ws>\r\n"
        "Content-Length: 0\r\n\r\n"
    ).encode()
