"""Call set-ups per second the gateway sustains with no failure, and the post-pickup delay.

    python -m benchmarks.call_setups [--rate R] [--seconds 60] [--workers 1] [--json]

Each call is a whole WebRTC -> SIP call through ``rtcgw run`` on the handbook's
configuration: INVITE over WSS -> 200 -> ACK -> ICE -> DTLS -> ``--hold`` seconds of G.711
probes echoed by the SIP side -> BYE -> 200 (``loadgen/churn.py``). A call fails on a SIP
error status, an ICE or DTLS timeout, no echoed media, or a BYE that is not answered 200.

Without ``--rate`` a search comes first: short runs (``--step-seconds``) at rising rates
(``--rates``), on one gateway, until a run has a failure; the highest rate with none is
then run for ``--seconds`` on a fresh gateway (and one rung lower if that fails, at most
``--attempts`` runs). With ``--rate`` only that sustained run is made.

Printed: per run the calls and failures by reason, set-up times (INVITE to 200, INVITE to
DTLS done), the post-pickup delay (the 200 reaching the browser side to its first media
packet received, which is the SIP side's echo of its first probe) as p50/p99, and the CPU
of the gateway's supervisor and workers and of the generators over the run. Calls come from
several generator processes when the rate is high (``--generator-rate`` each); a generator
above 90 % of a core may have held the rate back, and the output says so: the figure is
then a lower bound. Nothing is asserted: this is a measurement, not a test.
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import trio

from benchmarks.loadgen.children import Child, sip_side, spawn
from benchmarks.loadgen.churn import OK, percentiles
from benchmarks.loadgen.figures import metric_deltas, print_figures, process_cpu
from benchmarks.loadgen.gateway import (
    EXAMPLE_CERTIFICATE,
    RunningGateway,
    handbook_config,
    run_gateway,
    scrape_metrics,
)
from benchmarks.loadgen.procstat import cpu_sample, machine

__all__ = ["Options", "format_text", "main", "run_benchmark"]

DEFAULT_RATES: Final = (25.0, 50.0, 75.0, 100.0, 150.0, 200.0, 300.0, 400.0, 600.0, 800.0)
#: A generator process above this share of a core may not have kept its schedule.
SATURATED_PCT: Final = 90.0
_POINTS: Final = (50.0, 90.0, 99.0, 100.0)
_READY_TIMEOUT_S: Final = 60.0
_SETTLE_TIMEOUT_S: Final = 20.0
_SETTLE_POLL_S: Final = 0.5
_METRIC_PREFIXES: Final = (
    "rtcgw_calls_total",
    "rtcgw_dtls_handshakes_total",
    "rtcgw_sip_messages_dropped_total",
    "rtcgw_sip_requests_rejected_total",
    "rtcgw_websocket_connections_closed_total",
    "rtcgw_post_pickup_delay_seconds_count",
    "rtcgw_post_pickup_delay_seconds_sum",
)


@dataclass(frozen=True)
class Options:
    """One benchmark's parameters; ``rate=None`` searches for the rate first."""

    rate: float | None = None
    seconds: float = 60.0
    workers: int = 1
    rates: tuple[float, ...] = DEFAULT_RATES
    step_s: float = 10.0
    hold_s: float = 1.0
    setup_timeout_s: float = 10.0
    #: calls per second one generator process is given at most
    generator_rate: float = 80.0
    attempts: int = 2

    def generators(self, rate: float) -> int:
        """Generator processes for ``rate``."""
        return max(1, math.ceil(rate / self.generator_rate))

    def run_bound_s(self, seconds: float) -> float:
        """A hard bound on one run of ``seconds``, start-up and teardown included."""
        return seconds + self.hold_s + 2 * self.setup_timeout_s + _READY_TIMEOUT_S + 60

    @property
    def deadline_s(self) -> float:
        """A hard bound on the whole benchmark."""
        search = 0.0 if self.rate is not None else len(self.rates) * self.run_bound_s(self.step_s)
        return search + self.attempts * (self.run_bound_s(self.seconds) + 60) + 60


