"""RTP headers and the stream rewriter (RFC 3550 section 5.1): field access, header
lengths of untrusted packets, and one continuous outgoing stream whatever the source does."""

from __future__ import annotations

import struct
import timeit
from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rtcgw.media.errors import LocalMediaError, RemoteMediaError
from rtcgw.media.rtp import (
    RTP_HEADER_LENGTH,
    RtpRewriter,
    build_rtp,
    rtp_marker,
    rtp_payload_offset_untrusted,
    rtp_payload_type,
    rtp_sequence,
    rtp_ssrc,
    rtp_timestamp,
)

OURS = 0x0BADCAFE
PHONE = 0x11111111
PHONE_AFTER_REINVITE = 0x22222222
RATE = 8000
FRAME = 160  # 20 ms at 8 kHz
PAYLOAD = bytes(range(160))


def packet(
    sequence: int,
    timestamp: int,
    ssrc: int = PHONE,
    payload_type: int = 0,
    *,
    marker: bool = False,
    payload: bytes = PAYLOAD,
) -> bytes:
    return build_rtp(payload_type, sequence, timestamp, ssrc, payload, marker=marker)


def rewriter(initial_sequence: int = 1000, initial_timestamp: int = 50_000) -> RtpRewriter:
    return RtpRewriter(
        OURS, RATE, initial_sequence=initial_sequence, initial_timestamp=initial_timestamp
    )


def header(data: bytes) -> tuple[int, int, int, bool, int]:
    """(ssrc, sequence, timestamp, marker, payload type) of a packet."""
    return (
        rtp_ssrc(data),
        rtp_sequence(data),
        rtp_timestamp(data),
        rtp_marker(data),
        rtp_payload_type(data),
    )


# --- field access and building ---------------------------------------------------------


def test_build_and_read_back() -> None:
    data = build_rtp(111, 65535, 0xFFFFFFFF, 0xDEADBEEF, b"opus", marker=True)
    assert len(data) == RTP_HEADER_LENGTH + 4
    assert data[0] == 0x80
    assert header(data) == (0xDEADBEEF, 65535, 0xFFFFFFFF, True, 111)
    assert rtp_payload_offset_untrusted(data) == 12
    assert data[12:] == b"opus"


def test_build_without_marker() -> None:
    data = build_rtp(0, 1, 2, 3, b"")
    assert header(data) == (3, 1, 2, False, 0)
    assert rtp_payload_offset_untrusted(data) == 12


@pytest.mark.parametrize(
    ("field", "kwargs"),
    [
        ("payload type", {"payload_type": 128}),
        ("payload type", {"payload_type": -1}),
        ("sequence", {"sequence": 65536}),
        ("timestamp", {"timestamp": 1 << 32}),
        ("SSRC", {"ssrc": -1}),
    ],
)
def test_build_rejects_out_of_range(field: str, kwargs: dict[str, int]) -> None:
    values = {"payload_type": 0, "sequence": 0, "timestamp": 0, "ssrc": 0} | kwargs
    with pytest.raises(LocalMediaError, match=field):
        build_rtp(
            values["payload_type"], values["sequence"], values["timestamp"], values["ssrc"], b""
        )


def test_accessors_refuse_short_packets_loudly() -> None:
    with pytest.raises(struct.error):
        rtp_ssrc(b"\x80\x00\x00\x01")


# --- payload offsets of untrusted packets ------------------------------------------------


def raw(first: int, rest: bytes) -> bytes:
    """A packet with a chosen first octet and a fixed M/PT, seq, ts, SSRC."""
    return bytes((first, 0)) + struct.pack("!HII", 7, 8, 9) + rest


def test_offset_plain() -> None:
    assert rtp_payload_offset_untrusted(raw(0x80, b"x" * 10)) == 12


def test_offset_with_csrcs() -> None:
    csrcs = struct.pack("!II", 1, 2)
    assert rtp_payload_offset_untrusted(raw(0x82, csrcs + b"pay")) == 20
    # Exactly the CSRCs and nothing else: an empty payload is valid.
    assert rtp_payload_offset_untrusted(raw(0x82, csrcs)) == 20


