"""Media that lasts through ``rtcgw run``: digest retries, hold, codec changes, late offers,
ICE restarts and a phone's long hold, with aiortc as the browser's WebRTC stack.

The browser is the scripted SIP-over-WebSocket client carrying aiortc's SDP; the PBX is a
small SIP user agent here (``Pbx``: UAS and UAC on one UDP socket, on the PBX's address)
with an ``RtpPeer`` phone, which echoes the browser's tone back or plays its own. aiortc
cannot renegotiate, so where the browser must answer a re-offer the scripted browser
answers with aiortc's own SDP with the direction edited: its ICE and DTLS state stay as
they are, which is what the gateway promises to keep. The gateway runs the handbook's
configuration.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import trio

from rtcgw.sip import Dialog, Header, Request, Response, Via, make_response, parse_message
from rtcgw.sip.ids import new_branch, new_tag
from rtcgw.sip.transport import Transport
from rtcgw.sip.uri import parse_uri
from tests.integration.browser import Browser, Call
from tests.integration.gateway import RunningGateway
from tests.integration.handbook import handbook_config
from tests.integration.rtp_peer import RtpPeer, audio_destination
from tests.integration.sipp import finish, free_udp_port, start_scenario
from tests.integration.test_handbook import handbook_gateway
from tests.integration.webrtc_peer import PeerStats, WebRtcPeer

TONE_HZ = 1000.0
SDP = "application/sdp"
DIRECTIONS = ("sendrecv", "sendonly", "recvonly", "inactive")
#: What an answerer says to each offered direction (RFC 3264 6.1), when it goes along.
ANSWERING = {
    "sendrecv": "sendrecv",
    "sendonly": "recvonly",
    "recvonly": "sendonly",
    "inactive": "inactive",
}


# -- SDP text helpers ---------------------------------------------------------------------------


def values(sdp: str, attribute: str) -> list[str]:
    """The values of every ``a=ATTRIBUTE:`` line (or the bare ``a=ATTRIBUTE`` lines)."""
    found = []
    for line in sdp.splitlines():
        if line == f"a={attribute}":
            found.append("")
        elif line.startswith(f"a={attribute}:"):
            found.append(line.split(":", 1)[1])
    return found


def direction(sdp: str) -> str:
    """The direction of the first audio m-line (sendrecv when none is written)."""
    in_audio = False
    for line in sdp.splitlines():
        if line.startswith("m="):
            if in_audio:
                break
            in_audio = line.startswith("m=audio ")
        elif in_audio and line[2:] in DIRECTIONS:
            return line[2:]
    return "sendrecv"


def audio_port(sdp: str) -> int:
    """The port of the first audio m-line."""
    line = next(line for line in sdp.splitlines() if line.startswith("m=audio "))
    return int(line.split()[1])


def audio_formats(sdp: str) -> list[str]:
    """The formats (payload types) of the first audio m-line."""
    line = next(line for line in sdp.splitlines() if line.startswith("m=audio "))
    return line.split()[3:]


def origin(sdp: str) -> tuple[str, int]:
    """The o= line's session id and version."""
    line = next(line for line in sdp.splitlines() if line.startswith("o="))
    fields = line.split()
    return fields[1], int(fields[2])


def transport_of(sdp: str) -> dict[str, object]:
    """What identifies a WebRTC peer's transport in its SDP: port, ICE, fingerprint."""
    return {
        "port": audio_port(sdp),
        "ufrag": values(sdp, "ice-ufrag"),
        "pwd": values(sdp, "ice-pwd"),
        "fingerprint": values(sdp, "fingerprint"),
    }


def edited(
    sdp: str,
    *,
    version: int,
    direction_to: str | None = None,
    setup: str | None = None,
    ice: tuple[str, str] | None = None,
) -> str:
    """aiortc's SDP with the o= version advanced by ``version`` and the direction, DTLS
    setup role or ICE credentials replaced: a browser's re-offer or re-answer."""
    out = []
    for line in sdp.splitlines():
        new = line
        if line.startswith("o="):
            fields = line.split()
            fields[2] = str(int(fields[2]) + version)
            new = " ".join(fields)
        elif direction_to is not None and line[2:] in DIRECTIONS:
            new = f"a={direction_to}"
        elif setup is not None and line.startswith("a=setup:"):
            new = f"a=setup:{setup}"
        elif ice is not None and line.startswith("a=ice-ufrag:"):
            new = f"a=ice-ufrag:{ice[0]}"
        elif ice is not None and line.startswith("a=ice-pwd:"):
            new = f"a=ice-pwd:{ice[1]}"
        out.append(new)
    return "\r\n".join(out) + "\r\n"


