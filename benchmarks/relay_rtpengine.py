"""rtpengine relaying the same calls as ``relay_g711``: the figures side by side.

    python -m benchmarks.relay_rtpengine [--calls 200 --seconds 30 --rate 20 --threads 1 --json]

The same load as ``relay_g711`` with Debian's rtpengine (package ``rtpengine-daemon``,
userspace forwarding only) as the media relay in place of the gateway: the same browser
side media pump (ICE, DTLS client, SRTP, 50 PCMU probes a second per call) and the same
SIP side (``loadgen/pbx.py``, answerer and RTP echo). No SIP proxy is involved: the
signaling a proxy would do around rtpengine runs in this process (``loadgen/ng_shim.py``),
driving rtpengine over its ng protocol with the flags Kamailio sends for WebRTC <-> RTP.
rtpengine converts DTLS-SRTP to RTP and back, runs full ICE toward the browser side and is
the DTLS server.

Two programs besides this one: rtpengine (``--num-threads`` from ``--threads``, 1 by
default for a like-for-like comparison with one gateway worker; ``--threads default``
leaves rtpengine its own default, one per CPU) and the SIP side. Printed, as
``relay_g711`` prints them: calls set up and failed; per direction the packets sent,
received and lost in the window; the round trip; the one-way delay through rtpengine per
direction and the tools' own floor; rtpengine's CPU over the window (all its threads, from
/proc) and per relayed packet; the SIP side's and this process's CPU; rtpengine's RSS
before the first call and with every call up; and the machine. The JSON has
``relay_g711``'s keys where they make sense; the CPU per relayed packet is
``relay.us_per_packet`` in both. Nothing is asserted: this is a measurement, not a test.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import trio

from benchmarks.loadgen.children import sip_side
from benchmarks.loadgen.figures import (
    call_figures,
    delays,
    direction,
    format_text,
    print_figures,
    process_cpu,
    rss_figures,
)
from benchmarks.loadgen.ng_shim import ANSWER_FLAGS, OFFER_FLAGS, NgShim, ShimSettings
from benchmarks.loadgen.probe import Phase
from benchmarks.loadgen.procstat import machine, rss_sample
from benchmarks.loadgen.rtpengine import RunningRtpengine, run_rtpengine

__all__ = ["Options", "main", "run_benchmark"]

_M: Final = Phase.MEASURE
#: rtpengine's media ports: below rtcgw's example range (20000-29999) and below the
#: kernel's ephemeral ports, so neither a gateway run nor a bound port 0 collides with it.
PORT_RANGE: Final = (10000, 19999)


@dataclass(frozen=True)
class Options:
    """One run's parameters (``threads`` None: rtpengine's default thread count)."""

    calls: int = 200
    seconds: float = 30.0
    rate: float = 20.0
    threads: int | None = 1
    drain_s: float = 1.0
    setup_timeout_s: float = 20.0
    port_range: tuple[int, int] = PORT_RANGE

    @property
    def deadline_s(self) -> float:
        """A hard bound on the whole run."""
        return self.calls / self.rate + 2 * self.setup_timeout_s + self.seconds + self.drain_s + 120


async def run_benchmark(options: Options) -> dict[str, Any]:
    """Start the SIP side and rtpengine, run the calls, stop everything; the figures.

    Resource handling: every process started here is ended by its PID when this returns
    or fails (see ``children.spawn`` and ``rtpengine.run_rtpengine``).
    """
    with trio.fail_after(options.deadline_s), tempfile.TemporaryDirectory() as directory:
        async with sip_side(options.deadline_s) as (pbx, sip_port):
            async with run_rtpengine(
                Path(directory), threads=options.threads, port_range=options.port_range
            ) as engine:
                processes = {"rtpengine": engine.pid}
                rss_idle = rss_sample(processes)
                shim = NgShim(
                    ShimSettings(
                        ng=engine.ng_address,
                        sip=("127.0.0.1", sip_port),
                        calls=options.calls,
                        seconds=options.seconds,
                        rate=options.rate,
                        drain_s=options.drain_s,
                        setup_timeout_s=options.setup_timeout_s,
                        watch={**processes, "sip_side": pbx.pid},
                        rss_watch=processes,
                    )
                )
                report = await shim.run()
            await pbx.send("report")
            pbx_report = await pbx.wait_for("report")
            up = int(report["outcomes"].get("up", 0))
            return _figures(
                options,
                report,
                pbx_report,
                engine,
                rss=rss_figures(rss_idle, report["rss_loaded"], up, lambda name: name),
            )
    raise AssertionError("unreachable")  # pragma: no cover - fail_after raises instead


def _figures(
    options: Options,
    report: dict[str, Any],
    pbx_report: dict[str, Any],
    engine: RunningRtpengine,
    *,
    rss: dict[str, Any],
) -> dict[str, Any]:
    window_s = float(report["seconds"])
    to_sip = direction(report["sent"][_M], pbx_report["received"][_M])
    to_browser = direction(pbx_report["echoed"][_M], report["received"][_M])
    cpu = process_cpu(report["cpu_start"], report["cpu_end"], window_s)
    relay_cpu_s = cpu["rtpengine"]["cpu_s"]
    relayed = to_sip["received"] + to_browser["received"]
    drops_start, drops_end = report["udp_drops_start"], report["udp_drops_end"]
    return {
        "benchmark": "relay_rtpengine",
        "machine": machine(),
        "rtpengine": {
            "version": engine.version,
            "threads": options.threads,
            "command": engine.command,
            "offer_flags": dict(OFFER_FLAGS),
            "answer_flags": dict(ANSWER_FLAGS),
            "problems": dict(engine.problems),
            "last_problems": engine.last_problems,
        },
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
            "relay_cpu_s": relay_cpu_s,
            "relay_cpu_pct": cpu["rtpengine"]["cpu_pct"],
            "us_per_packet": (
                round(1e6 * relay_cpu_s / relayed, 2)
                if relayed and relay_cpu_s is not None
                else None
            ),
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
            "ice_checks_answered": report["checks_answered"],
            "ice_checks_refused": report["checks_refused"],
            "ng_retransmissions": report["ng_retransmissions"],
            "errors": report["errors"],
            "bye": report["bye"],
            "deleted": report["deleted"],
            "rtpengine_rtp": report["rtpengine_rtp"],
        },
        "udp_drops": {
            name: drops_end[name] - drops_start[name]
            for name in drops_start
            if drops_end.get(name, 0) - drops_start[name]
        },
        "totals": {
            "generator_sent": report["sent"],
            "generator_received": report["received"],
            "echo_received": pbx_report["received"],
            "echo_echoed": pbx_report["echoed"],
            "phases": [p.name.lower() for p in Phase],
        },
    }


def _threads(text: str) -> int | None:
    if text == "default":
        return None
    threads = int(text)
    if threads < 1:
        raise argparse.ArgumentTypeError("--threads: a positive number or 'default'")
    return threads


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print its figures (and their JSON with ``--json``)."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.relay_rtpengine",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--calls", type=int, default=200, help="concurrent calls (200)")
    parser.add_argument("--seconds", type=float, default=30.0, help="measuring window (30)")
    parser.add_argument("--rate", type=float, default=20.0, help="call set-ups per second (20)")
    parser.add_argument(
        "--threads",
        type=_threads,
        default=1,
        help="rtpengine --num-threads, or 'default' for its own choice (1)",
    )
    parser.add_argument("--json", action="store_true", help="also print the figures as JSON")
    args = parser.parse_args(argv)
    if args.calls < 1 or args.seconds <= 0 or args.rate <= 0:
        parser.error("--calls, --seconds and --rate must be positive")
    options = Options(calls=args.calls, seconds=args.seconds, rate=args.rate, threads=args.threads)
    figures = trio.run(run_benchmark, options)
    print_figures(figures, format_text(figures), as_json=args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
