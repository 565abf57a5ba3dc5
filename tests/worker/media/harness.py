"""A worker's media relay on loopback, between a scripted browser and a plain RTP phone.

The relay and its SDP seam are built by ``build_media`` from the handbook's configuration
(media bound to 127.0.0.1 on a random port window), and calls get their media policy from
the handbook's rules (``decide``), so the sessions are the ones a worker would make. The
seam is driven the way the B2BUA drives it, with SDP bytes.

``ScriptedBrowser`` is a WebRTC peer made of rtcgw.media's sans-IO pieces on a trio UDP
socket: STUN connectivity checks signed with the gateway's password from its SDP, a DTLS
endpoint with its own certificate that checks the gateway's fingerprint, SRTP keyed by
that handshake. ``PlainPhone`` is an RTP/RTCP socket pair for the SIP side. Both record
every packet they receive (the browser after SRTP unprotect, counting failures).
"""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import ipaddress
import os
import random
import secrets
import tempfile
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import trio
from aioice import stun
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from rtcgw.config import DtlsKeyType, GatewayConfig, PortRange, load_config
from rtcgw.media.certificates import DtlsCertificate, generate_certificate
from rtcgw.media.demux import PacketKind, classify
from rtcgw.media.dtls import DtlsContexts, DtlsEndpoint, DtlsRole, DtlsSettings, DtlsState
from rtcgw.media.errors import SrtpAuthError, SrtpError, SrtpReplayError
from rtcgw.media.ice_lite import IceCredentials
from rtcgw.media.rtcp import rtcp_packets_untrusted
from rtcgw.media.rtp import build_rtp, rtp_sequence
from rtcgw.media.srtp import SrtpSession
from rtcgw.observability import metrics
from rtcgw.rules import Decision
from rtcgw.rules.engine import decide
from rtcgw.rules.facts import RequestFacts
from rtcgw.sdp.model import parse_sdp
from rtcgw.sdp.negotiation import RemoteStream, describe
from rtcgw.sip.transport import Peer, Transport
from rtcgw.worker.b2bua.seam import LegSide
from rtcgw.worker.boot import WorkerBoot
from rtcgw.worker.media.build import build_media
from rtcgw.worker.media.events import MediaEvent
from rtcgw.worker.media.relay import MediaRelay
from rtcgw.worker.media.seam import MediaSeam
from rtcgw.worker.media.session import LegMedia, MediaSession
from rtcgw.worker.media.streams import BrowserStream, BrowserTransport, Drop, PlainStream
from tests.integration.handbook import handbook_config

Address = tuple[str, int]
LOOPBACK = "127.0.0.1"

#: (payload type, rtpmap) of the audio codecs the peers offer unless told otherwise
AUDIO = ((0, "PCMU/8000"), (8, "PCMA/8000"), (101, "telephone-event/8000"))
G722 = ((9, "G722/8000"),)

#: one 20 ms PCMU frame
FRAME = bytes(160)


async def until(condition: Callable[[], bool], what: str, *, timeout_s: float = 5.0) -> None:
    """Wait, in bounded steps, for ``condition`` to hold; fail naming ``what``."""
    step_s = 0.005
    with trio.fail_after(timeout_s):
        for _ in range(int(timeout_s / step_s) + 1):
            if condition():
                return
            await trio.sleep(step_s)
    raise AssertionError(f"gave up waiting for {what}")


async def relay_turn(relay: MediaRelay) -> None:
    """Wait until the relay ran every timer due now (the seam's tick after a clock jump)."""
    done = trio.Event()
    relay.call_at(trio.current_time(), lambda now: done.set())
    with trio.fail_after(5):
        await done.wait()


async def udp_socket() -> trio.socket.SocketType:
    """A UDP socket bound to an ephemeral loopback port."""
    sock = trio.socket.socket(trio.socket.AF_INET, trio.socket.SOCK_DGRAM)
    await sock.bind((LOOPBACK, 0))
    return sock


# -- the gateway ------------------------------------------------------------------------------


def media_config(directory: Path, **media: object) -> GatewayConfig:
    """The handbook's configuration with its media on loopback and a random port window,
    and ``media`` replacing fields of its media interface (a certificate, a CA, the MTU)."""
    config = load_config(handbook_config(directory, 5060))
    start = random.randrange(33000, 59000, 1000)
    medium = dataclasses.replace(
        config.media[0],
        bind_address=ipaddress.IPv4Address(LOOPBACK),
        advertised_addresses=(ipaddress.IPv4Address(LOOPBACK),),
        rtp_port_range=PortRange(start, start + 999),
        **media,
    )
    return dataclasses.replace(config, media=(medium, *config.media[1:]))


