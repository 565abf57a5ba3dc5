"""REGISTER flood protection: a token bucket per source address, in bounded memory.

Browsers re-REGISTER on every reconnect and some retry in a tight loop when the PBX
refuses them; a misbehaving client (or an attacker) must be answered cheaply with 503 and a
Retry-After instead of reaching the registrar. Each source gets ``burst`` tokens that refill
at ``rate_per_s``; a request takes one or is refused.

Rules:

1. Memory is bounded by ``max_sources`` buckets: when a new source arrives at the limit,
   the least recently used bucket is forgotten. A forgotten source starts again with a full
   bucket, which is the price of the bound; refusing new sources instead would let a flood
   from many addresses lock out every legitimate client.
2. ``rate_per_s == 0`` turns the limiter off: everything is allowed and nothing is kept.
3. Time is passed in; a ``now`` earlier than a bucket's last update adds no tokens.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from typing import final

__all__ = ["RateLimitConfigError", "SourceRateLimiter"]


@final
class RateLimitConfigError(ValueError):
    """A rate limiter parameter is out of range; the message names the parameter."""


@final
class SourceRateLimiter:
    """A token bucket per source key (an IP address, say), least recently used evicted first.

    Attributes:
        rejected: how many requests ``allow`` has refused so far.
    """

    __slots__ = ("_buckets", "burst", "max_sources", "rate_per_s", "rejected")

    def __init__(self, rate_per_s: float, burst: int, *, max_sources: int = 65536) -> None:
        """Set up the limiter.

        Raises:
            RateLimitConfigError: ``rate_per_s`` negative or not finite, ``burst`` or
                ``max_sources`` below 1.
        """
        if not math.isfinite(rate_per_s) or rate_per_s < 0:
            raise RateLimitConfigError(
                f"rate_per_s must be a finite number >= 0 (0: unlimited), not {rate_per_s!r}"
            )
        if burst < 1:
            raise RateLimitConfigError(f"burst must be >= 1, not {burst!r}")
        if max_sources < 1:
            raise RateLimitConfigError(f"max_sources must be >= 1, not {max_sources!r}")
        self.rate_per_s = rate_per_s
        self.burst = burst
        self.max_sources = max_sources
        self.rejected = 0
        #: source -> (tokens, when they were counted); most recently used last.
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def allow(self, source: str, now: float) -> bool:
        """Take a token from ``source``'s bucket; False (and counted) if there is none."""
        if self.rate_per_s == 0:
            return True
        tokens, counted_at = self._refilled(source, now)
        if tokens >= 1:
            tokens -= 1
            allowed = True
        else:
            self.rejected += 1
            allowed = False
        self._buckets[source] = (tokens, counted_at)
        self._buckets.move_to_end(source)
        if len(self._buckets) > self.max_sources:
            self._buckets.popitem(last=False)
        return allowed

    def retry_after_s(self, source: str, now: float) -> int:
        """Whole seconds, at least 1, until ``source`` has a token again (for Retry-After)."""
        if self.rate_per_s == 0:
            return 1
        tokens, _ = self._refilled(source, now)
        missing = 1 - tokens
        if missing <= 0:
            return 1
        return max(1, math.ceil(missing / self.rate_per_s))

    def __len__(self) -> int:
        """How many sources have a bucket (at most ``max_sources``)."""
        return len(self._buckets)

    def _refilled(self, source: str, now: float) -> tuple[float, float]:
        bucket = self._buckets.get(source)
        if bucket is None:
            return float(self.burst), now
        tokens, counted_at = bucket
        if now <= counted_at:
            return tokens, counted_at
        return min(float(self.burst), tokens + (now - counted_at) * self.rate_per_s), now
