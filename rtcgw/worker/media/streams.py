"""The packet paths of one call: browser transports and streams, SIP-side RTP streams.

Two kinds of endpoint face the two kinds of peer:

- ``BrowserTransport``: one UDP socket toward a WebRTC peer, carrying one m-line or a whole
  BUNDLE group with RTP and RTCP multiplexed (RFC 8843, RFC 5761). It demultiplexes by the
  first byte (RFC 7983): STUN goes to the ICE-lite agent, DTLS to the DTLS endpoint, SRTP and
  SRTCP are decrypted and routed to a ``BrowserStream`` by SSRC, else by payload type.
- ``PlainStream``: an RTP socket and an RTCP socket toward a SIP peer for one m-line, plain
  RTP or SDES-SRTP, with symmetric-RTP latching when the rules ask for it.

Each stream has a ``peer``: the stream of the other leg at the same m-line index, whose
``send_rtp`` / ``send_rtcp`` takes a plain packet and sends it the way its own peer needs.

Invariants (DESIGN.md section 5): media from the browser is accepted only from an
ICE-validated address and only once DTLS verified the fingerprint and keyed SRTP; nothing
is sent toward a browser before ICE selected its address and SRTP keys exist. Every drop is
counted by reason. These methods run once per packet: they avoid allocation and lookups
beyond what the decision needs, and never raise.

Hot-path shape: at 20,000 packets a second per worker the interpreter's frames and attribute
lookups cost more than the SRTP cipher, so the steady state of each direction (SRTP from the
browser's selected address to a SIP peer without a tap; plain RTP from the SIP peer to a keyed
browser) runs in as few frames as possible: classification by the first bytes, decryption,
routing and counting are inlined in ``BrowserTransport.datagram`` and ``PlainStream``'s
handlers, attributes are read once into locals, and sends call ``sendto`` directly. Every
other case (first packet of a new SSRC, drops, STUN, DTLS, RTCP) leaves the fast path for
the general methods below, which count and decide exactly as the fast path would.
"""

from __future__ import annotations

import enum
import socket
from dataclasses import dataclass, field
from typing import Protocol, final

from rtcgw.media.demux import PacketKind, classify
from rtcgw.media.dtls import DtlsEndpoint, DtlsRole, DtlsState
from rtcgw.media.errors import SrtpAuthError, SrtpError, SrtpReplayError
from rtcgw.media.ice_lite import IceLiteAgent, IceVerdict
from rtcgw.media.rtcp import rewrite_rtcp_for_receiver, rtcp_packets_untrusted
from rtcgw.media.rtp import RtpRewriter, rtp_payload_offset_untrusted
from rtcgw.media.srtp import SrtpSession

__all__ = [
    "BrowserStream",
    "BrowserTransport",
    "Drop",
    "PlainStream",
    "RtpTap",
    "StreamCounters",
    "StreamSink",
]

Address = tuple[str, int]

#: DTLS datagrams kept while the peer's fingerprint is not known yet (its answer is on the
#: way through signaling while its ClientHello already arrived); a flight is a few.
PENDING_DTLS_LIMIT = 8


class Drop(enum.Enum):
    """Why a packet was dropped (a bounded label for metrics and logs)."""

    UNVALIDATED_SOURCE = "unvalidated_source"  #: not from an ICE-validated address
    UNEXPECTED_SOURCE = "unexpected_source"  #: plain RTP from an address other than the latched one
    SRTP_AUTH = "srtp_auth"  #: SRTP/SRTCP authentication failed
    SRTP_REPLAY = "srtp_replay"  #: SRTP/SRTCP index replayed or too old
    MALFORMED = "malformed"  #: not a packet of any protocol we carry here
    NOT_READY = "not_ready"  #: no keys or no selected address yet toward that peer
    NO_STREAM = "no_stream"  #: no stream of the call takes it (rejected m-line, unknown SSRC/PT)
    NO_SESSION = "no_session"  #: the stream has no other leg to relay to (not answered, closing)
    SEND_FAILED = "send_failed"  #: the socket refused it (buffer full, no route)
    REPLACED_BY_DTMF = "replaced_by_dtmf"  #: audio held back while RFC 4733 digits are sent


