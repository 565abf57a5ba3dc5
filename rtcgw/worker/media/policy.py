"""The rules' media actions, read once per leg into what the media session needs.

The handbook's reading (rtcgw.rules.decision): actions of the source realm's A-rules apply
to the leg toward the caller and *admit* (force_rtp / force_srtp reject an offer of another
kind with 488); actions of the destination realm's C-rules apply to the leg toward the
callee and *convert* (the offer sent there uses that profile).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import final

from rtcgw.config import SrtpKeying
from rtcgw.rules import Decision, MediaPolicy
from rtcgw.sdp.writer import LegProfile

__all__ = ["LegPolicy", "anchors", "leg_policies"]

_PLAIN = frozenset({LegProfile.RTP_AVP, LegProfile.RTP_AVPF})
_SDES = frozenset({LegProfile.RTP_SAVP, LegProfile.RTP_SAVPF})
_DTLS = frozenset({LegProfile.WEBRTC})


@final
@dataclass(frozen=True, slots=True)
class LegPolicy:
    """What the rules ask of one leg's media."""

    #: the profile to offer on this leg; None: the same kind as the other leg's offer
    convert_to: LegProfile | None = None
    #: the profiles admitted in an offer from this leg; None: any we can relay
    admit: frozenset[LegProfile] | None = None
    rtcp_feedback: bool = False
    whitelist: tuple[str, ...] | None = None
    blacklist: tuple[str, ...] | None = None
    strip_video: bool = False
    #: symmetric RTP: send to where the peer's RTP comes from (dialog handling, NAT fix)
    latching: bool = False


def anchors(decision: Decision) -> bool:
    """True when the call's media goes through the gateway (any anchoring or conversion)."""
    source, destination = decision.source_media, decision.destination_media
    return (
        source.anchoring
        or destination.anchoring
        or destination.force_rtp
        or destination.force_srtp is not None
    )


def leg_policies(decision: Decision) -> tuple[LegPolicy, LegPolicy]:
    """``(caller's leg, callee's leg)`` policies of a call."""
    source, destination = decision.source_media, decision.destination_media
    caller = LegPolicy(
        admit=_admitted(source),
        rtcp_feedback=source.offer_rtcp_feedback,
        whitelist=source.codec_whitelist,
        blacklist=source.codec_blacklist,
        strip_video=source.strip_video,
        latching=decision.source_dialog_handling,
    )
    callee = LegPolicy(
        convert_to=_converted(destination),
        rtcp_feedback=destination.offer_rtcp_feedback,
        whitelist=destination.codec_whitelist,
        blacklist=destination.codec_blacklist,
        strip_video=destination.strip_video,
        latching=decision.destination_dialog_handling,
    )
    return caller, callee


def _admitted(media: MediaPolicy) -> frozenset[LegProfile] | None:
    if media.force_srtp is SrtpKeying.DTLS:
        return _DTLS
    if media.force_srtp is SrtpKeying.SDES:
        return _SDES
    if media.force_rtp:
        return _PLAIN
    return None


def _converted(media: MediaPolicy) -> LegProfile | None:
    if media.force_srtp is SrtpKeying.DTLS:
        return LegProfile.WEBRTC
    if media.force_srtp is SrtpKeying.SDES:
        return LegProfile.RTP_SAVPF if media.offer_rtcp_feedback else LegProfile.RTP_SAVP
    if media.force_rtp:
        return LegProfile.RTP_AVP
    if media.offer_ice:
        return LegProfile.WEBRTC
    return None