async def run_benchmark(options: Options) -> dict[str, Any]:
    """Search (without a rate), then the sustained run; the figures.

    Resource handling: every process started here is ended by its PID when this returns
    or fails (``children.spawn``, ``gateway.run_gateway``).
    """
    with trio.fail_after(options.deadline_s), tempfile.TemporaryDirectory() as directory:
        async with sip_side(options.deadline_s) as (pbx, sip_port):
            config = handbook_config(Path(directory), sip_port)
            search: dict[str, Any] | None = None
            rate = options.rate
            if rate is None:
                search = await _search(options, config, pbx.pid)
                rate = search["highest_passing_rate"]
            sustained: list[dict[str, Any]] = []
            while rate is not None and len(sustained) < options.attempts:
                async with run_gateway(config, workers=options.workers) as gateway:
                    run = await _run(options, gateway, pbx.pid, rate, options.seconds)
                sustained.append(run)
                if run["passed"] or options.rate is not None:
                    break
                rate = _lower(options.rates, rate)
    return _figures(options, search, sustained)


async def _search(options: Options, config: Path, pbx_pid: int) -> dict[str, Any]:
    """Runs at rising rates on one gateway until one fails."""
    steps: list[dict[str, Any]] = []
    async with run_gateway(config, workers=options.workers) as gateway:
        for rate in options.rates:
            run = await _run(options, gateway, pbx_pid, rate, options.step_s)
            steps.append(run)
            print(f"  call_setups: {rate:g}/s: {_verdict(run)}", file=sys.stderr, flush=True)
            if not run["passed"]:
                break
            await _settle(gateway)
    passing = [s["rate"] for s in steps if s["passed"]]
    failing = next((s for s in steps if not s["passed"]), None)
    return {
        "step_s": options.step_s,
        "steps": steps,
        "highest_passing_rate": max(passing) if passing else None,
        "first_failing_rate": None if failing is None else failing["rate"],
        "first_failing_reasons": None if failing is None else failing["failures"],
    }


def _lower(rates: tuple[float, ...], rate: float) -> float | None:
    below = [r for r in rates if r < rate]
    return max(below) if below else None


async def _settle(gateway: RunningGateway) -> None:
    """Wait (bounded) until the gateway reports no call in progress."""
    metrics = gateway.address("HTTP")
    for _ in range(int(_SETTLE_TIMEOUT_S / _SETTLE_POLL_S)):
        samples = await scrape_metrics(metrics)
        active = sum(v for k, v in samples.items() if k.startswith("rtcgw_calls_active"))
        if samples and active == 0:
            return
        await trio.sleep(_SETTLE_POLL_S)


async def _run(
    options: Options, gateway: RunningGateway, pbx_pid: int, rate: float, seconds: float
) -> dict[str, Any]:
    """One churn run at ``rate`` for ``seconds``, split over the generator processes."""
    count = options.generators(rate)
    host, port = gateway.address("WSS")
    args = [
        "--mode", "churn", "--start-on-go", "--wss", f"{host}:{port}",
        "--cafile", str(EXAMPLE_CERTIFICATE), "--rate", str(rate / count),
        "--seconds", str(seconds), "--hold-seconds", str(options.hold_s),
        "--setup-timeout", str(options.setup_timeout_s),
    ]  # fmt: skip
    with trio.fail_after(options.run_bound_s(seconds)):
        async with AsyncExitStack() as stack:
            generators: list[Child] = [
                await stack.enter_async_context(
                    spawn(f"generator {i}", "benchmarks.loadgen.browsers", args)
                )
                for i in range(count)
            ]
            with trio.fail_after(_READY_TIMEOUT_S + options.setup_timeout_s):
                pools = [int((await g.wait_for("ready"))["connections"]) for g in generators]
            watch = {
                "supervisor": gateway.pid,
                **{f"worker{i}": pid for i, pid in sorted(gateway.worker_pids.items())},
                **{f"generator{i}": g.pid for i, g in enumerate(generators)},
                "sip_side": pbx_pid,
            }
            metrics = gateway.address("HTTP")
            metrics_before = await scrape_metrics(metrics)
            cpu_before = cpu_sample(watch)
            start = trio.current_time()
            for generator in generators:
                await generator.send("go")
            reports = [await g.wait_for("report") for g in generators]
            elapsed = trio.current_time() - start
            cpu_after = cpu_sample(watch)
            metrics_after = await scrape_metrics(metrics)
    deltas = metric_deltas(metrics_before, metrics_after, _METRIC_PREFIXES)
    cpu = process_cpu(cpu_before, cpu_after, elapsed)
    return _merge(rate, seconds, reports=reports, pools=pools, cpu=cpu, metrics=deltas)


