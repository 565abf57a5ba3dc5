"""The relay between a scripted browser and a plain phone: the happy path, and what an
attacker or a broken peer can throw at it (each dropped, counted by reason, no exception,
the other calls of the worker unaffected)."""

from __future__ import annotations

import dataclasses
import itertools
import os

import pytest
from aioice import stun

from rtcgw.media.demux import PacketKind
from rtcgw.media.dtls import DtlsRole, DtlsState
from rtcgw.media.ice_lite import IceVerdict
from rtcgw.media.rtcp import build_receiver_report
from rtcgw.worker.media.streams import Drop
from tests.worker.media.harness import (
    MediaCall,
    browser_calls_phone,
    handbook_decision,
    junk,
    metric,
    phone_calls_browser,
    running_gateway,
    udp_socket,
    until,
)


def contiguous(sequences: list[int]) -> bool:
    return all((b - a) & 0xFFFF == 1 for a, b in itertools.pairwise(sequences))


async def assert_flows(call: MediaCall, count: int = 20) -> None:
    """Media still goes both ways, complete and in order, with no SRTP error at the browser."""
    heard = await call.phone_to_browser(count)
    assert len(heard) == count
    assert {p.ssrc for p in heard} == {call.browser.gateway.ssrc}  # type: ignore[union-attr]
    assert contiguous([p.sequence for p in heard])
    spoken = await call.browser_to_phone(count)
    assert [p.ssrc for p in spoken] == [call.browser.ssrc] * count
    assert call.browser.auth_failures == call.browser.replay_failures == 0


async def test_media_flows_both_ways_and_nothing_reaches_the_browser_before_ice_and_keys() -> None:
    handshakes = metric("rtcgw_dtls_handshakes_total", result="ok", role="server")
    async with running_gateway() as gateway, browser_calls_phone(gateway, connect=False) as call:
        browser, phone = call.browser, call.phone
        # Before any check: the phone's media is dropped, not sent.
        for _ in range(5):
            await phone.send(phone.packet())
        await until(lambda: call.browser_drops(Drop.NOT_READY) == 5, "5 not-ready drops")
        # ICE validated and nominated, DTLS not run yet: still nothing.
        response = await browser.send_check()
        assert response.message_class is stun.Class.RESPONSE
        assert call.transport.destination == ("127.0.0.1", browser.port)
        for _ in range(5):
            await phone.send(phone.packet())
        await until(lambda: call.browser_drops(Drop.NOT_READY) == 10, "10 not-ready drops")
        assert set(browser.arrivals) == {PacketKind.STUN}
        # Keys: the gateway answered passive, so the browser is the DTLS client.
        await browser.connect()
        assert browser.dtls is not None and browser.dtls.role is DtlsRole.CLIENT
        await until(lambda: call.transport.srtp is not None, "the gateway's keys")
        heard = await call.phone_to_browser(30)
        spoken = await call.browser_to_phone(30)
        # RTCP both ways (rtcp-mux toward the browser, the a=rtcp port toward the phone).
        await browser.send_raw(browser.srtp.protect_rtcp(build_receiver_report(browser.ssrc)))  # type: ignore[union-attr]
        await until(lambda: len(phone.received_rtcp) == 1, "the browser's RR at the phone")
        await phone.send_rtcp(build_receiver_report(phone.ssrc))
        await until(lambda: len(browser.received_rtcp) == 1, "the phone's RR at the browser")
        stream = call.browser_stream
    assert {p.ssrc for p in heard} == {stream.rewriter.ssrc} == {browser.gateway.ssrc}  # type: ignore[union-attr]
    assert contiguous([p.sequence for p in heard])
    assert all(p.payload == bytes(160) and p.payload_type == 0 for p in heard)
    assert [p.sequence for p in spoken] == [(spoken[0].sequence + i) & 0xFFFF for i in range(30)]
    assert browser.auth_failures == browser.replay_failures == browser.other_failures == 0
    assert stream.counters.packets_out == 30 and stream.counters.packets_in == 30
    # Counted even when the call ends before the seam's next tick.
    assert metric("rtcgw_dtls_handshakes_total", result="ok", role="server") == handshakes + 1
    print(f"browser got {len(heard)} RTP + 1 RTCP, phone got {len(spoken)} RTP + 1 RTCP")


@pytest.mark.parametrize("setup", ["active", "passive"])
async def test_media_flows_when_the_phone_calls_with_either_dtls_role(setup: str) -> None:
    async with running_gateway() as gateway, phone_calls_browser(gateway, setup=setup) as call:
        await assert_flows(call)
        gateway_role = call.transport.dtls.role  # type: ignore[union-attr]
    assert gateway_role is (DtlsRole.SERVER if setup == "active" else DtlsRole.CLIENT)


