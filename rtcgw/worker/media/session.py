"""One call's media: two legs, each with its own negotiated state, and the packets between.

Theory of operation (RFC 3264 offer/answer, seen from a B2BUA that anchors media):

1. An offer arrives on leg X (``remote_offer``). It is read once (``describe``), admitted
   against X's policy (488 otherwise), and X's endpoints are made or kept: a
   ``BrowserTransport`` per BUNDLE group or m-line for a WebRTC peer, a ``PlainStream`` per
   m-line for a SIP peer. The offer sent on the other leg Y is *written from Y's own state*
   (its profile, ports, ICE credentials, fingerprint, setup role, the codecs that survived
   the rules), never edited from X's SDP. An m-line no codec survives is offered with port
   0; when none is left the call gets 488.
2. The answer arrives on Y (``remote_answer``): Y's endpoints learn where the peer is (or its
   ICE credentials, fingerprints and DTLS role), the accepted codecs are mapped back to X's
   payload types, and X's answer is written from X's state.
3. Re-offers take the same path with the endpoints kept, so ports, ICE credentials and DTLS
   survive hold/resume and codec changes. A re-offer from a WebRTC peer that only restarts
   ICE (new ufrag/pwd) is answered on that leg alone (``local_answer``).

4. An INVITE without an offer toward a leg we can offer on (a browser's) gets one of ours
   (``local_offer``): before any negotiation one audio stream with the codecs the rules
   allow (``DEFAULT_OFFER`` unless a whitelist names others), afterwards each stream's
   negotiated codecs. Its answer is learned with ``learn_answer``, which is ``remote_answer``
   without writing anything for the other leg; the other leg is then offered the codecs
   that answer accepted (``local_offer`` again), and its answer learned the same way.

Which leg is which does not matter here: X is whoever offered, so a late offer (the callee's
2xx carries it) is the same code. The session never touches signaling; the SDP seam
(``rtcgw.worker.media.seam``) calls it.
"""

from __future__ import annotations

import secrets
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import final

from rtcgw.media.dtls import DtlsContexts, DtlsEndpoint, DtlsRole
from rtcgw.media.ice_lite import IceCredentials, IceLiteAgent
from rtcgw.media.rtp import RtpRewriter
from rtcgw.media.srtp import SrtpProfile, SrtpSession, new_master_key
from rtcgw.sdp.attributes import Crypto, Direction, Fingerprint, Setup, strongest_fingerprint
from rtcgw.sdp.codecs import Codec, filter_codecs, format_codecs, has_media_codec
from rtcgw.sdp.errors import SdpNegotiationError
from rtcgw.sdp.model import Attribute, parse_sdp
from rtcgw.sdp.negotiation import RemoteDescription, answer_codecs, describe
from rtcgw.sdp.writer import LegProfile, LegState, StreamState, write_sdp
from rtcgw.worker.media.policy import LegPolicy
from rtcgw.worker.media.ports import PortPool
from rtcgw.worker.media.relay import MediaRelay
from rtcgw.worker.media.streams import BrowserStream, BrowserTransport, PlainStream, StreamCounters

__all__ = ["LegMedia", "MediaEndpoint", "MediaSession", "MediaSite"]

#: The SDES suite we offer and prefer (RFC 4568 section 6.2).
SDES_PROFILE = SrtpProfile.AES_CM_128_HMAC_SHA1_80

#: Audio codecs an offer of our own may carry, by lower-case name: the payload types
#: browsers and SIP equipment use for them (static ones from RFC 3551).
KNOWN_AUDIO: dict[str, Codec] = {
    "pcmu": Codec(0, "PCMU", 8000, 1),
    "pcma": Codec(8, "PCMA", 8000, 1),
    "g722": Codec(9, "G722", 8000, 1),
    "g729": Codec(18, "G729", 8000, 1, "annexb=no"),
    "opus": Codec(111, "opus", 48000, 2, "minptime=10;useinbandfec=1"),
    "telephone-event": Codec(101, "telephone-event", 8000, 1, "0-16"),
}
#: What an offer of our own carries when no whitelist says otherwise: G.711 first, which
#: the SIP side (offered what the browser accepts) is the likeliest to take.
DEFAULT_OFFER = ("pcmu", "pcma", "g722", "opus", "telephone-event")


