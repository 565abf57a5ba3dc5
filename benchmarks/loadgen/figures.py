"""Figures of a relay benchmark from what its programs reported, as text and as JSON.

A *relayed packet* is one datagram the worker received and forwarded. In the echo loop
every probe crosses the worker twice (browser -> SIP as SRTP -> RTP, then SIP -> browser as
RTP -> SRTP), so the relayed count of the window is what arrived at the SIP side plus what
arrived back at the browsers, both counted by the probes' phase.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from benchmarks.loadgen.probe import Phase

__all__ = ["direction", "format_text", "metric_deltas", "process_cpu"]

_M = Phase.MEASURE


def direction(sent: int, received: int) -> dict[str, Any]:
    """Sent, received, lost and loss % of one direction."""
    lost = sent - received
    return {
        "sent": sent,
        "received": received,
        "lost": lost,
        "loss_pct": round(100 * lost / sent, 4) if sent else None,
    }


def process_cpu(
    start: Mapping[str, float | None], end: Mapping[str, float | None], window_s: float
) -> dict[str, dict[str, float | None]]:
    """CPU seconds and % of one core per watched process over the window."""
    figures: dict[str, dict[str, float | None]] = {}
    for name, before in start.items():
        after = end.get(name)
        if before is None or after is None:
            figures[name] = {"cpu_s": None, "cpu_pct": None}
            continue
        used = after - before
        figures[name] = {
            "cpu_s": round(used, 3),
            "cpu_pct": round(100 * used / window_s, 1) if window_s > 0 else None,
        }
    return figures


def metric_deltas(
    before: Mapping[str, float], after: Mapping[str, float], prefixes: tuple[str, ...]
) -> dict[str, float]:
    """How much each sample named with one of ``prefixes`` grew between two scrapes."""
    return {
        name: after[name] - before.get(name, 0.0)
        for name in sorted(after)
        if name.startswith(prefixes) and after[name] - before.get(name, 0.0)
    }


def _line(label: str, figures: Mapping[str, Any]) -> str:
    loss = figures["loss_pct"]
    return (
        f"  {label:<16} sent {figures['sent']:>8}  received {figures['received']:>8}  "
        f"lost {figures['lost']:>6}  loss {'-' if loss is None else f'{loss:.3f}'} %"
    )


def _cpu(name: str, figures: Mapping[str, float | None]) -> str:
    cpu_s, pct = figures.get("cpu_s"), figures.get("cpu_pct")
    if cpu_s is None:
        return f"  {name:<16} (gone)"
    return f"  {name:<16} {cpu_s:8.2f} s  {pct:5.1f} % of a core"


def format_text(figures: Mapping[str, Any]) -> str:
    """The figures as a short human-readable report."""
    machine = figures["machine"]
    calls = figures["calls"]
    rtt = figures["rtt_ms"]
    relay = figures["relay"]
    out = [
        (
            f"relay_g711: {calls['requested']} calls, {figures['workers']} worker(s), "
            f"window {figures['window_s']:.2f} s"
        ),
        (
            f"machine: {machine['cpu_model']}, {machine['cores_online']} cores online "
            f"({machine['cores_usable']} usable)"
        ),
        f"calls: set up {calls['up']}, failed {calls['failed']}"
        + (f" {calls['failures']}" if calls["failures"] else "")
        + f"; set-up p50 {calls['setup_ms_p50']} ms, max {calls['setup_ms_max']} ms",
        "packets in the window (by probe phase):",
        _line("browser -> SIP", figures["browser_to_sip"]),
        _line("SIP -> browser", figures["sip_to_browser"]),
        "round trip browser -> gateway -> SIP echo -> gateway -> browser: "
        + ", ".join(f"{k} {'-' if v is None else f'{v:.2f}'} ms" for k, v in rtt.items()),
        (
            f"worker relay: {relay['relayed_packets']} relayed packets "
            f"({relay['relayed_pps']:.0f}/s), worker CPU {relay['worker_cpu_s']} s = "
            f"{relay['worker_cpu_pct']} % of a core, "
            f"{relay['worker_us_per_packet']} us per relayed packet "
            f"(budget {relay['budget_us_per_packet']} us)"
        ),
        "CPU over the window:",
        *(_cpu(name, item) for name, item in figures["cpu"].items()),
    ]
    checks = figures["checks"]
    out.append("checks: " + ", ".join(f"{key} {value}" for key, value in checks.items()))
    if figures["udp_drops"]:
        out.append(f"kernel UDP receive drops in the window: {figures['udp_drops']}")
    if figures["gateway_metrics"]:
        out.append("gateway metrics over the window (pushed about once a second):")
        out.extend(f"  {name} +{value:g}" for name, value in figures["gateway_metrics"].items())
    if figures["gateway_streams"]:
        out.append("gateway streams at close (whole calls): " + str(figures["gateway_streams"]))
    if figures["gateway_problems"]:
        out.append(f"gateway warnings/errors: {figures['gateway_problems']}")
    return "\n".join(out)
