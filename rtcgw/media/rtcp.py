"""RTCP compounds (RFC 3550 section 6) and feedback (RFC 4585): split, rewrite, build.

What this module does: split an untrusted compound into its packets, rewrite a compound
relayed from one leg so that the other leg's receiver sees it come from the SSRC of the
RTP it gets (``RtpRewriter``), drop feedback toward a peer that did not negotiate AVPF,
spot keyframe requests, and build the few packets the relay originates (PLI, empty RR).

What it does not do: no sockets, no SRTCP (compounds here are plaintext), no RTCP timing
(RFC 3550 6.2 intervals belong to whoever sends), no statistics of its own. Report blocks
are relayed as they are: their SSRC (unless ``media_ssrc`` is given) and sequence fields
still count in the sender's view of the stream it received.

Packet types we do not know (RFC 5450 IJ, future types) are dropped on rewrite: they may
carry the original SSRCs of the far leg, which must not leak across the gateway.
"""

from __future__ import annotations

import enum
import struct
from typing import TYPE_CHECKING, Final

from rtcgw.media.errors import LocalMediaError

if TYPE_CHECKING:
    from rtcgw.media.rtp import RtpRewriter

__all__ = [
    "RtcpType",
    "build_pli",
    "build_receiver_report",
    "feedback_requests_keyframe",
    "rewrite_rtcp_for_receiver",
    "rtcp_packets_untrusted",
]

_U16 = struct.Struct("!H")
_U32 = struct.Struct("!I")
_SENDER_INFO = struct.Struct("!IIIII")  # NTP msw, NTP lsw, RTP timestamp, packets, octets
_U32_MASK: Final = 0xFFFFFFFF

_RTCP_HEADER_LENGTH: Final = 4
_SENDER_INFO_LENGTH: Final = 20
_REPORT_BLOCK_LENGTH: Final = 24
_FEEDBACK_LENGTH: Final = 12  # header, sender SSRC, media source SSRC (RFC 4585 6.1)

#: PSFB FMT values that ask the sender for a keyframe.
_PSFB_PLI: Final = 1  # Picture Loss Indication, RFC 4585 6.3.1
_PSFB_FIR: Final = 4  # Full Intra Request, RFC 5104 4.3.1


class RtcpType(enum.IntEnum):
    """RTCP packet types (the second octet of each packet)."""

    SR = 200  #: sender report, RFC 3550 6.4.1
    RR = 201  #: receiver report, RFC 3550 6.4.2
    SDES = 202  #: source description, RFC 3550 6.5
    BYE = 203  #: goodbye, RFC 3550 6.6
    APP = 204  #: application-defined, RFC 3550 6.7
    RTPFB = 205  #: transport-layer feedback (NACK, TWCC), RFC 4585 6.2
    PSFB = 206  #: payload-specific feedback (PLI, FIR, REMB), RFC 4585 6.3
    XR = 207  #: extended reports, RFC 3611


# Plain ints for the per-compound loop: comparing with IntEnum members costs several times
# more than comparing ints.
_SR: Final = int(RtcpType.SR)
_RR: Final = int(RtcpType.RR)
_SDES: Final = int(RtcpType.SDES)
_BYE: Final = int(RtcpType.BYE)
_APP: Final = int(RtcpType.APP)
_RTPFB: Final = int(RtcpType.RTPFB)
_PSFB: Final = int(RtcpType.PSFB)
_XR: Final = int(RtcpType.XR)


def rtcp_packets_untrusted(compound: bytes | bytearray) -> list[tuple[int, int, int]] | None:
    """Split an untrusted compound into ``(packet type, start, end)`` for each packet.

    Each packet's length field counts 32-bit words minus one (RFC 3550 6.4.1), so the
    packets must tile the compound exactly. The first packet is not required to be an SR
    or RR: reduced-size RTCP (RFC 5506), which browsers negotiate with
    ``a=rtcp-rsize``, sends feedback alone.

    Returns:
        The packets in order, or None when the compound is empty, a version is not 2 or
        the lengths do not add up. Never raises, whatever the bytes.
    """
    total = len(compound)
    if total < _RTCP_HEADER_LENGTH:
        return None
    packets: list[tuple[int, int, int]] = []
    start = 0
    while start < total:
        if start + _RTCP_HEADER_LENGTH > total or compound[start] >> 6 != 2:
            return None
        end = start + ((_U16.unpack_from(compound, start + 2)[0] + 1) << 2)
        if end > total:
            return None
        packets.append((compound[start + 1], start, end))
        start = end
    return packets


