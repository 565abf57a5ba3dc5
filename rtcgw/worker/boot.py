"""What a worker is told at start: the configuration snapshot and the bound listeners.

The supervisor pickles a ``WorkerBoot`` into the IPC ``Configure`` message. Pickle is safe
here because both ends are our own processes on one socketpair; nothing from the network
is ever unpickled.
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass

from rtcgw.config import GatewayConfig
from rtcgw.sip.transport import Transport

__all__ = ["BoundListener", "WorkerBoot"]


@dataclass(frozen=True, slots=True)
class BoundListener:
    """A listening socket the supervisor bound: interface name, transport and address."""

    interface: str
    transport: Transport
    host: str
    port: int


@dataclass(frozen=True, slots=True)
class WorkerBoot:
    """Everything a worker needs beyond its command line."""

    config: GatewayConfig
    listeners: tuple[BoundListener, ...]
    #: how many workers share the media port ranges (each takes its own slice)
    worker_count: int = 1

    def dumps(self) -> bytes:
        """The pickled form carried by ``Configure.config``."""
        return pickle.dumps(self, protocol=pickle.HIGHEST_PROTOCOL)

    @staticmethod
    def loads(data: bytes) -> WorkerBoot:
        """The boot record from ``Configure.config``."""
        boot = pickle.loads(data)
        if not isinstance(boot, WorkerBoot):
            raise TypeError(f"Configure carried a {type(boot).__name__}, not a WorkerBoot")
        return boot
