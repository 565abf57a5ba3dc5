"""The registration benchmark end to end, small: 20 WebSocket clients through a real gateway.

It checks that the pieces work together (registering through the cache, the memory reads,
the refreshes absorbed by the gateway); figures are printed, never asserted on.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks.loadgen.gateway import handbook_config
from benchmarks.registrations import lift_register_limit, main


def test_twenty_clients_register_and_their_refreshes_are_absorbed(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # main runs its own trio loop with a hard deadline and ends every process it started.
    argv = ["--clients", "20", "--idle-seconds", "1", "--refresh-seconds", "2", "--json"]
    assert main(argv) == 0
    text = capsys.readouterr().out
    print(text)
    figures = json.loads(text.strip().splitlines()[-1])
    assert figures["clients"]["registered"] == 20, figures["clients"]["failures"]
    assert figures["gateway_counts_idle"]["registrations_active"] == 20
    for name in ("supervisor", "workers", "total"):
        assert isinstance(figures["rss_kb_per_client"][name], float)
    assert all(isinstance(kb, int) and kb > 0 for kb in figures["rss_kb"]["before"].values())
    refresh = figures["refresh"]
    assert refresh["answers"].get("timeout", 0) == 0, refresh["answers"]
    assert refresh["gateway_counts"]["absorbed"] > 0
    assert figures["register_absorbed_per_s"] > 0
    assert "register_rate_per_source = 0" in text


def test_the_benchmark_config_has_no_per_source_register_limit(tmp_path: Path) -> None:
    config = handbook_config(tmp_path, 5060)
    lift_register_limit(config)
    text = config.read_text(encoding="utf-8")
    assert "\nregister_rate_per_source = 0 " in text
    assert "register_rate_per_source = 20" not in text
