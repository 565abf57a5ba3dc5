"""Codecs and video through ``rtcgw run``: Opus, PCMA, G.722, audio + VP8 or H.264 video
with and without BUNDLE, calls in both directions.

aiortc plays the browser (``webrtc_peer.py``) behind the scripted SIP-over-WebSocket client;
the PBX is played here in Python: a UAS that answers the gateway's offer, or a UAC that
calls the registered browser, with one echoing ``RtpPeer`` per m-line. An echo returns
every packet unchanged, so any codec works, and what aiortc decodes (the frequency of its
own tone, video frames) has crossed the gateway twice: SRTP -> RTP toward the PBX and
RTP -> SRTP back. The gateway runs the handbook's configuration.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import trio

from rtcgw.sip import Dialog, Header, Request, Response, Via, make_response, parse_message
from rtcgw.sip.ids import new_branch, new_tag
from rtcgw.sip.uri import parse_uri
from tests.integration.browser import Browser
from tests.integration.gateway import RunningGateway
from tests.integration.handbook import handbook_config
from tests.integration.rtp_peer import RtpPeer
from tests.integration.sipp import finish, free_udp_port, start_scenario
from tests.integration.test_handbook import handbook_gateway
from tests.integration.webrtc_peer import PeerStats, WebRtcPeer

TONE_HZ = 1000.0
HOST = "127.0.0.1"


# -- SDP of the SIP side ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Codec:
    """One payload type as the SIP side writes it."""

    payload_type: int
    rtpmap: str
    fmtp: str | None = None

    @property
    def name(self) -> str:
        return self.rtpmap.split("/")[0].lower()


PCMU = Codec(0, "PCMU/8000")
PCMA = Codec(8, "PCMA/8000")
G722 = Codec(9, "G722/8000")
OPUS = Codec(111, "opus/48000/2", "minptime=10;useinbandfec=1")
VP8 = Codec(96, "VP8/90000")
H264 = Codec(
    102, "H264/90000", "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f"
)


@dataclass(slots=True)
class Section:
    """One m-line of an SDP body and the attributes below it."""

    kind: str
    port: int
    proto: str
    payload_types: list[int]
    lines: list[str] = field(default_factory=list)

    def rtpmap(self, payload_type: int) -> str | None:
        prefix = f"a=rtpmap:{payload_type} "
        return next((line[len(prefix) :] for line in self.lines if line.startswith(prefix)), None)

    def fmtp(self, payload_type: int) -> str | None:
        prefix = f"a=fmtp:{payload_type} "
        return next((line[len(prefix) :] for line in self.lines if line.startswith(prefix)), None)

    def encodings(self) -> list[str]:
        """The rtpmap encodings (``opus/48000/2``) of the m-line's payload types, in order."""
        return [self.rtpmap(pt) or f"<static {pt}>" for pt in self.payload_types]


def sections(sdp: str) -> list[Section]:
    """The m-sections of ``sdp``."""
    found: list[Section] = []
    for line in sdp.splitlines():
        if line.startswith("m="):
            kind, port, proto, *formats = line[2:].split()
            found.append(Section(kind, int(port), proto, [int(f) for f in formats]))
        elif found:
            found[-1].lines.append(line)
    return found


def sip_sdp(streams: Sequence[tuple[str, int, Sequence[Codec]]]) -> str:
    """A plain RTP/AVP body with one m-line per (kind, port, codecs); port 0 rejects."""
    lines = [
        "v=0",
        f"o=pbx {secrets.randbelow(1 << 31)} 1 IN IP4 {HOST}",
        "s=pbx",
        f"c=IN IP4 {HOST}",
        "t=0 0",
    ]
    for kind, port, codecs in streams:
        lines.append(f"m={kind} {port} RTP/AVP {' '.join(str(c.payload_type) for c in codecs)}")
        for codec in codecs:
            lines.append(f"a=rtpmap:{codec.payload_type} {codec.rtpmap}")
            if codec.fmtp:
                lines.append(f"a=fmtp:{codec.payload_type} {codec.fmtp}")
        lines.append("a=sendrecv")
    return "\r\n".join(lines) + "\r\n"


