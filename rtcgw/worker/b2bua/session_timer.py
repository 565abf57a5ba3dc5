"""Session timers (RFC 4028), kept per leg.

Each leg negotiates its own session interval and refresher with its own peer; the two legs
of a call never share one. That is what lets the gateway answer a JsSIP client's 90 s
refreshes itself (UPDATE without SDP never reaches the PBX), run its own refresher toward a
PBX that asks for one, and never ask SIP.js (which has no session timers) for anything:

- toward a WebSocket client we never send Session-Expires or ``Require: timer``, so no
  client ever has to answer 420 and none ever gets one from us;
- toward the SIP side we offer ``Supported: timer`` with our interval and Min-SE, and obey
  the 2xx: ``refresher=uac`` means we refresh (RFC 4028 section 7.2), ``refresher=uas``
  means the peer does, no Session-Expires means no timer;
- a peer's INVITE with Session-Expires is answered with the interval it asked for and its
  refresher, or ``uac`` when it left the choice to us and supports ``timer`` (section 9).

Deadlines: the refresher refreshes at half the interval (section 10: "the refresher
SHOULD send a refresh at half the interval"); the other side ends the session when no
refresh came "the minimum of 32 seconds and one third of the session interval" before it
expires (section 10). ``SessionTimer`` is plain data; the leg owns it. No clock: every
function takes ``now``.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from rtcgw.sip.errors import SipParseError
from rtcgw.sip.headers import NameAddr
from rtcgw.sip.message import Request, Response

__all__ = [
    "Refresher",
    "SessionTimer",
    "negotiate_as_uac",
    "negotiate_as_uas",
    "parse_session_expires",
]


class Refresher(enum.Enum):
    """Who refreshes a leg's session."""

    US = "us"  #: we send the refresh requests
    PEER = "peer"  #: the peer does; we only watch for expiry


@dataclass(frozen=True, slots=True)
class SessionTimer:
    """A leg's negotiated session timer.

    Attributes:
        interval_s: the session interval (delta-seconds of Session-Expires).
        refresher: who refreshes.
        refresher_param: the ``refresher`` value on this leg's wire (``uac``/``uas``) as
            negotiated for the dialog-creating INVITE; it stays fixed for our responses.
        refreshed_at: when the session was last (re)started.
    """

    interval_s: int
    refresher: Refresher
    refresher_param: str
    refreshed_at: float

    @property
    def deadline(self) -> float:
        """When to act next: send a refresh (US) or end the session (PEER)."""
        if self.refresher is Refresher.US:
            return self.refreshed_at + self.interval_s / 2
        return self.refreshed_at + self.interval_s - min(32.0, self.interval_s / 3)

    def refreshed(self, now: float, interval_s: int | None = None) -> SessionTimer:
        """The timer restarted at ``now`` (a refresh succeeded), with a new interval."""
        return SessionTimer(
            interval_s if interval_s is not None else self.interval_s,
            self.refresher,
            self.refresher_param,
            now,
        )

    def header_value(self) -> str:
        """The Session-Expires value for our messages on this leg."""
        return f"{self.interval_s};refresher={self.refresher_param}"


def parse_session_expires(message: Request | Response) -> tuple[int, str | None] | None:
    """Session-Expires as (delta-seconds, refresher or None); None if absent or garbled.

    A garbled value is treated as absent: a peer's mistake in an optional extension must
    not cost the call.
    """
    raw = message.get("Session-Expires")
    if raw is None:
        return None
    try:
        # "1800;refresher=uac" has the shape of an addr-spec's parameters: reuse that parser.
        parsed = NameAddr.parse(f"<sip:x@x>;{raw.split(';', 1)[1]}") if ";" in raw else None
    except SipParseError:
        return None
    number = raw.split(";", 1)[0].strip()
    if not number.isascii() or not number.isdigit() or len(number) > 9:
        return None
    refresher = parsed.param("refresher") if parsed is not None else None
    return int(number), (refresher.lower() if refresher else None)


def negotiate_as_uas(request: Request, now: float) -> SessionTimer | None:
    """The timer for a leg whose INVITE we received (RFC 4028 section 9), or None.

    We take the peer's interval as it is (no 422: a client must never be refused for
    timers) and its refresher; when it names none and supports ``timer`` the peer (uac)
    refreshes, as section 9 lets the UAS choose.
    """
    parsed = parse_session_expires(request)
    if parsed is None:
        return None
    interval_s, refresher = parsed
    if interval_s <= 0:
        return None
    if refresher is None:
        refresher = "uac" if "timer" in request.option_tags("Supported") else "uas"
    who = Refresher.PEER if refresher == "uac" else Refresher.US
    return SessionTimer(interval_s, who, refresher, now)


def negotiate_as_uac(response: Response, now: float) -> SessionTimer | None:
    """The timer a 2xx to our INVITE sets up (RFC 4028 section 7.2), or None."""
    parsed = parse_session_expires(response)
    if parsed is None:
        return None
    interval_s, refresher = parsed
    if interval_s <= 0:
        return None
    refresher = refresher or "uac"
    who = Refresher.US if refresher == "uac" else Refresher.PEER
    return SessionTimer(interval_s, who, refresher, now)