def handbook_decision(config: GatewayConfig, *, from_browser: bool) -> Decision:
    """The handbook rules' decision for an INVITE from a browser to the PBX or back."""
    facts = RequestFacts(
        method="INVITE",
        ruri_user="alice",
        ruri_host=LOOPBACK,
        headers=(),
        interface="wss" if from_browser else "pbx_side",
        source_address=ipaddress.IPv4Address(LOOPBACK),
        source_port=5060,
    )
    decision = decide(config, facts, registrations=lambda user: True)
    assert decision.forwarded, f"the handbook rules did not route the INVITE: {decision}"
    return decision


@dataclass(eq=False)
class FakeLeg:
    """What the seam reads of a B2BUA leg."""

    side: LegSide
    peer: Peer = field(default_factory=lambda: Peer(Transport.UDP, LOOPBACK, 5060))


@dataclass(eq=False)
class FakeCall:
    """What the seam reads of a B2BUA call."""

    call_id: str
    decision: Decision
    a: FakeLeg
    b: FakeLeg

    def other(self, leg: FakeLeg) -> FakeLeg:
        return self.b if leg is self.a else self.a


@dataclass
class Gateway:
    """One worker's media relay (running) and its seam."""

    config: GatewayConfig
    relay: MediaRelay
    seam: MediaSeam
    events: list[MediaEvent] = field(default_factory=list)


@asynccontextmanager
async def running_gateway(**media: object) -> AsyncIterator[Gateway]:
    """A relay built by ``build_media`` from the handbook config (``media`` edits its media
    interface), serving in a nursery."""
    events: list[MediaEvent] = []
    with tempfile.TemporaryDirectory(prefix="rtcgw-media-") as directory:
        config = media_config(Path(directory), **media)
    boot = WorkerBoot(config, (), worker_count=1)
    relay, seam = build_media(boot, 0, on_event=events.append)
    gateway = Gateway(config, relay, seam, events)
    async with trio.open_nursery() as nursery:
        await nursery.start(relay.run)
        try:
            yield gateway
        finally:
            for session in list(seam.sessions.values()):
                session.close()
            nursery.cancel_scope.cancel()


# -- the SIP-side phone ------------------------------------------------------------------------


@dataclass
class Received:
    """One RTP packet as a peer received it (after SRTP unprotect for the browser)."""

    ssrc: int
    sequence: int
    timestamp: int
    payload_type: int
    marker: bool
    payload: bytes


def parse_rtp(packet: bytes) -> Received:
    """The fields of a plain RTP packet with no CSRC or extension."""
    return Received(
        ssrc=int.from_bytes(packet[8:12], "big"),
        sequence=rtp_sequence(packet),
        timestamp=int.from_bytes(packet[4:8], "big"),
        payload_type=packet[1] & 0x7F,
        marker=packet[1] >= 0x80,
        payload=packet[12:],
    )


