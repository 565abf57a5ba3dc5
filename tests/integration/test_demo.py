"""``rtcgw demo`` as a person runs it: the gateway on its embedded configuration and the
demo SIP service standing in for the PBX, with scripted browsers and an aiortc peer."""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import trio

from tests.integration.browser import Browser, browser
from tests.integration.common import sdp_lines, webrtc_sdp
from tests.integration.gateway import RunningGateway, run_rtcgw
from tests.integration.webrtc_peer import WebRtcPeer


@asynccontextmanager
async def run_demo() -> AsyncIterator[tuple[RunningGateway, ssl.SSLContext]]:
    """Start ``rtcgw demo`` on free ports; yield it and a TLS context trusting its
    self-signed certificate. Stopped by PID (SIGTERM, then SIGKILL)."""
    arguments = ("demo", "--wss-port", "0", "--web-port", "0", "--workers", "1")
    async with run_rtcgw(arguments, ready=("demo.ready", "gateway.ready")) as demo:
        ready = demo.matching("demo.ready")[0]
        yield demo, ssl.create_default_context(cafile=ready["certificate"])


async def _register(phone: Browser, demo: RunningGateway) -> None:
    response = await phone.register(password=phone.user)
    assert response.status == 200, response
    # The first answer was the demo registrar's challenge, passed through the gateway.
    assert [r.status for r in phone.register_finals] == [401, 200]
    await demo.wait_for("demo.registered", where=lambda e: e.get("user") == phone.user)


async def test_two_browsers_call_each_other_through_the_demo_proxy() -> None:
    with trio.fail_after(60):
        async with run_demo() as (demo, tls):
            wss = demo.address("WSS")
            async with browser(wss, "1001", tls=tls) as alice, browser(wss, "1002", tls=tls) as bob:
                await _register(alice, demo)
                await _register(bob, demo)
                # A wrong password is refused by the demo registrar.
                async with browser(wss, "1003", tls=tls) as mallory:
                    assert (await mallory.register(password="wrong")).status == 401

                async def bob_answers() -> None:
                    invite = await bob.receive_request("INVITE")
                    assert invite.uri.host == bob.host, invite.uri  # type: ignore[union-attr]
                    assert "a=ice-lite" in sdp_lines(invite)
                    call = await bob.answer(invite, sdp=webrtc_sdp("active", ufrag="bobb"))
                    await bob.receive_in_dialog(call, "ACK")
                    bye = await bob.receive_in_dialog(call, "BYE")
                    await bob.respond(bye, 200)

                async with trio.open_nursery() as nursery:
                    nursery.start_soon(bob_answers)
                    call, final = await alice.invite("1002", sdp=webrtc_sdp(ufrag="alic"))
                    assert final.status == 200, final
                    await alice.ack(call)
                    assert (await alice.bye(call)).status == 200
                # Nobody is 1009: the demo proxy answers 480 through the gateway.
                _missing, final = await alice.invite("1009", sdp=webrtc_sdp())
                assert final.status == 480, final
                await alice.ack_failure(_missing, final)
        proxied = demo.matching("demo.call_proxied", user="1002")
        assert len(proxied) == 1, proxied
        # Two passes through the gateway for the call to bob: alice's call toward the PBX
        # and the PBX's toward bob; then alice's call to 1009, which went no further.
        directions = sorted(e["direction"] for e in demo.matching("b2bua.call_started"))
        assert directions == ["from_client", "from_client", "from_sip"], directions


async def _call_extension(
    extension: str, tone_hz: float
) -> tuple[float | None, int, RunningGateway]:
    with trio.fail_after(90):
        async with (
            run_demo() as (demo, tls),
            WebRtcPeer.start() as peer,
            browser(demo.address("WSS"), "1001", tls=tls) as alice,
        ):
            await _register(alice, demo)
            offer = await peer.offer(audio="pcmu", tone_hz=tone_hz)
            call, final = await alice.invite(extension, sdp=offer.encode())
            assert final.status == 200, final
            await alice.ack(call)
            await peer.accept_answer(final.body.decode())
            await peer.wait_for_audio(min_frames=100, timeout_s=20)
            stats = await peer.stats()
            assert (await alice.bye(call)).status == 200
            await demo.wait_for("demo.media_closed")
    return stats.audio_hz, stats.audio_packets_received, demo


async def test_the_echo_extension_sends_back_what_it_hears() -> None:
    hz, packets, demo = await _call_extension("600", 1000.0)
    print(f"echo: heard {hz} Hz in {packets} packets")
    assert hz is not None and abs(hz - 1000.0) < 20
    closed = demo.matching("demo.media_closed")[0]
    assert closed["packets_in"] > 50 and closed["packets_out"] > 50, closed


async def test_the_tone_extension_plays_440_hz() -> None:
    # The browser sends 1000 Hz: hearing 440 Hz proves it is the extension's tone.
    hz, packets, demo = await _call_extension("601", 1000.0)
    print(f"tone: heard {hz} Hz in {packets} packets")
    assert hz is not None and abs(hz - 440.0) < 20
    answered = demo.matching("demo.extension_answered", extension="601")
    assert answered and answered[0]["codec"] == "PCMU", answered