async def test_a_wrong_ice_password_gets_401_counted_and_nominates_nothing() -> None:
    before = metric("rtcgw_ice_binding_requests_total", result="bad-credentials")
    async with running_gateway() as gateway, browser_calls_phone(gateway, connect=False) as call:
        browser = call.browser
        wrong = await browser.send_check(pwd="x" * 22)
        other_ufrag = await browser.send_check(ufrag="nobody")
        for response in (wrong, other_ufrag):
            assert response.message_class is stun.Class.ERROR
            assert response.attributes["ERROR-CODE"][0] == 401
        transport = call.transport
        assert transport.ice.selected is None and transport.destination is None
        assert transport.stun_counts == {IceVerdict.BAD_CREDENTIALS: 2}
        await call.phone.send(call.phone.packet())
        await until(lambda: call.browser_drops(Drop.NOT_READY) == 1, "a not-ready drop")
        # The right password still works afterwards.
        await browser.connect()
        await assert_flows(call)
    assert metric("rtcgw_ice_binding_requests_total", result="bad-credentials") - before == 2


async def test_garbage_on_every_media_port_is_counted_and_the_other_call_keeps_flowing() -> None:
    async with (
        running_gateway() as gateway,
        browser_calls_phone(gateway) as good,
        browser_calls_phone(gateway) as victim,
    ):
        await assert_flows(good, 5)
        await assert_flows(victim, 5)
        browser, phone = victim.browser, victim.phone
        stranger = await udp_socket()
        check, _ = browser.check()
        dtls_junk = b"\x16\xfe\xfd" + os.urandom(8) + b"\xff\xff" + os.urandom(77)
        sent = 0
        for _ in range(20):
            # from the ICE-validated address
            await browser.send_raw(junk(64, first=0x50))  # no protocol of RFC 7983
            await browser.send_raw(junk(150, first=0x80)[:1] + b"\x00" + os.urandom(148))  # RTP
            await browser.send_raw(junk(80, first=0x80)[:1] + b"\xc9" + os.urandom(78))  # RTCP
            await browser.send_raw(check[: len(check) // 2])  # truncated STUN
            await browser.send_raw(dtls_junk)  # a DTLS record header claiming too much
            await browser.send_raw(b"\x80")  # one byte
            # from an address ICE never validated
            await stranger.sendto(junk(150, first=0x80), browser.gateway.address)  # type: ignore[union-attr]
            await stranger.sendto(junk(90, first=22), browser.gateway.address)  # type: ignore[union-attr]
            # toward the SIP side's RTP and RTCP ports, from the phone's own addresses
            await phone.send(junk(8, first=0x80))
            await phone.send(junk(40, first=0x40))
            await phone.rtcp.sendto(junk(40, first=0x11), phone.gateway_rtcp)  # type: ignore[arg-type]
            sent += 1
        # Unknown first byte and one byte: malformed; SRTP junk: auth (SRTCP junk: auth or
        # malformed); from the stranger: unvalidated. Truncated STUN is ignored by ICE,
        # DTLS junk by the DTLS endpoint.
        expected = 6 * sent

        def browser_side() -> dict[Drop, int]:
            return dict(victim.browser_stream.counters.dropped)

        await until(lambda: sum(browser_side().values()) >= expected, "the browser junk")
        await until(lambda: victim.phone_drops(Drop.MALFORMED) == 3 * sent, "the phone junk")
        # The first RTCP-looking junk is either too short or fails its tag: both counted.
        counted = browser_side()
        assert counted.get(Drop.UNVALIDATED_SOURCE) == 2 * sent, counted
        assert counted.get(Drop.SRTP_AUTH, 0) >= sent
        assert counted.get(Drop.MALFORMED, 0) >= 2 * sent
        assert counted.get(Drop.SRTP_AUTH, 0) + counted.get(Drop.MALFORMED, 0) == 4 * sent
        assert sum(counted.values()) == expected
        assert victim.transport.stun_counts[IceVerdict.IGNORED] == sent
        dtls = victim.transport.dtls
        assert dtls is not None and dtls.state is DtlsState.CONNECTED
        assert dtls.dropped_datagrams == sent
        assert gateway.relay.handler_errors == 0
        await assert_flows(good)
        await assert_flows(victim)
        stranger.close()
    print(f"browser-side drops {counted}")


async def test_srtp_with_bad_tags_or_replayed_is_dropped_and_counted() -> None:
    async with running_gateway() as gateway, browser_calls_phone(gateway) as call:
        browser, phone = call.browser, call.phone
        good = [browser.protect(browser.packet()) for _ in range(10)]
        for packet in good:
            tampered = bytearray(packet)
            tampered[-1] ^= 0x01  # the last byte of the auth tag
            await browser.send_raw(bytes(tampered))
        await until(lambda: call.browser_drops(Drop.SRTP_AUTH) == 10, "10 auth drops")
        for packet in good:
            await browser.send_raw(packet)
        await until(lambda: len(phone.received) == 10, "the 10 genuine packets")
        for packet in good:
            await browser.send_raw(packet)
        await until(lambda: call.browser_drops(Drop.SRTP_REPLAY) == 10, "10 replay drops")
        srtcp = browser.srtp.protect_rtcp(build_receiver_report(browser.ssrc))  # type: ignore[union-attr]
        broken = bytearray(srtcp)
        broken[-1] ^= 0x01
        await browser.send_raw(bytes(broken))
        await until(lambda: call.browser_drops(Drop.SRTP_AUTH) == 11, "the SRTCP auth drop")
        await browser.send_raw(srtcp)
        await until(lambda: len(phone.received_rtcp) == 1, "the genuine SRTCP")
        await browser.send_raw(srtcp)
        await until(lambda: call.browser_drops(Drop.SRTP_REPLAY) == 11, "the SRTCP replay drop")
        assert len(phone.received) == 10 and len(phone.received_rtcp) == 1
        assert [p.sequence for p in phone.received] == [int.from_bytes(p[2:4], "big") for p in good]
        await assert_flows(call)


async def test_rtp_from_another_address_is_dropped_without_latching() -> None:
    async with running_gateway() as gateway, browser_calls_phone(gateway) as call:
        assert not call.plain_stream.latching  # the handbook's PBX rules: no dialog handling
        stranger = await udp_socket()
        phone = call.phone
        # Before the phone sent anything, and after: the SDP's address is the only one.
        await stranger.sendto(phone.packet(), phone.gateway_rtp)  # type: ignore[arg-type]
        await until(lambda: call.phone_drops(Drop.UNEXPECTED_SOURCE) == 1, "a drop")
        await assert_flows(call, 5)
        for _ in range(5):
            await stranger.sendto(phone.packet(), phone.gateway_rtp)  # type: ignore[arg-type]
        await until(lambda: call.phone_drops(Drop.UNEXPECTED_SOURCE) == 6, "6 drops")
        assert len(call.browser.received) == 5
        assert call.plain_stream.remote_rtp == ("127.0.0.1", phone.rtp_port)
        stranger.close()


async def test_latching_follows_the_first_source_then_drops_any_other() -> None:
    async with running_gateway() as gateway:
        decision = dataclasses.replace(
            handbook_decision(gateway.config, from_browser=True), destination_dialog_handling=True
        )
        async with browser_calls_phone(gateway, decision=decision) as call:
            assert call.plain_stream.latching
            behind_nat = await udp_socket()
            stranger = await udp_socket()
            phone = call.phone
            # The phone's media comes from another port than its SDP said (NAT): latched.
            await behind_nat.sendto(phone.packet(), phone.gateway_rtp)  # type: ignore[arg-type]
            await until(lambda: len(call.browser.received) == 1, "the latched packet")
            latched = ("127.0.0.1", behind_nat.getsockname()[1])
            assert call.plain_stream.remote_rtp == latched
            await call.browser.send_rtp()
            data = await behind_nat.recv(2048)
            assert int.from_bytes(data[8:12], "big") == call.browser.ssrc
            # Once latched, a third address is refused.
            for _ in range(3):
                await stranger.sendto(phone.packet(), phone.gateway_rtp)  # type: ignore[arg-type]
            await until(lambda: call.phone_drops(Drop.UNEXPECTED_SOURCE) == 3, "3 drops")
            assert call.plain_stream.remote_rtp == latched
            assert len(call.browser.received) == 1
            behind_nat.close()
            stranger.close()


async def test_fingerprint_mismatch_fails_dtls_no_media_either_way_others_unaffected() -> None:
    before = metric("rtcgw_dtls_handshakes_total", result="fingerprint_mismatch", role="server")
    forged = ":".join(f"{b:02X}" for b in os.urandom(32))
    async with (
        running_gateway() as gateway,
        browser_calls_phone(gateway) as good,
        browser_calls_phone(gateway, fingerprint=forged, connect=False) as victim,
    ):
        browser = victim.browser
        await browser.send_check()
        browser.start_dtls()
        dtls = victim.transport.dtls
        assert dtls is not None
        await browser._send_dtls(browser.dtls.start(0.0))  # type: ignore[union-attr]
        await until(lambda: dtls.state is DtlsState.FAILED, "the gateway's DTLS failure")
        assert dtls.fingerprint_mismatch and victim.transport.srtp is None
        # The seam's tick counts it (once a second).
        await until(
            lambda: (
                metric("rtcgw_dtls_handshakes_total", result="fingerprint_mismatch", role="server")
                == before + 1
            ),
            "the counted failure",
        )
        for _ in range(5):
            await victim.phone.send(victim.phone.packet())
            await browser.send_raw(junk(100, first=0x80)[:1] + b"\x00" + os.urandom(98))
        await until(lambda: victim.browser_drops(Drop.NOT_READY) == 10, "10 not-ready drops")
        assert PacketKind.RTP not in browser.arrivals
        assert victim.phone.received == []
        await assert_flows(good)
    print(f"DTLS failure: {dtls.failure}")
