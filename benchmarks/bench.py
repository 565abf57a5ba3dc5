"""``make bench``: every figure operators size rtcgw by, in one bounded run, beside rtpengine.

    python -m benchmarks.bench [--minutes 14] [--out benchmarks/results]

Steps, each repeated so that every figure is a median of at least three runs with its range:

1. capacity with 1 worker and with 2 workers: the most concurrent G.711 calls with < 0.1 %
   loss and p99 one-way delay < 5 ms each way (``relay_g711``), found by one full search
   and two local ones around its answer; the worker's CPU per relayed packet and RSS per
   call come from the passing runs at that load;
2. one-way delay p50/p99/p99.9 at 25, 50 and 90 % of the 1-worker capacity;
3. rtpengine relaying the same calls (``relay_rtpengine``): its CPU per packet at rtcgw's
   capacity, side by side, and its own capacity;
4. call set-ups per second sustained for 60 s with no failure, post-pickup delay under that
   load (``call_setups``);
5. RSS per registered idle WebSocket client at 1,000 clients and REGISTERs absorbed per
   second (``registrations``).

Writes ``<out>/<date>.json`` (the figures, every run's own figures under ``runs``) and
``<out>/<date>.md`` (the table the README quotes). Each step has a share of the time
budget; a step that runs out of it stops and says so in the results.
"""

from __future__ import annotations

import argparse
import datetime
import json
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import trio

from benchmarks import call_setups, registrations, relay_g711, relay_rtpengine
from benchmarks.loadgen.procstat import machine
from benchmarks.summary import CapacitySearch, Spread, get, markdown_table, spread

__all__ = ["BenchSettings", "main", "run_all"]

RESULTS: Final = Path(__file__).parent / "results"
#: The capacity criteria of the issue operators size by.
MAX_LOSS_PCT: Final = 0.1
MAX_P99_ONE_WAY_MS: Final = 5.0
REPEATS: Final = 3
_HALF_MAX_P99: Final = "p99_added_delay_ms_at_half_max"
#: Shares of the 1-worker capacity the delay step measures at, in percent.
DELAY_SHARES: Final = (25, 50, 90)

Figures = dict[str, Any]


class BudgetSpent(Exception):
    """A step's share of the time budget ran out."""


@dataclass
class BenchSettings:
    """The sizes of one ``make bench``; ``quick()`` gives a seconds-long version."""

    minutes: float = 14.0
    window_s: float = 5.0
    setup_rate: float = 100.0
    start_calls: int = 200
    granularity: int = 50
    ceiling_calls: int = 3200
    cps_seconds: float = 60.0
    ws_clients: int = 1000
    out: Path = RESULTS
    quick: bool = False

    @classmethod
    def quick_run(cls, out: Path) -> BenchSettings:
        """Tiny loads, a few seconds each: proves the pipeline, measures nothing."""
        return cls(
            minutes=4.0,
            window_s=2.0,
            setup_rate=20.0,
            start_calls=4,
            granularity=2,
            ceiling_calls=4,
            cps_seconds=3.0,
            ws_clients=10,
            out=out,
            quick=True,
        )


