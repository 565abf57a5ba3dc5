"""Child programs of a benchmark, driven from trio: JSON lines on standard output.

Each program (the browser-side generator, the SIP side) writes one JSON object per line on
its standard output and reads commands on its standard input. ``Child`` reads the lines as
they come and lets the caller wait for an event by name; ``spawn`` ends the program by its
PID when the block ends (SIGTERM, then SIGKILL), whatever happened inside.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager, suppress
from pathlib import Path
from typing import Any, Final

import trio

__all__ = ["SIP_SIDE_READY_S", "Child", "ChildFailed", "Event", "sip_side", "spawn"]

Event = dict[str, Any]

REPO_ROOT: Final = Path(__file__).resolve().parents[2]
_STOP_GRACE_S: Final = 10.0
#: How long the SIP side may take to say it is ready.
SIP_SIDE_READY_S: Final = 30.0


class ChildFailed(Exception):
    """A child program exited, or wrote something that is not a JSON event."""


class Child:
    """A running child program and the events it wrote so far."""

    def __init__(self, name: str, process: trio.Process) -> None:
        self.name = name
        self.process = process
        self.events: list[Event] = []
        self._changed = trio.Event()
        self._ended = False

    @property
    def pid(self) -> int:
        """The program's process id."""
        return self.process.pid

    async def wait_for(self, event: str) -> Event:
        """The first event named ``event`` (the caller bounds the wait).

        Raises:
            ChildFailed: the program ended before writing it.
        """
        while True:
            for item in self.events:
                if item.get("event") == event:
                    return item
            if self._ended:
                raise ChildFailed(
                    f"{self.name} (pid {self.pid}) ended (exit {self.process.returncode}) "
                    f"before its {event!r} event"
                )
            changed = self._changed
            await changed.wait()

    async def send(self, command: str) -> None:
        """Write one command line to the program's standard input."""
        stdin = self.process.stdin
        if stdin is None:
            raise ChildFailed(f"{self.name} (pid {self.pid}) has no standard input")
        try:
            await stdin.send_all(command.encode() + b"\n")
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            raise ChildFailed(f"{self.name} (pid {self.pid}) closed its input") from None

    async def _follow(self) -> None:
        stdout = self.process.stdout
        assert stdout is not None
        buffer = b""
        try:
            async for chunk in stdout:
                buffer += chunk
                *lines, buffer = buffer.split(b"\n")
                for line in lines:
                    if line.strip():
                        self._add(line)
        finally:
            self._ended = True
            self._changed.set()

    def _add(self, line: bytes) -> None:
        try:
            event = json.loads(line)
        except json.JSONDecodeError:
            event = {"event": "output", "text": line.decode(errors="replace")}
        if not isinstance(event, dict):
            event = {"event": "output", "text": line.decode(errors="replace")}
        self.events.append(event)
        self._changed.set()
        self._changed = trio.Event()


@asynccontextmanager
async def spawn(name: str, module: str, args: Sequence[str]) -> AsyncIterator[Child]:
    """Run ``python -m module args`` from the repository's top folder.

    Resource handling: when the block ends, standard input is closed (the programs end on
    it); a program still running ``_STOP_GRACE_S`` later gets SIGTERM, then SIGKILL.
    """
    process = await trio.lowlevel.open_process(
        [sys.executable, "-m", module, *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        cwd=REPO_ROOT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    child = Child(name, process)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(child._follow)
        try:
            yield child
        finally:
            with trio.CancelScope(shield=True):
                await stop(process, close_input=True)
            nursery.cancel_scope.cancel()


@asynccontextmanager
async def sip_side(max_seconds: float) -> AsyncIterator[tuple[Child, int]]:
    """Run the SIP side (``pbx.py``) for at most ``max_seconds``; it and the port its
    SIP socket is bound to, once it says it is ready. Ended as ``spawn`` ends programs."""
    async with spawn(
        "SIP side", "benchmarks.loadgen.pbx", ["--max-seconds", str(max_seconds)]
    ) as pbx:
        with trio.fail_after(SIP_SIDE_READY_S):
            ready = await pbx.wait_for("ready")
        yield pbx, int(ready["sip_port"])


async def stop(process: trio.Process, *, close_input: bool = False) -> None:
    """End ``process`` (ours) by its PID: end of input or SIGTERM first, SIGKILL last."""
    if process.returncode is None and close_input and process.stdin is not None:
        with suppress(trio.BrokenResourceError, trio.ClosedResourceError):
            await process.stdin.aclose()
        with trio.move_on_after(_STOP_GRACE_S / 2):
            await process.wait()
    if process.returncode is None:
        process.send_signal(signal.SIGTERM)
        with trio.move_on_after(_STOP_GRACE_S):
            await process.wait()
    if process.returncode is None:
        process.kill()
        await process.wait()
