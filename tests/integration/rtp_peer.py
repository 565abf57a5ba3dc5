"""A plain-RTP phone for the integration tests: what a SIP phone behind a PBX sends.

``RtpPeer`` lives in the test process (trio). It binds an RTP and an RTCP socket on
loopback, describes them in an RTP/AVP SDP body, sends G.711 tones and RFC 4733 events
with 20 ms pacing from its RTP socket (symmetric RTP, so a latching relay answers to the
address it sees), and records every RTP packet it receives. In echo mode it sends each
packet back to its source unchanged, as sipp's ``rtp_echo`` does, or as another stream
would send it (``echo_as``: a new SSRC, sequence and timestamp jumps). It reads the report
blocks of the RTCP it receives, which tell how the far end received our stream. It does no jitter
buffering, no RTCP reports and no SRTP: it is a probe, not a phone.
"""

from __future__ import annotations

import secrets
import struct
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass

import trio

from tests.integration.tone import (
    ToneError,
    decode_pcma,
    decode_pcmu,
    dominant_frequency,
    encode_pcma,
    encode_pcmu,
    sine_samples,
)

__all__ = ["ReceivedPacket", "ReportBlock", "RtpPeer", "RtpPeerError", "audio_destination"]

#: G.711 at 8 kHz with 20 ms packets (RFC 3551 section 4.5.14: the default ptime).
_RATE = 8000
_PTIME_S = 0.020
_SAMPLES_PER_PACKET = 160
#: RFC 3551 table 4 static payload types, and the usual dynamic one for events.
_STATIC_NAMES = {0: "PCMU/8000", 8: "PCMA/8000", 9: "G722/8000", 18: "G729/8000"}
_TELEPHONE_EVENT = 101
_RTP_HEADER = struct.Struct("!BBHII")


class RtpPeerError(Exception):
    """The RTP phone was asked for something it cannot do, or an SDP it cannot read."""


@dataclass(frozen=True, slots=True)
class ReceivedPacket:
    """One RTP packet as it arrived."""

    #: trio clock time of arrival
    arrival: float
    payload_type: int
    ssrc: int
    seq: int
    timestamp: int
    payload: bytes
    source: tuple[str, int]
    #: RFC 3550 marker bit (first packet of a talkspurt, first packet of an event)
    marker: bool = False


@dataclass(frozen=True, slots=True)
class ReportBlock:
    """One report block of an RTCP SR or RR (RFC 3550 6.4.1): how its sender received
    the stream ``ssrc``."""

    #: trio clock time the compound arrived
    arrival: float
    #: the SSRC of the reporting source
    reporter: int
    #: the SSRC of the stream reported on
    ssrc: int
    fraction_lost: int
    #: cumulative number of packets lost (signed: duplicates can make it negative)
    cumulative_lost: int
    #: extended highest sequence number received (cycles << 16 | highest)
    highest_sequence: int
    jitter: int


_SR, _RR = 200, 201
_REPORT_BLOCK = struct.Struct("!IB3sIIII")


def _report_blocks(compound: bytes, arrival: float) -> list[ReportBlock]:
    """The report blocks of every SR and RR in an RTCP compound (malformed parts end it)."""
    blocks: list[ReportBlock] = []
    at = 0
    while at + 8 <= len(compound):
        first, packet_type, length = struct.unpack_from("!BBH", compound, at)
        end = at + 4 * (length + 1)
        if first >> 6 != 2 or end > len(compound):
            break
        if packet_type in (_SR, _RR):
            reporter = struct.unpack_from("!I", compound, at + 4)[0]
            offset = at + 8 + (20 if packet_type == _SR else 0)
            for _ in range(first & 0x1F):
                if offset + _REPORT_BLOCK.size > end:
                    break
                ssrc, fraction, lost, highest, jitter, _lsr, _dlsr = _REPORT_BLOCK.unpack_from(
                    compound, offset
                )
                cumulative = int.from_bytes(lost, "big", signed=True)
                blocks.append(
                    ReportBlock(arrival, reporter, ssrc, fraction, cumulative, highest, jitter)
                )
                offset += _REPORT_BLOCK.size
        at = end
    return blocks


