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
