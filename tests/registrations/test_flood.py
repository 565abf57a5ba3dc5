"""REGISTER flood protection: token buckets per source, refill, Retry-After, memory bound."""

from __future__ import annotations

import math

import pytest

from rtcgw.registrations import RateLimitConfigError, SourceRateLimiter


def test_burst_then_refusal() -> None:
    limiter = SourceRateLimiter(rate_per_s=1.0, burst=3)
    assert [limiter.allow("203.0.113.5", 0.0) for _ in range(5)] == [
        True,
        True,
        True,
        False,
        False,
    ]
    assert limiter.rejected == 2


def test_sources_have_their_own_buckets() -> None:
    limiter = SourceRateLimiter(rate_per_s=1.0, burst=1)
    assert limiter.allow("203.0.113.5", 0.0)
    assert not limiter.allow("203.0.113.5", 0.0)
    assert limiter.allow("203.0.113.6", 0.0)
    assert limiter.rejected == 1


def test_refill_over_time_up_to_the_burst() -> None:
    limiter = SourceRateLimiter(rate_per_s=2.0, burst=4)
    source = "203.0.113.5"
    for _ in range(4):
        assert limiter.allow(source, 0.0)
    assert not limiter.allow(source, 0.0)
    assert not limiter.allow(source, 0.25)  # half a token
    assert limiter.allow(source, 0.5)
    assert not limiter.allow(source, 0.5)
    # A long pause refills to the burst and no further.
    assert [limiter.allow(source, 100.0) for _ in range(5)] == [True] * 4 + [False]


def test_clock_going_backwards_adds_nothing() -> None:
    limiter = SourceRateLimiter(rate_per_s=1.0, burst=1)
    assert limiter.allow("s", 10.0)
    assert not limiter.allow("s", 5.0)
    assert not limiter.allow("s", 10.5)
    assert limiter.allow("s", 11.0)


def test_retry_after() -> None:
    limiter = SourceRateLimiter(rate_per_s=0.1, burst=1)
    assert limiter.retry_after_s("unknown", 0.0) == 1
    assert limiter.allow("s", 0.0)
    assert not limiter.allow("s", 0.0)
    assert limiter.retry_after_s("s", 0.0) == 10
    assert limiter.retry_after_s("s", 2.5) == 8  # 7.5 s, rounded up
    assert limiter.retry_after_s("s", 9.9) == 1
    assert limiter.retry_after_s("s", 50.0) == 1


def test_retry_after_is_honest() -> None:
    limiter = SourceRateLimiter(rate_per_s=0.3, burst=2)
    assert limiter.allow("s", 0.0)
    assert limiter.allow("s", 0.0)
    wait = limiter.retry_after_s("s", 0.0)
    assert wait == math.ceil(1 / 0.3)
    assert limiter.allow("s", float(wait))


def test_retry_after_does_not_take_a_token() -> None:
    limiter = SourceRateLimiter(rate_per_s=1.0, burst=1)
    assert limiter.retry_after_s("s", 0.0) == 1
    assert limiter.allow("s", 0.0)
    assert limiter.rejected == 0


def test_rate_zero_is_unlimited() -> None:
    limiter = SourceRateLimiter(rate_per_s=0, burst=1)
    assert all(limiter.allow("203.0.113.5", 0.0) for _ in range(1000))
    assert limiter.rejected == 0
    assert len(limiter) == 0
    assert limiter.retry_after_s("203.0.113.5", 0.0) == 1


def test_memory_is_bounded_and_the_least_recently_used_source_is_forgotten() -> None:
    limiter = SourceRateLimiter(rate_per_s=0.001, burst=1, max_sources=2)
    assert limiter.allow("a", 0.0)
    assert limiter.allow("b", 0.0)
    assert not limiter.allow("a", 1.0)  # "a" is now the most recently used
    assert limiter.allow("c", 1.0)  # evicts "b"
    assert len(limiter) == 2
    assert not limiter.allow("a", 2.0)  # still remembered, still empty
    assert limiter.allow("b", 2.0)  # forgotten, so a full bucket again
    for n in range(100):
        limiter.allow(f"10.0.0.{n}", 3.0)
    assert len(limiter) == 2


@pytest.mark.parametrize(
    ("kwargs", "parameter"),
    [
        ({"rate_per_s": -1.0, "burst": 1}, "rate_per_s"),
        ({"rate_per_s": math.nan, "burst": 1}, "rate_per_s"),
        ({"rate_per_s": math.inf, "burst": 1}, "rate_per_s"),
        ({"rate_per_s": 1.0, "burst": 0}, "burst"),
        ({"rate_per_s": 1.0, "burst": 1, "max_sources": 0}, "max_sources"),
    ],
)
def test_bad_parameters(kwargs: dict[str, float], parameter: str) -> None:
    with pytest.raises(RateLimitConfigError, match=parameter):
        SourceRateLimiter(**kwargs)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=parameter):
        SourceRateLimiter(**kwargs)  # type: ignore[arg-type]
