"""Session descriptions written from one leg's own state.

A B2BUA that edits the other leg's SDP carries that leg's mistakes across (a fingerprint
missing after hold, a transport profile that changed in a re-offer, a BUNDLE group naming a
rejected stream). rtcgw instead keeps, per leg, what was negotiated on that leg (profile,
address, codecs, ICE credentials, fingerprint, setup role) as a ``LegState`` and writes a
complete description from it with ``write_sdp``, the same way for initial offers, answers
and re-offers.

The profile decides which lines a leg may carry; ``write_sdp`` writes what the profile
allows and silently leaves out the rest, so one ``LegState`` shape serves every leg:

============  =============================  ==========  ==========
profile       ICE, DTLS, rtcp-mux, BUNDLE    a=crypto    a=rtcp-fb
============  =============================  ==========  ==========
WEBRTC        yes                            no          if asked
RTP_AVP       no                             no          no
RTP_AVPF      no                             no          if asked
RTP_SAVP      no                             yes         no
RTP_SAVPF     no                             yes         if asked
============  =============================  ==========  ==========

No I/O, no clock, no randomness: ICE credentials, session ids and keys come in the state.
"""

from __future__ import annotations

import enum
import ipaddress
import zlib
from dataclasses import dataclass

from rtcgw.sdp.attributes import (
    Candidate,
    Crypto,
    Direction,
    Fingerprint,
    Fmtp,
    Rtpmap,
    Setup,
)
from rtcgw.sdp.codecs import Codec
from rtcgw.sdp.errors import LocalSdpError
from rtcgw.sdp.model import Attribute, Entry, Line, MediaSection, SessionDescription

__all__ = [
    "HOST_TYPE_PREFERENCE",
    "LegProfile",
    "LegState",
    "StreamState",
    "candidate_priority",
    "write_sdp",
]


class LegProfile(enum.Enum):
    """The RTP transport profiles a leg can use, by their ``m=`` proto token."""

    #: RFC 5764 section 8 with RFC 8829's requirements: what browsers use.
    WEBRTC = "UDP/TLS/RTP/SAVPF"
    #: RFC 3551: plain RTP, what most SIP equipment sends.
    RTP_AVP = "RTP/AVP"
    #: RFC 4585: plain RTP with RTCP feedback.
    RTP_AVPF = "RTP/AVPF"
    #: RFC 3711: SRTP, keyed with SDES a=crypto (RFC 4568) on SIP legs.
    RTP_SAVP = "RTP/SAVP"
    #: RFC 5124: SRTP with RTCP feedback.
    RTP_SAVPF = "RTP/SAVPF"

    @property
    def srtp(self) -> bool:
        """True if media is SRTP."""
        return self in _SRTP_PROFILES

    @property
    def dtls(self) -> bool:
        """True if SRTP is keyed by DTLS (and the leg uses ICE, rtcp-mux and BUNDLE)."""
        return self is LegProfile.WEBRTC

    @property
    def feedback(self) -> bool:
        """True if the profile allows RTCP feedback (AVPF, RFC 4585)."""
        return self in _FEEDBACK_PROFILES

    @classmethod
    def of_proto(cls, proto: str) -> LegProfile | None:
        """The profile an ``m=`` proto names (case-blind), None for any other (TCP, SCTP)."""
        return _BY_PROTO.get(proto.upper())


_SRTP_PROFILES = frozenset({LegProfile.WEBRTC, LegProfile.RTP_SAVP, LegProfile.RTP_SAVPF})
_FEEDBACK_PROFILES = frozenset({LegProfile.WEBRTC, LegProfile.RTP_AVPF, LegProfile.RTP_SAVPF})
_BY_PROTO = {p.value.upper(): p for p in LegProfile}


