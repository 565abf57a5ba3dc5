"""The relay benchmark end to end, small: 3 calls for 3 s through a real ``rtcgw run``.

It checks that the pieces work together (set-up, ICE, DTLS-SRTP, the echo, the counting);
figures are printed, never asserted on.
"""

from __future__ import annotations

import json

import pytest

from benchmarks.relay_g711 import main


def test_three_calls_for_three_seconds_set_up_and_carry_packets_both_ways(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # main runs its own trio loop with a hard deadline and ends every process it started.
    assert main(["--calls", "3", "--seconds", "3", "--json"]) == 0
    text = capsys.readouterr().out
    print(text)
    figures = json.loads(text.strip().splitlines()[-1])
    assert figures["calls"]["up"] == 3
    assert figures["calls"]["failed"] == 0, figures["calls"]["failures"]
    assert figures["browser_to_sip"]["received"] > 0
    assert figures["sip_to_browser"]["received"] > 0
    assert figures["checks"]["misrouted"] == 0
    assert figures["checks"]["bye"] == {"200": 3}
    # One-way delays per direction next to the round trip; the echo measures the way in.
    assert set(figures["one_way_ms"]) == {"browser_to_sip", "sip_to_browser"}
    assert set(figures["floor_ms"]) == {"browser_to_sip", "sip_to_browser"}
    assert figures["one_way_ms"]["browser_to_sip"]["samples"] > 0
    assert figures["one_way_ms"]["browser_to_sip"]["p99.9"] is not None
    assert figures["floor_ms"]["browser_to_sip"]["samples"] > 0
    assert figures["rtt_ms"]["p50"] is not None
    # RSS of every gateway process before the first call and with the calls up.
    assert set(figures["rss_kb"]) == {"supervisor", "worker0"}
    for sample in figures["rss_kb"].values():
        assert sample["idle"] > 0
        assert sample["loaded"] > 0
    assert isinstance(figures["rss_kb_per_call"], float)
    assert set(figures["rss_kb_per_call_by_kind"]) == {"supervisor", "workers"}
    assert figures["relay"]["us_per_packet"] == figures["relay"]["worker_us_per_packet"]
