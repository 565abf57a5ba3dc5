"""``B2bua``: the sans-IO call logic of one worker, in the h11 calling convention.

Bytes in (``receive_bytes``), time in (``handle_timeout``), connection news in
(``connection_closed``, ``transport_failed``); messages to send and notices out
(``Output``), and ``next_deadline`` for the runtime's sleep. One ``TransactionLayer`` per
B2BUA carries every transaction; the handlers in ``invite``, ``in_dialog`` and
``register`` carry the call logic.

Rules:

1. Nothing here opens a socket, reads a clock, logs or spawns a task. ``now`` never
   decreases between calls.
2. Every drop and every rejection is reported as a notice (``MessageDropped``,
   ``RequestRejected``), so the runtime can log and count it with the Call-ID.
3. Peer errors never escape: an unparseable request gets a stateless 400 (or the parser's
   ``status_hint``) when Via, From, To, Call-ID and CSeq can be found, and is dropped
   otherwise; an unparseable response is dropped. Any exception that does escape is a bug.
"""

from __future__ import annotations

from typing import assert_never, final

from rtcgw.config import GatewayConfig
from rtcgw.media.dtmf import DtmfDigit
from rtcgw.registrations import Binding, MemoryCache
from rtcgw.rules import CompiledRules
from rtcgw.sip.errors import RemoteProtocolError, SipParseError
from rtcgw.sip.events import (
    AckReceived,
    CancelReceived,
    ClientTransactionKey,
    Event,
    Outgoing,
    RequestReceived,
    ResponseReceived,
    ServerTransactionKey,
    StrayResponseReceived,
    TransactionTerminated,
    TransactionTimedOut,
    TransportFailed,
)
from rtcgw.sip.message import Header, Request, Response, canonical_name, make_response
from rtcgw.sip.parse import KNOWN_METHODS, parse_message
from rtcgw.sip.status import reason_phrase
from rtcgw.sip.timers import TimerConfig
from rtcgw.sip.transaction_layer import TransactionLayer
from rtcgw.sip.transport import Peer
from rtcgw.worker.b2bua.call import Call, CallState
from rtcgw.worker.b2bua.events import EndReason, MessageDropped, Output
from rtcgw.worker.b2bua.in_dialog import (
    on_call_timers,
    on_in_dialog_ack,
    on_in_dialog_request,
    on_refresh_response,
    on_relay_cancel,
    on_relay_response,
    send_dtmf_info,
)
from rtcgw.worker.b2bua.invite import hang_up, on_cancel, on_initial_invite, on_invite_response
from rtcgw.worker.b2bua.message import on_message, on_message_response
from rtcgw.worker.b2bua.register import on_register, on_register_response, unregister_upstream
from rtcgw.worker.b2bua.routing import decide_request
from rtcgw.worker.b2bua.seam import PassThroughSdp, SdpSeam
from rtcgw.worker.b2bua.settings import B2buaSettings
from rtcgw.worker.b2bua.state import ALLOW, ClientContext, Engine, Purpose

__all__ = ["DRAIN_RETRY_AFTER_S", "B2bua"]

#: The Retry-After of the 503 a draining worker gives new INVITEs.
DRAIN_RETRY_AFTER_S = 30

_STATELESS_HEADERS = ("via", "from", "to", "call-id", "cseq")

#: Call states in which the caller's INVITE transaction still matters.
_UNCONFIRMED = frozenset({CallState.CALLING, CallState.EARLY, CallState.ANSWERED})


