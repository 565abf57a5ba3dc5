"""The probe payload: what every benchmark RTP packet carries, so both ends can count.

A G.711 frame of 20 ms is 160 bytes. Its first bytes are a header the relay never looks
at (it does not transcode PCMU): the measuring phase the packet was sent in, the call's
index, a per-call counter and the sender's monotonic clock in nanoseconds. The rest is
PCMU silence. Counting by the phase written in the packet, not by when it arrives, makes
the loss figures exact whatever the timing of the window's edges.
"""

from __future__ import annotations

import enum
import struct
from typing import Final

__all__ = ["PAYLOAD_BYTES", "Phase", "pack_probe", "unpack_probe"]

#: 20 ms of PCMU at 8 kHz.
PAYLOAD_BYTES: Final = 160
_HEADER: Final = struct.Struct("!BIIQ")
#: 0xFF is PCMU's zero level.
_FILL: Final = b"\xff" * (PAYLOAD_BYTES - _HEADER.size)


class Phase(enum.IntEnum):
    """When a probe was sent, relative to the measuring window."""

    WARMUP = 0  #: before every call was up
    MEASURE = 1  #: inside the window: these packets make the figures
    DRAIN = 2  #: after the window, while in-flight packets arrive


def pack_probe(phase: int, call: int, counter: int, sent_ns: int) -> bytes:
    """A 160-byte payload carrying the probe header."""
    return _HEADER.pack(phase, call, counter, sent_ns) + _FILL


def unpack_probe(payload: bytes | memoryview, offset: int = 0) -> tuple[int, int, int, int] | None:
    """``(phase, call, counter, sent_ns)`` from a payload at ``offset``, or None if too short."""
    if len(payload) - offset < _HEADER.size:
        return None
    phase, call, counter, sent_ns = _HEADER.unpack_from(payload, offset)
    return phase, call, counter, sent_ns
