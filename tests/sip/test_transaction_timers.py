"""Timer durations (RFC 3261 Table 4, RFC 6026) and identifiers (``rtcgw.sip.ids``)."""

from __future__ import annotations

import re

import pytest

from rtcgw.sip.errors import LocalProtocolError
from rtcgw.sip.headers import MAGIC_COOKIE
from rtcgw.sip.ids import new_branch, new_call_id, new_tag, shard_of
from rtcgw.sip.timers import TimerConfig, TimerName

DEFAULT = TimerConfig()

UNRELIABLE = {
    TimerName.A: 0.5,
    TimerName.B: 32.0,
    TimerName.D: 32.0,
    TimerName.E: 0.5,
    TimerName.F: 32.0,
    TimerName.G: 0.5,
    TimerName.H: 32.0,
    TimerName.I: 5.0,
    TimerName.J: 32.0,
    TimerName.K: 5.0,
    TimerName.L: 32.0,
    TimerName.M: 32.0,
}
RELIABLE = {
    TimerName.A: None,
    TimerName.B: 32.0,
    TimerName.D: 0.0,
    TimerName.E: None,
    TimerName.F: 32.0,
    TimerName.G: None,
    TimerName.H: 32.0,
    TimerName.I: 0.0,
    TimerName.J: 0.0,
    TimerName.K: 0.0,
    TimerName.L: 32.0,
    TimerName.M: 32.0,
}


@pytest.mark.parametrize("name", list(TimerName), ids=lambda n: n.value)
def test_table_4_defaults(name: TimerName) -> None:
    assert DEFAULT.initial_interval(name, reliable=False) == UNRELIABLE[name]
    assert DEFAULT.initial_interval(name, reliable=True) == RELIABLE[name]


def test_timer_d_is_at_least_32_seconds_on_udp() -> None:
    fast = TimerConfig(t1_s=0.1, t2_s=1.0)
    assert fast.initial_interval(TimerName.D, reliable=False) == 32.0
    assert fast.initial_interval(TimerName.B, reliable=False) == pytest.approx(6.4)
    slow = TimerConfig(t1_s=1.0)
    assert slow.initial_interval(TimerName.D, reliable=False) == 64.0  # covers Timer H


def test_retransmission_intervals() -> None:
    assert DEFAULT.next_interval(TimerName.A, 8.0, in_proceeding=False) == 16.0  # no cap
    assert DEFAULT.next_interval(TimerName.E, 0.5, in_proceeding=False) == 1.0
    assert DEFAULT.next_interval(TimerName.E, 4.0, in_proceeding=False) == 4.0  # T2 cap
    assert DEFAULT.next_interval(TimerName.E, 0.5, in_proceeding=True) == 4.0  # T2 in Proceeding
    assert DEFAULT.next_interval(TimerName.G, 2.0, in_proceeding=False) == 4.0
    assert DEFAULT.next_interval(TimerName.G, 4.0, in_proceeding=False) == 4.0
    with pytest.raises(LocalProtocolError, match="Timer B is not a retransmission timer"):
        DEFAULT.next_interval(TimerName.B, 1.0, in_proceeding=False)


@pytest.mark.parametrize(
    ("t1", "t2", "t4"), [(0.0, 4.0, 5.0), (5.0, 4.0, 5.0), (0.5, 4.0, 0.0), (-1.0, 4.0, 5.0)]
)
def test_config_refuses_nonsense(t1: float, t2: float, t4: float) -> None:
    with pytest.raises(LocalProtocolError):
        TimerConfig(t1_s=t1, t2_s=t2, t4_s=t4)


# -- ids ----------------------------------------------------------------------------------------


def test_branches_carry_the_magic_cookie_and_are_unique() -> None:
    branches = {new_branch() for _ in range(1000)}
    assert len(branches) == 1000
    assert all(b.startswith(MAGIC_COOKIE) for b in branches)
    assert all(shard_of(b) is None for b in branches)


@pytest.mark.parametrize("shard", [0, 3, 17, 1024])
def test_shard_round_trips_through_every_identifier(shard: int) -> None:
    branch = new_branch(shard)
    tag = new_tag(shard)
    call_id = new_call_id(shard=shard)
    call_id_at = new_call_id("gw.example.org", shard=shard)
    assert branch.startswith(f"{MAGIC_COOKIE}-r{shard}-")
    assert tag.endswith(f"-r{shard}")
    assert call_id.startswith(f"r{shard}-")
    assert call_id_at.endswith("@gw.example.org")
    assert [shard_of(t) for t in (branch, tag, call_id, call_id_at)] == [shard] * 4


def test_unsharded_identifiers_have_no_shard() -> None:
    assert shard_of(new_tag()) is None
    assert shard_of(new_call_id()) is None
    assert re.fullmatch(r"[0-9a-f]{24}@h\.example", new_call_id("h.example"))


@pytest.mark.parametrize(
    "foreign",
    [
        "z9hG4bK-r3-nothex",  # a foreign branch that looks almost like ours
        "z9hG4bK776asdhds",
        "abc-r3",  # a tag that is too short to be ours
        "r3-1234",  # a Call-ID that is too short to be ours
        "3848276298220188511@atlanta.example.com",
        "",
        # A shard run of thousands of digits is not ours, and must not make int() raise.
        "r" + "9" * 5000 + "-" + "a" * 24,
        "z9hG4bK-r" + "1" * 5000 + "-" + "b" * 24,
    ],
    ids=lambda token: token[:24],
)
def test_foreign_identifiers_have_no_shard(foreign: str) -> None:
    assert shard_of(foreign) is None


def test_negative_shard_and_empty_domain_are_refused() -> None:
    with pytest.raises(LocalProtocolError):
        new_branch(-1)
    with pytest.raises(LocalProtocolError):
        new_tag(1_000_000)
    with pytest.raises(LocalProtocolError):
        new_tag(-1)
    with pytest.raises(LocalProtocolError):
        new_call_id("")
