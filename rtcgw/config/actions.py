"""The action vocabulary of A-rules and C-rules, one frozen dataclass per action.

In the file an action is an inline table whose ``action`` key names it and whose other keys
are the fields below, e.g. ``{ action = "force_srtp", keying = "dtls" }``. ``ACTION`` is that
name. Fields are limited to bool, int, str, enums and tuples of str: ``load.py`` reads every
action generically from these declarations, and the ``minimum`` / ``maximum`` / ``min_items``
metadata are the bounds it enforces.

This module only describes what an operator asked for. What an action does to a message is
the rules engine's business (``rtcgw.rules``); where an action may appear and how actions
combine is checked by ``load.py``.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import ClassVar, final

from rtcgw.config._meta import doc

__all__ = [
    "ACTION_TYPES",
    "Action",
    "CodecBlacklist",
    "CodecWhitelist",
    "DialogHandling",
    "DtmfInfoToBrowser",
    "ForceRtp",
    "ForceSrtp",
    "Mediate183To180",
    "RegisterCaching",
    "RegisterThrottling",
    "Reply",
    "RetargetFromCache",
    "Route",
    "RtpAnchoring",
    "SrtpKeying",
    "StripVideo",
]


class SrtpKeying(enum.Enum):
    """How SRTP keys are exchanged."""

    #: RFC 5764 DTLS-SRTP; the only keying WebRTC allows (RFC 8827 section 6.5)
    DTLS = "dtls"
    SDES = "sdes"  #: RFC 4568 keys in SDP ``a=crypto``, for SIP endpoints that do SRTP


@final
@dataclass(frozen=True, slots=True)
class RegisterThrottling:
    """Absorb frequent client refreshes: clients refresh often, the registrar rarely.

    Clients are granted ``client_expires_s``, which keeps their binding (and the
    connection it lives on) checked often; the registrar is asked for
    ``upstream_expires_s`` and refreshed only when that runs out. Needs register_caching;
    the loader also requires ``client_expires_s <= upstream_expires_s``: the reverse would
    have the gateway refresh the registrar more often than clients refresh it, the
    opposite of throttling.
    """

    ACTION: ClassVar[str] = "register_throttling"

    # A short client expiry makes a browser re-REGISTER often, which keeps its WebSocket
    # (and any NAT or proxy on the way) alive and shows quickly when it is gone. The
    # minimum is 1 s, not a "sensible" production floor, so that tests and lab set-ups
    # can scale time down and watch expiry happen within seconds.
    client_expires_s: int = field(
        default=60,
        metadata=doc("Expires granted to clients", minimum=1, maximum=86400),
    )
    upstream_expires_s: int = field(
        default=3600,
        metadata=doc("Expires requested from the registrar", minimum=1, maximum=86400),
    )


@final
@dataclass(frozen=True, slots=True)
class RegisterCaching:
    """Keep clients' bindings in the registration cache and register ourselves upstream.

    The Contact sent to the registrar is one of ours, so requests for the user come back
    through the gateway, where retarget_from_cache finds the client's connection.
    """

    ACTION: ClassVar[str] = "register_caching"


@final
@dataclass(frozen=True, slots=True)
class DialogHandling:
    """NAT fix for dialogs: reach the peer where its requests came from.

    In-dialog requests go back over the connection (or to the source address) the dialog
    was created from, not to the Contact the peer wrote, which for a browser is an
    unroutable ``.invalid`` host.
    """

    ACTION: ClassVar[str] = "dialog_handling"


@final
@dataclass(frozen=True, slots=True)
class RtpAnchoring:
    """Relay the call's media through the gateway instead of end to end."""

    ACTION: ClassVar[str] = "rtp_anchoring"

    offer_ice: bool = field(
        default=False, metadata=doc("answer ICE as an ICE-lite agent (RFC 8445 section 2.5)")
    )
    offer_rtcp_feedback: bool = field(
        default=False, metadata=doc("offer RTCP feedback, the AVPF profile (RFC 4585)")
    )


@final
@dataclass(frozen=True, slots=True)
class ForceRtp:
    """Plain RTP: a C-rule converts the offer to RTP/AVP; an A-rule admits only RTP offers."""

    ACTION: ClassVar[str] = "force_rtp"