class PlainPhone:
    """A SIP phone's media: an RTP socket and an RTCP socket on loopback."""

    def __init__(self, rtp: trio.socket.SocketType, rtcp: trio.socket.SocketType) -> None:
        self.rtp = rtp
        self.rtcp = rtcp
        self.rtp_port: int = rtp.getsockname()[1]
        self.rtcp_port: int = rtcp.getsockname()[1]
        self.received: list[Received] = []
        self.received_rtcp: list[bytes] = []
        #: where the gateway receives this phone's RTP and RTCP (from its SDP)
        self.gateway_rtp: Address | None = None
        self.gateway_rtcp: Address | None = None
        self.ssrc = secrets.randbits(32) or 1
        self.sequence = secrets.randbits(15)
        self.timestamp = secrets.randbits(31)
        self.version = 1

    @classmethod
    async def open(cls) -> PlainPhone:
        return cls(await udp_socket(), await udp_socket())

    def sdp(
        self, codecs: Sequence[tuple[int, str]] = AUDIO, *, direction: str = "sendrecv"
    ) -> bytes:
        """This phone's SDP (offer or answer: plain RTP/AVP)."""
        self.version += 1
        address = LOOPBACK
        lines = [
            "v=0",
            f"o=phone 1 {self.version} IN IP4 {LOOPBACK}",
            "s=-",
            f"c=IN IP4 {address}",
            "t=0 0",
            f"m=audio {self.rtp_port} RTP/AVP {' '.join(str(pt) for pt, _ in codecs)}",
            f"a=rtcp:{self.rtcp_port}",
            *(f"a=rtpmap:{pt} {name}" for pt, name in codecs),
            f"a={direction}",
        ]
        return ("\r\n".join(lines) + "\r\n").encode()

    def learn(self, gateway_sdp: bytes) -> RemoteStream:
        """Where the gateway wants this phone's media (its plain SDP)."""
        stream = describe(parse_sdp(gateway_sdp)).streams[0]
        assert stream.address is not None
        self.gateway_rtp = (stream.address, stream.port)
        self.gateway_rtcp = (
            stream.rtcp_address or stream.address,
            stream.rtcp_port or stream.port + 1,
        )
        return stream

    def packet(self, payload_type: int = 0, payload: bytes = FRAME, *, samples: int = 160) -> bytes:
        """The phone's next RTP packet."""
        packet = build_rtp(payload_type, self.sequence, self.timestamp, self.ssrc, payload)
        self.sequence = (self.sequence + 1) & 0xFFFF
        self.timestamp = (self.timestamp + samples) & 0xFFFFFFFF
        return packet

    async def send(self, packet: bytes, *, to: Address | None = None) -> None:
        destination = to or self.gateway_rtp
        assert destination is not None, "the phone has not seen the gateway's SDP"
        await self.rtp.sendto(packet, destination)

    async def send_rtcp(self, compound: bytes) -> None:
        assert self.gateway_rtcp is not None
        await self.rtcp.sendto(compound, self.gateway_rtcp)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Record what arrives on both sockets until cancelled."""
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._read_rtcp)
            task_status.started()
            while True:
                data = await self.rtp.recv(2048)
                self.received.append(parse_rtp(data))

    async def _read_rtcp(self) -> None:
        while True:
            self.received_rtcp.append(await self.rtcp.recv(2048))


# -- the browser ------------------------------------------------------------------------------


@dataclass
class GatewayIce:
    """What the gateway's WebRTC SDP says about its transport."""

    address: Address
    ufrag: str
    pwd: str
    fingerprints: tuple[tuple[str, str], ...]
    setup: str | None
    ssrc: int | None


