"""The web phone (JsSIP) in headless Chromium against ``rtcgw run`` on the handbook's
configuration with ``[web]``: sipp plays the PBX (registrar, UAS with RTP echo, UAC).

Chromium's fake microphone beeps; sipp echoes the RTP it receives, so whatever the page
hears went browser -> gateway -> PBX -> gateway -> browser. Each call prints the
post-pickup delay the page saw: from the session's "accepted" to the first inbound audio
packet and the first audio energy in getStats (polled every 20 ms, so the figures are
accurate to about that much). No test asserts a timing.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import trio

from tests.e2e.phone_driver import CHROMIUM, PROBE_SCRIPT, PhoneDriver
from tests.integration.common import gateway_uri
from tests.integration.gateway import LogEvent, RunningGateway, run_gateway
from tests.integration.handbook import handbook_config
from tests.integration.sipp import finish, free_udp_port, start_scenario, start_sipp

#: The phone is served by the gateway itself, with the wss interface's certificate.
WEB = """
[web]
listen = "127.0.0.1:0"
path = "/phone/"
"""

_REGISTERED = "() => window.rtcgwPhone.registered"
_MEDIA_BOTH_WAYS = """() => {
  const probe = window.rtcgwProbe;
  return probe && probe.firstPacketAt !== null && probe.firstEnergyAt !== null
    && window.rtcgwPhone.stats && window.rtcgwPhone.stats.packetsSent > 0 ? probe : null;
}"""


@asynccontextmanager
async def phone_on_gateway(
    tmp_path: Path, pbx_port: int
) -> AsyncIterator[tuple[RunningGateway, PhoneDriver]]:
    """The handbook's gateway with the phone served, and Chromium showing the phone."""
    # make test installs Debian's chromium: its absence is a failure, not a skip.
    assert os.access(CHROMIUM, os.X_OK), f"no Chromium at {CHROMIUM}"
    config = handbook_config(tmp_path, pbx_port)
    with config.open("a", encoding="utf-8") as file:
        file.write(WEB)
    async with run_gateway(("-c", str(config))) as gateway, PhoneDriver.start() as phone:
        host, port = gateway.address("HTTPS")
        await phone.goto(f"https://{host}:{port}/phone/")
        await phone.wait("() => window.rtcgwPhone.config !== null", timeout_s=10)
        yield gateway, phone


async def register(
    phone: PhoneDriver, user: str = "alice", password: str = "secret"
) -> dict[str, Any]:
    """Fill in the account form, register, and wait until JsSIP is registered."""
    await phone.fill("#user", user)
    await phone.fill("#password", password)
    await phone.fill("#display-name", user.capitalize())
    await phone.click("#register")
    await phone.wait(_REGISTERED, timeout_s=15)
    return await phone.phone()


def report_delay(label: str, probe: dict[str, Any]) -> None:
    """Print the post-pickup delay seen in the page: answer -> first inbound audio."""
    answered = probe["answeredAt"]
    packet = probe["firstPacketAt"] - answered
    energy = probe["firstEnergyAt"] - answered
    print(
        f"{label}: post-pickup delay {packet:.0f} ms to the first inbound packet, "
        f"{energy:.0f} ms to the first audio energy ({probe['packetsReceived']} packets, "
        f"totalAudioEnergy {probe['totalAudioEnergy']:.4f})"
    )


async def media_flowed(phone: PhoneDriver) -> dict[str, Any]:
    """Wait until the page has received audio with energy and sent packets; the probe."""
    probe: dict[str, Any] = await phone.wait(_MEDIA_BOTH_WAYS, timeout_s=20)
    assert probe["answeredAt"] is not None, probe
    assert probe["packetsReceived"] > 0, probe
    assert probe["totalAudioEnergy"] > 0 or (probe["audioLevel"] or 0) > 0, probe
    return probe


