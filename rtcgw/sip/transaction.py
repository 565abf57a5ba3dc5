"""SIP transactions (RFC 3261 section 17, updated by RFC 6026): the state machines as tables.

This module holds what the four transaction state machines *are*: their states, the
triggers that move them, the transition table, which timers may run in which state, and
how a message is mapped to a transaction key. What each transition *does* lives in
``transaction_client`` and ``transaction_server``; ``transaction_layer`` owns the
transactions of one worker and is the API the runtime uses.

Rules
-----

Rule 1: a transaction's state changes only through ``next_state(kind, state, trigger)``,
which reads ``TRANSITIONS``. A trigger missing from the table raises
``LocalProtocolError`` naming the kind, the state and the trigger: only our own misuse
can do that (a second final response, a response on a terminated transaction), because
the table is total for every trigger the network can cause (received messages, timers,
transport errors): those rows absorb what the RFC says to absorb.

Rule 2: a timer runs only in the states ``TIMERS_BY_STATE`` lists for it. Leaving a state
cancels every timer the new state does not list, so "stop Timer A when a response
arrives" is a fact of the table, not a line of code that can be forgotten.

Rule 3: no clock, no I/O. Transactions take ``now`` and return actions (``Send``,
``Report``, ``ArmTimer``) that the layer carries out: send bytes, report events, keep a
deadline.

Theory of operation
-------------------

The tables follow the figures of RFC 3261 as RFC 6026 corrected them:

* INVITE client, Figure 5 (RFC 6026 section 8.4): Calling --1xx--> Proceeding;
  Calling/Proceeding --300-699--> Completed (the transaction sends the ACK itself and
  re-sends it for each retransmitted final, until Timer D); Calling/Proceeding --2xx-->
  Accepted (every further 2xx goes to the transaction user, which ACKs it, until Timer M).
  Timer A retransmits in Calling (UDP only), Timer B times out Calling.
* non-INVITE client, Figure 6: Trying --1xx--> Proceeding --200-699--> Completed --K-->
  Terminated; Timer E retransmits in Trying and Proceeding (UDP only), Timer F times out.
* INVITE server, Figure 7 (RFC 6026 section 8.7): Proceeding --2xx from TU--> Accepted
  --Timer L--> Terminated; Proceeding --300-699 from TU--> Completed (Timer G retransmits
  the final on UDP, Timer H gives up) --ACK--> Confirmed --Timer I--> Terminated.
* non-INVITE server, Figure 8: Trying --1xx from TU--> Proceeding --200-699 from TU-->
  Completed --Timer J--> Terminated; request retransmissions get the last response again.

On reliable transports the retransmission timers (A, E, G) are not started and the
absorbing timers (D, I, J, K) are zero: the transaction passes through Completed or
Confirmed and terminates at the same ``now`` (see ``rtcgw.sip.timers``).

A transport error reported by the runtime terminates a transaction in any state
(RFC 3261 17.1.4 and 17.2.4 for the states the figures show; in the other states nothing
useful can follow on a broken path either). ``ABANDONED`` is the transaction user
dropping a transaction on purpose, e.g. an INVITE still unanswered 64*T1 after its CANCEL
(RFC 3261 9.1).
"""

from __future__ import annotations

import abc
import enum
from collections.abc import Mapping
from dataclasses import dataclass

from rtcgw.sip.errors import LocalProtocolError
from rtcgw.sip.events import (
    Event,
    Outgoing,
    Rfc2543Id,
    ServerTransactionKey,
    TransactionKey,
    TransportFailed,
)
from rtcgw.sip.headers import MAGIC_COOKIE
from rtcgw.sip.message import Request
from rtcgw.sip.timers import TimerConfig, TimerName

__all__ = [
    "INITIAL_STATE",
    "TIMERS_BY_STATE",
    "TRANSITIONS",
    "Action",
    "ArmTimer",
    "Report",
    "Role",
    "Send",
    "TransactionBase",
    "TransactionKind",
    "TransactionState",
    "Trigger",
    "TriggerLike",
    "next_state",
    "server_key_of",
    "trigger_of_status",
]


class Role(enum.Enum):
    """Which side of a transaction (or dialog) we are on."""

    UAC = "UAC"  #: client transaction: we sent the request (RFC 3261 17.1)
    UAS = "UAS"  #: server transaction: we received the request (RFC 3261 17.2)


