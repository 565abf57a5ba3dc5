"""``rtcgw ctl`` against a running gateway: status, calls, drain/undrain, reload, SIGHUP,
restart-worker, SIGTERM drain-then-stop, and the control socket itself.

The gateway runs as ``rtcgw run`` with its control socket in a fresh directory; ``rtcgw
ctl`` runs as its own process, as an operator would run it. Calls are a scripted browser
(WebSocket) toward sipp playing the PBX.
"""

from __future__ import annotations

import json
import signal
import stat
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest
import trio
from trio_websocket import ConnectionRejected, open_websocket

from tests.integration.browser import browser
from tests.integration.calls import browser_calls_the_pbx
from tests.integration.common import args, scrape, value
from tests.integration.gateway import RunningGateway, run_gateway
from tests.integration.sipp import finish, free_udp_port, start_sipp

# A rule put in front of call_to_pbx by the reload tests: calls to bob get 403.
CLOSED_RULE = """
[[realms.rtc.a_rules]]
name = "closed_for_bob"
when = { method = "INVITE", ruri_user = "^bob$" }
actions = [
  { action = "reply", code = 403, reason = "Closed" },
]
"""
_CALL_TO_PBX = '[[realms.rtc.a_rules]]\nname = "call_to_pbx"'


def _control() -> Path:
    # A Unix socket path is at most 107 bytes: keep it short.
    return Path(tempfile.mkdtemp(prefix="ctl-", dir="/tmp")) / "c.sock"


async def ctl(control: Path, *command: str) -> tuple[int, str, str]:
    """Run ``rtcgw ctl --control CONTROL COMMAND...``: exit code, stdout, stderr."""
    done = await trio.run_process(
        [sys.executable, "-m", "rtcgw", "ctl", "--control", str(control), *command],
        check=False,
        capture_stdout=True,
        capture_stderr=True,
    )
    return done.returncode, done.stdout.decode(), done.stderr.decode()


async def ctl_json(control: Path, *command: str) -> dict[str, Any]:
    """The reply of ``rtcgw ctl --json COMMAND...`` (its last line), which must succeed."""
    code, out, err = await ctl(control, "--json", *command)
    assert code == 0, (out, err)
    reply: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return reply


async def _call_status(gateway: RunningGateway, user: str, target: str) -> int:
    """A browser's call to ``target``: its final status (hung up at once if answered)."""
    async with browser(gateway.address("WS"), user) as phone:
        call, final = await phone.invite(target)
        if final.success:
            await phone.ack(call)
            assert (await phone.bye(call)).status == 200
        else:
            await phone.ack_failure(call, final)
        return final.status


async def test_status_calls_and_call_while_a_call_is_up() -> None:
    pbx_port, control = free_udp_port(), _control()
    with trio.fail_after(90):
        sipp = await start_sipp("-sn", "uas", "-p", str(pbx_port), "-m", "1")
        async with run_gateway([*args(pbx_port), "--control", str(control)]) as gateway:
            mode = stat.S_IMODE(control.stat().st_mode)
            print("control socket mode", oct(mode))
            assert stat.S_ISSOCK(control.stat().st_mode) and mode == 0o600
            status = await ctl_json(control, "status")
            print(json.dumps(status, indent=1))
            assert status["state"] == "running"
            assert [w["index"] for w in status["workers"]] == [0, 1]
            assert all(w["state"] == "ready" and w["pid"] > 0 for w in status["workers"])
            assert status["config"]["version"] == 1 and status["calls"] == 0
            async with browser(gateway.address("WS"), "alice") as alice:
                call, final = await alice.invite("bob")
                assert final.status == 200
                await alice.ack(call)
                calls = await ctl_json(control, "calls")
                print(json.dumps(calls, indent=1))
                assert [c["call_id"] for c in calls["calls"]] == [call.call_id]
                (row,) = calls["calls"]
                code, text, _ = await ctl(control, "calls")
                print(text)
                assert code == 0 and call.call_id in text
                detail = await ctl_json(control, "call", call.call_id)
                assert detail["ok"] and detail["worker"] == row["worker"]
                code, text, _ = await ctl(control, "call", call.call_id)
                print(text)
                assert code == 0 and text.startswith(f"call {call.call_id} on worker")
                assert (await ctl_json(control, "status"))["calls"] == 1
                assert (await alice.bye(call)).status == 200
            assert await finish(sipp) == 0
            code, _, err = await ctl(control, "call", "no-such-call")
            assert code == 1 and "no call 'no-such-call'" in err + _
    assert not control.exists()  # removed at the stop
    code, _, err = await ctl(control, "status")
    print(err)
    assert code == 1 and "no gateway control socket at" in err and "Traceback" not in err


