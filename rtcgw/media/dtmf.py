"""DTMF both ways: RFC 4733 telephone-events and SIP INFO ``application/dtmf-relay`` bodies.

Browsers on JsSIP and SIP.js send DTMF as SIP INFO with an ``application/dtmf-relay``
body (``Signal=5`` and ``Duration=100`` lines); SIP phones and PBXs mostly expect RFC 4733
telephone-events in the RTP stream. This module converts between the two: it parses and
formats the INFO body, builds the packet train of one digit, and turns received
telephone-event packets back into digits, each reported once.

``TelephoneEventSender`` splices digits into a relayed audio stream: it numbers the
event packets after the audio it has seen pass, and holds the audio back while a digit
is being sent, so the receiver sees one stream whose sequence numbers never repeat.

What it does not do: no sockets, no clock (the packet train carries send times relative
to its first packet; the caller passes ``now`` and schedules them), no in-band tone
detection or generation.

Events 0-15 are the DTMF digits of RFC 4733 section 3.2, in the order of
``DTMF_EVENTS``: 0-9 are the digits, 10 is ``*``, 11 is ``#`` and 12-15 are ``A``-``D``.
Other events (flash, modem and fax tones) are parsed but not reported as digits.
"""

from __future__ import annotations

import struct
from collections import deque
from dataclasses import dataclass
from typing import Final, final

from rtcgw.media.errors import LocalMediaError, RemoteMediaError
from rtcgw.media.rtp import RTP_HEADER_LENGTH, build_rtp

__all__ = [
    "DTMF_CONTENT_TYPES",
    "DTMF_EVENTS",
    "DTMF_RELAY",
    "MAX_DIGIT_DURATION_MS",
    "DtmfDigit",
    "EventPacket",
    "TelephoneEventReceiver",
    "TelephoneEventSender",
    "event_packets",
    "format_dtmf_relay",
    "parse_dtmf_info",
    "parse_dtmf_relay",
    "parse_telephone_event_untrusted",
    "telephone_event_payload",
]

#: The DTMF symbols by event code 0-15 (RFC 4733 section 3.2, Table 7).
DTMF_EVENTS: Final = "0123456789*#ABCD"

#: The longest digit we accept from an INFO body or report from RTP. A key held longer is
#: a stuck key, not signalling; the limit also bounds what a peer can make us send.
MAX_DIGIT_DURATION_MS: Final = 60_000

#: The INFO body type JsSIP and SIP.js send (``Signal=`` and ``Duration=`` lines).
DTMF_RELAY: Final = "application/dtmf-relay"
#: The INFO body types read as one digit: dtmf-relay, and ``application/dtmf`` whose body
#: is the bare signal (some SIP phones).
DTMF_CONTENT_TYPES: Final = frozenset({DTMF_RELAY, "application/dtmf"})

#: The default duration of a digit signalled by SIP INFO without a Duration line.
_DEFAULT_DURATION_MS: Final = 100
_DEFAULT_VOLUME: Final = 10

_EVENT = struct.Struct("!BBH")  # event, E|R|volume, duration (RFC 4733 2.3)
_END_BIT: Final = 0x80
_VOLUME_MASK: Final = 0x3F
_MAX_EVENT_DURATION: Final = 0xFFFF  # 16-bit duration field, in timestamp units
_TS_MASK: Final = 0xFFFFFFFF
# RFC 4733 2.5.1.4: "the final packet for each event ... SHOULD be sent a total of three
# times", so one lost packet does not lose the end of the digit.
_END_PACKET_COPIES: Final = 3
_REMEMBERED_EVENTS: Final = 8


@dataclass(frozen=True, slots=True)
class DtmfDigit:
    """One DTMF digit: event code, duration and volume.

    Attributes:
        event: the event code, 0-15 (``DTMF_EVENTS[event]`` is the symbol).
        duration_ms: how long the key was pressed, 1 to ``MAX_DIGIT_DURATION_MS``.
        volume: the tone's power level in -dBm0, 0-63 (RFC 4733 2.3.4); INFO bodies carry
            none, so 10 is used.
    """

    event: int
    duration_ms: int = _DEFAULT_DURATION_MS
    volume: int = _DEFAULT_VOLUME

    def __post_init__(self) -> None:
        if not 0 <= self.event < len(DTMF_EVENTS):
            raise LocalMediaError(f"DTMF event must be 0-15, got {self.event}")
        if not 1 <= self.duration_ms <= MAX_DIGIT_DURATION_MS:
            raise LocalMediaError(
                f"DTMF duration must be 1-{MAX_DIGIT_DURATION_MS} ms, got {self.duration_ms}"
            )
        if not 0 <= self.volume <= _VOLUME_MASK:
            raise LocalMediaError(f"DTMF volume must be 0-63 (-dBm0), got {self.volume}")

    @property
    def symbol(self) -> str:
        """The digit as a character: ``0``-``9``, ``*``, ``#`` or ``A``-``D``."""
        return DTMF_EVENTS[self.event]