class TransactionKind(enum.Enum):
    """The four transaction state machines of RFC 3261 Figures 5-8."""

    INVITE_CLIENT = "INVITE client"  #: Figure 5, RFC 6026 section 8.4
    NON_INVITE_CLIENT = "non-INVITE client"  #: Figure 6
    INVITE_SERVER = "INVITE server"  #: Figure 7, RFC 6026 section 8.7
    NON_INVITE_SERVER = "non-INVITE server"  #: Figure 8

    @property
    def role(self) -> Role:
        """UAC for client transactions, UAS for server transactions."""
        if self in (TransactionKind.INVITE_CLIENT, TransactionKind.NON_INVITE_CLIENT):
            return Role.UAC
        return Role.UAS

    @property
    def invite(self) -> bool:
        """True for the INVITE machines."""
        return self in (TransactionKind.INVITE_CLIENT, TransactionKind.INVITE_SERVER)

    @classmethod
    def of(cls, role: Role, method: str) -> TransactionKind:
        """The machine for a request ``method`` on side ``role``."""
        invite = method == "INVITE"
        if role is Role.UAC:
            return cls.INVITE_CLIENT if invite else cls.NON_INVITE_CLIENT
        return cls.INVITE_SERVER if invite else cls.NON_INVITE_SERVER


class TransactionState(enum.Enum):
    """States of RFC 3261 Figures 5-8, plus Accepted from RFC 6026."""

    CALLING = "Calling"  #: INVITE client: request sent, no response yet
    TRYING = "Trying"  #: non-INVITE: request sent (client) / received, unanswered (server)
    PROCEEDING = "Proceeding"  #: a provisional response was received / sent
    COMPLETED = "Completed"  #: a final (non-2xx for INVITE) response was received / sent
    CONFIRMED = "Confirmed"  #: INVITE server: the ACK for the non-2xx final arrived
    ACCEPTED = "Accepted"  #: RFC 6026: a 2xx to INVITE was received / sent
    TERMINATED = "Terminated"  #: destroyed; the key is free


class Trigger(enum.Enum):
    """What can happen to a transaction, besides a timer firing (``TimerName``)."""

    RECEIVED_1XX = "received 1xx"  #: client: a provisional response arrived
    RECEIVED_2XX = "received 2xx"  #: client: a success response arrived
    RECEIVED_300_699 = "received 300-699"  #: client: a failure/redirect final arrived
    RECEIVED_REQUEST = "received request"  #: server: the request arrived again
    RECEIVED_ACK = "received ACK"  #: INVITE server: an ACK matched the transaction
    SEND_1XX = "1xx from TU"  #: server: the transaction user sends a provisional response
    SEND_2XX = "2xx from TU"  #: server: the transaction user sends a success response
    SEND_300_699 = "300-699 from TU"  #: server: the transaction user sends a failure final
    TRANSPORT_ERROR = "transport error"  #: the runtime could not deliver a message
    ABANDONED = "abandoned by TU"  #: the transaction user drops the transaction


TriggerLike = Trigger | TimerName

_S = TransactionState
_T = Trigger
_K = TransactionKind

#: Leaving any live state: a transport error or the transaction user dropping it.
_ALWAYS: dict[TriggerLike, TransactionState] = {
    _T.TRANSPORT_ERROR: _S.TERMINATED,
    _T.ABANDONED: _S.TERMINATED,
}

