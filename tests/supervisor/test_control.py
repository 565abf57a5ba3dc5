"""The ``rtcgw ctl`` control protocol: codec, formatting, and the Unix socket server and
client on a real socket in a temporary directory."""

from __future__ import annotations

import json
import os
import socket
import stat
import tempfile
from collections.abc import Mapping
from pathlib import Path

import pytest
import trio

from rtcgw.supervisor.control import (
    COMMANDS,
    ControlError,
    ControlRequest,
    ControlUnavailable,
    SendLine,
    control_path,
    ctl_request,
    decode_reply,
    decode_request,
    default_control_path,
    encode_reply,
    encode_request,
    format_reply,
    serve_control,
)

# -- codec -------------------------------------------------------------------------------


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_request_round_trip(command: str) -> None:
    line = encode_request(command, worker=1, dry_run=True)
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    assert decode_request(line.rstrip(b"\n")) == ControlRequest(
        command, {"worker": 1, "dry_run": True}
    )


def test_unknown_command_is_refused_on_both_sides() -> None:
    with pytest.raises(ControlError, match="unknown ctl command 'reboot'"):
        encode_request("reboot")
    with pytest.raises(ControlError, match="unknown command 'reboot'"):
        decode_request(b'{"command": "reboot"}')


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (b"not json", "request: not JSON"),
        (b"[1, 2]", "a JSON list, not an object"),
        (b'{"command": "status", "args": [1]}', "'args' must be an object"),
        (b'{"command": "status", "extra": 1}', "unknown keys \\['extra'\\]"),
    ],
)
def test_bad_requests_say_what_is_wrong(line: bytes, message: str) -> None:
    with pytest.raises(ControlError, match=message):
        decode_request(line)


def test_request_without_args_has_empty_args() -> None:
    assert decode_request(b'{"command": "status"}').args == {}


def test_reply_round_trip_writes_other_values_as_text() -> None:
    line = encode_reply({"ok": True, "path": Path("/x"), "n": 2})
    assert decode_reply(line) == {"ok": True, "path": "/x", "n": 2}
    with pytest.raises(ControlError, match="reply: a JSON str"):
        decode_reply(b'"ok"')


