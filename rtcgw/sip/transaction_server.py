"""Server transactions: what the INVITE and non-INVITE server machines do on each transition.

The states and transitions are in ``rtcgw.sip.transaction`` (``TRANSITIONS``); this module
says what each transition does, and holds the two server-transport rules the layer applies
to every received request (RFC 3261 section 18.2): stamping ``received`` / ``rport`` into
the top Via, and choosing where responses go.

Who sends 100 Trying: the transaction user. RFC 3261 17.2.1 has the INVITE server
transaction send one after 200 ms "unless it knows that the TU will generate a provisional
or final response within 200 ms"; rtcgw's B2BUA answers every INVITE with 100 at once
(DESIGN.md section 3), so the transaction never generates responses on its own and needs
no 200 ms timer.

No I/O, no clock: every method takes ``now`` and returns actions.
"""

from __future__ import annotations

from typing import final

from rtcgw.sip.errors import LocalProtocolError
from rtcgw.sip.events import AckReceived, Outgoing, ServerTransactionKey, TransactionTimedOut
from rtcgw.sip.headers import split_header_values
from rtcgw.sip.message import Header, Request, Response
from rtcgw.sip.timers import TimerConfig, TimerName
from rtcgw.sip.transaction import (
    Action,
    Report,
    Role,
    Send,
    TransactionBase,
    TransactionKind,
    TransactionState,
    Trigger,
    trigger_of_status,
)
from rtcgw.sip.transport import Peer, Transport

__all__ = ["ServerTransaction", "response_destination", "stamp_via"]

_S = TransactionState

#: RFC 3261 18.2.2 / 19.1.2: the port used when sent-by has none.
_DEFAULT_PORT = {Transport.UDP: 5060, Transport.TCP: 5060, Transport.TLS: 5061}


def _bare_host(host: str) -> str:
    return host[1:-1] if host.startswith("[") and host.endswith("]") else host


def stamp_via(request: Request, source: Peer) -> Request:
    """The request with ``received`` and ``rport`` set in its top Via, as a server
    transport does on receipt.

    RFC 3261 18.2.1: "If the host portion of the "sent-by" field contains a domain name, or
    if it contains an IP address that differs from the packet source address, the server
    MUST add a "received" parameter to that Via header field value." RFC 3581 section 4:
    when the top Via has an empty ``rport``, "the server MUST ... set the value of the
    rport parameter to the source port of the request" (and add ``received`` as well).
    Responses built from the stamped request (``make_response`` copies Via) then carry
    what the client needs to see.

    Raises:
        SipParseError: the request has no parseable Via.
    """
    via = request.top_via
    stamped = via
    source_host = _bare_host(source.host)
    wants_rport = via.has_rport and via.rport is None
    if _bare_host(via.host).lower() != source_host.lower() or wants_rport:
        stamped = stamped.with_param("received", source_host)
    if wants_rport:
        stamped = stamped.with_param("rport", str(source.port))
    if stamped is via:
        return request
    return _with_top_via(request, str(stamped))


def _with_top_via(request: Request, value: str) -> Request:
    headers = list(request.headers)
    for index, header in enumerate(headers):
        if header.key == "via":
            rest = split_header_values(header.value, where=header.name)[1:]
            headers[index] = Header(header.name, ", ".join([value, *rest]))
            break
    return Request(
        method=request.method,
        uri=request.uri,
        headers=tuple(headers),
        body=request.body,
        version=request.version,
    )


def response_destination(request: Request, source: Peer) -> Peer:
    """Where responses to ``request`` go (RFC 3261 18.2.2, RFC 3581 section 4).

    Reliable transports (TCP, TLS, WS, WSS): back over the connection the request came on,
    i.e. ``source`` with its ``connection_id`` ("the response MUST be sent using the
    existing connection to the source of the original request"); the runtime may open a
    new connection to the same address if that one has closed.

    UDP: to the source address (which is ``received``, or sent-by when they are equal),
    at the source port when the request asked for ``rport``, else at the sent-by port
    (default 5060). ``maddr`` (multicast) is not supported and is ignored.
    """
    if source.transport.reliable:
        return source
    via = request.top_via
    if via.has_rport:
        port = source.port
    else:
        port = via.port if via.port is not None else _DEFAULT_PORT[Transport.UDP]
    return Peer(source.transport, source.host, port)


