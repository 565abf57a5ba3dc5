"""Figures of a relay benchmark from what its programs reported, as text and as JSON.

A *relayed packet* is one datagram the relay (a gateway worker, or rtpengine) received and
forwarded. In the echo loop every probe crosses the relay twice (browser -> SIP as
SRTP -> RTP, then SIP -> browser as RTP -> SRTP), so the relayed count of the window is what
arrived at the SIP side plus what arrived back at the browsers, both counted by the probes'
phase.

One-way delays are measured by the receiving program on the clock all programs share
(``probe.py``), so each is the relay's added delay plus loopback delivery plus the two
tools' own scheduling: an upper bound of the added delay. The floor (``delays.py``) is the
receiving tool's part of it, measured with no relay in between.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any, Final

from benchmarks.loadgen.probe import Phase

__all__ = [
    "call_figures",
    "delays",
    "direction",
    "format_text",
    "metric_deltas",
    "print_figures",
    "process_cpu",
    "rss_figures",
]

_DIRECTIONS: Final = ("browser_to_sip", "sip_to_browser")
_LABELS: Final = {"browser_to_sip": "browser -> SIP", "sip_to_browser": "SIP -> browser"}

_M = Phase.MEASURE


def call_figures(requested: int, report: Mapping[str, Any]) -> dict[str, Any]:
    """Calls requested, up and failed (by reason) and set-up times, from a generator report."""
    outcomes: dict[str, int] = report["outcomes"]
    up = outcomes.get("up", 0)
    return {
        "requested": requested,
        "up": up,
        "failed": requested - up,
        "failures": {k: v for k, v in outcomes.items() if k != "up"},
        "setup_ms_p50": _round1(report["setup_ms_p50"]),
        "setup_ms_max": _round1(report["setup_ms_max"]),
    }


def _round1(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def print_figures(figures: Mapping[str, Any], text: str, *, as_json: bool) -> None:
    """A benchmark's report on standard output: ``text``, then with ``as_json`` the
    figures as one JSON line (the last line, for scripts)."""
    print(text)
    if as_json:
        print(json.dumps(figures))


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


def delays(
    echo_report: Mapping[str, Any], browser_report: Mapping[str, Any], key: str
) -> dict[str, Any]:
    """Per direction, the delay figures under ``key`` (``one_way_ms``, ``floor_ms``).

    The echo reports the browser -> SIP direction, the browser side the way back; a side
    whose report lacks them gives None for its direction.
    """
    return {
        "browser_to_sip": (echo_report.get(key) or {}).get("browser_to_sip"),
        "sip_to_browser": (browser_report.get(key) or {}).get("sip_to_browser"),
    }


def rss_figures(
    idle: Mapping[str, int | None],
    loaded: Mapping[str, int | None],
    calls_up: int,
    kind_of: Callable[[str], str],
) -> dict[str, Any]:
    """RSS before the first call and with every call up, and the growth per call.

    Returns ``rss_kb`` (``{process: {"idle", "loaded"}}`` in kB), ``rss_kb_per_call`` (the
    growth summed over the processes, per call up) and ``rss_kb_per_call_by_kind`` (the
    same per ``kind_of(process)``); a process missing from either sample counts nowhere.
    """
    per_process = {name: {"idle": idle.get(name), "loaded": loaded.get(name)} for name in idle}
    growth: dict[str, int] = {}
    for name, sample in per_process.items():
        before, after = sample["idle"], sample["loaded"]
        if before is not None and after is not None:
            kind = kind_of(name)
            growth[kind] = growth.get(kind, 0) + after - before
    return {
        "rss_kb": per_process,
        "rss_kb_per_call": _per_call(sum(growth.values()), calls_up) if growth else None,
        "rss_kb_per_call_by_kind": {
            kind: _per_call(kb, calls_up) for kind, kb in sorted(growth.items())
        },
    }


def _per_call(kb: int, calls_up: int) -> float | None:
    return round(kb / calls_up, 2) if calls_up else None


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


def _delay(label: str, figures: Mapping[str, Any] | None) -> str:
    if not figures or figures.get("samples") is None:
        return f"  {label:<16} not reported"
    points = ", ".join(
        f"{key} {'-' if figures.get(key) is None else f'{figures[key]:.3f}'}"
        for key in ("p50", "p99", "p99.9", "max")
    )
    return f"  {label:<16} {points} ms ({figures['samples']} samples)"


def _rss(figures: Mapping[str, Any]) -> list[str]:
    lines = ["RSS before the first call / with every call up:"]
    for name, sample in figures["rss_kb"].items():
        idle, loaded = sample["idle"], sample["loaded"]
        lines.append(
            f"  {name:<16} {'-' if idle is None else idle:>8} kB / "
            f"{'-' if loaded is None else loaded:>8} kB"
        )
    per_call = figures["rss_kb_per_call"]
    kinds = ", ".join(f"{k} {v}" for k, v in figures["rss_kb_per_call_by_kind"].items())
    lines.append(f"  per call up: {'-' if per_call is None else per_call} kB ({kinds})")
    return lines


def _title(figures: Mapping[str, Any]) -> str:
    calls = figures["calls"]
    if figures["benchmark"] == "relay_rtpengine":
        threads = figures["rtpengine"]["threads"]
        who = f"rtpengine with {threads if threads is not None else 'default'} thread(s)"
    else:
        who = f"{figures['workers']} worker(s)"
    window = f"window {figures['window_s']:.2f} s"
    return f"{figures['benchmark']}: {calls['requested']} calls, {who}, {window}"


def _relay(figures: Mapping[str, Any]) -> str:
    relay = figures["relay"]
    if figures["benchmark"] == "relay_rtpengine":
        return (
            f"rtpengine relay: {relay['relayed_packets']} relayed packets "
            f"({relay['relayed_pps']:.0f}/s), rtpengine CPU {relay['relay_cpu_s']} s = "
            f"{relay['relay_cpu_pct']} % of a core, "
            f"{relay['us_per_packet']} us per relayed packet"
        )
    return (
        f"worker relay: {relay['relayed_packets']} relayed packets "
        f"({relay['relayed_pps']:.0f}/s), worker CPU {relay['worker_cpu_s']} s = "
        f"{relay['worker_cpu_pct']} % of a core, "
        f"{relay['worker_us_per_packet']} us per relayed packet "
        f"(budget {relay['budget_us_per_packet']} us)"
    )


def format_text(figures: Mapping[str, Any]) -> str:
    """The figures as a short human-readable report."""
    machine = figures["machine"]
    calls = figures["calls"]
    rtt = figures["rtt_ms"]
    relay_name = "rtpengine" if figures["benchmark"] == "relay_rtpengine" else "gateway"
    out = [
        _title(figures),
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
        f"round trip browser -> {relay_name} -> SIP echo -> {relay_name} -> browser: "
        + ", ".join(f"{k} {'-' if v is None else f'{v:.2f}'} ms" for k, v in rtt.items()),
        (
            f"one-way delay through the {relay_name}, an upper bound of its added delay "
            "(loopback and both tools' scheduling included):"
        ),
        *(_delay(_LABELS[d], figures["one_way_ms"][d]) for d in _DIRECTIONS),
        "the tools' own floor (loopback plus one wake-up of the receiving tool, no relay):",
        *(_delay(_LABELS[d], figures["floor_ms"][d]) for d in _DIRECTIONS),
        _relay(figures),
        "CPU over the window:",
        *(_cpu(name, item) for name, item in figures["cpu"].items()),
        *_rss(figures),
    ]
    checks = figures["checks"]
    out.append("checks: " + ", ".join(f"{key} {value}" for key, value in checks.items()))
    if figures["udp_drops"]:
        out.append(f"kernel UDP receive drops in the window: {figures['udp_drops']}")
    if figures.get("gateway_metrics"):
        out.append("gateway metrics over the window (pushed about once a second):")
        out.extend(f"  {name} +{value:g}" for name, value in figures["gateway_metrics"].items())
    if figures.get("gateway_streams"):
        out.append("gateway streams at close (whole calls): " + str(figures["gateway_streams"]))
    if figures.get("gateway_problems"):
        out.append(f"gateway warnings/errors: {figures['gateway_problems']}")
    if figures.get("rtpengine", {}).get("problems"):
        out.append(f"rtpengine warnings/errors: {figures['rtpengine']['problems']}")
    return "\n".join(out)