class ScriptedBrowser:
    """A WebRTC peer from rtcgw.media's sans-IO pieces (module docstring)."""

    def __init__(
        self, sock: trio.socket.SocketType, certificate: DtlsCertificate | None = None
    ) -> None:
        self.sock = sock
        self.port: int = sock.getsockname()[1]
        self.ice = IceCredentials.generate()
        self.contexts = DtlsContexts(
            DtlsSettings(certificate=certificate or generate_certificate(DtlsKeyType.EC_P256))
        )
        self.gateway: GatewayIce | None = None
        self.dtls: DtlsEndpoint | None = None
        self.srtp: SrtpSession | None = None
        self.ssrc = secrets.randbits(32) or 1
        self.sequence = secrets.randbits(15)
        self.timestamp = secrets.randbits(31)
        self.version = 1
        self.tie_breaker = secrets.randbits(63)
        #: STUN responses by transaction id
        self.responses: dict[bytes, stun.Message] = {}
        self.received: list[Received] = []
        self.received_rtcp: list[bytes] = []
        self.auth_failures = 0
        self.replay_failures = 0
        self.other_failures = 0
        #: every datagram that arrived, by kind, for "nothing before keys" checks
        self.arrivals: dict[PacketKind, int] = {}
        self.largest_dtls_datagram = 0
        self._dtls_wakeup = trio.Event()

    @classmethod
    async def open(cls, certificate: DtlsCertificate | None = None) -> ScriptedBrowser:
        return cls(await udp_socket(), certificate)

    @property
    def fingerprint(self) -> str:
        return self.contexts.fingerprint_value

    # -- SDP ---------------------------------------------------------------------------------

    def sdp(
        self,
        *,
        setup: str = "actpass",
        codecs: Sequence[tuple[int, str]] = AUDIO,
        fingerprint: str | None = None,
        direction: str = "sendrecv",
    ) -> bytes:
        """This browser's SDP (offer: actpass; answer: active or passive)."""
        self.version += 1
        port = self.port
        lines = [
            "v=0",
            f"o=- 4611731400430051336 {self.version} IN IP4 {LOOPBACK}",
            "s=-",
            "t=0 0",
            "a=group:BUNDLE 0",
            "a=msid-semantic: WMS",
            f"m=audio {port} UDP/TLS/RTP/SAVPF {' '.join(str(pt) for pt, _ in codecs)}",
            f"c=IN IP4 {LOOPBACK}",
            f"a=rtcp:{port} IN IP4 {LOOPBACK}",
            f"a=candidate:1 1 udp 2122260223 {LOOPBACK} {port} typ host generation 0",
            f"a=ice-ufrag:{self.ice.ufrag}",
            f"a=ice-pwd:{self.ice.pwd}",
            f"a=fingerprint:sha-256 {fingerprint or self.fingerprint}",
            f"a=setup:{setup}",
            "a=mid:0",
            f"a={direction}",
            "a=rtcp-mux",
            *(f"a=rtpmap:{pt} {name}" for pt, name in codecs),
            f"a=ssrc:{self.ssrc} cname:scripted",
        ]
        return ("\r\n".join(lines) + "\r\n").encode()

    def learn(self, gateway_sdp: bytes) -> GatewayIce:
        """Read the gateway's ICE credentials, candidate, fingerprint, setup and SSRC."""
        stream = describe(parse_sdp(gateway_sdp)).streams[0]
        assert stream.ice is not None, "the gateway's WebRTC SDP has no ICE credentials"
        assert stream.address is not None
        ssrc = stream.ssrcs[0] if stream.ssrcs else None
        self.gateway = GatewayIce(
            address=(stream.address, stream.port),
            ufrag=stream.ice[0],
            pwd=stream.ice[1],
            fingerprints=tuple((f.algorithm, f.value) for f in stream.fingerprints),
            setup=stream.setup.value if stream.setup is not None else None,
            ssrc=ssrc,
        )
        return self.gateway

    def restart_ice(self) -> None:
        """New credentials of our own (the re-offer carries them)."""
        self.ice = IceCredentials.generate()

    # -- ICE ---------------------------------------------------------------------------------

    def check(
        self,
        *,
        use_candidate: bool = True,
        pwd: str | None = None,
        ufrag: str | None = None,
        transaction_id: bytes | None = None,
    ) -> tuple[bytes, bytes]:
        """A connectivity check as a controlling browser sends it: (datagram, transaction id)."""
        gateway = self.gateway
        assert gateway is not None
        message = stun.Message(stun.Method.BINDING, stun.Class.REQUEST, transaction_id)
        message.attributes["USERNAME"] = f"{ufrag or gateway.ufrag}:{self.ice.ufrag}"
        message.attributes["PRIORITY"] = 1853817087
        message.attributes["ICE-CONTROLLING"] = self.tie_breaker
        if use_candidate:
            message.attributes["USE-CANDIDATE"] = None
        message.add_message_integrity((pwd or gateway.pwd).encode())
        return bytes(message), message.transaction_id

    async def send_check(self, **options: object) -> stun.Message:
        """Send one check and wait for its response."""
        datagram, transaction_id = self.check(**options)  # type: ignore[arg-type]
        await self.send_raw(datagram)
        await until(lambda: transaction_id in self.responses, "a STUN response")
        return self.responses[transaction_id]

    # -- DTLS --------------------------------------------------------------------------------

    def start_dtls(self) -> None:
        """Our DTLS endpoint: the role opposite the gateway's a=setup."""
        gateway = self.gateway
        assert gateway is not None
        role = DtlsRole.SERVER if gateway.setup == "active" else DtlsRole.CLIENT
        self.dtls = DtlsEndpoint(self.contexts, role, gateway.fingerprints)
        self._dtls_wakeup.set()

    async def connect(self) -> None:
        """ICE (a nominating check), then the DTLS handshake, then SRTP keys."""
        response = await self.send_check()
        assert response.message_class is stun.Class.RESPONSE, response
        self.start_dtls()
        dtls = self.dtls
        assert dtls is not None
        if dtls.role is DtlsRole.CLIENT:
            await self._send_dtls(dtls.start(trio.current_time()))
        await until(
            lambda: dtls.state in (DtlsState.CONNECTED, DtlsState.FAILED), "the DTLS handshake"
        )
        assert dtls.state is DtlsState.CONNECTED, dtls.failure

    # -- media -------------------------------------------------------------------------------

    def packet(self, payload_type: int = 0, payload: bytes = FRAME) -> bytes:
        """The browser's next plain RTP packet (to protect)."""
        packet = build_rtp(payload_type, self.sequence, self.timestamp, self.ssrc, payload)
        self.sequence = (self.sequence + 1) & 0xFFFF
        self.timestamp = (self.timestamp + 160) & 0xFFFFFFFF
        return packet

    def protect(self, packet: bytes) -> bytes:
        assert self.srtp is not None, "no SRTP keys yet"
        return self.srtp.protect(packet)

    async def send_rtp(self, packet: bytes | None = None) -> bytes:
        """Protect and send ``packet`` (the next one by default); returns what was sent."""
        protected = self.protect(packet or self.packet())
        await self.send_raw(protected)
        return protected

    async def send_raw(self, datagram: bytes, *, to: Address | None = None) -> None:
        assert self.gateway is not None
        await self.sock.sendto(datagram, to or self.gateway.address)

    async def _send_dtls(self, datagrams: list[bytes]) -> None:
        for datagram in datagrams:
            await self.send_raw(datagram)

    # -- receiving ---------------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Receive until cancelled, retransmitting our DTLS flights when their timer fires."""
        task_status.started()
        while True:
            deadline = self.dtls.next_deadline() if self.dtls is not None else None
            with trio.move_on_at(deadline if deadline is not None else float("inf")):
                data, _ = await self.sock.recvfrom(4096)
                await self._on_datagram(data)
                continue
            if self.dtls is not None:
                await self._send_dtls(self.dtls.handle_timeout(trio.current_time()))

    async def _on_datagram(self, data: bytes) -> None:
        kind = classify(data)
        self.arrivals[kind] = self.arrivals.get(kind, 0) + 1
        if kind is PacketKind.STUN:
            try:
                message = stun.parse_message(data)
            except ValueError:
                return
            self.responses[message.transaction_id] = message
        elif kind is PacketKind.DTLS:
            self.largest_dtls_datagram = max(self.largest_dtls_datagram, len(data))
            if self.dtls is None:
                # The gateway's ClientHello may come before our answer told us its role.
                await self._dtls_wakeup.wait()
            assert self.dtls is not None
            await self._send_dtls(self.dtls.receive_untrusted(data, trio.current_time()))
            if self.dtls.state is DtlsState.CONNECTED and self.srtp is None:
                self.srtp = self.dtls.srtp_session()
        elif kind in (PacketKind.RTP, PacketKind.RTCP):
            self._on_srtp(data, rtcp=kind is PacketKind.RTCP)

    def _on_srtp(self, data: bytes, *, rtcp: bool) -> None:
        srtp = self.srtp
        if srtp is None:
            self.other_failures += 1
            return
        try:
            plain = srtp.unprotect_rtcp(data) if rtcp else srtp.unprotect(data)
        except SrtpAuthError:
            self.auth_failures += 1
            return
        except SrtpReplayError:
            self.replay_failures += 1
            return
        except SrtpError:
            self.other_failures += 1
            return
        if rtcp:
            self.received_rtcp.append(plain)
        else:
            self.received.append(parse_rtp(plain))