#: ``TRANSITIONS[kind][state][trigger] -> new state``. Rows absorbing a trigger map to the
#: same state. Terminated has no row: a terminated transaction no longer exists.
TRANSITIONS: Mapping[TransactionKind, Mapping[TransactionState, Mapping[TriggerLike, _S]]] = {
    _K.INVITE_CLIENT: {
        _S.CALLING: {
            _T.RECEIVED_1XX: _S.PROCEEDING,
            _T.RECEIVED_2XX: _S.ACCEPTED,
            _T.RECEIVED_300_699: _S.COMPLETED,
            TimerName.A: _S.CALLING,
            TimerName.B: _S.TERMINATED,
            **_ALWAYS,
        },
        _S.PROCEEDING: {
            _T.RECEIVED_1XX: _S.PROCEEDING,
            _T.RECEIVED_2XX: _S.ACCEPTED,
            _T.RECEIVED_300_699: _S.COMPLETED,
            **_ALWAYS,
        },
        _S.COMPLETED: {
            _T.RECEIVED_1XX: _S.COMPLETED,  # absorbed
            _T.RECEIVED_2XX: _S.COMPLETED,  # absorbed: a final was already received
            _T.RECEIVED_300_699: _S.COMPLETED,  # retransmission: ACK it again
            TimerName.D: _S.TERMINATED,
            **_ALWAYS,
        },
        _S.ACCEPTED: {
            _T.RECEIVED_1XX: _S.ACCEPTED,  # absorbed
            _T.RECEIVED_2XX: _S.ACCEPTED,  # passed to the TU (RFC 6026 8.4)
            _T.RECEIVED_300_699: _S.ACCEPTED,  # absorbed
            TimerName.M: _S.TERMINATED,
            **_ALWAYS,
        },
    },
    _K.NON_INVITE_CLIENT: {
        _S.TRYING: {
            _T.RECEIVED_1XX: _S.PROCEEDING,
            _T.RECEIVED_2XX: _S.COMPLETED,
            _T.RECEIVED_300_699: _S.COMPLETED,
            TimerName.E: _S.TRYING,
            TimerName.F: _S.TERMINATED,
            **_ALWAYS,
        },
        _S.PROCEEDING: {
            _T.RECEIVED_1XX: _S.PROCEEDING,
            _T.RECEIVED_2XX: _S.COMPLETED,
            _T.RECEIVED_300_699: _S.COMPLETED,
            TimerName.E: _S.PROCEEDING,
            TimerName.F: _S.TERMINATED,
            **_ALWAYS,
        },
        _S.COMPLETED: {
            _T.RECEIVED_1XX: _S.COMPLETED,  # absorbed
            _T.RECEIVED_2XX: _S.COMPLETED,  # absorbed retransmission
            _T.RECEIVED_300_699: _S.COMPLETED,  # absorbed retransmission
            TimerName.K: _S.TERMINATED,
            **_ALWAYS,
        },
    },
    _K.INVITE_SERVER: {
        _S.PROCEEDING: {
            _T.RECEIVED_REQUEST: _S.PROCEEDING,  # resend the last provisional, if any
            _T.RECEIVED_ACK: _S.PROCEEDING,  # absorbed: nothing final to acknowledge
            _T.SEND_1XX: _S.PROCEEDING,
            _T.SEND_2XX: _S.ACCEPTED,
            _T.SEND_300_699: _S.COMPLETED,
            **_ALWAYS,
        },
        _S.COMPLETED: {
            _T.RECEIVED_REQUEST: _S.COMPLETED,  # resend the final
            _T.RECEIVED_ACK: _S.CONFIRMED,
            TimerName.G: _S.COMPLETED,
            TimerName.H: _S.TERMINATED,
            **_ALWAYS,
        },
        _S.CONFIRMED: {
            _T.RECEIVED_REQUEST: _S.CONFIRMED,  # absorbed
            _T.RECEIVED_ACK: _S.CONFIRMED,  # absorbed
            TimerName.I: _S.TERMINATED,
            **_ALWAYS,
        },
        _S.ACCEPTED: {
            _T.RECEIVED_REQUEST: _S.ACCEPTED,  # absorbed, not passed to the TU (RFC 6026 8.7)
            _T.RECEIVED_ACK: _S.ACCEPTED,  # passed to the TU (RFC 6026 8.7)
            _T.SEND_2XX: _S.ACCEPTED,  # the TU's 2xx retransmissions (RFC 3261 13.3.1.4)
            TimerName.L: _S.TERMINATED,
            **_ALWAYS,
        },
    },
    _K.NON_INVITE_SERVER: {
        _S.TRYING: {
            _T.RECEIVED_REQUEST: _S.TRYING,  # absorbed: nothing sent yet
            _T.SEND_1XX: _S.PROCEEDING,
            _T.SEND_2XX: _S.COMPLETED,
            _T.SEND_300_699: _S.COMPLETED,
            **_ALWAYS,
        },
        _S.PROCEEDING: {
            _T.RECEIVED_REQUEST: _S.PROCEEDING,  # resend the last provisional
            _T.SEND_1XX: _S.PROCEEDING,
            _T.SEND_2XX: _S.COMPLETED,
            _T.SEND_300_699: _S.COMPLETED,
            **_ALWAYS,
        },
        _S.COMPLETED: {
            _T.RECEIVED_REQUEST: _S.COMPLETED,  # resend the final
            TimerName.J: _S.TERMINATED,
            **_ALWAYS,
        },
    },
}