def _merge(
    rate: float,
    seconds: float,
    *,
    reports: list[dict[str, Any]],
    pools: list[int],
    cpu: dict[str, dict[str, float | None]],
    metrics: dict[str, float],
) -> dict[str, Any]:
    """One run's figures from its generators' reports."""
    outcomes: dict[str, int] = {}
    for report in reports:
        for reason, n in report["outcomes"].items():
            outcomes[reason] = outcomes.get(reason, 0) + int(n)
    calls = sum(int(r["calls"]) for r in reports)
    ok = outcomes.get(OK, 0)

    def merged(key: str) -> dict[str, float | None]:
        values = [v for r in reports for v in r[key]]
        return {"count": len(values), **percentiles(values, _POINTS)}

    generator_pct = {
        name: item["cpu_pct"] for name, item in cpu.items() if name.startswith("generator")
    }
    saturated = sorted(n for n, p in generator_pct.items() if p is not None and p > SATURATED_PCT)
    late = sum(int(r["late_starts"]) for r in reports)
    return {
        "rate": rate,
        "seconds": seconds,
        "generators": len(reports),
        "calls": calls,
        "ok": ok,
        "failed": calls - ok,
        "failures": {k: v for k, v in sorted(outcomes.items()) if k != OK},
        "passed": calls > 0 and ok == calls,
        "invite_to_200_ms": merged("invite_to_200_ms"),
        "invite_to_dtls_ms": merged("invite_to_dtls_ms"),
        "post_pickup_ms": merged("post_pickup_ms"),
        "cpu": cpu,
        "generator_saturated": saturated,
        "late_starts": late,
        "start_lag_ms_max": max((r["start_lag_ms_max"] or 0.0) for r in reports),
        "connections": {
            "pool": sum(pools),
            "opened_during_run": sum(int(r["connections"]["opened_during_run"]) for r in reports),
            "shared": sum(int(r["connections"]["shared"]) for r in reports),
            "open_failures": sum(sum(r["connections"]["open_failures"].values()) for r in reports),
        },
        "rtt_ms_by_generator": [r["rtt_ms"] for r in reports],
        "gateway_metrics": {k: round(v, 4) for k, v in metrics.items()},
    }


def _figures(
    options: Options, search: dict[str, Any] | None, sustained: list[dict[str, Any]]
) -> dict[str, Any]:
    final = sustained[-1] if sustained else None
    passed = final is not None and final["passed"]
    notes = [
        (
            "the gateway runs the handbook configuration on loopback; calls send no "
            "REGISTER, so the per-source REGISTER limit is left as configured"
        ),
        "other programs may share this machine's CPU: the figures are noisy",
    ]
    if final is not None and final["generator_saturated"]:
        notes.append(
            "a generator was above 90 % of a core in the sustained run: the rate is a lower "
            "bound of what the gateway can do"
        )
    post_pickup = final["post_pickup_ms"] if final is not None else {}
    return {
        "benchmark": "call_setups",
        "machine": machine(),
        "workers": options.workers,
        "hold_s": options.hold_s,
        "setup_timeout_s": options.setup_timeout_s,
        "search": search,
        "sustained": sustained,
        "call_setups_per_s": final["rate"] if passed and final is not None else None,
        "sustained_seconds": options.seconds,
        "post_pickup_ms_p50": post_pickup.get("p50") if passed else None,
        "post_pickup_ms_p99": post_pickup.get("p99") if passed else None,
        "lower_bound": bool(final and final["generator_saturated"]),
        "notes": notes,
    }


def _verdict(run: dict[str, Any]) -> str:
    if run["passed"]:
        return f"{run['calls']} calls, no failure"
    return f"{run['failed']} of {run['calls']} failed {run['failures']}"


def _ms(figures: dict[str, Any]) -> str:
    return ", ".join(
        f"{k} {'-' if v is None else f'{v:.1f}'}" for k, v in figures.items() if k != "count"
    )


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}"