async def streams_counted(gateway: RunningGateway) -> list[LogEvent]:
    """The gateway's closed media streams of the call: both legs carried packets in."""
    streams = await gateway.wait_for("media.stream_closed", count=2)
    assert {s.get("leg") for s in streams} == {"a", "b"}, streams
    assert all(int(str(s.get("packets_in"))) > 0 for s in streams), streams
    figures = ", ".join(
        f"leg {s.get('leg')}: {s.get('packets_in')} in, {s.get('packets_out')} out" for s in streams
    )
    firsts = ", ".join(
        f"toward {e.get('toward')} {e.get('since_answer_ms')} ms"
        for e in gateway.matching("media.first_packet_out")
    )
    print(f"gateway packets: {figures}; first packet out after the answer: {firsts}")
    return streams


async def test_a_the_phone_registers_over_wss(tmp_path: Path) -> None:
    pbx_port = free_udp_port()
    with trio.fail_after(60):
        registrar = await start_scenario("registrar", "-p", str(pbx_port))
        async with phone_on_gateway(tmp_path, pbx_port) as (gateway, phone):
            state = await register(phone)
            assert await finish(registrar) == 0
            print(f"Chromium {phone.version}, JsSIP {state['jssipVersion']}: {state}")
            assert state["registrationState"] == "registered" and state["connected"]
            assert state["lastError"] is None
            [changed] = await gateway.wait_for("binding.changed")
            assert changed.get("user") == "alice" and changed.get("removed") is False


async def test_b_the_phone_calls_a_sipp_uas_and_hears_its_echo(tmp_path: Path) -> None:
    pbx_port = free_udp_port()
    with trio.fail_after(90):
        registrar = await start_scenario("registrar", "-p", str(pbx_port))
        async with phone_on_gateway(tmp_path, pbx_port) as (gateway, phone):
            await register(phone)
            assert await finish(registrar) == 0
            pbx = await start_sipp(
                "-sn", "uas", "-p", str(pbx_port), "-m", "1",
                "-rtp_echo", "-mp", str(free_udp_port()),
            )  # fmt: skip
            assert await phone.evaluate(PROBE_SCRIPT) is True
            await phone.fill("#target", "bob")
            await phone.click("#call")
            await phone.wait("() => window.rtcgwPhone.callState === 'confirmed'")
            probe = await media_flowed(phone)
            report_delay("browser -> sipp", probe)
            await phone.click("#hangup")
            await phone.wait("() => window.rtcgwPhone.callState === 'ended'")
            assert await finish(pbx) == 0
            await streams_counted(gateway)
            assert (await phone.phone())["lastError"] is None


async def test_c_sipp_calls_the_phone_which_answers(tmp_path: Path) -> None:
    pbx_port = free_udp_port()
    with trio.fail_after(90):
        registrar = await start_scenario("registrar", "-p", str(pbx_port))
        async with phone_on_gateway(tmp_path, pbx_port) as (gateway, phone):
            await register(phone)
            assert await finish(registrar) == 0
            await gateway.wait_for("binding.changed")
            assert await phone.evaluate(PROBE_SCRIPT) is True
            caller = await start_sipp(
                "-sn", "uac", "-s", "alice", gateway_uri(gateway), "-p", str(free_udp_port()),
                "-m", "1", "-d", "4000", "-rtp_echo", "-mp", str(free_udp_port()),
            )  # fmt: skip
            ringing = await phone.wait(
                "() => window.rtcgwPhone.callState === 'ringing'"
                " && window.rtcgwPhone.direction === 'incoming'"
            )
            assert ringing is True
            assert await phone.evaluate("() => document.getElementById('ringing').hidden") is False
            await phone.click("#answer")
            probe = await media_flowed(phone)
            report_delay("sipp -> browser", probe)
            # sipp hangs up after its pause; the page's call ends.
            await phone.wait("() => window.rtcgwPhone.callState === 'ended'", timeout_s=20)
            assert await finish(caller) == 0
            await streams_counted(gateway)
            state = await phone.phone()
            assert state["lastError"] is None and state["registered"], state