#: The state a new transaction starts in.
INITIAL_STATE: Mapping[TransactionKind, TransactionState] = {
    _K.INVITE_CLIENT: _S.CALLING,
    _K.NON_INVITE_CLIENT: _S.TRYING,
    _K.INVITE_SERVER: _S.PROCEEDING,
    _K.NON_INVITE_SERVER: _S.TRYING,
}

#: ``TIMERS_BY_STATE[kind][state]``: the timers that may be running in that state (Rule 2).
TIMERS_BY_STATE: Mapping[TransactionKind, Mapping[TransactionState, frozenset[TimerName]]] = {
    _K.INVITE_CLIENT: {
        _S.CALLING: frozenset({TimerName.A, TimerName.B}),
        _S.PROCEEDING: frozenset(),
        _S.COMPLETED: frozenset({TimerName.D}),
        _S.ACCEPTED: frozenset({TimerName.M}),
    },
    _K.NON_INVITE_CLIENT: {
        _S.TRYING: frozenset({TimerName.E, TimerName.F}),
        _S.PROCEEDING: frozenset({TimerName.E, TimerName.F}),
        _S.COMPLETED: frozenset({TimerName.K}),
    },
    _K.INVITE_SERVER: {
        _S.PROCEEDING: frozenset(),
        _S.COMPLETED: frozenset({TimerName.G, TimerName.H}),
        _S.CONFIRMED: frozenset({TimerName.I}),
        _S.ACCEPTED: frozenset({TimerName.L}),
    },
    _K.NON_INVITE_SERVER: {
        _S.TRYING: frozenset(),
        _S.PROCEEDING: frozenset(),
        _S.COMPLETED: frozenset({TimerName.J}),
    },
}


def _trigger_name(trigger: TriggerLike) -> str:
    return f"Timer {trigger.value}" if isinstance(trigger, TimerName) else trigger.value


def next_state(
    kind: TransactionKind, state: TransactionState, trigger: TriggerLike, *, what: str = ""
) -> TransactionState:
    """The state after ``trigger``, from ``TRANSITIONS`` (Rule 1).

    Args:
        kind: which state machine.
        state: the current state.
        trigger: what happened.
        what: extra context for the error message (the transaction key, a status code).

    Raises:
        LocalProtocolError: the table has no such transition; the message names kind,
            state and trigger.
    """
    row = TRANSITIONS[kind].get(state, {})
    new = row.get(trigger)
    if new is None:
        context = f" ({what})" if what else ""
        raise LocalProtocolError(
            f"{kind.value} transaction in state {state.value} cannot handle "
            f"{_trigger_name(trigger)}{context}"
        )
    return new


def trigger_of_status(status: int, *, received: bool) -> Trigger:
    """The trigger for a response with ``status``, received (client) or sent (server).

    Raises:
        LocalProtocolError: ``status`` is outside 100-699 (the parser rejects such
            responses from the network, so only our own code can get here).
    """
    if not 100 <= status <= 699:
        raise LocalProtocolError(f"status code {status} is outside 100-699")
    if status < 200:
        return Trigger.RECEIVED_1XX if received else Trigger.SEND_1XX
    if status < 300:
        return Trigger.RECEIVED_2XX if received else Trigger.SEND_2XX
    return Trigger.RECEIVED_300_699 if received else Trigger.SEND_300_699


# -- actions: side effects returned as data (Rule 3) ------------------------------------------


@dataclass(frozen=True, slots=True)
class Send:
    """Pass this message to the transport."""

    outgoing: Outgoing


@dataclass(frozen=True, slots=True)
class Report:
    """Report this event to the transaction user."""

    event: Event


@dataclass(frozen=True, slots=True)
class ArmTimer:
    """Timer ``name`` of the transaction now fires at ``deadline``."""

    name: TimerName
    deadline: float


Action = Send | Report | ArmTimer


# -- what every transaction shares ------------------------------------------------------------


