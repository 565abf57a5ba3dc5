"""One worker relaying concurrent bidirectional G.711 WebRTC <-> RTP calls on loopback.

    python -m benchmarks.relay_g711 [--calls 200 --seconds 30 --workers 1 --rate 20 --json]

Three programs besides this one, each its own process so that each one's CPU can be read
from /proc:

- the gateway, ``rtcgw run`` on the handbook's configuration (``loadgen/gateway.py``);
- the SIP side (``loadgen/pbx.py``): registrar, answerer and RTP echo on its own ports;
- the browser side (``loadgen/browsers.py``): one SIP-over-WebSocket client per call with
  ICE, DTLS and SRTP, sending 50 PCMU packets a second that the echo returns.

Calls are set up at ``--rate`` per second; the measuring window of ``--seconds`` opens when
every call is up. Printed: calls set up and failed; per direction the packets sent,
received and lost in the window; the round trip; per direction the one-way delay through
the gateway (p50, p99, p99.9, max) and the tools' own floor under it; the worker's CPU over
the window and per relayed packet against the 7 us budget; the supervisor's, the
generator's and the SIP side's CPU; the gateway's RSS before the first call and with every
call up, and its growth per call; and the machine. Nothing is asserted: this is a
measurement, not a test.

The one-way delay is measured on the clock every program of the run shares (one host): it
is the gateway's added delay plus loopback delivery plus the time each tool took to get to
the packet, so an upper bound of the added delay. The floor is the least of the tools'
part: loopback plus one wake-up of the receiving tool, measured by each receiving tool
sending itself a stamp just before its loop waits (``loadgen/delays.py``). The echo reports
the browser -> SIP direction; the SIP -> browser figures come from the browser side's report
(``MediaPump.delay_report``).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import trio

from benchmarks.loadgen.children import sip_side, spawn
from benchmarks.loadgen.figures import (
    call_figures,
    delays,
    direction,
    format_text,
    metric_deltas,
    print_figures,
    process_cpu,
    rss_figures,
)
from benchmarks.loadgen.gateway import (
    EXAMPLE_CERTIFICATE,
    handbook_config,
    run_gateway,
    scrape_metrics,
)
from benchmarks.loadgen.probe import Phase
from benchmarks.loadgen.procstat import machine, rss_sample, udp_drops

__all__ = ["Options", "main", "run_benchmark"]

#: Worker CPU per relayed packet the design allows (DESIGN.md section 1).
BUDGET_US_PER_PACKET: Final = 7.0
_M: Final = Phase.MEASURE
_STREAMS_TIMEOUT_S: Final = 15.0
_METRIC_PREFIXES: Final = ("rtcgw_media_", "rtcgw_dtls_", "rtcgw_ice_")


@dataclass(frozen=True)
class Options:
    """One run's parameters."""

    calls: int = 200
    seconds: float = 30.0
    workers: int = 1
    rate: float = 20.0
    drain_s: float = 1.0
    setup_timeout_s: float = 20.0

    @property
    def deadline_s(self) -> float:
        """A hard bound on the whole run."""
        return self.calls / self.rate + 2 * self.setup_timeout_s + self.seconds + self.drain_s + 120


async def run_benchmark(options: Options) -> dict[str, Any]:
    """Start the three programs, run the calls, stop everything; the figures.

    Resource handling: every process started here is ended by its PID when this returns
    or fails (see ``children.spawn`` and ``gateway.run_gateway``).
    """
    with trio.fail_after(options.deadline_s), tempfile.TemporaryDirectory() as directory:
        async with sip_side(options.deadline_s) as (pbx, sip_port):
            config = handbook_config(Path(directory), sip_port)
            async with run_gateway(config, workers=options.workers) as gateway:
                processes = {
                    "supervisor": gateway.pid,
                    **{f"worker{i}": pid for i, pid in sorted(gateway.worker_pids.items())},
                }
                watch = {**processes, "sip_side": pbx.pid}
                rss_idle = rss_sample(processes)
                host, port = gateway.address("WSS")
                args = [
                    "--wss", f"{host}:{port}", "--cafile", str(EXAMPLE_CERTIFICATE),
                    "--calls", str(options.calls), "--seconds", str(options.seconds),
                    "--rate", str(options.rate), "--drain-seconds", str(options.drain_s),
                    "--setup-timeout", str(options.setup_timeout_s),
                    *(f"--watch={name}={pid}" for name, pid in watch.items()),
                ]  # fmt: skip
                async with spawn("browser side", "benchmarks.loadgen.browsers", args) as browsers:
                    metrics = gateway.address("HTTP")
                    await browsers.wait_for("window_start")
                    pids = {**watch, "generator": browsers.pid}
                    drops_before = {name: udp_drops(pid) for name, pid in pids.items()}
                    metrics_before = await scrape_metrics(metrics)
                    await browsers.wait_for("window_end")
                    rss_loaded = rss_sample(processes)
                    # Both scrapes lag the relay by up to its one-second push: the delta
                    # spans the window, shifted, not stretched.
                    metrics_after = await scrape_metrics(metrics)
                    drops_after = {name: udp_drops(pid) for name, pid in pids.items()}
                    report = await browsers.wait_for("report")
                await pbx.send("report")
                pbx_report = await pbx.wait_for("report")
                up = int(report["outcomes"].get("up", 0))
                with trio.move_on_after(_STREAMS_TIMEOUT_S):
                    await gateway.wait_streams_closed(2 * up)
                return _figures(
                    options,
                    report,
                    pbx_report,
                    gateway_streams={leg: dict(c) for leg, c in gateway.streams.items()},
                    gateway_problems=dict(gateway.problems),
                    metrics=metric_deltas(metrics_before, metrics_after, _METRIC_PREFIXES),
                    rss=rss_figures(rss_idle, rss_loaded, up, _process_kind),
                    drops={
                        name: drops_after[name] - drops_before[name]
                        for name in drops_before
                        if drops_after[name] - drops_before[name]
                    },
                )
    raise AssertionError("unreachable")  # pragma: no cover - fail_after raises instead


