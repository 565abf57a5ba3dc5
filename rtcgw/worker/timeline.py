"""Per-call timelines of one worker, for ``rtcgw ctl calls`` and ``rtcgw ctl call CALL-ID``.

The worker records what happens to each call (SIP messages on both legs, the answer, the
conversion path, consent lost, the end) with ``record``. What the media relay knows (ICE
checks and nomination, the DTLS handshake, packets each way, SRTP authentication
failures) is not copied packet by packet: the media seam registers a probe per call
(``watch``) that reads the session's own counters when someone asks, and the figures are
frozen when the call's media is released.

``detail`` turns both into one ordered timeline and a plain verdict saying, when media is
not flowing both ways, the first thing that went wrong, e.g. "browser never completed
DTLS". Memory is bounded: at most ``max_events`` recorded events per call (the rest are
counted), and ended calls are kept ``keep_ended_s`` seconds, at most ``max_ended`` of them.

Sans-IO: no socket, no log, no clock of its own (the worker passes its own). Every value
returned is JSON-ready.
"""

from __future__ import annotations

import bisect
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import final

__all__ = [
    "CallTimelines",
    "FieldValue",
    "LegFigures",
    "MediaProbe",
    "peek_sip",
]

FieldValue = str | int | float | bool | None

#: Recorded events kept per call; later ones are only counted.
MAX_EVENTS = 200
#: How long an ended call's timeline stays readable.
KEEP_ENDED_S = 300.0
#: How many ended calls are kept at most (the oldest go first).
MAX_ENDED = 1000
#: Active timelines kept at most: a safety net against calls whose end was never seen.
MAX_ACTIVE = 100_000


@final
@dataclass(frozen=True, slots=True)
class LegFigures:
    """What one call leg's media looks like right now, as the media seam reads it.

    ``packets_in`` and ``first_in_at`` count what arrived from this leg's peer;
    ``packets_out`` and ``first_out_at`` what was relayed toward it. ICE and DTLS fields
    stay None on a leg that does not speak WebRTC.
    """

    leg: str
    webrtc: bool
    packets_in: int = 0
    bytes_in: int = 0
    packets_out: int = 0
    rtcp_in: int = 0
    first_in_at: float | None = None
    first_out_at: float | None = None
    srtp_auth_failures: int = 0
    dropped: tuple[tuple[str, int], ...] = ()
    ice_checks: int = 0
    ice_first_check_at: float | None = None
    ice_nominated_at: float | None = None
    dtls_state: str | None = None
    dtls_role: str | None = None
    dtls_started_at: float | None = None
    dtls_completed_at: float | None = None
    dtls_failure: str | None = None
    dtls_fingerprint_mismatch: bool = False
    dtls_cipher: str | None = None
    srtp_profile: str | None = None


#: Reads a call's media figures, one per leg (a, then b).
MediaProbe = Callable[[], tuple[LegFigures, ...]]


@dataclass(slots=True)
class _Event:
    at: float
    name: str
    fields: dict[str, FieldValue]


@dataclass(slots=True)
class _Timeline:
    call_id: str
    started_at: float
    events: list[_Event] = field(default_factory=list)
    left_out: int = 0
    probe: MediaProbe | None = None
    figures: tuple[LegFigures, ...] = ()
    ended_at: float | None = None
    #: each leg's signaling transport (wss, udp, ...), from its first SIP message
    transports: dict[str, str] = field(default_factory=dict)