def test_control_path_default_and_configured(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_RUNTIME_DIR", "/run/user/1000")
    assert default_control_path() == Path("/run/user/1000/rtcgw.sock")
    assert control_path("") == Path("/run/user/1000/rtcgw.sock")
    assert control_path("/srv/gw.sock") == Path("/srv/gw.sock")
    monkeypatch.delenv("XDG_RUNTIME_DIR")
    assert default_control_path() == Path(f"/tmp/rtcgw-{os.getuid()}.sock")


# -- formatting --------------------------------------------------------------------------

STATUS = {
    "ok": True,
    "node": "gw-1",
    "state": "running",
    "version": "0.1.0",
    "uptime_s": 3725.0,
    "registrations": 3,
    "calls": 2,
    "config": {"source": "gateway.toml", "version": 2, "age_s": 5.25},
    "workers": [
        {"index": 0, "pid": 101, "state": "ready", "calls": 2, "uptime_s": 70.0, "restarts": 0},
        {"index": 1, "pid": None, "state": "starting", "calls": None, "uptime_s": None,
         "restarts": 3},
    ],
}  # fmt: skip


def test_status_text() -> None:
    text = format_reply("status", STATUS)
    print(text)
    lines = text.splitlines()
    assert lines[0] == "node gw-1: running (up 1h02m, rtcgw 0.1.0)"
    assert lines[1] == "config: gateway.toml version 2 (loaded 5.2s ago)"
    assert "registrations: 3" in lines
    assert lines[-3].split() == ["WORKER", "PID", "STATE", "CALLS", "UPTIME", "RESTARTS"]
    assert lines[-2].split() == ["0", "101", "ready", "2", "1m10s", "0"]
    assert lines[-1].split() == ["1", "-", "starting", "-", "-", "3"]


def test_calls_text() -> None:
    reply = {
        "ok": True,
        "calls": [
            {"call_id": "a@b", "worker": 1, "age_s": 12.0, "ice": "nominated",
             "dtls": "connected", "path": "wss dtls-srtp pcmu <-> udp rtp pcmu"},
        ],
    }  # fmt: skip
    text = format_reply("calls", reply)
    print(text)
    header, row, total = text.splitlines()
    assert header.split() == ["CALL-ID", "WORKER", "AGE", "PATH", "ICE", "DTLS"]
    assert row.split("  ")[0] == "a@b" and row.index("wss") == header.index("PATH")
    path = ["wss", "dtls-srtp", "pcmu", "<->", "udp", "rtp", "pcmu"]
    assert row.split() == ["a@b", "1", "12s", *path, "nominated", "connected"]
    assert total == "1 call(s)"
    assert format_reply("calls", {"ok": True, "calls": []}) == "no active calls"


def test_call_text_with_timeline_and_verdict() -> None:
    reply = {
        "ok": True,
        "worker": 0,
        "call": {
            "call_id": "a@b",
            "path": "wss dtls-srtp pcmu <-> udp rtp pcmu",
            "events": [
                {"t": 0.0, "event": "sip_in", "method": "INVITE"},
                {"t": 0.25, "event": "dtls_started", "role": "server"},
            ],
            "packets": {"toward_browser": 10, "toward_sip": 0},
            "verdict": "browser never completed DTLS",
        },
    }
    text = format_reply("call", reply)
    print(text)
    assert text.splitlines()[0] == "call a@b on worker 0"
    assert "      0.250s  dtls_started  role=server" in text
    assert "packets: toward_browser 10, toward_sip 0" in text
    assert text.endswith("verdict: browser never completed DTLS")
    flowing = {**reply, "call": {**reply["call"], "verdict": None}}  # type: ignore[dict-item]
    assert format_reply("call", flowing).endswith("verdict: media flows both ways")


def test_drain_text_progress_done_and_timed_out() -> None:
    remaining = [{"call_id": "a@b", "worker": 1}]
    progress = {"progress": True, "worker": None, "remaining": remaining}
    assert format_reply("drain", progress) == "draining node: 1 call(s) in progress"
    done = {"ok": True, "drained": True, "worker": 0, "remaining": []}
    assert format_reply("drain", done).startswith("worker 0 drained")
    late = {"ok": True, "drained": False, "worker": None, "timeout_s": 2.0, "remaining": remaining}
    assert format_reply("drain", late) == "node still has 1 call(s) after 2.0 s:\n  a@b (worker 1)"


def test_reload_text() -> None:
    change = "~ changed realm rtc a-rule call_to_pbx: actions ..."
    dry = {"ok": True, "dry_run": True, "changes": [change], "needs_restart": ["[interfaces]"]}
    text = format_reply("reload", dry)
    assert text.splitlines() == [
        "dry run: nothing applied; 1 change(s) would apply:",
        f"  {change}",
        "  (needs a restart, refused: [interfaces])",
    ]
    done = {"ok": True, "dry_run": False, "source": "g.toml", "version": 3, "changes": [change]}
    assert format_reply("reload", done).startswith("reloaded g.toml: config version 3;")
    failed = {"ok": False, "error": "g.toml: realms.rtc: unknown key 'x'", "changes": []}
    assert format_reply("reload", failed) == "error: g.toml: realms.rtc: unknown key 'x'"


def test_registrations_text() -> None:
    reply = {
        "ok": True,
        "registrations": [
            {"user": "alice", "aor": "sip:alice@example.com", "contact": "sip:x@h;transport=ws",
             "transport": "WS", "host": "127.0.0.1", "port": 4000, "expires_s": 59.5},
        ],
    }  # fmt: skip
    text = format_reply("registrations", reply)
    assert "alice  sip:alice@example.com  sip:x@h;transport=ws  WS" in text
    assert "127.0.0.1:4000  59s" in text


# -- the socket --------------------------------------------------------------------------


async def _fake_gateway(request: ControlRequest, send: SendLine) -> Mapping[str, object]:
    if request.command == "drain":
        for left in (2, 1):
            await send({"progress": True, "worker": None, "remaining": [{}] * left})
        return {"ok": True, "drained": True, "worker": None, "remaining": []}
    if request.command == "restart-worker":
        raise ControlError("restart-worker: no worker 9 (workers are 0..1)")
    return {"ok": True, "echo": dict(request.args)}


def _short_tmp() -> Path:
    # A Unix socket path is at most 107 bytes: keep it short.
    return Path(tempfile.mkdtemp(prefix="ctl-", dir="/tmp"))


async def test_server_and_client_over_a_unix_socket() -> None:
    path = _short_tmp() / "c.sock"
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            await nursery.start(serve_control, path, _fake_gateway)
            mode = stat.S_IMODE(path.stat().st_mode)
            assert mode == 0o600, oct(mode)
            reply = await ctl_request(path, "call", call_id="x@y")
            assert reply == {"ok": True, "echo": {"call_id": "x@y"}}
            progress: list[dict[str, object]] = []
            reply = await ctl_request(path, "drain", on_progress=progress.append, timeout_s=1)
            assert [len(p["remaining"]) for p in progress] == [2, 1]  # type: ignore[arg-type]
            assert reply["drained"] is True
            reply = await ctl_request(path, "restart-worker", worker=9)
            assert reply == {"ok": False, "error": "restart-worker: no worker 9 (workers are 0..1)"}
            nursery.cancel_scope.cancel()
    assert not path.exists()  # removed when the server ends


async def test_garbage_request_gets_an_error_reply() -> None:
    path = _short_tmp() / "c.sock"
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            await nursery.start(serve_control, path, _fake_gateway)
            stream = await trio.open_unix_socket(str(path))
            async with stream:
                await stream.send_all(b"hello\n")
                data = b""
                while not data.endswith(b"\n"):
                    chunk = await stream.receive_some(4096)
                    assert chunk
                    data += chunk
            reply = json.loads(data)
            assert reply["ok"] is False and reply["error"].startswith("bad request: request")
            nursery.cancel_scope.cancel()


async def test_stale_socket_is_replaced_and_a_live_one_is_not_taken() -> None:
    path = _short_tmp() / "c.sock"
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(str(path))
    stale.close()  # the file stays, nobody listens: a crashed gateway's leftover
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            await nursery.start(serve_control, path, _fake_gateway)
            with pytest.raises(ControlError, match="another gateway listens on it"):
                await nursery.start(serve_control, path, _fake_gateway)
            assert (await ctl_request(path, "status"))["ok"] is True
            nursery.cancel_scope.cancel()


async def test_client_without_gateway_gets_a_clear_error() -> None:
    directory = _short_tmp()
    with pytest.raises(ControlUnavailable, match=r"no gateway control socket at .*is rtcgw"):
        await ctl_request(directory / "none.sock", "status")
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(str(directory / "dead.sock"))
    stale.close()
    with pytest.raises(ControlUnavailable, match="connection refused"):
        await ctl_request(directory / "dead.sock", "status")