@dataclass(slots=True)
class StreamCounters:
    """Per-stream, per-direction figures (plain ints: bumped once per packet)."""

    packets_in: int = 0
    bytes_in: int = 0
    packets_out: int = 0
    bytes_out: int = 0
    rtcp_in: int = 0
    rtcp_out: int = 0
    first_in_at: float | None = None
    first_out_at: float | None = None
    last_in_at: float = 0.0
    dropped: dict[Drop, int] = field(default_factory=dict)

    def drop(self, reason: Drop) -> None:
        """Count one dropped packet."""
        self.dropped[reason] = self.dropped.get(reason, 0) + 1


class StreamSink(Protocol):
    """Where the other leg's stream hands plain RTP/RTCP to be sent to this stream's peer."""

    def send_rtp(self, packet: bytes, now: float) -> None:
        """Send a plain RTP packet toward this stream's peer."""
        ...

    def send_rtcp(self, compound: bytes, now: float) -> None:
        """Send a plain RTCP compound packet toward this stream's peer."""
        ...


class RtpTap(Protocol):
    """What a SIP-side stream lets see its RTP: DTMF in both directions (``dtmf.py``)."""

    def outgoing(self, packet: bytes, now: float) -> bytes | None:
        """The packet to send to the SIP peer instead of ``packet``, None to hold it back."""
        ...

    def incoming(self, packet: bytes, now: float) -> None:
        """Look at a plain RTP packet from the SIP peer (it is relayed anyway)."""
        ...


def _send(sock: socket.socket, data: bytes, destination: Address) -> bool:
    try:
        sock.sendto(data, destination)
    except OSError:
        return False
    return True


def _srtp_drop(error: SrtpError) -> Drop:
    """The drop reason of a failed SRTP/SRTCP unprotect."""
    if isinstance(error, SrtpAuthError):
        return Drop.SRTP_AUTH
    if isinstance(error, SrtpReplayError):
        return Drop.SRTP_REPLAY
    return Drop.MALFORMED


@final
class BrowserStream:
    """One m-line of the WebRTC leg, carried by a ``BrowserTransport``."""

    def __init__(self, transport: BrowserTransport, index: int, rewriter: RtpRewriter) -> None:
        self.transport = transport
        self.index = index
        self.rewriter = rewriter
        self.peer: StreamSink | None = None
        self.counters = StreamCounters()
        #: payload types negotiated on this m-line (BUNDLE routing by payload type)
        self.payload_types: frozenset[int] = frozenset()

    def send_rtp(self, packet: bytes, now: float) -> None:
        """Rewrite for continuity, protect, send to the ICE-selected address."""
        transport = self.transport
        srtp = transport.srtp
        destination = transport.destination
        counters = self.counters
        if srtp is None or destination is None:
            counters.drop(Drop.NOT_READY)
            return
        try:
            protected = srtp.protect(self.rewriter.rewrite(packet, now))
        except SrtpError:
            counters.drop(Drop.MALFORMED)
            return
        try:
            transport.sock.sendto(protected, destination)
        except OSError:
            counters.drop(Drop.SEND_FAILED)
            return
        counters.packets_out += 1
        counters.bytes_out += len(protected)
        if counters.first_out_at is None:
            counters.first_out_at = now

    def send_rtcp(self, compound: bytes, now: float) -> None:
        """Rewrite the sender SSRC to ours (and an SR's figures), protect, send."""
        transport = self.transport
        srtp = transport.srtp
        destination = transport.destination
        if srtp is None or destination is None:
            self.counters.drop(Drop.NOT_READY)
            return
        rewritten = rewrite_rtcp_for_receiver(
            compound, sender_ssrc=self.rewriter.ssrc, rewriter=self.rewriter, keep_feedback=True
        )
        if rewritten is None:
            return
        try:
            protected = srtp.protect_rtcp(rewritten)
        except SrtpError:
            self.counters.drop(Drop.MALFORMED)
            return
        if _send(transport.sock, protected, destination):
            self.counters.rtcp_out += 1


