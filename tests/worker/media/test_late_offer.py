"""Offers of the gateway's own (a late offer from the SIP side): a WebRTC offer written for
the browser's leg from nothing, the browser's answer learned, a plain offer for the phone's
leg with what the browser accepted, the phone's answer learned; then ICE, DTLS and media
both ways. And a late-offer re-INVITE's offer, written for the phone's leg from its state."""

from __future__ import annotations

import dataclasses
import re
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import pytest
import trio

from rtcgw.sdp.errors import SdpNegotiationError
from rtcgw.sdp.model import parse_sdp
from rtcgw.sdp.negotiation import describe
from rtcgw.worker.b2bua.seam import LegSide
from tests.worker.media.harness import (
    AUDIO,
    FakeCall,
    FakeLeg,
    Gateway,
    MediaCall,
    PlainPhone,
    ScriptedBrowser,
    handbook_decision,
    running_gateway,
    until,
)

#: the browser accepts PCMA and telephone-event only, as a browser without G.711 mu-law might
BROWSER_ACCEPTS = ((8, "PCMA/8000"), (101, "telephone-event/8000"))


def formats(sdp: bytes) -> list[int]:
    stream = describe(parse_sdp(sdp)).streams[0]
    return [c.payload_type for c in stream.codecs]


def attribute(sdp: bytes, name: str) -> list[str]:
    """The values of every ``a=name`` line ("" for a flag)."""
    found = []
    for line in sdp.decode().splitlines():
        key, _, value = line.partition(":")
        if key == f"a={name}":
            found.append(value)
    return found


@dataclass
class LateCall:
    """A call set up by offers of ours on both legs."""

    media: MediaCall
    to_browser: bytes
    to_phone: bytes


@asynccontextmanager
async def pbx_calls_browser_late(gateway: Gateway) -> AsyncIterator[LateCall]:
    """The phone's INVITE had no offer: the gateway offers to the browser, which answers
    active; the phone is offered what the browser accepted and answers; then ICE and
    DTLS."""
    browser = await ScriptedBrowser.open()
    phone = await PlainPhone.open()
    call = FakeCall(
        f"late-{secrets.token_hex(6)}",
        handbook_decision(gateway.config, from_browser=False),
        FakeLeg(LegSide.SIP),
        FakeLeg(LegSide.CLIENT),
    )
    media = MediaCall(gateway, call, browser, phone, call.b)
    seam = gateway.seam
    try:
        offer = seam.local_offer(call, call.b)  # type: ignore[arg-type]
        assert offer is not None
        offered = browser.learn(offer)
        assert offered.setup == "actpass", offered
        media.browser_sdp = browser.sdp(setup="active", codecs=BROWSER_ACCEPTS)
        seam.answer_in(call, call.b, media.browser_sdp)  # type: ignore[arg-type]
        phone_offer = seam.local_offer(call, call.a)  # type: ignore[arg-type]
        assert phone_offer is not None
        phone.learn(phone_offer)
        media.phone_sdp = phone.sdp(BROWSER_ACCEPTS)
        seam.answer_in(call, call.a, media.phone_sdp)  # type: ignore[arg-type]
        # The browser said active: it is the DTLS client, the gateway the server.
        browser.gateway = dataclasses.replace(offered, setup="passive")
        async with trio.open_nursery() as peers:
            await peers.start(browser.run)
            await peers.start(phone.run)
            await browser.connect()
            await until(lambda: media.transport.srtp is not None, "the gateway's SRTP keys")
            yield LateCall(media, offer, phone_offer)
            peers.cancel_scope.cancel()
    finally:
        seam.call_ended(call, 200)  # type: ignore[arg-type]
        browser.sock.close()
        phone.rtp.close()
        phone.rtcp.close()