def answer_sdp(offer: str, ports: dict[str, int], wanted: dict[str, str]) -> str:
    """The SIP side's answer to ``offer``: per m-line, the offered payload type of the
    encoding ``wanted[kind]`` on ``ports[kind]``, with the offer's rtpmap and fmtp."""
    streams: list[tuple[str, int, Sequence[Codec]]] = []
    for section in sections(offer):
        chosen = [
            Codec(pt, section.rtpmap(pt) or "", section.fmtp(pt))
            for pt in section.payload_types
            if (section.rtpmap(pt) or "").lower().startswith(wanted.get(section.kind, "-") + "/")
        ]
        assert chosen, f"the gateway's offer has no {wanted.get(section.kind)}: {offer}"
        streams.append((section.kind, ports[section.kind], chosen[:1]))
    return sip_sdp(streams)


# -- the SIP side -----------------------------------------------------------------------------


@dataclass
class Pbx:
    """A SIP endpoint on a loopback UDP socket: a UAS (``serve``) that answers one INVITE
    (and 200 to whatever follows), or a UAC (``call``, ``hang_up``)."""

    sock: trio.socket.SocketType
    invite: Request | None = None
    requests: list[Request] = field(default_factory=list)
    tag: str = field(default_factory=new_tag)

    @property
    def port(self) -> int:
        return int(self.sock.getsockname()[1])

    def via(self) -> Via:
        return Via.parse(f"SIP/2.0/UDP {HOST}:{self.port};branch={new_branch()};rport")

    async def serve(
        self,
        ports: dict[str, int],
        wanted: dict[str, str],
        *,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Answer INVITEs with ``wanted`` codecs on ``ports`` until cancelled."""
        task_status.started()
        while True:
            data, source = await self.sock.recvfrom(65536)
            message = parse_message(data)
            if not isinstance(message, Request):
                continue
            if message.method == "INVITE" and self.invite is None:
                self.invite = message
                await self._respond(message, 100, source)
                body = answer_sdp(message.body.decode(), ports, wanted).encode()
                await self._respond(message, 200, source, body=body)
                continue
            self.requests.append(message)
            if message.method not in ("ACK", "INVITE"):
                await self._respond(message, 200, source)

    async def _respond(
        self, request: Request, status: int, to: tuple[str, int], *, body: bytes = b""
    ) -> None:
        contact = (Header("Contact", f"<sip:pbx@{HOST}:{self.port}>"),)
        response: Response = make_response(
            request,
            status,
            to_tag=self.tag if status > 100 else None,
            headers=contact if status == 200 and request.method == "INVITE" else (),
            body=body,
            content_type="application/sdp" if body else None,
        )
        await self.sock.sendto(bytes(response), to[:2])

    async def call(self, gateway: tuple[str, int], user: str, offer: str) -> tuple[Dialog, str]:
        """INVITE ``user`` at the gateway with ``offer``; ACK the 200 and return the
        dialog and the answer. The caller's fail_after bounds the wait."""
        target = f"sip:{user}@{gateway[0]}:{gateway[1]}"
        headers = (
            Header("Via", str(self.via())),
            Header("Max-Forwards", "70"),
            Header("From", f"<sip:pbx@{HOST}:{self.port}>;tag={self.tag}"),
            Header("To", f"<{target}>"),
            Header("Call-ID", secrets.token_hex(10)),
            Header("CSeq", "1 INVITE"),
            Header("Contact", f"<sip:pbx@{HOST}:{self.port}>"),
        )
        invite = Request("INVITE", parse_uri(target), headers).with_body(
            offer.encode(), "application/sdp"
        )
        await self.sock.sendto(bytes(invite), gateway)
        while True:
            response = await self._response(gateway)
            if response.final:
                break
        assert response.status == 200, response
        dialog = Dialog.from_uac(invite, response)
        await self.sock.sendto(bytes(dialog.create_ack(1, self.via())), gateway)
        return dialog, response.body.decode()

    async def hang_up(self, dialog: Dialog, gateway: tuple[str, int]) -> Response:
        """Send BYE in ``dialog``; its final response."""
        bye = dialog.create_request("BYE", self.via())
        await self.sock.sendto(bytes(bye), gateway)
        while True:
            response = await self._response(gateway)
            if response.final and response.cseq.method == "BYE":
                return response

    async def _response(self, gateway: tuple[str, int]) -> Response:
        """The next response; a request the gateway sends meanwhile gets 200."""
        while True:
            data, source = await self.sock.recvfrom(65536)
            message = parse_message(data)
            if isinstance(message, Response):
                return message
            self.requests.append(message)
            if message.method != "ACK":
                await self._respond(message, 200, source)


@asynccontextmanager
async def pbx_socket(port: int) -> AsyncIterator[Pbx]:
    """The PBX's SIP socket on ``port`` (loopback)."""
    sock = trio.socket.socket(trio.socket.AF_INET, trio.socket.SOCK_DGRAM)
    with sock:
        await sock.bind((HOST, port))
        yield Pbx(sock)


@asynccontextmanager
async def echoes(*kinds: str) -> AsyncIterator[dict[str, RtpPeer]]:
    """One echoing RTP endpoint per media kind."""
    async with AsyncExitStack() as stack:
        yield {kind: await stack.enter_async_context(RtpPeer.open(echo=True)) for kind in kinds}


@asynccontextmanager
async def registered(
    tmp_path: Path,
) -> AsyncIterator[tuple[RunningGateway, Browser, WebRtcPeer, int]]:
    """The handbook gateway, alice registered through it, her aiortc peer, and the port
    the configuration names for the PBX (free for the test's own PBX)."""
    pbx_port = free_udp_port()
    registrar = await start_scenario("registrar", "-p", str(pbx_port))
    config = handbook_config(tmp_path, pbx_port)
    async with handbook_gateway(config) as (gateway, alice), WebRtcPeer.start() as peer:
        assert (await alice.register()).status == 200
        assert await finish(registrar) == 0
        await gateway.wait_for("binding.changed")
        yield gateway, alice, peer, pbx_port


# -- checks -----------------------------------------------------------------------------------


def show(what: str, stats: PeerStats, phones: dict[str, RtpPeer]) -> None:
    echoed = ", ".join(f"{kind} {len(phone.received)}" for kind, phone in phones.items())
    print(
        f"{what}: browser heard {stats.audio_hz} Hz (rms {stats.audio_rms:.0f}) in "
        f"{stats.audio_frames} frames / {stats.audio_packets_received} packets, "
        f"{stats.video_frames} video frames / {stats.video_packets_received} packets; "
        f"RTP packets echoed by the PBX: {echoed}"
    )


def assert_tone(stats: PeerStats) -> None:
    assert stats.connection_state == "connected", stats
    assert stats.audio_hz is not None and abs(stats.audio_hz - TONE_HZ) < 20, stats
    assert stats.audio_rms > 1000, stats


def webrtc_sections(sdp: str) -> list[Section]:
    """The m-lines of an SDP the gateway wrote for a browser, checked to be WebRTC."""
    found = sections(sdp)
    assert all(s.proto == "UDP/TLS/RTP/SAVPF" for s in found), sdp
    return found


def plain_sections(sdp: str) -> list[Section]:
    """The m-lines of an SDP the gateway wrote for the PBX, checked to be plain RTP on
    separate ports: the PBX side never bundles."""
    found = sections(sdp)
    assert all(s.proto == "RTP/AVP" for s in found), sdp
    ports = [s.port for s in found]
    assert 0 not in ports and len(set(ports)) == len(ports), sdp
    assert "a=group:BUNDLE" not in sdp and "a=ice-" not in sdp and "a=fingerprint" not in sdp
    return found


def has_encoding(section: Section, prefix: str) -> bool:
    return any(e.lower().startswith(prefix.lower()) for e in section.encodings())


# -- browser calls the PBX --------------------------------------------------------------------


async def browser_calls_pbx(
    tmp_path: Path,
    *,
    audio: str,
    video: str | None = None,
    bundle: bool = True,
) -> None:
    """alice's aiortc offers ``audio`` (and ``video``) to the PBX, which answers the same
    codecs and echoes; the browser hears its tone (and decodes its video) back."""
    kinds = ("audio", "video") if video else ("audio",)
    wanted = {"audio": audio, "video": video or ""}
    with trio.fail_after(60):
        async with (
            registered(tmp_path) as (_gateway, alice, peer, pbx_port),
            echoes(*kinds) as phones,
            pbx_socket(pbx_port) as pbx,
            trio.open_nursery() as nursery,
        ):
            ports = {kind: phone.port for kind, phone in phones.items()}
            await nursery.start(pbx.serve, ports, {k: v for k, v in wanted.items() if v})
            offer = await peer.offer(
                audio=audio,
                video=video is not None,
                video_codec=video or "vp8",
                tone_hz=TONE_HZ,
                bundle=bundle,
            )
            offered = sections(offer)
            assert ("a=group:BUNDLE" in offer) == bundle
            if video and not bundle:
                # aiortc gave each m-line a transport of its own.
                assert offered[0].port != offered[1].port, offer
            call, final = await alice.invite("bob", sdp=offer.encode())
            assert final.status == 200, final
            await alice.ack(call)
            answer = final.body.decode()
            await peer.accept_answer(answer)

            # What the PBX was offered: plain RTP, one port per m-line, the browser's codec.
            assert pbx.invite is not None
            to_pbx = plain_sections(pbx.invite.body.decode())
            assert [s.kind for s in to_pbx] == list(kinds)
            print("offered to the PBX:", {s.kind: (s.port, s.encodings()) for s in to_pbx})
            for section in to_pbx:
                assert has_encoding(section, wanted[section.kind] + "/"), section
            # What the browser got back: WebRTC, BUNDLEd exactly when it offered BUNDLE.
            to_browser = webrtc_sections(answer)
            assert [s.kind for s in to_browser] == list(kinds)
            assert ("a=group:BUNDLE" in answer) == bundle, answer
            if video:
                # One transport for both m-lines exactly when bundled.
                assert (to_browser[0].port == to_browser[1].port) == bundle, answer

            stats = await peer.wait_for_audio(min_frames=100, timeout_s=20)
            if video:
                stats = await peer.wait_for_video(min_frames=20, timeout_s=20)
            show(f"{audio}/{video} bundle={bundle}", stats, phones)
            assert_tone(stats)
            for kind, phone in phones.items():
                assert len(phone.received) > 20, (kind, len(phone.received))
            # Each m-line's media reached its own port in the codec the PBX answered.
            for section in to_pbx:
                [chosen] = [
                    pt
                    for pt in section.payload_types
                    if (section.rtpmap(pt) or "").lower().startswith(wanted[section.kind] + "/")
                ][:1]
                arrived = {p.payload_type for p in phones[section.kind].received}
                assert arrived == {chosen}, (section.kind, arrived, chosen)
            if video:
                assert stats.video_frames >= 20 and stats.video_packets_received > 0
            assert (await alice.bye(call)).status == 200
            with trio.move_on_after(5):
                while "BYE" not in [r.method for r in pbx.requests]:
                    await trio.sleep(0.05)
            assert "BYE" in [r.method for r in pbx.requests]
            nursery.cancel_scope.cancel()


async def test_opus_browser_calls_the_pbx_and_hears_its_tone(tmp_path: Path) -> None:
    await browser_calls_pbx(tmp_path, audio="opus")


@pytest.mark.parametrize("audio", ["pcma", "g722"])
async def test_g711_a_law_and_g722_browser_calls_the_pbx(tmp_path: Path, audio: str) -> None:
    await browser_calls_pbx(tmp_path, audio=audio)


@pytest.mark.parametrize("bundle", [True, False], ids=["bundle", "no_bundle"])
async def test_audio_and_vp8_browser_calls_the_pbx(tmp_path: Path, bundle: bool) -> None:
    await browser_calls_pbx(tmp_path, audio="opus", video="vp8", bundle=bundle)


async def test_audio_and_h264_browser_calls_the_pbx(tmp_path: Path) -> None:
    await browser_calls_pbx(tmp_path, audio="pcmu", video="h264")


# -- the PBX calls the browser ----------------------------------------------------------------


async def pbx_calls_browser(
    tmp_path: Path, streams: Sequence[tuple[str, Sequence[Codec]]], expect: dict[str, str]
) -> tuple[str, str]:
    """The PBX offers ``streams`` (kind, codecs) to alice, whose aiortc answers; both ends
    must agree on ``expect`` (kind -> encoding) and the browser hears its tone (and decodes
    its video) back through the PBX's echo. Returns the browser's offer and the answer."""
    kinds = [kind for kind, _ in streams]
    with trio.fail_after(60):
        async with (
            registered(tmp_path) as (gateway, alice, peer, _pbx_port),
            echoes(*kinds) as phones,
            pbx_socket(free_udp_port()) as pbx,
            trio.open_nursery() as nursery,
        ):
            offer = sip_sdp([(kind, phones[kind].port, codecs) for kind, codecs in streams])

            offers: list[str] = []
            answers: list[str] = []
            answered = trio.Event()

            async def answer_the_call() -> None:
                invite = await alice.receive_request("INVITE")
                offers.append(invite.body.decode())
                answers.append(await peer.answer(offers[0], tone_hz=TONE_HZ))
                await alice.answer(invite, sdp=answers[0].encode())
                await alice.receive_request("ACK")
                answered.set()

            nursery.start_soon(answer_the_call)
            dialog, answer = await pbx.call(gateway.address("UDP"), "alice", offer)
            await answered.wait()
            [browser_offer] = offers

            to_browser = webrtc_sections(browser_offer)
            assert [s.kind for s in to_browser] == kinds
            if len(kinds) > 1:
                # Toward the browser the gateway offers one BUNDLE group.
                assert "a=group:BUNDLE " + " ".join(
                    line.split(":", 1)[1] for s in to_browser for line in s.lines
                    if line.startswith("a=mid:")
                ) in browser_offer, browser_offer  # fmt: skip
            to_pbx = plain_sections(answer)
            assert [s.kind for s in to_pbx] == kinds
            print("PBX offered", {k: [c.rtpmap for c in cs] for k, cs in streams})
            from_browser = sections(answers[0])
            print("the browser answered:", {s.kind: s.encodings() for s in from_browser})
            print("the gateway answered the PBX:", {s.kind: s.encodings() for s in to_pbx})
            for mine, theirs in zip(to_pbx, from_browser, strict=True):
                # RFC 3264 6.1: the PBX is answered with what the browser accepted, no more.
                browser_names = {e.lower() for e in theirs.encodings()}
                assert {e.lower() for e in mine.encodings()} <= browser_names, (mine, theirs)
            for section in to_pbx:
                assert has_encoding(section, expect[section.kind] + "/"), answer

            stats = await peer.wait_for_audio(min_frames=100, timeout_s=20)
            if "video" in kinds:
                stats = await peer.wait_for_video(min_frames=20, timeout_s=20)
            show(f"PBX -> browser {expect}", stats, phones)
            assert_tone(stats)
            for kind, phone in phones.items():
                assert len(phone.received) > 20, (kind, len(phone.received))
                # The browser sent the codec expected, with the PBX's payload type.
                [codec] = [
                    c for c in dict(streams)[kind] if c.name == expect[kind]
                ]  # fmt: skip
                arrived = {p.payload_type for p in phone.received}
                assert arrived == {codec.payload_type}, (kind, arrived, codec)
            bye = await pbx.hang_up(dialog, gateway.address("UDP"))
            assert bye.status == 200, bye
            nursery.cancel_scope.cancel()
            return browser_offer, answer


async def test_the_pbx_calls_the_browser_with_opus(tmp_path: Path) -> None:
    await pbx_calls_browser(tmp_path, [("audio", [OPUS])], {"audio": "opus"})


async def test_the_pbx_calls_the_browser_with_audio_and_vp8_bundled(tmp_path: Path) -> None:
    await pbx_calls_browser(
        tmp_path, [("audio", [OPUS, PCMU]), ("video", [VP8])], {"audio": "opus", "video": "vp8"}
    )


async def test_the_pbx_calls_the_browser_with_g722_first(tmp_path: Path) -> None:
    # G.722's rtpmap says 8000 for a 16 kHz codec (RFC 3551 4.5.2): it must reach the
    # browser as written, static payload type 9 first, and be what flows.
    browser_offer, _ = await pbx_calls_browser(
        tmp_path, [("audio", [G722, PCMU])], {"audio": "g722"}
    )
    [audio] = sections(browser_offer)
    print("offered to the browser:", audio.encodings())
    assert audio.encodings()[:2] == ["G722/8000", "PCMU/8000"], browser_offer
    assert audio.payload_types[:2] == [9, 0], browser_offer