@dataclass(frozen=True, slots=True)
class StreamState:
    """One media stream of a leg, as this leg negotiated it."""

    media: str
    port: int
    codecs: tuple[Codec, ...]
    direction: Direction
    mid: str | None = None
    rtcp_port: int | None = None
    crypto: tuple[Crypto, ...] = ()
    extra: tuple[Attribute, ...] = ()
    formats: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class LegState:
    """Everything one leg's description says, owned by that leg."""

    profile: LegProfile
    address: str
    session_id: int
    session_version: int
    streams: tuple[StreamState, ...]
    ice: tuple[str, str] | None = None
    candidate_addresses: tuple[str, ...] = ()
    fingerprint: Fingerprint | None = None
    setup: Setup | None = None
    rtcp_mux: bool = False
    rtcp_feedback: bool = False
    bundle: bool = False
    username: str = "rtcgw"


#: RFC 8445 section 5.1.2.2: "The RECOMMENDED values for type preferences are 126 for host
#: candidates ..."
HOST_TYPE_PREFERENCE = 126
_MAX_LOCAL_PREFERENCE = 65535
#: Feedback every video codec gets on a leg with RTCP feedback: generic NACK (RFC 4585 6.2.1),
#: picture loss indication (6.3.1) and full intra request (RFC 5104 7.2), what browsers and
#: video phones use to recover from loss.
_VIDEO_FEEDBACK = ("nack", "nack pli", "ccm fir")


def candidate_priority(*, type_preference: int, local_preference: int, component: int) -> int:
    """The priority of a candidate (RFC 8445 section 5.1.2.1).

    ``priority = 2^24 * type preference + 2^8 * local preference + (256 - component ID)``
    """
    return (type_preference << 24) + (local_preference << 8) + (256 - component)


def _addr_type(address: str) -> str:
    """``IP4`` or ``IP6`` for the ``c=`` and ``o=`` lines (RFC 8866 section 5.7)."""
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        if ":" in address or not address or address.split() != [address]:
            raise LocalSdpError(f"leg address {address!r} is not an address") from None
        return "IP4"  # a host name: RFC 8866 5.7 allows an FQDN with IP4
    return "IP6" if parsed.version == 6 else "IP4"


def _foundation(address: str) -> str:
    """A foundation that stays the same for an address across offers (RFC 8445 5.1.1.3)."""
    return str(zlib.crc32(address.encode("utf-8")))


def _candidates(leg: LegState, port: int) -> list[Entry]:
    entries: list[Entry] = []
    for index, address in enumerate(leg.candidate_addresses):
        candidate = Candidate(
            foundation=_foundation(address),
            component=1,
            transport="udp",
            priority=candidate_priority(
                type_preference=HOST_TYPE_PREFERENCE,
                local_preference=max(_MAX_LOCAL_PREFERENCE - index, 0),
                component=1,
            ),
            address=address,
            port=port,
            type="host",
        )
        entries.append(Attribute("candidate", candidate.to_sdp()))
    entries.append(Attribute("end-of-candidates"))
    return entries


def _feedback_of(codec: Codec, media: str) -> list[str]:
    values = list(dict.fromkeys(codec.rtcp_fb))
    if media == "video" and not codec.is_repair:
        values.extend(v for v in _VIDEO_FEEDBACK if v not in values)
    return values


def _codec_entries(codec: Codec, media: str, feedback: bool) -> list[Entry]:
    channels = None if codec.channels == 1 else codec.channels
    rtpmap = Rtpmap(codec.payload_type, codec.name, codec.clock_rate, channels)
    entries: list[Entry] = [Attribute("rtpmap", rtpmap.to_sdp())]
    if codec.fmtp:
        entries.append(Attribute("fmtp", Fmtp(codec.payload_type, codec.fmtp).to_sdp()))
    if feedback:
        entries.extend(
            Attribute("rtcp-fb", f"{codec.payload_type} {value}")
            for value in _feedback_of(codec, media)
        )
    return entries


