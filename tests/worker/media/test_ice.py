"""ICE on the browser leg: consent freshness (RFC 7675) on the seam's tick, driven by trio's
mock clock, and an ICE restart answered on the browser leg alone."""

from __future__ import annotations

import trio.testing
from aioice import stun

from rtcgw.media.ice_lite import IceVerdict
from rtcgw.sdp.model import parse_sdp
from rtcgw.sdp.negotiation import describe
from rtcgw.worker.media.events import MediaTimedOut
from rtcgw.worker.media.streams import Drop
from tests.worker.media.harness import browser_calls_phone, relay_turn, running_gateway, until
from tests.worker.media.test_relay import assert_flows


async def test_consent_lapses_without_checks_and_a_new_check_restores_it(
    mock_clock: trio.testing.MockClock,
) -> None:
    mock_clock.rate = 1.0  # real time passes too; jumps add the simulated part
    async with running_gateway() as gateway, browser_calls_phone(gateway) as call:
        browser, transport = call.browser, call.transport
        await assert_flows(call, 5)
        # Checks every 25 s keep consent across 75 s.
        for _ in range(3):
            mock_clock.jump(25)
            assert (await browser.send_check(use_candidate=False)).message_class is (
                stun.Class.RESPONSE
            )
            await relay_turn(gateway.relay)
            assert transport.destination == ("127.0.0.1", browser.port)
            await assert_flows(call, 5)
        # Then 31 s without a check: the next tick stops media toward the browser.
        mock_clock.jump(31)
        await relay_turn(gateway.relay)
        assert transport.destination is None
        received = len(browser.received)
        for _ in range(5):
            await call.phone.send(call.phone.packet())
        await until(lambda: call.browser_drops(Drop.NOT_READY) == 5, "5 not-ready drops")
        assert len(browser.received) == received
        # The browser's media is still accepted meanwhile (its address stays validated).
        await call.browser_to_phone(5)
        # A valid check (no nomination needed) restores it.
        await browser.send_check(use_candidate=False)
        assert transport.destination == ("127.0.0.1", browser.port)
        await assert_flows(call, 10)
        assert not [e for e in gateway.events if isinstance(e, MediaTimedOut)]


async def test_an_ice_restart_is_answered_locally_and_keeps_dtls_and_srtp() -> None:
    async with running_gateway() as gateway, browser_calls_phone(gateway) as call:
        browser, transport = call.browser, call.transport
        await assert_flows(call, 5)
        old = browser.gateway
        assert old is not None
        dtls, srtp, browser_srtp = transport.dtls, transport.srtp, browser.srtp
        phone_leg_sdp = call.phone_media.last_written
        first_answer = call.browser_media.last_written
        assert first_answer is not None

        browser.restart_ice()
        answer = gateway.seam.local_answer(call.call, call.call.a, browser.sdp())  # type: ignore[arg-type]
        assert answer is not None, "the restart went to the phone's leg"
        new = browser.learn(answer)
        assert (new.ufrag, new.pwd) != (old.ufrag, old.pwd)
        assert new.fingerprints == old.fingerprints and new.setup == old.setup == "passive"
        assert new.address == old.address and new.ssrc == old.ssrc
        version = int(describe(parse_sdp(answer)).session_version)
        assert version == first_answer.session_version + 1

        # Old credentials are refused; media keeps to the selected address meanwhile.
        refused = await browser.send_check(ufrag=old.ufrag, pwd=old.pwd)
        assert refused.message_class is stun.Class.ERROR
        assert refused.attributes["ERROR-CODE"][0] == 401
        await assert_flows(call, 5)
        accepted = await browser.send_check()
        assert accepted.message_class is stun.Class.RESPONSE
        assert transport.stun_counts[IceVerdict.BAD_CREDENTIALS] == 1
        await assert_flows(call, 20)
        # No new handshake, the same SRTP contexts on both ends, the phone saw nothing.
        assert transport.dtls is dtls and transport.srtp is srtp and browser.srtp is browser_srtp
        assert call.phone_media.last_written is phone_leg_sdp
        assert len(call.session.a.transports) == 1
