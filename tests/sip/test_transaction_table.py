"""The transition tables themselves (Rules 1 and 2 of ``rtcgw.sip.transaction``)."""

from __future__ import annotations

import pytest

from rtcgw.sip.errors import LocalProtocolError
from rtcgw.sip.timers import TimerName
from rtcgw.sip.transaction import (
    INITIAL_STATE,
    TIMERS_BY_STATE,
    TRANSITIONS,
    Role,
    TransactionKind,
    TransactionState,
    Trigger,
    next_state,
    trigger_of_status,
)

#: Triggers the network can cause, per role: the table must handle each in every state.
REMOTE_TRIGGERS = {
    Role.UAC: {Trigger.RECEIVED_1XX, Trigger.RECEIVED_2XX, Trigger.RECEIVED_300_699},
    Role.UAS: {Trigger.RECEIVED_REQUEST},
}
ROWS = [(kind, state) for kind, rows in TRANSITIONS.items() for state in rows]


@pytest.mark.parametrize(("kind", "state"), ROWS, ids=lambda v: getattr(v, "value", v))
def test_table_is_total_for_what_the_network_can_do(
    kind: TransactionKind, state: TransactionState
) -> None:
    row = TRANSITIONS[kind][state]
    missing = {t for t in REMOTE_TRIGGERS[kind.role] if t not in row}
    if kind is TransactionKind.INVITE_SERVER and Trigger.RECEIVED_ACK not in row:
        missing.add(Trigger.RECEIVED_ACK)
    assert missing == set()
    assert row[Trigger.TRANSPORT_ERROR] is TransactionState.TERMINATED
    assert row[Trigger.ABANDONED] is TransactionState.TERMINATED


@pytest.mark.parametrize(("kind", "state"), ROWS, ids=lambda v: getattr(v, "value", v))
def test_timer_rows_match_the_timers_that_run(
    kind: TransactionKind, state: TransactionState
) -> None:
    # Rule 2: a state handles exactly the timers that can be running in it.
    handled = {t for t in TRANSITIONS[kind][state] if isinstance(t, TimerName)}
    assert handled == set(TIMERS_BY_STATE[kind][state])


def test_every_state_is_reachable_and_every_machine_can_terminate() -> None:
    for kind, rows in TRANSITIONS.items():
        seen = {INITIAL_STATE[kind]}
        frontier = [INITIAL_STATE[kind]]
        while frontier:
            for new in rows.get(frontier.pop(), {}).values():
                if new not in seen:
                    seen.add(new)
                    frontier.append(new)
        assert seen == set(rows) | {TransactionState.TERMINATED}, kind


def test_the_four_machines_have_the_rfc_states() -> None:
    s = TransactionState
    assert set(TRANSITIONS[TransactionKind.INVITE_CLIENT]) == {
        s.CALLING,
        s.PROCEEDING,
        s.COMPLETED,
        s.ACCEPTED,
    }
    assert set(TRANSITIONS[TransactionKind.NON_INVITE_CLIENT]) == {
        s.TRYING,
        s.PROCEEDING,
        s.COMPLETED,
    }
    assert set(TRANSITIONS[TransactionKind.INVITE_SERVER]) == {
        s.PROCEEDING,
        s.COMPLETED,
        s.CONFIRMED,
        s.ACCEPTED,
    }
    assert set(TRANSITIONS[TransactionKind.NON_INVITE_SERVER]) == {
        s.TRYING,
        s.PROCEEDING,
        s.COMPLETED,
    }


@pytest.mark.parametrize(
    ("kind", "state", "trigger", "expected"),
    [
        (TransactionKind.INVITE_CLIENT, "CALLING", Trigger.RECEIVED_2XX, "ACCEPTED"),
        (TransactionKind.INVITE_CLIENT, "PROCEEDING", Trigger.RECEIVED_300_699, "COMPLETED"),
        (TransactionKind.INVITE_CLIENT, "ACCEPTED", TimerName.M, "TERMINATED"),
        (TransactionKind.NON_INVITE_CLIENT, "TRYING", TimerName.E, "TRYING"),
        (TransactionKind.NON_INVITE_CLIENT, "PROCEEDING", TimerName.F, "TERMINATED"),
        (TransactionKind.INVITE_SERVER, "PROCEEDING", Trigger.SEND_2XX, "ACCEPTED"),
        (TransactionKind.INVITE_SERVER, "COMPLETED", Trigger.RECEIVED_ACK, "CONFIRMED"),
        (TransactionKind.INVITE_SERVER, "ACCEPTED", Trigger.SEND_2XX, "ACCEPTED"),
        (TransactionKind.NON_INVITE_SERVER, "TRYING", Trigger.SEND_1XX, "PROCEEDING"),
        (TransactionKind.NON_INVITE_SERVER, "COMPLETED", TimerName.J, "TERMINATED"),
    ],
)
def test_next_state_follows_the_figures(
    kind: TransactionKind, state: str, trigger: Trigger | TimerName, expected: str
) -> None:
    assert next_state(kind, TransactionState[state], trigger) is TransactionState[expected]


def test_missing_transition_names_kind_state_trigger_and_context() -> None:
    with pytest.raises(LocalProtocolError) as info:
        next_state(
            TransactionKind.NON_INVITE_SERVER,
            TransactionState.COMPLETED,
            Trigger.SEND_2XX,
            what="the key, response 200",
        )
    assert str(info.value) == (
        "non-INVITE server transaction in state Completed cannot handle 2xx from TU "
        "(the key, response 200)"
    )
    with pytest.raises(LocalProtocolError, match="cannot handle Timer A"):
        next_state(TransactionKind.INVITE_CLIENT, TransactionState.PROCEEDING, TimerName.A)
    with pytest.raises(LocalProtocolError, match="state Terminated"):
        next_state(TransactionKind.INVITE_CLIENT, TransactionState.TERMINATED, Trigger.ABANDONED)


@pytest.mark.parametrize(
    ("status", "received", "trigger"),
    [
        (100, True, Trigger.RECEIVED_1XX),
        (199, True, Trigger.RECEIVED_1XX),
        (200, True, Trigger.RECEIVED_2XX),
        (299, False, Trigger.SEND_2XX),
        (300, True, Trigger.RECEIVED_300_699),
        (699, False, Trigger.SEND_300_699),
        (183, False, Trigger.SEND_1XX),
    ],
)
def test_trigger_of_status(status: int, received: bool, trigger: Trigger) -> None:
    assert trigger_of_status(status, received=received) is trigger


@pytest.mark.parametrize("status", [99, 700])
def test_trigger_of_status_refuses_impossible_codes(status: int) -> None:
    with pytest.raises(LocalProtocolError, match="outside 100-699"):
        trigger_of_status(status, received=True)


def test_kind_of_role_and_method() -> None:
    assert TransactionKind.of(Role.UAC, "INVITE") is TransactionKind.INVITE_CLIENT
    assert TransactionKind.of(Role.UAC, "BYE") is TransactionKind.NON_INVITE_CLIENT
    assert TransactionKind.of(Role.UAS, "INVITE") is TransactionKind.INVITE_SERVER
    assert TransactionKind.of(Role.UAS, "CANCEL") is TransactionKind.NON_INVITE_SERVER
    assert TransactionKind.INVITE_SERVER.role is Role.UAS
    assert TransactionKind.NON_INVITE_CLIENT.invite is False