# -- a call ----------------------------------------------------------------------------------


@dataclass
class MediaCall:
    """One anchored call between a scripted browser and a plain phone."""

    gateway: Gateway
    call: FakeCall
    browser: ScriptedBrowser
    phone: PlainPhone
    #: the browser's leg of the call in the seam (``call.a`` or ``call.b``)
    browser_leg: FakeLeg
    browser_sdp: bytes = b""
    phone_sdp: bytes = b""

    @property
    def session(self) -> MediaSession:
        return self.gateway.seam.sessions[self.call.call_id]

    @property
    def browser_media(self) -> LegMedia:
        session = self.session
        return session.a if self.browser_leg is self.call.a else session.b

    @property
    def phone_media(self) -> LegMedia:
        return self.session.other(self.browser_media)

    @property
    def transport(self) -> BrowserTransport:
        return self.browser_media.transports[0]

    @property
    def browser_stream(self) -> BrowserStream:
        stream = self.browser_media.streams[0]
        assert isinstance(stream, BrowserStream)
        return stream

    @property
    def plain_stream(self) -> PlainStream:
        stream = self.phone_media.streams[0]
        assert isinstance(stream, PlainStream)
        return stream

    def browser_drops(self, reason: Drop) -> int:
        return self.browser_stream.counters.dropped.get(reason, 0)

    def phone_drops(self, reason: Drop) -> int:
        return self.plain_stream.counters.dropped.get(reason, 0)

    async def phone_to_browser(self, count: int, **packet: object) -> list[Received]:
        """Send ``count`` phone packets, in paced batches, and wait until the browser has
        them all; returns them."""
        start = len(self.browser.received)
        sent = 0
        while sent < count:
            batch = min(50, count - sent)
            for _ in range(batch):
                await self.phone.send(self.phone.packet(**packet))  # type: ignore[arg-type]
            sent += batch
            await until(
                lambda target=start + sent: len(self.browser.received) >= target,
                f"{start + sent} packets at the browser",
            )
        return self.browser.received[start:]

    async def browser_to_phone(self, count: int) -> list[Received]:
        """Send ``count`` browser packets and wait until the phone has them all."""
        start = len(self.phone.received)
        sent = 0
        while sent < count:
            batch = min(50, count - sent)
            for _ in range(batch):
                await self.browser.send_rtp()
            sent += batch
            await until(
                lambda target=start + sent: len(self.phone.received) >= target,
                f"{start + sent} packets at the phone",
            )
        return self.phone.received[start:]


