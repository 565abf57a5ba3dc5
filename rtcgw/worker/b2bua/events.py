"""What the B2BUA reports to the runtime: notices (for logs and metrics) and ``Output``.

Notices are past facts (STYLE E4), each with the Call-ID of the leg it concerns, so the
runtime can log with ``call_id`` bound and count metrics with bounded labels (direction,
status, reason). The B2BUA never logs: every drop and every reject is one of these.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from rtcgw.registrations import Binding
from rtcgw.sip.events import Outgoing

__all__ = [
    "BindingReported",
    "CallAnswered",
    "CallDirection",
    "CallEnded",
    "CallStarted",
    "EndReason",
    "MediaRefused",
    "MessageDropped",
    "Notice",
    "Output",
    "RegisterHandled",
    "RegisterOutcome",
    "RequestRejected",
    "RouteDecided",
    "RouteOutcome",
]


class CallDirection(enum.Enum):
    """Which side placed the call."""

    FROM_CLIENT = "from_client"  #: a WebSocket client called the SIP side
    FROM_SIP = "from_sip"  #: the SIP side (the PBX) called a WebSocket client


class EndReason(enum.Enum):
    """Why a call ended (a bounded label for metrics)."""

    REJECTED = "rejected"  #: a final 3xx-6xx answered the INVITE
    CANCELLED = "cancelled"  #: the caller cancelled before the answer
    HANGUP_CLIENT = "hangup_client"  #: BYE from the WebSocket client's leg
    HANGUP_SIP = "hangup_sip"  #: BYE from the SIP side's leg
    SESSION_EXPIRED = "session_expired"  #: RFC 4028: no refresh before the session expired
    NO_ACK = "no_ack"  #: our 2xx was never acknowledged (RFC 3261 13.3.1.4)
    TIMEOUT = "timeout"  #: a transaction timed out (Timer B/F)
    CONNECTION_CLOSED = "connection_closed"  #: the client's WebSocket/TCP connection went away
    TRANSPORT_FAILED = "transport_failed"  #: a message could not be delivered
    REFRESH_FAILED = "refresh_failed"  #: our session refresh was refused
    SHUTDOWN = "shutdown"  #: the worker was stopped (SIGTERM): we hung up both legs
    MEDIA_TIMEOUT = "media_timeout"  #: no media either way for the media timeout: BYE both legs
    MEDIA_REFUSED = "media_refused"  #: an SDP could not be converted (no common codec, ...)


@dataclass(frozen=True, slots=True)
class CallStarted:
    """An initial INVITE was accepted and forwarded; ``b_call_id`` is the new leg's."""

    call_id: str
    direction: CallDirection
    b_call_id: str


@dataclass(frozen=True, slots=True)
class CallAnswered:
    """The callee answered (2xx relayed to the caller)."""

    call_id: str


@dataclass(frozen=True, slots=True)
class CallEnded:
    """The call is over on both legs; ``status`` is the final status when it never got
    answered (487, 486, ...), else None."""

    call_id: str
    reason: EndReason
    status: int | None = None


@dataclass(frozen=True, slots=True)
class RequestRejected:
    """We answered a request ourselves with a failure (``call_id`` of that request)."""

    call_id: str | None
    status: int
    reason: str


@dataclass(frozen=True, slots=True)
class MediaRefused:
    """The SDP seam refused an offer or answer of the call; ``reason`` says why (both
    codec lists for a codec mismatch)."""

    call_id: str
    status: int
    reason: str


@dataclass(frozen=True, slots=True)
class MessageDropped:
    """A message was dropped without an answer (unparseable response, stray, ...)."""

    reason: str
    detail: str
    call_id: str | None = None


@dataclass(frozen=True, slots=True)
class BindingReported:
    """A registration changed: the supervisor's cache must learn it (DESIGN.md section 1).

    ``removed`` False: ``binding`` was registered or refreshed; True: it is gone, for
    ``reason`` ("unregistered", "rejected", ...). Times in ``binding`` are on the B2BUA's
    clock (the ``now`` it was given).
    """

    binding: Binding
    removed: bool
    reason: str

    @property
    def call_id(self) -> str:
        """The client's REGISTER Call-ID."""
        return self.binding.call_id


class RegisterOutcome(enum.Enum):
    """What became of a client's REGISTER (a bounded label for metrics)."""

    FORWARDED = "forwarded"  #: sent on to the registrar
    ABSORBED = "absorbed"  #: a refresh answered by the gateway from its cache (throttling)
    REJECTED = "rejected"  #: refused by the gateway or by the registrar (not a challenge)


@dataclass(frozen=True, slots=True)
class RegisterHandled:
    """A client's REGISTER was forwarded upstream, absorbed by throttling, or rejected."""

    call_id: str
    outcome: RegisterOutcome


class RouteOutcome(enum.Enum):
    """What the rules made of an out-of-dialog request (a bounded label for logs)."""

    ROUTED = "routed"  #: forwarded to the destination call agent
    RETARGETED = "retargeted"  #: forwarded to a registered client's own contact
    REPLIED = "replied"  #: a rule answered it (``reply``, or a retarget to a user offline)
    FORBIDDEN = "forbidden"  #: no call agent holds the source address (403)
    NOT_ROUTED = "not_routed"  #: no rule routed it (404)


@dataclass(frozen=True, slots=True)
class RouteDecided:
    """The rules decided an out-of-dialog request; ``rules`` says which and how.

    ``realm``, ``rule`` and ``outcome`` restate the same decision in fields a log search
    can match: the source realm, the rule that settled the outcome ("rtc/a:to_pbx", None
    when no rule did) and the outcome.
    """

    call_id: str
    method: str
    source_agent: str | None
    destination_agent: str | None
    rules: str
    #: each matching rule as (realm, kind "a"/"c", rule name), for the rule-hit metric
    hits: tuple[tuple[str, str, str], ...] = field(default=(), compare=False)
    realm: str | None = field(default=None, compare=False)
    rule: str | None = field(default=None, compare=False)
    outcome: RouteOutcome = field(default=RouteOutcome.NOT_ROUTED, compare=False)


Notice = (
    CallStarted
    | CallAnswered
    | CallEnded
    | RequestRejected
    | MediaRefused
    | MessageDropped
    | BindingReported
    | RegisterHandled
    | RouteDecided
)


@dataclass(frozen=True, slots=True)
class Output:
    """What one call of the B2BUA produced: messages to send, notices, both in order."""

    outgoing: tuple[Outgoing, ...] = ()
    notices: tuple[Notice, ...] = ()
