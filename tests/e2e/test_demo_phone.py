"""``rtcgw demo`` with the web phone in Chromium as a person's browser runs it, without
the flag that makes Chromium offer loopback candidates: the phone registers as 1001 through
the demo registrar and hears itself through the echo extension."""

from __future__ import annotations

import trio

from tests.e2e.phone_driver import PROBE_SCRIPT, PhoneDriver
from tests.e2e.test_phone import media_flowed, register, report_delay
from tests.integration.test_demo import run_demo


async def test_a_browser_on_this_machine_calls_the_demo_echo() -> None:
    with trio.fail_after(90):
        async with run_demo() as (demo, _), PhoneDriver.start(loopback_candidates=False) as phone:
            host, port = demo.address("HTTPS")
            await phone.goto(f"https://{host}:{port}/phone/")
            await phone.wait("() => window.rtcgwPhone.config !== null", timeout_s=10)
            await register(phone, "1001", "1001")
            assert await phone.evaluate(PROBE_SCRIPT) is True
            await phone.fill("#target", "600")
            await phone.click("#call")
            await phone.wait("() => window.rtcgwPhone.callState === 'confirmed'")
            probe = await media_flowed(phone)
            report_delay("browser -> demo echo", probe)
            await phone.click("#hangup")
            await phone.wait("() => window.rtcgwPhone.callState === 'ended'")
            assert (await phone.phone())["lastError"] is None
