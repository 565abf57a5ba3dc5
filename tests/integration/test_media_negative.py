"""Attacks on one call's media through ``rtcgw run`` while another call keeps its tone.

The gateway runs the handbook's configuration (two workers, ``/metrics`` on a free port).
The good call: an aiortc browser with a 1 kHz tone, echoed by the PBX's phone. Meanwhile
other calls of the same browser suffer, each on its own media:

- a DTLS fingerprint mismatch (a second aiortc peer whose offer's a=fingerprint is edited);
- a scripted browser (``tests.worker.media.harness``) that checks ICE with a wrong
  password, then, validated and keyed, sends SRTP with bad tags, replays and garbage,
  while a stranger's socket sprays its candidate port;
- RTP from an unexpected address to that call's SIP-side port.

Each must show in ``/metrics`` (``rtcgw_media_dropped_total{reason}``,
``rtcgw_ice_binding_requests_total{result}``, ``rtcgw_dtls_handshakes_total{result}``),
while the good call still hears its tone and no worker restarts.
"""

from __future__ import annotations

import os
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import trio
from aioice import stun

from rtcgw.media.rtp import build_rtp
from rtcgw.sip import Request, Response, parse_message
from rtcgw.sip.ids import new_tag
from rtcgw.sip.message import Header, make_response
from tests.integration.browser import Browser, Call
from tests.integration.common import Samples, scrape, value
from tests.integration.gateway import RunningGateway
from tests.integration.handbook import handbook_config
from tests.integration.rtp_peer import RtpPeer, audio_destination
from tests.integration.sipp import finish, free_udp_port, start_scenario
from tests.integration.test_handbook import handbook_gateway
from tests.integration.webrtc_peer import WebRtcPeer
from tests.worker.media.harness import ScriptedBrowser, junk, udp_socket

TONE_HZ = 1000.0
ATTACKS = 20