def _padding(compound: bytes | bytearray, start: int, end: int) -> int | None:
    """The padding octets at the end of one packet (P bit), or None if they do not fit."""
    if not compound[start] & 0x20:
        return 0
    padding = compound[end - 1]
    if padding == 0 or start + _RTCP_HEADER_LENGTH + padding > end:
        return None
    return padding


def rewrite_rtcp_for_receiver(
    compound: bytes | bytearray,
    *,
    sender_ssrc: int,
    rewriter: RtpRewriter | None,
    keep_feedback: bool,
    media_ssrc: int | None = None,
) -> bytes | None:
    """The compound as one receiver must see it: from our SSRC, with our RTP's counts.

    * SR, RR, APP, XR and kept RTPFB/PSFB: the sender SSRC (octets 4-7) becomes
      ``sender_ssrc``, ours toward that receiver, matching the RTP it gets.
    * SR with ``rewriter``: the RTP timestamp goes through ``rewriter.map_timestamp`` and
      the packet and octet counts become the rewriter's own (RFC 3550 6.4.1: they count
      what this sender sent). If the SR describes another source than the one the
      rewriter relays (or none yet), its timestamp cannot be mapped, so the SR becomes an
      RR: same report blocks, no sender info.
    * SDES: the SSRC of chunk 1 becomes ``sender_ssrc``.
    * BYE: with ``rewriter``, dropped: the receiver's stream is ours, continuous across the
      sender's SSRC changes, and a phone's BYE for its old SSRC would tell the receiver that
      our stream ended (ours ends with the call). Without, every listed SSRC becomes
      ``sender_ssrc``.
    * RTPFB/PSFB are dropped unless ``keep_feedback``: a peer that did not negotiate
      AVPF (RFC 4585 4.2, ``a=rtcp-fb``) has no use for them. When kept and
      ``media_ssrc`` is given, their media source SSRC (octets 8-11) becomes it.
    * ``media_ssrc`` also replaces the SSRC of every report block of SR and RR: the
      receiver knows its own stream by that SSRC, not by ours toward the other leg.
    * Other packet types are dropped.

    Args:
        compound: a plaintext compound from the other leg (after SRTCP unprotect).
        sender_ssrc: our SSRC toward the receiver.
        rewriter: the rewriter of the RTP this receiver gets, or None to leave SR sender
            info alone.
        keep_feedback: whether the receiver negotiated RTCP feedback (AVPF).
        media_ssrc: the SSRC the receiver sends with, or None to leave media source and
            report block SSRCs alone.

    Returns:
        The rewritten compound, or None when it is malformed or nothing is left to send.
    """
    packets = rtcp_packets_untrusted(compound)
    if packets is None:
        return None
    out = bytearray()
    for packet_type, start, end in packets:
        if packet_type in (_SR, _RR):
            body = _rewrite_report(
                compound,
                start,
                end,
                sender_ssrc=sender_ssrc,
                rewriter=rewriter,
                media_ssrc=media_ssrc,
            )
            if body is None:
                return None
            out += body
        elif packet_type in (_RTPFB, _PSFB):
            if not keep_feedback:
                continue
            if end - start < _FEEDBACK_LENGTH:
                return None
            piece = bytearray(compound[start:end])
            piece[4:8] = _U32.pack(sender_ssrc)
            if media_ssrc is not None:
                piece[8:12] = _U32.pack(media_ssrc)
            out += piece
        elif packet_type == _SDES:
            piece = bytearray(compound[start:end])
            # A chunk begins right after the header when the source count is non-zero.
            if piece[0] & 0x1F:
                if end - start < 8:
                    return None
                piece[4:8] = _U32.pack(sender_ssrc)
            out += piece
        elif packet_type == _BYE:
            count = compound[start] & 0x1F
            if _RTCP_HEADER_LENGTH + 4 * count > end - start:
                return None
            if rewriter is not None:
                continue
            piece = bytearray(compound[start:end])
            ours = _U32.pack(sender_ssrc)
            for index in range(count):
                piece[4 + 4 * index : 8 + 4 * index] = ours
            out += piece
        elif packet_type in (_APP, _XR):
            if end - start < 8:
                return None
            piece = bytearray(compound[start:end])
            piece[4:8] = _U32.pack(sender_ssrc)
            out += piece
        # Anything else: dropped (module docstring).
    return bytes(out) if out else None


