"""The B2BUA's tables and the helpers every handler shares.

``Engine`` holds what one worker's B2BUA knows (its calls by leg, the transactions it
started or answered and why, REGISTER relays, digest-retry memos, the timer heap) and
collects what one API call produces (messages to send, notices, transaction events still
to handle). Handlers in ``invite``, ``in_dialog`` and ``register`` take the engine and
change it; ``core.B2bua`` is the only public face.

No I/O, no clock: ``begin(now)`` sets the time of the current API call.
"""

from __future__ import annotations

import enum
import heapq
import itertools
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, final

from rtcgw.registrations import BindingKey, MemoryCache, binding_key
from rtcgw.rules import CompiledRules
from rtcgw.sip.events import (
    ClientTransactionKey,
    Event,
    Outgoing,
    ServerTransactionKey,
)
from rtcgw.sip.events import Output as LayerOutput
from rtcgw.sip.headers import NameAddr, Via
from rtcgw.sip.ids import new_branch, new_tag
from rtcgw.sip.message import Header, Request, Response, make_response
from rtcgw.sip.transaction_layer import TransactionLayer
from rtcgw.sip.transport import Peer, Transport
from rtcgw.worker.b2bua.call import Call, CallState, CallTrigger
from rtcgw.worker.b2bua.events import CallEnded, EndReason, Notice, Output, RequestRejected
from rtcgw.worker.b2bua.leg import Leg, LegKey
from rtcgw.worker.b2bua.seam import SdpSeam
from rtcgw.worker.b2bua.settings import B2buaSettings

if TYPE_CHECKING:
    from rtcgw.worker.b2bua.routing import Target

__all__ = [
    "ALLOW",
    "AuthMemo",
    "BindingRequest",
    "ClientContext",
    "Engine",
    "Purpose",
    "Registration",
    "ServerContext",
]

#: The methods we accept (Allow of our answers).
ALLOW = "INVITE, ACK, CANCEL, BYE, OPTIONS, UPDATE, INFO, MESSAGE, NOTIFY, REGISTER"

#: How long the B-leg identifiers of a challenged INVITE are kept for the client's retry.
AUTH_MEMO_S = 64.0


class Purpose(enum.Enum):
    """Why we started (or answered) a transaction."""

    INVITE = "initial INVITE of a call"
    CANCEL = "CANCEL of the B-leg INVITE"
    RELAY = "in-dialog request relayed from the other leg"
    BYE = "BYE we send"
    REFRESH = "session refresh we send (RFC 4028)"
    PRACK = "PRACK for a reliable provisional (RFC 3262)"
    REGISTER = "REGISTER relayed to the PBX"
    MESSAGE = "out-of-dialog MESSAGE relayed (RFC 3428)"
    ACK_AND_BYE = "BYE for a 2xx that lost a race"
    INFO = "INFO we send (a DTMF digit toward a client)"


@dataclass(slots=True)
class Registration:
    """A client's registration as relayed upstream, keyed by the client's Call-ID.

    The upstream Call-ID and From tag stay the same across refreshes and digest retries,
    and the CSeq grows (RFC 3261 10.2.4), as the registrar expects. ``credentials`` are
    the client's last Authorization lines, for the un-REGISTER when its connection closes.
    """

    connection_id: int
    b_call_id: str
    b_from_tag: str
    b_cseq: int = 0
    credentials: tuple[Header, ...] = ()


@final
@dataclass(frozen=True, slots=True)
class BindingRequest:
    """The binding a client's REGISTER asks for, before the registrar has answered."""

    user: str  #: the address of record's user part
    aor: str  #: ``user@host`` of the To URI, host lower-cased
    contact: NameAddr  #: the client's Contact
    instance: str | None  #: its ``+sip.instance``
    reg_id: int | None  #: its ``reg-id``
    connection_id: int  #: the connection the REGISTER came on
    source: Peer  #: the client's end of that connection

    @property
    def key(self) -> BindingKey:
        """The key the binding will have in the registration cache."""
        return binding_key(self.aor, str(self.contact.uri), self.instance, self.reg_id)


@dataclass(slots=True)
class AuthMemo:
    """The B-leg identifiers of an INVITE the PBX challenged (401/407), for the retry."""

    b_call_id: str
    b_from_tag: str
    b_cseq: int
    expires_at: float


@dataclass(slots=True)
class ClientContext:
    """A client transaction we started, and what its responses are for."""

    purpose: Purpose
    request: Request
    call: Call | None = None
    leg: Leg | None = None
    inbound_key: ServerTransactionKey | None = None
    inbound_request: Request | None = None
    inbound_leg: Leg | None = None
    registration: Registration | None = None
    target: Target | None = None  #: where a relayed REGISTER went, and why
    wanted: BindingRequest | None = None  #: the binding a relayed REGISTER asks for
    provisional_seen: bool = False
    cancelled: bool = False  #: a relay whose inbound request got our 487 (CANCEL)


@dataclass(slots=True)
class ServerContext:
    """A server transaction we have not answered finally yet, and what it waits for."""

    purpose: Purpose
    request: Request
    call: Call | None = None
    leg: Leg | None = None
    outbound_key: ClientTransactionKey | None = None