@asynccontextmanager
async def browser_calls_phone(
    gateway: Gateway,
    *,
    codecs: Sequence[tuple[int, str]] = AUDIO,
    answer_codecs: Sequence[tuple[int, str]] | None = None,
    fingerprint: str | None = None,
    connect: bool = True,
    decision: Decision | None = None,
    certificate: DtlsCertificate | None = None,
) -> AsyncIterator[MediaCall]:
    """A browser's offer through the seam to the phone, the phone's answer back; then
    (``connect``) ICE and DTLS. ``fingerprint`` replaces the browser's in its offer;
    ``certificate`` is the browser's (a fresh self-signed one by default)."""
    browser = await ScriptedBrowser.open(certificate)
    phone = await PlainPhone.open()
    call = FakeCall(
        f"media-{secrets.token_hex(6)}",
        decision or handbook_decision(gateway.config, from_browser=True),
        FakeLeg(LegSide.CLIENT),
        FakeLeg(LegSide.SIP),
    )
    media = MediaCall(gateway, call, browser, phone, call.a)
    seam = gateway.seam
    media.browser_sdp = browser.sdp(codecs=codecs, fingerprint=fingerprint)
    phone_offer = seam.offer_out(call, call.b, media.browser_sdp)  # type: ignore[arg-type]
    phone.learn(phone_offer)
    media.phone_sdp = phone.sdp(answer_codecs or codecs)
    browser_answer = seam.answer_out(call, call.a, media.phone_sdp)  # type: ignore[arg-type]
    browser.learn(browser_answer)
    async with _peers_running(media):
        if connect:
            await browser.connect()
            await until(lambda: media.transport.srtp is not None, "the gateway's SRTP keys")
        yield media


@asynccontextmanager
async def phone_calls_browser(
    gateway: Gateway,
    *,
    setup: str = "active",
    codecs: Sequence[tuple[int, str]] = AUDIO,
    certificate: DtlsCertificate | None = None,
) -> AsyncIterator[MediaCall]:
    """The phone's offer through the seam to the browser (the gateway offers actpass),
    the browser's answer with ``setup`` back; then ICE and DTLS."""
    browser = await ScriptedBrowser.open(certificate)
    phone = await PlainPhone.open()
    call = FakeCall(
        f"media-{secrets.token_hex(6)}",
        handbook_decision(gateway.config, from_browser=False),
        FakeLeg(LegSide.SIP),
        FakeLeg(LegSide.CLIENT),
    )
    media = MediaCall(gateway, call, browser, phone, call.b)
    seam = gateway.seam
    media.phone_sdp = phone.sdp(codecs)
    browser_offer = seam.offer_out(call, call.b, media.phone_sdp)  # type: ignore[arg-type]
    offered = browser.learn(browser_offer)
    assert offered.setup == "actpass", offered
    media.browser_sdp = browser.sdp(setup=setup, codecs=codecs)
    phone_answer = seam.answer_out(call, call.a, media.browser_sdp)  # type: ignore[arg-type]
    phone.learn(phone_answer)
    # Our answer's setup decides the roles: the gateway takes the other one.
    browser.gateway = dataclasses.replace(
        offered, setup="passive" if setup == "active" else "active"
    )
    async with _peers_running(media):
        await browser.connect()
        await until(lambda: media.transport.srtp is not None, "the gateway's SRTP keys")
        yield media


