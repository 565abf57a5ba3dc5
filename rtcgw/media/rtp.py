"""RTP headers (RFC 3550 section 5.1) and the rewriter that keeps one outgoing stream
continuous.

What this module does: read the fixed header fields of an RTP packet at fixed offsets,
validate an untrusted packet's header length (CSRCs, header extension, padding), build a
packet, and rewrite the SSRC, sequence number, timestamp and payload type of relayed
packets so that the receiver sees one stream that never jumps back.

What it does not do: no sockets, no clock (``now`` is an argument), no SRTP, no RTCP
(``rtcgw.media.rtcp``), no demultiplexing of RTP from RTCP, STUN or DTLS
(``rtcgw.media.demux``; under RTCP-mux, payload types 72-76 with the marker set look like
RTCP, RFC 5761 section 4, and are demultiplexed before they get here).

Hot path: the accessors, ``rtp_payload_offset_untrusted`` and ``RtpRewriter.rewrite`` run
once per relayed packet, inside a budget of a few microseconds. They read with
precompiled ``struct`` objects at fixed offsets, allocate no objects beyond the output
bytes, and keep their state in plain slotted attributes.

The accessors (``rtp_ssrc`` and friends) trust their input: call them on a packet that
``rtp_payload_offset_untrusted`` accepted. On a packet shorter than 12 bytes they raise
``struct.error`` rather than return a wrong value.
"""

from __future__ import annotations

import struct
from typing import Final, final

from rtcgw.media.errors import LocalMediaError, RemoteMediaError

__all__ = [
    "RTP_HEADER_LENGTH",
    "RtpRewriter",
    "build_rtp",
    "rtp_marker",
    "rtp_payload_offset_untrusted",
    "rtp_payload_type",
    "rtp_sequence",
    "rtp_ssrc",
    "rtp_timestamp",
]

#: The fixed header: V/P/X/CC, M/PT, sequence number, timestamp, SSRC (RFC 3550 5.1).
RTP_HEADER_LENGTH: Final = 12

_HEADER = struct.Struct("!BBHII")
#: Sequence number, timestamp and SSRC, from offset 2 (RtpRewriter.rewrite's fast path).
_SEQ_TS_SSRC = struct.Struct("!HII")
_U16 = struct.Struct("!H")
_U32 = struct.Struct("!I")

_SEQ_MOD: Final = 1 << 16
_SEQ_MASK: Final = _SEQ_MOD - 1
_TS_MOD: Final = 1 << 32
_TS_MASK: Final = _TS_MOD - 1
_TS_HALF: Final = 1 << 31

# Stream continuity limits (RtpRewriter.rewrite). RFC 3550 appendix A.1 calls a source
# valid while its sequence moves forward by less than MAX_DROPOUT (3000) and back by less
# than MAX_MISORDER (100); we use the same bounds to tell reordering and loss, which must
# show through to the receiver, from a restarted or different stream, which must not.
_MAX_DROPOUT: Final = 3000
_MAX_MISORDER: Final = 100
# A timestamp may move by the wall-clock time elapsed plus this much before we call it a
# jump: generous for jitter and for a phone that keeps its clock running during hold.
_MAX_TIMESTAMP_SLACK_S: Final = 10.0
# After a re-base the timestamp advances by at least one 20 ms frame (RFC 3551 4.5 default
# packetization for audio), so two packets never share a timestamp across the splice.
_MIN_REBASE_STEP_S: Final = 0.020


def rtp_ssrc(packet: bytes | bytearray) -> int:
    """The synchronization source identifier (bytes 8-11) of a validated packet."""
    ssrc: int = _U32.unpack_from(packet, 8)[0]
    return ssrc


def rtp_sequence(packet: bytes | bytearray) -> int:
    """The 16-bit sequence number (bytes 2-3) of a validated packet."""
    sequence: int = _U16.unpack_from(packet, 2)[0]
    return sequence


def rtp_timestamp(packet: bytes | bytearray) -> int:
    """The 32-bit RTP timestamp (bytes 4-7) of a validated packet."""
    timestamp: int = _U32.unpack_from(packet, 4)[0]
    return timestamp


def rtp_payload_type(packet: bytes | bytearray) -> int:
    """The 7-bit payload type of a validated packet."""
    return packet[1] & 0x7F


def rtp_marker(packet: bytes | bytearray) -> bool:
    """The marker bit of a validated packet."""
    return packet[1] >= 0x80