def _parse_signal(value: str) -> int:
    """The event code of a Signal value: a symbol (any case) or an event number 0-15."""
    if len(value) == 1 and value.upper() in DTMF_EVENTS:
        return DTMF_EVENTS.index(value.upper())
    if value.isascii() and value.isdigit() and len(value) <= 2 and int(value) < 16:
        return int(value)
    raise RemoteMediaError(
        f"dtmf-relay Signal {value!r} is not a DTMF symbol (0-9, *, #, A-D) or event 0-15"
    )


def _parse_duration(value: str) -> int:
    # Bounded length before int(): the value comes from the network.
    if not (value.isascii() and value.isdigit() and len(value) <= 9):
        raise RemoteMediaError(f"dtmf-relay Duration {value!r} is not a number of milliseconds")
    duration_ms = int(value)
    if not 1 <= duration_ms <= MAX_DIGIT_DURATION_MS:
        raise RemoteMediaError(
            f"dtmf-relay Duration {duration_ms} ms is outside 1-{MAX_DIGIT_DURATION_MS} ms"
        )
    return duration_ms


def parse_dtmf_relay(body: str) -> DtmfDigit:
    """The digit of a SIP INFO ``application/dtmf-relay`` body.

    The body is ``key=value`` lines (CRLF or LF), keys case-insensitive, blanks around
    keys and values ignored, unknown keys ignored. ``Signal`` is required and is either a
    symbol (``0``-``9``, ``*``, ``#``, ``A``-``D`` in any case) or an event number 0-15
    (``10`` is ``*``, ``11`` is ``#``, ``12``-``15`` are ``A``-``D``). ``Duration`` in
    milliseconds is optional and defaults to 100.

    Raises:
        RemoteMediaError: a line without ``=``, a missing or repeated Signal, or a value
            that is not a DTMF signal or a duration of 1 ms to 60 s. The message names
            the line or value.
    """
    signal: str | None = None
    duration: str | None = None
    for number, raw_line in enumerate(body.splitlines(), start=1):
        line = raw_line.strip()
        if not line:
            continue
        key, equals, value = line.partition("=")
        if not equals:
            raise RemoteMediaError(f"dtmf-relay body line {number} has no '=': {line[:40]!r}")
        key = key.strip().lower()
        if key == "signal":
            if signal is not None:
                raise RemoteMediaError(f"dtmf-relay body repeats Signal on line {number}")
            signal = value.strip()
        elif key == "duration":
            if duration is not None:
                raise RemoteMediaError(f"dtmf-relay body repeats Duration on line {number}")
            duration = value.strip()
    if signal is None:
        raise RemoteMediaError("dtmf-relay body has no Signal line")
    event = _parse_signal(signal)
    duration_ms = _DEFAULT_DURATION_MS if duration is None else _parse_duration(duration)
    return DtmfDigit(event, duration_ms)


def parse_dtmf_info(content_type: str, body: str) -> DtmfDigit:
    """The digit of a SIP INFO body of one of ``DTMF_CONTENT_TYPES``.

    ``application/dtmf-relay`` is read by ``parse_dtmf_relay``; an ``application/dtmf``
    body is the signal alone (a symbol or an event number), lasting the default 100 ms.

    Raises:
        RemoteMediaError: a body that is not a DTMF digit, or another content type.
    """
    kind = content_type.strip().lower()
    if kind == DTMF_RELAY:
        return parse_dtmf_relay(body)
    if kind == "application/dtmf":
        return DtmfDigit(_parse_signal(body.strip()))
    raise RemoteMediaError(f"INFO body of type {content_type!r} is not a DTMF digit")


def format_dtmf_relay(digit: DtmfDigit) -> str:
    """The ``application/dtmf-relay`` body for a digit, as JsSIP and SIP.js write it."""
    return f"Signal={digit.symbol}\r\nDuration={digit.duration_ms}\r\n"