def test_offset_with_one_byte_extension() -> None:
    # RFC 8285 one-byte form: 0xBEDE, length 1 word, one element (id 1, len 1) + padding.
    extension = struct.pack("!HH", 0xBEDE, 1) + bytes((0x10, 0x2A, 0, 0))
    assert rtp_payload_offset_untrusted(raw(0x90, extension + b"pay")) == 20


def test_offset_with_two_byte_extension_and_csrc() -> None:
    # RFC 8285 two-byte form: 0x100 + appbits, length 2 words.
    extension = struct.pack("!HH", 0x1000, 2) + bytes((5, 3, 1, 2, 3, 0, 0, 0))
    csrc = struct.pack("!I", 77)
    assert rtp_payload_offset_untrusted(raw(0x91, csrc + extension + b"p")) == 12 + 4 + 4 + 8


def test_offset_with_padding() -> None:
    data = raw(0xA0, b"payload" + bytes((0, 0, 3)))
    assert rtp_payload_offset_untrusted(data) == 12
    # Padding may be the whole rest of the packet.
    assert rtp_payload_offset_untrusted(raw(0xA0, bytes((0, 0, 3)))) == 12


@pytest.mark.parametrize(
    ("why", "data"),
    [
        ("empty", b""),
        ("shorter than the fixed header", b"\x80\x00\x00\x01\x00\x00\x00\x02\x00\x00\x00"),
        ("version 1", raw(0x40, b"pay")),
        ("version 0 (STUN-like)", raw(0x00, b"pay")),
        ("version 3", raw(0xC0, b"pay")),
        ("CSRC list cut short", raw(0x83, struct.pack("!II", 1, 2))),
        ("extension header cut short", raw(0x90, b"\xbe\xde")),
        ("extension longer than the packet", raw(0x90, struct.pack("!HH", 0xBEDE, 3) + b"1234")),
        ("padding count zero", raw(0xA0, b"pay\x00")),
        ("padding longer than the payload", raw(0xA0, b"pay\x05")),
        ("padding with no payload octet at all", raw(0xA0, b"")[:12]),
        ("padding reaching into the CSRCs", raw(0xA1, struct.pack("!I", 1) + b"\x02")),
    ],
)
def test_offset_rejects_malformed(why: str, data: bytes) -> None:
    assert rtp_payload_offset_untrusted(data) is None, why


@given(st.binary(max_size=80))
def test_offset_never_raises_on_random_bytes(data: bytes) -> None:
    offset = rtp_payload_offset_untrusted(data)
    if offset is not None:
        assert RTP_HEADER_LENGTH <= offset <= len(data)
        assert data[0] >> 6 == 2


@given(
    st.integers(0, 15),
    st.integers(0, 10),
    st.booleans(),
    st.binary(max_size=40),
    st.integers(1, 20),
)
def test_offset_finds_the_payload_we_built(
    csrc_count: int, extension_words: int, with_extension: bool, payload: bytes, padding: int
) -> None:
    first = 0x80 | 0x20 | csrc_count | (0x10 if with_extension else 0)
    head = bytes((first, 96)) + struct.pack("!HII", 1, 2, 3) + bytes(4 * csrc_count)
    if with_extension:
        head += struct.pack("!HH", 0xBEDE, extension_words) + bytes(4 * extension_words)
    data = head + payload + bytes(padding - 1) + bytes((padding,))
    assert rtp_payload_offset_untrusted(data) == len(head)
    assert rtp_payload_offset_untrusted(data[:-1]) in (None, len(head))


# --- the rewriter: one continuous stream -------------------------------------------------


def test_first_packet_carries_initial_values_and_our_ssrc() -> None:
    rw = rewriter()
    out = rw.rewrite(packet(4242, 777_777), now=10.0)
    assert header(out) == (OURS, 1000, 50_000, True, 0)
    assert out[12:] == PAYLOAD
    assert (rw.last_sequence, rw.last_timestamp, rw.source_ssrc) == (1000, 50_000, PHONE)
    assert rw.packets == 1
    assert rw.octets == len(PAYLOAD)