@final
class CallTimelines:
    """The timelines of one worker's calls, by the caller's (A-leg) Call-ID; ``clock``
    gives the time used when a query passes none (the worker's trio clock)."""

    def __init__(
        self,
        *,
        clock: Callable[[], float],
        max_events: int = MAX_EVENTS,
        keep_ended_s: float = KEEP_ENDED_S,
        max_ended: int = MAX_ENDED,
    ) -> None:
        self._clock = clock
        self._max_events = max_events
        self._keep_ended_s = keep_ended_s
        self._max_ended = max_ended
        self._active: dict[str, _Timeline] = {}
        self._ended: OrderedDict[str, _Timeline] = OrderedDict()
        #: a Call-ID of either leg -> (the call's A-leg Call-ID, leg name)
        self._legs: dict[str, tuple[str, str]] = {}

    # -- feeding ------------------------------------------------------------------------------

    def open(self, call_id: str, now: float, *, b_call_id: str | None = None) -> None:
        """Start (or, for a challenged caller's retry, resume) ``call_id``'s timeline;
        ``b_call_id`` is the callee leg's own Call-ID, so its messages find the call."""
        self._timeline(call_id, now, revive=True)
        self._legs[call_id] = (call_id, "a")
        if b_call_id is not None and b_call_id != call_id:
            self._legs[b_call_id] = (call_id, "b")

    def record(self, call_id: str, event: str, now: float, **fields: FieldValue) -> None:
        """Add ``event`` at ``now`` with ``fields`` to ``call_id``'s timeline (opened if new;
        an ended call's stays ended: its last BYE's answer still lands there)."""
        timeline = self._timeline(call_id, now)
        if len(timeline.events) >= self._max_events:
            timeline.left_out += 1
            return
        # Feeders may report slightly late (the media tick): keep the list in time order.
        bisect.insort_right(timeline.events, _Event(now, event, fields), key=lambda e: e.at)

    def leg_of(self, call_id: str) -> tuple[str, str] | None:
        """``(A-leg Call-ID, leg name)`` for a Call-ID of either leg of a known call."""
        return self._legs.get(call_id)

    def sip(
        self,
        data: bytes,
        now: float,
        *,
        direction: str,
        transport: str | None = None,
    ) -> None:
        """Record a SIP message (raw bytes) sent or received on a leg of a known call;
        messages of other dialogs (REGISTER, OPTIONS) are ignored."""
        if not self._legs:
            return
        peeked = peek_sip(data)
        if peeked is None:
            return
        call_id, message, cseq = peeked
        found = self._legs.get(call_id)
        if found is None:
            return
        owner, leg = found
        timeline = self._active.get(owner) or self._ended.get(owner)
        if timeline is not None and transport is not None:
            timeline.transports.setdefault(leg, transport.lower())
        self.record(owner, f"sip_{direction}", now, leg=leg, message=message, cseq=cseq)

    def watch(self, call_id: str, probe: MediaProbe) -> None:
        """Read ``call_id``'s media figures through ``probe`` from now on."""
        self._timeline(call_id, self._clock()).probe = probe

    def unwatch(self, call_id: str, probe: MediaProbe) -> None:
        """Freeze the figures ``probe`` gives and stop reading them (the media is released)."""
        timeline = self._find(call_id)
        if timeline is None or timeline.probe is not probe:
            return
        timeline.figures = probe()
        timeline.probe = None

    def ended(self, call_id: str, now: float) -> None:
        """The call is over: keep its timeline for ``keep_ended_s`` (bounded count)."""
        timeline = self._active.pop(call_id, None)
        if timeline is None:
            return
        if timeline.probe is not None:
            timeline.figures = timeline.probe()
        timeline.ended_at = now
        self._ended[call_id] = timeline
        self._prune(now)

    # -- queries ---------------------------------------------------------------------------

    def summary(self, now: float | None = None) -> list[dict[str, object]]:
        """One row per active call, oldest first: call_id, age_s, path, ice, dtls."""
        now = self._clock() if now is None else now
        rows: list[dict[str, object]] = []
        for timeline in sorted(self._active.values(), key=lambda t: t.started_at):
            figures = self._figures(timeline)
            rows.append(
                {
                    "call_id": timeline.call_id,
                    "age_s": round(now - timeline.started_at, 1),
                    "path": _path(timeline),
                    "ice": _ice_state(timeline, figures),
                    "dtls": _dtls_state(figures),
                }
            )
        return rows

    def detail(self, call_id: str, now: float | None = None) -> dict[str, object] | None:
        """One call's timeline (either leg's Call-ID), or None if it is not known (any more)."""
        now = self._clock() if now is None else now
        found = self._legs.get(call_id)
        timeline = self._find(found[0] if found is not None else call_id)
        if timeline is None:
            return None
        figures = self._figures(timeline)
        start = timeline.started_at
        events = [(e.at, e.name, e.fields) for e in timeline.events]
        events += _media_events(figures)
        events.sort(key=lambda e: e[0])
        end = timeline.ended_at
        return {
            "call_id": timeline.call_id,
            "active": end is None,
            "age_s": round((end if end is not None else now) - start, 3),
            "path": _path(timeline),
            "ice": _ice_state(timeline, figures),
            "dtls": _dtls_state(figures),
            "events": [
                {"t": _rel(at, start), "event": name, **values} for at, name, values in events
            ],
            "events_left_out": timeline.left_out,
            "media": _directions(figures, start),
            # The same figures flat, as one line each for a person to read.
            "packets": _flat(figures, "packets") if figures else None,
            "srtp_auth_failures": _flat(figures, "srtp_auth_failures") if figures else None,
            # A leg's streams count drops either way (arriving, or refused on the way out).
            "dropped": {leg.leg: dict(leg.dropped) for leg in figures},
            "verdict": _verdict(timeline, figures),
        }

    def __contains__(self, call_id: object) -> bool:
        return call_id in self._active or call_id in self._ended

    # -- internals ---------------------------------------------------------------------------

    def _find(self, call_id: str) -> _Timeline | None:
        return self._active.get(call_id) or self._ended.get(call_id)

    def _timeline(self, call_id: str, now: float, *, revive: bool = False) -> _Timeline:
        timeline = self._active.get(call_id)
        if timeline is not None:
            return timeline
        timeline = self._ended.get(call_id)
        if timeline is not None and not revive:
            return timeline
        if timeline is not None:
            # A challenged caller retries with the same Call-ID: one timeline for both.
            del self._ended[call_id]
            timeline.ended_at = None
        else:
            if len(self._active) >= MAX_ACTIVE:
                oldest = min(self._active.values(), key=lambda t: t.started_at)
                self.ended(oldest.call_id, now)
            timeline = _Timeline(call_id, now)
        self._active[call_id] = timeline
        self._prune(now)
        return timeline

    def _prune(self, now: float) -> None:
        ended = self._ended
        while ended:
            call_id, oldest = next(iter(ended.items()))
            expired = oldest.ended_at is not None and now - oldest.ended_at > self._keep_ended_s
            if not expired and len(ended) <= self._max_ended:
                break
            del ended[call_id]
            self._forget_legs(call_id)

    def _forget_legs(self, call_id: str) -> None:
        for key in [k for k, (owner, _) in self._legs.items() if owner == call_id]:
            del self._legs[key]

    @staticmethod
    def _figures(timeline: _Timeline) -> tuple[LegFigures, ...]:
        return timeline.probe() if timeline.probe is not None else timeline.figures


