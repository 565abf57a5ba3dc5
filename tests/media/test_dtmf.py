"""DTMF: SIP INFO ``application/dtmf-relay`` bodies and RFC 4733 telephone-events, both
ways: body parsing and formatting, the packet train of a digit, and a receiver that counts
each digit once."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rtcgw.media.dtmf import (
    DTMF_EVENTS,
    MAX_DIGIT_DURATION_MS,
    DtmfDigit,
    EventPacket,
    TelephoneEventReceiver,
    event_packets,
    format_dtmf_relay,
    parse_dtmf_relay,
    parse_telephone_event_untrusted,
    telephone_event_payload,
)
from rtcgw.media.errors import LocalMediaError, RemoteMediaError

# --- the digit ----------------------------------------------------------------------------


def test_symbols_follow_rfc_4733_event_codes() -> None:
    assert [DtmfDigit(event).symbol for event in range(16)] == list("0123456789*#ABCD")
    assert DtmfDigit(5) == DtmfDigit(5, 100, 10)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"event": 16}, "event"),
        ({"event": -1}, "event"),
        ({"event": 1, "duration_ms": 0}, "duration"),
        ({"event": 1, "duration_ms": MAX_DIGIT_DURATION_MS + 1}, "duration"),
        ({"event": 1, "volume": 64}, "volume"),
    ],
)
def test_digit_rejects_out_of_range(kwargs: dict[str, int], field: str) -> None:
    with pytest.raises(LocalMediaError, match=field):
        DtmfDigit(**kwargs)


# --- SIP INFO bodies -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "symbol", "duration_ms"),
    [
        ("Signal=5\r\nDuration=160\r\n", "5", 160),  # JsSIP
        ("Signal=5\nDuration=100\n", "5", 100),  # LF only
        ("signal= *\r\nduration = 250", "*", 250),  # case and blanks
        ("Signal=#\r\nDuration=100\r\n", "#", 100),
        ("Signal=a\r\nDuration=100\r\n", "A", 100),  # letters in any case
        ("Signal=D\r\n", "D", 100),  # Duration missing: 100 ms
        ("Signal=10\r\nDuration=100\r\n", "*", 100),  # event numbers: 10 is *
        ("Signal=11\r\nDuration=100\r\n", "#", 100),  # 11 is #
        ("Signal=12\r\nDuration=100\r\n", "A", 100),
        ("Signal=15\r\nDuration=100\r\n", "D", 100),
        ("Signal=0\r\nDuration=100\r\n", "0", 100),
        ("\r\nSignal=1\r\nX-Vendor=whatever\r\nDuration=70\r\n\r\n", "1", 70),  # unknown key
    ],
)
def test_parse_dtmf_relay(body: str, symbol: str, duration_ms: int) -> None:
    digit = parse_dtmf_relay(body)
    assert (digit.symbol, digit.duration_ms, digit.volume) == (symbol, duration_ms, 10)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("", "no Signal"),
        ("Duration=100\r\n", "no Signal"),
        ("Signal 5\r\n", "line 1 has no '='"),
        ("Signal=5\r\nDuration\r\n", "line 2 has no '='"),
        ("Signal=E\r\n", "'E' is not a DTMF symbol"),
        ("Signal=16\r\n", "'16' is not a DTMF symbol"),
        ("Signal=\r\n", "'' is not a DTMF symbol"),
        ("Signal=55\r\n", "'55'"),
        ("Signal=1\r\nSignal=2\r\n", "repeats Signal"),
        ("Signal=1\r\nDuration=1\r\nDuration=2\r\n", "repeats Duration"),
        ("Signal=1\r\nDuration=abc\r\n", "Duration 'abc' is not a number"),
        ("Signal=1\r\nDuration=-5\r\n", "Duration '-5' is not a number"),
        ("Signal=1\r\nDuration=0\r\n", "outside 1-60000 ms"),
        ("Signal=1\r\nDuration=600000\r\n", "outside 1-60000 ms"),
        ("Signal=1\r\nDuration=" + "9" * 5000 + "\r\n", "is not a number"),
        ("Signal=1\r\nDuration=\u0665\r\n", "is not a number"),  # a non-ASCII digit
    ],
)
def test_parse_dtmf_relay_rejects_malformed(body: str, message: str) -> None:
    with pytest.raises(RemoteMediaError, match=message):
        parse_dtmf_relay(body)


def test_format_dtmf_relay() -> None:
    assert format_dtmf_relay(DtmfDigit(11, 160)) == "Signal=#\r\nDuration=160\r\n"
    assert format_dtmf_relay(DtmfDigit(5)) == "Signal=5\r\nDuration=100\r\n"


@given(st.integers(0, 15), st.integers(1, MAX_DIGIT_DURATION_MS))
def test_format_then_parse_round_trip(event: int, duration_ms: int) -> None:
    digit = DtmfDigit(event, duration_ms)
    assert parse_dtmf_relay(format_dtmf_relay(digit)) == digit


@given(st.text(max_size=60))
def test_parse_raises_only_remote_media_error(body: str) -> None:
    try:
        digit = parse_dtmf_relay(body)
    except RemoteMediaError:
        return
    assert digit.symbol in DTMF_EVENTS


# --- telephone-event payloads ------------------------------------------------------------


def test_payload_layout() -> None:
    # RFC 4733 2.3: event, E|R|volume, 16-bit duration.
    assert telephone_event_payload(11, end=True, volume=10, duration=800) == b"\x0b\x8a\x03\x20"
    assert telephone_event_payload(0, end=False, volume=63, duration=0) == b"\x00\x3f\x00\x00"


@given(st.integers(0, 255), st.booleans(), st.integers(0, 63), st.integers(0, 65535))
def test_payload_round_trip(event: int, end: bool, volume: int, duration: int) -> None:
    payload = telephone_event_payload(event, end=end, volume=volume, duration=duration)
    assert parse_telephone_event_untrusted(payload) == (event, end, volume, duration)


def test_parse_payload_ignores_reserved_bit_and_extra_blocks() -> None:
    assert parse_telephone_event_untrusted(b"\x05\xca\x01\x40" + b"\x06\x0a\x00\xa0") == (
        5,
        True,
        10,
        320,
    )


@given(st.binary(max_size=8))
def test_parse_payload_never_raises(payload: bytes) -> None:
    fields = parse_telephone_event_untrusted(payload)
    assert (fields is None) == (len(payload) < 4)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"event": 256}, "code"),
        ({"volume": 64}, "volume"),
        ({"duration": 65536}, "duration"),
        ({"duration": -1}, "duration"),
    ],
)
def test_payload_rejects_out_of_range(kwargs: dict[str, int], field: str) -> None:
    values = {"event": 1, "volume": 10, "duration": 0} | kwargs
    with pytest.raises(LocalMediaError, match=field):
        telephone_event_payload(
            values["event"], end=False, volume=values["volume"], duration=values["duration"]
        )


# --- the packet train of one digit --------------------------------------------------------


def fields(packet: EventPacket) -> tuple[int, bool, int, int]:
    parsed = parse_telephone_event_untrusted(packet.payload)
    assert parsed is not None
    return parsed


def test_event_packets_of_a_200_ms_digit() -> None:
    train = event_packets(DtmfDigit(5, 200, 12))
    # Updates at 50 ms steps (400 units at 8 kHz), then the end three times.
    assert [fields(p) for p in train] == [
        (5, False, 12, 400),
        (5, False, 12, 800),
        (5, False, 12, 1200),
        (5, True, 12, 1600),
        (5, True, 12, 1600),
        (5, True, 12, 1600),
    ]
    assert [p.marker for p in train] == [True, False, False, False, False, False]
    assert {p.timestamp_offset for p in train} == {0}
    assert [p.at_s for p in train] == pytest.approx([0.0, 0.05, 0.1, 0.15, 0.2, 0.25])
    end_payloads = {p.payload for p in train[-3:]}
    assert len(end_payloads) == 1


def test_event_packets_at_48_khz_and_20_ms() -> None:
    train = event_packets(DtmfDigit(1, 100), 48_000, packet_interval_ms=20)
    durations = [fields(p)[3] for p in train]
    assert durations == [960, 1920, 2880, 3840, 4800, 4800, 4800]
    assert [fields(p)[1] for p in train] == [False] * 4 + [True] * 3
    assert train[0].marker
    assert not any(p.marker for p in train[1:])


def test_event_packets_of_a_digit_shorter_than_one_interval() -> None:
    train = event_packets(DtmfDigit(0, 40))
    assert [fields(p) for p in train] == [(0, True, 10, 320)] * 3
    assert [p.marker for p in train] == [True, False, False]
    assert [p.at_s for p in train] == pytest.approx([0.0, 0.05, 0.1])


def test_event_packets_clamp_to_the_16_bit_duration() -> None:
    train = event_packets(DtmfDigit(9, 10_000))  # 80 000 units at 8 kHz
    assert fields(train[-1]) == (9, True, 10, 0xFFFF)
    assert all(fields(p)[3] <= 0xFFFF for p in train)
    durations = [fields(p)[3] for p in train]
    assert durations == sorted(durations)


def test_event_packets_reject_bad_arguments() -> None:
    with pytest.raises(LocalMediaError, match="clock rate"):
        event_packets(DtmfDigit(1), 0)
    with pytest.raises(LocalMediaError, match="interval"):
        event_packets(DtmfDigit(1), packet_interval_ms=0)


# --- receiving ----------------------------------------------------------------------------


def feed(
    receiver: TelephoneEventReceiver, train: list[EventPacket], timestamp: int
) -> list[DtmfDigit]:
    digits = []
    for packet in train:
        digit = receiver.receive(packet.payload, timestamp + packet.timestamp_offset)
        if digit is not None:
            digits.append(digit)
    return digits


def test_receiver_reports_each_digit_once() -> None:
    receiver = TelephoneEventReceiver()
    digits = feed(receiver, event_packets(DtmfDigit(5, 200, 12)), 1000)
    digits += feed(receiver, event_packets(DtmfDigit(5, 120)), 3000)  # the same key again
    digits += feed(receiver, event_packets(DtmfDigit(11, 100)), 5000)
    assert digits == [DtmfDigit(5, 200, 12), DtmfDigit(5, 120), DtmfDigit(11, 100)]
    assert receiver.flush() is None


def test_receiver_ignores_late_retransmissions_and_duplicates() -> None:
    receiver = TelephoneEventReceiver()
    train = event_packets(DtmfDigit(3, 100))
    assert feed(receiver, train, 1000) == [DtmfDigit(3, 100)]
    assert feed(receiver, train, 1000) == []  # every packet again
    assert feed(receiver, event_packets(DtmfDigit(4, 100)), 2000) == [DtmfDigit(4, 100)]
    assert feed(receiver, train[-1:], 1000) == []  # a very late end of the first


def test_receiver_reports_a_digit_whose_end_packets_were_lost() -> None:
    receiver = TelephoneEventReceiver()
    train = event_packets(DtmfDigit(7, 200))
    assert feed(receiver, train[:3], 1000) == []  # updates only, all ends lost
    second = event_packets(DtmfDigit(8, 100))
    assert receiver.receive(second[0].payload, 4000) == DtmfDigit(7, 150)
    assert feed(receiver, second[1:], 4000) == [DtmfDigit(8, 100)]


def test_receiver_flush_gives_up_on_missing_ends() -> None:
    receiver = TelephoneEventReceiver(48_000)
    train = event_packets(DtmfDigit(2, 300), 48_000)
    assert feed(receiver, train[:2], 7) == []
    assert receiver.flush() == DtmfDigit(2, 100)
    assert receiver.flush() is None
    assert feed(receiver, train[2:], 7) == []  # its late ends are not a second digit


def test_receiver_when_the_previous_digit_is_flushed_by_an_end_packet() -> None:
    receiver = TelephoneEventReceiver()
    feed(receiver, event_packets(DtmfDigit(1, 200))[:2], 100)
    late_start = event_packets(DtmfDigit(2, 40))  # three end packets only
    digits = feed(receiver, late_start, 900)
    assert digits == [DtmfDigit(1, 100), DtmfDigit(2, 40)]


def test_receiver_long_event_in_segments_counts_once() -> None:
    # RFC 4733 2.5.2.3: a key held beyond 0xFFFF units continues in a new segment whose
    # timestamp is the previous one plus 0xFFFF.
    receiver = TelephoneEventReceiver()
    start = 2**32 - 100  # and the timestamp wraps between the segments
    first = telephone_event_payload(6, end=False, volume=10, duration=0xFFFF)
    assert receiver.receive(first, start) is None
    second_ts = (start + 0xFFFF) % 2**32
    update = telephone_event_payload(6, end=False, volume=10, duration=8000)
    end = telephone_event_payload(6, end=True, volume=10, duration=16000)
    assert receiver.receive(update, second_ts) is None
    digit = receiver.receive(end, second_ts)
    assert digit == DtmfDigit(6, round((0xFFFF + 16000) / 8))
    assert receiver.receive(end, second_ts) is None
    assert receiver.receive(first, start) is None


def test_receiver_ignores_non_dtmf_events_and_garbage() -> None:
    receiver = TelephoneEventReceiver()
    flash = telephone_event_payload(16, end=True, volume=10, duration=800)
    assert receiver.receive(flash, 1) is None
    assert receiver.receive(b"\x01\x8a", 2) is None
    assert receiver.flush() is None


def test_receiver_rejects_bad_clock_rate() -> None:
    with pytest.raises(LocalMediaError, match="clock rate"):
        TelephoneEventReceiver(0)


@given(
    st.lists(st.tuples(st.binary(min_size=0, max_size=6), st.integers(0, 2**32 - 1)), max_size=30)
)
def test_receiver_never_raises(packets: list[tuple[bytes, int]]) -> None:
    receiver = TelephoneEventReceiver()
    for payload, timestamp in packets:
        digit = receiver.receive(payload, timestamp)
        if digit is not None:
            assert 0 <= digit.event <= 15
    receiver.flush()


@given(st.integers(0, 15), st.integers(1, 8000), st.sampled_from([8000, 16000, 48000]))
def test_train_then_receiver_round_trip(event: int, duration_ms: int, clock_rate: int) -> None:
    digit = DtmfDigit(event, duration_ms)
    receiver = TelephoneEventReceiver(clock_rate)
    digits = feed(receiver, event_packets(digit, clock_rate), 12345)
    assert len(digits) == 1
    assert digits[0].event == event
    longest_ms = 0xFFFF * 1000 // clock_rate
    assert abs(digits[0].duration_ms - min(duration_ms, longest_ms)) <= 1


# --- splicing digits into a relayed stream ------------------------------------------------


def _audio(seq: int, ts: int, ssrc: int = 0xAB) -> bytes:
    from rtcgw.media.rtp import build_rtp

    return build_rtp(0, seq & 0xFFFF, ts & 0xFFFFFFFF, ssrc, b"\xff" * 160)


def _header(packet: bytes) -> tuple[int, bool, int, int, int]:
    import struct

    _, second, seq, ts, ssrc = struct.unpack_from("!BBHII", packet)
    return second & 0x7F, bool(second & 0x80), seq, ts, ssrc


def test_sender_continues_the_relayed_streams_numbering_and_holds_audio_back() -> None:
    from rtcgw.media.dtmf import TelephoneEventSender

    sender = TelephoneEventSender(101, 8000, ssrc=1, sequence=1, timestamp=1)
    now = 10.0
    for index in range(5):  # 20 ms audio, seq 100..104
        assert sender.relay(_audio(100 + index, 8000 + 160 * index), now) is not None
        now += 0.02
    assert sender.queue(DtmfDigit(11, 120), now)
    events: list[bytes] = []
    relayed: list[bytes] = []
    held = 0
    index = 5
    # Run the clock in 10 ms steps: audio keeps arriving, the timer gives the due packets.
    for _ in range(100):
        if sender.next_deadline() is None and len(relayed) >= 2:
            break
        events += sender.due(now)
        out = sender.relay(_audio(100 + index, 8000 + 160 * index), now)
        if out is None:
            held += 1
        else:
            relayed.append(out)
        index += 1
        now += 0.01
    headers = [_header(p) for p in events]
    # Two updates (50 and 100 ms of 120), three end packets; one event timestamp after the
    # last audio's, the audio's SSRC, sequence numbers right after the audio's.
    assert [h[2] for h in headers] == [105, 106, 107, 108, 109]
    assert {h[0] for h in headers} == {101} and {h[4] for h in headers} == {0xAB}
    assert [h[1] for h in headers] == [True, False, False, False, False]
    assert len({h[3] for h in headers}) == 1 and headers[0][3] > 8000 + 160 * 4
    fields = [parse_telephone_event_untrusted(p[12:]) for p in events]
    assert [f[3] for f in fields if f] == [400, 800, 960, 960, 960]
    assert held > 0
    # The audio after the digit follows the last event packet, and goes on from there.
    assert [_header(p)[2] for p in relayed] == [110, 111]


def test_sender_before_any_audio_uses_its_own_ssrc_and_bounds_its_queue() -> None:
    from rtcgw.media.dtmf import MAX_QUEUED_DIGITS, TelephoneEventSender

    sender = TelephoneEventSender(96, 48000, ssrc=7, sequence=500, timestamp=9000)
    assert all(sender.queue(DtmfDigit(1), 0.0) for _ in range(MAX_QUEUED_DIGITS))
    assert not sender.queue(DtmfDigit(1), 0.0)
    first = sender.due(0.0)
    assert [_header(p)[2] for p in first] == [500] and _header(first[0])[4] == 7
    assert _header(first[0])[3] == 9000 and _header(first[0])[0] == 96
