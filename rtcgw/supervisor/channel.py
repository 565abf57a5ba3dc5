"""One end of the supervisor <-> worker socketpair, under trio.

Frames and message kinds are ``rtcgw.supervisor.ipc`` (sans-IO); this module only moves
bytes. Both processes use it: the supervisor for each worker, a worker for its supervisor.
"""

from __future__ import annotations

import socket

import trio

from rtcgw.supervisor.ipc import Direction, IpcDecoder, IpcMessage, encode

__all__ = ["IpcChannel"]

_RECEIVE_BYTES = 256 * 1024


class IpcChannel:
    """Typed messages over a connected stream socket; sends are serialised by a lock."""

    def __init__(
        self,
        sock: socket.socket,
        *,
        receives: Direction | None = None,
        max_frame_bytes: int = 1 << 20,
    ) -> None:
        sock.setblocking(False)
        self._stream = trio.SocketStream(trio.socket.from_stdlib_socket(sock))
        # ``receives`` makes a message sent the wrong way a protocol error, not a surprise.
        self._decoder = IpcDecoder(max_frame_bytes=max_frame_bytes, direction=receives)
        # trio streams refuse concurrent send_all calls; tasks of one process share us.
        self._send_lock = trio.Lock()

    async def send(self, message: IpcMessage) -> None:
        """Send one message; raises ``trio.BrokenResourceError`` if the peer is gone."""
        data = encode(message)
        async with self._send_lock:
            await self._stream.send_all(data)

    async def receive(self) -> IpcMessage | None:
        """The next message, or None when the peer closed its end."""
        while True:
            message = self._decoder.next_message()
            if message is not None:
                return message
            try:
                data = await self._stream.receive_some(_RECEIVE_BYTES)
            except trio.BrokenResourceError:
                return None
            if not data:
                return None
            self._decoder.feed(data)

    async def aclose(self) -> None:
        """Close our end; the peer's ``receive`` then returns None."""
        await self._stream.aclose()
