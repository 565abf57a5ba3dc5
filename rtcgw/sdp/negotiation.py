"""Offer/answer (RFC 3264) as the gateway needs it: what a peer's SDP says, read once.

A B2BUA that anchors media never forwards a peer's SDP: it reads each offer or answer into a
``RemoteDescription`` (per m-line: profile, address and ports, codecs, direction, mid, ICE
credentials, DTLS fingerprints and setup role, SDES keys, RTCP multiplexing) and writes its
own SDP for the other leg from that leg's state (``rtcgw.sdp.writer``). This module holds
the reading and the codec choices of an answer; it keeps no state and does no I/O.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from rtcgw.sdp.attributes import (
    Candidate,
    Crypto,
    Direction,
    Fingerprint,
    Setup,
    bundle_groups,
    direction_of,
    fingerprints_of,
    ice_credentials_of,
    rtcp_of,
    setup_of,
)
from rtcgw.sdp.codecs import Codec, codecs_of, format_codecs, has_media_codec
from rtcgw.sdp.errors import SdpError, SdpNegotiationError
from rtcgw.sdp.model import Attribute, MediaSection, SessionDescription
from rtcgw.sdp.writer import LegProfile

__all__ = [
    "RemoteDescription",
    "RemoteStream",
    "answer_codecs",
    "describe",
]


@dataclass(frozen=True, slots=True)
class RemoteStream:
    """One m-line of a peer's SDP, as far as the gateway uses it."""

    index: int
    media: str
    port: int
    proto: str
    profile: LegProfile | None
    address: str | None
    rtcp_port: int | None
    rtcp_address: str | None
    rtcp_mux: bool
    codecs: tuple[Codec, ...]
    formats: tuple[str, ...]
    direction: Direction
    mid: str | None
    ice: tuple[str, str] | None
    fingerprints: tuple[Fingerprint, ...]
    setup: Setup | None
    crypto: tuple[Crypto, ...]
    candidates: tuple[Candidate, ...]
    #: the sender's SSRCs (a=ssrc), which BUNDLE demultiplexing may use
    ssrcs: tuple[int, ...]
    #: a=extmap lines, kept for the answer's echo toward the same peer
    extmaps: tuple[Attribute, ...]
    #: the sender's a=msid (RFC 8830: stream and track id), passed on to the other leg
    msid: str | None = None

    @property
    def rejected(self) -> bool:
        """Port 0: the stream is declined or disabled (RFC 3264 section 6)."""
        return self.port == 0


@dataclass(frozen=True, slots=True)
class RemoteDescription:
    """A peer's offer or answer, read once."""

    session_id: str
    session_version: str
    streams: tuple[RemoteStream, ...]
    #: mids of the first BUNDLE group (RFC 8843), empty when the peer does not bundle
    bundle: tuple[str, ...]
    ice_lite: bool

    @property
    def profile(self) -> LegProfile | None:
        """The profile of the first accepted m-line (a peer uses one kind for all)."""
        for stream in self.streams:
            if not stream.rejected:
                return stream.profile
        return self.streams[0].profile if self.streams else None

    def bundled(self, stream: RemoteStream) -> bool:
        """True when ``stream`` is in the BUNDLE group."""
        return stream.mid is not None and stream.mid in self.bundle


def describe(sdp: SessionDescription) -> RemoteDescription:
    """Read ``sdp`` into a ``RemoteDescription``.

    Raises:
        SdpNegotiationError: no m-line, or an attribute the gateway relies on is malformed
            (named in the message).
    """
    if not sdp.media:
        raise SdpNegotiationError("the SDP has no m-line")
    groups = bundle_groups(sdp)
    origin = sdp.origin
    streams = tuple(_stream(index, section, sdp) for index, section in enumerate(sdp.media))
    return RemoteDescription(
        session_id=origin.session_id,
        session_version=origin.session_version,
        streams=streams,
        bundle=groups[0] if groups else (),
        ice_lite=sdp.has("ice-lite"),
    )


def _stream(index: int, section: MediaSection, sdp: SessionDescription) -> RemoteStream:
    where = f"m-line {index + 1} ({section.media})"
    try:
        connection = section.connection or sdp.connection
        rtcp = rtcp_of(section)
        candidates = tuple(Candidate.from_sdp(v) for v in section.values("candidate"))
        crypto = tuple(Crypto.from_sdp(v) for v in section.values("crypto"))
        ssrcs = _ssrcs(section)
        stream = RemoteStream(
            index=index,
            media=section.media,
            port=section.port,
            proto=section.proto,
            profile=LegProfile.of_proto(section.proto),
            address=connection.address if connection else None,
            rtcp_port=rtcp[0] if rtcp else None,
            rtcp_address=rtcp[1] if rtcp else None,
            rtcp_mux=section.has("rtcp-mux"),
            codecs=codecs_of(section),
            formats=section.formats,
            direction=direction_of(section, sdp),
            mid=section.mid,
            ice=ice_credentials_of(section, sdp),
            fingerprints=fingerprints_of(section, sdp),
            setup=setup_of(section, sdp),
            crypto=crypto,
            candidates=candidates,
            ssrcs=ssrcs,
            extmaps=tuple(a for a in section.attributes if a.name == "extmap"),
            msid=_msid(section),
        )
    except SdpError as exc:
        raise SdpNegotiationError(f"{where}: {exc}") from None
    return stream


def _msid(section: MediaSection) -> str | None:
    """The m-line's msid: its a=msid, else the msid of its first a=ssrc (older Chrome)."""
    value = section.value("msid")
    if value:
        return value
    for ssrc in section.values("ssrc"):
        _, _, attribute = ssrc.partition(" ")
        if attribute.startswith("msid:") and len(attribute) > len("msid:"):
            return attribute[len("msid:") :]
    return None


def _ssrcs(section: MediaSection) -> tuple[int, ...]:
    seen: list[int] = []
    for value in section.values("ssrc"):
        token = value.split(" ", 1)[0]
        if token.isdigit() and int(token) not in seen:
            seen.append(int(token))
    return tuple(seen)


def answer_codecs(offered: Sequence[Codec], answered: Sequence[Codec]) -> tuple[Codec, ...]:
    """The offerer's codecs (its payload types) that the answer accepted, in the answer's order.

    RFC 3264 section 6.1: the answer lists a subset of the offer; a peer may renumber a
    dynamic payload type, so codecs are matched by name, rate and channels, then by number.

    Raises:
        SdpNegotiationError: the answer accepted none of the offered media codecs.
    """
    by_key: dict[tuple[str, int, int], Codec] = {}
    for codec in offered:
        by_key.setdefault(codec.key, codec)
    chosen: list[Codec] = []
    for codec in answered:
        match = by_key.get(codec.key)
        if match is None or match in chosen:
            continue
        chosen.append(match)
    if not has_media_codec(chosen):
        raise SdpNegotiationError(
            f"no common codec: offered {format_codecs(offered)}; answered {format_codecs(answered)}"
        )
    # A repair codec only makes sense with the codec it repairs.
    kept_types = {c.payload_type for c in chosen}
    return tuple(c for c in chosen if c.repairs is None or c.repairs in kept_types)