@final
@dataclass(frozen=True, slots=True)
class MediaSite:
    """Where one leg's media sockets live: a media interface's ports and addresses."""

    pool: PortPool
    #: the c= address and one ICE host candidate per address (1:1 NAT: public ones)
    advertised: tuple[str, ...]
    #: the interface's DTLS certificate, CA and MTU, shared by every call through it
    dtls: DtlsContexts


@final
@dataclass(slots=True)
class MediaEndpoint:
    """The worker-wide things every session uses."""

    relay: MediaRelay
    clock: Callable[[], float]


@dataclass(slots=True, eq=False)
class LegMedia:
    """One leg's negotiated media state and endpoints."""

    name: str
    policy: LegPolicy
    site: MediaSite
    profile: LegProfile | None = None
    ice: IceCredentials | None = None
    transports: list[BrowserTransport] = field(default_factory=list)
    #: per m-line index: its endpoint on this leg, None while rejected
    streams: list[BrowserStream | PlainStream | None] = field(default_factory=list)
    remote: RemoteDescription | None = None
    #: per m-line: the codecs we offered on this leg (our payload types = the offerer's)
    offered: list[tuple[Codec, ...]] = field(default_factory=list)
    #: per m-line: the codecs in effect after the last answer
    negotiated: list[tuple[Codec, ...]] = field(default_factory=list)
    directions: list[Direction] = field(default_factory=list)
    mids: list[str | None] = field(default_factory=list)
    media_kinds: list[str] = field(default_factory=list)
    sdes_keys: list[bytes] = field(default_factory=list)
    setup: Setup | None = None
    bundle: bool = False
    session_id: int = field(default_factory=lambda: secrets.randbelow(2**62))
    session_version: int = 0
    last_written: LegState | None = None

    @property
    def webrtc(self) -> bool:
        """True when this leg speaks ICE + DTLS-SRTP."""
        return self.profile is LegProfile.WEBRTC


