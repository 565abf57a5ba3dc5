"""RTCP compounds (RFC 3550 section 6, RFC 4585): splitting untrusted compounds, rewriting
them for the other leg's receiver, keyframe requests, and the packets we originate."""

from __future__ import annotations

import itertools
import struct
import timeit
from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rtcgw.media.errors import LocalMediaError
from rtcgw.media.rtcp import (
    RtcpType,
    build_pli,
    build_receiver_report,
    feedback_requests_keyframe,
    rewrite_rtcp_for_receiver,
    rtcp_packets_untrusted,
)
from rtcgw.media.rtp import RtpRewriter, build_rtp

PHONE = 0x11111111
BROWSER = 0x33333333
OURS = 0x0BADCAFE
OTHER = 0x44444444


def rtcp(packet_type: int, count: int, body: bytes, *, padding: int = 0) -> bytes:
    """One RTCP packet with a correct length field (and optional padding)."""
    if padding:
        body += bytes(padding - 1) + bytes((padding,))
    assert len(body) % 4 == 0
    first = 0x80 | (0x20 if padding else 0) | count
    return bytes((first, packet_type)) + struct.pack("!H", len(body) // 4) + body


def report_block(ssrc: int, highest: int = 5000) -> bytes:
    # SSRC, fraction lost + cumulative lost, extended highest seq, jitter, LSR, DLSR.
    return struct.pack("!IIIIII", ssrc, 0x0100_0002, highest, 7, 0x1234_5678, 0x10)


def sender_report(
    *,
    ssrc: int = PHONE,
    rtp_timestamp: int = 160_000,
    packets: int = 1000,
    octets: int = 160_000,
    blocks: tuple[bytes, ...] = (),
    padding: int = 0,
) -> bytes:
    info = struct.pack("!IIIII", 0xE000_0000, 0x8000_0000, rtp_timestamp, packets, octets)
    return rtcp(
        RtcpType.SR, len(blocks), struct.pack("!I", ssrc) + info + b"".join(blocks), padding=padding
    )


def receiver_report(ssrc: int = PHONE, blocks: tuple[bytes, ...] = ()) -> bytes:
    return rtcp(RtcpType.RR, len(blocks), struct.pack("!I", ssrc) + b"".join(blocks))


def sdes(ssrc: int = PHONE, cname: bytes = b"phone@pbx") -> bytes:
    item = bytes((1, len(cname))) + cname + b"\x00"
    item += bytes(-(4 + len(item)) % 4)
    return rtcp(RtcpType.SDES, 1, struct.pack("!I", ssrc) + item)


def bye(*ssrcs: int) -> bytes:
    return rtcp(RtcpType.BYE, len(ssrcs), b"".join(struct.pack("!I", s) for s in ssrcs))


def nack(sender: int = PHONE, media: int = OTHER) -> bytes:
    return rtcp(RtcpType.RTPFB, 1, struct.pack("!IIHH", sender, media, 100, 0))


def pli(sender: int = PHONE, media: int = OTHER) -> bytes:
    return rtcp(RtcpType.PSFB, 1, struct.pack("!II", sender, media))


def fir(sender: int = PHONE, media: int = 0) -> bytes:
    return rtcp(RtcpType.PSFB, 4, struct.pack("!IIIBBH", sender, media, OTHER, 1, 0, 0))


def remb(sender: int = PHONE) -> bytes:
    return rtcp(RtcpType.PSFB, 15, struct.pack("!II", sender, 0) + b"REMB" + bytes(8))


def u32(data: bytes, offset: int) -> int:
    value: int = struct.unpack_from("!I", data, offset)[0]
    return value


def relaying_rewriter() -> RtpRewriter:
    """A rewriter that has relayed 3 packets of PHONE's stream (seq 10-12, ts 160 000...)."""
    rw = RtpRewriter(OURS, 8000, initial_sequence=500, initial_timestamp=9_000)
    for index in range(3):
        rw.rewrite(build_rtp(0, 10 + index, 160_000 + 160 * index, PHONE, bytes(160)), index / 50)
    return rw


# --- splitting compounds -----------------------------------------------------------------


def test_split_compound() -> None:
    compound = sender_report(blocks=(report_block(OTHER),)) + sdes() + bye(PHONE)
    packets = rtcp_packets_untrusted(compound)
    assert packets == [
        (RtcpType.SR, 0, 52),
        (RtcpType.SDES, 52, 52 + len(sdes())),
        (RtcpType.BYE, 52 + len(sdes()), len(compound)),
    ]


def test_split_reduced_size_feedback_alone() -> None:
    # RFC 5506: a compound may start with feedback.
    assert rtcp_packets_untrusted(pli()) == [(RtcpType.PSFB, 0, 12)]


@pytest.mark.parametrize(
    ("why", "data"),
    [
        ("empty", b""),
        ("shorter than a header", b"\x80\xc9\x00"),
        ("version 1", b"\x40\xc9\x00\x01" + bytes(4)),
        ("length beyond the datagram", receiver_report()[:-4]),
        ("trailing garbage", receiver_report() + b"\x80"),
        ("second packet not version 2", receiver_report() + b"\x00\xc9\x00\x01" + bytes(4)),
    ],
)
def test_split_rejects_malformed(why: str, data: bytes) -> None:
    assert rtcp_packets_untrusted(data) is None, why


@given(st.binary(max_size=120))
def test_split_never_raises_and_tiles_what_it_accepts(data: bytes) -> None:
    packets = rtcp_packets_untrusted(data)
    if packets is not None:
        assert packets[0][1] == 0
        assert packets[-1][2] == len(data)
        for (_, _, end), (_, start, _) in itertools.pairwise(packets):
            assert end == start


@given(st.binary(max_size=120), st.booleans(), st.booleans())
def test_rewrite_never_raises_on_random_bytes(
    data: bytes, keep_feedback: bool, with_rewriter: bool
) -> None:
    rewriter = relaying_rewriter() if with_rewriter else None
    out = rewrite_rtcp_for_receiver(
        data, sender_ssrc=OURS, rewriter=rewriter, keep_feedback=keep_feedback, media_ssrc=1
    )
    if out is not None:
        assert rtcp_packets_untrusted(out) is not None
    feedback_requests_keyframe(data)


# --- rewriting toward one receiver -------------------------------------------------------


def test_sender_report_mapped_through_the_rewriter() -> None:
    rw = relaying_rewriter()
    compound = sender_report(rtp_timestamp=160_480, blocks=(report_block(OTHER),))
    out = rewrite_rtcp_for_receiver(compound, sender_ssrc=OURS, rewriter=rw, keep_feedback=False)
    assert out is not None
    assert out[1] == RtcpType.SR
    assert len(out) == len(compound)
    assert u32(out, 4) == OURS
    assert out[8:16] == compound[8:16]  # the NTP timestamp is the sender's wall clock
    assert u32(out, 16) == 9_000 + 480  # source ts 160 480 in our timestamp space
    assert (u32(out, 20), u32(out, 24)) == (3, 3 * 160)  # our own counts
    assert out[28:] == compound[28:]  # report blocks untouched without media_ssrc


def test_sender_report_of_another_source_becomes_receiver_report() -> None:
    rw = relaying_rewriter()
    block = report_block(OTHER)
    compound = sender_report(ssrc=0x5555, blocks=(block,)) + sdes(0x5555)
    out = rewrite_rtcp_for_receiver(
        compound, sender_ssrc=OURS, rewriter=rw, keep_feedback=False, media_ssrc=BROWSER
    )
    assert out is not None
    packets = rtcp_packets_untrusted(out)
    assert packets is not None
    assert [p[0] for p in packets] == [RtcpType.RR, RtcpType.SDES]
    assert out[0] & 0x1F == 1
    assert u32(out, 4) == OURS
    assert u32(out, 8) == BROWSER  # report block SSRC: the receiver's own stream
    assert out[12:32] == block[4:]
    assert u32(out, packets[1][1] + 4) == OURS


def test_sender_report_before_any_rtp_becomes_receiver_report() -> None:
    rw = RtpRewriter(OURS, 8000, initial_sequence=0, initial_timestamp=0)
    out = rewrite_rtcp_for_receiver(
        sender_report(), sender_ssrc=OURS, rewriter=rw, keep_feedback=False
    )
    assert out == build_receiver_report(OURS)


def test_sender_report_with_padding_stays_well_formed() -> None:
    rw = relaying_rewriter()
    compound = sender_report(ssrc=0x5555, padding=4)
    out = rewrite_rtcp_for_receiver(compound, sender_ssrc=OURS, rewriter=rw, keep_feedback=False)
    assert out is not None
    assert rtcp_packets_untrusted(out) == [(RtcpType.RR, 0, 12)]
    assert out[0] & 0x20
    assert out[-1] == 4


def test_sender_report_without_rewriter_keeps_sender_info() -> None:
    compound = sender_report()
    out = rewrite_rtcp_for_receiver(compound, sender_ssrc=OURS, rewriter=None, keep_feedback=True)
    assert out is not None
    assert u32(out, 4) == OURS
    assert out[8:] == compound[8:]


def test_receiver_report_sdes_and_bye() -> None:
    compound = receiver_report(blocks=(report_block(OTHER), report_block(OTHER + 1)))
    compound += sdes() + bye(PHONE, 0x5555)
    out = rewrite_rtcp_for_receiver(
        compound, sender_ssrc=OURS, rewriter=None, keep_feedback=False, media_ssrc=BROWSER
    )
    assert out is not None
    packets = rtcp_packets_untrusted(out)
    assert packets is not None
    assert [p[0] for p in packets] == [RtcpType.RR, RtcpType.SDES, RtcpType.BYE]
    assert u32(out, 4) == OURS
    assert (u32(out, 8), u32(out, 32)) == (BROWSER, BROWSER)
    assert out[12:32] == compound[12:32]
    sdes_at, bye_at = packets[1][1], packets[2][1]
    assert u32(out, sdes_at + 4) == OURS
    assert out[sdes_at + 8 : packets[1][2]] == sdes()[8:]  # the CNAME item stays
    assert (u32(out, bye_at + 4), u32(out, bye_at + 8)) == (OURS, OURS)


def test_bye_of_a_phone_changing_ssrc_does_not_end_our_stream() -> None:
    # A phone that re-bases (new SSRC after a hold or transfer) says BYE for its old SSRC;
    # the receiver's stream is ours and goes on, so the BYE stays behind.
    rw = relaying_rewriter()
    compound = receiver_report(blocks=(report_block(OTHER),)) + sdes() + bye(PHONE)
    out = rewrite_rtcp_for_receiver(compound, sender_ssrc=OURS, rewriter=rw, keep_feedback=False)
    assert out is not None
    packets = rtcp_packets_untrusted(out)
    assert packets is not None
    assert [p[0] for p in packets] == [RtcpType.RR, RtcpType.SDES]
    assert (
        rewrite_rtcp_for_receiver(bye(PHONE), sender_ssrc=OURS, rewriter=rw, keep_feedback=False)
        is None
    )


def test_feedback_dropped_for_a_peer_without_avpf() -> None:
    compound = receiver_report() + nack() + pli() + remb()
    out = rewrite_rtcp_for_receiver(compound, sender_ssrc=OURS, rewriter=None, keep_feedback=False)
    assert out == receiver_report(OURS)


def test_feedback_kept_with_our_ssrc_and_the_receivers_media_ssrc() -> None:
    compound = receiver_report() + nack() + pli()
    out = rewrite_rtcp_for_receiver(
        compound, sender_ssrc=OURS, rewriter=None, keep_feedback=True, media_ssrc=BROWSER
    )
    assert out is not None
    packets = rtcp_packets_untrusted(out)
    assert packets is not None
    assert [p[0] for p in packets] == [RtcpType.RR, RtcpType.RTPFB, RtcpType.PSFB]
    for _, start, _ in packets[1:]:
        assert (u32(out, start + 4), u32(out, start + 8)) == (OURS, BROWSER)
    assert out[packets[1][1] + 12 : packets[1][2]] == nack()[12:]  # the NACK's FCI stays


def test_feedback_kept_without_media_ssrc_leaves_it() -> None:
    out = rewrite_rtcp_for_receiver(pli(), sender_ssrc=OURS, rewriter=None, keep_feedback=True)
    assert out == pli(OURS, OTHER)


def test_nothing_left_to_send() -> None:
    assert (
        rewrite_rtcp_for_receiver(
            pli() + nack(), sender_ssrc=OURS, rewriter=None, keep_feedback=False
        )
        is None
    )


def test_app_and_xr_carry_our_ssrc_and_unknown_types_are_dropped() -> None:
    app = rtcp(RtcpType.APP, 0, struct.pack("!I", PHONE) + b"NAME")
    xr = rtcp(RtcpType.XR, 0, struct.pack("!I", PHONE) + struct.pack("!BBH", 4, 0, 2) + bytes(8))
    ij = rtcp(195, 1, struct.pack("!I", 1234))
    out = rewrite_rtcp_for_receiver(
        receiver_report() + app + xr + ij, sender_ssrc=OURS, rewriter=None, keep_feedback=True
    )
    assert out is not None
    packets = rtcp_packets_untrusted(out)
    assert packets is not None
    assert [p[0] for p in packets] == [RtcpType.RR, RtcpType.APP, RtcpType.XR]
    assert all(u32(out, start + 4) == OURS for _, start, _ in packets)


@pytest.mark.parametrize(
    ("why", "compound"),
    [
        ("SR too short for sender info", rtcp(RtcpType.SR, 0, struct.pack("!III", PHONE, 1, 2))),
        ("RR claims a block it lacks", rtcp(RtcpType.RR, 1, struct.pack("!I", PHONE))),
        ("BYE claims two SSRCs, has one", rtcp(RtcpType.BYE, 2, struct.pack("!I", PHONE))),
        ("PSFB without media SSRC", rtcp(RtcpType.PSFB, 1, struct.pack("!I", PHONE))),
        ("SDES chunk without SSRC", rtcp(RtcpType.SDES, 1, b"")),
        ("XR without SSRC", rtcp(RtcpType.XR, 0, b"")),
        ("padding count zero", bytes((0xA0, RtcpType.RR)) + struct.pack("!HII", 2, PHONE, 0)),
        ("lengths do not add up", receiver_report() + b"\x80\xc9\x00\x05"),
    ],
)
def test_rewrite_rejects_malformed(why: str, compound: bytes) -> None:
    out = rewrite_rtcp_for_receiver(
        compound, sender_ssrc=OURS, rewriter=relaying_rewriter(), keep_feedback=True
    )
    assert out is None, why


# --- keyframe requests and packets we build ---------------------------------------------


def test_keyframe_requests() -> None:
    assert feedback_requests_keyframe(receiver_report() + pli())
    assert feedback_requests_keyframe(fir())
    assert not feedback_requests_keyframe(receiver_report() + remb() + nack())
    assert not feedback_requests_keyframe(pli()[:-1])
    # A NACK has FMT 1 too, but it is RTPFB: not a keyframe request.
    assert not feedback_requests_keyframe(nack())


def test_build_pli() -> None:
    data = build_pli(OURS, PHONE)
    assert data == pli(OURS, PHONE)
    assert rtcp_packets_untrusted(data) == [(RtcpType.PSFB, 0, 12)]
    assert feedback_requests_keyframe(data)


def test_build_receiver_report() -> None:
    data = build_receiver_report(OURS)
    assert data == receiver_report(OURS)
    assert rtcp_packets_untrusted(data) == [(RtcpType.RR, 0, 8)]
    assert feedback_requests_keyframe(data + build_pli(OURS, PHONE))


def test_builders_reject_out_of_range_ssrc() -> None:
    with pytest.raises(LocalMediaError, match="media SSRC"):
        build_pli(OURS, 1 << 32)
    with pytest.raises(LocalMediaError, match="sender SSRC"):
        build_receiver_report(-1)


# --- per-compound cost (printed, never asserted) ----------------------------------------


def per_call_us(function: Callable[[], object], number: int, repeat: int = 3) -> float:
    """The best of ``repeat`` runs, in microseconds per call (other load only adds)."""
    return min(timeit.repeat(function, number=number, repeat=repeat)) / number * 1e6


def test_print_per_compound_timings() -> None:
    number = 5_000
    rw = relaying_rewriter()
    browser_compound = sender_report(blocks=(report_block(OTHER),)) + sdes() + pli()
    phone_compound = receiver_report() + sdes()
    figures = {
        "rtcp_packets_untrusted (SR+SDES+PLI)": per_call_us(
            lambda: rtcp_packets_untrusted(browser_compound), number
        ),
        "rewrite_rtcp_for_receiver (SR+SDES+PLI, mapped)": per_call_us(
            lambda: rewrite_rtcp_for_receiver(
                browser_compound, sender_ssrc=OURS, rewriter=rw, keep_feedback=True
            ),
            number,
        ),
        "rewrite_rtcp_for_receiver (RR+SDES, feedback dropped)": per_call_us(
            lambda: rewrite_rtcp_for_receiver(
                phone_compound, sender_ssrc=OURS, rewriter=None, keep_feedback=False
            ),
            number,
        ),
    }
    for name, figure in figures.items():
        print(f"{name}: {figure:.3f} us/compound")
    assert rewrite_rtcp_for_receiver(
        browser_compound, sender_ssrc=OURS, rewriter=rw, keep_feedback=True
    )
