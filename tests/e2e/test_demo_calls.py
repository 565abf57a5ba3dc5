"""Two web phones in headless Chromium call each other through ``rtcgw demo``: 1001 and
1002 register with the demo registrar, 1001 calls 1002, and each page hears the other's
fake microphone. The call passes through the gateway twice (browser -> demo PBX and demo
PBX -> browser). Each side's post-pickup delay is printed; no timing is asserted."""

from __future__ import annotations

from collections.abc import Callable

import trio

from tests.e2e.phone_driver import PROBE_SCRIPT, PhoneDriver
from tests.e2e.test_phone import media_flowed, register, report_delay
from tests.integration.gateway import LogEvent
from tests.integration.test_demo import run_demo

_ENDED = "() => window.rtcgwPhone.callState === 'ended'"


def _user_is(user: str) -> Callable[[LogEvent], bool]:
    """A ``wait_for`` filter: the event is about ``user``."""
    return lambda event: event.get("user") == user


async def test_d_two_browsers_call_each_other_through_the_demo() -> None:
    with trio.fail_after(120):
        async with (
            run_demo() as (demo, _),
            PhoneDriver.start() as alice,
            PhoneDriver.start() as bob,
        ):
            host, port = demo.address("HTTPS")
            for phone, user in ((alice, "1001"), (bob, "1002")):
                await phone.goto(f"https://{host}:{port}/phone/")
                await phone.wait("() => window.rtcgwPhone.config !== null", timeout_s=10)
                await register(phone, user, user)
                await demo.wait_for("demo.registered", where=_user_is(user))
                assert await phone.evaluate(PROBE_SCRIPT) is True

            await alice.fill("#target", "1002")
            await alice.click("#call")
            ringing = await bob.wait(
                "() => window.rtcgwPhone.callState === 'ringing'"
                " && window.rtcgwPhone.direction === 'incoming'"
            )
            assert ringing is True
            await bob.click("#answer")
            await alice.wait("() => window.rtcgwPhone.callState === 'confirmed'")
            await bob.wait("() => window.rtcgwPhone.callState === 'confirmed'")
            heard_by_alice = await media_flowed(alice)
            heard_by_bob = await media_flowed(bob)
            report_delay("1001 (caller) hears 1002", heard_by_alice)
            report_delay("1002 (callee) hears 1001", heard_by_bob)

            await alice.click("#hangup")
            await alice.wait(_ENDED)
            await bob.wait(_ENDED)
            assert (await alice.phone())["lastError"] is None
            assert (await bob.phone())["lastError"] is None
            ended = await demo.wait_for("b2bua.call_ended", count=2)
        proxied = demo.matching("demo.call_proxied", user="1002")
        assert len(proxied) == 1, proxied
        # Two passes through the gateway: 1001's call toward the demo PBX and the PBX's
        # call toward 1002.
        directions = sorted(e["direction"] for e in demo.matching("b2bua.call_started"))
        assert directions == ["from_client", "from_sip"], directions
        print(f"gateway calls ended: {[e.get('call_id') for e in ended]}")