def test_same_source_keeps_offsets_through_loss_and_reordering() -> None:
    rw = rewriter()
    now = 0.0
    arrivals = [100, 101, 102, 105, 104, 106, 103, 107]  # 103-105 late, nothing lost for good
    outs = []
    for sequence in arrivals:
        outs.append(rw.rewrite(packet(sequence, sequence * FRAME), now))
        now += 0.02
    for sequence, out in zip(arrivals, outs, strict=True):
        assert rtp_sequence(out) == 1000 + sequence - 100
        assert rtp_timestamp(out) == 50_000 + (sequence - 100) * FRAME
        assert rtp_ssrc(out) == OURS
    # Only the first packet is marked: reordering is not a new stream.
    assert [rtp_marker(o) for o in outs] == [True] + [False] * 7
    assert (rw.last_sequence, rw.last_timestamp) == (1007, 50_000 + 7 * FRAME)


def test_gap_below_dropout_limit_shows_through() -> None:
    rw = rewriter()
    rw.rewrite(packet(100, 0), 0.0)
    out = rw.rewrite(packet(100 + 2999, 2999 * FRAME), 60.0)
    assert rtp_sequence(out) == 1000 + 2999
    assert rtp_timestamp(out) == 50_000 + 2999 * FRAME
    assert not rtp_marker(out)


def test_duplicate_passes_with_the_same_numbers() -> None:
    rw = rewriter()
    first = rw.rewrite(packet(100, 0), 0.0)
    second = rw.rewrite(packet(101, FRAME), 0.02)
    again = rw.rewrite(packet(101, FRAME), 0.03)
    assert rtp_sequence(again) == rtp_sequence(second) == rtp_sequence(first) + 1
    assert rtp_timestamp(again) == rtp_timestamp(second)


def test_silence_suppression_gap_shows_through() -> None:
    # A phone with VAD: seq +1, ts +3 s, 3 s elapsed. Same stream, offsets kept.
    rw = rewriter()
    rw.rewrite(packet(100, 0), 0.0)
    out = rw.rewrite(packet(101, 3 * RATE, marker=True), 3.0)
    assert rtp_sequence(out) == 1001
    assert rtp_timestamp(out) == 50_000 + 3 * RATE
    assert rtp_marker(out)  # the source's own talkspurt marker is kept


def test_new_source_ssrc_continues_the_stream() -> None:
    rw = rewriter()
    now = 0.0
    for index in range(5):
        rw.rewrite(packet(100 + index, index * FRAME), now)
        now += 0.02
    # After a re-INVITE the phone starts a new stream with unrelated numbers.
    out = rw.rewrite(packet(9, 123_456_789, PHONE_AFTER_REINVITE), now)
    assert rtp_ssrc(out) == OURS
    assert rtp_sequence(out) == 1005
    assert rtp_timestamp(out) == 50_000 + 4 * FRAME + FRAME  # 20 ms elapsed
    assert rtp_marker(out)
    assert rw.source_ssrc == PHONE_AFTER_REINVITE
    following = rw.rewrite(packet(10, 123_456_789 + FRAME, PHONE_AFTER_REINVITE), now + 0.02)
    assert rtp_sequence(following) == 1006
    assert rtp_timestamp(following) == 50_000 + 6 * FRAME
    assert not rtp_marker(following)


def test_rebase_advances_at_least_one_frame() -> None:
    rw = rewriter()
    rw.rewrite(packet(100, 0), 5.0)
    out = rw.rewrite(packet(7, 0, PHONE_AFTER_REINVITE), 5.0)  # same instant
    assert rtp_sequence(out) == 1001
    assert rtp_timestamp(out) == 50_000 + FRAME


