"""Run ``rtcgw run`` as a real process on loopback and follow its JSON log.

The gateway is started with ``--log-format json`` on port 0 everywhere (``--metrics``
included); the test learns
the bound ports from the ``gateway.ready`` event. Every wait is bounded by the caller's
``trio.fail_after``; the process is stopped (SIGTERM, then SIGKILL) by PID when the test
ends, and only processes started here are signalled.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import trio

LogEvent = dict[str, Any]


@dataclass
class RunningGateway:
    """A gateway process, its log so far, and the listeners it announced."""

    process: trio.Process
    events: list[LogEvent] = field(default_factory=list)
    listeners: dict[str, tuple[str, int]] = field(default_factory=dict)
    _changed: trio.Event = field(default_factory=trio.Event)

    def address(self, transport: str) -> tuple[str, int]:
        """The bound address of the listener with this transport ("UDP", "WS", ...)."""
        return self.listeners[transport]

    def matching(self, event: str, **fields: object) -> list[LogEvent]:
        """Log events named ``event`` whose fields include ``fields``."""
        return [
            e
            for e in self.events
            if e.get("event") == event and all(e.get(k) == v for k, v in fields.items())
        ]

    async def wait_for(
        self, event: str, *, count: int = 1, where: Callable[[LogEvent], bool] | None = None
    ) -> list[LogEvent]:
        """Wait until at least ``count`` events named ``event`` (and passing ``where``)."""
        while True:
            found = [e for e in self.matching(event) if where is None or where(e)]
            if len(found) >= count:
                return found
            if self.process.returncode is not None:
                raise AssertionError(f"gateway exited ({self.process.returncode}) before {event}")
            changed = self._changed
            await changed.wait()

    def worker_pids(self) -> dict[int, int]:
        """The current PID of each worker index, from the ``worker.ready`` events."""
        return {e["worker"]: e["pid"] for e in self.matching("worker.ready")}

    def _add(self, line: str) -> None:
        for event in _json_objects(line):
            self.events.append(event)
            if event.get("event") == "gateway.ready":
                for item in event["listeners"]:
                    self.listeners.setdefault(item["transport"], (item["host"], item["port"]))
        self._changed.set()
        self._changed = trio.Event()


def _json_objects(line: str) -> list[LogEvent]:
    """The JSON events on one line; two processes' events run together (``{..}{..}``)
    are split, anything else is kept as a ``stderr`` event."""
    decoder = json.JSONDecoder()
    events: list[LogEvent] = []
    at = 0
    text = line.strip()
    while at < len(text):
        try:
            event, at = decoder.raw_decode(text, at)
        except json.JSONDecodeError:
            return [*events, {"event": "stderr", "text": text[at:]}]
        if not isinstance(event, dict):
            return [*events, {"event": "stderr", "text": text}]
        events.append(event)
        while at < len(text) and text[at].isspace():
            at += 1
    return events


async def _follow(gateway: RunningGateway, stream: trio.abc.ReceiveStream) -> None:
    buffer = b""
    async for chunk in stream:
        buffer += chunk
        *lines, buffer = buffer.split(b"\n")
        for line in lines:
            if line.strip():
                gateway._add(line.decode("utf-8", errors="replace"))
    gateway._changed.set()


@asynccontextmanager
async def run_gateway(args: Sequence[str], *, workers: int = 2) -> AsyncIterator[RunningGateway]:
    """Start ``rtcgw run ARGS`` and yield it once every worker is ready."""
    arguments = [
        "run",
        "--workers",
        str(workers),
        "--metrics",  # never the default port: another gateway may be using it
        "127.0.0.1:0",
        *args,
    ]
    async with run_rtcgw(arguments) as gateway:
        yield gateway


@asynccontextmanager
async def run_rtcgw(
    arguments: Sequence[str], *, ready: Sequence[str] = ("gateway.ready",)
) -> AsyncIterator[RunningGateway]:
    """Start ``rtcgw ARGUMENTS`` (JSON logs followed) and yield it once each ``ready`` event
    was logged; at the end SIGTERM, then SIGKILL after 15 s, by PID."""
    command = [sys.executable, "-m", "rtcgw", "--log-format", "json", *arguments]
    process = await trio.lowlevel.open_process(
        command,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    gateway = RunningGateway(process)
    async with trio.open_nursery() as nursery:
        assert process.stderr is not None
        nursery.start_soon(_follow, gateway, process.stderr)
        try:
            with trio.fail_after(30):
                for event in ready:
                    await gateway.wait_for(event)
            yield gateway
        finally:
            with trio.CancelScope(shield=True):
                if process.returncode is None:
                    process.send_signal(signal.SIGTERM)
                    with trio.move_on_after(15):
                        await process.wait()
                if process.returncode is None:
                    process.kill()
                    await process.wait()
            nursery.cancel_scope.cancel()
