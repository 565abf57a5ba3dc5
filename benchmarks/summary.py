"""The arithmetic of ``make bench``: medians with their range, capacity searches, the table.

Nothing here starts a process: the runner (``bench.py``) hands in the figures its runs
returned, or a probe function that runs one, so all of it can be checked without load.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["CapacitySearch", "SearchStep", "Spread", "get", "markdown_table", "spread"]


@dataclass(frozen=True, slots=True)
class Spread:
    """A figure measured several times: its median and range."""

    median: float
    low: float
    high: float
    runs: int

    def as_json(self) -> dict[str, float | int]:
        """``{"median", "min", "max", "runs"}``, rounded for reading."""
        return {
            "median": _round(self.median),
            "min": _round(self.low),
            "max": _round(self.high),
            "runs": self.runs,
        }

    def text(self, unit: str = "") -> str:
        """``12.3 (11.9-13.0) unit``."""
        suffix = f" {unit}" if unit else ""
        return f"{_short(self.median)} ({_short(self.low)}-{_short(self.high)}){suffix}"


def spread(values: Sequence[float | None]) -> Spread | None:
    """The median and range of the values measured (None ones are left out)."""
    present = [float(v) for v in values if v is not None]
    if not present:
        return None
    return Spread(statistics.median(present), min(present), max(present), len(present))


@dataclass(frozen=True, slots=True)
class SearchStep:
    """One load tried by a capacity search and whether the target held."""

    load: int
    passed: bool
    why: str


Probe = Callable[[int], tuple[bool, str]]


class CapacitySearch:
    """The largest load (a multiple of ``granularity``) at which ``probe`` passes.

    The first search doubles from ``start`` until the probe fails (or ``ceiling``), then
    bisects. Later searches start from the previous answer and step by ``granularity``,
    which usually settles in two probes: that is what makes three searches affordable.
    """

    def __init__(self, probe: Probe, *, start: int, granularity: int, ceiling: int) -> None:
        if not 0 < granularity <= start <= ceiling:
            raise ValueError(
                f"capacity search: need 0 < granularity <= start <= ceiling, "
                f"got {granularity}, {start}, {ceiling}"
            )
        self._probe = probe
        self.start = start
        self.granularity = granularity
        self.ceiling = ceiling
        self.steps: list[SearchStep] = []

    def _try(self, load: int) -> bool:
        passed, why = self._probe(load)
        self.steps.append(SearchStep(load, passed, why))
        return passed

    def first(self) -> int:
        """A full search: the largest passing load found (0 if even the smallest fails)."""
        low, load = 0, self.start
        while self._try(load):
            low = load
            if load >= self.ceiling:
                return load
            load = min(self.ceiling, load * 2)
        return self._bisect(low, load)

    def again(self, previous: int, *, max_probes: int = 4) -> int:
        """A local search around ``previous``: up while it passes, down while it fails;
        after ``max_probes`` failures downwards it bisects what is left."""
        g = self.granularity
        load = min(self.ceiling, max(g, previous))
        if self._try(load):
            for _ in range(max_probes - 1):
                if load + g > self.ceiling or not self._try(load + g):
                    break
                load += g
            return load
        for _ in range(max_probes - 1):
            if load - g < g:
                return 0
            load -= g
            if self._try(load):
                return load
        return self._bisect(0, load)

    def _bisect(self, low: int, high: int) -> int:
        """The largest passing load in (low, high), given low passed and high failed."""
        g = self.granularity
        while high - low > g:
            middle = (low + high) // 2 // g * g
            if middle <= low:
                break
            if self._try(middle):
                low = middle
            else:
                high = middle
        return low


def markdown_table(rows: Sequence[tuple[str, str]], *, title: str, notes: Sequence[str]) -> str:
    """A two-column Markdown table with a title line and notes under it."""
    out = [f"### {title}", "", "| figure | measured |", "| --- | --- |"]
    out += [f"| {name} | {value} |" for name, value in rows]
    out += ["", *notes]
    return "\n".join(out) + "\n"


def get(figures: Mapping[str, Any], path: str) -> Any:
    """``figures["a"]["b"]`` for ``"a.b"``; None when a key is missing."""
    value: Any = figures
    for key in path.split("."):
        if not isinstance(value, Mapping) or key not in value:
            return None
        value = value[key]
    return value


def _round(value: float) -> float:
    return round(value, 3) if abs(value) < 100 else round(value, 1)


def _short(value: float) -> str:
    if value == int(value) and abs(value) >= 10:
        return str(int(value))
    return f"{value:.3g}" if abs(value) < 100 else f"{value:.0f}"
