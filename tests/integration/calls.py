"""One whole WebRTC call through ``rtcgw run``: an aiortc browser calls the PBX.

The setup of the media tests, in one place: sipp plays the registrar, then the PBX
answering one call with its RTP echo; the scripted SIP-over-WebSocket browser (alice)
registers and calls ``bob`` with aiortc's offer, and aiortc does ICE and DTLS-SRTP with
the gateway. ``browser_calls_the_pbx`` yields once the call is answered and the browser
hears its own tone come back; ``PbxCall.hang_up`` ends it from the browser.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import trio

from tests.integration.browser import Browser, Call
from tests.integration.gateway import RunningGateway
from tests.integration.handbook import handbook_config
from tests.integration.sipp import finish, free_udp_port, start_scenario, start_sipp
from tests.integration.test_handbook import handbook_gateway
from tests.integration.webrtc_peer import PeerStats, WebRtcPeer

__all__ = ["PbxCall", "browser_calls_the_pbx"]


@dataclass
class PbxCall:
    """An answered call from alice's aiortc browser to the PBX, with media flowing."""

    gateway: RunningGateway
    alice: Browser
    peer: WebRtcPeer
    call: Call
    pbx: trio.Process
    #: what the browser had received when the call was handed over
    stats: PeerStats

    @property
    def call_id(self) -> str:
        """The browser's Call-ID: the call's, in the gateway's log."""
        return self.call.call_id

    async def hang_up(self) -> None:
        """BYE from the browser; returns once the PBX saw its call end well."""
        response = await self.alice.bye(self.call)
        assert response.status == 200, response
        assert await finish(self.pbx) == 0


@asynccontextmanager
async def browser_calls_the_pbx(
    directory: Path,
    *,
    tone_hz: float = 1000.0,
    min_frames: int = 50,
    gateway_args: tuple[str, ...] = (),
) -> AsyncIterator[PbxCall]:
    """Run the handbook's gateway (its configuration written into ``directory``, with
    ``gateway_args``) and yield alice's answered call to the PBX once ``min_frames``
    frames of the echoed tone came back. The caller bounds the time (``trio.fail_after``)."""
    pbx_port = free_udp_port()
    registrar = await start_scenario("registrar", "-p", str(pbx_port))
    config = handbook_config(directory, pbx_port)
    async with (
        handbook_gateway(config, gateway_args) as (gateway, alice),
        WebRtcPeer.start() as peer,
    ):
        assert (await alice.register()).status == 200
        assert await finish(registrar) == 0
        pbx = await start_sipp(
            "-sn", "uas", "-p", str(pbx_port), "-m", "1",
            "-rtp_echo", "-mp", str(free_udp_port()),
        )  # fmt: skip
        try:
            offer = await peer.offer(audio="pcmu", tone_hz=tone_hz)
            call, final = await alice.invite("bob", sdp=offer.encode())
            assert final.status == 200, final
            await alice.ack(call)
            await peer.accept_answer(final.body.decode())
            stats = await peer.wait_for_audio(min_frames=min_frames, timeout_s=20)
            yield PbxCall(gateway, alice, peer, call, pbx, stats)
        finally:
            if pbx.returncode is None:
                with trio.CancelScope(shield=True):
                    await finish(pbx, timeout_s=1)
