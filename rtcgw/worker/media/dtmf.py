"""DTMF on a SIP-side stream: digits from INFO sent as RFC 4733, RFC 4733 digits reported.

A ``StreamDtmf`` is the ``RtpTap`` of one ``PlainStream`` whose peer negotiated
telephone-event. Toward the peer, relayed audio passes its ``TelephoneEventSender``, and
digits queued by ``send`` go out as packet trains on the relay's timer heap: one timer
at a time, armed for the next packet due, so a digit costs no task and no sleep. From
the peer, telephone-event packets feed a ``TelephoneEventReceiver`` when the call wants
digits reported (``on_digit``); the packets are relayed to the other leg either way.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Mapping
from typing import final

from rtcgw.media.dtmf import DtmfDigit, TelephoneEventReceiver, TelephoneEventSender
from rtcgw.media.rtp import rtp_payload_offset_untrusted
from rtcgw.worker.media.relay import MediaRelay
from rtcgw.worker.media.streams import PlainStream

__all__ = ["StreamDtmf"]


@final
class StreamDtmf:
    """DTMF both ways on one SIP-side stream (module docstring)."""

    def __init__(
        self,
        relay: MediaRelay,
        stream: PlainStream,
        payload_type: int,
        clock_rate: int,
        *,
        on_digit: Callable[[DtmfDigit], None] | None = None,
        log_context: Mapping[str, object] | None = None,
    ) -> None:
        """Convert on ``stream`` with the telephone-event ``payload_type`` (ours, before
        the stream maps it to the peer's) at ``clock_rate``; ``log_context`` (the call
        and leg) names the call if one of its timers fails.

        Raises:
            LocalMediaError: a payload type or clock rate out of range.
        """
        self._relay = relay
        self._stream = stream
        self._log_context = log_context
        self.sender = TelephoneEventSender(
            payload_type,
            clock_rate,
            ssrc=secrets.randbits(32),
            sequence=secrets.randbits(16),
            timestamp=secrets.randbits(32),
        )
        self._payload_type = payload_type
        self._clock_rate = clock_rate
        self._receiver = TelephoneEventReceiver(clock_rate)
        self.on_digit = on_digit
        self._armed_at: float | None = None
        #: set when the call's media is released: pending packets are not sent
        self.closed = False

    @property
    def payload_type(self) -> int:
        """The telephone-event payload type in our numbering."""
        return self._payload_type

    def configure(self, payload_type: int, clock_rate: int) -> None:
        """A renegotiation changed the telephone-event codec."""
        self.sender.configure(payload_type, clock_rate)
        if clock_rate != self._clock_rate:
            self._receiver = TelephoneEventReceiver(clock_rate)
        self._payload_type = payload_type
        self._clock_rate = clock_rate

    # -- RtpTap ----------------------------------------------------------------------------

    def outgoing(self, packet: bytes, now: float) -> bytes | None:
        """Relayed audio toward the peer: held back while a digit is sent, else renumbered."""
        return self.sender.relay(packet, now)

    def incoming(self, packet: bytes, now: float) -> None:
        """A packet from the peer: a completed telephone-event digit is reported once."""
        on_digit = self.on_digit
        if on_digit is None:
            return
        theirs = self._stream.payload_type_map.get(self._payload_type, self._payload_type)
        if packet[1] & 0x7F != theirs:
            return
        offset = rtp_payload_offset_untrusted(packet)
        if offset is None:
            return
        timestamp = int.from_bytes(packet[4:8], "big")
        digit = self._receiver.receive(packet[offset:], timestamp)
        if digit is not None:
            on_digit(digit)

    # -- sending digits ----------------------------------------------------------------------

    def send(self, digit: DtmfDigit, now: float) -> bool:
        """Queue ``digit`` for sending as RFC 4733; False when too many are waiting."""
        if self.closed or not self.sender.queue(digit, now):
            return False
        self._arm()
        return True

    def _arm(self) -> None:
        deadline = self.sender.next_deadline()
        if deadline is None:
            return
        if self._armed_at is not None and self._armed_at <= deadline:
            return
        self._armed_at = deadline
        self._relay.call_at(deadline, self._fire, log_context=self._log_context)

    def _fire(self, now: float) -> None:
        self._armed_at = None
        if self.closed:
            return
        for packet in self.sender.due(now):
            self._stream.send_own_rtp(packet, now)
        self._arm()
