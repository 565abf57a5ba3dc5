"""Scenario (b) in headless Firefox ESR, driven over WebDriver BiDi, against ``rtcgw run``
on the handbook's configuration: the web phone (JsSIP) served by the gateway, and the
SIP.js page of test_sipjs.py; sipp plays the PBX.

Firefox's fake microphone plays a tone; sipp echoes the RTP it receives, so what the page
hears went browser -> gateway -> PBX -> gateway -> browser, with Firefox's own ICE, DTLS
and SRTP rather than Chromium's. Each call prints the post-pickup delay the page saw, as
test_phone.py measures it. No test asserts a timing.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import trio

from tests.e2e.firefox_driver import FIREFOX, FirefoxDriver
from tests.e2e.phone_driver import PROBE_SCRIPT
from tests.e2e.test_phone import WEB, report_delay, streams_counted
from tests.e2e.test_sipjs import call_the_echo, page_ready, page_url, register, serve_page
from tests.integration.gateway import run_gateway
from tests.integration.handbook import handbook_config
from tests.integration.sipp import finish, free_udp_port, start_scenario, start_sipp

_PHONE_STATE = """() => {
  const p = window.rtcgwPhone;
  return {registered: p.registered, registrationState: p.registrationState,
          connected: p.connected, callState: p.callState, lastError: p.lastError,
          stats: p.stats, jssipVersion: p.jssipVersion, probe: window.rtcgwProbe || null,
          pc: p.session && p.session.connection ? {
            ice: p.session.connection.iceConnectionState,
            connection: p.session.connection.connectionState,
            local: (p.session.connection.localDescription || {}).sdp,
            remote: (p.session.connection.remoteDescription || {}).sdp} : null};
}"""
_MEDIA_BOTH_WAYS = """() => {
  const probe = window.rtcgwProbe;
  return probe && probe.answeredAt !== null && probe.firstPacketAt !== null
    && probe.firstEnergyAt !== null && window.rtcgwPhone.stats
    && window.rtcgwPhone.stats.packetsSent > 0 ? probe : null;
}"""


def require_firefox() -> None:
    """make test installs Debian's firefox-esr: its absence is a failure, not a skip."""
    assert os.access(FIREFOX, os.X_OK), f"no Firefox at {FIREFOX}"


async def test_b_the_phone_in_firefox_calls_a_sipp_uas_and_hears_its_echo(tmp_path: Path) -> None:
    require_firefox()
    pbx_port = free_udp_port()
    config = handbook_config(tmp_path, pbx_port)
    with config.open("a", encoding="utf-8") as file:
        file.write(WEB)
    with trio.fail_after(120):
        registrar = await start_scenario("registrar", "-p", str(pbx_port))
        async with (
            run_gateway(("-c", str(config))) as gateway,
            FirefoxDriver.start(tmp_path / "profile") as firefox,
        ):
            host, port = gateway.address("HTTPS")
            await firefox.goto(f"https://{host}:{port}/phone/")
            await firefox.wait("() => window.rtcgwPhone.config !== null", timeout_s=10)
            await firefox.fill("#user", "alice")
            await firefox.fill("#password", "secret")
            await firefox.click("#register")
            await firefox.wait("() => window.rtcgwPhone.registered", timeout_s=15)
            assert await finish(registrar) == 0
            state: dict[str, Any] = await firefox.evaluate(_PHONE_STATE)
            print(f"Firefox {firefox.version}, JsSIP {state['jssipVersion']}: {state}")

            pbx = await start_sipp(
                "-sn", "uas", "-p", str(pbx_port), "-m", "1",
                "-rtp_echo", "-mp", str(free_udp_port()),
            )  # fmt: skip
            assert await firefox.evaluate(PROBE_SCRIPT) is True
            await firefox.fill("#target", "bob")
            await firefox.click("#call")
            await firefox.wait("() => window.rtcgwPhone.callState === 'confirmed'")
            probe: dict[str, Any] = await firefox.wait(_MEDIA_BOTH_WAYS, state=_PHONE_STATE)
            assert probe["packetsReceived"] > 0, probe
            assert probe["totalAudioEnergy"] > 0 or (probe["audioLevel"] or 0) > 0, probe
            report_delay("the phone in Firefox -> sipp", probe)
            await firefox.click("#hangup")
            await firefox.wait("() => window.rtcgwPhone.callState === 'ended'")
            assert await finish(pbx) == 0
            await streams_counted(gateway)
            state = await firefox.evaluate(_PHONE_STATE)
            assert state["lastError"] is None, state


async def test_b_sipjs_in_firefox_calls_a_sipp_uas_and_hears_its_echo(tmp_path: Path) -> None:
    require_firefox()
    pbx_port = free_udp_port()
    config = handbook_config(tmp_path, pbx_port)
    with trio.fail_after(120):
        registrar = await start_scenario("registrar", "-p", str(pbx_port))
        async with (
            run_gateway(("-c", str(config))) as gateway,
            serve_page() as address,
            FirefoxDriver.start(tmp_path / "profile") as firefox,
        ):
            await firefox.goto(page_url(address, gateway))
            await page_ready(firefox)
            await register(firefox)
            assert await finish(registrar) == 0
            await call_the_echo(firefox, gateway, pbx_port, "SIP.js in Firefox -> sipp")