def telephone_event_payload(event: int, *, end: bool, volume: int, duration: int) -> bytes:
    """The 4-byte payload of one RFC 4733 event packet (section 2.3).

    Args:
        event: the event code, 0-255.
        end: the E bit: this packet ends the event.
        volume: power level in -dBm0, 0-63.
        duration: the event's duration so far, in RTP timestamp units, 0-65535.

    Raises:
        LocalMediaError: a field out of its range.
    """
    if not 0 <= event <= 0xFF:
        raise LocalMediaError(f"telephone-event code must be 0-255, got {event}")
    if not 0 <= volume <= _VOLUME_MASK:
        raise LocalMediaError(f"telephone-event volume must be 0-63, got {volume}")
    if not 0 <= duration <= _MAX_EVENT_DURATION:
        raise LocalMediaError(f"telephone-event duration must be 0-65535, got {duration}")
    return _EVENT.pack(event, (_END_BIT if end else 0) | volume, duration)


def parse_telephone_event_untrusted(
    payload: bytes | bytearray,
) -> tuple[int, bool, int, int] | None:
    """``(event, end, volume, duration)`` of an untrusted telephone-event payload.

    Only the first event block is read: several in one packet (RFC 4733 2.5.1.5) are
    rare, and the first is the current one. The reserved R bit is ignored, as 2.3.3 asks.

    Returns:
        The fields, or None when the payload is shorter than 4 bytes. Never raises.
    """
    if len(payload) < _EVENT.size:
        return None
    event, flags, duration = _EVENT.unpack_from(payload)
    return event, bool(flags & _END_BIT), flags & _VOLUME_MASK, duration


@dataclass(frozen=True, slots=True)
class EventPacket:
    """One packet of a digit's packet train.

    Attributes:
        at_s: when to send it, in seconds after the first packet of the train.
        payload: the telephone-event payload (``telephone_event_payload``).
        marker: the RTP marker bit; set on the first packet of the event only
            (RFC 4733 2.5.1.3).
        timestamp_offset: what to add to the event's start timestamp; 0 for every packet
            of one event, which all carry the event's start (RFC 4733 2.5.1.2).
    """

    at_s: float
    payload: bytes
    marker: bool
    timestamp_offset: int