async def test_our_offers_on_both_legs_carry_media_both_ways() -> None:
    with trio.fail_after(30):
        async with running_gateway() as gateway, pbx_calls_browser_late(gateway) as late:
            call, to_browser, to_phone = late.media, late.to_browser, late.to_phone
            # The browser's offer: WebRTC, from the browser leg's own state.
            assert b" UDP/TLS/RTP/SAVPF " in to_browser
            assert attribute(to_browser, "setup") == ["actpass"]
            assert attribute(to_browser, "rtcp-mux") == [""]
            assert len(attribute(to_browser, "fingerprint")) == 1
            assert len(attribute(to_browser, "ice-ufrag")) == 1
            assert "a=ice-lite" in to_browser.decode()
            assert to_browser.count(b"m=") == 1
            assert formats(to_browser) == [0, 8, 9, 111, 101]
            # The phone's offer: plain RTP with what the browser accepted.
            assert re.search(rb"^m=audio \d+ RTP/AVP 8 101\r$", to_phone, re.M), to_phone
            for webrtc_only in (b"a=fingerprint", b"a=ice-", b"a=setup", b"a=rtcp-mux"):
                assert webrtc_only not in to_phone
            to_browser_packets = await call.phone_to_browser(50, payload_type=8)
            to_phone_packets = await call.browser_to_phone(50)
            print(
                f"offered the browser {formats(to_browser)}, the phone {formats(to_phone)}; "
                f"{len(to_browser_packets)} packets to the browser, "
                f"{len(to_phone_packets)} to the phone"
            )
            assert {p.payload_type for p in to_browser_packets} == {8}
            assert len(to_phone_packets) == 50
            assert call.browser.auth_failures == 0


async def test_a_late_offer_reinvite_is_offered_from_the_phone_legs_state() -> None:
    with trio.fail_after(30):
        async with running_gateway() as gateway, pbx_calls_browser_late(gateway) as late:
            call, first = late.media, late.to_phone
            seam, fake = gateway.seam, call.call
            # The phone re-INVITEs without an offer: ours repeats its leg as negotiated.
            again = seam.local_offer(fake, fake.a)  # type: ignore[arg-type]
            assert again is not None
            assert describe(parse_sdp(again)).streams[0].port == call.plain_stream.rtp_port
            assert formats(again) == formats(first) == [8, 101]
            assert attribute(again, "sendrecv") == [""]
            # Its answer moves the phone's media to another port; the browser leg is untouched.
            browser_state = call.browser_media.last_written
            moved = await PlainPhone.open()
            try:
                moved.learn(again)
                seam.answer_in(fake, fake.a, moved.sdp(BROWSER_ACCEPTS))  # type: ignore[arg-type]
                assert call.plain_stream.remote_rtp == ("127.0.0.1", moved.rtp_port)
                assert call.browser_media.last_written is browser_state
                async with trio.open_nursery() as nursery:
                    await nursery.start(moved.run)
                    await call.browser.send_rtp()
                    await until(lambda: len(moved.received) >= 1, "a packet at the moved phone")
                    nursery.cancel_scope.cancel()
            finally:
                moved.rtp.close()
                moved.rtcp.close()


async def test_an_answer_with_no_codec_of_our_offer_is_refused() -> None:
    with trio.fail_after(30):
        async with running_gateway() as gateway:
            call = FakeCall(
                f"late-{secrets.token_hex(6)}",
                handbook_decision(gateway.config, from_browser=False),
                FakeLeg(LegSide.SIP),
                FakeLeg(LegSide.CLIENT),
            )
            seam = gateway.seam
            browser = await ScriptedBrowser.open()
            try:
                assert seam.local_offer(call, call.b) is not None  # type: ignore[arg-type]
                # Before the browser answered, the phone's leg has nothing to offer.
                with pytest.raises(SdpNegotiationError, match="no answer"):
                    seam.local_offer(call, call.a)  # type: ignore[arg-type]
                seam.answer_in(call, call.b, browser.sdp(setup="active", codecs=AUDIO))  # type: ignore[arg-type]
                assert seam.local_offer(call, call.a) is not None  # type: ignore[arg-type]
                g729 = await PlainPhone.open()
                try:
                    with pytest.raises(SdpNegotiationError, match="no common codec") as refused:
                        seam.answer_in(call, call.a, g729.sdp(((18, "G729/8000"),)))  # type: ignore[arg-type]
                    print(f"refused: {refused.value}")
                finally:
                    g729.rtp.close()
                    g729.rtcp.close()
            finally:
                seam.call_ended(call, 488)  # type: ignore[arg-type]
                browser.sock.close()


async def test_no_offer_of_ours_toward_a_sip_callee() -> None:
    with trio.fail_after(30):
        async with running_gateway() as gateway:
            call = FakeCall(
                f"late-{secrets.token_hex(6)}",
                handbook_decision(gateway.config, from_browser=True),
                FakeLeg(LegSide.CLIENT),
                FakeLeg(LegSide.SIP),
            )
            assert gateway.seam.local_offer(call, call.b) is None  # type: ignore[arg-type]
            assert call.call_id not in gateway.seam.sessions