def test_one_hour_of_hold_then_resume() -> None:
    rw = rewriter(initial_timestamp=0xFFFF_0000)
    rw.rewrite(packet(100, 0), 0.0)
    rw.rewrite(packet(101, FRAME), 0.02)
    # Hold: nothing for an hour, then the phone resumes with a fresh stream.
    out = rw.rewrite(packet(5000, 42, PHONE_AFTER_REINVITE), 0.02 + 3600.0)
    assert rtp_sequence(out) == 1002
    expected = (0xFFFF_0000 + FRAME + 3600 * RATE) % 2**32
    assert rtp_timestamp(out) == expected
    assert rtp_marker(out)


def test_one_hour_of_hold_same_ssrc_with_running_clock_keeps_offsets() -> None:
    # A phone that keeps its RTP clock running through hold: the timestamp moved exactly
    # as the wall clock did, which is one stream, not a jump.
    rw = rewriter()
    rw.rewrite(packet(100, 0), 0.0)
    out = rw.rewrite(packet(101, FRAME + 3600 * RATE), 3600.02)
    assert rtp_sequence(out) == 1001
    assert rtp_timestamp(out) == (50_000 + FRAME + 3600 * RATE) % 2**32
    assert not rtp_marker(out)


def test_timestamp_jump_beyond_elapsed_time_rebases() -> None:
    rw = rewriter()
    rw.rewrite(packet(100, 0), 0.0)
    # Sequence continues but the clock leaped 30 s in 20 ms: a restarted source clock.
    out = rw.rewrite(packet(101, 30 * RATE), 0.02)
    assert rtp_sequence(out) == 1001
    assert rtp_timestamp(out) == 50_000 + FRAME
    assert rtp_marker(out)


def test_timestamp_jump_backwards_rebases() -> None:
    rw = rewriter()
    rw.rewrite(packet(100, 20 * RATE), 0.0)
    out = rw.rewrite(packet(101, 0), 0.02)
    assert rtp_timestamp(out) == 50_000 + FRAME
    assert rtp_marker(out)


def test_sequence_jump_forward_rebases() -> None:
    rw = rewriter()
    rw.rewrite(packet(100, 0), 0.0)
    out = rw.rewrite(packet(100 + 3000, FRAME), 0.02)
    assert rtp_sequence(out) == 1001
    assert rtp_marker(out)


def test_sequence_jump_backwards_beyond_misorder_rebases() -> None:
    rw = rewriter()
    rw.rewrite(packet(500, 0), 0.0)
    late = rw.rewrite(packet(400, 0), 0.02)  # back by 100: still reordering
    assert rtp_sequence(late) == 900
    assert not rtp_marker(late)
    restarted = rw.rewrite(packet(399, 0), 0.04)  # back by 101: a restart
    assert rtp_sequence(restarted) == 1001
    assert rtp_marker(restarted)


def test_output_wraps_sequence_and_timestamp() -> None:
    rw = rewriter(initial_sequence=65534, initial_timestamp=2**32 - 2 * FRAME)
    outs = [rw.rewrite(packet(10 + i, i * FRAME), i * 0.02) for i in range(4)]
    assert [rtp_sequence(o) for o in outs] == [65534, 65535, 0, 1]
    assert [rtp_timestamp(o) for o in outs] == [2**32 - 320, 2**32 - 160, 0, 160]
    assert [rtp_marker(o) for o in outs] == [True, False, False, False]
    # A re-base right after the wrap continues from the wrapped values.
    out = rw.rewrite(packet(0, 0, PHONE_AFTER_REINVITE), 4 * 0.02)
    assert (rtp_sequence(out), rtp_timestamp(out)) == (2, 320)


def test_source_wrap_is_not_a_jump() -> None:
    rw = rewriter()
    source_ts = 2**32 - FRAME
    outs = [
        rw.rewrite(packet((65534 + i) % 65536, (source_ts + i * FRAME) % 2**32), i * 0.02)
        for i in range(4)
    ]
    assert [rtp_sequence(o) for o in outs] == [1000, 1001, 1002, 1003]
    assert [rtp_timestamp(o) for o in outs] == [50_000 + i * FRAME for i in range(4)]
    assert [rtp_marker(o) for o in outs] == [True, False, False, False]
    # A late packet from before the wrap is still reordering.
    late = rw.rewrite(packet(65535, source_ts), 0.1)
    assert rtp_sequence(late) == 1001


