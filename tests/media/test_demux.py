"""classify: RFC 7983 section 7 first-byte ranges, RFC 5761 RTP/RTCP split, short datagrams."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rtcgw.media.demux import PacketKind, classify

# Long enough for every kind's fixed header.
PAD = bytes(30)


def packet(first: int, second: int = 0) -> bytes:
    return bytes([first, second]) + PAD


@pytest.mark.parametrize(
    ("first", "kind"),
    [
        (0, PacketKind.STUN),
        (3, PacketKind.STUN),
        (4, PacketKind.UNKNOWN),
        (15, PacketKind.UNKNOWN),
        (16, PacketKind.ZRTP),
        (19, PacketKind.ZRTP),
        (20, PacketKind.DTLS),
        (63, PacketKind.DTLS),
        (64, PacketKind.TURN_CHANNEL),
        (79, PacketKind.TURN_CHANNEL),
        (80, PacketKind.UNKNOWN),
        (127, PacketKind.UNKNOWN),
        (128, PacketKind.RTP),
        (191, PacketKind.RTP),
        (192, PacketKind.UNKNOWN),
        (255, PacketKind.UNKNOWN),
    ],
)
def test_first_byte_range_boundaries(first: int, kind: PacketKind) -> None:
    assert classify(packet(first)) is kind


@pytest.mark.parametrize(
    ("second", "kind"),
    [
        (0, PacketKind.RTP),  # PCMU, no marker
        (127, PacketKind.RTP),  # payload type 127, no marker
        (128, PacketKind.RTP),  # PCMU with the marker bit
        (191, PacketKind.RTP),  # marker + payload type 63
        (192, PacketKind.RTCP),  # FIR (RFC 2032), the lowest RTCP-range value
        (200, PacketKind.RTCP),  # SR
        (201, PacketKind.RTCP),  # RR
        (206, PacketKind.RTCP),  # PSFB
        (223, PacketKind.RTCP),  # the highest
        (224, PacketKind.RTP),  # marker + payload type 96, what browsers send
        (255, PacketKind.RTP),
    ],
)
@pytest.mark.parametrize("first", [0x80, 0x81, 0x90, 0xBF])
def test_rtcp_is_told_from_rtp_by_the_second_byte(
    first: int, second: int, kind: PacketKind
) -> None:
    assert classify(packet(first, second)) is kind


def reference(data: bytes) -> PacketKind:
    """RFC 7983 section 7 and RFC 5761 section 4 written as plainly as possible."""
    if not data:
        return PacketKind.UNKNOWN
    first = data[0]
    if first <= 3:
        kind, need = PacketKind.STUN, 20
    elif first in range(16, 20):
        kind, need = PacketKind.ZRTP, 12
    elif first in range(20, 64):
        kind, need = PacketKind.DTLS, 13
    elif first in range(64, 80):
        kind, need = PacketKind.TURN_CHANNEL, 4
    elif first in range(128, 192):
        if len(data) >= 2 and data[1] in range(192, 224):
            kind, need = PacketKind.RTCP, 8
        else:
            kind, need = PacketKind.RTP, 12
    else:
        return PacketKind.UNKNOWN
    return kind if len(data) >= need else PacketKind.UNKNOWN


def test_every_pair_of_leading_bytes_matches_the_rfc() -> None:
    for first in range(256):
        for second in range(256):
            data = packet(first, second)
            assert classify(data) is reference(data), (first, second)


@pytest.mark.parametrize(
    ("first", "second", "min_length"),
    [
        (0x00, 0x01, 20),  # STUN header
        (0x10, 0x00, 12),  # ZRTP packet header
        (0x16, 0xFE, 13),  # DTLS record header (handshake, DTLS 1.2)
        (0x40, 0x00, 4),  # TURN ChannelData header
        (0x80, 0x00, 12),  # fixed RTP header
        (0x81, 0xC9, 8),  # RTCP header + sender SSRC
    ],
)
def test_shorter_than_the_fixed_header_is_unknown(first: int, second: int, min_length: int) -> None:
    data = packet(first, second)
    assert classify(data[:min_length]) is not PacketKind.UNKNOWN
    for length in range(min_length):
        assert classify(data[:length]) is PacketKind.UNKNOWN, length


def test_empty_and_tiny_datagrams_are_unknown() -> None:
    for data in (b"", b"\x00", b"\x80", b"\x80\x00", b"\x16\xfe\xfd"):
        assert classify(data) is PacketKind.UNKNOWN


@pytest.mark.parametrize(
    ("hex_data", "kind"),
    [
        # RFC 5769 section 2.1 sample request, header only (20 bytes).
        ("000100582112a442b7e7a701bc34d686fa87dfae", PacketKind.STUN),
        # A DTLS 1.2 ClientHello record header and the start of its body.
        ("16fefd000000000000000000d4010000c8", PacketKind.DTLS),
        # An RTCP receiver report with no report blocks (V=2, RC=0, PT=201, length 1).
        ("80c9000112345678", PacketKind.RTCP),
        # RTP, PCMU, sequence 1, timestamp 160, SSRC 0x12345678, one byte of payload.
        ("800000010000a00012345678ff", PacketKind.RTP),
        # RTP with the marker bit and payload type 111 (Opus in browsers).
        ("80ef00010000a00012345678ff", PacketKind.RTP),
        # TURN ChannelData on channel 0x4000 with 4 bytes of data.
        ("4000000401020304", PacketKind.TURN_CHANNEL),
    ],
)
def test_real_packet_headers(hex_data: str, kind: PacketKind) -> None:
    assert classify(bytes.fromhex(hex_data)) is kind


@given(st.binary(max_size=64))
def test_classify_is_total(data: bytes) -> None:
    assert classify(data) is reference(data)
