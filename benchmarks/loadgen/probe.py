"""The probe payload: what every benchmark RTP packet carries, so both ends can count.

A G.711 frame of 20 ms is 160 bytes. Its first bytes are a header the relay never looks
at (it does not transcode PCMU): the measuring phase the packet was sent in, the call's
index, a per-call counter, the sender's monotonic clock in nanoseconds and a second time
stamp the SIP side's echo writes (``stamp_echo``) just before it sends the packet back. The
rest is PCMU silence. Counting by the phase written in the packet, not by when it arrives,
makes the loss figures exact whatever the timing of the window's edges.

Every program of a benchmark runs on one host, so CLOCK_MONOTONIC is one clock for all of
them: the echo gets the browser -> SIP one-way delay from ``sent_ns``, the browser side the
SIP -> browser one from ``echo_ns`` and the round trip from ``sent_ns`` again. Rewriting the
payload at the echo is safe: the SIP leg is plain RTP, and the relay encrypts the browser
leg afresh.
"""

from __future__ import annotations

import enum
import struct
from typing import Final

__all__ = [
    "ECHO_NS_OFFSET",
    "HEADER_BYTES",
    "PAYLOAD_BYTES",
    "SENT_NS_OFFSET",
    "Phase",
    "pack_probe",
    "stamp_echo",
    "unpack_probe",
]

#: 20 ms of PCMU at 8 kHz.
PAYLOAD_BYTES: Final = 160
#: phase, call, counter, sent_ns, echo_ns (0 until the echo stamps it)
_HEADER: Final = struct.Struct("!BIIQQ")
HEADER_BYTES: Final = _HEADER.size
#: Where ``sent_ns`` and ``echo_ns`` are in the payload: read and written in place.
SENT_NS_OFFSET: Final = 9
ECHO_NS_OFFSET: Final = 17
_NS: Final = struct.Struct("!Q")
#: 0xFF is PCMU's zero level.
_FILL: Final = b"\xff" * (PAYLOAD_BYTES - _HEADER.size)


class Phase(enum.IntEnum):
    """When a probe was sent, relative to the measuring window."""

    WARMUP = 0  #: before every call was up
    MEASURE = 1  #: inside the window: these packets make the figures
    DRAIN = 2  #: after the window, while in-flight packets arrive


def pack_probe(phase: int, call: int, counter: int, sent_ns: int) -> bytes:
    """A 160-byte payload carrying the probe header (not stamped by the echo yet)."""
    return _HEADER.pack(phase, call, counter, sent_ns, 0) + _FILL


def unpack_probe(
    payload: bytes | bytearray | memoryview, offset: int = 0
) -> tuple[int, int, int, int, int] | None:
    """``(phase, call, counter, sent_ns, echo_ns)`` at ``offset``, or None if too short."""
    if len(payload) - offset < _HEADER.size:
        return None
    phase, call, counter, sent_ns, echo_ns = _HEADER.unpack_from(payload, offset)
    return phase, call, counter, sent_ns, echo_ns


def stamp_echo(packet: bytearray | memoryview, offset: int, echo_ns: int) -> int:
    """Write ``echo_ns`` into the probe at ``offset`` in place; the probe's ``sent_ns``.

    The caller checked that the probe is whole (``HEADER_BYTES`` from ``offset``).
    """
    sent_ns: int = _NS.unpack_from(packet, offset + SENT_NS_OFFSET)[0]
    _NS.pack_into(packet, offset + ECHO_NS_OFFSET, echo_ns)
    return sent_ns
