"""One-way delays: the percentiles a benchmark prints, and the tools' own floor.

Delays are kept as microseconds in ``array("q")``: eight bytes a sample and no object per
packet. A one-way delay measured through a relay is the relay's added delay plus loopback
delivery plus the time the receiving tool took to get to the datagram (its loop was busy
with other sockets, or not scheduled): an upper bound of the added delay, not the added
delay itself.

``SelfLoop`` measures the least of the tools' part: once a packet time, just before the
tool's loop goes to wait for its sockets, a socket of the tool sends itself a time stamp,
and the loop reads it back the way it reads media. What it sees is loopback delivery plus
one wake-up of that loop, under the same load, with no relay in between: the floor under
the one-way figures of the direction whose receiver that tool is. A probe that arrives while
the loop is busy with other sockets waits longer than that, and the wait is in its one-way
figure, not in the floor: so one-way minus floor is still an upper bound of the relay's
added delay. (Stamps sent from the busy part of the loop would always arrive behind the
rest of that pass, a floor above what most probes see.)
"""

from __future__ import annotations

import math
import socket
import struct
import time
from array import array
from typing import Final

__all__ = ["DELAY_POINTS", "INTERVAL_S", "SelfLoop", "delay_percentiles"]

#: The points a one-way delay is reported at, by name (100 is the maximum).
DELAY_POINTS: Final = (("p50", 50.0), ("p99", 99.0), ("p99.9", 99.9), ("max", 100.0))
_STAMP: Final = struct.Struct("!Q")
_BATCH: Final = 16
#: One stamp per G.711 packet time.
INTERVAL_S: Final = 0.02


def delay_percentiles(samples_us: array[int]) -> dict[str, float | int | None]:
    """``{"p50", "p99", "p99.9", "max"}`` in ms (nearest rank) and ``"samples"``.

    The points are None when there is no sample.
    """
    ordered = sorted(samples_us)
    figures: dict[str, float | int | None] = {}
    for name, point in DELAY_POINTS:
        if not ordered:
            figures[name] = None
            continue
        rank = _nearest_rank(point, len(ordered))
        figures[name] = round(ordered[rank] / 1000, 3)
    figures["samples"] = len(ordered)
    return figures


class SelfLoop:
    """A UDP socket on loopback that sends itself its send time and measures the trip."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((host, 0))
        self.sock.setblocking(False)
        self.address: tuple[str, int] = self.sock.getsockname()
        #: trips (microseconds) read while recording
        self.samples_us: array[int] = array("q")
        self.send_failed = 0
        self._next_s = 0.0

    def fileno(self) -> int:
        """The socket's file descriptor, for the owner's epoll."""
        return self.sock.fileno()

    def send_if_due(self, now_s: float) -> None:
        """Send a stamp if a packet time passed since the last one (``now_s``: monotonic).

        Call it just before the loop waits for readiness.
        """
        if now_s < self._next_s:
            return
        # Keep the packet time's cadence; after a long pass of the loop, skip ahead rather
        # than send a burst of stamps.
        self._next_s = max(self._next_s + INTERVAL_S, now_s)
        self.send()

    def send(self) -> None:
        """Send one time stamp (a refused send is counted, never raised)."""
        try:
            self.sock.sendto(_STAMP.pack(time.monotonic_ns()), self.address)
        except OSError:
            self.send_failed += 1

    def drain(self, *, record: bool) -> None:
        """Read what arrived; keep each trip when ``record``."""
        for _ in range(_BATCH):
            try:
                data = self.sock.recv(64)
            except BlockingIOError:
                return
            except OSError:
                continue
            now_ns = time.monotonic_ns()
            if record and len(data) == _STAMP.size:
                self.samples_us.append((now_ns - _STAMP.unpack(data)[0]) // 1000)

    def close(self) -> None:
        """Close the socket."""
        self.sock.close()


def _nearest_rank(point: float, count: int) -> int:
    """The 0-based index of the ``point`` percentile among ``count`` sorted samples."""
    # The tolerance keeps binary rounding (99.9 / 100 * 1000 = 999.0000000000001) from
    # moving the rank up by one.
    return min(count - 1, max(0, math.ceil(point * count / 100 - 1e-9) - 1))
