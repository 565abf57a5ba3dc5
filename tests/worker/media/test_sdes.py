"""SDES-SRTP (RFC 4568) on the SIP leg: the answer names the offered line it accepts, and
media crosses between the phone's SRTP and the browser's DTLS-SRTP."""

from __future__ import annotations

import dataclasses
import secrets

from rtcgw.media.rtp import build_rtp
from rtcgw.media.srtp import SrtpProfile, SrtpSession, new_master_key
from rtcgw.sdp.attributes import Crypto
from rtcgw.sdp.model import parse_sdp
from rtcgw.sdp.negotiation import describe
from rtcgw.worker.b2bua.seam import LegSide
from tests.worker.media.harness import (
    AUDIO,
    FRAME,
    FakeCall,
    FakeLeg,
    MediaCall,
    PlainPhone,
    ScriptedBrowser,
    _peers_running,
    handbook_decision,
    running_gateway,
    until,
)

PROFILE = SrtpProfile.AES_CM_128_HMAC_SHA1_80


def _sdes_offer(phone: PlainPhone, key: bytes) -> bytes:
    """The phone's offer as RTP/SAVP with several a=crypto lines: the first names a suite
    we do not support, the one we do has tag 5 (as FreeSWITCH lists them)."""
    plain = phone.sdp(AUDIO).decode()
    lines = plain.replace(" RTP/AVP ", " RTP/SAVP ").rstrip("\r\n").split("\r\n")
    lines += [
        f"a=crypto:1 AES_CM_256_HMAC_SHA1_80 inline:{'A' * 62}==",
        f"a=crypto:{Crypto.inline(5, 'AES_CM_128_HMAC_SHA1_80', key).to_sdp()}",
    ]
    return ("\r\n".join(lines) + "\r\n").encode()


async def test_an_sdes_offer_is_answered_with_its_tag_and_media_crosses() -> None:
    async with running_gateway() as gateway:
        browser = await ScriptedBrowser.open()
        phone = await PlainPhone.open()
        call = FakeCall(
            f"media-{secrets.token_hex(6)}",
            handbook_decision(gateway.config, from_browser=False),
            FakeLeg(LegSide.SIP),
            FakeLeg(LegSide.CLIENT),
        )
        media = MediaCall(gateway, call, browser, phone, call.b)
        phone_key = new_master_key(PROFILE)
        media.phone_sdp = _sdes_offer(phone, phone_key)
        seam = gateway.seam
        offered = browser.learn(seam.offer_out(call, call.b, media.phone_sdp))  # type: ignore[arg-type]
        media.browser_sdp = browser.sdp(setup="active")
        answer = seam.answer_out(call, call.a, media.browser_sdp)  # type: ignore[arg-type]
        phone.learn(answer)
        (stream,) = describe(parse_sdp(answer)).streams
        assert stream.proto == "RTP/SAVP"
        (crypto,) = stream.crypto
        assert (crypto.tag, crypto.suite) == (5, "AES_CM_128_HMAC_SHA1_80")
        srtp = SrtpSession(PROFILE, phone_key, crypto.key_salt())
        # Our answer's setup decides the roles: the gateway takes the other one.
        browser.gateway = dataclasses.replace(offered, setup="passive")
        async with _peers_running(media):
            await browser.connect()
            await until(lambda: media.transport.srtp is not None, "the gateway's SRTP keys")
            for _ in range(10):
                await phone.send(srtp.protect(phone.packet()))
            await until(lambda: len(browser.received) >= 10, "10 packets at the browser")
            assert [p.payload for p in browser.received] == [FRAME] * 10
            for _ in range(10):
                await browser.send_rtp()
            await until(lambda: len(phone.received) >= 10, "10 packets at the phone")
            for packet in phone.received:
                protected = build_rtp(
                    packet.payload_type,
                    packet.sequence,
                    packet.timestamp,
                    packet.ssrc,
                    packet.payload,
                    marker=packet.marker,
                )
                assert srtp.unprotect(protected)[12:] == FRAME
            assert media.plain_stream.counters.dropped == {}