@final
class B2bua:
    """The B2BUA of one worker.

    Args:
        settings: our addresses, session-timer values.
        shard: the worker's shard number, in every Call-ID, tag and branch we mint.
        rules: the configuration whose rules route every out-of-dialog request.
        registrations: the worker's mirror of the registration cache (the runtime applies
            the supervisor's changes to it); a fresh empty one by default.
        sdp: the SDP seam; ``PassThroughSdp`` by default.
        timers: T1/T2/T4 of the transaction layer.
    """

    def __init__(
        self,
        settings: B2buaSettings,
        *,
        shard: int,
        rules: CompiledRules | GatewayConfig,
        registrations: MemoryCache | None = None,
        sdp: SdpSeam | None = None,
        timers: TimerConfig | None = None,
    ) -> None:
        layer = TransactionLayer(timers, shard=shard)
        compiled = rules if isinstance(rules, CompiledRules) else CompiledRules.from_config(rules)
        self._engine = Engine(
            settings,
            shard,
            layer,
            sdp or PassThroughSdp(),
            rules=compiled,
            registrations=MemoryCache() if registrations is None else registrations,
        )
        #: while True, new INVITEs get 503 with Retry-After; calls in progress go on
        self.draining = False

    def set_rules(self, rules: CompiledRules) -> None:
        """Route new requests by ``rules`` (a reload); a call keeps the Decision it got."""
        self._engine.rules = rules

    def call_ids(self) -> list[str]:
        """The Call-IDs (the caller's leg) of the calls in progress."""
        return sorted(call.call_id for call in self._engine.calls)

    @property
    def registrations(self) -> MemoryCache:
        """The mirror of the registration cache this B2BUA reads."""
        return self._engine.registrations

    # -- queries -----------------------------------------------------------------------------

    @property
    def active_calls(self) -> int:
        """The number of calls in progress (including ones winding down)."""
        return len(self._engine.calls)

    @property
    def pending_transactions(self) -> int:
        """Live SIP transactions (a stopping worker waits for its BYEs' answers)."""
        return len(self._engine.layer)

    def next_deadline(self) -> float | None:
        """When ``handle_timeout`` must next be called, or None."""
        deadlines = [self._engine.layer.next_deadline(), self._engine.next_deadline()]
        present = [d for d in deadlines if d is not None]
        return min(present) if present else None

    # -- inputs ------------------------------------------------------------------------------

    def receive_bytes(self, data: bytes, source: Peer, now: float, *, interface: str) -> Output:
        """Take one whole SIP message (a datagram, a WebSocket message, a framed message)
        received from ``source`` on the configured interface named ``interface``.

        Returns:
            The messages to send and the notices; see the module docstring, Rule 3.
        """
        engine = self._engine
        engine.begin(now)
        engine.interface = interface
        try:
            message = parse_message(data)
        except SipParseError as exc:
            self._reject_unparseable(data, source, exc)
            return engine.output()
        try:
            engine.absorb(engine.layer.receive(message, source, now))
        except RemoteProtocolError as exc:
            if isinstance(message, Request) and message.method != "ACK":
                response = make_response(message, exc.status_hint, to_tag=engine.fresh_tag())
                engine.outgoing.append(Outgoing(response, source))
            engine.notice(MessageDropped("invalid", str(exc), _call_id(message)))
            return engine.output()
        self._drain()
        return engine.output()

    def handle_timeout(self, now: float) -> Output:
        """Fire every transaction and call timer due at ``now``."""
        engine = self._engine
        engine.begin(now)
        engine.absorb(engine.layer.handle_timeout(now))
        self._drain()
        for call in engine.due_calls(now):
            if call in engine.calls:
                on_call_timers(engine, call)
                self._drain()
        for memo_key in [k for k, m in engine.auth_memos.items() if m.expires_at < now]:
            del engine.auth_memos[memo_key]
        return engine.output()

    def binding_removed(self, binding: Binding, reason: str, now: float) -> Output:
        """The cache dropped ``binding`` (its connection closed, it expired): unregister
        it upstream if this worker registered it."""
        engine = self._engine
        engine.begin(now)
        unregister_upstream(engine, binding, reason)
        return engine.output()

    def connection_closed(self, connection_id: int, now: float) -> Output:
        """A WebSocket/TCP/TLS connection went away: end the calls that used it, forget
        the REGISTER relays in progress over it."""
        engine = self._engine
        engine.begin(now)
        engine.absorb(engine.layer.handle_timeout(now))
        self._drain()
        for call in list(engine.calls):
            for leg in (call.a, call.b):
                if leg.peer.connection_id == connection_id and call in engine.calls:
                    hang_up(engine, call, EndReason.CONNECTION_CLOSED, gone=leg)
                    self._drain()
        in_flight = engine.registrations_in_flight
        for reg_key in [k for k, r in in_flight.items() if r.connection_id == connection_id]:
            del in_flight[reg_key]
        return engine.output()

    def shutdown(self, now: float) -> Output:
        """End every call from our side: BYE on answered legs, 503 to an unanswered
        caller, CANCEL toward an unanswered callee (a clean stop, not a crash)."""
        engine = self._engine
        engine.begin(now)
        engine.absorb(engine.layer.handle_timeout(now))
        self._drain()
        for call in list(engine.calls):
            if call in engine.calls:
                hang_up(engine, call, EndReason.SHUTDOWN, caller_status=503)
                self._drain()
        return engine.output()

    def end_call(self, call_id: str, reason: EndReason, now: float) -> Output:
        """End the call whose A-leg Call-ID is ``call_id`` from our side (the media relay
        saw no packets for the media timeout): BYE both legs, as ``shutdown`` does."""
        engine = self._engine
        engine.begin(now)
        for call in list(engine.calls):
            if call.call_id == call_id:
                hang_up(engine, call, reason, caller_status=408)
                self._drain()
        return engine.output()

    def dtmf_to_client(self, call_id: str, digit: DtmfDigit, now: float) -> Output:
        """Send ``digit``, which the SIP side sent as RFC 4733 on the call whose A-leg
        Call-ID is ``call_id``, to its client as INFO, if its rules ask for that."""
        engine = self._engine
        engine.begin(now)
        for call in engine.calls:
            if call.call_id == call_id and call.decision.dtmf_info_to_browser:
                send_dtmf_info(engine, call, digit)
                self._drain()
                break
        return engine.output()

    def transport_failed(self, outgoing: Outgoing, now: float) -> Output:
        """The runtime could not deliver ``outgoing``: fail its transaction."""
        engine = self._engine
        engine.begin(now)
        message = outgoing.message
        via = message.top_via
        key: ClientTransactionKey | ServerTransactionKey
        if isinstance(message, Request):
            if message.method == "ACK":
                return engine.output()
            key = ClientTransactionKey(via.branch or "", message.method)
        else:
            key = ServerTransactionKey(
                via.branch or "", via.host.lower(), via.port, message.cseq.method
            )
        engine.absorb(engine.layer.transport_failed(key, now))
        self._drain()
        return engine.output()

    # -- event handling ----------------------------------------------------------------------

    def _drain(self) -> None:
        engine = self._engine
        while engine.events:
            self._dispatch(engine.events.popleft())

    def _dispatch(self, event: Event) -> None:
        engine = self._engine
        match event:
            case RequestReceived(key, request, source):
                try:
                    self._on_request(key, request, source)
                except RemoteProtocolError as exc:
                    engine.reject(key, request, exc.status_hint)
            case AckReceived(request, _source):
                found = engine.legs.get((request.call_id, request.to_tag or ""))
                if found is None:
                    engine.notice(MessageDropped("stray_ack", "no such dialog", request.call_id))
                else:
                    on_in_dialog_ack(engine, found[0], found[1], request)
            case CancelReceived(invite_key, _request, _source):
                context = engine.servers.get(invite_key)
                if context is None or context.call is None:
                    return
                if context.purpose is Purpose.INVITE:
                    on_cancel(engine, context.call)
                elif context.purpose is Purpose.RELAY:
                    on_relay_cancel(engine, invite_key, context)
            case ResponseReceived(key, response, _source):
                client = engine.clients.get(key)
                if client is not None:
                    self._on_response(client, response)
            case StrayResponseReceived(response, _source):
                engine.notice(
                    MessageDropped("stray_response", str(response.status), response.call_id)
                )
            case TransactionTimedOut(key, _timer):
                client = engine.clients.get(key) if isinstance(key, ClientTransactionKey) else None
                if client is not None:
                    self._on_response(client, _synthetic(client.request, 408), EndReason.TIMEOUT)
            case TransportFailed(key):
                if isinstance(key, ClientTransactionKey):
                    client = engine.clients.get(key)
                    if client is not None:
                        failed = _synthetic(client.request, 503)
                        self._on_response(client, failed, EndReason.TRANSPORT_FAILED)
                    return
                engine.servers.pop(key, None)
                call = _call_answering(engine, key)
                if call is not None:
                    hang_up(engine, call, EndReason.TRANSPORT_FAILED, gone=call.a)
            case TransactionTerminated(key):
                if isinstance(key, ClientTransactionKey):
                    engine.clients.pop(key, None)
                else:
                    engine.servers.pop(key, None)
            case _:
                assert_never(event)

    def _on_request(self, key: ServerTransactionKey, request: Request, source: Peer) -> None:
        engine = self._engine
        method = request.method
        to_tag = request.to_tag
        if to_tag is not None:
            found = engine.legs.get((request.call_id, to_tag))
            if found is None:
                engine.reject(key, request, 481)
            else:
                on_in_dialog_request(engine, found[0], found[1], key, request)
            return
        if method == "INVITE" and self.draining:
            # RFC 3261 21.5.4: the caller may retry (elsewhere, or here after the drain).
            retry = Header("Retry-After", str(DRAIN_RETRY_AFTER_S))
            engine.reject(key, request, 503, headers=(retry,))
        elif method == "INVITE":
            on_initial_invite(engine, key, request, source)
        elif method == "REGISTER":
            on_register(engine, key, request, source)
        elif method == "MESSAGE":
            on_message(engine, key, request, source)
        elif method == "OPTIONS":
            self._on_options(key, request, source)
        elif method not in KNOWN_METHODS:
            engine.reject(key, request, 501, headers=(Header("Allow", ALLOW),))
        elif method in ("BYE", "UPDATE", "PRACK", "INFO", "NOTIFY"):
            engine.reject(key, request, 481)
        else:
            engine.reject(key, request, 405, headers=(Header("Allow", ALLOW),))

    def _on_options(self, key: ServerTransactionKey, request: Request, source: Peer) -> None:
        """Keep-alive pings (RFC 3261 11.2) are answered here, whatever Max-Forwards
        says, once the rules admit the source (a ``reply`` rule may answer instead)."""
        engine = self._engine
        decision = decide_request(engine, request, source)
        if decision.source_agent is None:
            engine.reject(key, request, 403)
        elif decision.reply is not None:
            engine.reject(key, request, *decision.reply)
        else:
            headers = (
                Header("Allow", ALLOW),
                Header("Accept", "application/sdp"),
                Header("Supported", "timer"),
                Header("Server", engine.settings.user_agent),
            )
            engine.respond(
                key, make_response(request, 200, to_tag=engine.fresh_tag(), headers=headers)
            )

    def _on_response(
        self, context: ClientContext, response: Response, failed: EndReason | None = None
    ) -> None:
        """Handle ``response``; ``failed`` says it stands for a timeout or a transport
        failure (RFC 3261 8.1.3.1), which is also why the call ends if it does."""
        engine = self._engine
        call = context.call
        match context.purpose:
            case Purpose.INVITE:
                if call is not None and call.b.invite is context.request:
                    on_invite_response(engine, call, response, failure=failed)
            case Purpose.RELAY:
                on_relay_response(engine, context, response)
                leg = context.leg
                confirmed = call is not None and call.state is CallState.CONFIRMED
                if failed is not None and confirmed and leg is not None:
                    assert call is not None
                    hang_up(engine, call, failed, gone=leg)  # the peer is unreachable
            case Purpose.REFRESH:
                on_refresh_response(engine, context, response)
            case Purpose.REGISTER:
                on_register_response(engine, context, response)
            case Purpose.MESSAGE:
                on_message_response(engine, context, response)
            case Purpose.CANCEL | Purpose.BYE | Purpose.PRACK | Purpose.ACK_AND_BYE | Purpose.INFO:
                pass
            case _:
                assert_never(context.purpose)

    # -- unparseable input ---------------------------------------------------------------------

    def _reject_unparseable(self, data: bytes, source: Peer, exc: SipParseError) -> None:
        engine = self._engine
        response = _stateless_response(data, exc.status_hint)
        if response is not None:
            engine.outgoing.append(Outgoing(response, source))
            engine.notice(MessageDropped("unparseable_request", str(exc), response.get("Call-ID")))
        else:
            engine.notice(MessageDropped("unparseable", str(exc)))