@dataclass
class EchoPbx:
    """The PBX: answers every INVITE with the echoing phone's SDP, every other request but
    ACK with 200; keeps the INVITEs (their SDP names the gateway's SIP-side ports)."""

    sock: trio.socket.SocketType
    phone: RtpPeer
    invites: list[Request] = field(default_factory=list)
    tags: dict[str, str] = field(default_factory=dict)

    async def serve(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        while True:
            data, source = await self.sock.recvfrom(65536)
            message = parse_message(data)
            if not isinstance(message, Request) or message.method == "ACK":
                continue
            if message.method == "INVITE" and message.call_id not in self.tags:
                self.tags[message.call_id] = new_tag()
                self.invites.append(message)
                sdp = self.phone.sdp(payload_types=(0,)).encode()
                await self._respond(message, 200, source, body=sdp)
                continue
            await self._respond(message, 200, source)

    async def _respond(
        self, request: Request, status: int, to: tuple[str, int], *, body: bytes = b""
    ) -> None:
        contact = Header("Contact", f"<sip:pbx@127.0.0.1:{self.sock.getsockname()[1]}>")
        response: Response = make_response(
            request,
            status,
            to_tag=self.tags.get(request.call_id, new_tag()),
            headers=(contact,) if request.method == "INVITE" else (),
            body=body,
            content_type="application/sdp" if body else None,
        )
        await self.sock.sendto(bytes(response), to[:2])


@asynccontextmanager
async def echo_pbx(port: int, phone: RtpPeer) -> AsyncIterator[EchoPbx]:
    sock = trio.socket.socket(trio.socket.AF_INET, trio.socket.SOCK_DGRAM)
    with sock:
        await sock.bind(("127.0.0.1", port))
        pbx = EchoPbx(sock, phone)
        async with trio.open_nursery() as nursery:
            await nursery.start(pbx.serve)
            try:
                yield pbx
            finally:
                nursery.cancel_scope.cancel()


async def place_call(alice: Browser, offer: str) -> tuple[Call, Response]:
    call, final = await alice.invite("bob", sdp=offer.encode())
    assert final.status == 200, final
    await alice.ack(call)
    return call, final


def forge_fingerprint(sdp: str) -> str:
    """``sdp`` with every a=fingerprint (aiortc offers several hashes) replaced by random
    bytes of the same length."""

    def forged(match: re.Match[str]) -> str:
        size = len(match.group(2).split(":"))
        return f"a=fingerprint:{match.group(1)} " + ":".join(f"{b:02X}" for b in os.urandom(size))

    edited, count = re.subn(r"a=fingerprint:(\S+) ([0-9A-Fa-f:]+)", forged, sdp)
    assert count >= 1, sdp
    return edited


def counters(samples: Samples) -> dict[str, float]:
    """The figures the attacks move, by short name."""
    names = {
        "dtls_mismatch": (
            "rtcgw_dtls_handshakes_total",
            {"result": "fingerprint_mismatch", "role": "server"},
        ),
        "dtls_ok": ("rtcgw_dtls_handshakes_total", {"result": "ok", "role": "server"}),
        "ice_401": ("rtcgw_ice_binding_requests_total", {"result": "bad-credentials"}),
        "srtp_auth": ("rtcgw_media_dropped_total", {"reason": "srtp_auth"}),
        "srtp_replay": ("rtcgw_media_dropped_total", {"reason": "srtp_replay"}),
        "malformed": ("rtcgw_media_dropped_total", {"reason": "malformed"}),
        "unvalidated": ("rtcgw_media_dropped_total", {"reason": "unvalidated_source"}),
        "unexpected": ("rtcgw_media_dropped_total", {"reason": "unexpected_source"}),
        "restarts": ("rtcgw_worker_restarts_total", {}),
        "workers_up": ("rtcgw_workers_up", {}),
    }
    return {short: value(samples, name, **labels) or 0.0 for short, (name, labels) in names.items()}


async def wait_for_counts(gateway: RunningGateway, wanted: dict[str, float]) -> dict[str, float]:
    """Scrape (bounded) until every figure of ``wanted`` reached its value."""
    seen: dict[str, float] = {}
    for _ in range(100):
        seen = counters(await scrape(gateway))
        if all(seen[name] >= minimum for name, minimum in wanted.items()):
            return seen
        await trio.sleep(0.2)
    raise AssertionError(f"/metrics never showed {wanted}; last seen {seen}")


async def test_attacks_on_one_call_are_counted_while_another_keeps_its_tone(
    tmp_path: Path,
) -> None:
    pbx_port = free_udp_port()
    with trio.fail_after(120):
        registrar = await start_scenario("registrar", "-p", str(pbx_port))
        config = handbook_config(tmp_path, pbx_port)
        async with (
            handbook_gateway(config) as (gateway, alice),
            WebRtcPeer.start() as good,
            WebRtcPeer.start() as forged,
            RtpPeer.open(echo=True) as phone,
            trio.open_nursery() as nursery,
        ):
            assert (await alice.register()).status == 200
            assert await finish(registrar) == 0
            workers = gateway.worker_pids()
            async with echo_pbx(pbx_port, phone) as pbx:
                good_call, good_final = await place_call(
                    alice, await good.offer(audio="pcmu", tone_hz=TONE_HZ)
                )
                await good.accept_answer(good_final.body.decode())
                before = await good.wait_for_audio(min_frames=50, timeout_s=20)
                start = counters(await scrape(gateway))

                # 1. A fingerprint that is not the peer's certificate's.
                forged_offer = forge_fingerprint(await forged.offer(audio="pcmu", tone_hz=500.0))
                forged_call, forged_final = await place_call(alice, forged_offer)
                await forged.accept_answer(forged_final.body.decode())

                # 2. A scripted browser: wrong ICE password, a stranger's junk, then
                #    (validated and keyed) bad tags, replays and garbage.
                scripted = await ScriptedBrowser.open()
                scripted_call, scripted_final = await place_call(alice, scripted.sdp().decode())
                scripted.learn(scripted_final.body)
                await nursery.start(scripted.run)
                for _ in range(3):
                    refused = await scripted.send_check(pwd="x" * 22)
                    assert refused.message_class is stun.Class.ERROR
                stranger = await udp_socket()
                for _ in range(ATTACKS):
                    await stranger.sendto(junk(120, first=0x80), scripted.gateway.address)  # type: ignore[union-attr]
                await scripted.connect()
                for _ in range(ATTACKS):
                    genuine = scripted.protect(scripted.packet())
                    tampered = bytearray(genuine)
                    tampered[-1] ^= 0x01
                    await scripted.send_raw(bytes(tampered))
                    await scripted.send_raw(genuine)
                    await scripted.send_raw(genuine)  # replayed
                    await scripted.send_raw(junk(60, first=0x50))  # no protocol at all

                # 3. RTP from an address the PBX's SDP did not give, to the SIP-side port.
                sip_side = audio_destination(pbx.invites[-1].body.decode())
                for sequence in range(ATTACKS):
                    await stranger.sendto(
                        build_rtp(0, sequence, 160 * sequence, 1234, bytes(160)), sip_side
                    )

                wanted = {
                    "dtls_mismatch": start["dtls_mismatch"] + 1,
                    "dtls_ok": start["dtls_ok"] + 1,
                    "ice_401": start["ice_401"] + 3,
                    "srtp_auth": start["srtp_auth"] + ATTACKS,
                    "srtp_replay": start["srtp_replay"] + ATTACKS,
                    "malformed": start["malformed"] + ATTACKS,
                    "unvalidated": start["unvalidated"] + ATTACKS,
                    "unexpected": start["unexpected"] + ATTACKS,
                }
                seen = await wait_for_counts(gateway, wanted)
                # Only the attacks moved them (malformed may also count the good call's
                # strays, so it is only a floor).
                exact = {name: seen[name] for name in wanted if name != "malformed"}
                assert exact == {n: v for n, v in wanted.items() if n != "malformed"}, seen

                # The good call heard its tone throughout, and still does.
                after = await good.wait_for_audio(min_frames=before.audio_frames + 50, timeout_s=20)
                print(
                    f"good call: {before.audio_frames} -> {after.audio_frames} frames, "
                    f"{after.audio_hz} Hz; figures {seen}"
                )
                assert after.connection_state == "connected"
                assert after.audio_frames > before.audio_frames + 25
                assert after.audio_hz is not None and abs(after.audio_hz - TONE_HZ) < 20
                forged_stats = await forged.stats()
                assert forged_stats.audio_frames == 0, forged_stats
                assert seen["restarts"] == start["restarts"] and seen["workers_up"] == 2
                assert gateway.worker_pids() == workers
                assert not gateway.matching("media.handler_failed")

                for call in (good_call, forged_call, scripted_call):
                    assert (await alice.bye(call)).status == 200
                stranger.close()
                nursery.cancel_scope.cancel()
            scripted.sock.close()
