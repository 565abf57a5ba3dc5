"""Run sipp (Debian ``sip-tester``) as the SIP side of an integration test.

sipp runs in the foreground as a subprocess of the test, bounded by a timeout and by
``-m`` (calls) so it stops by itself; its exit code says whether every call succeeded
(0), some failed (1) or it was stopped (99). Only processes started here are signalled.
Each sipp runs in a temporary directory of its own, where ``-trace_err`` writes; ``finish``
prints that log when sipp failed and removes the directory.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import pytest
import trio

SCENARIOS = Path(__file__).parent / "scenarios"

T = TypeVar("T")

#: The working directory of each sipp we started, by PID: sipp writes its error log there.
_WORKDIRS: dict[int, Path] = {}


def free_udp_port() -> int:
    """A UDP port on 127.0.0.1 that was free a moment ago (sipp binds it next)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def require_sipp() -> str:
    """The sipp binary; `make test` installs it, so its absence is a failure, not a skip."""
    path = shutil.which("sipp")
    if path is None:
        pytest.fail("sipp is not installed: run `make test`, which installs sip-tester")
    return path


#: Every sipp ends by itself within this time, even when the test that started it failed
#: before waiting for it (``start_scenario`` asks for less).
_SIPP_LIFETIME = ("-timeout", "60", "-timeout_error")


async def start_sipp(*args: str) -> trio.Process:
    """Start ``sipp ARGS`` on loopback, quiet, in the background of the test; it stops by
    itself after at most 60 s."""
    lifetime = () if "-timeout" in args else _SIPP_LIFETIME
    command = [require_sipp(), "-i", "127.0.0.1", "-nostdin", "-nr", "-trace_err", *lifetime, *args]
    workdir = Path(tempfile.mkdtemp(prefix="rtcgw-sipp-"))
    with (workdir / "stderr_errors.log").open("wb") as stderr:
        process = await trio.lowlevel.open_process(
            command, stdout=subprocess.DEVNULL, stderr=stderr, cwd=workdir
        )
    _WORKDIRS[process.pid] = workdir
    return process


async def finish(process: trio.Process, *, timeout_s: float = 30) -> int:
    """Wait for sipp to end by itself; kill it if it overruns. Returns the exit code; when
    it is not 0, sipp's error log goes to standard error (pytest shows it)."""
    code = -9
    with trio.move_on_after(timeout_s):
        code = await process.wait()
    if process.returncode is None:
        process.kill()
        await process.wait()
    if code != 0:
        print(f"sipp exited with {code}:\n{error_log(process)}", file=sys.stderr)
    workdir = _WORKDIRS.pop(process.pid, None)
    if workdir is not None:
        shutil.rmtree(workdir, ignore_errors=True)
    return code


async def start_scenario(name: str, *args: str, calls: int = 1) -> trio.Process:
    """Start sipp on ``scenarios/NAME.xml`` for ``calls`` calls; every ``<recv>`` gives up
    after 10 s and the whole run after 30 s, so a scenario stuck on a missing message ends
    by itself with a failure (exit code 1)."""
    return await start_sipp(
        "-sf",
        str(SCENARIOS / f"{name}.xml"),
        "-m",
        str(calls),
        "-recv_timeout",
        "10000",
        "-timeout",
        "30",
        "-timeout_error",
        *args,
    )


def error_log(process: trio.Process) -> str:
    """What sipp wrote to its error logs so far."""
    workdir = _WORKDIRS.get(process.pid)
    if workdir is None:
        return ""
    logs = sorted(workdir.glob("*_errors.log"))
    return "\n".join(log.read_text(errors="replace") for log in logs if log.stat().st_size)


async def before_exit(process: trio.Process, operation: Callable[[], Awaitable[T]]) -> T:
    """Run ``operation`` (waiting for sipp's first message, say); fail at once with sipp's
    error log if sipp exits first (it could not bind, its scenario is wrong, ...)."""
    result: list[T] = []

    async def run(cancel: trio.CancelScope) -> None:
        result.append(await operation())
        cancel.cancel()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(run, nursery.cancel_scope)
        code = await process.wait()
        if not result:
            raise AssertionError(f"sipp exited ({code}) first:\n{error_log(process)}")
    return result[0]
