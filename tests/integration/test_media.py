"""Media through ``rtcgw run``: a real WebRTC stack on one side, plain RTP on the other.

aiortc plays the browser (ICE, DTLS-SRTP, rtcp-mux, BUNDLE; ``webrtc_peer.py``) and its SDP
travels in the scripted SIP-over-WebSocket browser's INVITE or 200; sipp plays the PBX with
its RTP echo, so what the browser hears is its own tone after two conversions (SRTP -> RTP
toward the PBX, RTP -> SRTP back). The gateway runs the handbook's configuration.
"""

from __future__ import annotations

from pathlib import Path

import trio

from tests.integration.common import gateway_uri
from tests.integration.handbook import handbook_config
from tests.integration.sipp import finish, free_udp_port, start_scenario, start_sipp
from tests.integration.test_handbook import handbook_gateway
from tests.integration.webrtc_peer import WebRtcPeer

TONE_HZ = 1000.0


def _sdp_lines(body: bytes) -> list[str]:
    return body.decode().splitlines()


async def test_an_aiortc_browser_calls_the_pbx_and_hears_its_tone_come_back(
    tmp_path: Path,
) -> None:
    pbx_port = free_udp_port()
    with trio.fail_after(90):
        registrar = await start_scenario("registrar", "-p", str(pbx_port))
        config = handbook_config(tmp_path, pbx_port)
        async with handbook_gateway(config) as (gateway, alice), WebRtcPeer.start() as peer:
            assert (await alice.register()).status == 200
            assert await finish(registrar) == 0
            pbx = await start_sipp(
                "-sn", "uas", "-p", str(pbx_port), "-m", "1",
                "-rtp_echo", "-mp", str(free_udp_port()),
            )  # fmt: skip
            offer = await peer.offer(audio="pcmu", tone_hz=TONE_HZ)
            call, final = await alice.invite("bob", sdp=offer.encode())
            assert final.status == 200, final
            lines = _sdp_lines(final.body)
            # The browser's answer is WebRTC, written by the gateway for that leg.
            assert any(
                line.startswith("m=audio ") and "UDP/TLS/RTP/SAVPF" in line for line in lines
            )
            assert "a=ice-lite" in lines and "a=setup:passive" in lines
            assert any(line.startswith("a=fingerprint:sha-256 ") for line in lines)
            await alice.ack(call)
            await peer.accept_answer(final.body.decode())
            stats = await peer.wait_for_audio(min_frames=100, timeout_s=20)
            stats = await peer.stats()
            print(f"browser heard {stats.audio_hz} Hz, {stats.audio_packets_received} packets")
            assert stats.connection_state == "connected"
            assert stats.audio_hz is not None and abs(stats.audio_hz - TONE_HZ) < 20
            assert (await alice.bye(call)).status == 200
            assert await finish(pbx) == 0
            await gateway.wait_for("media.stream_closed")
            streams = gateway.matching("media.stream_closed")
            # Both legs' streams carried the tone: browser -> PBX and the echo back.
            assert {s.get("leg") for s in streams} == {"a", "b"}
            assert all(int(str(s.get("packets_in"))) > 50 for s in streams), streams


async def test_the_pbx_calls_an_aiortc_browser_which_hears_its_tone_come_back(
    tmp_path: Path,
) -> None:
    pbx_port = free_udp_port()
    with trio.fail_after(90):
        registrar = await start_scenario("registrar", "-p", str(pbx_port))
        config = handbook_config(tmp_path, pbx_port)
        async with handbook_gateway(config) as (gateway, alice), WebRtcPeer.start() as peer:
            assert (await alice.register()).status == 200
            assert await finish(registrar) == 0
            await gateway.wait_for("binding.changed")
            caller = await start_sipp(
                "-sn", "uac", "-s", "alice", gateway_uri(gateway), "-p", str(free_udp_port()),
                "-m", "1", "-d", "6000", "-rtp_echo", "-mp", str(free_udp_port()),
            )  # fmt: skip
            invite = await alice.receive_request("INVITE")
            lines = _sdp_lines(invite.body)
            # The PBX offered plain RTP; the browser gets a WebRTC offer.
            assert any("UDP/TLS/RTP/SAVPF" in line for line in lines if line.startswith("m="))
            assert "a=setup:actpass" in lines and "a=rtcp-mux" in lines
            answer = await peer.answer(invite.body.decode(), tone_hz=TONE_HZ)
            call = await alice.answer(invite, sdp=answer.encode())
            await alice.receive_request("ACK")
            stats = await peer.wait_for_audio(min_frames=100, timeout_s=20)
            stats = await peer.stats()
            print(f"browser heard {stats.audio_hz} Hz, {stats.audio_packets_received} packets")
            assert stats.audio_hz is not None and abs(stats.audio_hz - TONE_HZ) < 20
            bye = await alice.receive_in_dialog(call, "BYE")
            await alice.respond(bye, 200)
            assert await finish(caller) == 0
