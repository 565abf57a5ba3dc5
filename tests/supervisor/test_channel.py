"""IpcChannel over a real socketpair: typed messages both ways, EOF when a side closes."""

from __future__ import annotations

import socket

import trio

from rtcgw.supervisor.channel import IpcChannel
from rtcgw.supervisor.ipc import Ping, Pong, SipIn


async def test_messages_cross_a_socketpair_in_order_and_eof_ends_receive() -> None:
    left, right = socket.socketpair()
    a, b = IpcChannel(left), IpcChannel(right)
    big = b"INVITE sip:x SIP/2.0\r\n" + b"a" * 300_000
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(a.send, SipIn("WS", "127.0.0.1", 5, 7, "ws", big))
            received = await b.receive()
        await a.send(Ping(1))
        await b.send(Pong(1, active_calls=0))
        assert isinstance(received, SipIn) and received.data == big
        assert await b.receive() == Ping(1)
        assert await a.receive() == Pong(1, active_calls=0)
        await a.aclose()
        assert await b.receive() is None
        await b.aclose()
