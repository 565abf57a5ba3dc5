"""The stream connections the supervisor owns (WebSocket, TCP, TLS), by connection id.

Workers address a connection by its id (``Peer.connection_id``); the id is never reused
within a supervisor's life, so a message for a closed connection cannot reach a new one.
"""

from __future__ import annotations

import itertools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from rtcgw.sip.transport import Peer, Transport

__all__ = ["Connection", "ConnectionTable"]


@dataclass(slots=True)
class Connection:
    """One live connection: where it comes from and how to write a SIP message to it."""

    connection_id: int
    interface: str
    transport: Transport
    host: str
    port: int
    send: Callable[[bytes], Awaitable[None]]

    @property
    def peer(self) -> Peer:
        """The remote end as a ``Peer`` carrying this connection's id."""
        return Peer(self.transport, self.host, self.port, self.connection_id)


class ConnectionTable:
    """Live connections by id; ids count up from 1."""

    def __init__(self) -> None:
        self._ids = itertools.count(1)
        self._live: dict[int, Connection] = {}

    def add(
        self,
        interface: str,
        transport: Transport,
        host: str,
        port: int,
        send: Callable[[bytes], Awaitable[None]],
    ) -> Connection:
        """Register a new connection and return it with its fresh id."""
        connection = Connection(next(self._ids), interface, transport, host, port, send)
        self._live[connection.connection_id] = connection
        return connection

    def get(self, connection_id: int) -> Connection | None:
        """The live connection with this id, or None."""
        return self._live.get(connection_id)

    def remove(self, connection_id: int) -> None:
        """Forget a connection (it closed)."""
        self._live.pop(connection_id, None)

    def find(self, transport: Transport, host: str, port: int) -> Connection | None:
        """A live connection to this address (to reuse toward a SIP peer, RFC 3261 18.1.1)."""
        for connection in self._live.values():
            if (connection.transport, connection.host, connection.port) == (
                transport,
                host,
                port,
            ):
                return connection
        return None

    def __len__(self) -> int:
        return len(self._live)