class TransactionBase(abc.ABC):
    """State, key and timer deadlines of one transaction; subclassed by client and server.

    Mutable on purpose: a transaction is a state machine owned by exactly one
    ``TransactionLayer`` (one trio thread), like h11's ``ConnectionState``. Everything it
    hands out (messages, events, actions) is immutable.

    Attributes:
        kind: which of the four machines.
        key: the transaction's identity, as carried by events.
        state: the current state; changed only by ``advance``.
        reliable: whether the transport retransmits by itself (no Timers A, E, G).
        config: T1, T2, T4.
        deadlines: the running timers and when they fire.
    """

    __slots__ = ("config", "deadlines", "key", "kind", "reliable", "state")

    def __init__(
        self, kind: TransactionKind, key: TransactionKey, *, reliable: bool, config: TimerConfig
    ) -> None:
        self.kind = kind
        self.key = key
        self.reliable = reliable
        self.config = config
        self.state = INITIAL_STATE[kind]
        self.deadlines: dict[TimerName, float] = {}

    def __repr__(self) -> str:
        return f"<{self.kind.value} transaction {self.key} {self.state.value}>"

    def advance(self, trigger: TriggerLike, *, what: str = "") -> TransactionState:
        """Take the transition for ``trigger`` (Rule 1) and stop timers the new state does
        not run (Rule 2). Returns the new state.

        Raises:
            LocalProtocolError: no such transition; the message names the key as well.
        """
        context = f"{self.key}, {what}" if what else str(self.key)
        self.state = next_state(self.kind, self.state, trigger, what=context)
        allowed = TIMERS_BY_STATE[self.kind].get(self.state, frozenset())
        for name in [n for n in self.deadlines if n not in allowed]:
            del self.deadlines[name]
        return self.state

    def arm(self, name: TimerName, interval_s: float, now: float) -> ArmTimer:
        """Start (or restart) timer ``name`` to fire ``interval_s`` after ``now``.

        Raises:
            LocalProtocolError: the timer may not run in the current state (a bug here).
        """
        if name not in TIMERS_BY_STATE[self.kind].get(self.state, frozenset()):
            raise LocalProtocolError(
                f"Timer {name.value} cannot run in {self.kind.value} state {self.state.value}"
            )
        deadline = now + interval_s
        self.deadlines[name] = deadline
        return ArmTimer(name, deadline)

    def arm_initial(self, name: TimerName, now: float) -> list[Action]:
        """Start timer ``name`` with its first interval, unless the transport skips it."""
        interval = self.config.initial_interval(name, reliable=self.reliable)
        return [] if interval is None else [self.arm(name, interval, now)]

    def is_due(self, name: TimerName, deadline: float) -> bool:
        """True if timer ``name`` is still armed for exactly ``deadline``."""
        return self.state is not TransactionState.TERMINATED and (
            self.deadlines.get(name) == deadline
        )

    def timer_fired(self, name: TimerName, now: float) -> list[Action]:
        """Timer ``name`` fired at ``now``; the layer calls this only when ``is_due``."""
        del self.deadlines[name]
        return self.on_timer(name, now)

    @abc.abstractmethod
    def on_timer(self, name: TimerName, now: float) -> list[Action]:
        """What the machine does when a timer fires; defined by each subclass."""

    def transport_failed(self) -> list[Action]:
        """The runtime could not deliver one of our messages: terminate, tell the TU."""
        self.advance(Trigger.TRANSPORT_ERROR)
        return [Report(TransportFailed(self.key))]

    def abandon(self) -> list[Action]:
        """The transaction user drops the transaction."""
        self.advance(Trigger.ABANDONED)
        return []


# -- matching ------------------------------------------------------------------------------


def server_key_of(request: Request, *, method: str | None = None) -> ServerTransactionKey:
    """The server transaction key of a request (RFC 3261 section 17.2.3).

    Args:
        request: a received request.
        method: the method to key on instead of the request's; the layer looks ACK up
            with ``"INVITE"`` and finds the INVITE a CANCEL targets the same way.

    Returns:
        Branch, sent-by and method for RFC 3261 branches; for a branch without the magic
        cookie (RFC 2543 peers) the key adds Call-ID, From tag and CSeq number
        (``Rfc2543Id``), a simplified version of the section's backwards-compatible rules.

    Raises:
        SipParseError: the request has no usable Via, CSeq, Call-ID or From (a
            ``RemoteProtocolError``: answer 400).
    """
    via = request.top_via
    branch = via.branch or ""
    legacy: Rfc2543Id | None = None
    if not branch.startswith(MAGIC_COOKIE):
        legacy = Rfc2543Id(request.call_id, request.from_tag or "", request.cseq.seq)
    return ServerTransactionKey(
        branch=branch,
        sent_by_host=via.host.lower(),
        sent_by_port=via.port,
        method=request.method if method is None else method,
        rfc2543=legacy,
    )
