"""``make bench``'s verdicts and its results files, from figures made up for the purpose."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from benchmarks.bench import (
    relay_verdict,
    summarise_delays,
    summarise_per_process,
    table,
    write_results,
)


def _relay(*, failed: int = 0, loss: float = 0.0, p99: float = 1.0) -> dict[str, Any]:
    one_way = {"p50": 0.3, "p99": p99, "p99.9": p99 * 2}
    return {
        "calls": {"failed": failed},
        "browser_to_sip": {"loss_pct": loss},
        "sip_to_browser": {"loss_pct": 0.0},
        "one_way_ms": {"browser_to_sip": one_way, "sip_to_browser": one_way},
    }


def test_a_relay_run_passes_only_with_no_failed_call_little_loss_and_a_low_p99() -> None:
    assert relay_verdict(_relay())[0]
    assert not relay_verdict(_relay(failed=1))[0]
    assert not relay_verdict(_relay(loss=0.1))[0]
    assert not relay_verdict(_relay(p99=5.0))[0]
    passed, why = relay_verdict(_relay(loss=0.25))
    assert not passed and "loss 0.250 %" in why


def test_a_run_without_delay_figures_does_not_pass() -> None:
    figures = _relay()
    del figures["one_way_ms"]
    assert not relay_verdict(figures)[0]


def test_the_results_are_written_as_json_and_a_markdown_table(tmp_path: Path) -> None:
    results = {
        "date": "2026-11-24",
        "machine": {"cpu_model": "Test CPU", "cores_usable": 2},
        "max_calls_one_worker": {"median": 400, "min": 350, "max": 450, "runs": 3},
        "worker_us_per_packet": {"median": 20.5, "min": 19.0, "max": 22.0, "runs": 3},
        "notes": ["registrations: stopped, the time budget ran out"],
    }
    json_path, md_path = write_results(results, tmp_path)
    assert json.loads(json_path.read_text(encoding="utf-8")) == results
    text = md_path.read_text(encoding="utf-8")
    assert text == table(results)
    assert "| max concurrent calls, 1 worker | 400 (350-450) |" in text
    assert "| worker CPU per relayed packet | 20.5 (19-22) us |" in text
    assert "| call set-ups per second (60 s, 0 failures) | not measured |" in text
    assert "Test CPU, 2 cores" in text and "time budget ran out" in text


def test_the_delay_summary_reads_every_percentile_including_p99_9() -> None:
    runs: dict[str, list[dict[str, Any]]] = {}
    for share in (25, 50, 90):
        runs[f"delay_{share}"] = [_relay(p99=p99) for p99 in (1.0, 2.0, 3.0)]
        for run in runs[f"delay_{share}"]:
            run["calls"]["requested"] = share
    results: dict[str, Any] = {
        "date": "2026-11-24",
        "machine": {"cpu_model": "x", "cores_usable": 2},
    }
    summarise_delays(results, runs)
    half = results["one_way_delay"]["50%"]
    assert half["calls"] == 50
    assert half["browser_to_sip_p99.9_ms"] == {"median": 4.0, "min": 2.0, "max": 6.0, "runs": 3}
    assert results["p99_added_delay_ms_at_half_max"] == 2.0
    assert (
        "| one-way delay p50 / p99 / p99.9 at 90% of max (90 calls) | 0.30 / 2.00 / 4.00 ms |"
        in table(results)
    )


def test_memory_is_split_by_process_and_the_cpu_figure_gives_calls_per_core() -> None:
    at_capacity = [
        {"rss_kb_per_call_by_kind": {"supervisor": 40.0 + i, "workers": 140.0 + i}}
        for i in range(3)
    ]
    registered = [{"rss_kb_per_client": {"supervisor": 44.0, "workers": 10.0}}] * 3
    results: dict[str, Any] = {"worker_us_per_packet": {"median": 20.0}}
    summarise_per_process(results, at_capacity, registered)
    assert results["rss_kb_per_call_by_process"]["workers"]["median"] == 141.0
    assert results["rss_kb_per_ws_client_by_process"]["supervisor"]["median"] == 44.0
    # 20 us per packet, 100 relayed packets a second per call: 500 calls fill a core.
    assert results["implied_calls_per_worker_core"] == 500
