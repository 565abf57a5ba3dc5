"""What the browser receives stays one stream: our SSRC, sequence numbers that step by one
(across the 16-bit wrap, so SRTP's rollover counter must follow), timestamps that only
move forward, whatever the SIP side does (an hour's hold, re-INVITEs, new SSRCs, RTCP BYE
for its old SSRC). One SrtpSession at the browser decrypts everything: no replay or
authentication failure. And G.722 passes through."""

from __future__ import annotations

import itertools
import secrets
import struct

import trio.testing

from rtcgw.media.rtcp import RtcpType
from rtcgw.media.rtp import RtpRewriter
from rtcgw.sdp.model import parse_sdp
from rtcgw.sdp.negotiation import describe
from rtcgw.worker.media.events import MediaTimedOut
from rtcgw.worker.media.streams import BrowserStream
from tests.worker.media.harness import (
    G722,
    MediaCall,
    Received,
    browser_calls_phone,
    phone_calls_browser,
    relay_turn,
    rtcp_types,
    running_gateway,
    until,
)
from tests.worker.media.test_relay import contiguous

HOUR_S = 3600


def near_the_wrap(stream: BrowserStream, before_wrap: int) -> None:
    """Restart the browser-bound rewriter (before any packet) ``before_wrap`` packets short of
    the 16-bit sequence wrap and close to the 32-bit timestamp wrap."""
    old = stream.rewriter
    assert old.packets == 0
    rewriter = RtpRewriter(
        old.ssrc,
        old.clock_rate,
        initial_sequence=0x10000 - before_wrap,
        initial_timestamp=0x1_0000_0000 - 160 * before_wrap,
    )
    rewriter.payload_type_map = dict(old.payload_type_map)
    stream.rewriter = rewriter


def forward(timestamps: list[int]) -> bool:
    return all(0 < (b - a) & 0xFFFFFFFF < 1 << 31 for a, b in itertools.pairwise(timestamps))


async def reinvite_from_phone(call: MediaCall, *, phone: str, browser: str) -> None:
    """A re-INVITE from the phone with a=``phone``, answered by the browser with a=``browser``."""
    seam, fake = call.gateway.seam, call.call
    offer = seam.offer_out(fake, fake.a, call.phone.sdp(direction=phone))  # type: ignore[arg-type]
    seen = describe(parse_sdp(offer)).streams[0]
    assert seen.direction.value == phone and seen.setup is not None
    assert (seen.port, seen.ice) == (
        call.transport.port,
        (call.browser.gateway.ufrag, call.browser.gateway.pwd),
    )  # type: ignore[union-attr]
    answer = call.browser.sdp(setup="active", direction=browser)
    call.phone.learn(seam.answer_out(fake, fake.b, answer))  # type: ignore[arg-type]


