"""Transports and peers: where a SIP message came from or goes to.

No sockets here: a ``Peer`` is plain data that the runtime maps to a socket or a
connection. ``connection_id`` names a stream connection (TCP, TLS, WebSocket) owned by the
supervisor; it is what keeps requests to a browser on the WebSocket it opened.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

__all__ = ["Peer", "Transport"]


class Transport(enum.Enum):
    """A SIP transport, named as in the Via header's sent-protocol."""

    UDP = "UDP"
    TCP = "TCP"
    TLS = "TLS"
    WS = "WS"  #: RFC 7118 section 5: SIP over WebSocket, Via transport "WS"
    WSS = "WSS"  #: RFC 7118 section 5: SIP over secure WebSocket, Via transport "WSS"

    @property
    def reliable(self) -> bool:
        """True for transports that retransmit by themselves (RFC 3261 section 17.1.1.2)."""
        return self is not Transport.UDP

    @property
    def stream(self) -> bool:
        """True where messages are framed by Content-Length (RFC 3261 section 18.3)."""
        return self in (Transport.TCP, Transport.TLS)

    @classmethod
    def from_via(cls, token: str) -> Transport:
        """The transport named by a Via sent-protocol token (case-insensitive)."""
        return cls(token.upper())


@dataclass(frozen=True, slots=True)
class Peer:
    """The remote end of a message: transport, address and, for streams, the connection."""

    transport: Transport
    host: str
    port: int
    connection_id: int | None = None