def only_codecs(sdp: str, payload_types: tuple[int, ...]) -> str:
    """aiortc's SDP with its audio m-line reduced to ``payload_types`` (and their rtpmap)."""
    keep = {str(pt) for pt in payload_types}
    out = []
    for line in sdp.splitlines():
        if line.startswith("m=audio "):
            fields = line.split()
            out.append(" ".join(fields[:3] + [f for f in fields[3:] if f in keep]))
            continue
        match = re.match(r"a=(rtpmap|fmtp|rtcp-fb):(\d+) ", line)
        if match is None or match.group(2) in keep:
            out.append(line)
    return "\r\n".join(out) + "\r\n"


# -- the PBX ----------------------------------------------------------------------------------


@dataclass
class Pbx:
    """A SIP user agent on the PBX's UDP port: the gateway's SIP side talks to it.

    As UAS it answers the gateway's INVITE (after a digest challenge when ``challenge``
    is 401 or 407) with the phone's SDP, answers re-INVITEs going along with the offered
    direction (the phone echoes only while the PBX sends), and answers everything else
    200. As UAC it calls through the gateway (``call``) and re-INVITEs (``reinvite``).
    Every request it receives is kept in ``requests``.
    """

    sock: trio.socket.SocketType
    phone: RtpPeer
    challenge: int | None = None
    requests: list[Request] = field(default_factory=list)
    dialog: Dialog | None = None
    #: the final response to our INVITE (``call``)
    final: Response | None = None
    gateway: tuple[str, int] | None = None
    tag: str = field(default_factory=new_tag)
    #: payload types of the phone's SDP
    payload_types: tuple[int, ...] = (0,)
    _sent: dict[str, Response] = field(default_factory=dict)
    _waiting: dict[tuple[int, str], trio.MemorySendChannel[Response]] = field(default_factory=dict)

    @property
    def port(self) -> int:
        return int(self.sock.getsockname()[1])

    @property
    def contact(self) -> str:
        return f"sip:pbx@127.0.0.1:{self.port}"

    def invites(self) -> list[Request]:
        """The INVITEs received, initial and re-INVITEs, in order."""
        return [r for r in self.requests if r.method == "INVITE"]

    def via(self) -> Via:
        return Via.new(Transport.UDP, "127.0.0.1", self.port, new_branch())

    async def serve(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        while True:
            data, source = await self.sock.recvfrom(65536)
            message = parse_message(data)
            source = (source[0], source[1])
            if isinstance(message, Response):
                waiting = self._waiting.get((message.cseq.seq, message.cseq.method))
                if waiting is not None:
                    waiting.send_nowait(message)
                continue
            branch = message.top_via.branch or ""
            if message.method != "ACK" and branch in self._sent:
                # A retransmission: the same answer again.
                await self.sock.sendto(bytes(self._sent[branch]), source)
                continue
            self.requests.append(message)
            await self._on_request(message, source)

    async def _on_request(self, request: Request, source: tuple[str, int]) -> None:
        method = request.method
        if method == "ACK":
            return
        if method == "INVITE" and request.to_tag is None:
            self.gateway = source
            credentials = request.has("Authorization") or request.has("Proxy-Authorization")
            if self.challenge is not None and not credentials:
                name = "WWW-Authenticate" if self.challenge == 401 else "Proxy-Authenticate"
                challenge = f'Digest realm="rtcgw.test", nonce="{secrets.token_hex(8)}", qop="auth"'
                await self._respond(request, self.challenge, source, (Header(name, challenge),))
                return
            await self._respond(request, 100, source)
            offer = request.body.decode()
            self.dialog = Dialog.from_uas(request, self.tag, parse_uri(self.contact))
            await self._answer(request, offer, source)
            return
        if method == "INVITE":
            assert self.dialog is not None
            self.dialog.receive_request(request)
            await self._answer(request, request.body.decode(), source)
            return
        await self._respond(request, 200, source)

    async def _answer(self, request: Request, offer: str, source: tuple[str, int]) -> None:
        """200 with the phone's SDP going along with the offer's direction; the phone
        echoes only while it may send."""
        answer = ANSWERING[direction(offer)] if offer else "sendrecv"
        self.phone.echo = answer in ("sendrecv", "sendonly")
        body = self.phone.sdp(payload_types=self.payload_types, direction=answer).encode()
        response = await self._respond(request, 200, source, body=body)
        if self.dialog is not None and request.to_tag is None:
            self.dialog.response_sent(response)

    async def _respond(
        self,
        request: Request,
        status: int,
        to: tuple[str, int],
        headers: tuple[Header, ...] = (),
        *,
        body: bytes = b"",
    ) -> Response:
        if status == 200 and request.method == "INVITE":
            headers = (*headers, Header("Contact", f"<{self.contact}>"))
        response = make_response(
            request,
            status,
            to_tag=self.tag if status > 100 else None,
            headers=headers,
            body=body,
            content_type=SDP if body else None,
        )
        if status >= 200:
            self._sent[request.top_via.branch or ""] = response
        await self.sock.sendto(bytes(response), to)
        return response

    # -- UAC -----------------------------------------------------------------------------------

    async def _transaction(self, request: Request, to: tuple[str, int]) -> Response:
        """Send ``request`` and return its final response (retransmitted every 500 ms
        until a response comes; the caller's fail_after bounds the wait)."""
        send, receive = trio.open_memory_channel[Response](16)
        key = (request.cseq.seq, request.cseq.method)
        self._waiting[key] = send
        try:
            answered = False
            while True:
                if not answered:
                    await self.sock.sendto(bytes(request), to)
                with trio.move_on_after(0.5):
                    response = await receive.receive()
                    answered = True
                    if response.final:
                        return response
        finally:
            del self._waiting[key]

    async def call(self, gateway: tuple[str, int], user: str, sdp: str) -> Response:
        """INVITE ``user`` at the gateway (an SDP offer, or none for a late offer); the
        final response, with the dialog made on a 2xx (not ACKed yet: ``ack``)."""
        self.gateway = gateway
        host, port = gateway
        headers = (
            Header("Via", str(self.via())),
            Header("Max-Forwards", "70"),
            Header("From", f"<sip:bob@127.0.0.1:{self.port}>;tag={self.tag}"),
            Header("To", f"<sip:{user}@{host}:{port}>"),
            Header("Call-ID", secrets.token_hex(10)),
            Header("CSeq", "1 INVITE"),
            Header("Contact", f"<{self.contact}>"),
        )
        invite = Request("INVITE", parse_uri(f"sip:{user}@{host}:{port}"), headers)
        invite = invite.with_body(sdp.encode(), SDP if sdp else None)
        final = self.final = await self._transaction(invite, gateway)
        if final.success:
            self.dialog = Dialog.from_uac(invite, final)
        return final

    async def ack(self, final: Response, *, sdp: str = "") -> None:
        """ACK a 2xx to our INVITE (with the answer of a late offer)."""
        assert self.dialog is not None and self.gateway is not None
        ack = self.dialog.create_ack(
            final.cseq.seq, self.via(), body=sdp.encode(), content_type=SDP if sdp else None
        )
        await self.sock.sendto(bytes(ack), self.gateway)

    async def reinvite(self, sdp: str, *, answer: Callable[[str], str] | None = None) -> Response:
        """A re-INVITE with ``sdp`` in the dialog (none: a late offer, whose 2xx offer
        ``answer`` answers in the ACK); a 2xx is ACKed. The final response."""
        assert self.dialog is not None and self.gateway is not None
        request = self.dialog.create_request(
            "INVITE", self.via(), body=sdp.encode(), content_type=SDP if sdp else None
        )
        final = await self._transaction(request, self.gateway)
        if final.success:
            self.dialog.receive_response(final)
            late = answer(final.body.decode()) if answer is not None else ""
            await self.ack(final, sdp=late)
        return final

    async def bye(self) -> Response:
        assert self.dialog is not None and self.gateway is not None
        return await self._transaction(self.dialog.create_request("BYE", self.via()), self.gateway)


@dataclass
class Rig:
    """One test's gateway, browser (scripted signaling + aiortc media), PBX and phone."""

    gateway: RunningGateway
    alice: Browser
    peer: WebRtcPeer
    phone: RtpPeer
    pbx: Pbx


@asynccontextmanager
async def rig(tmp_path: Path, *, echo: bool = True) -> AsyncIterator[Rig]:
    """The gateway on the handbook's configuration with alice registered, aiortc, and the
    PBX (with its phone, echoing when ``echo``) serving on the PBX's port."""
    pbx_port = free_udp_port()
    registrar = await start_scenario("registrar", "-p", str(pbx_port))
    config = handbook_config(tmp_path, pbx_port)
    async with (
        handbook_gateway(config) as (gateway, alice),
        WebRtcPeer.start() as peer,
        RtpPeer.open(echo=echo) as phone,
    ):
        assert (await alice.register()).status == 200
        assert await finish(registrar) == 0
        await gateway.wait_for("binding.changed")
        sock = trio.socket.socket(trio.socket.AF_INET, trio.socket.SOCK_DGRAM)
        with sock:
            await sock.bind(("127.0.0.1", pbx_port))
            pbx = Pbx(sock, phone)
            async with trio.open_nursery() as nursery:
                await nursery.start(pbx.serve)
                try:
                    yield Rig(gateway, alice, peer, phone, pbx)
                finally:
                    nursery.cancel_scope.cancel()


async def browser_calls(rig: Rig, *, password: str | None = None) -> tuple[Call, str, str]:
    """alice calls bob at the PBX with aiortc's offer; confirmed, aiortc has the answer.
    Returns the call, aiortc's offer and the gateway's answer."""
    offer = await rig.peer.offer(audio="pcmu", tone_hz=TONE_HZ)
    call, final = await rig.alice.invite("bob", sdp=offer.encode(), password=password)
    assert final.status == 200, final
    await rig.alice.ack(call)
    answer = final.body.decode()
    await rig.peer.accept_answer(answer)
    return call, offer, answer


async def hears_the_tone(peer: WebRtcPeer, *, after: int = 0, frames: int = 75) -> PeerStats:
    """Wait until aiortc decoded ``frames`` more audio frames than ``after``; its stats,
    which must show the tone."""
    stats = await peer.wait_for_audio(min_frames=after + frames, timeout_s=15)
    assert stats.audio_hz is not None and abs(stats.audio_hz - TONE_HZ) < 20, stats
    return stats


async def frames_now(peer: WebRtcPeer) -> int:
    return (await peer.stats()).audio_frames


async def until(check: Callable[[], bool], *, steps: int = 400) -> None:
    """Poll ``check`` every 50 ms (the test's fail_after bounds the wait as well)."""
    for _ in range(steps):
        if check():
            return
        await trio.sleep(0.05)
    raise AssertionError("condition never held")


async def hang_up(rig: Rig, call: Call) -> list[dict[str, object]]:
    """alice hangs up; the gateway's per-stream figures (``media.stream_closed``)."""
    assert (await rig.alice.bye(call)).status == 200
    await until(lambda: any(r.method == "BYE" for r in rig.pbx.requests))
    return await rig.gateway.wait_for("media.stream_closed", count=2)


def srtp_drops(streams: list[dict[str, object]]) -> dict[str, int]:
    """SRTP authentication and replay drops over every stream of the call."""
    total: dict[str, int] = {}
    for stream in streams:
        dropped = stream.get("dropped")
        assert isinstance(dropped, dict), stream
        for reason, count in dropped.items():
            if reason.startswith("srtp"):
                total[reason] = total.get(reason, 0) + int(count)
    return total


async def browser_answers_reoffer(rig: Rig, call: Call, answer_sdp: str) -> tuple[Request, Request]:
    """The gateway's re-offer reaches alice, who answers ``answer_sdp`` (200) and gets
    the ACK. Returns the re-INVITE and the ACK."""
    reinvite = await rig.alice.receive_in_dialog(call, "INVITE")
    await rig.alice.respond(reinvite, 200, body=answer_sdp.encode())
    ack = await rig.alice.receive_in_dialog(call, "ACK")
    return reinvite, ack


# -- the tests ----------------------------------------------------------------------------------


@pytest.mark.parametrize("challenge", [401, 407])
async def test_a_challenged_browser_retries_with_the_same_offer_and_dtls_completes(
    tmp_path: Path, challenge: int
) -> None:
    with trio.fail_after(60):
        async with rig(tmp_path) as r:
            r.pbx.challenge = challenge
            call, _offer, answer = await browser_calls(r, password="secret")
            assert [c.status for c in call.challenges] == [challenge]
            first, retry = r.pbx.invites()
            # One media session for both attempts: the PBX was offered the same ports in
            # the same SDP session, so the browser's attempt and its retry share the
            # gateway's ICE credentials and certificate as well.
            assert retry.has("Authorization" if challenge == 401 else "Proxy-Authorization")
            assert audio_port(first.body.decode()) == audio_port(retry.body.decode())
            assert origin(first.body.decode())[0] == origin(retry.body.decode())[0]
            stats = await hears_the_tone(r.peer, frames=100)
            print(
                f"{challenge}: the PBX was offered port {audio_port(retry.body.decode())} "
                f"twice; DTLS {stats.dtls_state}, browser heard {stats.audio_hz:.1f} Hz "
                f"in {stats.audio_frames} frames"
            )
            assert stats.dtls_state == "connected"
            assert values(answer, "setup") == ["passive"]
            streams = await hang_up(r, call)
            [connected] = r.gateway.matching("media.dtls_connected")
            assert connected.get("leg") == "a"
            assert srtp_drops(streams) == {}


async def test_the_browser_holds_and_resumes_and_hears_the_tone_again(tmp_path: Path) -> None:
    with trio.fail_after(60):
        async with rig(tmp_path) as r:
            call, offer, answer = await browser_calls(r)
            await hears_the_tone(r.peer)

            held = await r.alice.reinvite(
                call, sdp=edited(offer, version=1, direction_to="sendonly").encode()
            )
            assert held.status == 200, held
            to_pbx = r.pbx.invites()[-1].body.decode()
            print(f"hold: PBX offered {direction(to_pbx)}, browser answered "
                  f"{direction(held.body.decode())}")  # fmt: skip
            assert direction(to_pbx) == "sendonly"
            assert direction(held.body.decode()) == "recvonly"
            # The browser's leg is written from its own state: same transport.
            assert transport_of(held.body.decode()) == transport_of(answer)
            assert not r.phone.echo
            frames_held = await frames_now(r.peer)

            resumed = await r.alice.reinvite(
                call, sdp=edited(offer, version=2, direction_to="sendrecv").encode()
            )
            assert resumed.status == 200, resumed
            assert direction(r.pbx.invites()[-1].body.decode()) == "sendrecv"
            assert direction(resumed.body.decode()) == "sendrecv"
            assert transport_of(resumed.body.decode()) == transport_of(answer)
            versions = [origin(m.body.decode())[1] for m in (held, resumed)]
            assert versions[1] > versions[0] > origin(answer)[1]
            stats = await hears_the_tone(r.peer, after=frames_held, frames=100)
            print(f"resumed: {stats.audio_frames - frames_held} frames at {stats.audio_hz:.1f} Hz")
            streams = await hang_up(r, call)
            assert srtp_drops(streams) == {}


async def test_the_pbx_holds_and_resumes_and_the_browser_hears_the_tone_again(
    tmp_path: Path,
) -> None:
    with trio.fail_after(60):
        async with rig(tmp_path) as r:
            call, offer, answer = await browser_calls(r)
            await hears_the_tone(r.peer)
            # aiortc's own description, answering as the DTLS client it already is.
            reanswer = edited(offer, version=1, setup="active")

            async with trio.open_nursery() as nursery:
                held: list[Response] = []

                async def pbx_holds() -> None:
                    r.phone.echo = False
                    sdp = r.phone.sdp(payload_types=(0,), direction="inactive")
                    held.append(await r.pbx.reinvite(sdp))

                nursery.start_soon(pbx_holds)
                reoffer, _ = await browser_answers_reoffer(
                    r, call, edited(reanswer, version=0, direction_to="inactive")
                )
            assert held[0].status == 200, held[0]
            lines = reoffer.body.decode()
            to_pbx = held[0].body.decode()
            print(f"hold: browser offered {direction(lines)}, PBX got {direction(to_pbx)}")
            # The gateway wrote a WebRTC re-offer from the browser leg's state.
            assert "UDP/TLS/RTP/SAVPF" in lines and direction(lines) == "inactive"
            assert transport_of(lines) == transport_of(answer)
            assert direction(to_pbx) == "inactive"
            frames_held = await frames_now(r.peer)

            async with trio.open_nursery() as nursery:
                resumed: list[Response] = []

                async def pbx_resumes() -> None:
                    sdp = r.phone.sdp(payload_types=(0,), direction="sendrecv")
                    resumed.append(await r.pbx.reinvite(sdp))
                    r.phone.echo = True

                nursery.start_soon(pbx_resumes)
                reoffer, _ = await browser_answers_reoffer(
                    r, call, edited(reanswer, version=1, direction_to="sendrecv")
                )
            assert resumed[0].status == 200, resumed[0]
            assert direction(reoffer.body.decode()) == "sendrecv"
            assert transport_of(reoffer.body.decode()) == transport_of(answer)
            stats = await hears_the_tone(r.peer, after=frames_held, frames=100)
            print(f"resumed: {stats.audio_frames - frames_held} frames at {stats.audio_hz:.1f} Hz")
            streams = await hang_up(r, call)
            assert srtp_drops(streams) == {}


async def pbx_calls_alice(
    r: Rig, offer: str, answer_in_ack: Callable[[str], str] | None = None
) -> tuple[Call, Request, str]:
    """The PBX calls alice (``offer``: its SDP, "" for a late offer); aiortc answers the
    offer alice gets, or offers when she gets none and takes the answer from the ACK.
    ``answer_in_ack`` makes the PBX's ACK answer from the offer in the 200. Returns alice's
    call, her INVITE and her SDP (aiortc's answer or offer)."""
    finals: list[Response] = []
    gateway = r.gateway.address("UDP")

    async def pbx_side() -> None:
        final = await r.pbx.call(gateway, "alice", offer)
        finals.append(final)
        assert final.status == 200, final
        late = answer_in_ack(final.body.decode()) if answer_in_ack is not None else ""
        await r.pbx.ack(final, sdp=late)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(pbx_side)
        invite = await r.alice.receive_request("INVITE")
        if invite.body:
            mine = await r.peer.answer(invite.body.decode(), tone_hz=TONE_HZ)
        else:
            mine = await r.peer.offer(audio="pcmu", tone_hz=TONE_HZ)
        call = await r.alice.answer(invite, sdp=mine.encode())
        ack = await r.alice.receive_in_dialog(call, "ACK")
        if not invite.body:
            await r.peer.accept_answer(ack.body.decode())
    return call, invite, mine


async def test_the_pbx_switches_from_pcmu_to_pcma_and_the_browser_decodes_it(
    tmp_path: Path,
) -> None:
    with trio.fail_after(60):
        async with rig(tmp_path, echo=False) as r:
            r.pbx.payload_types = (0, 8)
            call, invite, answer = await pbx_calls_alice(r, r.phone.sdp(payload_types=(0, 8)))
            # The browser was offered and accepted both.
            assert audio_formats(invite.body.decode())[:2] == ["0", "8"]
            assert {"0", "8"} <= set(audio_formats(answer))
            assert r.pbx.final is not None
            media_to = audio_destination(r.pbx.final.body.decode())
            await r.phone.send_tone(media_to, hz=600.0, payload_type=0, seconds=2.0)
            before = await r.peer.stats()
            print(f"PCMU: browser heard {before.audio_hz} Hz")
            assert before.audio_hz is not None and abs(before.audio_hz - 600.0) < 20

            async with trio.open_nursery() as nursery:
                switched: list[Response] = []

                async def pbx_switches() -> None:
                    pcma = r.phone.sdp(payload_types=(8,))
                    switched.append(await r.pbx.reinvite(pcma))

                nursery.start_soon(pbx_switches)
                reoffer, _ = await browser_answers_reoffer(
                    r, call, only_codecs(edited(answer, version=1), (8,))
                )
            assert audio_formats(reoffer.body.decode()) == ["8"]
            assert transport_of(reoffer.body.decode()) == transport_of(invite.body.decode())
            assert switched[0].status == 200, switched[0]
            assert audio_formats(switched[0].body.decode()) == ["8"]
            await r.phone.send_tone(media_to, hz=440.0, payload_type=8, seconds=2.0)
            after = await r.peer.stats()
            print(
                f"PCMA: browser heard {after.audio_hz} Hz, "
                f"{after.audio_frames - before.audio_frames} frames after the switch"
            )
            assert after.audio_hz is not None and abs(after.audio_hz - 440.0) < 20
            assert after.audio_frames - before.audio_frames >= 75
            assert (await r.pbx.bye()).status == 200
            bye = await r.alice.receive_in_dialog(call, "BYE")
            await r.alice.respond(bye, 200)
            streams = await r.gateway.wait_for("media.stream_closed", count=2)
            assert srtp_drops(streams) == {}


async def test_a_late_offer_from_the_pbx_is_answered_in_its_ack_and_media_flows(
    tmp_path: Path,
) -> None:
    with trio.fail_after(60):
        async with rig(tmp_path) as r:
            offers: list[str] = []

            def phone_answers(offer: str) -> str:
                offers.append(offer)
                return r.phone.sdp(payload_types=(0,))

            call, invite, mine = await pbx_calls_alice(r, "", answer_in_ack=phone_answers)
            # The gateway offered to the browser itself (WebRTC, actpass) and aiortc
            # answered in its 200 ...
            offered = invite.body.decode()
            assert re.search(r"^m=audio \d+ UDP/TLS/RTP/SAVPF 0 8 9 111 101\r?$", offered, re.M)
            assert values(offered, "setup") == ["actpass"]
            assert values(offered, "rtcp-mux") == [""] and len(values(offered, "fingerprint")) == 1
            assert values(mine, "setup") in (["active"], ["passive"])
            # ... whose ACK carried nothing, while the PBX got a plain RTP offer of what
            # aiortc accepted in the 200 and answered it in its ACK.
            [ack] = [m for m in r.alice.received if isinstance(m, Request) and m.method == "ACK"]
            assert ack.body == b""
            [offer] = offers
            assert re.search(r"^m=audio \d+ RTP/AVP 0[ \r]", offer, re.M), offer
            assert set(audio_formats(offer)) <= set(audio_formats(mine)), (offer, mine)
            assert "a=fingerprint" not in offer and "a=ice-ufrag" not in offer
            stats = await hears_the_tone(r.peer, frames=100)
            print(
                f"gateway offered the browser {audio_formats(offered)}, "
                f"aiortc accepted {audio_formats(mine)}, the PBX was offered "
                f"{audio_formats(offer)}; browser heard {stats.audio_hz:.1f} Hz "
                f"in {stats.audio_frames} frames"
            )
            assert (await r.pbx.bye()).status == 200
            bye = await r.alice.receive_in_dialog(call, "BYE")
            await r.alice.respond(bye, 200)
            streams = await r.gateway.wait_for("media.stream_closed", count=2)
            assert srtp_drops(streams) == {}


async def test_an_offerless_reinvite_from_the_pbx_is_answered_with_our_offer(
    tmp_path: Path,
) -> None:
    with trio.fail_after(60):
        async with rig(tmp_path) as r:
            call, _, _ = await browser_calls(r)
            before = await hears_the_tone(r.peer)
            first_offer = r.pbx.invites()[0].body.decode()
            offers: list[str] = []

            def phone_answers(offer: str) -> str:
                offers.append(offer)
                return r.phone.sdp(payload_types=(0,))

            final = await r.pbx.reinvite("", answer=phone_answers)
            assert final.status == 200, final
            # RFC 3261 14.1: our 200 carried an offer for the PBX's leg, written from its
            # state (same port, plain RTP), and the ACK its answer.
            [offer] = offers
            assert re.search(r"^m=audio \d+ RTP/AVP 0[ \r]", offer, re.M), offer
            assert audio_port(offer) == audio_port(first_offer)
            assert "a=fingerprint" not in offer and "a=ice-ufrag" not in offer
            after = await hears_the_tone(r.peer, after=before.audio_frames)
            print(
                f"PBX re-INVITE without SDP answered with {audio_formats(offer)} on port "
                f"{audio_port(offer)}; browser heard {after.audio_hz} Hz afterwards"
            )
            streams = await hang_up(r, call)
            assert srtp_drops(streams) == {}
            # The browser's leg never saw a re-INVITE.
            assert not any(
                isinstance(m, Request) and m.method == "INVITE" for m in r.alice.received
            )


async def test_an_ice_restart_from_the_browser_stays_on_its_leg(tmp_path: Path) -> None:
    with trio.fail_after(60):
        async with rig(tmp_path) as r:
            call, offer, answer = await browser_calls(r)
            await hears_the_tone(r.peer)
            restart = edited(
                offer, version=1, ice=("rst" + secrets.token_hex(4), secrets.token_hex(12))
            )
            restarted = await r.alice.reinvite(call, sdp=restart.encode())
            assert restarted.status == 200, restarted
            before, after = transport_of(answer), transport_of(restarted.body.decode())
            print(f"gateway ICE {before['ufrag']} -> {after['ufrag']}, port {after['port']}")
            assert after["ufrag"] != before["ufrag"] and after["pwd"] != before["pwd"]
            assert (after["port"], after["fingerprint"]) == (before["port"], before["fingerprint"])
            assert origin(restarted.body.decode())[1] > origin(answer)[1]
            [answered] = await r.gateway.wait_for("media.ice_restart_answered")
            assert answered.get("leg") == "a"
            await hang_up(r, call)
            # The PBX saw the first INVITE only: the restart never left the browser's leg.
            assert [q.method for q in r.pbx.requests] == ["INVITE", "ACK", "BYE"]


async def test_a_long_hold_and_a_new_ssrc_keep_the_browsers_stream_continuous(
    tmp_path: Path,
) -> None:
    with trio.fail_after(60):
        async with rig(tmp_path) as r:
            call, _offer, answer = await browser_calls(r)
            ours = int(values(answer, "ssrc")[0].split()[0])
            heard = await hears_the_tone(r.peer)
            phases = [
                # A phone back from an hour's hold: same SSRC, its sequence and clock ran on.
                ("same SSRC", None),
                # ... and one that starts a new stream as well.
                ("new SSRC", secrets.randbits(32)),
            ]
            for name, ssrc in phases:
                r.phone.echo = False
                await trio.sleep(1.0)  # the hold: nothing toward the browser
                r.phone.echo_as(ssrc=ssrc, seq_jump=40000, ts_jump=3600 * 8000)
                r.phone.echo = True
                resumed_at = trio.current_time()
                frames = heard.audio_frames
                heard = await hears_the_tone(r.peer, after=frames, frames=100)
                print(f"{name}: {heard.audio_frames - frames} frames at {heard.audio_hz:.1f} Hz")

                # A receiver report written after the resume, from the browser's SRTP stack.
                def reported(at: float = resumed_at) -> bool:
                    blocks = r.phone.report_blocks()
                    return any(b.arrival > at + 0.5 and b.ssrc == ours for b in blocks)

                await until(reported)
            blocks = [b for b in r.phone.report_blocks() if b.ssrc == ours]
            highest = [b.highest_sequence for b in blocks]
            print(
                f"browser reports on SSRC {ours}: highest sequence {highest[0]} -> "
                f"{highest[-1]}, cumulative lost {blocks[-1].cumulative_lost}, "
                f"{r.phone.echoed} packets echoed"
            )
            # One stream at the browser, numbered on without a jump.
            assert {b.ssrc for b in r.phone.report_blocks()} == {ours}
            assert highest == sorted(highest)
            assert highest[-1] - highest[0] <= r.phone.echoed
            assert blocks[-1].cumulative_lost <= 25
            streams = await hang_up(r, call)
            dropped = {s.get("leg"): s.get("dropped") for s in streams}
            print(f"gateway drops per leg: {dropped}")
            assert srtp_drops(streams) == {}