async def test_an_hour_on_hold_then_new_ssrcs_stay_one_stream_across_the_wrap(
    mock_clock: trio.testing.MockClock,
) -> None:
    mock_clock.rate = 1.0
    async with running_gateway() as gateway, browser_calls_phone(gateway) as call:
        browser, phone, transport = call.browser, call.phone, call.transport
        dtls, srtp = transport.dtls, transport.srtp
        near_the_wrap(call.browser_stream, 200)
        heard: list[Received] = []
        heard += await call.phone_to_browser(100)

        # Hold for an hour: the browser keeps consent and sends RTCP, the phone is silent.
        await reinvite_from_phone(call, phone="sendonly", browser="recvonly")
        steps = HOUR_S // 10
        for _ in range(steps):
            mock_clock.jump(10)
            await browser.send_check(use_candidate=False)
            await browser.send_raw(browser.srtp.protect_rtcp(build_rr(browser.ssrc)))  # type: ignore[union-attr]
        await relay_turn(gateway.relay)
        assert transport.destination is not None
        assert not [e for e in gateway.events if isinstance(e, MediaTimedOut)]

        # Resume: same SSRC, its clock ran on for the hour, its sequence jumped.
        await reinvite_from_phone(call, phone="sendrecv", browser="sendrecv")
        phone.sequence = (phone.sequence + 5000) & 0xFFFF
        phone.timestamp = (phone.timestamp + HOUR_S * 8000) & 0xFFFFFFFF
        resumed = await call.phone_to_browser(50)
        heard += resumed
        # A transfer: new SSRC, new random sequence and timestamp, through the wrap.
        phone.ssrc = secrets.randbits(32) or 1
        phone.sequence, phone.timestamp = secrets.randbits(16), secrets.randbits(32)
        transferred = await call.phone_to_browser(100)
        heard += transferred

        assert transport.dtls is dtls and transport.srtp is srtp
    sequences = [p.sequence for p in heard]
    timestamps = [p.timestamp for p in heard]
    assert {p.ssrc for p in heard} == {browser.gateway.ssrc}  # type: ignore[union-attr]
    assert contiguous(sequences) and 0xFFFF in sequences and 0 in sequences
    assert forward(timestamps)
    assert resumed[0].marker and transferred[0].marker
    assert browser.auth_failures == browser.replay_failures == browser.other_failures == 0
    gap = (resumed[0].timestamp - heard[99].timestamp) & 0xFFFFFFFF
    print(
        f"{len(heard)} packets, sequence {sequences[0]}..{sequences[-1]}, "
        f"timestamp step over the hold {gap} ({gap / 8000:.0f} s)"
    )


def build_rr(ssrc: int) -> bytes:
    return bytes((0x80, RtcpType.RR, 0, 1)) + struct.pack("!I", ssrc)


def build_sr_and_bye(ssrc: int, rtp_timestamp: int) -> bytes:
    sr = bytes((0x80, RtcpType.SR, 0, 6)) + struct.pack(
        "!IIIIII", ssrc, 1, 2, rtp_timestamp, 10, 1600
    )
    bye = bytes((0x81, RtcpType.BYE, 0, 1)) + struct.pack("!I", ssrc)
    return sr + bye


async def test_the_phones_bye_for_its_old_ssrc_does_not_reach_the_browser() -> None:
    async with running_gateway() as gateway, browser_calls_phone(gateway) as call:
        browser, phone = call.browser, call.phone
        before = await call.phone_to_browser(20)
        await phone.send_rtcp(build_sr_and_bye(phone.ssrc, phone.timestamp))
        await until(lambda: len(browser.received_rtcp) == 1, "the SR at the browser")
        phone.ssrc = secrets.randbits(32) or 1
        phone.sequence, phone.timestamp = secrets.randbits(16), secrets.randbits(32)
        after = await call.phone_to_browser(20)
        await phone.send_rtcp(build_rr(phone.ssrc))
        await until(lambda: len(browser.received_rtcp) == 2, "the RR at the browser")
    types = [rtcp_types(compound) for compound in browser.received_rtcp]
    assert all(RtcpType.BYE not in t for t in types), types
    assert types[0] == [RtcpType.SR]
    heard = before + after
    assert {p.ssrc for p in heard} == {browser.gateway.ssrc} and contiguous(
        [p.sequence for p in heard]
    )  # type: ignore[union-attr]
    assert browser.auth_failures == browser.replay_failures == 0


async def test_g722_passes_through_both_ways() -> None:
    async with running_gateway() as gateway, phone_calls_browser(gateway, codecs=G722) as call:
        offered = describe(parse_sdp(call.browser_sdp)).streams[0]
        assert [c.name.upper() for c in offered.codecs] == ["G722"]
        assert call.browser_stream.rewriter.clock_rate == 8000
        payload = bytes(range(160))
        heard = await call.phone_to_browser(20, payload_type=9, payload=payload)
        start = len(call.phone.received)
        for _ in range(20):
            await call.browser.send_rtp(call.browser.packet(9, payload))
        await until(lambda: len(call.phone.received) == start + 20, "20 G.722 packets")
        spoken = call.phone.received[start:]
    assert {p.payload_type for p in heard} == {p.payload_type for p in spoken} == {9}
    assert {p.payload for p in heard} == {p.payload for p in spoken} == {payload}
    assert forward([p.timestamp for p in heard])