def _parse_rtp(data: bytes) -> tuple[int, bool, int, int, int, bytes] | None:
    """(payload type, marker, seq, timestamp, ssrc, payload) of an RTP packet, None for
    anything else (RTCP included)."""
    if len(data) < _RTP_HEADER.size or data[0] >> 6 != 2:
        return None
    # RFC 5761 section 4: with rtcp-mux, second bytes 192..223 are RTCP packet types.
    if 192 <= data[1] <= 223:
        return None
    first, second, seq, timestamp, ssrc = _RTP_HEADER.unpack_from(data)
    offset = _RTP_HEADER.size + 4 * (first & 0x0F)  # CSRC list
    if first & 0x10:  # RFC 3550 section 5.3.1: a header extension follows the CSRCs
        if len(data) < offset + 4:
            return None
        offset += 4 + 4 * struct.unpack_from("!H", data, offset + 2)[0]
    end = len(data)
    if first & 0x20:  # padding: the last byte counts the padding bytes
        end -= data[-1]
    if offset > end:
        return None
    return second & 0x7F, bool(second & 0x80), seq, timestamp, ssrc, data[offset:end]


def audio_destination(sdp: str) -> tuple[str, int]:
    """Where an SDP body wants its audio: the c= address (media level first) and the
    port of its first ``m=audio`` line."""
    session_host: str | None = None
    media_host: str | None = None
    port: int | None = None
    in_audio = False
    for line in sdp.splitlines():
        if line.startswith("m="):
            if in_audio:
                break
            in_audio = line.startswith("m=audio ")
            if in_audio:
                fields = line.split()
                if len(fields) < 4 or not fields[1].isdigit():
                    raise RtpPeerError(f"bad audio m-line {line!r} in SDP:\n{sdp}")
                port = int(fields[1])
        elif line.startswith("c="):
            address = line.split()[-1].split("/")[0]
            if in_audio:
                media_host = address
            elif port is None:
                session_host = address
    host = media_host or session_host
    if port is None or host is None:
        raise RtpPeerError(f"no audio address in SDP:\n{sdp}")
    return host, port