def _rewrite_report(
    compound: bytes | bytearray,
    start: int,
    end: int,
    *,
    sender_ssrc: int,
    rewriter: RtpRewriter | None,
    media_ssrc: int | None,
) -> bytearray | None:
    """One SR or RR with our SSRC (and counts); an SR we cannot map becomes an RR."""
    is_sr = compound[start + 1] == _SR
    count = compound[start] & 0x1F
    padding = _padding(compound, start, end)
    if padding is None:
        return None
    blocks_at = 8 + (_SENDER_INFO_LENGTH if is_sr else 0)
    if start + blocks_at + _REPORT_BLOCK_LENGTH * count > end - padding:
        return None
    piece = bytearray(compound[start:end])
    if is_sr and rewriter is not None:
        original_ssrc = _U32.unpack_from(piece, 4)[0]
        if rewriter.source_ssrc is not None and original_ssrc == rewriter.source_ssrc:
            ntp_msw, ntp_lsw, timestamp, _, _ = _SENDER_INFO.unpack_from(piece, 8)
            _SENDER_INFO.pack_into(
                piece,
                8,
                ntp_msw,
                ntp_lsw,
                rewriter.map_timestamp(timestamp),
                rewriter.packets & _U32_MASK,
                rewriter.octets & _U32_MASK,
            )
        else:
            del piece[8 : 8 + _SENDER_INFO_LENGTH]
            piece[1] = _RR
            piece[2:4] = _U16.pack((len(piece) >> 2) - 1)
            blocks_at = 8
    piece[4:8] = _U32.pack(sender_ssrc)
    if media_ssrc is not None:
        ours = _U32.pack(media_ssrc)
        for index in range(count):
            at = blocks_at + _REPORT_BLOCK_LENGTH * index
            piece[at : at + 4] = ours
    return piece


def feedback_requests_keyframe(compound: bytes | bytearray) -> bool:
    """Whether the compound holds a PLI (RFC 4585 6.3.1) or a FIR (RFC 5104 4.3.1).

    A malformed compound requests nothing.
    """
    packets = rtcp_packets_untrusted(compound)
    if packets is None:
        return False
    for packet_type, start, _ in packets:
        if packet_type == _PSFB and compound[start] & 0x1F in (_PSFB_PLI, _PSFB_FIR):
            return True
    return False


def _check_ssrc(name: str, value: int) -> None:
    if not 0 <= value <= _U32_MASK:
        raise LocalMediaError(f"RTCP {name} must be 0-2**32-1, got {value}")


def build_pli(sender_ssrc: int, media_ssrc: int) -> bytes:
    """A Picture Loss Indication asking ``media_ssrc``'s sender for a keyframe (12 bytes).

    RFC 4585 6.3.1: PSFB with FMT 1 and no feedback control information.

    Raises:
        LocalMediaError: an SSRC that does not fit 32 bits.
    """
    _check_ssrc("sender SSRC", sender_ssrc)
    _check_ssrc("media SSRC", media_ssrc)
    return (
        bytes((0x80 | _PSFB_PLI, RtcpType.PSFB, 0, 2))
        + _U32.pack(sender_ssrc)
        + (_U32.pack(media_ssrc))
    )


def build_receiver_report(sender_ssrc: int) -> bytes:
    """An RR with no report blocks (8 bytes): RFC 3550 6.1 wants each compound to start
    with an SR or RR, so a compound we originate (a PLI toward a non-rsize peer) gets one.

    Raises:
        LocalMediaError: an SSRC that does not fit 32 bits.
    """
    _check_ssrc("sender SSRC", sender_ssrc)
    return bytes((0x80, RtcpType.RR, 0, 1)) + _U32.pack(sender_ssrc)
