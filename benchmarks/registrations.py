"""Memory per registered idle WebSocket client, and re-REGISTERs absorbed per second.

    python -m benchmarks.registrations [--clients 1000 --workers 1 --refresh-seconds 10 --json]

``rtcgw run`` on the handbook's configuration: REGISTER from browsers goes through
``register_caching`` and ``register_throttling`` (clients are granted 60 s, the registrar
is asked for 3600 s). The SIP side (``loadgen/pbx.py``) answers every REGISTER 200 without
a challenge. Every client connects from 127.0.0.1, so the benchmark's copy of the
configuration sets ``register_rate_per_source = 0`` (no per-source REGISTER limit); the
output says so.

1. Memory: the resident size (VmRSS) of the supervisor and of each worker is read with the
   gateway idle, then ``--clients`` WebSocket clients (``loadgen/registrants.py``) connect
   and REGISTER once with Expires 60 and stay idle; after ``--idle-seconds`` it is read
   again. Printed: kB per client, supervisor and workers apart.
2. Absorption: every client re-REGISTERs as fast as the gateway answers it (its next one
   when the last is answered) for ``--refresh-seconds`` (at most ``--refresh-count`` each).
   ``--in-flight`` caps the unanswered ones over all clients. Printed: 200s per second the
   clients got, and from the gateway's own counters
   (``rtcgw_register_requests_total``) the REGISTERs per second absorbed (answered from the
   cache) and forwarded to the registrar, with the CPU of each process over the phase.

The clients come from several processes (``--client-processes``, default one per 500
clients); one above 90 % of a core may have held the rate back: the output says so, and
the rate is then a lower bound. Nothing is asserted: this is a measurement, not a test.
"""

from __future__ import annotations

import argparse
import math
import re
import sys
import tempfile
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import trio

from benchmarks.loadgen.children import Child, sip_side, spawn
from benchmarks.loadgen.figures import metric_deltas, print_figures, process_cpu
from benchmarks.loadgen.gateway import (
    EXAMPLE_CERTIFICATE,
    GatewayFailed,
    RunningGateway,
    handbook_config,
    run_gateway,
    scrape_metrics,
)
from benchmarks.loadgen.procstat import cpu_sample, machine, rss_sample

__all__ = ["Options", "format_text", "lift_register_limit", "main", "run_benchmark"]

#: A client process above this share of a core may not have kept up.
SATURATED_PCT: Final = 90.0
CLIENTS_PER_PROCESS: Final = 500
LIMIT_NOTE: Final = (
    "every client connects from 127.0.0.1: the benchmark's configuration sets "
    "register_rate_per_source = 0 (no per-source REGISTER limit; the handbook has 20/s)"
)
_LIMIT_LINE: Final = re.compile(r"^register_rate_per_source\s*=\s*[0-9.]+", re.MULTILINE)
_OUTCOMES: Final = ("absorbed", "forwarded", "rejected", "rate_limited")
_METRIC_PREFIXES: Final = (
    "rtcgw_register_requests_total",
    "rtcgw_sip_messages_dropped_total",
    "rtcgw_sip_requests_rejected_total",
    "rtcgw_websocket_connections_closed_total",
)


@dataclass(frozen=True)
class Options:
    """One benchmark's parameters."""

    clients: int = 1000
    workers: int = 1
    expires_s: int = 60
    idle_s: float = 3.0
    refresh_s: float = 10.0
    refresh_count: int = 10000
    #: unanswered re-REGISTERs at most, over all clients; 0 = one per client
    in_flight: int = 0
    #: processes the clients are spread over; 0 = one per 500 clients
    client_processes: int = 0
    answer_timeout_s: float = 10.0

    @property
    def processes(self) -> int:
        """Client processes of the run."""
        if self.client_processes > 0:
            return min(self.client_processes, self.clients)
        return max(1, math.ceil(self.clients / CLIENTS_PER_PROCESS))

    @property
    def deadline_s(self) -> float:
        """A hard bound on the whole run."""
        registering = self.clients / 20 + self.answer_timeout_s
        return registering + self.idle_s + self.refresh_s + 2 * self.answer_timeout_s + 180


