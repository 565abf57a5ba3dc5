"""SIP transaction timers (RFC 3261 section 17 and Table 4, RFC 6026 section 8).

A timer here is a *duration*; the transaction layer turns it into a deadline by adding the
``now`` it was given. Nothing in this module reads a clock or schedules anything: the
runtime sleeps until ``TransactionLayer.next_deadline()`` and calls ``handle_timeout``.

Rules:

1. Durations depend only on ``TimerConfig`` (T1, T2, T4) and on whether the transport is
   reliable. Reliable transports (TCP, TLS, WS, WSS) never retransmit, so Timers A, E and
   G are not started (``None``), and the "wait for stray retransmissions" Timers D, I, J
   and K are zero (RFC 3261 sections 17.1.1.2, 17.1.2.2, 17.2.1, 17.2.2).
2. Timer D is at least 32 s on unreliable transports: "the client transaction SHOULD set
   timer D ... to a value of at least 32 seconds for unreliable transports" (17.1.1.2).
   We use max(32 s, 64*T1), since the server retransmits its final response for up to
   Timer H = 64*T1 and a larger T1 stretches that window.
3. Timers L and M (RFC 6026) are 64*T1 on every transport: they wait for retransmitted
   INVITEs (L) and for 2xx retransmissions or 2xx from other forks (M), which arrive over
   any transport.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass

from rtcgw.sip.errors import LocalProtocolError

__all__ = ["TIMER_D_MIN_UNRELIABLE_S", "TimerConfig", "TimerName"]

#: RFC 3261 17.1.1.2: Timer D is "at least 32 seconds for unreliable transports".
TIMER_D_MIN_UNRELIABLE_S = 32.0


class TimerName(enum.Enum):
    """The transaction timers of RFC 3261 Table 4 and RFC 6026 section 8.

    Each member's comment gives its job and default; the durations are computed by
    ``TimerConfig``.
    """

    A = "A"  #: INVITE request retransmit interval, UDP only; starts at T1, doubles (17.1.1.2)
    B = "B"  #: INVITE client transaction timeout, 64*T1 (17.1.1.2)
    D = "D"  #: wait for response retransmits: >= 32 s on UDP, 0 on reliable (17.1.1.2)
    E = "E"  #: non-INVITE request retransmit interval, UDP only; T1 doubling up to T2 (17.1.2.2)
    F = "F"  #: non-INVITE client transaction timeout, 64*T1 (17.1.2.2)
    G = "G"  #: INVITE response retransmit interval; T1 doubling up to T2, UDP only (17.2.1)
    H = "H"  #: wait time for ACK receipt, 64*T1 (17.2.1)
    I = "I"  #: wait time for ACK retransmits: T4 on UDP, 0 on reliable (17.2.1)  # noqa: E741
    J = "J"  #: wait time for non-INVITE request retransmits: 64*T1 on UDP, 0 reliable (17.2.2)
    K = "K"  #: wait time for response retransmits: T4 on UDP, 0 on reliable (17.1.2.2)
    L = "L"  #: RFC 6026: wait time for accepted INVITE request retransmits, 64*T1
    M = "M"  #: RFC 6026: wait time for 2xx retransmits or 2xx from other forks, 64*T1


@dataclass(frozen=True, slots=True)
class TimerConfig:
    """The timer base values of RFC 3261 section 17.1.1.1 and Table 4.

    Attributes:
        t1_s: RTT estimate, 500 ms by default ("T1 ... is an estimate of the round-trip
            time").
        t2_s: the maximum retransmit interval for non-INVITE requests and INVITE
            responses, 4 s by default.
        t4_s: the maximum duration a message will remain in the network, 5 s by default.
    """

    t1_s: float = 0.5
    t2_s: float = 4.0
    t4_s: float = 5.0

    def __post_init__(self) -> None:
        if not (0 < self.t1_s <= self.t2_s):
            raise LocalProtocolError(
                f"timer config needs 0 < T1 <= T2, got T1={self.t1_s} T2={self.t2_s}"
            )
        if self.t4_s <= 0:
            raise LocalProtocolError(f"timer config needs T4 > 0, got T4={self.t4_s}")

    @property
    def timeout_s(self) -> float:
        """64*T1: Timers B, F, H, L and M, and J on unreliable transports."""
        return 64 * self.t1_s

    def initial_interval(self, name: TimerName, *, reliable: bool) -> float | None:
        """The first duration of a timer, or ``None`` when it is not started at all.

        Args:
            name: which timer.
            reliable: whether the transaction's transport is reliable (not UDP).

        Returns:
            Seconds until the timer fires. ``None`` for the retransmission Timers A, E and
            G on reliable transports, which "SHOULD NOT" / "MUST NOT" be started
            (17.1.1.2, 17.1.2.2, 17.2.1). Zero means "fire immediately" (D, I, J, K on
            reliable transports).
        """
        return _INITIAL[name](self, reliable)

    def next_interval(self, name: TimerName, previous_s: float, *, in_proceeding: bool) -> float:
        """The next interval of a retransmission timer after it fired.

        Args:
            name: Timer A, E or G.
            previous_s: the interval that just elapsed.
            in_proceeding: for Timer E, whether the client transaction is in Proceeding.

        Returns:
            Timer A doubles without a cap: "reset the timer with a value of 2*T1 ... 4*T1"
            (17.1.1.2). Timer E doubles up to T2 in Trying and is T2 in Proceeding
            (17.1.2.2). Timer G doubles up to T2 (17.2.1).

        Raises:
            LocalProtocolError: for a timer that does not retransmit.
        """
        if name is TimerName.A:
            return 2 * previous_s
        if name is TimerName.E:
            return self.t2_s if in_proceeding else min(2 * previous_s, self.t2_s)
        if name is TimerName.G:
            return min(2 * previous_s, self.t2_s)
        raise LocalProtocolError(f"Timer {name.value} is not a retransmission timer")


def _retransmit(config: TimerConfig, reliable: bool) -> float | None:
    return None if reliable else config.t1_s


def _timeout(config: TimerConfig, reliable: bool) -> float:
    return config.timeout_s


def _timer_d(config: TimerConfig, reliable: bool) -> float:
    return 0.0 if reliable else max(TIMER_D_MIN_UNRELIABLE_S, config.timeout_s)


def _t4_or_zero(config: TimerConfig, reliable: bool) -> float:
    return 0.0 if reliable else config.t4_s


def _timer_j(config: TimerConfig, reliable: bool) -> float:
    return 0.0 if reliable else config.timeout_s


_INITIAL: dict[TimerName, Callable[[TimerConfig, bool], float | None]] = {
    TimerName.A: _retransmit,
    TimerName.B: _timeout,
    TimerName.D: _timer_d,
    TimerName.E: _retransmit,
    TimerName.F: _timeout,
    TimerName.G: _retransmit,
    TimerName.H: _timeout,
    TimerName.I: _t4_or_zero,
    TimerName.J: _timer_j,
    TimerName.K: _t4_or_zero,
    TimerName.L: _timeout,
    TimerName.M: _timeout,
}
