"""A call: two legs and the state of the INVITE that joins them.

``CALL_TRANSITIONS[state][trigger] -> state`` is the whole state machine (STYLE E3);
``Call.fire`` applies it and raises ``LocalProtocolError`` for anything not in the table.

::

    CALLING --1xx--> EARLY --2xx--> ANSWERED --ACK--> CONFIRMED --BYE--> ENDED
       |               |               |                   |
       +---CANCEL------+--> CANCELLING --final/timeout---> ENDED
       +---3xx-6xx, timeout, hangup ----------------------> ENDED

ANSWERED means the 2xx went to the caller and its ACK has not come yet. A call owns its
two legs; the B2BUA owns its calls. No I/O, no clock.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import final

from rtcgw.rules import Decision
from rtcgw.sip.errors import LocalProtocolError
from rtcgw.worker.b2bua.events import CallDirection
from rtcgw.worker.b2bua.leg import Leg
from rtcgw.worker.b2bua.seam import LegSide

__all__ = ["CALL_TRANSITIONS", "Call", "CallState", "CallTrigger"]


class CallState(enum.Enum):
    """Where the call's INVITE and dialogs stand."""

    CALLING = "calling"  #: B-leg INVITE sent, no provisional response yet
    EARLY = "early"  #: a provisional response came from the callee
    CANCELLING = "cancelling"  #: the caller cancelled; waiting for the callee's final
    ANSWERED = "answered"  #: 2xx relayed to the caller, its ACK not yet received
    CONFIRMED = "confirmed"  #: both dialogs confirmed
    ENDED = "ended"  #: both legs are gone (or going: BYE sent)


class CallTrigger(enum.Enum):
    """What moves a call."""

    PROVISIONAL = "1xx from the callee"
    ANSWER = "2xx from the callee"
    ACK = "ACK from the caller"
    CANCEL = "CANCEL from the caller"
    END = "failure, BYE, timeout or expiry"


_S = CallState
_T = CallTrigger

CALL_TRANSITIONS: Mapping[CallState, Mapping[CallTrigger, CallState]] = {
    _S.CALLING: {
        _T.PROVISIONAL: _S.EARLY,
        _T.ANSWER: _S.ANSWERED,
        _T.CANCEL: _S.CANCELLING,
        _T.END: _S.ENDED,
    },
    _S.EARLY: {
        _T.PROVISIONAL: _S.EARLY,
        _T.ANSWER: _S.ANSWERED,
        _T.CANCEL: _S.CANCELLING,
        _T.END: _S.ENDED,
    },
    _S.CANCELLING: {
        _T.PROVISIONAL: _S.CANCELLING,
        _T.ANSWER: _S.CANCELLING,  # 2xx raced the CANCEL: ACK + BYE it, stay cancelled
        _T.CANCEL: _S.CANCELLING,
        _T.END: _S.ENDED,
    },
    _S.ANSWERED: {
        _T.ANSWER: _S.ANSWERED,
        _T.PROVISIONAL: _S.ANSWERED,
        _T.ACK: _S.CONFIRMED,
        _T.CANCEL: _S.ANSWERED,  # too late: the 2xx went out (RFC 3261 9.2)
        _T.END: _S.ENDED,
    },
    _S.CONFIRMED: {
        _T.ANSWER: _S.CONFIRMED,
        _T.PROVISIONAL: _S.CONFIRMED,
        _T.ACK: _S.CONFIRMED,
        _T.CANCEL: _S.CONFIRMED,
        _T.END: _S.ENDED,
    },
    _S.ENDED: dict.fromkeys(CallTrigger, _S.ENDED),
}


@final
@dataclass(slots=True, eq=False)
class Call:
    """One call: the caller's leg ``a`` (UAS) and the callee's leg ``b`` (UAC).

    Attributes:
        call_id: the A-leg Call-ID, which names the call in notices and in the SDP seam.
        direction: who called.
        a, b: the legs.
        state: see ``CALL_TRANSITIONS``.
        cancel_pending: the caller cancelled before any provisional response, so our
            CANCEL waits for the first one (RFC 3261 9.1).
        cancel_deadline: 64*T1 after our CANCEL: give up on the B-leg INVITE (9.1).
        ack_deadline: 64*T1 after the 2xx to the caller: end the call if no ACK.
        late_offer: the caller's INVITE had no SDP: the callee's 2xx carries the offer and
            the B-leg ACK waits for the caller's ACK with the answer.
        end_reported: ``CallEnded`` went out (a cancelled call may wind down later).
        decision: the rules' decision on the initial INVITE (media policy, 183 -> 180).
    """

    call_id: str
    direction: CallDirection
    a: Leg
    b: Leg
    state: CallState = CallState.CALLING
    cancel_pending: bool = False
    cancel_deadline: float | None = None
    ack_deadline: float | None = None
    late_offer: bool = False
    end_reported: bool = False
    decision: Decision = field(default_factory=Decision)

    def fire(self, trigger: CallTrigger) -> CallState:
        """Apply ``trigger``; returns the new state."""
        row = CALL_TRANSITIONS[self.state]
        if trigger not in row:
            raise LocalProtocolError(f"call {self.call_id}: {trigger.value} in {self.state.value}")
        self.state = row[trigger]
        return self.state

    @property
    def ended(self) -> bool:
        """True once the call is over."""
        return self.state is CallState.ENDED

    def other(self, leg: Leg) -> Leg:
        """The leg that is not ``leg``."""
        return self.b if leg is self.a else self.a

    def leg_on(self, side: LegSide) -> Leg:
        """The leg facing ``side``."""
        return self.a if self.a.side is side else self.b

    def next_deadline(self) -> float | None:
        """The earliest of the call's own timers, or None."""
        candidates = [self.cancel_deadline, self.ack_deadline]
        for leg in (self.a, self.b):
            if leg.retransmission is not None:
                candidates.append(leg.retransmission.next_at)
            if leg.session is not None and self.state is CallState.CONFIRMED:
                candidates.append(leg.session.deadline)
        present = [c for c in candidates if c is not None]
        return min(present) if present else None