# -- SIP -----------------------------------------------------------------------------------------


def peek_sip(data: bytes) -> tuple[str, str, str] | None:
    """``(Call-ID, "INVITE" or "200 OK", CSeq)`` of a SIP message, read from its head
    only; None when it has no Call-ID."""
    end = data.find(b"\r\n\r\n")
    lines = data[: end if end >= 0 else 8192].split(b"\r\n")
    first = lines[0].split(b" ", 2)
    if first[0] == b"SIP/2.0":
        message = b" ".join(first[1:])
    else:
        message = first[0]
    call_id = cseq = None
    for line in lines[1:]:
        name, sep, value = line.partition(b":")
        if not sep:
            continue
        name = name.strip().lower()
        if name in (b"call-id", b"i"):
            call_id = value.strip().decode("utf-8", "replace")
        elif name == b"cseq":
            cseq = b" ".join(value.split()).decode("utf-8", "replace")
    if not call_id:
        return None
    return call_id, message.decode("utf-8", "replace"), cseq or ""


# -- what the figures say ------------------------------------------------------------------------


def _rel(at: float | None, start: float) -> float | None:
    return None if at is None else round(at - start, 3)


def _side(figures: LegFigures) -> str:
    return "browser" if figures.webrtc else "sip"


def _media_events(
    figures: tuple[LegFigures, ...],
) -> list[tuple[float, str, dict[str, FieldValue]]]:
    """The media milestones the figures hold, as events."""
    events: list[tuple[float, str, dict[str, FieldValue]]] = []
    for leg in figures:
        side = {"leg": leg.leg, "side": _side(leg)}
        if leg.ice_first_check_at is not None:
            events.append((leg.ice_first_check_at, "ice_first_check", dict(side)))
        if leg.ice_nominated_at is not None:
            events.append((leg.ice_nominated_at, "ice_nominated", dict(side)))
        if leg.dtls_started_at is not None:
            events.append((leg.dtls_started_at, "dtls_started", {**side, "role": leg.dtls_role}))
        if leg.dtls_completed_at is not None and leg.dtls_state == "connected":
            duration = None
            if leg.dtls_started_at is not None:
                duration = round((leg.dtls_completed_at - leg.dtls_started_at) * 1000, 1)
            events.append(
                (
                    leg.dtls_completed_at,
                    "dtls_connected",
                    {
                        **side,
                        "role": leg.dtls_role,
                        "cipher": leg.dtls_cipher,
                        "srtp_profile": leg.srtp_profile,
                        "duration_ms": duration,
                    },
                )
            )
        if leg.first_in_at is not None:
            events.append((leg.first_in_at, "first_packet_from", dict(side)))
        if leg.first_out_at is not None:
            events.append((leg.first_out_at, "first_packet_toward", dict(side)))
    return events


def _directions(figures: tuple[LegFigures, ...], start: float) -> list[dict[str, object]]:
    """Per direction: what arrived from one leg and what was relayed toward the other."""
    rows: list[dict[str, object]] = []
    for source in figures:
        target = next((leg for leg in figures if leg.leg != source.leg), None)
        rows.append(
            {
                "from": f"{_side(source)} ({source.leg})",
                "to": f"{_side(target)} ({target.leg})" if target is not None else None,
                "packets_in": source.packets_in,
                "bytes_in": source.bytes_in,
                "rtcp_in": source.rtcp_in,
                "packets_relayed": target.packets_out if target is not None else 0,
                "srtp_auth_failures": source.srtp_auth_failures,
                "first_in_t": _rel(source.first_in_at, start),
                "first_relayed_t": _rel(target.first_out_at, start) if target else None,
            }
        )
    return rows