def test_payload_type_map() -> None:
    rw = rewriter()
    rw.payload_type_map = {96: 111, 101: 110}
    assert rtp_payload_type(rw.rewrite(packet(1, 0, payload_type=96), 0.0)) == 111
    dtmf = rw.rewrite(packet(2, FRAME, payload_type=101, marker=True), 0.02)
    assert (rtp_payload_type(dtmf), rtp_marker(dtmf)) == (110, True)
    # Not in the map: passes unchanged.
    assert rtp_payload_type(rw.rewrite(packet(3, 2 * FRAME, payload_type=0), 0.04)) == 0


def test_empty_payload_type_map_leaves_payload_types_alone() -> None:
    rw = rewriter()
    assert rtp_payload_type(rw.rewrite(packet(1, 0, payload_type=8), 0.0)) == 8


def test_bytearray_is_edited_in_place_and_bytes_are_not() -> None:
    rw = rewriter()
    source = packet(1, 0)
    kept = bytes(source)
    rw.rewrite(source, 0.0)
    assert source == kept
    buffer = bytearray(packet(2, FRAME))
    out = rw.rewrite(buffer, 0.02)
    assert bytes(buffer) == out
    assert rtp_ssrc(buffer) == OURS
    assert out[12:] == PAYLOAD


def test_csrcs_extension_and_padding_survive_and_octets_count_payload_only() -> None:
    rw = rewriter()
    csrc = struct.pack("!I", 99)
    extension = struct.pack("!HH", 0xBEDE, 1) + bytes((0x10, 1, 0, 0))
    body = csrc + extension + b"payload" + bytes((0, 0, 3))
    data = bytes((0x80 | 0x20 | 0x10 | 1, 0)) + struct.pack("!HII", 5, 6, PHONE) + body
    out = rw.rewrite(data, 0.0)
    assert out[12:] == body
    assert out[0] == data[0]
    assert rw.octets == len(b"payload")
    rw.rewrite(packet(6, 6 + FRAME, payload=b"abc"), 0.02)
    assert (rw.packets, rw.octets) == (2, len(b"payload") + 3)


def test_set_clock_rate_rebases_in_the_new_units() -> None:
    rw = rewriter()
    rw.rewrite(packet(1, 0), 0.0)
    rw.set_clock_rate(48_000)
    assert rw.clock_rate == 48_000
    out = rw.rewrite(packet(2, 160, payload_type=111), 0.1)
    assert rtp_sequence(out) == 1001
    assert rtp_timestamp(out) == 50_000 + 4800  # 100 ms at 48 kHz
    assert rtp_marker(out)
    # The same rate again is no codec change.
    rw.set_clock_rate(48_000)
    follow = rw.rewrite(packet(3, 160 + 960, payload_type=111), 0.12)
    assert rtp_timestamp(follow) == 50_000 + 4800 + 960
    assert not rtp_marker(follow)


def test_marker_on_rebase_can_be_turned_off_for_video() -> None:
    rw = RtpRewriter(OURS, 90_000, initial_sequence=0, initial_timestamp=0, marker_on_rebase=False)
    assert not rtp_marker(rw.rewrite(packet(1, 0, payload_type=96), 0.0))
    assert not rtp_marker(rw.rewrite(packet(1, 0, PHONE_AFTER_REINVITE, 96), 0.04))
    assert rtp_timestamp(rw.rewrite(packet(2, 3000, PHONE_AFTER_REINVITE, 96), 0.06)) == (
        3600 + 3000
    )