def event_packets(
    digit: DtmfDigit, clock_rate: int = 8000, *, packet_interval_ms: int = 50
) -> list[EventPacket]:
    """The packet train of one digit (RFC 4733 2.5.1).

    The event starts at its RTP timestamp; the first packet leaves one interval later and
    reports that interval as the duration so far, with the marker set. An update follows
    every ``packet_interval_ms`` with the grown duration; the end packet (E bit, the full
    duration) is then sent three times, one interval apart (2.5.1.4). A digit longer than
    the 16-bit duration field allows (8.19 s at 8 kHz, 1.36 s at 48 kHz) is sent with the
    longest duration that fits: detectors need 40 ms, not the whole key press.

    Args:
        digit: what to send.
        clock_rate: the telephone-event clock rate negotiated (8000 or 48000 usually).
        packet_interval_ms: the spacing of updates, 50 ms as RFC 4733 2.5.1.2 suggests.

    Raises:
        LocalMediaError: a clock rate or interval that is not positive.
    """
    if clock_rate <= 0:
        raise LocalMediaError(f"telephone-event clock rate must be positive, got {clock_rate}")
    if packet_interval_ms <= 0:
        raise LocalMediaError(f"DTMF packet interval must be positive, got {packet_interval_ms}")
    total = min(digit.duration_ms * clock_rate // 1000, _MAX_EVENT_DURATION)
    step = max(packet_interval_ms * clock_rate // 1000, 1)
    interval_s = packet_interval_ms / 1000
    train: list[EventPacket] = []
    sent = step
    while sent < total:
        payload = telephone_event_payload(
            digit.event, end=False, volume=digit.volume, duration=sent
        )
        train.append(EventPacket(len(train) * interval_s, payload, not train, 0))
        sent += step
    end_payload = telephone_event_payload(
        digit.event, end=True, volume=digit.volume, duration=total
    )
    first_end_s = len(train) * interval_s
    for copy in range(_END_PACKET_COPIES):
        train.append(EventPacket(first_end_s + copy * interval_s, end_payload, not train, 0))
    return train


@dataclass(slots=True)
class _PendingEvent:
    timestamp: int
    event: int
    volume: int
    duration: int  # of the current segment, timestamp units
    earlier_segments: int  # timestamp units of the segments before it (RFC 4733 2.5.2.3)


@final
class TelephoneEventReceiver:
    """Turns received RFC 4733 packets into digits once (retransmitted end packets and
    updates of one event, same RTP timestamp, count once).

    An event is identified by its RTP timestamp (RFC 4733 2.5.2.1). A digit is reported
    when the first of its end packets arrives. If all three end packets are lost, the
    digit is reported when the next event starts (``receive`` returns it then, and a new
    event that arrives with its end packet first is reported by its next copy), or when
    the caller gives up waiting and calls ``flush``. A long event split into segments of
    0xFFFF units (2.5.2.3) counts once, with the segments' durations summed.
    """

    __slots__ = ("_clock_rate", "_pending", "_reported")

    def __init__(self, clock_rate: int = 8000) -> None:
        """Receive telephone-events at the negotiated clock rate.

        Raises:
            LocalMediaError: a clock rate that is not positive.
        """
        if clock_rate <= 0:
            raise LocalMediaError(f"telephone-event clock rate must be positive, got {clock_rate}")
        self._clock_rate = clock_rate
        self._pending: _PendingEvent | None = None
        self._reported: deque[int] = deque(maxlen=_REMEMBERED_EVENTS)

    def receive(self, payload: bytes | bytearray, timestamp: int) -> DtmfDigit | None:
        """The digit completed by this packet, if any.

        Args:
            payload: the RTP payload of a telephone-event packet (untrusted).
            timestamp: the packet's RTP timestamp.

        Returns:
            A digit the first time it completes; None for updates, retransmissions,
            malformed payloads and non-DTMF events (16 and above).
        """
        fields = parse_telephone_event_untrusted(payload)
        if fields is None:
            return None
        event, end, volume, duration = fields
        if event >= len(DTMF_EVENTS) or timestamp in self._reported:
            return None
        pending = self._pending
        if pending is not None and pending.timestamp == timestamp:
            pending.duration = max(pending.duration, duration)
            pending.volume = volume
            if end:
                return self._complete(pending)
            return None
        earlier = 0
        unfinished: DtmfDigit | None = None
        if pending is not None:
            if (
                pending.event == event
                and pending.duration == _MAX_EVENT_DURATION
                and timestamp == (pending.timestamp + _MAX_EVENT_DURATION) & _TS_MASK
            ):
                # The next segment of a long event: the same key, still held.
                earlier = pending.earlier_segments + _MAX_EVENT_DURATION
                self._reported.append(pending.timestamp)
            else:
                unfinished = self._complete(pending)
        self._pending = _PendingEvent(timestamp, event, volume, duration, earlier)
        if unfinished is not None:
            return unfinished
        if end:
            return self._complete(self._pending)
        return None

    def flush(self) -> DtmfDigit | None:
        """The event in progress as a digit, for when its end packets never came."""
        if self._pending is None:
            return None
        return self._complete(self._pending)

    def _complete(self, pending: _PendingEvent) -> DtmfDigit:
        self._pending = None
        self._reported.append(pending.timestamp)
        units = pending.earlier_segments + pending.duration
        duration_ms = min(max(round(units * 1000 / self._clock_rate), 1), MAX_DIGIT_DURATION_MS)
        return DtmfDigit(pending.event, duration_ms, pending.volume)


_SEQ_MASK: Final = 0xFFFF
_SEQ_HALF: Final = 0x8000
_HEADER = struct.Struct("!BBHII")
#: Digits waiting behind the one being sent; a client that sends more is refused, which
#: bounds what one INFO flood can make us send.
MAX_QUEUED_DIGITS: Final = 32
_PACKET_INTERVAL_MS: Final = 50


@final
class TelephoneEventSender:
    """Splices RFC 4733 digits into one relayed RTP stream (module docstring).

    Theory of operation: every relayed audio packet passes ``relay``, which remembers the
    stream's SSRC, highest sequence number and latest timestamp (with the time it was
    seen). A queued digit is sent as ``event_packets`` describes, under that SSRC, with
    the sequence numbers that follow and the timestamp the audio would have reached by
    then (elapsed time in clock units; RFC 4733 2.5.1.2 wants the event on the audio's
    timeline). While digits are queued or being sent, ``relay`` holds audio back (returns
    None), as an RFC 4733 sender replaces the audio of the digit; the first audio packet
    after them is renumbered to follow the last event packet, and every later one of that
    stream keeps that offset. Before any audio, digits go out under the random SSRC,
    sequence number and timestamp given at construction (RFC 3550 5.1).
    """

    __slots__ = (
        "_clock_rate",
        "_free_at",
        "_offset",
        "_payload_type",
        "_queue",
        "_resync",
        "_seq",
        "_ssrc",
        "_train",
        "_ts",
        "_ts_at",
        "digits_sent",
    )

    def __init__(
        self, payload_type: int, clock_rate: int, *, ssrc: int, sequence: int, timestamp: int
    ) -> None:
        """Send digits with ``payload_type`` at ``clock_rate`` (the telephone-event codec
        negotiated toward the receiver, in the numbering of packets before any payload
        type mapping); ``ssrc``, ``sequence`` and ``timestamp`` are used until audio is seen.

        Raises:
            LocalMediaError: a payload type or clock rate out of range.
        """
        self._payload_type = 0
        self._clock_rate = 8000
        self.configure(payload_type, clock_rate)
        self._ssrc = ssrc & 0xFFFFFFFF
        self._seq = (sequence - 1) & _SEQ_MASK
        self._ts = timestamp & _TS_MASK
        self._ts_at: float | None = None
        self._offset = 0
        self._resync = False
        self._queue: deque[DtmfDigit] = deque()
        self._train: deque[tuple[float, bytes]] = deque()
        self._free_at = 0.0
        #: digits whose packet train was started
        self.digits_sent = 0

    def configure(self, payload_type: int, clock_rate: int) -> None:
        """Use another payload type or clock rate from the next digit on (a re-offer).

        Raises:
            LocalMediaError: a payload type outside 0-127 or a clock rate that is not positive.
        """
        if not 0 <= payload_type <= 0x7F:
            raise LocalMediaError(f"telephone-event payload type must be 0-127, got {payload_type}")
        if clock_rate <= 0:
            raise LocalMediaError(f"telephone-event clock rate must be positive, got {clock_rate}")
        self._payload_type = payload_type
        self._clock_rate = clock_rate

    @property
    def busy(self) -> bool:
        """True while digits are queued or their packets are still to be sent."""
        return bool(self._queue or self._train)

    def relay(self, packet: bytes, now: float) -> bytes | None:
        """The relayed packet to send (renumbered after digits), or None while digits are
        being sent. ``packet`` is an RTP packet the caller validated (12 bytes at least)."""
        if self._queue or self._train:
            return None
        if len(packet) < RTP_HEADER_LENGTH:
            return packet
        first, second, sequence, timestamp, ssrc = _HEADER.unpack_from(packet)
        if ssrc != self._ssrc:
            # Another source: the receiver starts a new stream, nothing to continue.
            self._ssrc = ssrc
            self._offset = 0
            self._resync = False
            self._seq = sequence
            self._ts, self._ts_at = timestamp, now
            return packet
        if self._resync:
            self._resync = False
            self._offset = (self._seq + 1 - sequence) & _SEQ_MASK
        out = (sequence + self._offset) & _SEQ_MASK
        if (out - self._seq) & _SEQ_MASK < _SEQ_HALF:  # newer (serial-number order)
            self._seq = out
            self._ts, self._ts_at = timestamp, now
        if not self._offset:
            return packet
        return _HEADER.pack(first, second, out, timestamp, ssrc) + packet[RTP_HEADER_LENGTH:]

    def queue(self, digit: DtmfDigit, now: float) -> bool:
        """Send ``digit`` after those already queued; False when the queue is full."""
        if len(self._queue) >= MAX_QUEUED_DIGITS:
            return False
        self._queue.append(digit)
        self._free_at = max(self._free_at, now)
        return True

    def next_deadline(self) -> float | None:
        """When ``due`` next has packets to give, or None when no digit is pending."""
        if self._train:
            return self._train[0][0]
        if self._queue:
            return self._free_at
        return None

    def due(self, now: float) -> list[bytes]:
        """The packets to send at ``now``, in order (event packets carry our numbering)."""
        out: list[bytes] = []
        while True:
            if not self._train:
                if not self._queue or self._free_at > now:
                    break
                self._start(self._queue.popleft(), self._free_at)
            at, packet = self._train[0]
            if at > now:
                break
            self._train.popleft()
            out.append(packet)
        return out

    def _start(self, digit: DtmfDigit, at: float) -> None:
        """Number the packet train of ``digit`` starting at ``at``."""
        clock_rate = self._clock_rate
        start = self._ts
        if self._ts_at is not None:
            start = (self._ts + max(round((at - self._ts_at) * clock_rate), 0)) & _TS_MASK
        train = event_packets(digit, clock_rate, packet_interval_ms=_PACKET_INTERVAL_MS)
        for packet in train:
            self._seq = (self._seq + 1) & _SEQ_MASK
            rtp = build_rtp(
                self._payload_type,
                self._seq,
                (start + packet.timestamp_offset) & _TS_MASK,
                self._ssrc,
                packet.payload,
                marker=packet.marker,
            )
            self._train.append((at + packet.at_s, rtp))
        self._ts, self._ts_at = start, at
        self._free_at = at + train[-1].at_s + _PACKET_INTERVAL_MS / 1000
        self._resync = True
        self.digits_sent += 1
