"""Telling apart the protocols that share one media socket (RFC 7983 section 7).

A browser-facing media socket carries STUN (ICE checks), DTLS (the handshake), SRTP and
SRTCP (RTCP-mux, RFC 5761) on one port. RFC 7983 section 7 sorts a datagram by its first
byte::

    [0..3]     -> STUN
    [16..19]   -> ZRTP
    [20..63]   -> DTLS
    [64..79]   -> TURN Channel
    [128..191] -> RTP/RTCP

and RFC 5761 section 4 separates RTP from RTCP on a multiplexed port by the second byte:
RTCP packet types 192..223 sit where an RTP header has its marker bit and payload type, so
RTP payload types in the range 64-95 "MUST NOT be used" there, and a second byte of 192..223
means RTCP.

``classify`` is called once per received datagram, so it is a handful of comparisons: no
allocation, no parsing beyond two bytes and the length. A datagram too short to hold the
fixed header of the protocol its first byte names is ``UNKNOWN``, so the caller may read that
header without checking the length again:

==============  ============================================================
kind            minimum length
==============  ============================================================
STUN            20 bytes, the STUN header (RFC 8489 section 5)
ZRTP            12 bytes, the ZRTP packet header (RFC 6189 section 5)
DTLS            13 bytes, the DTLS record header (RFC 6347 section 4.1)
TURN_CHANNEL    4 bytes, the ChannelData header (RFC 8656 section 12.4)
RTP             12 bytes, the fixed RTP header (RFC 3550 section 5.1)
RTCP            8 bytes, the RTCP header and sender SSRC (RFC 3550 section 6.4)
==============  ============================================================

This module only classifies: it neither validates nor parses the packet.
"""

from __future__ import annotations

import enum
from typing import Final

__all__ = ["PacketKind", "classify"]


class PacketKind(enum.Enum):
    """What a datagram on a multiplexed media socket is, by RFC 7983 section 7."""

    #: First byte 0..3: "if the value of the first byte is in the range 0 to 3 (inclusive),
    #: then the packet is STUN" (the two top bits of a STUN message type are zero).
    STUN = "stun"
    #: First byte 16..19: ZRTP (RFC 6189). Recognised so it is not mistaken for anything
    #: else; the gateway does not speak ZRTP.
    ZRTP = "zrtp"
    #: First byte 20..63: a DTLS record (content types 20..63, RFC 7983 section 7).
    DTLS = "dtls"
    #: First byte 64..79: TURN ChannelData (RFC 8656 section 12), channel numbers
    #: 0x4000..0x4FFF.
    TURN_CHANNEL = "turn-channel"
    #: First byte 128..191 (RTP version 2) and second byte outside 192..223: an RTP
    #: packet (RFC 5761 section 4).
    RTP = "rtp"
    #: First byte 128..191 and second byte 192..223: an RTCP packet type (SR 200, RR 201,
    #: SDES 202, BYE 203, APP 204, RTPFB 205, PSFB 206, XR 207; RFC 5761 section 4).
    RTCP = "rtcp"
    #: Any other first byte, an empty datagram, or one shorter than the fixed header of
    #: the protocol its first byte names (see the module docstring for the lengths).
    UNKNOWN = "unknown"


def _first_byte_table() -> tuple[tuple[PacketKind, int], ...]:
    """For each first byte outside 128..191: the kind it names and that kind's minimum length."""
    table = [(PacketKind.UNKNOWN, 0)] * 256
    # (lowest, highest first byte), inclusive as RFC 7983 writes them.
    ranges = (
        ((0, 3), PacketKind.STUN, 20),
        ((16, 19), PacketKind.ZRTP, 12),
        ((20, 63), PacketKind.DTLS, 13),
        ((64, 79), PacketKind.TURN_CHANNEL, 4),
    )
    for (lowest, highest), kind, min_length in ranges:
        for first in range(lowest, highest + 1):
            table[first] = (kind, min_length)
    return tuple(table)


_BY_FIRST_BYTE: Final = _first_byte_table()
_RTP_MIN_BYTES: Final = 12
_RTCP_MIN_BYTES: Final = 8
# Module-level names for the members classify returns: reading an attribute of an Enum class
# costs several times a global lookup, and classify runs once per datagram.
_RTP: Final = PacketKind.RTP
_RTCP: Final = PacketKind.RTCP
_UNKNOWN: Final = PacketKind.UNKNOWN


def classify(data: bytes) -> PacketKind:
    """The kind of one received datagram, from its first two bytes and its length."""
    length = len(data)
    if length < 4:  # shorter than the smallest header any kind has (TURN ChannelData)
        return _UNKNOWN
    first = data[0]
    # RTP and RTCP first: they are nearly every datagram of a call.
    if 128 <= first <= 191:
        if 192 <= data[1] <= 223:
            return _RTCP if length >= _RTCP_MIN_BYTES else _UNKNOWN
        return _RTP if length >= _RTP_MIN_BYTES else _UNKNOWN
    kind, min_length = _BY_FIRST_BYTE[first]
    return kind if length >= min_length else _UNKNOWN