def rtp_payload_offset_untrusted(packet: bytes | bytearray) -> int | None:
    """Where the payload of an untrusted RTP packet starts, or None if it is not valid RTP.

    The offset covers the fixed header, the CSRC list and the header extension (RFC 3550
    5.3.1; the one- and two-byte forms of RFC 8285 are skipped by their length field, as
    any extension). Padding (P bit) must fit: its count, the last octet, is at least 1 and
    does not reach into the header (RFC 3550 5.1). The payload is
    ``packet[offset:len(packet) - padding]`` and may be empty.

    Returns:
        The payload offset, or None when the version is not 2 or the packet is shorter
        than what its header claims. Never raises, whatever the bytes.
    """
    length = len(packet)
    if length < RTP_HEADER_LENGTH:
        return None
    first = packet[0]
    if first >> 6 != 2:
        return None
    offset = RTP_HEADER_LENGTH + ((first & 0x0F) << 2)
    if first & 0x10:
        # Extension header: 16-bit profile-defined field, 16-bit length in 32-bit words
        # not counting this 4-byte header (RFC 3550 5.3.1).
        if offset + 4 > length:
            return None
        offset += 4 + (_U16.unpack_from(packet, offset + 2)[0] << 2)
    if offset > length:
        return None
    if first & 0x20:
        padding = packet[-1]
        if padding == 0 or offset + padding > length:
            return None
    return offset


def build_rtp(
    payload_type: int,
    sequence: int,
    timestamp: int,
    ssrc: int,
    payload: bytes,
    *,
    marker: bool = False,
) -> bytes:
    """A version 2 RTP packet with no CSRC, extension or padding (RFC 3550 5.1).

    Raises:
        LocalMediaError: a field does not fit its width (payload type 0-127, sequence
            0-65535, timestamp and SSRC 0-2**32-1).
    """
    if not 0 <= payload_type <= 0x7F:
        raise LocalMediaError(f"RTP payload type must be 0-127, got {payload_type}")
    if not 0 <= sequence <= _SEQ_MASK:
        raise LocalMediaError(f"RTP sequence number must be 0-65535, got {sequence}")
    if not 0 <= timestamp <= _TS_MASK:
        raise LocalMediaError(f"RTP timestamp must be 0-2**32-1, got {timestamp}")
    if not 0 <= ssrc <= _TS_MASK:
        raise LocalMediaError(f"RTP SSRC must be 0-2**32-1, got {ssrc}")
    second = payload_type | 0x80 if marker else payload_type
    return _HEADER.pack(0x80, second, sequence, timestamp, ssrc) + payload


def _check_clock_rate(clock_rate: int) -> None:
    if not 0 < clock_rate <= 1_000_000:
        raise LocalMediaError(f"RTP clock rate must be 1-1000000 Hz, got {clock_rate}")


