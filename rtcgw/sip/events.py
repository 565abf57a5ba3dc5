"""What the SIP transaction layer reports to its user, and what it asks the runtime to send.

Everything here is an immutable value (STYLE E4): events are past facts named as nouns
(``RequestReceived``, ``TransactionTimedOut``), matched by the transaction user with
``match`` and ``typing.assert_never``. ``Outgoing`` is a message plus where to send it;
``Output`` bundles the events and the outgoing messages one call of the layer produced.

The transaction keys live here too, because events carry them: a ``ClientTransactionKey``
is what RFC 3261 section 17.1.3 matches responses on, a ``ServerTransactionKey`` what
section 17.2.3 matches requests on.

No I/O: ``Outgoing.data`` is the serialised message; the runtime writes it to the socket or
connection that ``Outgoing.destination`` names.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from rtcgw.sip.message import Request, Response
from rtcgw.sip.timers import TimerName
from rtcgw.sip.transport import Peer

__all__ = [
    "AckReceived",
    "CancelReceived",
    "ClientTransactionKey",
    "Event",
    "Outgoing",
    "Output",
    "RequestReceived",
    "ResponseReceived",
    "Rfc2543Id",
    "ServerTransactionKey",
    "StrayResponseReceived",
    "TransactionKey",
    "TransactionTerminated",
    "TransactionTimedOut",
    "TransportFailed",
]


# -- identifiers ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ClientTransactionKey:
    """Identifies a client transaction (RFC 3261 section 17.1.3).

    A response matches when its top Via branch equals the request's and its CSeq method
    equals the request's method; the method is needed "since a CANCEL request constitutes
    a different transaction, but shares the same value of the branch parameter".
    """

    branch: str
    method: str

    def __str__(self) -> str:
        return f"client {self.method} {self.branch}"


@dataclass(frozen=True, slots=True)
class Rfc2543Id:
    """The extra request fields matched for RFC 2543 peers (branch without magic cookie).

    A simplified form of RFC 3261 section 17.2.3's backwards-compatible matching: Call-ID,
    From tag and CSeq number, on top of the branch (possibly empty) and sent-by. The
    Request-URI and the To tag are not compared.
    """

    call_id: str
    from_tag: str
    cseq: int


@dataclass(frozen=True, slots=True)
class ServerTransactionKey:
    """Identifies a server transaction (RFC 3261 section 17.2.3).

    ``branch`` and the top Via sent-by (``sent_by_host`` lower-cased, ``sent_by_port`` as
    written, None when absent) and the method; an ACK is looked up with method INVITE.
    ``rfc2543`` is set only for requests whose branch lacks the magic cookie.
    """

    branch: str
    sent_by_host: str
    sent_by_port: int | None
    method: str
    rfc2543: Rfc2543Id | None = None

    def __str__(self) -> str:
        port = "" if self.sent_by_port is None else f":{self.sent_by_port}"
        legacy = "" if self.rfc2543 is None else " (RFC 2543)"
        return f"server {self.method} {self.branch} from {self.sent_by_host}{port}{legacy}"


TransactionKey = ClientTransactionKey | ServerTransactionKey


# -- what to send --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Outgoing:
    """A message the runtime must send, and where.

    ``data`` is ``bytes(message)``, computed once: a retransmission reuses the same
    ``Outgoing`` (RFC 3261 17.1.1.2: "take the message previously sent to the transport
    layer and pass it to the transport layer once more").
    """

    message: Request | Response
    destination: Peer
    data: bytes = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "data", bytes(self.message))


# -- events --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RequestReceived:
    """A new request created a server transaction; answer it with ``respond(server_key)``.

    ``request``'s top Via carries ``received`` / ``rport`` as the server transport adds
    them (RFC 3261 18.2.1, RFC 3581), so responses built from it route back correctly.
    """

    server_key: ServerTransactionKey
    request: Request
    source: Peer


@dataclass(frozen=True, slots=True)
class AckReceived:
    """An ACK outside any transaction: the ACK for a 2xx (RFC 3261 17.1.1.3, RFC 6026).

    Also reported when an ACK matches an INVITE server transaction in the Accepted state
    (a peer that reused the INVITE's branch). Absorbed ACKs for non-2xx finals are not
    reported.
    """

    request: Request
    source: Peer


@dataclass(frozen=True, slots=True)
class CancelReceived:
    """A CANCEL for an INVITE server transaction that has not sent a final response yet.

    The layer has already answered the CANCEL itself with 200 (RFC 3261 9.2); the
    transaction user should now answer the INVITE ``invite_key`` with 487 (Request
    Terminated) and cancel whatever it started for it.
    """

    invite_key: ServerTransactionKey
    request: Request
    source: Peer


@dataclass(frozen=True, slots=True)
class ResponseReceived:
    """A response for a client transaction, to be acted on by the transaction user.

    Retransmitted non-2xx finals and provisional responses after a final are absorbed;
    every 2xx to an INVITE is reported, also in the Accepted state (RFC 6026 section 8.4),
    and the transaction user must ACK each one.
    """

    client_key: ClientTransactionKey
    response: Response
    source: Peer


@dataclass(frozen=True, slots=True)
class StrayResponseReceived:
    """A response that matches no client transaction (RFC 3261 18.1.2, RFC 6026 7.3).

    Typically a 2xx retransmission after Timer M, or garbage; a UA normally drops it.
    """

    response: Response
    source: Peer


@dataclass(frozen=True, slots=True)
class TransactionTimedOut:
    """Timer B, F (client: treat as a 408, RFC 3261 8.1.3.1) or H (server: no ACK came)."""

    key: TransactionKey
    timer: TimerName


@dataclass(frozen=True, slots=True)
class TransportFailed:
    """The runtime reported a transport failure; the transaction is terminated.

    For a client transaction the transaction user treats it as a 503 (RFC 3261 8.1.3.1,
    17.1.4).
    """

    key: TransactionKey


@dataclass(frozen=True, slots=True)
class TransactionTerminated:
    """The transaction reached Terminated and was destroyed; its key is free again."""

    key: TransactionKey


Event = (
    RequestReceived
    | AckReceived
    | CancelReceived
    | ResponseReceived
    | StrayResponseReceived
    | TransactionTimedOut
    | TransportFailed
    | TransactionTerminated
)


@dataclass(frozen=True, slots=True)
class Output:
    """What one call of the transaction layer produced, in order.

    ``events`` are for the transaction user; ``outgoing`` are messages for the runtime to
    send. Both may be empty (an absorbed retransmission).
    """

    events: tuple[Event, ...] = ()
    outgoing: tuple[Outgoing, ...] = ()
