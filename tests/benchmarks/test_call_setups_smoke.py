"""The call set-up benchmark end to end, small: a one-step search at 4 calls/s, then 2 s.

It checks that the pieces work together (the churn generator, ICE, DTLS, the echo, BYE,
the merge of the generators' reports); figures are printed, never asserted on.
"""

from __future__ import annotations

import json

import pytest

from benchmarks.call_setups import main
from benchmarks.loadgen.churn import percentiles


def test_a_low_rate_sets_up_every_call_and_measures_the_post_pickup_delay(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # main runs its own trio loop with a hard deadline and ends every process it started.
    argv = ["--rates", "4", "--step-seconds", "2", "--seconds", "2", "--hold", "0.5", "--json"]
    assert main(argv) == 0
    text = capsys.readouterr().out
    print(text)
    figures = json.loads(text.strip().splitlines()[-1])
    step = figures["search"]["steps"][0]
    assert step["calls"] == 8
    assert step["failed"] == 0, step["failures"]
    assert figures["search"]["highest_passing_rate"] == 4
    sustained = figures["sustained"][-1]
    assert sustained["failed"] == 0, sustained["failures"]
    assert sustained["post_pickup_ms"]["count"] == sustained["calls"]
    assert figures["call_setups_per_s"] == 4
    assert figures["post_pickup_ms_p50"] is not None
    assert figures["post_pickup_ms_p99"] is not None
    assert "post-pickup delay" in text


def test_percentiles_are_nearest_rank_and_none_without_samples() -> None:
    samples = [float(v) for v in range(1, 101)]
    assert percentiles(samples, (50.0, 99.0, 100.0)) == {"p50": 50.0, "p99": 99.0, "p100": 100.0}
    assert percentiles([], (50.0,)) == {"p50": None}