def test_map_timestamp_follows_the_offset() -> None:
    rw = rewriter(initial_timestamp=100)
    rw.rewrite(packet(1, 2**32 - 50), 0.0)
    assert rw.map_timestamp(2**32 - 50) == 100
    assert rw.map_timestamp(10) == 160


def test_short_packet_is_the_peers_fault() -> None:
    with pytest.raises(RemoteMediaError, match="shorter than the 12-byte header"):
        rewriter().rewrite(b"\x80\x00\x00", 0.0)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"ssrc": 1 << 32}, "SSRC"),
        ({"clock_rate": 0}, "clock rate"),
        ({"initial_sequence": 70_000}, "sequence"),
        ({"initial_timestamp": -1}, "timestamp"),
    ],
)
def test_rewriter_rejects_bad_configuration(kwargs: dict[str, int], field: str) -> None:
    values = {"ssrc": 1, "clock_rate": 8000, "initial_sequence": 0, "initial_timestamp": 0}
    values |= kwargs
    with pytest.raises(LocalMediaError, match=field):
        RtpRewriter(
            values["ssrc"],
            values["clock_rate"],
            initial_sequence=values["initial_sequence"],
            initial_timestamp=values["initial_timestamp"],
        )
    with pytest.raises(LocalMediaError, match="clock rate"):
        rewriter().set_clock_rate(-8000)


@given(
    st.lists(
        st.tuples(
            st.sampled_from([PHONE, PHONE_AFTER_REINVITE]),
            st.integers(0, 65535),
            st.integers(0, 2**32 - 1),
            st.floats(0, 100, allow_nan=False),
        ),
        min_size=1,
        max_size=30,
    )
)
def test_rewriter_never_jumps_far_back_whatever_the_source(
    arrivals: list[tuple[int, int, int, float]],
) -> None:
    # Whatever the source sends, the highest sequence number sent only moves forward
    # (serial-number order), and each step forward is a re-base (+1) or a source step.
    rw = rewriter()
    now = 0.0
    previous = rw.last_sequence
    for ssrc, sequence, timestamp, step in arrivals:
        now += step
        out = rw.rewrite(packet(sequence, timestamp, ssrc), now)
        assert rtp_ssrc(out) == OURS
        advance = (rw.last_sequence - previous) % 65536
        assert advance < 3000
        previous = rw.last_sequence


# --- per-packet cost (printed, never asserted) ------------------------------------------


def per_call_us(function: Callable[[], object], number: int, repeat: int = 3) -> float:
    """The best of ``repeat`` runs, in microseconds per call (other load only adds)."""
    return min(timeit.repeat(function, number=number, repeat=repeat)) / number * 1e6


def test_print_per_packet_timings() -> None:
    number, repeat = 10_000, 3
    data = packet(1, 0)
    with_extension = bytes((0x90, 0)) + struct.pack("!HIIHH", 1, 2, 3, 0xBEDE, 1) + bytes(164)
    # An in-order stream, as the relay sees it: each packet once, in its receive buffer.
    count = number * repeat
    stream = iter([bytearray(packet(s & 0xFFFF, s * FRAME)) for s in range(count)])
    clock = iter([s * 0.02 for s in range(count)])
    rw_stream = rewriter()
    rw_bytes = rewriter()

    figures = {
        "rtp_payload_offset_untrusted (plain)": per_call_us(
            lambda: rtp_payload_offset_untrusted(data), number
        ),
        "rtp_payload_offset_untrusted (extension)": per_call_us(
            lambda: rtp_payload_offset_untrusted(with_extension), number
        ),
        "RtpRewriter.rewrite (bytearray, in-order stream)": per_call_us(
            lambda: rw_stream.rewrite(next(stream), next(clock)), number, repeat
        ),
        "RtpRewriter.rewrite (bytes, copy)": per_call_us(
            lambda: rw_bytes.rewrite(data, 1.0), number
        ),
    }
    for name, figure in figures.items():
        print(f"{name}: {figure:.3f} us/packet")
    assert rw_stream.packets == count
    assert rw_stream.last_sequence == (1000 + count - 1) & 0xFFFF
