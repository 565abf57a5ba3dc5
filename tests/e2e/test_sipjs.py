"""SIP.js, a second SIP-over-WebSocket client independent of the web phone's JsSIP, in
headless Chromium against ``rtcgw run`` on the handbook's configuration; sipp plays the
PBX (registrar, UAS with RTP echo, UAC), as in test_phone.py. test_firefox.py runs the
same page in Firefox with the helpers here.

The page (``tests/e2e/sipjs/``, SIP.js copied in by ``make web``) is served over HTTPS
from loopback by the test itself and told the gateway's wss URL in its query string.
Each call prints the post-pickup delay the page saw: from the session's Established state
to the first inbound audio packet and the first audio energy in getStats (polled every
20 ms). No test asserts a timing.
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Protocol

import trio

from tests.e2e.firefox_driver import FirefoxError
from tests.e2e.phone_driver import CHROMIUM, PhoneDriver, PhoneDriverError
from tests.e2e.static_server import serve_static
from tests.e2e.test_phone import report_delay, streams_counted
from tests.integration.common import gateway_uri
from tests.integration.gateway import RunningGateway, run_gateway
from tests.integration.handbook import EXAMPLES, handbook_config
from tests.integration.sipp import finish, free_udp_port, start_scenario, start_sipp

PAGE = Path(__file__).resolve().parent / "sipjs"
SIPJS = PAGE / "vendor" / "sip.js" / "index.js"

_STATE = "() => window.rtcgwSipjs ? window.rtcgwSipjs.state() : null"
_MEDIA_BOTH_WAYS = """() => {
  const probe = window.rtcgwSipjs.probe;
  return probe && probe.answeredAt !== null && probe.firstPacketAt !== null
    && probe.firstEnergyAt !== null && probe.packetsSent > 0 ? probe : null;
}"""


class Page(Protocol):
    """A browser showing the page: Chromium's PhoneDriver or Firefox's FirefoxDriver."""

    async def evaluate(self, expression: str, /) -> Any: ...

    async def wait(self, expression: str, /, *, timeout_s: float = 20.0) -> Any: ...


@asynccontextmanager
async def serve_page() -> AsyncIterator[tuple[str, int]]:
    """Serve the SIP.js page over HTTPS on loopback with the example's certificate."""
    # make test copies SIP.js next to the page: its absence is a failure, not a skip.
    assert SIPJS.is_file(), f"SIP.js is not at {SIPJS}: run `make web`, which copies it there"
    tls = EXAMPLES / "tls"
    async with serve_static(
        PAGE, certificate=tls / "example.crt", key=tls / "example.key"
    ) as address:
        yield address


def page_url(page_address: tuple[str, int], gateway: RunningGateway) -> str:
    """The page's address, naming the gateway's wss listener and its host as SIP domain."""
    host, port = page_address
    ws_host, ws_port = gateway.address("WSS")
    return f"https://{host}:{port}/?ws=wss://{ws_host}:{ws_port}&domain={ws_host}"


@asynccontextmanager
async def sipjs_on_gateway(
    tmp_path: Path, pbx_port: int
) -> AsyncIterator[tuple[RunningGateway, PhoneDriver]]:
    """The handbook's gateway, the SIP.js page served next to it, and Chromium showing
    the page, pointed at the gateway's wss listener."""
    # make test installs Debian's chromium: its absence is a failure, not a skip.
    assert os.access(CHROMIUM, os.X_OK), f"no Chromium at {CHROMIUM}"
    config = handbook_config(tmp_path, pbx_port)
    async with (
        run_gateway(("-c", str(config))) as gateway,
        serve_page() as address,
        PhoneDriver.start() as phone,
    ):
        await phone.goto(page_url(address, gateway))
        await page_ready(phone)
        yield gateway, phone


async def page_ready(page: Page) -> None:
    """Wait until the page has loaded SIP.js."""
    await wait(page, "() => window.rtcgwSipjs && window.rtcgwSipjs.ready", timeout_s=10)


async def state(page: Page) -> dict[str, Any]:
    """The page's ``window.rtcgwSipjs.state()``."""
    result: dict[str, Any] = await page.evaluate(_STATE)
    return result


async def wait(page: Page, expression: str, *, timeout_s: float = 20.0) -> Any:
    """Wait until ``expression`` is true in the page; a failure names the SIP.js state."""
    try:
        return await page.wait(expression, timeout_s=timeout_s)
    except (PhoneDriverError, FirefoxError) as failure:
        try:
            seen = json.dumps(await state(page))
        except (PhoneDriverError, FirefoxError) as again:
            seen = f"unknown ({again})"
        raise AssertionError(f"{failure}; SIP.js phone: {seen}") from None


