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
from dataclasses import replace
from typing import TYPE_CHECKING, final

from rtcgw.config import GatewayConfig
from rtcgw.media.dtls import DtlsState
from rtcgw.media.dtmf import DTMF_EVENTS, DtmfDigit
from rtcgw.observability import metrics
from rtcgw.observability.logging import get_logger
from rtcgw.sdp.codecs import Codec
from rtcgw.sdp.writer import LegProfile
from rtcgw.worker.b2bua.seam import LegSide
from rtcgw.worker.media.dtmf import StreamDtmf
from rtcgw.worker.media.events import DtmfReceived, MediaEventSink, MediaTimedOut
from rtcgw.worker.media.policy import LegPolicy, anchors, leg_policies
from rtcgw.worker.media.session import LegMedia, MediaEndpoint, MediaSession, MediaSite
from rtcgw.worker.media.streams import BrowserStream, BrowserTransport, PlainStream

if TYPE_CHECKING:
    from rtcgw.worker.b2bua.call import Call
    from rtcgw.worker.b2bua.leg import Leg

__all__ = ["MediaSeam"]

#: How long a challenged WebRTC caller's media is kept for its retry (64*T1, RFC 3261).
RETRY_GRACE_S = 32.0
TICK_S = 1.0

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
    ) -> None:
        self._config = config
        self._endpoint = endpoint
        self._sites = sites
        self._media_timeout_s = media_timeout_s
        self._on_event = on_event
        self.sessions: dict[str, MediaSession] = {}
        self._retained: dict[str, MediaSession] = {}
        self._reported: dict[tuple[int, str], int] = {}

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

            self._endpoint.relay.call_at(now + RETRY_GRACE_S, expire)
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
                        self._endpoint.relay, endpoint, event.payload_type, event.clock_rate
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
        return session

    def _site_of(self, realm_name: str | None) -> MediaSite:
        for realm in self._config.realms:
            if realm.name == realm_name and realm.media in self._sites:
                return self._sites[realm.media]
        return next(iter(self._sites.values()))

    @staticmethod
    def _media_leg(session: MediaSession, call: Call, leg: Leg) -> LegMedia:
        return session.a if leg is call.a else session.b

    def _close(self, session: MediaSession) -> None:
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
        session.close()
        for key in [k for k in self._reported if k[0] == id(session)]:
            del self._reported[key]
        metrics.MEDIA_SESSIONS_ACTIVE.set(len(self.sessions))

    # -- the once-a-second tick -------------------------------------------------------------

    def _start_ticking(self, session: MediaSession) -> None:
        if session.ticking:
            return
        session.ticking = True
        self._endpoint.relay.call_at(self._endpoint.clock() + TICK_S, self._tick_of(session))

    def _tick_of(self, session: MediaSession) -> Callable[[float], None]:
        def tick(now: float) -> None:
            if session.closed:
                return
            self._check_transports(session, now)
            self._flush(session)
            if self._media_timeout_s and now - session.last_activity() >= self._media_timeout_s:
                log.info(
                    "media.timeout",
                    call_id=session.call_id,
                    idle_s=round(now - session.last_activity(), 1),
                )
                self._on_event(MediaTimedOut(session.call_id))
                return
            self._endpoint.relay.call_at(now + TICK_S, tick)

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
            for position, transport in enumerate(leg.transports):
                for verdict, count in transport.stun_counts.items():
                    name = f"{leg.name}t{position}:stun:{verdict.value}"
                    delta = count - reported.get((key, name), 0)
                    if delta > 0:
                        reported[(key, name)] = count
                        metrics.ICE_REQUESTS.labels(verdict.value).inc(delta)

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
