"""Run sipp (Debian ``sip-tester``) as the SIP side of an integration test.

sipp runs in the foreground as a subprocess of the test, bounded by a timeout and by
``-m`` (calls) so it stops by itself; its exit code says whether every call succeeded
(0), some failed (1) or it was stopped (99). Only processes started here are signalled.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
from pathlib import Path

import pytest
import trio

SCENARIOS = Path(__file__).parent / "scenarios"


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


async def start_sipp(*args: str) -> trio.Process:
    """Start ``sipp ARGS`` on loopback, quiet, in the background of the test."""
    command = [require_sipp(), "-i", "127.0.0.1", "-nostdin", "-nr", "-trace_err", *args]
    return await trio.lowlevel.open_process(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )


async def finish(process: trio.Process, *, timeout_s: float = 30) -> int:
    """Wait for sipp to end by itself; kill it if it overruns. Returns the exit code."""
    with trio.move_on_after(timeout_s):
        return await process.wait()
    process.kill()
    await process.wait()
    return -9