async def test_drain_refuses_new_calls_and_websockets_and_lets_the_call_finish() -> None:
    pbx_port, control = free_udp_port(), _control()
    with trio.fail_after(120):
        sipp = await start_sipp("-sn", "uas", "-p", str(pbx_port), "-m", "2")
        async with (
            run_gateway([*args(pbx_port), "--control", str(control)]) as gateway,
            browser(gateway.address("WS"), "alice") as alice,
        ):
            call, final = await alice.invite("bob")
            assert final.status == 200
            await alice.ack(call)
            drained: list[tuple[int, str, str]] = []
            async with trio.open_nursery() as nursery:

                async def drain() -> None:
                    drained.append(await ctl(control, "drain", "--timeout", "60"))

                nursery.start_soon(drain)
                await gateway.wait_for("gateway.drain")
                await gateway.wait_for("worker.drain", count=2)
                # A new INVITE on the open WebSocket: 503 with Retry-After.
                second, refused = await alice.invite("bob")
                await alice.ack_failure(second, refused)
                print(refused.status, refused.get("Retry-After"))
                assert refused.status == 503 and int(refused.get("Retry-After") or "0") > 0
                # A new WebSocket connection is refused.
                host, port = gateway.address("WS")
                with pytest.raises(ConnectionRejected) as rejected:
                    async with open_websocket(host, port, "/", use_ssl=False, subprotocols=["sip"]):
                        pass
                assert rejected.value.status_code == 503
                status = await ctl_json(control, "status")
                assert status["state"] == "draining" and status["calls"] == 1
                assert value(await scrape(gateway), "rtcgw_draining") == 1.0
                assert not drained  # still waiting for the call
                # The call in progress ends by its own BYE, and the drain returns.
                assert (await alice.bye(call)).status == 200
            ((code, out, err),) = drained
            print(out)
            assert code == 0 and "node drained" in out, (out, err)
            code, out, _ = await ctl(control, "undrain")
            assert code == 0 and "accepting new calls" in out
            assert (await ctl_json(control, "status"))["state"] == "running"
            assert value(await scrape(gateway), "rtcgw_draining") == 0.0
            assert await _call_status(gateway, "carol", "bob") == 200
        assert await finish(sipp) == 0


async def test_a_node_drain_keeps_a_webrtc_call_and_its_media_until_its_own_bye(
    tmp_path: Path,
) -> None:
    control = _control()
    drained: list[tuple[int, str, str]] = []

    async def drain() -> None:
        drained.append(await ctl(control, "drain", "--timeout", "60"))

    with trio.fail_after(120):
        gateway_args = ("--control", str(control))
        async with (
            browser_calls_the_pbx(tmp_path, gateway_args=gateway_args) as call,
            trio.open_nursery() as nursery,
        ):
            nursery.start_soon(drain)
            while (await ctl_json(control, "status"))["state"] != "draining":
                await trio.sleep(0.1)
            # The echo keeps coming back through the draining node: 2 s more of tone.
            before = (await call.peer.stats()).audio_frames
            heard = await call.peer.wait_for_audio(min_frames=before + 100, timeout_s=20)
            assert heard.audio_hz is not None and abs(heard.audio_hz - 1000) < 50
            assert not drained  # the drain waits for the call
            await call.hang_up()
        [(code, out, err)] = drained
        assert code == 0 and "node drained" in out, (out, err)
        [ended] = call.gateway.matching("b2bua.call_ended")
        assert ended.get("reason") != "shutdown"