def _write_stream(leg: LegState, stream: StreamState) -> MediaSection:
    profile = leg.profile
    codec_formats = tuple(str(c.payload_type) for c in stream.codecs)
    if stream.port == 0:
        # RFC 3264 section 6: a rejected stream keeps its m-line with port zero and at least
        # one format. RFC 8843 keeps its mid on the m-line but out of the BUNDLE group.
        formats = stream.formats or codec_formats
        if not formats:
            raise LocalSdpError(f"rejected {stream.media} stream lists no formats")
        rejected: tuple[Entry, ...] = () if stream.mid is None else (Attribute("mid", stream.mid),)
        return MediaSection(stream.media, 0, None, profile.value, formats, rejected)
    formats = codec_formats or stream.formats
    if not formats:
        raise LocalSdpError(f"{stream.media} stream on port {stream.port} has no formats")
    webrtc = profile.dtls
    mux = webrtc and leg.rtcp_mux
    entries: list[Entry] = []
    if stream.mid is not None:
        entries.append(Attribute("mid", stream.mid))
    entries.append(Attribute(stream.direction.to_sdp()))
    if stream.rtcp_port is not None and not mux:
        entries.append(Attribute("rtcp", str(stream.rtcp_port)))
    if mux:
        entries.append(Attribute("rtcp-mux"))
    if webrtc and leg.ice is not None:
        entries.append(Attribute("ice-ufrag", leg.ice[0]))
        entries.append(Attribute("ice-pwd", leg.ice[1]))
    if webrtc and leg.fingerprint is not None:
        entries.append(Attribute("fingerprint", leg.fingerprint.to_sdp()))
    if webrtc and leg.setup is not None:
        entries.append(Attribute("setup", leg.setup.to_sdp()))
    if webrtc and leg.ice is not None:
        entries.extend(_candidates(leg, stream.port))
    if profile.srtp and not profile.dtls:
        # RFC 5763 section 5 keys WebRTC media by DTLS only; browsers refuse SDES next to it.
        entries.extend(Attribute("crypto", c.to_sdp()) for c in stream.crypto)
    feedback = profile.feedback and leg.rtcp_feedback
    for codec in stream.codecs:
        entries.extend(_codec_entries(codec, stream.media, feedback))
    entries.extend(stream.extra)
    return MediaSection(stream.media, stream.port, None, profile.value, formats, tuple(entries))


def write_sdp(leg: LegState) -> SessionDescription:
    """The description of a leg, written from its state alone.

    Args:
        leg: the leg's profile, address, streams and transport state.

    Returns:
        A description with ``v=``, ``o=``, ``s=-``, a session-level ``c=``, ``t=0 0``, then
        (WebRTC) ``a=ice-lite``, the BUNDLE group of the accepted streams' mids and
        ``a=msid-semantic``, then one ``m=`` section per stream in order.

    Raises:
        LocalSdpError: the state cannot be written (a stream without formats, an address
            that is not one, a value with a line break).
    """
    addr_type = _addr_type(leg.address)
    entries: list[Entry] = [
        Line("v", "0"),
        Line(
            "o",
            f"{leg.username} {leg.session_id} {leg.session_version} IN {addr_type} {leg.address}",
        ),
        Line("s", "-"),
        Line("c", f"IN {addr_type} {leg.address}"),
        Line("t", "0 0"),
    ]
    if leg.profile.dtls:
        if leg.ice is not None:
            # RFC 8445 section 6.1.1: facing a lite agent, the full agent (the browser)
            # takes the controlling role and nominates.
            entries.append(Attribute("ice-lite"))
        if leg.bundle:
            mids = [s.mid for s in leg.streams if s.port != 0 and s.mid is not None]
            if mids:
                entries.append(Attribute("group", " ".join(("BUNDLE", *mids))))
        if any(a.name == "msid" for s in leg.streams for a in s.extra):
            entries.append(Attribute("msid-semantic", " WMS *"))
    media = tuple(_write_stream(leg, s) for s in leg.streams)
    return SessionDescription(tuple(entries), media)