class RtpPeer:
    """A plain RTP endpoint on loopback: see the module docstring."""

    def __init__(
        self, rtp: trio.socket.SocketType, rtcp: trio.socket.SocketType, *, echo: bool
    ) -> None:
        self._rtp = rtp
        self._rtcp = rtcp
        self.echo = echo
        self.host, self.port = rtp.getsockname()[:2]
        self.rtcp_port: int = rtcp.getsockname()[1]
        #: every RTP packet received, in arrival order
        self.received: list[ReceivedPacket] = []
        #: every RTCP datagram received (on either socket), with its source
        self.rtcp_received: list[tuple[bytes, tuple[str, int]]] = []
        #: datagrams on the RTP socket that were neither RTP nor RTCP
        self.garbage = 0
        #: trio clock time of arrival of each entry of ``rtcp_received``
        self.rtcp_arrivals: list[float] = []
        #: what echo mode changes in each packet it sends back (``echo_as``)
        self._echo_ssrc: int | None = None
        self._echo_seq_shift = 0
        self._echo_ts_shift = 0
        #: RTP packets sent back in echo mode
        self.echoed = 0
        self.session_id = secrets.randbelow(1 << 31)
        self._arrived = trio.Event()

    @classmethod
    @asynccontextmanager
    async def open(cls, *, host: str = "127.0.0.1", echo: bool = False) -> AsyncIterator[RtpPeer]:
        """Bind an RTP socket on ``host`` port 0 and an RTCP socket (port + 1 when free,
        any port otherwise), receive until the block ends, then close both."""
        rtp = trio.socket.socket(trio.socket.AF_INET, trio.socket.SOCK_DGRAM)
        rtcp = trio.socket.socket(trio.socket.AF_INET, trio.socket.SOCK_DGRAM)
        with rtp, rtcp:
            await rtp.bind((host, 0))
            try:
                await rtcp.bind((host, rtp.getsockname()[1] + 1))
            except OSError:
                await rtcp.bind((host, 0))
            peer = cls(rtp, rtcp, echo=echo)
            async with trio.open_nursery() as nursery:
                nursery.start_soon(peer._receive_rtp)
                nursery.start_soon(peer._receive_rtcp)
                try:
                    yield peer
                finally:
                    nursery.cancel_scope.cancel()

    # -- description -----------------------------------------------------------------------

    def sdp(
        self, *, payload_types: Sequence[int] = (0, 8, 101), direction: str = "sendrecv"
    ) -> str:
        """This phone's SDP offer or answer: one RTP/AVP audio stream on our RTP port."""
        lines = [
            "v=0",
            f"o=- {self.session_id} 1 IN IP4 {self.host}",
            "s=rtp-peer",
            f"c=IN IP4 {self.host}",
            "t=0 0",
            f"m=audio {self.port} RTP/AVP {' '.join(str(pt) for pt in payload_types)}",
        ]
        for pt in payload_types:
            if pt in _STATIC_NAMES:
                lines.append(f"a=rtpmap:{pt} {_STATIC_NAMES[pt]}")
            elif pt == _TELEPHONE_EVENT:
                lines += [f"a=rtpmap:{pt} telephone-event/8000", f"a=fmtp:{pt} 0-16"]
            else:
                raise RtpPeerError(f"payload type {pt} is neither static G.711/G.722/G.729 nor 101")
        if self.rtcp_port != self.port + 1:
            # RFC 3605: say where RTCP is when it is not on the next port.
            lines.append(f"a=rtcp:{self.rtcp_port}")
        lines += ["a=ptime:20", f"a={direction}"]
        return "\r\n".join(lines) + "\r\n"

    # -- sending ---------------------------------------------------------------------------

    def echo_as(self, *, ssrc: int | None = None, seq_jump: int = 0, ts_jump: int = 0) -> None:
        """Make echo mode send packets as another stream would: with ``ssrc`` (None keeps
        each packet's own) and sequence numbers and timestamps moved forward by a further
        ``seq_jump`` and ``ts_jump``, as a phone that resumes after a long hold or starts
        a new stream. Jumps add up over calls; the packets received stay as they came."""
        if ssrc is not None and not 0 <= ssrc <= 0xFFFFFFFF:
            raise RtpPeerError(f"SSRC {ssrc} is not 0..2**32-1")
        if ssrc is not None:
            self._echo_ssrc = ssrc
        self._echo_seq_shift = (self._echo_seq_shift + seq_jump) & 0xFFFF
        self._echo_ts_shift = (self._echo_ts_shift + ts_jump) & 0xFFFFFFFF

    def _echoed(self, data: bytes) -> bytes:
        """``data`` as echo mode sends it back (``echo_as``); RTCP and garbage unchanged."""
        if self._echo_ssrc is None and not self._echo_seq_shift and not self._echo_ts_shift:
            return data
        if _parse_rtp(data) is None:
            return data
        first, second, seq, timestamp, ssrc = _RTP_HEADER.unpack_from(data)
        header = _RTP_HEADER.pack(
            first,
            second,
            (seq + self._echo_seq_shift) & 0xFFFF,
            (timestamp + self._echo_ts_shift) & 0xFFFFFFFF,
            ssrc if self._echo_ssrc is None else self._echo_ssrc,
        )
        return header + data[_RTP_HEADER.size :]

    async def send_tone(
        self,
        to: tuple[str, int],
        *,
        hz: float = 440.0,
        payload_type: int = 0,
        seconds: float = 3.0,
        ssrc: int | None = None,
    ) -> int:
        """Send a G.711 sine (PCMU for payload type 0, PCMA for 8) to ``to``, one 20 ms
        packet at a time in real time. Returns the number of packets sent."""
        if payload_type == 0:
            encode = encode_pcmu
        elif payload_type == 8:
            encode = encode_pcma
        else:
            raise RtpPeerError(
                f"send_tone speaks PCMU (0) and PCMA (8), not payload type {payload_type}"
            )
        ssrc = secrets.randbits(32) if ssrc is None else ssrc
        seq = secrets.randbits(16)
        timestamp = secrets.randbits(32)
        count = round(seconds / _PTIME_S)
        start = trio.current_time()
        for index in range(count):
            samples = sine_samples(
                hz, _RATE, _SAMPLES_PER_PACKET, start=index * _SAMPLES_PER_PACKET
            )
            header = _RTP_HEADER.pack(
                0x80,
                # RFC 3551 section 4.1: the marker bit flags the first packet of a talkspurt.
                (0x80 if index == 0 else 0) | payload_type,
                (seq + index) & 0xFFFF,
                (timestamp + index * _SAMPLES_PER_PACKET) & 0xFFFFFFFF,
                ssrc,
            )
            await trio.sleep_until(start + index * _PTIME_S)
            await self._rtp.sendto(header + encode(samples), to)
        return count

    async def send_event(
        self,
        to: tuple[str, int],
        event: int,
        *,
        duration_ms: int = 100,
        payload_type: int = _TELEPHONE_EVENT,
        ssrc: int | None = None,
    ) -> int:
        """Send one RFC 4733 telephone event (0-9 digits, 10 ``*``, 11 ``#``, 12-15 A-D):
        an update every 20 ms, then the end packet three times. Returns packets sent."""
        if not 0 <= event <= 255:
            raise RtpPeerError(f"telephone event {event} is not 0..255")
        ssrc = secrets.randbits(32) if ssrc is None else ssrc
        seq = secrets.randbits(16)
        timestamp = secrets.randbits(32)
        steps = max(1, duration_ms // 20)
        volume = 10
        sent = 0
        start = trio.current_time()
        for step in range(1, steps + 3):
            end = step >= steps
            duration = min(step, steps) * _SAMPLES_PER_PACKET
            # RFC 4733 section 2.3: all packets of one event share its start timestamp,
            # the first carries the marker bit, and the end packet is sent three times.
            header = _RTP_HEADER.pack(
                0x80,
                (0x80 if step == 1 else 0) | payload_type,
                (seq + sent) & 0xFFFF,
                timestamp,
                ssrc,
            )
            body = struct.pack("!BBH", event, (0x80 if end else 0) | volume, duration)
            await trio.sleep_until(start + (step - 1) * _PTIME_S)
            await self._rtp.sendto(header + body, to)
            sent += 1
        return sent

    # -- what arrived ----------------------------------------------------------------------

    def packets(self, payload_type: int | None = None) -> list[ReceivedPacket]:
        """The RTP packets received so far, all or of one payload type."""
        return [p for p in self.received if payload_type is None or p.payload_type == payload_type]

    def audio_samples(self, payload_type: int = 0, *, seconds: float = 1.0) -> list[int]:
        """The decoded G.711 audio of the last ``seconds`` received with this payload type."""
        if payload_type == 0:
            decode = decode_pcmu
        elif payload_type == 8:
            decode = decode_pcma
        else:
            raise RtpPeerError(
                f"audio is decoded from PCMU (0) or PCMA (8), not payload type {payload_type}"
            )
        samples: list[int] = []
        for packet in self.packets(payload_type):
            samples += decode(packet.payload)
        return samples[-round(seconds * _RATE) :]

    def audio_hz(self, payload_type: int = 0) -> float | None:
        """Dominant frequency of the last second of G.711 audio received with this payload
        type (decoded), or None when nothing measurable arrived."""
        try:
            return dominant_frequency(self.audio_samples(payload_type), _RATE)
        except ToneError:
            return None

    def telephone_events(self, payload_type: int = _TELEPHONE_EVENT) -> list[tuple[int, int]]:
        """(event, duration in timestamp units) of each RFC 4733 event that ended, once
        per event however often its end packet was repeated."""
        seen: set[tuple[int, int]] = set()
        events: list[tuple[int, int]] = []
        for packet in self.packets(payload_type):
            if len(packet.payload) < 4 or not packet.payload[1] & 0x80:
                continue
            # RFC 4733 section 2.5.1.3: retransmitted end packets keep the event's timestamp.
            key = (packet.ssrc, packet.timestamp)
            if key in seen:
                continue
            seen.add(key)
            event, _flags, duration = struct.unpack_from("!BBH", packet.payload)
            events.append((event, duration))
        return events

    def report_blocks(self) -> list[ReportBlock]:
        """Every RFC 3550 6.4 report block of the SRs and RRs received, in arrival order."""
        blocks: list[ReportBlock] = []
        for (data, _source), arrival in zip(self.rtcp_received, self.rtcp_arrivals, strict=True):
            blocks += _report_blocks(data, arrival)
        return blocks

    async def wait_for_packets(
        self, count: int, payload_type: int | None = None
    ) -> list[ReceivedPacket]:
        """Wait until at least ``count`` RTP packets (of this payload type) arrived; the
        caller bounds the wait with ``trio.fail_after``."""
        while len(self.packets(payload_type)) < count:
            arrived = self._arrived
            await arrived.wait()
        return self.packets(payload_type)

    # -- receiving -------------------------------------------------------------------------

    async def _receive_rtp(self) -> None:
        while True:
            data, source = await self._rtp.recvfrom(65536)
            source = (source[0], source[1])
            parsed = _parse_rtp(data)
            if parsed is not None:
                payload_type, marker, seq, timestamp, ssrc, payload = parsed
                self.received.append(
                    ReceivedPacket(
                        arrival=trio.current_time(),
                        payload_type=payload_type,
                        ssrc=ssrc,
                        seq=seq,
                        timestamp=timestamp,
                        payload=payload,
                        source=source,
                        marker=marker,
                    )
                )
                self._arrived.set()
                self._arrived = trio.Event()
            elif len(data) >= 2 and data[0] >> 6 == 2:
                self.rtcp_received.append((data, source))
                self.rtcp_arrivals.append(trio.current_time())
            else:
                self.garbage += 1
            if self.echo:
                await self._rtp.sendto(self._echoed(data), source)
                self.echoed += parsed is not None

    async def _receive_rtcp(self) -> None:
        while True:
            data, source = await self._rtcp.recvfrom(65536)
            self.rtcp_received.append((data, (source[0], source[1])))
            self.rtcp_arrivals.append(trio.current_time())