@final
class BrowserTransport:
    """One UDP socket toward a WebRTC peer: ICE-lite, DTLS, SRTP, RTCP-mux, BUNDLE."""

    def __init__(self, sock: socket.socket, ice: IceLiteAgent) -> None:
        self.sock = sock
        self.port: int = sock.getsockname()[1]
        self.ice = ice
        self.dtls: DtlsEndpoint | None = None
        self.srtp: SrtpSession | None = None
        #: where media to the browser goes: the ICE-selected address while consent holds
        self.destination: Address | None = None
        self.streams: list[BrowserStream] = []
        #: routing by the SSRC's four bytes as they are on the wire (no int per packet)
        self._by_ssrc: dict[bytes, BrowserStream] = {}
        self._by_payload_type: dict[int, BrowserStream] = {}
        self._pending_dtls: list[tuple[bytes, Address]] = []
        self.stun_counts: dict[IceVerdict, int] = {}
        self.dtls_events: list[str] = []
        #: a DTLS handshake finished or failed since the session last looked
        self.dtls_changed = False

    # -- configuration (signaling side) --------------------------------------------------

    def add_stream(self, stream: BrowserStream) -> None:
        """Carry ``stream`` on this transport."""
        self.streams.append(stream)
        self.reindex()

    def reindex(self) -> None:
        """Rebuild payload-type routing after a negotiation changed the streams' codecs."""
        self._by_payload_type = {}
        for stream in self.streams:
            for payload_type in stream.payload_types:
                self._by_payload_type.setdefault(payload_type, stream)
        self._by_ssrc.clear()

    def start_dtls(self, endpoint: DtlsEndpoint, now: float) -> None:
        """Use ``endpoint`` from now on and feed it what arrived before it existed."""
        self.dtls = endpoint
        pending, self._pending_dtls = self._pending_dtls, []
        if endpoint.role is DtlsRole.CLIENT and self.destination is not None:
            self._flush(endpoint.start(now), self.destination)
        for datagram, source in pending:
            self._on_dtls(datagram, source, now)

    def next_deadline(self) -> float | None:
        """The DTLS retransmission timer, if one runs."""
        dtls = self.dtls
        return None if dtls is None else dtls.next_deadline()

    def handle_timeout(self, now: float) -> None:
        """Retransmit a DTLS flight whose timer fired."""
        dtls = self.dtls
        if dtls is None or self.destination is None:
            return
        self._flush(dtls.handle_timeout(now), self.destination)
        self._after_dtls()

    def check_consent(self, now: float) -> bool:
        """RFC 7675: stop sending once the browser's consent checks stopped; True if lost."""
        if self.destination is not None and self.ice.consent_expired(now):
            self.destination = None
            return True
        return False

    # -- the packet path -------------------------------------------------------------------

    def datagram(self, data: bytes, source: Address, now: float) -> None:
        """One datagram from the socket (the relay's handler)."""
        srtp = self.srtp
        # The steady state inline (see the module docstring): SRTP (classify's RTP test:
        # version 2, not an RTCP packet type, at least a header) from the selected address
        # once keyed, so _decrypt's source and key checks hold, to a stream already routed.
        if (
            srtp is not None
            and source == self.destination
            and len(data) >= 12
            and 127 < data[0] < 192
            and not 191 < data[1] < 224
        ):
            try:
                packet = srtp.unprotect(data)
            except SrtpError as exc:
                self._first_stream_counters().drop(_srtp_drop(exc))
                return
            stream = self._by_ssrc.get(packet[8:12]) if len(packet) >= 12 else None
            if stream is None:
                self._route_srtp(packet, len(data), now)
                return
            counters = stream.counters
            counters.packets_in += 1
            counters.bytes_in += len(data)
            counters.last_in_at = now
            if counters.first_in_at is None:
                counters.first_in_at = now
            peer = stream.peer
            if peer is None:
                counters.drop(Drop.NO_SESSION)
                return
            peer.send_rtp(packet, now)
            return
        kind = classify(data)
        if kind is PacketKind.RTP:
            self._on_srtp(data, source, now)
        elif kind is PacketKind.RTCP:
            self._on_srtcp(data, source, now)
        elif kind is PacketKind.STUN:
            self._on_stun(data, source, now)
        elif kind is PacketKind.DTLS:
            if self.ice.is_validated(source):
                self._on_dtls(data, source, now)
            else:
                self._first_stream_counters().drop(Drop.UNVALIDATED_SOURCE)
        else:
            self._first_stream_counters().drop(Drop.MALFORMED)

    def _decrypt(self, data: bytes, source: Address, *, rtcp: bool) -> bytes | None:
        """The plain packet, or None after counting why it is dropped (the source is not
        ICE-validated, no keys yet, authentication or replay check failed, too short)."""
        srtp = self.srtp
        reason = None
        if source != self.destination and not self.ice.is_validated(source):
            reason = Drop.UNVALIDATED_SOURCE
        elif srtp is None:
            reason = Drop.NOT_READY
        else:
            try:
                packet = srtp.unprotect_rtcp(data) if rtcp else srtp.unprotect(data)
            except SrtpError as exc:
                reason = _srtp_drop(exc)
            else:
                if len(packet) >= (8 if rtcp else 12):
                    return packet
                reason = Drop.MALFORMED
        self._first_stream_counters().drop(reason)
        return None

    def _on_srtp(self, data: bytes, source: Address, now: float) -> None:
        packet = self._decrypt(data, source, rtcp=False)
        if packet is not None:
            self._route_srtp(packet, len(data), now)

    def _route_srtp(self, packet: bytes, size: int, now: float) -> None:
        """Count and relay a decrypted packet of ``size`` bytes on the wire (too short ones
        are malformed); its SSRC is routed to a stream the first time it is seen."""
        if len(packet) < 12:
            self._first_stream_counters().drop(Drop.MALFORMED)
            return
        ssrc = packet[8:12]
        stream = self._by_ssrc.get(ssrc)
        if stream is None:
            stream = self._by_payload_type.get(packet[1] & 0x7F)
            if stream is None:
                if len(self.streams) != 1:
                    self._first_stream_counters().drop(Drop.NO_STREAM)
                    return
                stream = self.streams[0]
            self._by_ssrc[ssrc] = stream
        counters = stream.counters
        counters.packets_in += 1
        counters.bytes_in += size
        counters.last_in_at = now
        if counters.first_in_at is None:
            counters.first_in_at = now
        peer = stream.peer
        if peer is None:
            counters.drop(Drop.NO_SESSION)
            return
        peer.send_rtp(packet, now)

    def _on_srtcp(self, data: bytes, source: Address, now: float) -> None:
        compound = self._decrypt(data, source, rtcp=True)
        if compound is None:
            return
        # The first packet's sender SSRC is the browser's stream it reports for.
        stream = self._by_ssrc.get(compound[4:8])
        if stream is None:
            stream = self.streams[0] if self.streams else None
        if stream is None:
            return
        stream.counters.rtcp_in += 1
        stream.counters.last_in_at = now
        if stream.peer is not None:
            stream.peer.send_rtcp(compound, now)

    def _on_stun(self, data: bytes, source: Address, now: float) -> None:
        result = self.ice.receive_untrusted(data, source, now)
        verdict = result.verdict
        self.stun_counts[verdict] = self.stun_counts.get(verdict, 0) + 1
        if result.reply is not None:
            _send(self.sock, result.reply, source)
        if verdict is IceVerdict.NOMINATED or (
            verdict is IceVerdict.ANSWERED and self.destination is None
        ):
            # Media follows the nominated pair; before a nomination, the first validated
            # address (a controlling agent may nominate late, RFC 8445 8.1.1).
            self.destination = self.ice.selected or source
            dtls = self.dtls
            if dtls is not None and dtls.role is DtlsRole.CLIENT and dtls.state is DtlsState.NEW:
                self._flush(dtls.start(now), self.destination)

    def _on_dtls(self, data: bytes, source: Address, now: float) -> None:
        dtls = self.dtls
        if dtls is None:
            if len(self._pending_dtls) < PENDING_DTLS_LIMIT:
                self._pending_dtls.append((data, source))
            return
        self._flush(dtls.receive_untrusted(data, now), source)
        self._after_dtls()

    def _after_dtls(self) -> None:
        dtls = self.dtls
        if dtls is None:
            return
        if dtls.state is DtlsState.CONNECTED and self.srtp is None:
            self.srtp = dtls.srtp_session()
            self.dtls_changed = True
        elif dtls.state is DtlsState.FAILED and not self.dtls_changed:
            self.dtls_changed = True

    def _flush(self, datagrams: list[bytes], destination: Address) -> None:
        for datagram in datagrams:
            _send(self.sock, datagram, destination)

    def _first_stream_counters(self) -> StreamCounters:
        return self.streams[0].counters if self.streams else _DISCARDED