def _figures(
    options: Options,
    report: dict[str, Any],
    pbx_report: dict[str, Any],
    *,
    gateway_streams: dict[str, dict[str, int]],
    gateway_problems: dict[str, int],
    metrics: dict[str, float],
    drops: dict[str, int],
    rss: dict[str, Any],
) -> dict[str, Any]:
    window_s = float(report["seconds"])
    to_sip = direction(report["sent"][_M], pbx_report["received"][_M])
    to_browser = direction(pbx_report["echoed"][_M], report["received"][_M])
    cpu = process_cpu(report["cpu_start"], report["cpu_end"], window_s)
    worker_cpu = [v["cpu_s"] for k, v in cpu.items() if k.startswith("worker")]
    worker_cpu_s = sum(v for v in worker_cpu if v is not None)
    relayed = to_sip["received"] + to_browser["received"]
    us_per_packet = round(1e6 * worker_cpu_s / relayed, 2) if relayed else None
    return {
        "benchmark": "relay_g711",
        "machine": machine(),
        "workers": options.workers,
        "window_s": round(window_s, 3),
        "calls": call_figures(options.calls, report),
        "browser_to_sip": to_sip,
        "sip_to_browser": to_browser,
        "rtt_ms": report["rtt_ms"],
        "one_way_ms": delays(pbx_report, report, "one_way_ms"),
        "floor_ms": delays(pbx_report, report, "floor_ms"),
        "relay": {
            "relayed_packets": relayed,
            "relayed_pps": relayed / window_s if window_s else 0.0,
            "worker_cpu_s": round(worker_cpu_s, 3),
            "worker_cpu_pct": round(100 * worker_cpu_s / window_s, 1) if window_s else None,
            "worker_us_per_packet": us_per_packet,
            # The key relay_rtpengine has too: the same figure, for side-by-side tables.
            "us_per_packet": us_per_packet,
            "budget_us_per_packet": BUDGET_US_PER_PACKET,
        },
        "cpu": cpu,
        **rss,
        "checks": {
            "out_of_order": report["out_of_order"],
            "misrouted": report["misrouted"],
            "srtp_errors": report["srtp_errors"],
            "generator_send_failed": report["send_failed"],
            "generator_late_ticks": report["late_ticks"],
            "echo_send_failed": pbx_report["send_failed"],
            "rtcp_received": report["rtcp_received"],
            "ended_by_gateway": report["ended_by_gateway"],
            "bye": report["bye"],
        },
        "udp_drops": drops,
        "gateway_metrics": metrics,
        "gateway_streams": gateway_streams,
        "gateway_problems": gateway_problems,
        "totals": {
            "generator_sent": report["sent"],
            "generator_received": report["received"],
            "echo_received": pbx_report["received"],
            "echo_echoed": pbx_report["echoed"],
            "phases": [p.name.lower() for p in Phase],
        },
    }


def _process_kind(name: str) -> str:
    return "workers" if name.startswith("worker") else name


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print its figures (and their JSON with ``--json``)."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.relay_g711", description=__doc__)
    parser.add_argument("--calls", type=int, default=200, help="concurrent calls (200)")
    parser.add_argument("--seconds", type=float, default=30.0, help="measuring window (30)")
    parser.add_argument("--workers", type=int, default=1, help="gateway workers (1)")
    parser.add_argument("--rate", type=float, default=20.0, help="call set-ups per second (20)")
    parser.add_argument("--json", action="store_true", help="also print the figures as JSON")
    args = parser.parse_args(argv)
    if args.calls < 1 or args.seconds <= 0 or args.workers < 1 or args.rate <= 0:
        parser.error("--calls, --seconds, --workers and --rate must be positive")
    options = Options(calls=args.calls, seconds=args.seconds, workers=args.workers, rate=args.rate)
    figures = trio.run(run_benchmark, options)
    print_figures(figures, format_text(figures), as_json=args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
