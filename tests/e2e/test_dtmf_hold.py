"""The web phone in headless Chromium in a call through ``rtcgw run`` on the handbook's
configuration to a small Python UAS whose phone reads RTP packet by packet.

Keypad: JsSIP sends each digit as SIP INFO (application/dtmf-relay) and the gateway turns
it into RFC 4733 events toward the PBX. Hold: JsSIP re-INVITEs with a=sendonly, then
a=sendrecv to resume, and the PBX's echo is heard again after the resume.
"""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from pathlib import Path

import trio

from rtcgw.sip import Request, parse_message
from tests.e2e.phone_driver import PROBE_SCRIPT
from tests.e2e.test_phone import media_flowed, phone_on_gateway, register, report_delay
from tests.integration.rtp_peer import RtpPeer
from tests.integration.sipp import finish, free_udp_port, start_scenario
from tests.integration.test_media_dtmf import TELEPHONE_EVENT, Uas, pbx, serving, wait_until_true


async def test_f_keypad_digits_reach_the_pbx_as_rfc_4733(tmp_path: Path) -> None:
    pbx_port = free_udp_port()
    with trio.fail_after(90):
        registrar = await start_scenario("registrar", "-p", str(pbx_port))
        async with (
            phone_on_gateway(tmp_path, pbx_port) as (gateway, browser),
            RtpPeer.open() as phone,
        ):
            await register(browser)
            assert await finish(registrar) == 0
            async with pbx(pbx_port, phone) as uas:
                await browser.fill("#target", "bob")
                await browser.click("#call")
                await browser.wait("() => window.rtcgwPhone.callState === 'confirmed'")
                assert uas.invite is not None
                # Chromium offers telephone-event; the gateway passed it on to the PBX.
                assert "telephone-event/8000" in uas.invite.body.decode()
                # The browser's audio reaches the phone first: the digits go into a stream.
                await phone.wait_for_packets(25, payload_type=0)
                for count, digit in enumerate(("1", "#", "5"), start=1):
                    await browser.click(f'#keypad button[data-digit="{digit}"]')
                    await wait_until_true(lambda n=count: len(phone.telephone_events()) >= n)
                events = phone.telephone_events()
                print(f"keypad 1 # 5 -> RFC 4733 events at the PBX (event, duration): {events}")
                assert [event for event, _ in events] == [1, 11, 5]
                assert all(duration > 0 for _, duration in events), events
                print(f"{len(phone.packets(TELEPHONE_EVENT))} event packets")
                await browser.click("#hangup")
                await browser.wait("() => window.rtcgwPhone.callState === 'ended'")
                await wait_until_true(lambda: "BYE" in uas.methods())
            # The INFOs went no further than the gateway.
            assert "INFO" not in uas.methods(), uas.methods()
            logged = gateway.matching("media.dtmf")
            assert [(e.get("digit"), e.get("direction")) for e in logged] == [
                ("1", "info->rfc4733"),
                ("#", "info->rfc4733"),
                ("5", "info->rfc4733"),
            ]
            assert (await browser.phone())["lastError"] is None


_ANSWERS = {"sendonly": "recvonly", "recvonly": "sendonly", "inactive": "inactive"}


def _direction(sdp: str) -> str:
    """The audio direction attribute of ``sdp`` (sendrecv when none is given)."""
    found = [line[2:] for line in sdp.splitlines() if line[2:] in (*_ANSWERS, "sendrecv")]
    return found[-1] if found else "sendrecv"


class HoldingUas(Uas):
    """The PBX, which also answers re-INVITEs, mirroring the offered direction."""

    reinvites: list[Request]

    async def serve(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        self.reinvites = []
        task_status.started()
        while True:
            data, source = await self.sock.recvfrom(65536)
            message = parse_message(data)
            if not isinstance(message, Request):
                continue
            if message.method == "INVITE" and self.invite is None:
                self.invite = message
                sdp = self.phone.sdp(payload_types=(0, TELEPHONE_EVENT)).encode()
                await self._respond(message, 200, source, body=sdp)
                continue
            self.requests.append(message)
            if message.method == "INVITE":
                self.reinvites.append(message)
                offered = _direction(message.body.decode())
                answer = self.phone.sdp(
                    payload_types=(0, TELEPHONE_EVENT),
                    direction=_ANSWERS.get(offered, "sendrecv"),
                )
                # A changed answer carries a higher o= version (RFC 3264 section 8).
                version = len(self.reinvites) + 1
                answer = answer.replace(" 1 IN IP4 ", f" {version} IN IP4 ", 1)
                await self._respond(message, 200, source, body=answer.encode())
            elif message.method != "ACK":
                await self._respond(message, 200, source)


def holding_pbx(port: int, phone: RtpPeer) -> AbstractAsyncContextManager[HoldingUas]:
    """The re-INVITE answering UAS on ``port`` (loopback), serving until the block ends."""
    return serving(HoldingUas, port, phone)


_RECEIVED = "() => window.rtcgwPhone.stats ? window.rtcgwPhone.stats.packetsReceived : 0"


async def test_e_hold_and_resume_re_invite_the_pbx_and_audio_resumes(tmp_path: Path) -> None:
    pbx_port = free_udp_port()
    with trio.fail_after(90):
        registrar = await start_scenario("registrar", "-p", str(pbx_port))
        async with (
            phone_on_gateway(tmp_path, pbx_port) as (_gateway, browser),
            RtpPeer.open(echo=True) as phone,
        ):
            await register(browser)
            assert await finish(registrar) == 0
            async with holding_pbx(pbx_port, phone) as uas:
                assert await browser.evaluate(PROBE_SCRIPT) is True
                await browser.fill("#target", "bob")
                await browser.click("#call")
                await browser.wait("() => window.rtcgwPhone.callState === 'confirmed'")
                probe = await media_flowed(browser)
                report_delay("browser -> echoing PBX", probe)

                await browser.click("#hold")
                await browser.wait("() => window.rtcgwPhone.held === true")
                await wait_until_true(lambda: len(uas.reinvites) >= 1)
                await browser.click("#hold")
                await browser.wait("() => window.rtcgwPhone.held === false")
                await wait_until_true(lambda: len(uas.reinvites) >= 2)
                directions = [_direction(r.body.decode()) for r in uas.reinvites]
                print(f"re-INVITEs at the PBX offered: {directions}")
                assert directions == ["sendonly", "sendrecv"]

                # The echo is heard again after the resume: the page's inbound packet count
                # grows well past where it stood once the resume was answered.
                resumed_at = int(await browser.evaluate(_RECEIVED))
                later = await browser.wait(f"() => ({_RECEIVED})() > {resumed_at + 50}")
                assert later is True
                print(f"inbound packets at the resume {resumed_at}, then over {resumed_at + 50}")
                await browser.click("#hangup")
                await browser.wait("() => window.rtcgwPhone.callState === 'ended'")
                await wait_until_true(lambda: "BYE" in uas.methods())
            assert (await browser.phone())["lastError"] is None
