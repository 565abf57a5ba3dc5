"""The SDP seam of a worker that relays media: one ``MediaSession`` per anchored call.

The B2BUA calls the seam with every offer and answer it sends (``rtcgw.worker.b2bua.seam``).
A call whose rules anchor no media keeps its SDP untouched; any other gets a session on the
first offer, written leg by leg from the session's state. An INVITE without an offer toward
a WebRTC leg gets an offer of ours (``local_offer``), and the answers to offers of ours are
learned with ``answer_in``.

Two lifetimes need care:

- A WebRTC caller challenged by the SIP side (401/407) retries with credentials, the same
  Call-ID and the same SDP. Its session is kept for 64*T1 after the challenge and reused by
  the retry, so ports, ICE credentials and DTLS state stay what the browser may already
  have seen.
- Each session ticks once a second on the relay: consent freshness (RFC 7675), DTLS results
  logged and counted, media figures added to the metrics, and the media timeout: no packet
  either way for ``media_timeout_s`` ends the call (both legs get BYE).

DTMF: after each answer, every audio stream of a SIP-side leg that negotiated
telephone-event gets a ``StreamDtmf`` (``dtmf.py``). ``dtmf_out`` queues a client's INFO
digit there, and when the call's rules have ``dtmf_info_to_browser``, the SIP side's
RFC 4733 digits are reported as ``DtmfReceived`` media events for the B2BUA to send as
INFO. Media timeouts are ``MediaTimedOut`` events on the same sink.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, final

from rtcgw.config import GatewayConfig
from rtcgw.media.dtls import DtlsState
from rtcgw.media.dtmf import DTMF_EVENTS, DtmfDigit
from rtcgw.observability import metrics
from rtcgw.observability.logging import LEG_CALL, get_logger
from rtcgw.sdp.codecs import Codec
from rtcgw.sdp.writer import LegProfile
from rtcgw.worker.b2bua.seam import LegSide
from rtcgw.worker.media.dtmf import StreamDtmf
from rtcgw.worker.media.events import DtmfReceived, MediaEventSink, MediaTimedOut
from rtcgw.worker.media.policy import LegPolicy, anchors, leg_policies
from rtcgw.worker.media.session import LegMedia, MediaEndpoint, MediaSession, MediaSite
from rtcgw.worker.media.streams import (
    BrowserStream,
    BrowserTransport,
    PlainStream,
    StreamCounters,
)
from rtcgw.worker.timeline import CallTimelines, LegFigures, MediaProbe

if TYPE_CHECKING:
    from rtcgw.worker.b2bua.call import Call
    from rtcgw.worker.b2bua.leg import Leg

__all__ = ["MediaSeam"]

#: How long a challenged WebRTC caller's media is kept for its retry (64*T1, RFC 3261).
RETRY_GRACE_S = 32.0
TICK_S = 1.0
#: Drops are logged per stream at most this often (and in full when the stream closes).
DROP_LOG_INTERVAL_S = 10.0


@dataclass(slots=True)
class _Milestones:
    """What was already logged and observed for a call (each once)."""

    answered_at: float
    path_logged: bool = False
    done: set[str] = field(default_factory=set)
    drops_logged_at: dict[str, float] = field(default_factory=dict)


log = get_logger()


@final
class MediaSeam:
    """An ``SdpSeam`` that anchors media (module docstring)."""

    def __init__(
        self,
        config: GatewayConfig,
        endpoint: MediaEndpoint,
        sites: dict[str, MediaSite],
        *,
        media_timeout_s: float,
        on_event: MediaEventSink,
        timelines: CallTimelines | None = None,
    ) -> None:
        self._config = config
        #: where each call's answers, consent losses and DTLS failures are recorded, and
        #: where its media figures are read from (through a probe per session)
        self.timelines = timelines
        self._probes: dict[int, MediaProbe] = {}
        self._endpoint = endpoint
        self._sites = sites
        self._media_timeout_s = media_timeout_s
        self._on_event = on_event
        self.sessions: dict[str, MediaSession] = {}
        self._retained: dict[str, MediaSession] = {}
        self._reported: dict[tuple[int, str], int] = {}
        self._milestones: dict[str, _Milestones] = {}

    # -- SdpSeam --------------------------------------------------------------------------

    def offer_out(self, call: Call, leg: Leg, sdp: bytes) -> bytes:
        """The offer for ``leg``, written from its own state (or ``sdp`` when not anchored)."""
        session = self._session(call)
        if session is None:
            return sdp
        return session.remote_offer(self._media_leg(session, call, call.other(leg)), sdp)

    def answer_out(self, call: Call, leg: Leg, sdp: bytes) -> bytes:
        """The answer for ``leg``, written from its own state (or ``sdp`` when not anchored)."""
        session = self.sessions.get(call.call_id)
        if session is None:
            return sdp
        answer = session.remote_answer(self._media_leg(session, call, call.other(leg)), sdp)
        self._timeline_answer(session)
        self._answered(session, call)
        self._start_ticking(session)
        self._wire_dtmf(session, call)
        return answer

    def local_answer(self, call: Call, leg: Leg, sdp: bytes) -> bytes | None:
        """Answer an ICE restart (or an unchanged re-offer) of ``leg`` on that leg alone."""
        session = self.sessions.get(call.call_id)
        if session is None:
            return None
        media_leg = self._media_leg(session, call, leg)
        if not media_leg.webrtc:
            return None
        answer = session.local_answer(media_leg, sdp)
        if answer is not None:
            log.info("media.ice_restart_answered", call_id=call.call_id, leg=media_leg.name)
        return answer

    def local_offer(self, call: Call, leg: Leg) -> bytes | None:
        """An offer of ours for ``leg``: a first one only toward a WebRTC leg (a SIP callee
        is better served by its caller's offer in the 2xx), later ones from its state."""
        session = self.sessions.get(call.call_id)
        if session is None:
            if not anchors(call.decision):
                return None
            caller, callee = leg_policies(call.decision)
            policy = caller if leg is call.a else callee
            if (policy.convert_to or _native_profile(leg.side, policy)) is not LegProfile.WEBRTC:
                return None
            session = self._session(call)
            if session is None:
                return None
        media_leg = self._media_leg(session, call, leg)
        profile = media_leg.policy.convert_to or _native_profile(leg.side, media_leg.policy)
        offer = session.local_offer(media_leg, profile)
        log.info("media.local_offer", call_id=call.call_id, leg=media_leg.name)
        return offer

    def answer_in(self, call: Call, leg: Leg, sdp: bytes) -> None:
        """Learn ``leg``'s answer to our ``local_offer``; media flows once both legs have."""
        session = self.sessions.get(call.call_id)
        if session is None:
            return
        session.learn_answer(self._media_leg(session, call, leg), sdp)
        self._timeline_answer(session)
        self._answered(session, call)
        self._start_ticking(session)
        self._wire_dtmf(session, call)

    def call_ended(self, call: Call, status: int | None) -> None:
        """Release the call's media, or keep it for a challenged caller's retry."""
        session = self.sessions.pop(call.call_id, None)
        if session is None:
            return
        if status in (401, 407) and call.a.side is LegSide.CLIENT:
            self._retained[call.call_id] = session
            now = self._endpoint.clock()

            def expire(_: float) -> None:
                if self._retained.get(call.call_id) is session:
                    del self._retained[call.call_id]
                    self._close(session)

            self._endpoint.relay.call_at(
                now + RETRY_GRACE_S, expire, log_context=_call_context(call.call_id)
            )
            return
        self._close(session)

    def dtmf_out(self, call: Call, leg: Leg, digit: DtmfDigit) -> bool:
        """Queue ``digit`` as RFC 4733 on ``leg``'s first stream that converts DTMF."""
        session = self.sessions.get(call.call_id)
        if session is None:
            return False
        media_leg = self._media_leg(session, call, leg)
        for endpoint in media_leg.streams:
            if isinstance(endpoint, PlainStream) and isinstance(endpoint.tap, StreamDtmf):
                if not endpoint.tap.send(digit, self._endpoint.clock()):
                    log.warning(
                        "media.dtmf_refused",
                        call_id=call.call_id,
                        leg=media_leg.name,
                        digit=digit.symbol,
                        reason="too many digits queued",
                    )
                    return False
                _report_dtmf(call.call_id, media_leg.name, digit, "info->rfc4733")
                return True
        return False

    # -- DTMF -------------------------------------------------------------------------------

    def _wire_dtmf(self, session: MediaSession, call: Call) -> None:
        """Give each SIP-side audio stream that negotiated telephone-event its converter
        (kept across renegotiations, dropped when telephone-event goes away)."""
        report = call.decision.dtmf_info_to_browser
        for leg in (session.a, session.b):
            if leg.webrtc:
                continue
            for index, endpoint in enumerate(leg.streams):
                if not isinstance(endpoint, PlainStream):
                    continue
                codecs = leg.negotiated[index] if index < len(leg.negotiated) else ()
                kind = leg.media_kinds[index] if index < len(leg.media_kinds) else "audio"
                event = _telephone_event(codecs) if kind == "audio" else None
                tap = endpoint.tap
                if event is None:
                    if isinstance(tap, StreamDtmf):
                        tap.closed = True
                    endpoint.tap = None
                    continue
                if isinstance(tap, StreamDtmf):
                    tap.configure(event.payload_type, event.clock_rate)
                else:
                    tap = StreamDtmf(
                        self._endpoint.relay,
                        endpoint,
                        event.payload_type,
                        event.clock_rate,
                        log_context={"call_id": session.call_id, "leg": leg.name},
                    )
                    endpoint.tap = tap
                tap.on_digit = self._digit_reporter(session, leg.name) if report else None

    def _digit_reporter(self, session: MediaSession, leg_name: str) -> Callable[[DtmfDigit], None]:
        def received(digit: DtmfDigit) -> None:
            if session.closed:
                return
            _report_dtmf(session.call_id, leg_name, digit, "rfc4733->info")
            self._on_event(DtmfReceived(session.call_id, digit))

        return received

    # -- sessions -------------------------------------------------------------------------

    def _session(self, call: Call) -> MediaSession | None:
        session = self.sessions.get(call.call_id)
        if session is not None:
            return session
        retained = self._retained.pop(call.call_id, None)
        if retained is not None:
            self.sessions[call.call_id] = retained
            return retained
        decision = call.decision
        if not anchors(decision):
            return None
        caller, callee = leg_policies(decision)
        if caller.convert_to is None:
            # Only a late offer reads it: the callee's offer (in its 2xx) is sent to the
            # caller in the caller's own kind, not in the callee's.
            caller = replace(caller, convert_to=_native_profile(call.a.side, caller))
        session = MediaSession(
            call.call_id,
            self._endpoint,
            (caller, self._site_of(decision.source_realm)),
            (callee, self._site_of(decision.destination_realm)),
        )
        self.sessions[call.call_id] = session
        metrics.MEDIA_SESSIONS_ACTIVE.set(len(self.sessions))
        if self.timelines is not None:
            probe = _probe_of(session)
            self._probes[id(session)] = probe
            self.timelines.watch(call.call_id, probe)
        return session

    def path_label(self, call_id: str) -> str | None:
        """The call's conversion path as a bounded metric label (``dtls-srtp<->rtp``), or
        None when the call's media is not anchored."""
        session = self.sessions.get(call_id)
        if session is None:
            return None
        return f"{_keying(session.a.profile)}<->{_keying(session.b.profile)}"

    def _site_of(self, realm_name: str | None) -> MediaSite:
        for realm in self._config.realms:
            if realm.name == realm_name and realm.media in self._sites:
                return self._sites[realm.media]
        return next(iter(self._sites.values()))

    @staticmethod
    def _media_leg(session: MediaSession, call: Call, leg: Leg) -> LegMedia:
        return session.a if leg is call.a else session.b

    def _answered(self, session: MediaSession, call: Call) -> None:
        """Start the call's milestones at its first answer; log its conversion path once,
        when both legs' media are known (after the second answer of a late offer)."""
        milestones = self._milestones.get(call.call_id)
        if milestones is None:
            milestones = self._milestones[call.call_id] = _Milestones(self._endpoint.clock())
        if milestones.path_logged or not all(
            media.profile is not None and media.negotiated for media in (session.a, session.b)
        ):
            return
        milestones.path_logged = True
        log.info(
            "media.path",
            call_id=call.call_id,
            leg=LEG_CALL,
            path=f"{_leg_path(session.a, call.a)} <-> {_leg_path(session.b, call.b)}",
        )

    def _timeline_answer(self, session: MediaSession) -> None:
        """Record an answer with each leg's side of the conversion path."""
        if self.timelines is not None:
            self.timelines.record(
                session.call_id,
                "media_answered",
                self._endpoint.clock(),
                a=_timeline_side(session.a),
                b=_timeline_side(session.b),
            )

    def _close(self, session: MediaSession) -> None:
        self._milestone(session)
        for leg in (session.a, session.b):
            for endpoint in leg.streams:
                if isinstance(endpoint, PlainStream) and isinstance(endpoint.tap, StreamDtmf):
                    endpoint.tap.closed = True
            # A handshake that ended after the last tick is reported all the same.
            for transport in leg.transports:
                if transport.dtls_changed:
                    transport.dtls_changed = False
                    self._report_dtls(session, leg, transport)
        self._flush(session)
        self._log_figures(session)
        probe = self._probes.pop(id(session), None)
        if probe is not None and self.timelines is not None:
            self.timelines.unwatch(session.call_id, probe)
        self._milestones.pop(session.call_id, None)
        session.close()
        for key in [k for k in self._reported if k[0] == id(session)]:
            del self._reported[key]
        metrics.MEDIA_SESSIONS_ACTIVE.set(len(self.sessions))

    # -- the once-a-second tick -------------------------------------------------------------

    def _start_ticking(self, session: MediaSession) -> None:
        if session.ticking:
            return
        session.ticking = True
        self._endpoint.relay.call_at(
            self._endpoint.clock() + TICK_S,
            self._tick_of(session),
            log_context=_call_context(session.call_id),
        )

    def _tick_of(self, session: MediaSession) -> Callable[[float], None]:
        context = _call_context(session.call_id)

        def tick(now: float) -> None:
            if session.closed:
                return
            # Milestones first, so that a call's log reads in order: ICE, DTLS start,
            # then the DTLS result that the transports report.
            self._milestone(session)
            self._check_transports(session, now)
            self._flush(session)
            if self._media_timeout_s and now - session.last_activity() >= self._media_timeout_s:
                log.info(
                    "media.timeout",
                    call_id=session.call_id,
                    leg=LEG_CALL,
                    idle_s=round(now - session.last_activity(), 1),
                )
                self._on_event(MediaTimedOut(session.call_id))
                return
            self._endpoint.relay.call_at(now + TICK_S, tick, log_context=context)

        return tick

    def _check_transports(self, session: MediaSession, now: float) -> None:
        for leg in (session.a, session.b):
            for transport in leg.transports:
                # A flight whose timer was armed outside the session's own timers (the
                # ClientHello sent when ICE first validates the browser) is retransmitted
                # from here, within a second of its deadline.
                deadline = transport.next_deadline()
                if deadline is not None and deadline <= now:
                    transport.handle_timeout(now)
                if transport.check_consent(now):
                    log.info("media.consent_lost", call_id=session.call_id, leg=leg.name)
                    if self.timelines is not None:
                        self.timelines.record(
                            session.call_id, "ice_consent_lost", now, leg=leg.name
                        )
                if transport.dtls_changed:
                    transport.dtls_changed = False
                    self._report_dtls(session, leg, transport)

    def _report_dtls(
        self, session: MediaSession, leg: LegMedia, transport: BrowserTransport
    ) -> None:
        dtls = transport.dtls
        if dtls is None:
            return
        role = dtls.role.value
        if dtls.state is DtlsState.CONNECTED:
            profile = dtls.srtp_profile.name if dtls.srtp_profile else None
            duration = None
            if dtls.started_at is not None and dtls.completed_at is not None:
                duration = round((dtls.completed_at - dtls.started_at) * 1000, 1)
            log.info(
                "media.dtls_connected",
                call_id=session.call_id,
                leg=leg.name,
                role=role,
                cipher=dtls.cipher,
                srtp_profile=profile,
                duration_ms=duration,
            )
            metrics.DTLS_HANDSHAKES.labels("ok", role).inc()
            if duration is not None:
                metrics.DTLS_HANDSHAKE_SECONDS.labels(role).observe(duration / 1000)
        elif dtls.state is DtlsState.FAILED:
            result = "fingerprint_mismatch" if dtls.fingerprint_mismatch else "failed"
            log.warning(
                "media.dtls_failed",
                call_id=session.call_id,
                leg=leg.name,
                role=role,
                reason=dtls.failure,
            )
            metrics.DTLS_HANDSHAKES.labels(result, role).inc()
            if self.timelines is not None:
                self.timelines.record(
                    session.call_id,
                    "dtls_failed",
                    self._endpoint.clock(),
                    leg=leg.name,
                    role=role,
                    reason=dtls.failure,
                )

    def _flush(self, session: MediaSession) -> None:
        """Add what the session's streams counted since the last flush to the metrics."""
        reported = self._reported
        key = id(session)
        for leg in (session.a, session.b):
            for index, endpoint in enumerate(leg.streams):
                if endpoint is None:
                    continue
                counters = endpoint.counters
                path = _path(endpoint)
                values = {
                    f"{leg.name}{index}:packets": counters.packets_in,
                    f"{leg.name}{index}:bytes": counters.bytes_in,
                    f"{leg.name}{index}:rtcp": counters.rtcp_in,
                }
                for reason, count in counters.dropped.items():
                    values[f"{leg.name}{index}:drop:{reason.value}"] = count
                for name, value in values.items():
                    delta = value - reported.get((key, name), 0)
                    if delta <= 0:
                        continue
                    reported[(key, name)] = value
                    kind = name.split(":", 1)[1]
                    if kind == "packets":
                        metrics.MEDIA_PACKETS.labels(path).inc(delta)
                    elif kind == "bytes":
                        metrics.MEDIA_BYTES.labels(path).inc(delta)
                    elif kind == "rtcp":
                        metrics.MEDIA_PACKETS.labels(_rtcp_path(path)).inc(delta)
                    else:
                        metrics.MEDIA_DROPPED.labels(kind.rsplit(":", 1)[1]).inc(delta)
                        self._log_drops(session, leg.name, index, counters)
            for position, transport in enumerate(leg.transports):
                for verdict, count in transport.stun_counts.items():
                    name = f"{leg.name}t{position}:stun:{verdict.value}"
                    delta = count - reported.get((key, name), 0)
                    if delta > 0:
                        reported[(key, name)] = count
                        metrics.ICE_REQUESTS.labels(verdict.value).inc(delta)

    def _log_drops(
        self, session: MediaSession, leg: str, index: int, counters: StreamCounters
    ) -> None:
        """Log a stream's drops so far, at most once per ``DROP_LOG_INTERVAL_S``."""
        milestones = self._milestones.get(session.call_id)
        now = self._endpoint.clock()
        stream = f"{leg}{index}"
        if milestones is not None:
            last = milestones.drops_logged_at.get(stream)
            if last is not None and now - last < DROP_LOG_INTERVAL_S:
                return
            milestones.drops_logged_at[stream] = now
        log.info(
            "media.dropped",
            call_id=session.call_id,
            leg=leg,
            stream=index,
            dropped={reason.value: count for reason, count in counters.dropped.items()},
        )

    def _milestone(self, session: MediaSession) -> None:
        """Log and observe, once each, the call's ICE first check and nomination, DTLS
        start and the first packet relayed toward each side (times from the answer)."""
        milestones = self._milestones.get(session.call_id)
        if milestones is None:
            return
        done, answered_at = milestones.done, milestones.answered_at
        for leg in (session.a, session.b):
            for position, transport in enumerate(leg.transports):
                ice, key = transport.ice, f"{leg.name}t{position}"
                if ice.first_check_at is not None and key + ":check" not in done:
                    done.add(key + ":check")
                    log.info("media.ice_first_check", call_id=session.call_id, leg=leg.name)
                if ice.nominated_at is not None and key + ":nominated" not in done:
                    done.add(key + ":nominated")
                    delay = max(0.0, ice.nominated_at - answered_at)
                    metrics.ICE_NOMINATION_SECONDS.observe(delay)
                    log.info(
                        "media.ice_nominated",
                        call_id=session.call_id,
                        leg=leg.name,
                        since_answer_ms=round(delay * 1000, 1),
                    )
                dtls = transport.dtls
                if dtls is not None and dtls.started_at is not None and key + ":dtls" not in done:
                    done.add(key + ":dtls")
                    log.info(
                        "media.dtls_started",
                        call_id=session.call_id,
                        leg=leg.name,
                        role=dtls.role.value,
                    )
            sent = [s.counters.first_out_at for s in leg.streams if s is not None]
            first_out = min((t for t in sent if t is not None), default=None)
            if first_out is not None and leg.name + ":first_out" not in done:
                done.add(leg.name + ":first_out")
                toward = "browser" if leg.webrtc else "sip"
                delay = max(0.0, first_out - answered_at)
                metrics.POST_PICKUP_DELAY_SECONDS.labels(toward).observe(delay)
                log.info(
                    "media.first_packet_out",
                    call_id=session.call_id,
                    leg=leg.name,
                    toward=toward,
                    since_answer_ms=round(delay * 1000, 1),
                )

    def _log_figures(self, session: MediaSession) -> None:
        for leg_name, index, counters in session.counters():
            dropped = {reason.value: count for reason, count in counters.dropped.items()}
            log.info(
                "media.stream_closed",
                call_id=session.call_id,
                leg=leg_name,
                stream=index,
                packets_in=counters.packets_in,
                packets_out=counters.packets_out,
                rtcp_in=counters.rtcp_in,
                rtcp_out=counters.rtcp_out,
                dropped=dropped,
            )


def _call_context(call_id: str) -> dict[str, object]:
    """The call on the relay's line for a timer of the whole call that fails."""
    return {"call_id": call_id, "leg": LEG_CALL}


def _native_profile(side: LegSide, policy: LegPolicy) -> LegProfile:
    """What a leg speaks when its rules convert nothing: WebRTC toward a client; toward
    the SIP side the one kind its rules admit, else plain RTP (AVPF when it offers
    feedback)."""
    if side is LegSide.CLIENT:
        return LegProfile.WEBRTC
    admitted = sorted(
        policy.admit or (), key=lambda p: (p.feedback != policy.rtcp_feedback, p.value)
    )
    if admitted:
        return admitted[0]
    return LegProfile.RTP_AVPF if policy.rtcp_feedback else LegProfile.RTP_AVP


def _timeline_side(media: LegMedia) -> str:
    """A leg's media in a timeline's conversion path: "dtls-srtp pcmu", "rtp pcmu"."""
    codecs = [
        next((c.name.lower() for c in negotiated if not c.is_telephone_event), "none")
        for negotiated in media.negotiated
    ]
    return " ".join([_keying(media.profile), "+".join(codecs) or "none"])


def _probe_of(session: MediaSession) -> MediaProbe:
    """Reads the session's figures when a timeline is asked for (never per packet)."""

    def probe() -> tuple[LegFigures, ...]:
        return (_leg_figures(session.a), _leg_figures(session.b))

    return probe


def _leg_figures(media: LegMedia) -> LegFigures:
    packets_in = bytes_in = packets_out = rtcp_in = auth = 0
    first_in: list[float] = []
    first_out: list[float] = []
    dropped: dict[str, int] = {}
    for endpoint in media.streams:
        if endpoint is None:
            continue
        counters = endpoint.counters
        packets_in += counters.packets_in
        bytes_in += counters.bytes_in
        packets_out += counters.packets_out
        rtcp_in += counters.rtcp_in
        if counters.first_in_at is not None:
            first_in.append(counters.first_in_at)
        if counters.first_out_at is not None:
            first_out.append(counters.first_out_at)
        for reason, count in counters.dropped.items():
            dropped[reason.value] = dropped.get(reason.value, 0) + count
    auth = dropped.get("srtp_auth", 0)
    figures = LegFigures(
        leg=media.name,
        webrtc=media.webrtc,
        packets_in=packets_in,
        bytes_in=bytes_in,
        packets_out=packets_out,
        rtcp_in=rtcp_in,
        first_in_at=min(first_in, default=None),
        first_out_at=min(first_out, default=None),
        srtp_auth_failures=auth,
        dropped=tuple(sorted(dropped.items())),
    )
    if not media.transports:
        return figures
    transport = media.transports[0]
    ice, dtls = transport.ice, transport.dtls
    return replace(
        figures,
        ice_checks=sum(transport.stun_counts.values()),
        ice_first_check_at=ice.first_check_at,
        ice_nominated_at=ice.nominated_at,
        dtls_state=dtls.state.value if dtls is not None else None,
        dtls_role=dtls.role.value if dtls is not None else None,
        dtls_started_at=dtls.started_at if dtls is not None else None,
        dtls_completed_at=dtls.completed_at if dtls is not None else None,
        dtls_failure=dtls.failure if dtls is not None else None,
        dtls_fingerprint_mismatch=dtls.fingerprint_mismatch if dtls is not None else False,
        dtls_cipher=dtls.cipher if dtls is not None else None,
        srtp_profile=(dtls.srtp_profile.name if dtls is not None and dtls.srtp_profile else None),
    )


def _telephone_event(codecs: tuple[Codec, ...]) -> Codec | None:
    """The telephone-event codec to send digits with: the one at the audio's clock rate
    (RFC 4733 2.1: events share the audio's timeline), else the first."""
    events = [c for c in codecs if c.is_telephone_event]
    if not events:
        return None
    audio = next((c for c in codecs if not c.is_telephone_event and c.repairs is None), None)
    if audio is not None:
        for event in events:
            if event.clock_rate == audio.clock_rate:
                return event
    return events[0]


def _report_dtmf(call_id: str, leg: str, digit: DtmfDigit, direction: str) -> None:
    log.info(
        "media.dtmf",
        call_id=call_id,
        leg=leg,
        digit=DTMF_EVENTS[digit.event],
        duration_ms=digit.duration_ms,
        direction=direction,
    )
    metrics.DTMF_EVENTS.labels(direction).inc()


def _kind(endpoint: BrowserStream | PlainStream | None) -> str:
    if endpoint is None:
        return "none"
    if isinstance(endpoint, BrowserStream) or endpoint.srtp is not None:
        return "srtp"
    return "rtp"


def _path(endpoint: BrowserStream | PlainStream) -> str:
    peer = endpoint.peer
    target = peer if isinstance(peer, BrowserStream | PlainStream) else None
    return f"{_kind(endpoint)}->{_kind(target)}"


def _rtcp_path(path: str) -> str:
    return path.replace("srtp", "srtcp").replace("rtp", "rtcp")


def _keying(profile: LegProfile | None) -> str:
    """How a leg's media is protected, as in the conversion path: dtls-srtp, sdes-srtp, rtp."""
    if profile is LegProfile.WEBRTC:
        return "dtls-srtp"
    if profile in (LegProfile.RTP_SAVP, LegProfile.RTP_SAVPF):
        return "sdes-srtp"
    return "rtp" if profile is not None else "none"


def _leg_path(media: LegMedia, leg: Leg) -> str:
    """One side of a call's conversion path: ``wss dtls-srtp opus``."""
    codecs = next(iter(media.negotiated or media.offered), ())
    codec = next((c.name.lower() for c in codecs if not c.is_telephone_event), "none")
    return f"{leg.peer.transport.value.lower()} {_keying(media.profile)} {codec}"
