"""The transaction layer of one worker: messages and time in, events and messages out.

``TransactionLayer`` holds every client and server transaction of a worker and is the
only API the runtime and the transaction user (the B2BUA) call, in the h11 style: one
object, plain data in and out, no I/O, no clock, no callbacks.

- ``receive(message, source, now)``: a parsed message from the transport.
- ``start_client(request, destination, now)``: send a request in a new client transaction.
- ``respond(server_key, response, now)``: answer a server transaction.
- ``next_deadline()`` / ``handle_timeout(now)``: the runtime sleeps until the deadline and
  then lets the timers fire.
- ``transport_failed(key, now)`` / ``terminate(key, now)``: delivery failed / the TU gives
  up on a transaction.

Every call that takes ``now`` returns an ``Output`` (events for the TU, messages to send)
and first lets every timer due at ``now`` fire, so a runtime that wakes late still sees
timers fire before the message it brings; zero-length timers (reliable transports) fire
within the same call. ``now`` must never decrease.

What the layer does on its own, and what it leaves to the transaction user:

- Retransmitted requests and responses are absorbed (the server resends its last
  response; the INVITE client re-ACKs a retransmitted non-2xx final).
- The ACK for a non-2xx final is built and sent by the INVITE client transaction
  (RFC 3261 17.1.1.3). The ACK for a 2xx is the TU's: it gets every 2xx as
  ``ResponseReceived`` (also in Accepted, RFC 6026) and sends the ACK outside any
  transaction, as an ``Outgoing`` of its own.
- CANCEL is answered here (RFC 3261 9.2): 200 when it matches an INVITE server
  transaction, 481 otherwise (also for a CANCEL of a non-INVITE request, which 9.1 says
  "SHOULD NOT be sent"), in a non-INVITE server transaction of its own so that
  retransmitted CANCELs get the same answer. The 200 carries the To tag of the INVITE's
  last response when there is one (9.2: the two "SHOULD be the same"), else a fresh tag.
  Only a CANCEL that matches an INVITE still without a final response is reported
  (``CancelReceived``); the TU then answers the INVITE with 487.
- 100 Trying is sent by the TU (see ``rtcgw.sip.transaction_server``).
- Requests whose top Via branch lacks the magic cookie (RFC 2543) are matched on branch,
  sent-by, Call-ID, From tag and CSeq number (``Rfc2543Id``), a simplified form of
  17.2.3's rules that ignores the Request-URI and the To tag.

Every transaction ends with exactly one ``TransactionTerminated``, including the CANCEL
transactions the layer answers itself; a TU ignores keys it does not know.
"""

from __future__ import annotations

import heapq
import itertools
from dataclasses import replace
from typing import assert_never, final

from rtcgw.sip.errors import LocalProtocolError, RemoteProtocolError
from rtcgw.sip.events import (
    AckReceived,
    CancelReceived,
    ClientTransactionKey,
    Event,
    Outgoing,
    Output,
    RequestReceived,
    ServerTransactionKey,
    StrayResponseReceived,
    TransactionKey,
    TransactionTerminated,
)
from rtcgw.sip.headers import MAGIC_COOKIE
from rtcgw.sip.ids import new_tag
from rtcgw.sip.message import Request, Response, make_response
from rtcgw.sip.timers import TimerConfig, TimerName
from rtcgw.sip.transaction import (
    Action,
    ArmTimer,
    Report,
    Send,
    TransactionBase,
    TransactionState,
    server_key_of,
)
from rtcgw.sip.transaction_client import ClientTransaction
from rtcgw.sip.transaction_server import ServerTransaction, stamp_via
from rtcgw.sip.transport import Peer, Transport

__all__ = ["TransactionLayer"]


class _Collector:
    """Gathers the events and outgoing messages of one call, in order."""

    __slots__ = ("events", "outgoing")

    def __init__(self) -> None:
        self.events: list[Event] = []
        self.outgoing: list[Outgoing] = []

    def output(self) -> Output:
        return Output(tuple(self.events), tuple(self.outgoing))