def _call_id(message: Request | Response) -> str | None:
    return message.get("Call-ID")


def _call_answering(engine: Engine, key: ServerTransactionKey) -> Call | None:
    """The unconfirmed call whose caller's INVITE is server transaction ``key`` (its final
    response may be out already: the 2xx waiting for the ACK), or None."""
    for call in engine.calls:
        if call.a.invite_server_key == key and call.state in _UNCONFIRMED:
            return call
    return None


def _synthetic(request: Request, status: int) -> Response:
    """The response RFC 3261 8.1.3.1 says to act as if received: 408 on a timeout, 503 on
    a transport failure."""
    return make_response(request, status)


def _stateless_response(data: bytes, status: int) -> Response | None:
    """A response to an unparseable request from the header lines we can find, or None
    (a response, an ACK, or too little to address a response with)."""
    text = data.decode("utf-8", "replace")
    head = text.replace("\r\n", "\n").split("\n\n", 1)[0].lstrip("\n")
    lines = head.split("\n")
    start = lines[0].split(" ")
    if len(start) != 3 or start[0].upper().startswith("SIP/") or start[0] == "ACK":
        return None
    found: dict[str, list[str]] = {}
    for line in lines[1:]:
        name, colon, value = line.partition(":")
        if not colon or line[:1] in (" ", "\t"):
            continue
        key = canonical_name(name)
        if key in _STATELESS_HEADERS:
            found.setdefault(key, []).append(value.strip())
    if any(len(found.get(k, [])) != 1 for k in _STATELESS_HEADERS[1:]) or not found.get("via"):
        return None
    headers = [Header("Via", v) for v in found["via"]]
    headers += [
        Header(k.title() if k != "call-id" else "Call-ID", found[k][0])
        for k in _STATELESS_HEADERS[1:]
    ]
    headers.append(Header("Content-Length", "0"))
    try:
        return Response(status, reason_phrase(status), tuple(headers))
    except (RemoteProtocolError, ValueError):
        return None