def _flat(figures: tuple[LegFigures, ...], what: str) -> dict[str, int]:
    """``packets``: received from each leg and relayed toward each; ``srtp_auth_failures``:
    from each leg."""
    flat: dict[str, int] = {}
    for leg in figures:
        name = f"{_side(leg)} ({leg.leg})"
        if what == "packets":
            flat[f"from {name}"] = leg.packets_in
            flat[f"toward {name}"] = leg.packets_out
        else:
            flat[f"from {name}"] = leg.srtp_auth_failures
    return flat


def _path(timeline: _Timeline) -> str | None:
    """The conversion path, e.g. "wss dtls-srtp pcmu <-> udp rtp pcmu", from the latest
    media answer; "wss <-> udp (signaling only)" for an answered call whose media is not
    anchored; None before the answer."""
    for event in reversed(timeline.events):
        if event.name == "media_answered":
            sides = []
            for leg in ("a", "b"):
                words = [timeline.transports.get(leg), event.fields.get(leg)]
                sides.append(" ".join(str(w) for w in words if w))
            return " <-> ".join(sides)
    if timeline.probe is None and not timeline.figures and _answered_at(timeline) is not None:
        legs = [timeline.transports.get(leg, "?") for leg in ("a", "b")]
        return f"{legs[0]} <-> {legs[1]} (signaling only)"
    return None


def _ice_state(timeline: _Timeline, figures: tuple[LegFigures, ...]) -> str | None:
    """The browser side's ICE state (the worst of two browser legs); None without one."""
    states = []
    for leg in figures:
        if not leg.webrtc:
            continue
        if _consent_lost_at(timeline, leg.leg) is not None:
            states.append("consent-lost")
        elif leg.ice_nominated_at is not None:
            states.append("nominated")
        elif leg.ice_first_check_at is not None:
            states.append("checking")
        else:
            states.append("waiting")
    order = ("waiting", "consent-lost", "checking", "nominated")
    return min(states, key=order.index) if states else None


def _dtls_state(figures: tuple[LegFigures, ...]) -> str | None:
    states = [leg.dtls_state or "new" for leg in figures if leg.webrtc]
    order = ("failed", "new", "handshaking", "connected", "closed")
    return min(states, key=lambda s: order.index(s) if s in order else 1) if states else None


def _consent_lost_at(timeline: _Timeline, leg: str) -> float | None:
    for event in timeline.events:
        if event.name == "ice_consent_lost" and event.fields.get("leg") == leg:
            return event.at
    return None


def _answered_at(timeline: _Timeline) -> float | None:
    for event in timeline.events:
        if event.name in ("answered", "media_answered"):
            return event.at
    return None


def _verdict(timeline: _Timeline, figures: tuple[LegFigures, ...]) -> str | None:
    """None when media flows both ways, else the first thing that went wrong, in words."""
    if _answered_at(timeline) is None:
        if timeline.ended_at is not None:
            return "call ended before it was answered"
        return "call not answered yet"
    if not figures:
        return "media does not pass through the gateway (not anchored)"
    for leg in figures:
        if leg.webrtc:
            verdict = _browser_verdict(timeline, leg)
            if verdict is not None:
                return verdict
        elif leg.packets_in == 0:
            if leg.srtp_auth_failures:
                return "every SRTP packet from the SIP side failed authentication"
            return "no RTP from the SIP side since answer"
    for source in figures:
        target = next((leg for leg in figures if leg.leg != source.leg), None)
        if target is not None and source.packets_in and not target.packets_out:
            return f"packets from the {_side(source)} are not relayed toward the {_side(target)}"
    return None


def _browser_verdict(timeline: _Timeline, leg: LegFigures) -> str | None:
    who = "browser" if leg.leg == "a" else "called browser"
    if leg.ice_first_check_at is None:
        return f"{who} never sent an ICE check"
    if leg.dtls_state == "failed":
        if leg.dtls_fingerprint_mismatch:
            return "DTLS fingerprint mismatch"
        return f"DTLS failed: {leg.dtls_failure or 'no reason given'}"
    if leg.dtls_state != "connected":
        return f"{who} never completed DTLS"
    lost = _consent_lost_at(timeline, leg.leg)
    if lost is not None:
        return f"{who} stopped answering consent checks at {lost - timeline.started_at:.1f} s"
    if leg.packets_in == 0:
        if leg.srtp_auth_failures:
            return f"every SRTP packet from the {who} failed authentication"
        return f"no SRTP from the {who} since DTLS completed"
    return None