#: Counters of packets that reached a transport carrying no stream any more.
_DISCARDED = StreamCounters()


@final
class PlainStream:
    """One m-line of the SIP leg: RTP and RTCP sockets, plain RTP or SDES-SRTP."""

    def __init__(self, rtp_sock: socket.socket, rtcp_sock: socket.socket, index: int) -> None:
        self.rtp_sock = rtp_sock
        self.rtcp_sock = rtcp_sock
        self.rtp_port: int = rtp_sock.getsockname()[1]
        self.rtcp_port: int = rtcp_sock.getsockname()[1]
        self.index = index
        self.peer: StreamSink | None = None
        self.counters = StreamCounters()
        #: where RTP/RTCP go: from the peer's SDP, then latched to where it really sends from
        self.remote_rtp: Address | None = None
        self.remote_rtcp: Address | None = None
        #: symmetric RTP (the rules' dialog handling): follow the address the peer sends from
        self.latching = False
        self._latched = False
        self._rtcp_latched = False
        #: SDES-SRTP toward this peer, None for plain RTP
        self.srtp: SrtpSession | None = None
        #: the peer negotiated RTCP feedback (AVPF); else feedback packets are stripped
        self.feedback = False
        #: our payload types -> the ones this peer negotiated, when they differ
        self.payload_type_map: dict[int, int] = {}
        #: sees RTP both ways when DTMF is converted on this stream
        self.tap: RtpTap | None = None

    def set_remote(self, rtp: Address | None, rtcp: Address | None) -> None:
        """The peer's addresses from its SDP (a re-offer may move them)."""
        if rtp != self.remote_rtp:
            self._latched = False
            self._rtcp_latched = False
        self.remote_rtp = rtp
        self.remote_rtcp = rtcp

    def rtp_datagram(self, data: bytes, source: Address, now: float) -> None:
        """An RTP datagram from the SIP peer (the relay's handler)."""
        counters = self.counters
        if source != self.remote_rtp:
            if self.latching and not self._latched:
                self.remote_rtp = source
                self._latched = True
            else:
                counters.drop(Drop.UNEXPECTED_SOURCE)
                return
        elif self.latching:
            self._latched = True
        # A bare 12-byte header (version 2; no padding, extension or CSRC: first byte 0x80)
        # is valid as it stands; only other packets need the full header walk.
        if (len(data) < 12 or data[0] != 0x80) and rtp_payload_offset_untrusted(data) is None:
            counters.drop(Drop.MALFORMED)
            return
        srtp = self.srtp
        if srtp is not None:
            try:
                data = srtp.unprotect(data)
            except SrtpError as exc:
                counters.drop(_srtp_drop(exc))
                return
        counters.packets_in += 1
        counters.bytes_in += len(data)
        counters.last_in_at = now
        if counters.first_in_at is None:
            counters.first_in_at = now
        tap = self.tap
        if tap is not None:
            tap.incoming(data, now)
        peer = self.peer
        if peer is None:
            counters.drop(Drop.NO_SESSION)
            return
        peer.send_rtp(data, now)

    def rtcp_datagram(self, data: bytes, source: Address, now: float) -> None:
        """An RTCP datagram from the SIP peer (the relay's handler)."""
        counters = self.counters
        if source != self.remote_rtcp:
            if self.latching and not self._rtcp_latched:
                self.remote_rtcp = source
                self._rtcp_latched = True
            elif self.remote_rtp is None or source[0] != self.remote_rtp[0]:
                counters.drop(Drop.UNEXPECTED_SOURCE)
                return
        srtp = self.srtp
        if srtp is not None:
            try:
                data = srtp.unprotect_rtcp(data)
            except SrtpError:
                counters.drop(Drop.SRTP_AUTH)
                return
        if rtcp_packets_untrusted(data) is None:
            counters.drop(Drop.MALFORMED)
            return
        counters.rtcp_in += 1
        counters.last_in_at = now
        if self.peer is not None:
            self.peer.send_rtcp(data, now)

    def send_rtp(self, packet: bytes, now: float, *, own: bool = False) -> None:
        """Send an RTP packet to the SIP peer (mapped payload type, SDES if keyed): a
        relayed one through the tap if there is one, one of ours (``own``) directly."""
        tap = self.tap
        if tap is not None and not own:
            tapped = tap.outgoing(packet, now)
            if tapped is None:
                self.counters.drop(Drop.REPLACED_BY_DTMF)
                return
            packet = tapped
        destination = self.remote_rtp
        counters = self.counters
        if destination is None:
            counters.drop(Drop.NOT_READY)
            return
        if self.payload_type_map:
            packet = self._map_payload_type(packet)
        srtp = self.srtp
        if srtp is not None:
            try:
                packet = srtp.protect(packet)
            except SrtpError:
                counters.drop(Drop.MALFORMED)
                return
        try:
            self.rtp_sock.sendto(packet, destination)
        except OSError:
            counters.drop(Drop.SEND_FAILED)
            return
        counters.packets_out += 1
        counters.bytes_out += len(packet)
        if counters.first_out_at is None:
            counters.first_out_at = now

    def send_own_rtp(self, packet: bytes, now: float) -> None:
        """Send an RTP packet we made (DTMF events) to the SIP peer, past the tap."""
        self.send_rtp(packet, now, own=True)

    def _map_payload_type(self, packet: bytes) -> bytes:
        """The packet with our payload type replaced by the one this peer negotiated."""
        mapped = self.payload_type_map.get(packet[1] & 0x7F)
        if mapped is None:
            return packet
        edited = bytearray(packet)
        edited[1] = (edited[1] & 0x80) | mapped
        return bytes(edited)

    def send_rtcp(self, compound: bytes, now: float) -> None:
        """Send an RTCP compound to the SIP peer, without feedback it did not negotiate."""
        destination = self.remote_rtcp
        if destination is None:
            return
        if not self.feedback:
            sender = int.from_bytes(compound[4:8], "big") if len(compound) >= 8 else 0
            stripped = rewrite_rtcp_for_receiver(
                compound, sender_ssrc=sender, rewriter=None, keep_feedback=False
            )
            if stripped is None:
                return
            compound = stripped
        srtp = self.srtp
        if srtp is not None:
            try:
                compound = srtp.protect_rtcp(compound)
            except SrtpError:
                return
        if _send(self.rtcp_sock, compound, destination):
            self.counters.rtcp_out += 1