def _run_lines(run: dict[str, Any]) -> list[str]:
    cpu = ", ".join(f"{name} {_pct(item['cpu_pct'])} %" for name, item in run["cpu"].items())
    lines = [
        f"  {run['rate']:g} calls/s for {run['seconds']:g} s ({run['generators']} generator(s)): "
        + _verdict(run),
        f"    INVITE -> 200 ms:        {_ms(run['invite_to_200_ms'])}",
        f"    INVITE -> DTLS done ms:  {_ms(run['invite_to_dtls_ms'])}",
        f"    post-pickup delay ms:    {_ms(run['post_pickup_ms'])}",
        f"    CPU (% of a core): {cpu}",
    ]
    if run["generator_saturated"]:
        lines.append(
            f"    generator(s) above 90 % of a core: {', '.join(run['generator_saturated'])}: "
            "the generator may have held the rate back"
        )
    if run["late_starts"]:
        lines.append(
            f"    calls started over 50 ms late: {run['late_starts']} "
            f"(max lag {run['start_lag_ms_max']} ms; the generator lacked CPU)"
        )
    connections = run["connections"]
    if connections["shared"] or connections["opened_during_run"]:
        lines.append(
            f"    WebSockets: pool {connections['pool']}, calls sharing a busy one "
            f"{connections['shared']}, opened during the run {connections['opened_during_run']}"
        )
    return lines


def format_text(figures: dict[str, Any]) -> str:
    """The figures as a short human-readable report."""
    m = figures["machine"]
    out = [
        f"call_setups: {figures['workers']} worker(s), hold {figures['hold_s']:g} s per call",
        f"machine: {m['cpu_model']}, {m['cores_online']} cores online ({m['cores_usable']} usable)",
    ]
    search = figures["search"]
    if search is not None:
        out.append(f"search ({search['step_s']:g} s per step):")
        for step in search["steps"]:
            out.extend(_run_lines(step))
        out.append(
            f"  highest rate with no failure: {search['highest_passing_rate']}; first failing: "
            f"{search['first_failing_rate']} {search['first_failing_reasons'] or ''}".rstrip()
        )
    out.append(f"sustained ({figures['sustained_seconds']:g} s):")
    for run in figures["sustained"]:
        out.extend(_run_lines(run))
    rate = figures["call_setups_per_s"]
    bound = " (lower bound)" if figures["lower_bound"] else ""
    out.append(
        "call set-ups per second sustained with no failure: "
        + ("none" if rate is None else f"{rate:g}{bound}")
        + f"; post-pickup delay under that load p50 {figures['post_pickup_ms_p50']} ms, "
        f"p99 {figures['post_pickup_ms_p99']} ms"
    )
    out.append(
        "post-pickup delay: from the 200 OK reaching the browser side to its first media "
        "packet received, the SIP side's echo of its first probe (ICE + DTLS + one round trip)"
    )
    out.extend(f"note: {note}" for note in figures["notes"])
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print its figures (and their JSON with ``--json``)."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.call_setups", description=__doc__)
    parser.add_argument("--rate", type=float, help="sustained rate; without it, search first")
    parser.add_argument("--seconds", type=float, default=60.0, help="sustained run (60)")
    parser.add_argument("--workers", type=int, default=1, help="gateway workers (1)")
    parser.add_argument(
        "--rates",
        type=lambda text: tuple(float(r) for r in text.split(",")),
        default=DEFAULT_RATES,
        help="search ladder, comma-separated (25,50,100,...,800)",
    )
    parser.add_argument("--step-seconds", type=float, default=10.0, help="search step (10)")
    parser.add_argument("--hold", type=float, default=1.0, help="media per call, seconds (1)")
    parser.add_argument("--setup-timeout", type=float, default=10.0, help="per call (10)")
    parser.add_argument(
        "--generator-rate", type=float, default=80.0, help="calls/s per generator process (80)"
    )
    parser.add_argument("--attempts", type=int, default=2, help="sustained runs at most (2)")
    parser.add_argument("--json", action="store_true", help="also print the figures as JSON")
    args = parser.parse_args(argv)
    positive = (args.seconds, args.workers, args.step_seconds, args.hold, args.setup_timeout)
    if min(positive) <= 0 or args.generator_rate <= 0 or args.attempts < 1:
        parser.error("durations, --workers, --generator-rate and --attempts must be positive")
    if (args.rate is not None and args.rate <= 0) or min(args.rates) <= 0:
        parser.error("rates must be positive")
    options = Options(
        rate=args.rate,
        seconds=args.seconds,
        workers=args.workers,
        rates=tuple(sorted(args.rates)),
        step_s=args.step_seconds,
        hold_s=args.hold,
        setup_timeout_s=args.setup_timeout,
        generator_rate=args.generator_rate,
        attempts=args.attempts,
    )
    figures = trio.run(run_benchmark, options)
    print_figures(figures, format_text(figures), as_json=args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
