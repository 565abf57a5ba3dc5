"""DTMF through ``rtcgw run``: SIP INFO from a browser becomes RFC 4733 toward the PBX,
and RFC 4733 from the PBX reaches the browser as INFO when a rule asks.

The browser is the scripted SIP-over-WebSocket client with aiortc for its media (its offer
gets telephone-event added, as browsers offer it); the PBX is a small UAS here with an
``RtpPeer`` phone for its media, so what arrives in RTP can be read packet by packet.
The gateway runs the handbook's configuration.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import trio

from rtcgw.media.dtmf import DtmfDigit, parse_dtmf_relay
from rtcgw.sip import Request, Response, parse_message
from rtcgw.sip.ids import new_tag
from rtcgw.sip.message import Header, make_response
from tests.integration.browser import Browser, Call
from tests.integration.handbook import handbook_config
from tests.integration.rtp_peer import RtpPeer, audio_destination
from tests.integration.sipp import finish, free_udp_port, start_scenario
from tests.integration.test_handbook import handbook_gateway
from tests.integration.webrtc_peer import WebRtcPeer

TELEPHONE_EVENT = 101


def with_telephone_event(sdp: str) -> str:
    """``sdp`` (aiortc's offer, which has no telephone-event) offering telephone-event/8000
    on its audio m-line, as Chrome and Firefox do."""
    lines = sdp.splitlines()
    out: list[str] = []
    for line in lines:
        out.append(f"{line} {TELEPHONE_EVENT}" if line.startswith("m=audio ") else line)
        if line.startswith("a=rtpmap:0 "):
            out.append(f"a=rtpmap:{TELEPHONE_EVENT} telephone-event/8000")
    assert any(line.startswith(f"a=rtpmap:{TELEPHONE_EVENT} ") for line in out), sdp
    return "\r\n".join(out) + "\r\n"


@dataclass
class Uas:
    """The PBX: answers one INVITE with the phone's SDP, answers every later request 200
    and keeps them for the test to look at."""

    sock: trio.socket.SocketType
    phone: RtpPeer
    invite: Request | None = None
    requests: list[Request] = field(default_factory=list)
    tag: str = field(default_factory=new_tag)

    async def serve(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        while True:
            data, source = await self.sock.recvfrom(65536)
            message = parse_message(data)
            if not isinstance(message, Request):
                continue
            if message.method == "INVITE" and self.invite is None:
                self.invite = message
                await self._respond(message, 100, source)
                sdp = self.phone.sdp(payload_types=(0, TELEPHONE_EVENT)).encode()
                await self._respond(message, 200, source, body=sdp)
                continue
            self.requests.append(message)
            if message.method not in ("ACK", "INVITE"):
                await self._respond(message, 200, source)

    async def _respond(
        self, request: Request, status: int, to: tuple[str, int], *, body: bytes = b""
    ) -> None:
        headers = (Header("Contact", f"<sip:pbx@127.0.0.1:{self.sock.getsockname()[1]}>"),)
        response: Response = make_response(
            request,
            status,
            to_tag=self.tag if status > 100 else None,
            headers=headers if status == 200 and request.method == "INVITE" else (),
            body=body,
            content_type="application/sdp" if body else None,
        )
        await self.sock.sendto(bytes(response), to[:2])

    def methods(self) -> list[str]:
        return [r.method for r in self.requests]


U = TypeVar("U", bound=Uas)


def pbx(port: int, phone: RtpPeer) -> AbstractAsyncContextManager[Uas]:
    """The UAS on ``port`` (loopback), serving until the block ends."""
    return serving(Uas, port, phone)


@asynccontextmanager
async def serving(kind: type[U], port: int, phone: RtpPeer) -> AsyncIterator[U]:
    """A UAS of ``kind`` on ``port`` (loopback), serving until the block ends."""
    sock = trio.socket.socket(trio.socket.AF_INET, trio.socket.SOCK_DGRAM)
    with sock:
        await sock.bind(("127.0.0.1", port))
        uas = kind(sock, phone)
        async with trio.open_nursery() as nursery:
            await nursery.start(uas.serve)
            try:
                yield uas
            finally:
                nursery.cancel_scope.cancel()


async def call_the_pbx(alice: Browser, peer: WebRtcPeer, uas: Uas) -> Call:
    """alice calls bob at the PBX with aiortc's media (telephone-event added); confirmed."""
    offer = with_telephone_event(await peer.offer(audio="pcmu", tone_hz=1000.0))
    call, final = await alice.invite("bob", sdp=offer.encode())
    assert final.status == 200, final
    await alice.ack(call)
    await peer.accept_answer(final.body.decode())
    invite = uas.invite
    assert invite is not None
    # The PBX was offered telephone-event: the gateway passed the browser's codec on.
    assert "telephone-event/8000" in invite.body.decode()
    return call


async def wait_until_true(check: object, *, step_s: float = 0.05, steps: int = 400) -> None:
    """Poll ``check()`` (the caller's fail_after bounds the wait as well)."""
    assert callable(check)
    for _ in range(steps):
        if check():
            return
        await trio.sleep(step_s)
    raise AssertionError("condition never held")


def _config(tmp_path: Path, pbx_port: int, *, info_rule: bool) -> Path:
    path = handbook_config(tmp_path, pbx_port)
    if info_rule:
        text = path.read_text(encoding="utf-8")
        old = '  { action = "force_rtp" },'
        assert text.count(old) == 1
        text = text.replace(old, old + '\n  { action = "dtmf_info_to_browser" },')
        path.write_text(text, encoding="utf-8")
    return path


async def test_info_digits_reach_the_pbx_as_rfc_4733_and_rfc_4733_gives_no_info_without_the_rule(
    tmp_path: Path,
) -> None:
    pbx_port = free_udp_port()
    with trio.fail_after(90):
        registrar = await start_scenario("registrar", "-p", str(pbx_port))
        config = _config(tmp_path, pbx_port, info_rule=False)
        async with (
            handbook_gateway(config) as (gateway, alice),
            WebRtcPeer.start() as peer,
            RtpPeer.open() as phone,
        ):
            assert (await alice.register()).status == 200
            assert await finish(registrar) == 0
            async with pbx(pbx_port, phone) as uas:
                call = await call_the_pbx(alice, peer, uas)
                # The browser's audio reaches the phone first: the digits go into a stream.
                await phone.wait_for_packets(25, payload_type=0)
                digits = [("1", 100), ("#", 160), ("5", 250)]
                for signal, duration_ms in digits:
                    body = f"Signal={signal}\r\nDuration={duration_ms}\r\n".encode()
                    response = await alice.request(
                        call, "INFO", body=body, content_type="application/dtmf-relay"
                    )
                    assert response.status == 200, response
                await wait_until_true(lambda: len(phone.telephone_events()) >= 3)
                events = phone.telephone_events()
                print(f"RFC 4733 events at the PBX (event, duration units): {events}")
                # Event codes 1, 11 (#), 5; durations in 8 kHz units.
                assert events == [(1, 800), (11, 1280), (5, 2000)]

                # Audio resumes after the digits, numbered on from the last event packet.
                held = len(phone.packets(0))
                await phone.wait_for_packets(held + 10, payload_type=0)
                last_event = phone.packets(TELEPHONE_EVENT)[-1]
                resumed = next(p for p in phone.packets(0) if p.arrival > last_event.arrival)
                assert resumed.seq == (last_event.seq + 1) & 0xFFFF
                assert resumed.timestamp > last_event.timestamp

                # One stream: the events carry the audio's SSRC, and no sequence number
                # is used twice (audio held back while a digit is sent).
                audio = phone.packets(0)
                event_packets = phone.packets(TELEPHONE_EVENT)
                ssrcs = {p.ssrc for p in audio} | {p.ssrc for p in event_packets}
                seqs = [p.seq for p in phone.received]
                print(
                    f"{len(audio)} audio and {len(event_packets)} event packets, SSRCs {ssrcs}, "
                    f"{len(seqs) - len(set(seqs))} repeated sequence numbers"
                )
                assert len(ssrcs) == 1
                assert len(set(seqs)) == len(seqs)
                starts = [p for p in event_packets if p.marker]
                assert len(starts) == 3
                for start in starts:
                    before = [p for p in phone.received if p.arrival < start.arrival]
                    assert before and (before[-1].seq + 1) & 0xFFFF == start.seq
                    assert start.timestamp > before[-1].timestamp

                # RFC 4733 from the phone is relayed, but without the rule no INFO is sent.
                gateway_media = audio_destination(uas.invite.body.decode())  # type: ignore[union-attr]
                assert await phone.send_event(gateway_media, 9, duration_ms=100) > 0
                assert (await alice.bye(call)).status == 200
                await wait_until_true(lambda: "BYE" in uas.methods())
            # The INFOs went no further than the gateway.
            assert uas.methods() == ["ACK", "BYE"]
            assert not [m for m in alice.received if isinstance(m, Request)]
            logged = gateway.matching("media.dtmf")
            assert [(e.get("digit"), e.get("direction")) for e in logged] == [
                ("1", "info->rfc4733"),
                ("#", "info->rfc4733"),
                ("5", "info->rfc4733"),
            ]


async def test_rfc_4733_from_the_pbx_reaches_the_browser_as_info_when_the_rule_asks(
    tmp_path: Path,
) -> None:
    pbx_port = free_udp_port()
    with trio.fail_after(90):
        registrar = await start_scenario("registrar", "-p", str(pbx_port))
        config = _config(tmp_path, pbx_port, info_rule=True)
        async with (
            handbook_gateway(config) as (gateway, alice),
            WebRtcPeer.start() as peer,
            RtpPeer.open() as phone,
        ):
            assert (await alice.register()).status == 200
            assert await finish(registrar) == 0
            async with pbx(pbx_port, phone) as uas:
                call = await call_the_pbx(alice, peer, uas)
                assert uas.invite is not None
                gateway_media = audio_destination(uas.invite.body.decode())
                received: list[DtmfDigit] = []
                for event, duration_ms in ((11, 100), (4, 200)):
                    # Each event's end packet is sent three times: one INFO per event.
                    await phone.send_event(gateway_media, event, duration_ms=duration_ms)
                    info = await alice.receive_in_dialog(call, "INFO")
                    assert info.content_type == "application/dtmf-relay"
                    received.append(parse_dtmf_relay(info.body.decode()))
                    await alice.respond(info, 200)
                print(f"INFOs at the browser: {received}")
                assert received == [DtmfDigit(11, 100), DtmfDigit(4, 200)]
                assert (await alice.bye(call)).status == 200
                await wait_until_true(lambda: "BYE" in uas.methods())
            # No third INFO: the repeated end packets counted once.
            infos = [m for m in alice.received if isinstance(m, Request) and m.method == "INFO"]
            assert len(infos) == 2
            logged = gateway.matching("media.dtmf")
            assert [(e.get("digit"), e.get("direction")) for e in logged] == [
                ("#", "rfc4733->info"),
                ("4", "rfc4733->info"),
            ]