@final
class ServerTransaction(TransactionBase):
    """One INVITE or non-INVITE server transaction (RFC 3261 17.2, RFC 6026 8.7).

    Attributes:
        request: the request that created the transaction, Via stamped.
        source: where it came from.
        destination: where responses go (``response_destination``).
    """

    __slots__ = (
        "_interval_s",
        "_last",
        "_last_response",
        "destination",
        "request",
        "server_key",
        "source",
    )

    def __init__(
        self, key: ServerTransactionKey, request: Request, source: Peer, config: TimerConfig
    ) -> None:
        kind = TransactionKind.of(Role.UAS, request.method)
        super().__init__(kind, key, reliable=source.transport.reliable, config=config)
        self.server_key = key
        self.request = request
        self.source = source
        self.destination = response_destination(request, source)
        self._last: Outgoing | None = None
        self._last_response: Response | None = None
        self._interval_s = 0.0

    @property
    def last_response(self) -> Response | None:
        """The most recent response sent, resent on request retransmissions."""
        return self._last_response

    def respond(self, response: Response, now: float) -> list[Action]:
        """The transaction user sends ``response`` (17.2.1, 17.2.2, RFC 6026 8.7).

        Raises:
            LocalProtocolError: the response's CSeq does not belong to this transaction,
                or the state does not allow it (a final after a final, a provisional
                after the 2xx); the message names the key, the state and the status.
        """
        cseq = response.cseq
        if cseq.method != self.request.method or cseq.seq != self.request.cseq.seq:
            raise LocalProtocolError(
                f"response {response.status} with CSeq {cseq} does not belong to "
                f"{self.server_key} (CSeq {self.request.cseq})"
            )
        trigger = trigger_of_status(response.status, received=False)
        previous = self.state
        new = self.advance(trigger, what=f"response {response.status}")
        self._last = Outgoing(response, self.destination)
        self._last_response = response
        actions: list[Action] = [Send(self._last)]
        if new is previous:
            return actions  # another provisional, or the TU's 2xx retransmission (Accepted)
        if new is _S.ACCEPTED:
            # RFC 6026 8.7: "the server transaction MUST transition to the Accepted state
            # ... and Timer L MUST be set to fire in 64*T1".
            actions.extend(self.arm_initial(TimerName.L, now))
        elif new is _S.COMPLETED and self.kind.invite:
            # 17.2.1: Timer G (unreliable only) "with a value of T1", Timer H 64*T1.
            interval = self.config.initial_interval(TimerName.G, reliable=self.reliable)
            if interval is not None:
                self._interval_s = interval
                actions.append(self.arm(TimerName.G, interval, now))
            actions.extend(self.arm_initial(TimerName.H, now))
        elif new is _S.COMPLETED:
            # 17.2.2: Timer J, 64*T1 on unreliable transports, zero on reliable ones.
            actions.extend(self.arm_initial(TimerName.J, now))
        return actions

    def receive_request(self) -> list[Action]:
        """The request arrived again: resend the last response where the RFC says to.

        17.2.1 (Proceeding, Completed) and 17.2.2 (Proceeding, Completed) resend "the most
        recently sent" response; Trying has nothing to resend; Confirmed and Accepted
        absorb (RFC 6026 8.7: retransmissions "are not passed onto the TU").
        """
        self.advance(Trigger.RECEIVED_REQUEST)
        if self.state in (_S.PROCEEDING, _S.COMPLETED) and self._last is not None:
            return [Send(self._last)]
        return []

    def receive_ack(self, request: Request, source: Peer, now: float) -> list[Action]:
        """An ACK matched this INVITE server transaction (17.2.1, RFC 6026 8.7)."""
        previous = self.state
        self.advance(Trigger.RECEIVED_ACK)
        if previous is _S.COMPLETED:
            # 17.2.1: "the server transaction MUST transition to the Confirmed state"
            # and start Timer I (T4 on unreliable transports, zero on reliable ones).
            return self.arm_initial(TimerName.I, now)
        if previous is _S.ACCEPTED:
            return [Report(AckReceived(request, source))]
        return []

    def on_timer(self, name: TimerName, now: float) -> list[Action]:
        """Timer G retransmits the final; H times out; I, J, L end the transaction."""
        self.advance(name)
        if name is TimerName.G and self._last is not None:
            # 17.2.1: "the response is passed to the transport layer once more ... and
            # timer G is reset with a value of MIN(2*T1, T2)" (doubling each time).
            self._interval_s = self.config.next_interval(
                name, self._interval_s, in_proceeding=False
            )
            return [Send(self._last), self.arm(name, self._interval_s, now)]
        if name is TimerName.H:
            return [Report(TransactionTimedOut(self.key, name))]
        return []