@final
class MediaSession:
    """The media of one call (module docstring)."""

    def __init__(
        self,
        call_id: str,
        endpoint: MediaEndpoint,
        caller: tuple[LegPolicy, MediaSite],
        callee: tuple[LegPolicy, MediaSite],
    ) -> None:
        self.call_id = call_id
        self._endpoint = endpoint
        self.a = LegMedia("a", caller[0], caller[1])
        self.b = LegMedia("b", callee[0], callee[1])
        self.closed = False
        #: the seam's once-a-second tick runs for it (from the first answer on)
        self.ticking = False
        self.created_at = endpoint.clock()

    def other(self, leg: LegMedia) -> LegMedia:
        """The leg that is not ``leg``."""
        return self.b if leg is self.a else self.a

    # -- offer / answer --------------------------------------------------------------------

    def remote_offer(self, leg: LegMedia, sdp: bytes) -> bytes:
        """An offer arrived on ``leg``: return the offer for the other leg (docstring 1).

        Raises:
            SdpNegotiationError: the offer is unreadable, not admitted or has no usable
                stream (status hint 488).
        """
        remote = describe(parse_sdp(sdp))
        profile = remote.profile
        if profile is None:
            raise SdpNegotiationError(
                f"unsupported media transport {remote.streams[0].proto!r} (expected RTP over UDP)"
            )
        admitted = leg.policy.admit
        if admitted is not None and profile not in admitted:
            allowed = ", ".join(sorted(p.value for p in admitted))
            raise SdpNegotiationError(
                f"offer of {profile.value} not admitted (rules allow {allowed})"
            )
        if leg.profile is not None and leg.profile is not profile:
            raise SdpNegotiationError(
                f"re-offer changes the transport from {leg.profile.value} to {profile.value}"
            )
        other = self.other(leg)
        leg.profile = profile
        if other.profile is None:
            other.profile = other.policy.convert_to or profile
        self._restart_ice_if_asked(leg, remote)
        leg.remote = remote
        self._learn_offerer(leg, remote)
        offered = self._offer_codecs(leg, other, remote)
        if not any(offered):
            lists = "; ".join(
                f"m-line {s.index + 1} {s.media}: {format_codecs(s.codecs)}" for s in remote.streams
            )
            raise SdpNegotiationError(
                f"no common codec: offered {lists}; allowed by the rules: "
                f"{self._rules_text(leg, other)}"
            )
        other.offered = list(offered)
        other.media_kinds = [s.media for s in remote.streams]
        other.directions = [s.direction for s in remote.streams]
        usable = [bool(c) for c in offered]
        self._ensure_endpoints(leg, usable, offering=False)
        self._ensure_endpoints(other, usable, offering=True)
        self._link()
        if other.webrtc:
            other.setup = other.setup if other.setup is not None else Setup.ACTPASS
        return write_sdp(self._write(other, [list(c) for c in offered])).to_bytes()

    def remote_answer(self, leg: LegMedia, sdp: bytes) -> bytes:
        """The answer arrived on ``leg``: return the answer for the other leg (docstring 2).

        Raises:
            SdpNegotiationError: unreadable, or it accepted nothing we offered (488).
        """
        accepted = self.learn_answer(leg, sdp)
        return write_sdp(self._write(self.other(leg), accepted)).to_bytes()

    def local_offer(self, leg: LegMedia, profile: LegProfile) -> bytes:
        """An offer of our own on ``leg`` (docstring 4); ``profile`` is the leg's before
        any negotiation.

        Raises:
            SdpNegotiationError: the other leg has not answered our offer there yet, or
                the rules leave no codec to offer (488).
        """
        other = self.other(leg)
        if other.offered and not other.negotiated:
            raise SdpNegotiationError(f"leg {other.name} gave no answer to the offer made there")
        if leg.negotiated:
            codecs = [list(c) for c in leg.negotiated]
            # The other peer's wish, not this peer's last answer: after this peer's hold
            # its late-offer re-INVITE asks for the session as we would have it.
            leg.directions = [_offered_direction(other, i) for i in range(len(codecs))]
        else:
            leg.profile = leg.profile or profile
            other.profile = other.profile or other.policy.convert_to or LegProfile.RTP_AVP
            codecs = [list(self._own_codecs(leg, other))]
            leg.media_kinds = ["audio"]
            leg.directions = [Direction.SENDRECV]
        leg.offered = [tuple(c) for c in codecs]
        self._ensure_endpoints(leg, [bool(c) for c in codecs], offering=True)
        self._link()
        if leg.webrtc:
            leg.setup = leg.setup if leg.setup is not None else Setup.ACTPASS
        return write_sdp(self._write(leg, codecs)).to_bytes()

    def _own_codecs(self, leg: LegMedia, other: LegMedia) -> tuple[Codec, ...]:
        """The audio codecs of a first offer of ours: the first whitelist's known names
        in its order (else ``DEFAULT_OFFER``), filtered by both legs' rules."""
        whitelist = leg.policy.whitelist or other.policy.whitelist
        names = [n.lower() for n in whitelist] if whitelist else list(DEFAULT_OFFER)
        if whitelist and "telephone-event" not in names:
            names.append("telephone-event")
        candidates = [KNOWN_AUDIO[n] for n in dict.fromkeys(names) if n in KNOWN_AUDIO]
        kept = tuple(candidates)
        for policy in (leg.policy, other.policy):
            kept = filter_codecs(kept, whitelist=policy.whitelist, blacklist=policy.blacklist)
        if not has_media_codec(kept):
            raise SdpNegotiationError(
                f"no codec to offer on leg {leg.name}: known {', '.join(KNOWN_AUDIO)}; "
                f"allowed by the rules: {self._rules_text(leg, other)}"
            )
        return kept

    def learn_answer(self, leg: LegMedia, sdp: bytes) -> list[list[Codec]]:
        """The answer arrived on ``leg``: learn it; per m-line, the codecs it accepted.

        Raises:
            SdpNegotiationError: unreadable, or it accepted nothing we offered (488).
        """
        remote = describe(parse_sdp(sdp))
        other = self.other(leg)
        if len(remote.streams) != len(leg.offered):
            raise SdpNegotiationError(
                f"the answer has {len(remote.streams)} m-lines, the offer had {len(leg.offered)}"
            )
        leg.remote = remote
        accepted: list[list[Codec]] = []
        negotiated: list[tuple[Codec, ...]] = []
        for stream, offered in zip(remote.streams, leg.offered, strict=True):
            if stream.rejected or not offered:
                accepted.append([])
                negotiated.append(())
                continue
            chosen = answer_codecs(offered, stream.codecs)
            accepted.append(list(chosen))
            negotiated.append(chosen)
        if not any(accepted):
            raise SdpNegotiationError("the answer accepted no stream of the offer")
        leg.negotiated = negotiated
        other.negotiated = list(negotiated)
        leg.directions = [s.direction for s in remote.streams]
        other.directions = list(leg.directions)
        self._learn_answerer(leg, remote)
        self._ensure_endpoints(other, [bool(c) for c in accepted], offering=False)
        self._disable_rejected(leg, accepted)
        self._map_payload_types(leg, remote, accepted)
        self._link()
        if other.webrtc:
            other.setup = _answer_setup(other.remote)
        self._key_offerer(other)
        return accepted

    def local_answer(self, leg: LegMedia, sdp: bytes) -> bytes | None:
        """Answer a re-offer on ``leg`` alone when only its ICE credentials changed (or
        nothing did); None when the other leg must see it."""
        if leg.remote is None or leg.last_written is None:
            return None
        remote = describe(parse_sdp(sdp))
        if not _same_media(leg.remote, remote):
            return None
        self._restart_ice_if_asked(leg, remote)
        leg.remote = remote
        self._learn_offerer(leg, remote)
        return write_sdp(self._rewrite(leg)).to_bytes()

    # -- the parts ---------------------------------------------------------------------------

    def _rules_text(self, leg: LegMedia, other: LegMedia) -> str:
        parts = []
        for side in (leg, other):
            policy = side.policy
            if policy.whitelist is not None:
                parts.append(f"leg {side.name} whitelist {', '.join(policy.whitelist)}")
            if policy.blacklist is not None:
                parts.append(f"leg {side.name} blacklist {', '.join(policy.blacklist)}")
            if policy.strip_video:
                parts.append(f"leg {side.name} strips video")
        return "; ".join(parts) or "any codec"

    def _offer_codecs(
        self, leg: LegMedia, other: LegMedia, remote: RemoteDescription
    ) -> list[tuple[Codec, ...]]:
        result: list[tuple[Codec, ...]] = []
        for stream in remote.streams:
            if stream.rejected or stream.profile is not remote.profile:
                result.append(())
                continue
            if stream.media == "video" and (leg.policy.strip_video or other.policy.strip_video):
                result.append(())
                continue
            kept = filter_codecs(
                stream.codecs, whitelist=leg.policy.whitelist, blacklist=leg.policy.blacklist
            )
            kept = filter_codecs(
                kept, whitelist=other.policy.whitelist, blacklist=other.policy.blacklist
            )
            result.append(kept if has_media_codec(kept) else ())
        return result

    def _restart_ice_if_asked(self, leg: LegMedia, remote: RemoteDescription) -> None:
        """RFC 8839 4.4.1.1.1: new remote credentials mean an ICE restart; ours change too."""
        if not leg.webrtc or leg.remote is None:
            return
        before = {s.ice for s in leg.remote.streams if not s.rejected}
        after = {s.ice for s in remote.streams if not s.rejected}
        if before == after:
            return
        leg.ice = IceCredentials.generate()
        for transport in leg.transports:
            transport.ice.restart(leg.ice, None)

    def _learn_offerer(self, leg: LegMedia, remote: RemoteDescription) -> None:
        """What an offer tells about its sender: mids, bundling, addresses, ICE, DTLS role."""
        leg.mids = [s.mid for s in remote.streams]
        leg.media_kinds = [s.media for s in remote.streams]
        if leg.webrtc:
            leg.bundle = bool(remote.bundle)
            leg.setup = _answer_setup(remote)
        self._learn_peer(leg, remote)

    def _learn_answerer(self, leg: LegMedia, remote: RemoteDescription) -> None:
        if leg.webrtc:
            # RFC 5763 5: the answerer's active means it is the DTLS client.
            answered = next((s.setup for s in remote.streams if not s.rejected), None)
            # Ours is the other end of it.
            leg.setup = Setup.ACTIVE if answered is Setup.PASSIVE else Setup.PASSIVE
        self._learn_peer(leg, remote)
        self._key_sdes(leg, remote)

    def _learn_peer(self, leg: LegMedia, remote: RemoteDescription) -> None:
        for stream in remote.streams:
            endpoint = leg.streams[stream.index] if stream.index < len(leg.streams) else None
            if isinstance(endpoint, PlainStream) and not stream.rejected:
                address = stream.address
                if address is None:
                    raise SdpNegotiationError(f"m-line {stream.index + 1} has no c= address")
                rtcp_port = stream.rtcp_port or stream.port + 1
                rtcp_address = stream.rtcp_address or address
                hold = address in ("0.0.0.0", "::")
                endpoint.set_remote(
                    None if hold else (address, stream.port),
                    None if hold else (rtcp_address, rtcp_port),
                )
                endpoint.feedback = stream.profile is not None and stream.profile.feedback
        if leg.webrtc:
            credentials = next((s.ice for s in remote.streams if s.ice is not None), None)
            for transport in leg.transports:
                if credentials is not None:
                    transport.ice.set_remote(IceCredentials(*credentials))
            self._start_dtls(leg, remote)

    def _start_dtls(self, leg: LegMedia, remote: RemoteDescription) -> None:
        """Give each transport its DTLS endpoint once the peer's fingerprints and our role
        are known; a re-offer with the same fingerprint keeps the running one."""
        if leg.setup is None or leg.setup is Setup.ACTPASS:
            return
        fingerprints: Sequence[Fingerprint] = next(
            (s.fingerprints for s in remote.streams if s.fingerprints), ()
        )
        if strongest_fingerprint(fingerprints) is None:
            raise SdpNegotiationError("the WebRTC peer sent no usable a=fingerprint")
        role = DtlsRole.CLIENT if leg.setup is Setup.ACTIVE else DtlsRole.SERVER
        pairs = [(f.algorithm, f.value) for f in fingerprints]
        now = self._endpoint.clock()
        for transport in leg.transports:
            if transport.dtls is None:
                transport.start_dtls(DtlsEndpoint(leg.site.dtls, role, pairs), now)
                self._schedule_dtls(leg, transport)

    def _schedule_dtls(self, leg: LegMedia, transport: BrowserTransport) -> None:
        deadline = transport.next_deadline()
        if deadline is None:
            return

        def fire(now: float) -> None:
            if self.closed:
                return
            transport.handle_timeout(now)
            self._schedule_dtls(leg, transport)

        self._endpoint.relay.call_at(deadline, fire, log_context=self._log_context(leg))

    def _log_context(self, leg: LegMedia) -> dict[str, object]:
        """The call and leg on the relay's line for a socket or timer of ``leg`` that fails."""
        return {"call_id": self.call_id, "leg": leg.name}

    def _ensure_endpoints(self, leg: LegMedia, usable: list[bool], *, offering: bool) -> None:
        """Make the sockets of ``leg`` for every usable m-line; keep existing ones."""
        while len(leg.streams) < len(usable):
            leg.streams.append(None)
        relay = self._endpoint.relay
        made_plain = False
        for index, wanted in enumerate(usable):
            if not wanted or leg.streams[index] is not None:
                continue
            if leg.webrtc:
                transport = self._transport_for(leg, index, offering=offering)
                ssrc = secrets.randbits(32) or 1
                rewriter = RtpRewriter(
                    ssrc,
                    8000,
                    initial_sequence=secrets.randbits(16),
                    initial_timestamp=secrets.randbits(32),
                )
                stream = BrowserStream(transport, index, rewriter)
                transport.add_stream(stream)
                leg.streams[index] = stream
            else:
                rtp, rtcp = leg.site.pool.open_pair()
                plain = PlainStream(rtp, rtcp, index)
                plain.latching = leg.policy.latching
                context = self._log_context(leg)
                relay.register(rtp, plain.rtp_datagram, log_context=context)
                relay.register(rtcp, plain.rtcp_datagram, log_context=context)
                leg.streams[index] = plain
                made_plain = True
        if made_plain and leg.remote is not None:
            # New sockets toward a peer whose SDP we already have (a re-offer adding a
            # stream): point them at it.
            self._learn_peer(leg, leg.remote)

    def _transport_for(self, leg: LegMedia, index: int, *, offering: bool) -> BrowserTransport:
        """The transport carrying m-line ``index``: the shared one when bundled."""
        bundled = offering or (
            leg.bundle
            and leg.remote is not None
            and index < len(leg.remote.streams)
            and leg.remote.bundled(leg.remote.streams[index])
        )
        if bundled and leg.transports:
            return leg.transports[0]
        if leg.ice is None:
            leg.ice = IceCredentials.generate()
        remote = None
        if leg.remote is not None:
            credentials = next((s.ice for s in leg.remote.streams if s.ice is not None), None)
            remote = IceCredentials(*credentials) if credentials else None
        sock = leg.site.pool.open_one()
        transport = BrowserTransport(sock, IceLiteAgent(leg.ice, remote))
        self._endpoint.relay.register(sock, transport.datagram, log_context=self._log_context(leg))
        leg.transports.append(transport)
        if leg.remote is not None and leg.setup not in (None, Setup.ACTPASS):
            self._start_dtls(leg, leg.remote)
        return transport

    def _disable_rejected(self, leg: LegMedia, accepted: list[list[Codec]]) -> None:
        for index, codecs in enumerate(accepted):
            if codecs:
                continue
            for side in (leg, self.other(leg)):
                if index < len(side.streams):
                    endpoint = side.streams[index]
                    if endpoint is not None:
                        endpoint.peer = None

    def _map_payload_types(
        self, leg: LegMedia, remote: RemoteDescription, accepted: list[list[Codec]]
    ) -> None:
        """Our payload types are the offerer's; where the answerer renumbered a codec,
        packets are renumbered both ways."""
        other = self.other(leg)
        for stream, codecs in zip(remote.streams, accepted, strict=True):
            theirs = {c.key: c.payload_type for c in stream.codecs}
            outgoing = {
                c.payload_type: theirs[c.key]
                for c in codecs
                if c.key in theirs and theirs[c.key] != c.payload_type
            }
            endpoint = leg.streams[stream.index] if stream.index < len(leg.streams) else None
            if isinstance(endpoint, PlainStream):
                endpoint.payload_type_map = outgoing
            elif isinstance(endpoint, BrowserStream):
                endpoint.rewriter.payload_type_map = outgoing
            back = other.streams[stream.index] if stream.index < len(other.streams) else None
            incoming = {theirs_pt: ours for ours, theirs_pt in outgoing.items()}
            if isinstance(back, BrowserStream):
                back.rewriter.payload_type_map = incoming
            elif isinstance(back, PlainStream):
                back.payload_type_map = incoming
            media = next(
                (c for c in codecs if c.repairs is None and not c.is_telephone_event), None
            )
            for side in (leg, other):
                endpoint_of = (
                    side.streams[stream.index] if stream.index < len(side.streams) else None
                )
                if isinstance(endpoint_of, BrowserStream):
                    endpoint_of.payload_types = frozenset(c.payload_type for c in codecs)
                    if media is not None:
                        endpoint_of.rewriter.set_clock_rate(media.clock_rate)
                    endpoint_of.transport.reindex()

    def _key_sdes(self, leg: LegMedia, remote: RemoteDescription) -> None:
        """SDES (RFC 4568): our key for sending, the peer's from its a=crypto for receiving."""
        if leg.profile is None or not leg.profile.srtp or leg.webrtc:
            return
        for stream in remote.streams:
            endpoint = leg.streams[stream.index] if stream.index < len(leg.streams) else None
            if not isinstance(endpoint, PlainStream) or stream.rejected:
                continue
            chosen = _supported_crypto(stream.crypto)
            if chosen is None:
                raise SdpNegotiationError(
                    f"m-line {stream.index + 1}: no a=crypto with a suite we support"
                )
            crypto, profile = chosen
            ours = self._sdes_key(leg, stream.index, profile)
            endpoint.srtp = SrtpSession(profile, ours, crypto.key_salt())

    def _key_offerer(self, leg: LegMedia) -> None:
        if leg.remote is not None:
            self._key_sdes(leg, leg.remote)

    def _sdes_key(self, leg: LegMedia, index: int, profile: SrtpProfile) -> bytes:
        while len(leg.sdes_keys) <= index:
            leg.sdes_keys.append(b"")
        # A suite the peer chose with another key length needs a key of that length.
        if len(leg.sdes_keys[index]) != profile.key_length + profile.salt_length:
            leg.sdes_keys[index] = new_master_key(profile)
        return leg.sdes_keys[index]

    def _link(self) -> None:
        """Point each stream at the other leg's stream of the same m-line."""
        for index in range(max(len(self.a.streams), len(self.b.streams))):
            one = self.a.streams[index] if index < len(self.a.streams) else None
            two = self.b.streams[index] if index < len(self.b.streams) else None
            if one is not None and two is not None:
                one.peer, two.peer = two, one

    # -- writing SDP from a leg's state ------------------------------------------------------

    def _write(self, leg: LegMedia, codecs: list[list[Codec]]) -> LegState:
        streams: list[StreamState] = []
        kinds = leg.media_kinds
        for index, chosen in enumerate(codecs):
            endpoint = leg.streams[index] if index < len(leg.streams) else None
            media = kinds[index] if index < len(kinds) else "audio"
            mid = self._mid(leg, index)
            if not chosen or endpoint is None:
                formats = self._rejected_formats(leg, index)
                streams.append(
                    StreamState(media, 0, (), Direction.INACTIVE, mid=mid, formats=formats)
                )
                continue
            direction = leg.directions[index] if index < len(leg.directions) else Direction.SENDRECV
            if isinstance(endpoint, BrowserStream):
                # The stream is re-originated (our SSRC and cname), but the sender's msid
                # is passed on so that a browser on the other side groups its tracks as
                # they were sent (lip sync of one sender's audio and video).
                ssrc = endpoint.rewriter.ssrc
                label = f"rtcgw-{leg.session_id:x}"
                msid = _sender_msid(self.other(leg), index) or f"{label} {media}{index}"
                extra = (
                    Attribute("msid", msid),
                    Attribute("ssrc", f"{ssrc} cname:{label}"),
                )
                streams.append(
                    StreamState(
                        media,
                        endpoint.transport.port,
                        tuple(chosen),
                        direction,
                        mid=mid,
                        extra=extra,
                    )
                )
            else:
                crypto: tuple[Crypto, ...] = ()
                if leg.profile is not None and leg.profile.srtp:
                    tag, profile = _sdes_choice(leg.remote, index)
                    key = self._sdes_key(leg, index, profile)
                    crypto = (Crypto.inline(tag, profile.sdes_name or "", key),)
                streams.append(
                    StreamState(
                        media,
                        endpoint.rtp_port,
                        tuple(chosen),
                        direction,
                        mid=mid if leg.profile is not LegProfile.RTP_AVP else None,
                        rtcp_port=endpoint.rtcp_port,
                        crypto=crypto,
                    )
                )
        return self._finish(leg, streams)

    def _rewrite(self, leg: LegMedia) -> LegState:
        """Leg ``leg``'s last SDP again, with what changed since (ICE credentials)."""
        previous = leg.last_written
        assert previous is not None
        return self._finish(leg, list(previous.streams))

    def _finish(self, leg: LegMedia, streams: list[StreamState]) -> LegState:
        profile = leg.profile or LegProfile.RTP_AVP
        address = leg.site.advertised[0]
        webrtc = profile is LegProfile.WEBRTC
        if webrtc and leg.ice is None:
            leg.ice = IceCredentials.generate()
        state = LegState(
            profile=profile,
            address=address,
            session_id=leg.session_id,
            session_version=leg.session_version,
            streams=tuple(streams),
            ice=(leg.ice.ufrag, leg.ice.pwd) if webrtc and leg.ice else None,
            candidate_addresses=leg.site.advertised if webrtc else (),
            fingerprint=self._fingerprint(leg) if webrtc else None,
            setup=leg.setup if webrtc else None,
            rtcp_mux=webrtc,
            rtcp_feedback=leg.policy.rtcp_feedback or webrtc,
            bundle=webrtc and (leg.bundle or len(leg.transports) == 1),
        )
        if leg.last_written is not None and state != leg.last_written:
            leg.session_version += 1
            state = replace(state, session_version=leg.session_version)
        leg.last_written = state
        return state

    def _fingerprint(self, leg: LegMedia) -> Fingerprint:
        contexts = leg.site.dtls
        return Fingerprint(contexts.fingerprint_algorithm, contexts.fingerprint_value)

    def _mid(self, leg: LegMedia, index: int) -> str | None:
        if index < len(leg.mids) and leg.mids[index] is not None:
            return leg.mids[index]
        if leg.webrtc:
            while len(leg.mids) <= index:
                leg.mids.append(None)
            leg.mids[index] = str(index)
            return leg.mids[index]
        return None

    def _rejected_formats(self, leg: LegMedia, index: int) -> tuple[str, ...]:
        """RFC 3264 6: a rejected m-line still lists a format; echo the offer's first."""
        for side in (leg, self.other(leg)):
            if side.remote is not None and index < len(side.remote.streams):
                return side.remote.streams[index].formats[:1] or ("0",)
        return ("0",)

    # -- life cycle ----------------------------------------------------------------------------

    def counters(self) -> list[tuple[str, int, StreamCounters]]:
        """``(leg, m-line index, counters)`` of every stream, for figures and timeouts."""
        rows = []
        for leg in (self.a, self.b):
            for index, endpoint in enumerate(leg.streams):
                if endpoint is not None:
                    rows.append((leg.name, index, endpoint.counters))
        return rows

    def last_activity(self) -> float:
        """When a packet last arrived on any stream (the session's start if none did)."""
        latest = self.created_at
        for _, _, counters in self.counters():
            latest = max(latest, counters.last_in_at)
        return latest

    def sockets(self) -> list[socket.socket]:
        """Every socket the session holds."""
        result: list[socket.socket] = []
        for leg in (self.a, self.b):
            result.extend(t.sock for t in leg.transports)
            for endpoint in leg.streams:
                if isinstance(endpoint, PlainStream):
                    result.extend((endpoint.rtp_sock, endpoint.rtcp_sock))
        return result

    def close(self) -> None:
        """Release every socket; timers find the session closed."""
        if self.closed:
            return
        self.closed = True
        for sock in self.sockets():
            self._endpoint.relay.unregister(sock)


