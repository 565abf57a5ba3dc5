"""The browser side of calls through rtpengine, with the SIP proxy's part played in-process.

A SIP proxy in front of rtpengine (Kamailio's rtpengine module) rewrites each SDP through
rtpengine's ng protocol. ``NgShim`` does that for the calls of one benchmark run, with no
proxy and no WebSocket: per call, the browser's offer (``browsers.offer_sdp``) goes to
rtpengine in an ng ``offer`` with the flags that make it plain RTP toward the SIP side
(``OFFER_FLAGS``), the result goes to ``pbx.py`` in a UDP INVITE (``sip_uac.py``), the
answer comes back through an ng ``answer`` that makes it WebRTC again (``ANSWER_FLAGS``),
and the browser side's media pump connects to the candidate rtpengine advertised:
ICE both ways (rtpengine runs full ICE), DTLS as client, SRTP, then 50 probes a second.

Calls are set up at ``rate`` per second; when every call is up (or failed) the measuring
window opens for ``seconds``, exactly as in ``browsers.py``, and the report has the same
keys as that program's report, so the figures are computed the same way. At the end each
call gets a BYE toward the SIP side and an ng ``delete``.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import trio

from benchmarks.loadgen.browsers import offer_sdp, parse_answer
from benchmarks.loadgen.held_calls import HeldCalls
from benchmarks.loadgen.procstat import rss_sample, udp_drops
from benchmarks.loadgen.rtpengine import Bencoded, NgClient, NgError
from benchmarks.loadgen.sip_uac import SipCallFailed, UdpSipCall
from benchmarks.loadgen.webrtc_media import (
    CallState,
    MediaCall,
    MediaPump,
)
from rtcgw.config import DtlsKeyType
from rtcgw.media.certificates import generate_certificate
from rtcgw.media.dtls import DtlsContexts, DtlsSettings

__all__ = ["ANSWER_FLAGS", "OFFER_FLAGS", "NgShim", "ShimSettings"]

#: The browser's offer toward the SIP side: no ICE, plain RTP/AVP, RTCP on its own port
#: toward the SIP side but still muxed toward the browser (what Kamailio sends for
#: WebRTC -> SIP as ``ICE=remove RTP/AVP rtcp-mux-demux``).
OFFER_FLAGS: Final[Mapping[str, Bencoded]] = {
    "ICE": "remove",
    "transport-protocol": "RTP/AVP",
    "rtcp-mux": ["demux"],
}
#: The SIP side's answer toward the browser: ICE candidates of rtpengine's own, DTLS-SRTP
#: with rtpengine passive (the browser side's pump is the DTLS client), no SDES keys,
#: rtcp-mux accepted.
ANSWER_FLAGS: Final[Mapping[str, Bencoded]] = {
    "ICE": "force",
    "DTLS": "passive",
    "SDES": ["off"],
    "transport-protocol": "UDP/TLS/RTP/SAVPF",
    "rtcp-mux": ["accept", "offer"],
}
#: The SIP side answers any user; these are the names browsers.py calls too.
DOMAIN: Final = "example.test"
CALLEE: Final = "echo"
_HANGUP_TIMEOUT_S: Final = 10.0


@dataclass(frozen=True)
class ShimSettings:
    """What one run does, and where rtpengine and the SIP side listen."""

    ng: tuple[str, int]
    sip: tuple[str, int]
    calls: int
    seconds: float
    rate: float = 20.0
    drain_s: float = 1.0
    setup_timeout_s: float = 20.0
    #: processes whose CPU seconds and kernel UDP drops are sampled at the window's edges
    #: (and this one's, as "generator")
    watch: dict[str, int] = field(default_factory=dict)
    #: processes whose RSS is sampled at the window's end
    rss_watch: dict[str, int] = field(default_factory=dict)

    @property
    def hard_deadline_s(self) -> float:
        """How long the whole run may take at most, from its start."""
        ramp = self.calls / self.rate
        return ramp + self.setup_timeout_s + self.seconds + self.drain_s + _HANGUP_TIMEOUT_S + 30


@dataclass(eq=False)
class _Call:
    index: int
    media: MediaCall
    setup_started: float = 0.0
    outcome: str = "pending"  # up | failed:<why> | pending
    bye: str = "not sent"
    deleted: bool = False


class NgShim(HeldCalls):
    """The calls of one run through rtpengine and the figures they collect."""

    settings: ShimSettings

    def __init__(self, settings: ShimSettings) -> None:
        certificate = generate_certificate(DtlsKeyType.EC_P256, common_name="load")
        self.contexts = DtlsContexts(DtlsSettings(certificate=certificate))
        super().__init__(settings, MediaPump(self.contexts))
        self.ng = NgClient(settings.ng)
        self.calls: list[_Call] = []
        self.errors: Counter[str] = Counter()
        #: rtpengine's own RTP counters of the deleted calls (ng ``delete`` replies)
        self.engine_totals: Counter[str] = Counter()

    def drops(self) -> dict[str, int]:
        """Kernel UDP receive drops so far on the open sockets of the watched processes."""
        watched = {**self.settings.watch, "generator": os.getpid()}
        return {name: udp_drops(pid) for name, pid in watched.items()}

    def _records(self) -> list[_Call]:
        return self.calls

    def _window_opened(self) -> None:
        self.window["udp_drops_start"] = self.drops()

    def _window_closed(self) -> None:
        self.window["udp_drops_end"] = self.drops()
        self.window["rss_loaded"] = rss_sample(self.settings.rss_watch)

    async def _call(self, index: int) -> None:
        media = self.pump.open_call(index)
        call = _Call(index, media)
        self.calls.append(call)
        sip = UdpSipCall(self.settings.sip, caller=f"load{index}", callee=CALLEE, domain=DOMAIN)
        try:
            async with sip:
                with trio.move_on_after(self.settings.setup_timeout_s):
                    await self._set_up(call, sip)
                if call.outcome != "up":
                    reason = media.failure or f"media {media.state} timeout"
                    if media.state != CallState.READY:
                        self.pump.fail(media, reason)
                    self._settle(call, f"failed:{reason}")
                await self.hangup.wait()
                with trio.move_on_after(_HANGUP_TIMEOUT_S):
                    await self._hang_up(call, sip)
        except (SipCallFailed, NgError, ValueError) as exc:
            self.errors[type(exc).__name__] += 1
            self.pump.fail(media, str(exc))
            self._settle(call, f"failed:{type(exc).__name__}")
        finally:
            self.pump.close_call(media)
            self._settle(call, "failed:ended early")

    async def _set_up(self, call: _Call, sip: UdpSipCall) -> None:
        """Offer through rtpengine, INVITE the SIP side, answer through rtpengine, connect.

        Raises:
            NgError, SipCallFailed: rtpengine or the SIP side refused.
            ValueError: rtpengine's answer lacks ICE credentials, a candidate or a
                fingerprint.
        """
        media = call.media
        call.setup_started = time.monotonic()  # the pump's clock: ready_at is on it
        offer = offer_sdp(media, self.contexts.fingerprint)
        toward_sip = await self.ng.offer(offer, sip.call_id, sip.from_tag, **OFFER_FLAGS)
        final = await sip.invite(toward_sip)
        # An RFC 2543 peer may leave the To tag out; ng then matches on the From tag alone.
        to_tag = sip.to_tag or ""
        toward_browser = await self.ng.answer(
            final.body, sip.call_id, sip.from_tag, to_tag, **ANSWER_FLAGS
        )
        self.pump.connect(media, parse_answer(toward_browser))
        await media.ready.wait()
        self._settle(call, "up")

    async def _hang_up(self, call: _Call, sip: UdpSipCall) -> None:
        if sip.dialog is not None:
            call.bye = str(await sip.bye())
        reply = await self.ng.delete(sip.call_id, sip.from_tag)
        call.deleted = True
        totals = reply.get("totals")
        rtp = totals.get("RTP") if isinstance(totals, dict) else None
        if isinstance(rtp, dict):
            for key in ("packets", "errors"):
                value = rtp.get(key)
                if isinstance(value, int):
                    self.engine_totals[key] += value

    def report(self) -> dict[str, Any]:
        """Every counter of the run, summed over the calls (``browsers.py``'s keys)."""
        return {
            **self._common_report(),
            "deleted": sum(c.deleted for c in self.calls),
            "errors": dict(self.errors),
            "rtpengine_rtp": dict(self.engine_totals),
            "ng_requests": self.ng.requests,
            "ng_retransmissions": self.ng.retransmissions,
            **self.window,
        }