@asynccontextmanager
async def _peers_running(media: MediaCall) -> AsyncIterator[None]:
    """The browser's and the phone's receivers for the body; then the call ends."""
    try:
        async with trio.open_nursery() as peers:
            await peers.start(media.browser.run)
            await peers.start(media.phone.run)
            yield
            peers.cancel_scope.cancel()
    finally:
        media.gateway.seam.call_ended(media.call, 200)  # type: ignore[arg-type]
        media.browser.sock.close()
        media.phone.rtp.close()
        media.phone.rtcp.close()


def junk(size: int, first: int | None = None) -> bytes:
    """``size`` random bytes, the first one ``first`` when given."""
    data = bytearray(os.urandom(size))
    if first is not None and data:
        data[0] = first
    return bytes(data)


def metric(name: str, **labels: str) -> float:
    """A sample of this process's metrics (0 when the series does not exist yet)."""
    value = metrics.registry().get_sample_value(name, labels)
    return value or 0.0


def rtcp_types(compound: bytes) -> list[int]:
    """The packet types of a plain RTCP compound."""
    packets = rtcp_packets_untrusted(compound)
    assert packets is not None, f"malformed RTCP compound {compound.hex()}"
    return [packet_type for packet_type, _, _ in packets]


# -- operator certificates ---------------------------------------------------------------------


@dataclass(frozen=True)
class OperatorPki:
    """A root CA, an intermediate and a leaf it signed, written as PEM files."""

    leaf_chain: Path  #: the leaf, then the intermediate
    leaf_key: Path
    root: Path  #: the root CA alone (a trust anchor for the peer's chain)
    leaf_der: bytes


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _issue(
    subject: str,
    key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey,
    issuer: str,
    issuer_key: rsa.RSAPrivateKey,
    *,
    ca: bool,
) -> x509.Certificate:
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(_name(issuer))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    return builder.sign(issuer_key, hashes.SHA256())


def operator_pki(
    directory: Path, *, leaf_bits: int | None = 4096, ca_bits: int = 2048, name: str = "media"
) -> OperatorPki:
    """A leaf signed by an intermediate signed by a root (RSA of ``ca_bits``), in PEM: an
    RSA leaf of ``leaf_bits``, or an EC P-256 one when ``leaf_bits`` is None."""
    root_key = rsa.generate_private_key(public_exponent=65537, key_size=ca_bits)
    intermediate_key = rsa.generate_private_key(public_exponent=65537, key_size=ca_bits)
    leaf_key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
    if leaf_bits is None:
        leaf_key = ec.generate_private_key(ec.SECP256R1())
    else:
        leaf_key = rsa.generate_private_key(public_exponent=65537, key_size=leaf_bits)
    root = _issue("rtcgw test root", root_key, "rtcgw test root", root_key, ca=True)
    intermediate = _issue(
        "rtcgw test intermediate", intermediate_key, "rtcgw test root", root_key, ca=True
    )
    leaf = _issue(f"rtcgw {name}", leaf_key, "rtcgw test intermediate", intermediate_key, ca=False)
    pem = serialization.Encoding.PEM
    chain_path = directory / f"{name}-chain.pem"
    key_path = directory / f"{name}.key"
    root_path = directory / f"{name}-root.pem"
    chain_path.write_bytes(leaf.public_bytes(pem) + intermediate.public_bytes(pem))
    key_path.write_bytes(
        leaf_key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    root_path.write_bytes(root.public_bytes(pem))
    return OperatorPki(
        chain_path, key_path, root_path, leaf.public_bytes(serialization.Encoding.DER)
    )


def sha256_fingerprint(der: bytes) -> str:
    """The a=fingerprint value of a DER certificate (RFC 8122: upper-case hex pairs)."""
    return ":".join(f"{b:02X}" for b in hashlib.sha256(der).digest())