@final
class RtpRewriter:
    """Keeps the stream one receiver sees continuous: our own SSRC, sequence numbers and
    timestamps that never jump back, whatever the source does (a SIP phone that changes
    SSRC after a re-INVITE or a transfer, hold for an hour then resume). SRTP's rollover
    counter and replay window then stay valid at the browser (RFC 3711 3.3.1).

    Theory of operation: within one source stream the output is the input plus a fixed
    offset (sequence mod 2**16, timestamp mod 2**32), so losses, reordering and the
    source's own timestamp gaps (silence suppression) show through unchanged and the
    receiver's jitter and loss statistics stay true. When the source changes (new SSRC)
    or jumps (sequence back by more than 100 or forward by 3000 or more, timestamp off by
    more than the elapsed time plus 10 s), the offsets are re-based on the next packet so
    that its sequence number is the highest sent + 1 and its timestamp the highest sent
    plus the wall-clock time elapsed (at least 20 ms) in clock units. The packet after a
    re-base carries the marker bit: RFC 3551 4.1 lets it mark the start of a talkspurt,
    and receivers reset their playout delay there.

    The first packet ever sent carries ``initial_sequence`` and ``initial_timestamp``
    (RFC 3550 5.1: both "SHOULD be random").

    Attributes:
        ssrc: our SSRC toward the receiver; every packet leaves with it.
        payload_type_map: source payload type -> the payload type this receiver
            negotiated; applied when non-empty, payload types not in it pass unchanged.
        packets: packets sent, for the sender's packet count of an RTCP SR.
        octets: payload octets sent (no header, no padding), for the SR's octet count.
        last_sequence: the highest sequence number sent (serial-number order), or
            ``initial_sequence - 1`` before the first packet (read-only).
        last_timestamp: the timestamp of the packet that last advanced ``last_sequence``
            (read-only).
        source_ssrc: the SSRC of the source stream being relayed, None before the first
            packet.
    """

    __slots__ = (
        "_clock_rate",
        "_last_now",
        "_marker_on_rebase",
        "_max_back_ts",
        "_seq_offset",
        "_slack_ts",
        "_source_seq",
        "_source_ts",
        "_stream_ssrc",
        "_ts_offset",
        "octets",
        "packets",
        "payload_type_map",
        "source_ssrc",
        "ssrc",
    )

    def __init__(
        self,
        ssrc: int,
        clock_rate: int,
        *,
        initial_sequence: int,
        initial_timestamp: int,
        marker_on_rebase: bool = True,
    ) -> None:
        """Start a stream with our SSRC, the codec's clock rate and random initial values.

        Args:
            ssrc: our SSRC toward this receiver.
            clock_rate: the RTP clock rate of the negotiated codec, in Hz.
            initial_sequence: the sequence number of the first packet (0-65535).
            initial_timestamp: the timestamp of the first packet (0-2**32-1).
            marker_on_rebase: set the marker bit on the first packet after a re-base.
                True for audio (talkspurt, RFC 3551 4.1); pass False for video, where the
                marker means "last packet of a frame" (RFC 6184 5.1, RFC 7741 4.1) and a
                spurious one would cut a frame short.

        Raises:
            LocalMediaError: a value out of its range.
        """
        if not 0 <= ssrc <= _TS_MASK:
            raise LocalMediaError(f"RTP SSRC must be 0-2**32-1, got {ssrc}")
        if not 0 <= initial_sequence <= _SEQ_MASK:
            raise LocalMediaError(
                f"initial RTP sequence number must be 0-65535, got {initial_sequence}"
            )
        if not 0 <= initial_timestamp <= _TS_MASK:
            raise LocalMediaError(
                f"initial RTP timestamp must be 0-2**32-1, got {initial_timestamp}"
            )
        _check_clock_rate(clock_rate)
        self.ssrc = ssrc
        self.payload_type_map: dict[int, int] = {}
        self.packets = 0
        self.octets = 0
        self.source_ssrc: int | None = None
        # The SSRC the offsets belong to; -1 matches no packet and forces a re-base.
        self._stream_ssrc = -1
        self._marker_on_rebase = 0x80 if marker_on_rebase else 0
        self._clock_rate = clock_rate
        self._slack_ts = _MAX_TIMESTAMP_SLACK_S * clock_rate
        self._max_back_ts = -self._slack_ts
        self._last_now = 0.0
        # "Highest sent" (source high + offset) starts one before the first packet, so the
        # re-base of the first packet yields exactly initial_sequence / initial_timestamp.
        self._source_seq = 0
        self._source_ts = 0
        self._seq_offset = (initial_sequence - 1) & _SEQ_MASK
        self._ts_offset = initial_timestamp

    @property
    def clock_rate(self) -> int:
        """The RTP clock rate in Hz used to turn elapsed time into timestamp units."""
        return self._clock_rate

    @property
    def last_sequence(self) -> int:
        """The highest sequence number sent (``initial_sequence - 1`` before any packet)."""
        return (self._source_seq + self._seq_offset) & _SEQ_MASK

    @property
    def last_timestamp(self) -> int:
        """The timestamp sent with ``last_sequence`` (``initial_timestamp`` before any)."""
        return (self._source_ts + self._ts_offset) & _TS_MASK

    def set_clock_rate(self, clock_rate: int) -> None:
        """Switch to a new codec's clock rate (a re-offer); the next packet re-bases.

        Raises:
            LocalMediaError: a clock rate that is not positive.
        """
        _check_clock_rate(clock_rate)
        if clock_rate != self._clock_rate:
            self._clock_rate = clock_rate
            self._slack_ts = _MAX_TIMESTAMP_SLACK_S * clock_rate
            self._max_back_ts = -self._slack_ts
            # Source timestamps now count in other units: splice rather than compare.
            self._stream_ssrc = -1

    def map_timestamp(self, timestamp: int) -> int:
        """A source RTP timestamp as the receiver sees it (for an RTCP SR's RTP timestamp)."""
        return (timestamp + self._ts_offset) & _TS_MASK

    def rewrite(self, packet: bytearray | bytes, now: float) -> bytes:
        """The packet with our SSRC and mapped sequence number, timestamp and payload type.

        Args:
            packet: an RTP packet that ``rtp_payload_offset_untrusted`` accepted. A
                ``bytearray`` is edited in place (cheaper); ``bytes`` is copied.
            now: the current time in seconds, from any monotonic clock.

        Returns:
            The rewritten packet.

        Raises:
            RemoteMediaError: the packet is shorter than the 12-byte fixed header.
        """
        length = len(packet)
        if length < RTP_HEADER_LENGTH:
            raise RemoteMediaError(
                f"RTP packet of {length} bytes is shorter than the 12-byte header"
            )
        # Fast path, nearly every packet of a call: a bare header (first byte 0x80: no
        # padding, extension or CSRC, so the payload is everything after 12 bytes), no
        # payload type to map (byte 1 stays), the same source stream moving forward in
        # sequence and timestamp by no more than the general path below lets through
        # without a re-base. It does what that path does for such a packet, in fewer steps.
        if packet[0] == 0x80 and not self.payload_type_map:
            sequence, timestamp, source_ssrc = _SEQ_TS_SSRC.unpack_from(packet, 2)
            if source_ssrc == self._stream_ssrc:
                seq_delta = (sequence - self._source_seq) & _SEQ_MASK
                ts_delta = (timestamp - self._source_ts) & _TS_MASK
                if (
                    0 < seq_delta < _MAX_DROPOUT
                    and ts_delta < _TS_HALF
                    and ts_delta <= (now - self._last_now) * self._clock_rate + self._slack_ts
                ):
                    self._source_seq = sequence
                    self._source_ts = timestamp
                    self._last_now = now
                    self.packets += 1
                    self.octets += length - RTP_HEADER_LENGTH
                    out_sequence = (sequence + self._seq_offset) & _SEQ_MASK
                    out_timestamp = (timestamp + self._ts_offset) & _TS_MASK
                    if isinstance(packet, bytearray):
                        _SEQ_TS_SSRC.pack_into(packet, 2, out_sequence, out_timestamp, self.ssrc)
                        return bytes(packet)
                    return (
                        _HEADER.pack(0x80, packet[1], out_sequence, out_timestamp, self.ssrc)
                        + packet[12:]
                    )
        first, second, sequence, timestamp, source_ssrc = _HEADER.unpack_from(packet)

        if source_ssrc != self._stream_ssrc:
            second |= self._rebase(sequence, timestamp, source_ssrc, now)
        else:
            seq_delta = (sequence - self._source_seq) & _SEQ_MASK
            if seq_delta < _MAX_DROPOUT:
                # In order (or a duplicate): the timestamp may move by what the wall
                # clock allows. RFC 3550 5.1: it "must increase monotonically and
                # linearly in time", so more than that is a restarted clock.
                ts_delta = (timestamp - self._source_ts) & _TS_MASK
                if ts_delta >= _TS_HALF:
                    ts_delta -= _TS_MOD
                if (
                    ts_delta > (now - self._last_now) * self._clock_rate + self._slack_ts
                    or ts_delta < self._max_back_ts
                ):
                    second |= self._rebase(sequence, timestamp, source_ssrc, now)
                elif seq_delta:
                    self._source_seq = sequence
                    self._source_ts = timestamp
            elif seq_delta <= _SEQ_MASK - _MAX_MISORDER:
                # Neither a little late nor a plausible gap: the stream restarted.
                second |= self._rebase(sequence, timestamp, source_ssrc, now)
            # else: late by at most 100 packets: reordering, shown through unchanged.

        self._last_now = now
        if self.payload_type_map:
            payload_type = second & 0x7F
            second = (second & 0x80) | self.payload_type_map.get(payload_type, payload_type)

        self.packets += 1
        if first & 0x30:
            header = rtp_payload_offset_untrusted(packet) or RTP_HEADER_LENGTH
            padding = packet[-1] if first & 0x20 else 0
            self.octets += max(len(packet) - header - padding, 0)
        else:
            self.octets += len(packet) - RTP_HEADER_LENGTH - ((first & 0x0F) << 2)

        out_sequence = (sequence + self._seq_offset) & _SEQ_MASK
        out_timestamp = (timestamp + self._ts_offset) & _TS_MASK
        if isinstance(packet, bytearray):
            _HEADER.pack_into(packet, 0, first, second, out_sequence, out_timestamp, self.ssrc)
            return bytes(packet)
        return _HEADER.pack(first, second, out_sequence, out_timestamp, self.ssrc) + packet[12:]

    def _rebase(self, sequence: int, timestamp: int, source_ssrc: int, now: float) -> int:
        """Splice a new source stream onto what was sent: next sequence, elapsed time.

        Returns the marker bit to set on the packet (0x80, or 0 for video).
        """
        out_sequence = (self.last_sequence + 1) & _SEQ_MASK
        out_timestamp = self.last_timestamp
        if self.packets:
            elapsed_s = max(now - self._last_now, _MIN_REBASE_STEP_S)
            out_timestamp = (out_timestamp + round(elapsed_s * self._clock_rate)) & _TS_MASK
        self._seq_offset = (out_sequence - sequence) & _SEQ_MASK
        self._ts_offset = (out_timestamp - timestamp) & _TS_MASK
        self._source_seq = sequence
        self._source_ts = timestamp
        self.source_ssrc = self._stream_ssrc = source_ssrc
        return self._marker_on_rebase
