"""The frame of a relay benchmark's browser side: calls set up at a rate, held through a
measuring window, then hung up.

The generator that calls through rtcgw (``browsers.py``) and the one that drives
rtpengine over ng (``ng_shim.py``) differ only in how a call is set up and ended; this
is the rest. ``HeldCalls.run`` starts the media pump, starts one ``_call`` task per call
at the settings' rate, waits until every call is up or failed (bounded), measures for
``seconds`` (the probes sent meanwhile are the ones counted), lets the last probes come
back, then sets ``hangup`` for every call task to end its call.
"""

from __future__ import annotations

import abc
import os
from collections import Counter
from collections.abc import Sequence
from typing import Any, Protocol

import trio

from benchmarks.loadgen.probe import Phase
from benchmarks.loadgen.procstat import cpu_sample
from benchmarks.loadgen.webrtc_media import MediaCall, MediaPump

__all__ = ["CallRecord", "HeldCalls", "WindowSettings"]


class WindowSettings(Protocol):
    """What ``HeldCalls`` reads of a generator's settings."""

    @property
    def calls(self) -> int: ...
    @property
    def rate(self) -> float: ...
    @property
    def seconds(self) -> float: ...
    @property
    def drain_s(self) -> float: ...
    @property
    def setup_timeout_s(self) -> float: ...
    @property
    def watch(self) -> dict[str, int]: ...
    @property
    def hard_deadline_s(self) -> float: ...


class CallRecord(Protocol):
    """What ``HeldCalls`` reads and settles of one call's record."""

    media: MediaCall
    setup_started: float
    #: "pending", "up" or "failed:<why>"
    outcome: str
    bye: str


class HeldCalls(abc.ABC):
    """Calls held through one measuring window; subclasses set up and end each call."""

    def __init__(self, settings: WindowSettings, pump: MediaPump) -> None:
        self.settings = settings
        self.pump = pump
        #: set when the window is over: every call task ends its call
        self.hangup = trio.Event()
        #: CPU samples and the window's length, for the report
        self.window: dict[str, Any] = {}
        self._settled = 0
        self._all_settled = trio.Event()

    def cpu(self) -> dict[str, float | None]:
        """CPU seconds so far of the watched processes and of this one ("generator")."""
        return cpu_sample({**self.settings.watch, "generator": os.getpid()})

    async def run(self) -> dict[str, Any]:
        """Set up, measure, hang up; the report."""
        s = self.settings
        with trio.fail_after(s.hard_deadline_s):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self.pump.run, trio.current_time() + s.hard_deadline_s)
                async with trio.open_nursery() as calls:
                    for index in range(s.calls):
                        calls.start_soon(self._call, index)
                        await trio.sleep(1 / s.rate)
                    with trio.move_on_after(s.setup_timeout_s + 5):
                        await self._all_settled.wait()
                    await self._measure()
                    self.hangup.set()
                nursery.cancel_scope.cancel()
        return self.report()

    async def _measure(self) -> None:
        s = self.settings
        start = trio.current_time()
        self.pump.phase = Phase.MEASURE
        self.window["cpu_start"] = self.cpu()
        self._window_opened()
        await trio.sleep(s.seconds)
        self.pump.phase = Phase.DRAIN
        self.window["cpu_end"] = self.cpu()
        self.window["seconds"] = trio.current_time() - start
        self._window_closed()
        await trio.sleep(s.drain_s)
        for call in self._records():
            call.media.sending = False

    def _settle(self, call: CallRecord, outcome: str) -> None:
        """Record a call's outcome once; the last one to settle opens the window."""
        if call.outcome != "pending":
            return
        call.outcome = outcome
        self._settled += 1
        if self._settled == self.settings.calls:
            self._all_settled.set()

    def _common_report(self) -> dict[str, Any]:
        """The report's part every generator shares: outcomes, media counters and
        delays, set-up times (INVITE to media ready), BYE results."""
        calls = self._records()
        setup_ms = sorted(
            (c.media.ready_at - c.setup_started) * 1000
            for c in calls
            if c.media.ready_at is not None
        )
        return {
            "event": "report",
            "outcomes": dict(Counter(c.outcome for c in calls)),
            **self.pump.report([c.media for c in calls]),
            "setup_ms_p50": setup_ms[len(setup_ms) // 2] if setup_ms else None,
            "setup_ms_max": setup_ms[-1] if setup_ms else None,
            "bye": dict(Counter(c.bye for c in calls)),
        }

    @abc.abstractmethod
    async def _call(self, index: int) -> None:
        """Set up call ``index``, settle it, hold it until ``hangup``, end it."""

    @abc.abstractmethod
    def _records(self) -> Sequence[CallRecord]:
        """The record of every call started so far."""

    @abc.abstractmethod
    def _window_opened(self) -> None:
        """The window just opened (``window["cpu_start"]`` is read)."""

    @abc.abstractmethod
    def _window_closed(self) -> None:
        """The window just closed (``cpu_end`` and ``seconds`` are read)."""

    @abc.abstractmethod
    def report(self) -> dict[str, Any]:
        """Every counter of the run."""