async def test_reload_dry_run_apply_broken_file_and_sighup() -> None:
    pbx_port, control = free_udp_port(), _control()
    run_args = args(pbx_port)
    path = Path(run_args[1])
    original = path.read_text(encoding="utf-8")
    closed = original.replace(_CALL_TO_PBX, CLOSED_RULE.strip() + "\n\n" + _CALL_TO_PBX, 1)
    assert closed != original
    with trio.fail_after(120):
        sipp = await start_sipp("-sn", "uas", "-p", str(pbx_port), "-m", "2")
        async with run_gateway([*run_args, "--control", str(control)]) as gateway:
            path.write_text(closed, encoding="utf-8")
            code, out, err = await ctl(control, "reload", "--dry-run")
            print(out)
            assert code == 0, err
            assert "dry run: nothing applied" in out
            assert "closed_for_bob" in out and "added" in out
            # Nothing applied: bob is still reachable.
            assert await _call_status(gateway, "alice", "bob") == 200

            code, out, err = await ctl(control, "reload")
            print(out)
            assert code == 0 and "config version 2" in out, err
            assert await _call_status(gateway, "alice", "bob") == 403

            path.write_text(closed + "\n[[[ not toml\n", encoding="utf-8")
            code, out, err = await ctl(control, "reload")
            print(out, err)
            assert code == 1 and "error:" in out and "running configuration is kept" in out
            status = await ctl_json(control, "status")
            assert status["config"]["version"] == 2
            assert await _call_status(gateway, "alice", "bob") == 403  # the old one serves

            path.write_text(original, encoding="utf-8")
            gateway.process.send_signal(signal.SIGHUP)
            await gateway.wait_for("config.reloaded", count=2)
            assert (await ctl_json(control, "status"))["config"]["version"] == 3
            assert await _call_status(gateway, "alice", "bob") == 200
            samples = await scrape(gateway)
            reloads = {
                result: value(samples, "rtcgw_config_reloads_total", result=result)
                for result in ("ok", "failed", "dry_run")
            }
            print(reloads)
            assert reloads == {"ok": 2.0, "failed": 1.0, "dry_run": 1.0}
        assert await finish(sipp) == 0


async def test_reload_refuses_a_change_that_needs_a_restart() -> None:
    pbx_port, control = free_udp_port(), _control()
    run_args = args(pbx_port)
    path = Path(run_args[1])
    with trio.fail_after(60):
        async with run_gateway([*run_args, "--control", str(control)]):
            text = path.read_text(encoding="utf-8")
            listen = f'listen = "127.0.0.1:{free_udp_port()}"'
            changed = text.replace('listen = "127.0.0.1:0"', listen, 1)
            assert changed != text
            path.write_text(changed, encoding="utf-8")
            code, out, err = await ctl(control, "reload")
            print(out)
            assert code == 1 and "needs a restart" in out and "[interfaces]" in out, err
            status = await ctl_json(control, "status")
            assert status["config"]["version"] == 1


async def test_restart_worker_then_sigterm_drains_before_stopping() -> None:
    pbx_port, control = free_udp_port(), _control()
    with trio.fail_after(120):
        sipp = await start_sipp("-sn", "uas", "-p", str(pbx_port), "-m", "1")
        async with run_gateway([*args(pbx_port), "--control", str(control)]) as gateway:
            before = gateway.worker_pids()
            restarted = await ctl_json(control, "restart-worker", "1")
            print(restarted)
            assert restarted["old_pid"] == before[1] and restarted["pid"] != before[1]
            pids = {w["index"]: w["pid"] for w in (await ctl_json(control, "status"))["workers"]}
            assert pids == {0: before[0], 1: restarted["pid"]}
            code, _, err = await ctl(control, "restart-worker", "7")
            assert code == 1 and "no worker 7" in err + _

            async with browser(gateway.address("WS"), "alice") as alice:
                call, final = await alice.invite("bob")
                assert final.status == 200
                await alice.ack(call)
                gateway.process.send_signal(signal.SIGTERM)
                await gateway.wait_for("gateway.drain")
                assert gateway.process.returncode is None  # waits for the call
                assert (await alice.bye(call)).status == 200
                assert await gateway.process.wait() == 0
            assert await finish(sipp) == 0
            (ended,) = gateway.matching("b2bua.call_ended")
            assert ended["reason"] != "shutdown"
            assert gateway.matching("gateway.drained", remaining=0)


def test_ctl_usage_errors_are_not_tracebacks() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "rtcgw", "ctl", "--control", "/nonexistent/c.sock", "status"],
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
    )
    assert done.returncode == 1
    assert done.stderr.startswith("rtcgw ctl: no gateway control socket at /nonexistent/c.sock")