@dataclass
class Recorder:
    """Every run's figures, kept for the JSON file, and the budget's clock."""

    deadline: float
    runs: dict[str, list[Figures]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def left_s(self) -> float:
        """Seconds left of the whole budget."""
        return self.deadline - time.monotonic()

    def run(self, step: str, benchmark: Callable[[], Figures]) -> Figures:
        """Run one benchmark (a trio program of its own), keeping its figures."""
        if self.left_s() <= 0:
            raise BudgetSpent(step)
        figures = benchmark()
        self.runs.setdefault(step, []).append(figures)
        return figures


# -- capacity -------------------------------------------------------------------------------


def relay_verdict(figures: Mapping[str, Any]) -> tuple[bool, str]:
    """Whether a relay run met the capacity criteria, and the figures that decided it."""
    failed = int(get(figures, "calls.failed") or 0)
    losses = [get(figures, f"{d}.loss_pct") for d in ("browser_to_sip", "sip_to_browser")]
    p99s = [get(figures, f"one_way_ms.{d}.p99") for d in ("browser_to_sip", "sip_to_browser")]
    loss = max((float(v) for v in losses if v is not None), default=100.0)
    p99 = max((float(v) for v in p99s if v is not None), default=float("inf"))
    why = f"failed calls {failed}, loss {loss:.3f} %, p99 one-way {p99:.2f} ms"
    return failed == 0 and loss < MAX_LOSS_PCT and p99 < MAX_P99_ONE_WAY_MS, why


def _relay(settings: BenchSettings, calls: int, workers: int) -> Callable[[], Figures]:
    options = relay_g711.Options(
        calls=calls, seconds=settings.window_s, workers=workers, rate=settings.setup_rate
    )
    return lambda: trio.run(relay_g711.run_benchmark, options)


def _rtpengine(settings: BenchSettings, calls: int) -> Callable[[], Figures]:
    options = relay_rtpengine.Options(
        calls=calls, seconds=settings.window_s, rate=settings.setup_rate, threads=1
    )
    return lambda: trio.run(relay_rtpengine.run_benchmark, options)


def capacity(
    recorder: Recorder,
    settings: BenchSettings,
    step: str,
    make_run: Callable[[int], Callable[[], Figures]],
    *,
    searches: int = REPEATS,
) -> tuple[list[int], list[Figures]]:
    """``searches`` searches for the largest passing load; the answers and the runs at
    them."""
    at_answer: list[Figures] = []

    def probe(load: int) -> tuple[bool, str]:
        figures = recorder.run(step, make_run(load))
        passed, why = relay_verdict(figures)
        print(f"  {step}: {load} calls: {'pass' if passed else 'fail'} ({why})", flush=True)
        return passed, why

    search = CapacitySearch(
        probe,
        start=settings.start_calls,
        granularity=settings.granularity,
        ceiling=settings.ceiling_calls,
    )
    answers = [search.first()]
    while len(answers) < searches:
        answers.append(search.again(answers[-1]))
    # One passing run per answer, each run counted once (answers are often equal).
    for answer in answers:
        at_answer += [
            f
            for f in reversed(recorder.runs[step])
            if get(f, "calls.requested") == answer
            and relay_verdict(f)[0]
            and all(f is not taken for taken in at_answer)
        ][:1]
    return answers, at_answer


# -- the whole run ---------------------------------------------------------------------------


def run_all(settings: BenchSettings) -> Figures:
    """Every step in order, within the budget; the results (also written to files)."""
    recorder = Recorder(deadline=time.monotonic() + 60 * settings.minutes)
    results: Figures = {
        "date": datetime.date.today().isoformat(),
        "machine": machine(),
        "quick": settings.quick,
        "criteria": {"max_loss_pct": MAX_LOSS_PCT, "max_p99_one_way_ms": MAX_P99_ONE_WAY_MS},
    }
    steps: list[tuple[str, Callable[[Recorder, BenchSettings, Figures], None]]] = [
        ("capacity, 1 worker", _capacity_one),
        ("capacity, 2 workers", _capacity_two),
        ("one-way delay at 25/50/90 %", _delays),
        ("rtpengine side by side", _side_by_side),
        ("call set-ups per second", _setups),
        ("registrations", _registrations),
    ]
    for name, step in steps:
        print(f"{name} ({recorder.left_s():.0f} s of the budget left)", flush=True)
        try:
            step(recorder, settings, results)
        except BudgetSpent as exc:
            recorder.notes.append(f"{name}: stopped, the time budget ran out at {exc}")
    results["notes"] = recorder.notes
    results["runs"] = recorder.runs
    return results


def _json(value: Spread | None) -> dict[str, float | int] | None:
    return None if value is None else value.as_json()


def _capacity_one(recorder: Recorder, settings: BenchSettings, results: Figures) -> None:
    answers, runs = capacity(recorder, settings, "relay_1_worker", lambda n: _relay(settings, n, 1))
    results["max_calls_one_worker"] = _json(spread(answers))
    results["worker_us_per_packet"] = _json(
        spread([get(f, "relay.worker_us_per_packet") for f in runs])
    )
    results["rss_kb_per_call"] = _json(spread([get(f, "rss_kb_per_call") for f in runs]))
    summarise_per_process(results, runs, recorder.runs.get("registrations", []))


def _capacity_two(recorder: Recorder, settings: BenchSettings, results: Figures) -> None:
    answers, _ = capacity(recorder, settings, "relay_2_workers", lambda n: _relay(settings, n, 2))
    results["max_calls_two_workers"] = _json(spread(answers))
    one = get(results, "max_calls_one_worker.median")
    two = spread(answers)
    if one and two is not None:
        results["scaling_two_workers"] = round(two.median / float(one), 2)


def _delays(recorder: Recorder, settings: BenchSettings, results: Figures) -> None:
    maximum = get(results, "max_calls_one_worker.median")
    if not maximum:
        recorder.notes.append("one-way delay: no 1-worker capacity to take shares of")
        return
    for share in DELAY_SHARES:
        calls = max(1, int(float(maximum) * share / 100))
        for _ in range(REPEATS):
            recorder.run(f"delay_{share}", _relay(settings, calls, 1))
    summarise_delays(results, recorder.runs)


def summarise_delays(results: Figures, runs: Mapping[str, list[Figures]]) -> None:
    """``one_way_delay`` (p50/p99/p99.9 each way at each share of the capacity) and the
    p99 at half of it, from the runs of the delay step."""
    delays: Figures = {}
    for share in DELAY_SHARES:
        step = runs.get(f"delay_{share}", [])
        if not step:
            continue
        delays[f"{share}%"] = {
            "calls": get(step[0], "calls.requested"),
            **{
                # "p99.9" holds a dot: index the levels, not a dotted path.
                f"{d}_{p}_ms": _json(spread([_one_way(f, d, p) for f in step]))
                for d in ("browser_to_sip", "sip_to_browser")
                for p in ("p50", "p99", "p99.9")
            },
        }
    results["one_way_delay"] = delays
    half = delays.get("50%", {})
    worst = [half.get(f"{d}_p99_ms") for d in ("browser_to_sip", "sip_to_browser")]
    medians = [w["median"] for w in worst if w is not None]
    results[_HALF_MAX_P99] = max(medians) if medians else None


def _one_way(figures: Mapping[str, Any], direction: str, point: str) -> float | None:
    by_direction = get(figures, f"one_way_ms.{direction}")
    value = by_direction.get(point) if isinstance(by_direction, Mapping) else None
    return None if value is None else float(value)


def _side_by_side(recorder: Recorder, settings: BenchSettings, results: Figures) -> None:
    """rtpengine relays rtcgw's 1-worker capacity (the same load: CPU per packet compares
    like with like), then its own capacity is searched with the same criteria."""
    maximum = get(results, "max_calls_one_worker.median")
    calls = int(maximum) if maximum else settings.start_calls
    runs = [
        recorder.run("rtpengine_same_load", _rtpengine(settings, calls)) for _ in range(REPEATS)
    ]
    results["rtpengine_us_per_packet"] = _json(
        spread([get(f, "relay.us_per_packet") for f in runs])
    )
    results["rtpengine_same_load_calls"] = calls
    ours, theirs = (
        get(results, "worker_us_per_packet.median"),
        get(results, "rtpengine_us_per_packet.median"),
    )
    if ours and theirs:
        results["cpu_per_packet_ratio_rtcgw_to_rtpengine"] = round(float(ours) / float(theirs), 2)
    # One search only: the time budget goes to rtcgw's own figures; the CPU per packet
    # above, on the same load three times, is the side-by-side figure.
    answers, _ = capacity(
        recorder, settings, "rtpengine_capacity", lambda n: _rtpengine(settings, n), searches=1
    )
    results["rtpengine_max_calls"] = _json(spread(answers))
    if maximum and answers:
        median = spread(answers)
        if median is not None and median.median:
            results["capacity_ratio_rtcgw_to_rtpengine"] = round(float(maximum) / median.median, 2)


def _setups(recorder: Recorder, settings: BenchSettings, results: Figures) -> None:
    """One search for the best clean rate, held for 60 s; two more 60 s runs at it."""
    # Short steps pass rates a minute cannot hold (queues grow slowly when overloaded):
    # 15 s steps find a rate the 60 s runs keep, and a failing one descends a rung.
    step_s = 2.0 if settings.quick else 15.0
    rates = (2.0, 4.0) if settings.quick else call_setups.DEFAULT_RATES

    def run(rate: float | None) -> Callable[[], Figures]:
        options = call_setups.Options(
            rate=rate, seconds=settings.cps_seconds, rates=rates, step_s=step_s, attempts=3
        )
        return lambda: trio.run(call_setups.run_benchmark, options)

    first = recorder.run("call_setups", run(None))
    rate = first.get("call_setups_per_s")
    runs = [first]
    if rate:
        runs += [recorder.run("call_setups", run(float(rate))) for _ in range(REPEATS - 1)]
    for key in ("call_setups_per_s", "post_pickup_ms_p50", "post_pickup_ms_p99"):
        results[key] = _json(spread([f.get(key) for f in runs]))
    if any(f.get("lower_bound") for f in runs):
        recorder.notes.append("call set-ups: a generator was saturated; the rate is a lower bound")


def _registrations(recorder: Recorder, settings: BenchSettings, results: Figures) -> None:
    """RSS per idle registered client at ``ws_clients`` clients, re-REGISTERs absorbed."""
    options = registrations.Options(
        clients=settings.ws_clients, refresh_s=2.0 if settings.quick else 5.0
    )
    runs = [
        recorder.run("registrations", lambda: trio.run(registrations.run_benchmark, options))
        for _ in range(REPEATS)
    ]
    for key in ("rss_kb_per_ws_client", "register_absorbed_per_s"):
        results[key] = _json(spread([f.get(key) for f in runs]))
    summarise_per_process(results, [], runs)


def summarise_per_process(
    results: Figures, at_capacity: list[Figures], registered: list[Figures]
) -> None:
    """RSS per call and per idle client split into supervisor and workers, and the calls
    per core that the worker's CPU per packet implies (100 relayed packets/s a call)."""
    if at_capacity:
        results["rss_kb_per_call_by_process"] = {
            kind: _json(spread([get(f, f"rss_kb_per_call_by_kind.{kind}") for f in at_capacity]))
            for kind in ("supervisor", "workers")
        }
        us = get(results, "worker_us_per_packet.median")
        if us:
            results["implied_calls_per_worker_core"] = round(1e6 / (float(us) * 100))
    if registered:
        results["rss_kb_per_ws_client_by_process"] = {
            kind: _json(spread([get(f, f"rss_kb_per_client.{kind}") for f in registered]))
            for kind in ("supervisor", "workers")
        }


def write_results(results: Figures, out: Path) -> tuple[Path, Path]:
    """``<out>/<date>.json`` and ``<out>/<date>.md``; their paths."""
    out.mkdir(parents=True, exist_ok=True)
    stem = out / results["date"]
    json_path, md_path = stem.with_suffix(".json"), stem.with_suffix(".md")
    json_path.write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
    md_path.write_text(table(results), encoding="utf-8")
    return json_path, md_path


def _cell(results: Mapping[str, Any], key: str, unit: str = "") -> str:
    value = results.get(key)
    if isinstance(value, Mapping):
        return Spread(value["median"], value["min"], value["max"], value["runs"]).text(unit)
    return "not measured" if value is None else f"{value} {unit}".strip()


def _split_rows(results: Mapping[str, Any], key: str, label: str) -> list[tuple[str, str]]:
    """``label``'s supervisor and workers shares, a row each."""
    split = results.get(key) or {}
    return [(f"{label}: {kind}", _cell(split, kind, "kB")) for kind in split]


def _delay_rows(results: Mapping[str, Any]) -> list[tuple[str, str]]:
    """One row per share: the worse direction's p50 / p99 / p99.9 medians."""
    rows = []
    for share, figures in (results.get("one_way_delay") or {}).items():
        points = []
        for p in ("p50", "p99", "p99.9"):
            medians = [
                v["median"]
                for d in ("browser_to_sip", "sip_to_browser")
                if (v := figures.get(f"{d}_{p}_ms")) is not None
            ]
            points.append(f"{max(medians):.2f}" if medians else "-")
        rows.append(
            (
                f"one-way delay p50 / p99 / p99.9 at {share} of max ({figures['calls']} calls)",
                " / ".join(points) + " ms",
            )
        )
    return rows


def table(results: Mapping[str, Any]) -> str:
    """The Markdown table of the headline figures."""
    m = results["machine"]
    rows = [
        ("max concurrent calls, 1 worker", _cell(results, "max_calls_one_worker")),
        ("max concurrent calls, 2 workers", _cell(results, "max_calls_two_workers")),
        ("worker CPU per relayed packet", _cell(results, "worker_us_per_packet", "us")),
        ("calls per worker core it implies", _cell(results, "implied_calls_per_worker_core")),
        ("rtpengine CPU per relayed packet", _cell(results, "rtpengine_us_per_packet", "us")),
        (
            "rtpengine max concurrent calls (1 thread, one search)",
            _cell(results, "rtpengine_max_calls"),
        ),
        ("p99 one-way delay at 50 % of max", _cell(results, _HALF_MAX_P99, "ms")),
        *_delay_rows(results),
        ("call set-ups per second (60 s, 0 failures)", _cell(results, "call_setups_per_s")),
        ("post-pickup delay p50 under load", _cell(results, "post_pickup_ms_p50", "ms")),
        ("post-pickup delay p99 under load", _cell(results, "post_pickup_ms_p99", "ms")),
        ("RSS per active call", _cell(results, "rss_kb_per_call", "kB")),
        *_split_rows(results, "rss_kb_per_call_by_process", "RSS per active call"),
        ("RSS per idle registered WSS client", _cell(results, "rss_kb_per_ws_client", "kB")),
        *_split_rows(results, "rss_kb_per_ws_client_by_process", "RSS per idle client"),
        ("re-REGISTERs absorbed per second", _cell(results, "register_absorbed_per_s")),
    ]
    notes = [
        (
            f"Measured {results['date']} on {m['cpu_model']}, {m['cores_usable']} cores, "
            "loopback; median (min-max) of 3 runs."
        ),
        *results.get("notes", []),
    ]
    return markdown_table(rows, title=f"rtcgw benchmarks, {results['date']}", notes=notes)


def main(argv: list[str] | None = None) -> int:
    """Run every step and write the results."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench", description=__doc__)
    parser.add_argument("--minutes", type=float, default=14.0, help="time budget (14)")
    parser.add_argument("--out", type=Path, default=RESULTS, help="results directory")
    parser.add_argument("--quick", action="store_true", help="tiny loads: a check, no figures")
    args = parser.parse_args(argv)
    settings = (
        BenchSettings.quick_run(args.out)
        if args.quick
        else BenchSettings(minutes=args.minutes, out=args.out)
    )
    results = run_all(settings)
    json_path, md_path = write_results(results, settings.out)
    print(table(results))
    print(f"written: {json_path} and {md_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