@final
@dataclass(frozen=True, slots=True)
class ForceSrtp:
    """SRTP: a C-rule converts the offer to SRTP; an A-rule admits only SRTP offers."""

    ACTION: ClassVar[str] = "force_srtp"

    keying: SrtpKeying = field(
        default=SrtpKeying.DTLS, metadata=doc("how SRTP keys are exchanged: dtls or sdes")
    )


@final
@dataclass(frozen=True, slots=True)
class Reply:
    """Answer the request with a final error response instead of forwarding it.

    Codes are 400..699: a 3xx redirect needs a Contact, which this action cannot set.
    """

    ACTION: ClassVar[str] = "reply"

    code: int = field(metadata=doc("status code of the response", minimum=400, maximum=699))
    reason: str = field(metadata=doc("reason phrase of the response"))


@final
@dataclass(frozen=True, slots=True)
class RetargetFromCache:
    """Replace the Request-URI with the contact registered for it (alias lookup).

    A user with no binding in the registration cache is answered with ``offline_code`` and
    ``offline_reason``, by default 480 Temporarily Unavailable (DESIGN.md section 3).
    """

    ACTION: ClassVar[str] = "retarget_from_cache"

    offline_code: int = field(
        default=480,
        metadata=doc(
            "status code when the user has no binding in the cache", minimum=400, maximum=699
        ),
    )
    offline_reason: str = field(
        default="Temporarily Unavailable",
        metadata=doc("reason phrase sent with offline_code"),
    )


@final
@dataclass(frozen=True, slots=True)
class CodecWhitelist:
    """Keep only the listed codecs in SDP offers."""

    ACTION: ClassVar[str] = "codec_whitelist"

    codecs: tuple[str, ...] = field(
        metadata=doc(
            "encoding names as in a=rtpmap (case-insensitive), e.g. opus, PCMU", min_items=1
        )
    )


@final
@dataclass(frozen=True, slots=True)
class CodecBlacklist:
    """Remove the listed codecs from SDP offers."""

    ACTION: ClassVar[str] = "codec_blacklist"

    codecs: tuple[str, ...] = field(
        metadata=doc("encoding names as in a=rtpmap (case-insensitive), e.g. G729", min_items=1)
    )


@final
@dataclass(frozen=True, slots=True)
class StripVideo:
    """Reject video streams (port 0, RFC 3264 section 6) so calls go ahead audio-only."""

    ACTION: ClassVar[str] = "strip_video"


@final
@dataclass(frozen=True, slots=True)
class Mediate183To180:
    """Forward 183 Session Progress as 180 Ringing without SDP.

    Early media from a forking PBX races the final answer and breaks browsers (their SIP
    libraries apply SDP from unreliable 183s); plain ringing is the handbook's cure.
    """

    ACTION: ClassVar[str] = "mediate_183_to_180"


@final
@dataclass(frozen=True, slots=True)
class DtmfInfoToBrowser:
    """Also send RFC 4733 digits from the SIP side to the browser as SIP INFO.

    Each digit the SIP peer sends as a telephone-event reaches the browser as an INFO with
    an ``application/dtmf-relay`` body (Signal and Duration), once per digit, on top of
    the RFC 4733 packets relayed in its media: for web phones that show or act on digits
    received. Needs rtp_anchoring: only an anchored call's relay sees the digits.
    """

    ACTION: ClassVar[str] = "dtmf_info_to_browser"


@final
@dataclass(frozen=True, slots=True)
class Route:
    """Send the request to a call agent (A-rules only)."""

    ACTION: ClassVar[str] = "route"

    destination: str = field(metadata=doc("name of the call agent to send the request to"))


Action = (
    RegisterThrottling
    | RegisterCaching
    | DialogHandling
    | RtpAnchoring
    | ForceRtp
    | ForceSrtp
    | Reply
    | RetargetFromCache
    | CodecWhitelist
    | CodecBlacklist
    | StripVideo
    | Mediate183To180
    | DtmfInfoToBrowser
    | Route
)

#: Every action type, in the order the documentation lists them.
ACTION_TYPES: tuple[type[Action], ...] = (
    RegisterThrottling,
    RegisterCaching,
    DialogHandling,
    RtpAnchoring,
    ForceRtp,
    ForceSrtp,
    Reply,
    RetargetFromCache,
    CodecWhitelist,
    CodecBlacklist,
    StripVideo,
    Mediate183To180,
    DtmfInfoToBrowser,
    Route,
)
