"""What the media relay tells the B2BUA: the media events of the worker's one channel.

The relay's handlers and timers cannot await, so they hand events to a callable (the
send side of an unbounded memory channel in the worker) and the worker's runtime feeds
them to the B2BUA. Each event names the call by its A-leg Call-ID.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import final

from rtcgw.media.dtmf import DtmfDigit

__all__ = ["DtmfReceived", "MediaEvent", "MediaEventSink", "MediaTimedOut"]


@final
@dataclass(frozen=True, slots=True)
class MediaTimedOut:
    """No packet either way for the media timeout: the call is to be ended."""

    call_id: str


@final
@dataclass(frozen=True, slots=True)
class DtmfReceived:
    """The SIP side sent an RFC 4733 digit and the call's rules want it sent as INFO."""

    call_id: str
    digit: DtmfDigit


MediaEvent = MediaTimedOut | DtmfReceived
MediaEventSink = Callable[[MediaEvent], None]