_HeapEntry = tuple[float, int, TransactionBase, TimerName]


@final
class TransactionLayer:
    """Every SIP transaction of one worker (RFC 3261 section 17, RFC 6026).

    Not thread-safe and not meant to be: one layer per worker, driven from one trio task
    (or a test). All methods are synchronous and return at once.

    Args:
        config: the timer base values T1, T2, T4.
        shard: this worker's shard number, embedded in the To tags the layer mints for
            its answers to CANCEL (``rtcgw.sip.ids``).
    """

    def __init__(self, config: TimerConfig | None = None, *, shard: int | None = None) -> None:
        self._config = config if config is not None else TimerConfig()
        self._shard = shard
        self._clients: dict[ClientTransactionKey, ClientTransaction] = {}
        self._servers: dict[ServerTransactionKey, ServerTransaction] = {}
        self._timers: list[_HeapEntry] = []
        self._sequence = itertools.count()
        self._now = float("-inf")

    # -- queries ------------------------------------------------------------------------------

    @property
    def config(self) -> TimerConfig:
        """The timer base values."""
        return self._config

    def state(self, key: TransactionKey) -> TransactionState | None:
        """The state of a live transaction, or None once it terminated (or never existed).

        A TU checks this before sending CANCEL (only in Proceeding, RFC 3261 9.1).
        """
        tx = self._lookup(key)
        return None if tx is None else tx.state

    def __len__(self) -> int:
        """The number of live transactions, client and server."""
        return len(self._clients) + len(self._servers)

    def next_deadline(self) -> float | None:
        """When ``handle_timeout`` must next be called, or None if no timer runs."""
        while self._timers:
            deadline, _, tx, name = self._timers[0]
            if tx.is_due(name, deadline):
                return deadline
            heapq.heappop(self._timers)  # stopped or re-armed: drop the stale entry
        return None

    # -- input --------------------------------------------------------------------------------

    def receive(self, message: Request | Response, source: Peer, now: float) -> Output:
        """Take a message the transport received from ``source`` at ``now``.

        Returns:
            Events for the TU: ``RequestReceived`` for a new request, ``AckReceived``,
            ``CancelReceived``, ``ResponseReceived``, ``StrayResponseReceived``, plus
            whatever timers due at ``now`` produced; and messages to send (a resent
            response, a re-sent ACK, the answer to a CANCEL).

        Raises:
            RemoteProtocolError: the message lacks a usable Via, CSeq, Call-ID or From, or
                its CSeq method differs from the request method; ``status_hint`` is the
                response to send (400) for a request. Nothing changed in the layer. Any
                other exception is a bug.
            LocalProtocolError: ``now`` went backwards.
        """
        self._advance_clock(now)
        if isinstance(message, Request):
            request = self._validated_request(message, source)
            key = server_key_of(request)  # before any state changes: it may raise too
            sink = self._collect_timers(now)
            self._receive_request(request, key, source, now, sink)
        else:
            if not 100 <= message.status <= 699:
                raise RemoteProtocolError(f"status code {message.status} is outside 100-699")
            client_key = ClientTransactionKey(message.top_via.branch or "", message.cseq.method)
            sink = self._collect_timers(now)
            tx = self._clients.get(client_key)
            if tx is None:
                sink.events.append(StrayResponseReceived(message, source))
            else:
                self._run(tx, tx.receive_response(message, source, now), sink)
        self._fire_timers(now, sink)
        return sink.output()

    def start_client(
        self, request: Request, destination: Peer, now: float
    ) -> tuple[ClientTransactionKey, Output]:
        """Send ``request`` to ``destination`` in a new client transaction.

        The request must be complete: a top Via whose transport matches ``destination``
        and whose branch is fresh and starts with the magic cookie (``ids.new_branch``),
        and a CSeq whose method is the request's.

        Returns:
            The transaction's key (it is in every ``ResponseReceived``) and an ``Output``
            whose ``outgoing`` holds the request.

        Raises:
            LocalProtocolError: the request is an ACK (a 2xx ACK is sent outside any
                transaction; the non-2xx ACK by the INVITE client transaction itself),
                the branch lacks the magic cookie or is in use, the CSeq or the Via
                transport do not match, or ``now`` went backwards.
        """
        self._advance_clock(now)
        if request.method == "ACK":
            raise LocalProtocolError(
                "ACK is not sent in a client transaction: the INVITE client transaction "
                "ACKs non-2xx finals itself, the TU sends the 2xx ACK directly"
            )
        via = request.top_via
        branch = via.branch or ""
        if not branch.startswith(MAGIC_COOKIE):
            raise LocalProtocolError(f"branch {branch!r} lacks the magic cookie {MAGIC_COOKIE}")
        if request.cseq.method != request.method:
            raise LocalProtocolError(f"{request.method} request with CSeq {request.cseq}")
        try:
            via_transport = Transport.from_via(via.transport)
        except ValueError:
            raise LocalProtocolError(f"unknown Via transport {via.transport}") from None
        if via_transport is not destination.transport:
            raise LocalProtocolError(
                f"Via transport {via.transport} but sent over {destination.transport.value}"
            )
        key = ClientTransactionKey(branch, request.method)
        if key in self._clients:
            raise LocalProtocolError(f"{key} already exists: use a fresh branch")
        sink = self._collect_timers(now)
        tx = ClientTransaction(key, request, destination, self._config)
        self._clients[key] = tx
        self._run(tx, tx.start(now), sink)
        self._fire_timers(now, sink)
        return key, sink.output()

    def respond(self, server_key: ServerTransactionKey, response: Response, now: float) -> Output:
        """Send ``response`` in server transaction ``server_key``.

        2xx to INVITE moves the transaction to Accepted (RFC 6026, Timer L); the TU sends
        its 2xx retransmissions (RFC 3261 13.3.1.4) through here too. 300-699 to INVITE
        moves it to Completed (Timers G, H). Finals to other methods move it to Completed
        (Timer J).

        Raises:
            LocalProtocolError: no such live transaction, a response the state does not
                allow (a second final), a CSeq that does not match, or ``now`` went
                backwards; the message names the key, the state and the status.
        """
        self._advance_clock(now)
        tx = self._servers.get(server_key)
        if tx is None:
            raise LocalProtocolError(
                f"cannot send {response.status} {response.reason}: {server_key} is "
                f"{TransactionState.TERMINATED.value} or unknown"
            )
        sink = self._collect_timers(now)
        self._run(tx, tx.respond(response, now), sink)
        self._fire_timers(now, sink)
        return sink.output()

    def handle_timeout(self, now: float) -> Output:
        """Fire every timer due at ``now`` (deadline <= now), in deadline order.

        Raises:
            LocalProtocolError: ``now`` went backwards.
        """
        self._advance_clock(now)
        sink = _Collector()
        self._fire_timers(now, sink)
        return sink.output()

    def transport_failed(self, key: TransactionKey, now: float) -> Output:
        """The runtime could not deliver a message of transaction ``key``.

        The transaction terminates with ``TransportFailed`` (for a client: treat as 503,
        RFC 3261 8.1.3.1). An unknown key (the transaction already ended) is ignored.
        """
        self._advance_clock(now)
        sink = self._collect_timers(now)
        tx = self._lookup(key)
        if tx is not None:
            self._run(tx, tx.transport_failed(), sink)
        self._fire_timers(now, sink)
        return sink.output()

    def terminate(self, key: TransactionKey, now: float) -> Output:
        """Drop transaction ``key`` on the TU's behalf, without sending anything.

        For example a client INVITE with no final response 64*T1 after its CANCEL
        (RFC 3261 9.1). An unknown key is ignored.
        """
        self._advance_clock(now)
        sink = self._collect_timers(now)
        tx = self._lookup(key)
        if tx is not None:
            self._run(tx, tx.abandon(), sink)
        self._fire_timers(now, sink)
        return sink.output()

    # -- requests -----------------------------------------------------------------------------

    def _validated_request(self, request: Request, source: Peer) -> Request:
        cseq = request.cseq
        if cseq.method != request.method:
            raise RemoteProtocolError(
                f"CSeq method {cseq.method} differs from request method {request.method}",
                status_hint=400,
            )
        return stamp_via(request, source)

    def _receive_request(
        self,
        request: Request,
        key: ServerTransactionKey,
        source: Peer,
        now: float,
        sink: _Collector,
    ) -> None:
        if request.method == "ACK":
            invite = self._servers.get(replace(key, method="INVITE"))
            if invite is None:
                sink.events.append(AckReceived(request, source))
            else:
                self._run(invite, invite.receive_ack(request, source, now), sink)
            return
        existing = self._servers.get(key)
        if existing is not None:
            self._run(existing, existing.receive_request(), sink)
            return
        tx = ServerTransaction(key, request, source, self._config)
        self._servers[key] = tx
        if request.method == "CANCEL":
            self._answer_cancel(tx, request, source, now, sink)
        else:
            sink.events.append(RequestReceived(key, request, source))

    def _answer_cancel(
        self,
        cancel: ServerTransaction,
        request: Request,
        source: Peer,
        now: float,
        sink: _Collector,
    ) -> None:
        """RFC 3261 9.2: 200 if the CANCEL matches a transaction, 481 otherwise."""
        target = self._servers.get(replace(cancel.server_key, method="INVITE"))
        if target is None:
            response = make_response(request, 481, to_tag=new_tag(self._shard))
            self._run(cancel, cancel.respond(response, now), sink)
            return
        last = target.last_response
        tag = last.to_tag if last is not None else None
        response = make_response(request, 200, to_tag=tag or new_tag(self._shard))
        self._run(cancel, cancel.respond(response, now), sink)
        if target.state is TransactionState.PROCEEDING:
            sink.events.append(CancelReceived(target.server_key, request, source))

    # -- machinery ----------------------------------------------------------------------------

    def _advance_clock(self, now: float) -> None:
        if now < self._now:
            raise LocalProtocolError(f"time went backwards: now={now} after {self._now}")
        self._now = now

    def _lookup(self, key: TransactionKey) -> ClientTransaction | ServerTransaction | None:
        if isinstance(key, ClientTransactionKey):
            return self._clients.get(key)
        return self._servers.get(key)

    def _collect_timers(self, now: float) -> _Collector:
        sink = _Collector()
        self._fire_timers(now, sink)
        return sink

    def _fire_timers(self, now: float, sink: _Collector) -> None:
        while self._timers and self._timers[0][0] <= now:
            deadline, _, tx, name = heapq.heappop(self._timers)
            if tx.is_due(name, deadline):
                self._run(tx, tx.timer_fired(name, now), sink)

    def _compact_timers(self) -> None:
        """Drop stale heap entries once they dominate, so that transactions that ended
        early (a Timer B entry outliving its INVITE by 30 s) are not kept alive by them.
        Each live transaction runs at most two timers, so live entries <= 2 * len(self)."""
        if len(self._timers) > 4 * len(self) + 64:
            self._timers = [e for e in self._timers if e[2].is_due(e[3], e[0])]
            heapq.heapify(self._timers)

    def _run(self, tx: TransactionBase, actions: list[Action], sink: _Collector) -> None:
        """Carry out a transaction's actions; destroy it if it reached Terminated."""
        for action in actions:
            match action:
                case Send(outgoing):
                    sink.outgoing.append(outgoing)
                case Report(event):
                    sink.events.append(event)
                case ArmTimer(name, deadline):
                    entry = (deadline, next(self._sequence), tx, name)
                    heapq.heappush(self._timers, entry)
                    self._compact_timers()
                case _:
                    assert_never(action)
        if tx.state is not TransactionState.TERMINATED:
            return
        removed = False
        if isinstance(tx, ClientTransaction) and self._clients.get(tx.client_key) is tx:
            removed = self._clients.pop(tx.client_key) is tx
        elif isinstance(tx, ServerTransaction) and self._servers.get(tx.server_key) is tx:
            removed = self._servers.pop(tx.server_key) is tx
        if removed:
            sink.events.append(TransactionTerminated(tx.key))