def lift_register_limit(config: Path) -> None:
    """Set ``register_rate_per_source = 0`` in the configuration file ``config``.

    Raises:
        GatewayFailed: the file has no such line to change.
    """
    text = config.read_text(encoding="utf-8")
    changed, count = _LIMIT_LINE.subn("register_rate_per_source = 0", text)
    if count != 1:
        raise GatewayFailed(f"{config.name}: expected one register_rate_per_source line")
    config.write_text(changed, encoding="utf-8")


async def run_benchmark(options: Options) -> dict[str, Any]:
    """Start the gateway and the SIP side, register, idle, refresh; the figures.

    Resource handling: every process started here is ended by its PID when this returns
    or fails (``children.spawn``, ``gateway.run_gateway``).
    """
    with trio.fail_after(options.deadline_s), tempfile.TemporaryDirectory() as directory:
        async with sip_side(options.deadline_s) as (pbx, sip_port):
            config = handbook_config(Path(directory), sip_port)
            lift_register_limit(config)
            async with run_gateway(config, workers=options.workers) as gateway:
                return await _measure(options, gateway, pbx.pid)
    raise AssertionError("unreachable")  # pragma: no cover - fail_after raises instead


async def _measure(options: Options, gateway: RunningGateway, pbx_pid: int) -> dict[str, Any]:
    gateway_pids = {
        "supervisor": gateway.pid,
        **{f"worker{i}": pid for i, pid in sorted(gateway.worker_pids.items())},
    }
    metrics = gateway.address("HTTP")
    await trio.sleep(options.idle_s)  # let start-up settle before the first reading
    rss_before = rss_sample(gateway_pids)
    host, port = gateway.address("WSS")
    count = options.processes
    shares = [options.clients // count + (i < options.clients % count) for i in range(count)]
    async with AsyncExitStack() as stack:
        children: list[Child] = []
        for i, share in enumerate(shares):
            args = [
                "--wss", f"{host}:{port}", "--cafile", str(EXAMPLE_CERTIFICATE),
                "--clients", str(share), "--expires", str(options.expires_s),
                "--answer-timeout", str(options.answer_timeout_s),
                "--max-seconds", str(options.deadline_s),
            ]  # fmt: skip
            children.append(
                await stack.enter_async_context(
                    spawn(f"clients {i}", "benchmarks.loadgen.registrants", args)
                )
            )
        registered = [await c.wait_for("registered") for c in children]
        await trio.sleep(options.idle_s)
        rss_idle = rss_sample(gateway_pids)
        metrics_idle = await scrape_metrics(metrics)
        watch = {
            **gateway_pids,
            **{f"clients{i}": c.pid for i, c in enumerate(children)},
            "sip_side": pbx_pid,
        }
        cpu_before = cpu_sample(watch)
        start = trio.current_time()
        for child in children:
            share = math.ceil(options.in_flight / count) if options.in_flight > 0 else 0
            await child.send(f"refresh {options.refresh_s} {options.refresh_count} {share}")
        refreshed = [await c.wait_for("refreshed") for c in children]
        elapsed = trio.current_time() - start
        cpu = process_cpu(cpu_before, cpu_sample(watch), elapsed)
        metrics_after = await scrape_metrics(metrics)
        rss_after = rss_sample(gateway_pids)
    return _figures(
        options,
        registered=registered,
        refreshed=refreshed,
        rss=(rss_before, rss_idle, rss_after),
        cpu=cpu,
        idle_metrics=metrics_idle,
        refresh_metrics=metric_deltas(metrics_idle, metrics_after, _METRIC_PREFIXES),
        gateway_problems=dict(gateway.problems),
    )


def _growth(before: dict[str, int | None], after: dict[str, int | None], prefix: str) -> int:
    return sum(
        (after[name] or 0) - (before[name] or 0)
        for name in before
        if name.startswith(prefix) and before[name] is not None and after.get(name) is not None
    )


def _outcome(samples: dict[str, float], outcome: str) -> float:
    return samples.get(f'rtcgw_register_requests_total{{outcome="{outcome}"}}', 0.0)


def _figures(
    options: Options,
    *,
    registered: list[dict[str, Any]],
    refreshed: list[dict[str, Any]],
    rss: tuple[dict[str, int | None], dict[str, int | None], dict[str, int | None]],
    cpu: dict[str, dict[str, float | None]],
    idle_metrics: dict[str, float],
    refresh_metrics: dict[str, float],
    gateway_problems: dict[str, int],
) -> dict[str, Any]:
    before, idle, after = rss
    clients = sum(int(r["registered"]) for r in registered)
    failures: dict[str, int] = {}
    for report in registered:
        for reason, n in report["failures"].items():
            failures[reason] = failures.get(reason, 0) + int(n)
    supervisor_kb = _growth(before, idle, "supervisor")
    workers_kb = _growth(before, idle, "worker")
    seconds = max((float(r["seconds"]) for r in refreshed), default=0.0)
    answers: dict[str, int] = {}
    for report in refreshed:
        for status, n in report["answers"].items():
            answers[status] = answers.get(status, 0) + int(n)
    per_s = {
        outcome: round(_outcome(refresh_metrics, outcome) / seconds, 1) if seconds else None
        for outcome in _OUTCOMES
    }
    saturated = sorted(
        name
        for name, item in cpu.items()
        if name.startswith("clients")
        and item["cpu_pct"] is not None
        and item["cpu_pct"] > SATURATED_PCT
    )
    notes = [LIMIT_NOTE, "other programs may share this machine's CPU: the figures are noisy"]
    unanswered = answers.get("timeout", 0)
    if unanswered:
        notes.append(
            f"{unanswered} re-REGISTERs got no answer within {options.answer_timeout_s:g} s: "
            "the gateway stopped answering (see gateway metrics and warnings)"
        )
    if saturated:
        notes.append(
            f"client process(es) {', '.join(saturated)} above 90 % of a core: the REGISTER "
            "rates are lower bounds of what the gateway can answer"
        )
    return {
        "benchmark": "registrations",
        "machine": machine(),
        "workers": options.workers,
        "expires_s": options.expires_s,
        "client_processes": len(registered),
        "clients": {
            "requested": options.clients,
            "registered": clients,
            "failures": failures,
            "register_seconds": max((float(r["seconds"]) for r in registered), default=None),
        },
        "gateway_counts_idle": {
            "registrations_active": idle_metrics.get("rtcgw_registrations_active"),
            "websocket_connections_active": sum(
                v
                for k, v in idle_metrics.items()
                if k.startswith("rtcgw_websocket_connections_active")
            ),
        },
        "rss_kb": {"before": before, "idle_registered": idle, "after_refresh": after},
        "rss_kb_per_client": {
            "supervisor": round(supervisor_kb / clients, 2) if clients else None,
            "workers": round(workers_kb / clients, 2) if clients else None,
            "total": round((supervisor_kb + workers_kb) / clients, 2) if clients else None,
        },
        "refresh": {
            "seconds": round(seconds, 3),
            "answers": answers,
            "in_flight": sum(int(r["in_flight"]) for r in refreshed),
            "ok_per_s": round(answers.get("200", 0) / seconds, 1) if seconds else None,
            "answer_ms_by_process": [r["answer_ms"] for r in refreshed],
            "gateway_counts": {o: _outcome(refresh_metrics, o) for o in _OUTCOMES},
            "gateway_per_s": per_s,
        },
        "register_absorbed_per_s": per_s["absorbed"],
        "register_forwarded_per_s": per_s["forwarded"],
        "rss_kb_per_ws_client": (
            round((supervisor_kb + workers_kb) / clients, 2) if clients else None
        ),
        "cpu": cpu,
        "client_saturated": saturated,
        "gateway_metrics_refresh": refresh_metrics,
        "gateway_problems": gateway_problems,
        "notes": notes,
    }


def format_text(figures: dict[str, Any]) -> str:
    """The figures as a short human-readable report."""
    m = figures["machine"]
    c = figures["clients"]
    per = figures["rss_kb_per_client"]
    refresh = figures["refresh"]
    rss = figures["rss_kb"]
    out = [
        (
            f"registrations: {c['requested']} WebSocket clients, {figures['workers']} "
            f"worker(s), Expires {figures['expires_s']} s, {figures['client_processes']} "
            "client process(es)"
        ),
        f"machine: {m['cpu_model']}, {m['cores_online']} cores online ({m['cores_usable']} usable)",
        (
            f"registered: {c['registered']} in {c['register_seconds']} s"
            + (f", failed {c['failures']}" if c["failures"] else "")
            + f"; gateway says {figures['gateway_counts_idle']}"
        ),
        "resident memory (VmRSS, kB): before / with the clients idle / after the refreshes",
        *(
            f"  {name:<12} {rss['before'][name]} / {rss['idle_registered'][name]} / "
            f"{rss['after_refresh'][name]}"
            for name in rss["before"]
        ),
        (
            f"per registered idle client: supervisor {per['supervisor']} kB, workers "
            f"{per['workers']} kB, total {per['total']} kB"
        ),
        (
            f"re-REGISTERs for {refresh['seconds']} s, at most {refresh['in_flight']} "
            f"unanswered: answers {refresh['answers']}, "
            f"{refresh['ok_per_s']} 200s per second; answer time by process "
            f"{refresh['answer_ms_by_process']} ms"
        ),
        (
            f"gateway counted per second: absorbed {refresh['gateway_per_s']['absorbed']}, "
            f"forwarded {refresh['gateway_per_s']['forwarded']}, rejected "
            f"{refresh['gateway_per_s']['rejected']}, rate-limited "
            f"{refresh['gateway_per_s']['rate_limited']}"
        ),
        "CPU over the refreshes (% of a core): "
        + ", ".join(
            f"{name} {'-' if item['cpu_pct'] is None else item['cpu_pct']}"
            for name, item in figures["cpu"].items()
        ),
    ]
    if figures["gateway_metrics_refresh"]:
        out.append("gateway metrics over the refreshes:")
        out.extend(f"  {k} +{v:g}" for k, v in figures["gateway_metrics_refresh"].items())
    if figures["gateway_problems"]:
        out.append(f"gateway warnings/errors: {figures['gateway_problems']}")
    out.extend(f"note: {note}" for note in figures["notes"])
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print its figures (and their JSON with ``--json``)."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.registrations", description=__doc__)
    parser.add_argument("--clients", type=int, default=1000, help="WebSocket clients (1000)")
    parser.add_argument("--workers", type=int, default=1, help="gateway workers (1)")
    parser.add_argument("--idle-seconds", type=float, default=3.0, help="before RSS reads (3)")
    parser.add_argument("--refresh-seconds", type=float, default=10.0, help="refresh phase (10)")
    parser.add_argument(
        "--refresh-count", type=int, default=10000, help="re-REGISTERs per client at most"
    )
    parser.add_argument("--client-processes", type=int, default=0, help="0 = one per 500 clients")
    parser.add_argument(
        "--in-flight",
        type=int,
        default=0,
        help="unanswered re-REGISTERs at most, over all clients (0 = one per client)",
    )
    parser.add_argument("--json", action="store_true", help="also print the figures as JSON")
    args = parser.parse_args(argv)
    if (
        min(args.clients, args.workers, args.refresh_count) < 1
        or min(args.client_processes, args.in_flight) < 0
    ):
        parser.error("--clients, --workers and --refresh-count must be positive")
    if args.idle_seconds <= 0 or args.refresh_seconds <= 0:
        parser.error("--idle-seconds and --refresh-seconds must be positive")
    options = Options(
        clients=args.clients,
        workers=args.workers,
        idle_s=args.idle_seconds,
        refresh_s=args.refresh_seconds,
        refresh_count=args.refresh_count,
        client_processes=args.client_processes,
        in_flight=args.in_flight,
    )
    figures = trio.run(run_benchmark, options)
    print_figures(figures, format_text(figures), as_json=args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
