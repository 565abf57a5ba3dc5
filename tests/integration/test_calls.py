"""Calls through the running gateway between a scripted browser and real sipp peers.

The browser speaks SIP over WebSocket as JsSIP does; sipp plays the PBX side (a UAS that
answers, a registrar, a UAC calling a registered browser, a callee rung until cancelled).
SDP passes through unchanged at this stage.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import trio

from rtcgw.sip import Response
from tests.integration.browser import Call, browser
from tests.integration.common import args
from tests.integration.gateway import RunningGateway, run_gateway
from tests.integration.sipp import SCENARIOS, finish, free_udp_port, start_sipp


async def _call_and_hang_up(gateway: RunningGateway, user: str) -> Call:
    async with browser(gateway.address("WS"), user) as alice:
        call, final = await alice.invite("bob")
        assert final.status == 200, final
        # 100 Trying at once on the inbound leg, then the callee's 180 relayed.
        assert [r.status for r in call.responses if r.provisional] == [100, 180]
        await alice.ack(call)
        bye = await alice.bye(call)
        assert bye.status == 200
        return call


async def test_browser_calls_a_sipp_uas_and_hangs_up() -> None:
    pbx_port = free_udp_port()
    with trio.fail_after(60):
        sipp = await start_sipp("-sn", "uas", "-p", str(pbx_port), "-m", "1")
        async with run_gateway(args(pbx_port)) as gateway:
            call = await _call_and_hang_up(gateway, "alice")
            assert await finish(sipp) == 0
        # The answer the browser saw carries the browser's own dialog, not the PBX's.
        ok = call.responses[-1]
        assert ok.call_id == call.call_id
        assert ".invalid" not in bytes(ok).decode().split("\r\n\r\n")[0].split("Via:")[0]


async def test_sipp_calls_a_registered_browser() -> None:
    pbx_port = free_udp_port()
    with trio.fail_after(90):
        registrar = await start_sipp(
            "-sf", str(SCENARIOS / "registrar.xml"), "-p", str(pbx_port), "-m", "1"
        )
        async with (
            run_gateway(args(pbx_port)) as gateway,
            browser(gateway.address("WS"), "alice") as alice,
        ):
            registered = await alice.register()
            assert registered.status == 200
            # JsSIP counts itself registered only if the 200 lists its own Contact.
            assert alice.host in (registered.get("Contact") or "")
            assert await finish(registrar) == 0
            await gateway.wait_for("binding.changed")
            host, port = gateway.address("UDP")
            caller = await start_sipp(
                "-sn",
                "uac",
                "-s",
                "alice",
                f"{host}:{port}",
                "-p",
                str(free_udp_port()),
                "-m",
                "1",
                "-d",
                "200",
            )
            invite = await alice.receive_request("INVITE")
            assert invite.uri.user == "alice"  # type: ignore[union-attr]
            call = await alice.answer(invite)
            ack = await alice.receive_request("ACK")
            assert ack.call_id == call.call_id
            bye = await alice.receive_request("BYE")
            await alice.respond(bye, 200)
            assert await finish(caller) == 0


async def test_browser_cancels_a_ringing_call() -> None:
    pbx_port = free_udp_port()
    scenario = str(SCENARIOS / "uas_ring_until_cancel.xml")
    with trio.fail_after(60):
        sipp = await start_sipp("-sf", scenario, "-p", str(pbx_port), "-m", "1")
        async with run_gateway(args(pbx_port)) as gateway:
            async with browser(gateway.address("WS"), "alice") as alice:
                request = alice._request(
                    "INVITE", "sip:bob@example.test", to="<sip:bob@example.test>"
                )
                call = Call(request)
                await alice.send(request)
                statuses = []
                while 180 not in statuses:
                    response = await alice.receive()
                    assert isinstance(response, Response)
                    statuses.append(response.status)
                await alice.cancel(call)
                answers = {}
                while 487 not in answers:
                    response = await alice.receive()
                    assert isinstance(response, Response)
                    answers[response.status] = response.cseq.method
                assert answers == {200: "CANCEL", 487: "INVITE"}
            assert await finish(sipp) == 0


async def test_calls_spread_over_two_workers() -> None:
    pbx_port = free_udp_port()
    calls = 8
    with trio.fail_after(90):
        sipp = await start_sipp("-sn", "uas", "-p", str(pbx_port), "-m", str(calls))
        async with run_gateway(args(pbx_port), workers=2) as gateway:
            for n in range(calls):
                await _call_and_hang_up(gateway, f"user{n}")
            assert await finish(sipp) == 0
            started = gateway.matching("b2bua.call_started")
            by_worker = {e["worker"] for e in started}
            assert len(started) == calls
            assert by_worker == {0, 1}, f"calls by worker: {[e['worker'] for e in started]}"


async def test_calls_on_one_worker_survive_the_other_being_killed() -> None:
    pbx_port = free_udp_port()
    with trio.fail_after(120):
        sipp = await start_sipp("-sn", "uas", "-p", str(pbx_port), "-m", "1")
        async with run_gateway(args(pbx_port), workers=2) as gateway:
            async with browser(gateway.address("WS"), "alice") as alice:
                call, final = await alice.invite("bob")
                assert final.status == 200
                await alice.ack(call)
                (started,) = gateway.matching("b2bua.call_started")
                survivor = started["worker"]
                victim = 1 - survivor
                os.kill(gateway.worker_pids()[victim], signal.SIGKILL)
                await gateway.wait_for("worker.exited", where=lambda e: e["worker"] == victim)
                await gateway.wait_for("worker.ready", count=3)
                # The call on the surviving worker still ends cleanly on both legs.
                bye = await alice.bye(call)
                assert bye.status == 200
            assert await finish(sipp) == 0


async def test_sigterm_hangs_up_calls_on_both_legs() -> None:
    pbx_port = free_udp_port()
    with trio.fail_after(60):
        sipp = await start_sipp("-sn", "uas", "-p", str(pbx_port), "-m", "1")
        # SIGTERM drains first: with a one-second drain the held call is hung up at once.
        config_args = args(pbx_port)
        config = Path(config_args[1])
        config.write_text(config.read_text() + "\n[gateway]\ndrain_timeout_s = 1.0\n")
        async with run_gateway(config_args) as gateway:
            async with browser(gateway.address("WS"), "alice") as alice:
                call, final = await alice.invite("bob")
                assert final.status == 200
                await alice.ack(call)
                gateway.process.send_signal(signal.SIGTERM)
                bye = await alice.receive_request("BYE")
                assert bye.call_id == call.call_id
                await alice.respond(bye, 200)
                # sipp's uas scenario ends only after a BYE and its 200: exit 0 says so.
                assert await finish(sipp) == 0
            assert await gateway.process.wait() == 0
            (ended,) = gateway.matching("b2bua.call_ended")
            assert ended["reason"] == "shutdown"
