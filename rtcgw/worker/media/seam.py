"""The SDP seam of a worker that relays media: one ``MediaSession`` per anchored call.

The B2BUA calls the seam with every offer and answer it sends (``rtcgw.worker.b2bua.seam``).
A call whose rules anchor no media keeps its SDP untouched; any other gets a session on the
first offer, written leg by leg from the session's state.

Two lifetimes need care:

- A WebRTC caller challenged by the SIP side (401/407) retries with credentials, the same
  Call-ID and the same SDP. Its session is kept for 64*T1 after the challenge and reused by
  the retry, so ports, ICE credentials and DTLS state stay what the browser may already
  have seen.
- Each session ticks once a second on the relay: consent freshness (RFC 7675), DTLS results
  logged and counted, media figures added to the metrics, and the media timeout: no packet
  either way for ``media_timeout_s`` ends the call (both legs get BYE).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, final

from rtcgw.config import GatewayConfig
from rtcgw.media.dtls import DtlsState
from rtcgw.observability import metrics
from rtcgw.observability.logging import get_logger
from rtcgw.worker.b2bua.seam import LegSide
from rtcgw.worker.media.policy import anchors, leg_policies
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
        on_timeout: Callable[[str], None],
    ) -> None:
        self._config = config
        self._endpoint = endpoint
        self._sites = sites
        self._media_timeout_s = media_timeout_s
        self._on_timeout = on_timeout
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
                self._on_timeout(session.call_id)
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
