"""UDP ports for media: each worker binds only inside its own slice of the configured range.

Slices are disjoint, so workers never race for a port, and a port number tells an operator
which worker owns the socket. RTP/RTCP pairs start on an even port (RFC 3550 section 11).
Ports are handed out round-robin from a cursor, so a port just released is not reused at
once (late packets of the old call must not reach a new one).
"""

from __future__ import annotations

import errno
import socket
from typing import final

from rtcgw.config import PortRange

__all__ = ["MediaPortsExhausted", "PortPool", "worker_slice"]

#: Receive buffer per media socket: a few hundred packets of headroom for a busy batch.
RECEIVE_BUFFER_BYTES = 256 * 1024


class MediaPortsExhausted(Exception):
    """Every port of the worker's slice is in use (or refused by the system)."""


def worker_slice(ports: PortRange, index: int, count: int) -> tuple[int, int]:
    """Worker ``index``'s inclusive ``(first, last)`` share of ``ports``, split evenly.

    Raises:
        ValueError: ``index`` is not below ``count`` or the share would be empty.
    """
    if not 0 <= index < count:
        raise ValueError(f"worker index {index} is not below the worker count {count}")
    size = ports.size // count
    if size < 2:
        raise ValueError(f"{ports} cannot give each of {count} workers two ports")
    first = ports.start + index * size
    return first, first + size - 1


@final
class PortPool:
    """Binds non-blocking UDP sockets on free ports of one slice."""

    def __init__(self, bind_address: str, first: int, last: int) -> None:
        self.bind_address = bind_address
        self.first = first
        self.last = last
        self._cursor = first
        self._family = socket.AF_INET6 if ":" in bind_address else socket.AF_INET

    @property
    def size(self) -> int:
        """How many ports the slice holds."""
        return self.last - self.first + 1

    def open_one(self) -> socket.socket:
        """A socket on the next free port.

        Raises:
            MediaPortsExhausted: no port of the slice could be bound.
        """
        for _ in range(self.size):
            port = self._advance(1)
            sock = self._bind(port)
            if sock is not None:
                return sock
        raise MediaPortsExhausted(f"no free media port in {self.first}-{self.last}")

    def open_pair(self) -> tuple[socket.socket, socket.socket]:
        """An RTP socket on an even port and its RTCP socket on the next (odd) one.

        Raises:
            MediaPortsExhausted: no free even/odd pair in the slice.
        """
        for _ in range(self.size // 2 + 1):
            if self._cursor % 2:
                self._advance(1)
            port = self._advance(2)
            if port + 1 > self.last:
                continue
            rtp = self._bind(port)
            if rtp is None:
                continue
            rtcp = self._bind(port + 1)
            if rtcp is None:
                rtp.close()
                continue
            return rtp, rtcp
        raise MediaPortsExhausted(f"no free even/odd media port pair in {self.first}-{self.last}")

    def _advance(self, step: int) -> int:
        port = self._cursor
        self._cursor += step
        if self._cursor > self.last:
            self._cursor = self.first
        return port

    def _bind(self, port: int) -> socket.socket | None:
        sock = socket.socket(self._family, socket.SOCK_DGRAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER_BYTES)
            sock.bind((self.bind_address, port))
        except OSError as exc:
            sock.close()
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                return None
            raise
        sock.setblocking(False)
        return sock