@final
class Engine:
    """Tables and per-call collection; see the module docstring."""

    def __init__(
        self,
        settings: B2buaSettings,
        shard: int,
        layer: TransactionLayer,
        sdp: SdpSeam,
        *,
        rules: CompiledRules,
        registrations: MemoryCache,
    ) -> None:
        self.settings = settings
        self.shard = shard
        self.layer = layer
        self.sdp = sdp
        self.rules = rules
        #: the worker's mirror of the supervisor's registration cache (read here; the
        #: B2BUA applies its own reports at once so its next decision sees them)
        self.registrations = registrations
        #: the interface of the message being handled (set by each ``receive_bytes``)
        self.interface = ""
        self.legs: dict[LegKey, tuple[Call, Leg]] = {}
        self.clients: dict[ClientTransactionKey, ClientContext] = {}
        self.servers: dict[ServerTransactionKey, ServerContext] = {}
        self.registrations_in_flight: dict[str, Registration] = {}
        self.auth_memos: dict[tuple[str, str], AuthMemo] = {}
        self.calls: set[Call] = set()
        self._heap: list[tuple[float, int, Call]] = []
        self._sequence = itertools.count()
        self.now = 0.0
        self.outgoing: list[Outgoing] = []
        self.notices: list[Notice] = []
        self.events: deque[Event] = deque()

    # -- one API call ------------------------------------------------------------------------

    def begin(self, now: float) -> None:
        """Start collecting the output of one API call at ``now``."""
        self.now = now
        self.outgoing = []
        self.notices = []
        self.events = deque()

    def output(self) -> Output:
        """What the current API call produced."""
        return Output(tuple(self.outgoing), tuple(self.notices))

    def absorb(self, output: LayerOutput) -> None:
        """Take a transaction layer output: send its messages, queue its events."""
        self.outgoing.extend(output.outgoing)
        self.events.extend(output.events)

    def notice(self, notice: Notice) -> None:
        """Report a notice to the runtime."""
        self.notices.append(notice)

    @property
    def t1(self) -> float:
        """RFC 3261 T1 of our transaction layer."""
        return self.layer.config.t1_s

    # -- sending -----------------------------------------------------------------------------

    def start_client(
        self, request: Request, destination: Peer, context: ClientContext
    ) -> ClientTransactionKey:
        """Send ``request`` in a new client transaction and remember why."""
        key, output = self.layer.start_client(request, destination, self.now)
        self.clients[key] = context
        self.absorb(output)
        return key

    def respond(self, key: ServerTransactionKey, response: Response) -> None:
        """Answer server transaction ``key``; a final answer forgets its context."""
        if self.layer.state(key) is None:
            return  # the transaction ended (transport failure, timeout): nothing to answer
        self.absorb(self.layer.respond(key, response, self.now))
        if response.final:
            self.servers.pop(key, None)

    def reject(
        self,
        key: ServerTransactionKey,
        request: Request,
        status: int,
        reason: str | None = None,
        *,
        headers: tuple[Header, ...] = (),
        to_tag: str | None = None,
    ) -> None:
        """Answer ``request`` with a failure of our own, and report it."""
        response = make_response(
            request, status, reason, to_tag=to_tag or self.fresh_tag(), headers=headers
        )
        self.respond(key, response.with_header("Server", self.settings.user_agent))
        self.notice(RequestRejected(request.call_id, status, response.reason))

    def send_direct(self, request: Request, destination: Peer) -> None:
        """Send a request outside any transaction (the ACK for a 2xx)."""
        self.outgoing.append(Outgoing(request, destination))

    def new_via(self, transport: Transport) -> Via:
        """Our Via for a request we send over ``transport``, with a fresh sharded branch."""
        local = self.settings.address_for(transport)
        return Via.new(transport, local.host, local.port, new_branch(self.shard))

    def fresh_tag(self) -> str:
        """A new tag with our shard."""
        return new_tag(self.shard)

    # -- calls -------------------------------------------------------------------------------

    def add_call(self, call: Call) -> None:
        """Register a new call and its legs."""
        self.calls.add(call)
        self.legs[call.a.key] = (call, call.a)
        self.legs[call.b.key] = (call, call.b)

    def remove_call(self, call: Call) -> None:
        """Forget a call whose legs are both over."""
        self.calls.discard(call)
        for leg in (call.a, call.b):
            if self.legs.get(leg.key, (None, None))[0] is call:
                del self.legs[leg.key]

    def schedule(self, call: Call) -> None:
        """Note the call's next deadline in the timer heap (stale entries are skipped)."""
        deadline = call.next_deadline()
        if deadline is not None and call in self.calls:
            heapq.heappush(self._heap, (deadline, next(self._sequence), call))

    def next_deadline(self) -> float | None:
        """The earliest live call deadline."""
        while self._heap:
            deadline, _, call = self._heap[0]
            if call in self.calls and call.next_deadline() == deadline:
                return deadline
            heapq.heappop(self._heap)
        return None

    def due_calls(self, now: float) -> list[Call]:
        """The calls with a deadline at or before ``now``, each once."""
        due: list[Call] = []
        while self._heap and self._heap[0][0] <= now:
            deadline, _, call = heapq.heappop(self._heap)
            if call in self.calls and call.next_deadline() == deadline and call not in due:
                due.append(call)
        return due

    def finish(self, call: Call, reason: EndReason, status: int | None = None) -> None:
        """Mark ``call`` ended: report it (once), tell the SDP seam, forget it."""
        if call.state is not CallState.ENDED:
            call.fire(CallTrigger.END)
        self.report_end(call, reason, status)
        self.remove_call(call)

    def report_end(self, call: Call, reason: EndReason, status: int | None = None) -> None:
        """Emit ``CallEnded`` and release the media, once per call."""
        if call.end_reported:
            return
        call.end_reported = True
        self.notice(CallEnded(call.call_id, reason, status))
        self.sdp.call_ended(call, status)