async def register(page: Page, user: str = "alice", password: str = "secret") -> None:
    """Register through the gateway and wait until SIP.js says it is registered."""
    registering = f"() => window.rtcgwSipjs.register({json.dumps(user)}, {json.dumps(password)})"
    assert await page.evaluate(registering) is True
    await wait(page, "() => window.rtcgwSipjs.registered", timeout_s=15)


async def media_flowed(page: Page) -> dict[str, Any]:
    """Wait until the page has received audio with energy and sent packets; the probe."""
    probe: dict[str, Any] = await wait(page, _MEDIA_BOTH_WAYS)
    assert probe["packetsReceived"] > 0, probe
    assert probe["totalAudioEnergy"] > 0 or (probe["audioLevel"] or 0) > 0, probe
    return probe


async def call_the_echo(page: Page, gateway: RunningGateway, pbx_port: int, label: str) -> None:
    """Scenario (b) once registered: call a sipp UAS that echoes RTP, hear the echo, hang
    up; the gateway counted packets on both legs."""
    pbx = await start_sipp(
        "-sn", "uas", "-p", str(pbx_port), "-m", "1",
        "-rtp_echo", "-mp", str(free_udp_port()),
    )  # fmt: skip
    assert await page.evaluate("() => window.rtcgwSipjs.call('bob')") is True
    await wait(page, "() => window.rtcgwSipjs.callState === 'established'")
    probe = await media_flowed(page)
    report_delay(label, probe)
    assert await page.evaluate("() => window.rtcgwSipjs.hangup()") is True
    await wait(page, "() => window.rtcgwSipjs.callState === 'terminated'")
    assert await finish(pbx) == 0
    await streams_counted(gateway)
    seen = await state(page)
    assert seen["finalStatus"] == 200 and seen["endedBy"] == "local", seen
    assert seen["lastError"] is None, seen


async def test_a_sipjs_registers_over_wss(tmp_path: Path) -> None:
    pbx_port = free_udp_port()
    with trio.fail_after(60):
        registrar = await start_scenario("registrar", "-p", str(pbx_port))
        async with sipjs_on_gateway(tmp_path, pbx_port) as (gateway, phone):
            await register(phone)
            assert await finish(registrar) == 0
            seen = await state(phone)
            print(f"Chromium {phone.version}, SIP.js {seen['version']}: {seen}")
            assert seen["registerStatus"] == 200, seen
            assert seen["registrationState"] == "registered" and seen["connected"], seen
            assert seen["lastError"] is None, seen
            [changed] = await gateway.wait_for("binding.changed")
            assert changed.get("user") == "alice" and changed.get("removed") is False


async def test_b_sipjs_calls_a_sipp_uas_and_hears_its_echo(tmp_path: Path) -> None:
    pbx_port = free_udp_port()
    with trio.fail_after(90):
        registrar = await start_scenario("registrar", "-p", str(pbx_port))
        async with sipjs_on_gateway(tmp_path, pbx_port) as (gateway, phone):
            await register(phone)
            assert await finish(registrar) == 0
            await call_the_echo(phone, gateway, pbx_port, "SIP.js -> sipp")


async def test_c_sipp_calls_sipjs_which_answers(tmp_path: Path) -> None:
    pbx_port = free_udp_port()
    with trio.fail_after(90):
        registrar = await start_scenario("registrar", "-p", str(pbx_port))
        async with sipjs_on_gateway(tmp_path, pbx_port) as (gateway, phone):
            await register(phone)
            assert await finish(registrar) == 0
            await gateway.wait_for("binding.changed")
            caller = await start_sipp(
                "-sn", "uac", "-s", "alice", gateway_uri(gateway), "-p", str(free_udp_port()),
                "-m", "1", "-d", "4000", "-rtp_echo", "-mp", str(free_udp_port()),
            )  # fmt: skip
            await wait(
                phone,
                "() => window.rtcgwSipjs.callState === 'ringing'"
                " && window.rtcgwSipjs.direction === 'incoming'",
            )
            assert await phone.evaluate("() => window.rtcgwSipjs.answer()") is True
            probe = await media_flowed(phone)
            report_delay("sipp -> SIP.js", probe)
            # sipp hangs up after its pause: its BYE ends the call in SIP.js.
            await wait(phone, "() => window.rtcgwSipjs.callState === 'terminated'")
            assert await finish(caller) == 0
            await streams_counted(gateway)
            seen = await state(phone)
            assert seen["endedBy"] == "remote", seen
            assert seen["lastError"] is None and seen["registered"], seen
