"""The rtpengine benchmark end to end, small: 3 calls for 3 s through a real rtpengine.

It checks that the pieces work together (ng offer and answer, the SIP side's answer, ICE
both ways, DTLS-SRTP with rtpengine as server, the echo, the counting); figures are
printed, never asserted on. rtpengine comes from the Debian package ``rtpengine-daemon``.
"""

from __future__ import annotations

import json

import pytest

from benchmarks.relay_rtpengine import main


def test_three_calls_for_three_seconds_through_rtpengine_carry_packets_both_ways(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # main runs its own trio loop with a hard deadline and ends every process it started.
    assert main(["--calls", "3", "--seconds", "3", "--json"]) == 0
    text = capsys.readouterr().out
    print(text)
    figures = json.loads(text.strip().splitlines()[-1])
    assert figures["benchmark"] == "relay_rtpengine"
    assert figures["rtpengine"]["threads"] == 1
    assert figures["calls"]["up"] == 3
    assert figures["calls"]["failed"] == 0, figures["calls"]["failures"]
    assert figures["browser_to_sip"]["received"] > 0
    assert figures["sip_to_browser"]["received"] > 0
    checks = figures["checks"]
    assert checks["misrouted"] == 0
    assert checks["srtp_errors"] == 0
    # rtpengine runs full ICE: it checked the browser side's candidate, which answered.
    assert checks["ice_checks_answered"] >= 3
    assert checks["ice_checks_refused"] == 0
    assert checks["bye"] == {"200": 3}
    assert checks["deleted"] == 3
    for key in ("one_way_ms", "floor_ms"):
        for way in ("browser_to_sip", "sip_to_browser"):
            assert figures[key][way]["samples"] > 0, (key, way)
            assert set(figures[key][way]) == {"p50", "p99", "p99.9", "max", "samples"}
    assert set(figures["rss_kb"]) == {"rtpengine"}
    assert figures["rss_kb"]["rtpengine"]["idle"] > 0
    assert figures["rss_kb"]["rtpengine"]["loaded"] > 0
    assert isinstance(figures["rss_kb_per_call"], float)
    assert figures["relay"]["us_per_packet"] is not None