def _answer_setup(remote: RemoteDescription | None) -> Setup:
    """Our a=setup answering ``remote``'s offer (RFC 5763 5, RFC 8842 5.3: passive to
    actpass and active, active to passive)."""
    offered = None
    if remote is not None:
        offered = next((s.setup for s in remote.streams if not s.rejected), None)
    return Setup.ACTIVE if offered is Setup.PASSIVE else Setup.PASSIVE


def _offered_direction(other: LegMedia, index: int) -> Direction:
    """The direction of m-line ``index`` in an offer of ours made from negotiated state:
    sendonly while the other leg's peer only sends (its own hold), else sendrecv."""
    remote = other.remote
    streams = remote.streams if remote is not None else ()
    if index < len(streams) and streams[index].direction is Direction.SENDONLY:
        return Direction.SENDONLY
    return Direction.SENDRECV


def _sender_msid(sender: LegMedia, index: int) -> str | None:
    remote = sender.remote
    if remote is None or index >= len(remote.streams):
        return None
    return remote.streams[index].msid


def _sdes_choice(remote: RemoteDescription | None, index: int) -> tuple[int, SrtpProfile]:
    """The tag and suite of our a=crypto on m-line ``index``: the peer's choice, else ours.

    RFC 4568 section 7.1.2: an answer names the tag and suite of the offered line it
    accepts; an offer (or a re-offer after our own) carries our preferred suite, tag 1.
    """
    if remote is not None and index < len(remote.streams):
        chosen = _supported_crypto(remote.streams[index].crypto)
        if chosen is not None:
            return chosen[0].tag, chosen[1]
    return 1, SDES_PROFILE


def _supported_crypto(lines: Sequence[Crypto]) -> tuple[Crypto, SrtpProfile] | None:
    for crypto in lines:
        profile = SrtpProfile.from_sdes_name(crypto.suite)
        if profile is not None:
            return crypto, profile
    return None


def _same_media(before: RemoteDescription, after: RemoteDescription) -> bool:
    """True when ``after`` changes nothing but ICE credentials (and the o= version)."""
    if len(before.streams) != len(after.streams) or before.bundle != after.bundle:
        return False
    for one, two in zip(before.streams, after.streams, strict=True):
        if (
            one.port != two.port
            or one.codecs != two.codecs
            or one.direction != two.direction
            or one.mid != two.mid
            or one.fingerprints != two.fingerprints
            or one.setup != two.setup
            or one.proto != two.proto
        ):
            return False
    return True
