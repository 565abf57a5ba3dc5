"""Client transactions: what the INVITE and non-INVITE client machines do on each transition.

The states and transitions are in ``rtcgw.sip.transaction`` (``TRANSITIONS``); this module
says what each transition does (send, arm a timer, report) and builds the two requests a
client needs besides its own: the ACK for a non-2xx final response (RFC 3261 17.1.1.3),
which the INVITE client transaction sends itself, and the CANCEL (RFC 3261 9.1), which the
transaction user sends as a transaction of its own.

No I/O, no clock: every method takes ``now`` and returns actions.
"""

from __future__ import annotations

from typing import final

from rtcgw.sip.errors import LocalProtocolError
from rtcgw.sip.events import (
    ClientTransactionKey,
    Outgoing,
    ResponseReceived,
    TransactionTimedOut,
)
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
from rtcgw.sip.transport import Peer

__all__ = ["ClientTransaction", "make_cancel", "make_non2xx_ack"]

#: RFC 3261 8.1.1.6: "a default value of 70" for Max-Forwards.
_MAX_FORWARDS = "70"

_S = TransactionState


def _hop_headers(request: Request, method: str, to_value: str) -> list[Header]:
    """The headers ACK and CANCEL copy from the request they belong to (17.1.1.3, 9.1)."""
    via = request.values("Via")
    from_value = request.get("From")
    if not via or from_value is None:
        raise LocalProtocolError(f"{request.method} request lacks Via or From")
    headers = [
        Header("Via", via[0]),
        Header("Max-Forwards", _MAX_FORWARDS),
        Header("From", from_value),
        Header("To", to_value),
        Header("Call-ID", request.call_id),
        Header("CSeq", f"{request.cseq.seq} {method}"),
    ]
    headers.extend(Header("Route", value) for value in request.values("Route"))
    headers.append(Header("Content-Length", "0"))
    return headers


def make_non2xx_ack(request: Request, response: Response) -> Request:
    """The ACK for a 300-699 final response to ``request`` (RFC 3261 17.1.1.3).

    "The Request-URI ... MUST be equal to the Request-URI of the original request",
    Call-ID, From and the CSeq number are the INVITE's with method ACK, To is the
    response's (it carries the UAS's tag), the single Via is the INVITE's top Via, and the
    Route headers are the INVITE's.

    Raises:
        LocalProtocolError: ``request`` is not an INVITE or ``response`` is not 300-699.
    """
    if request.method != "INVITE" or not 300 <= response.status <= 699:
        raise LocalProtocolError(
            f"an ACK is built for a 300-699 response to INVITE, not {response.status} "
            f"to {request.method}"
        )
    to_value = response.get("To")
    if to_value is None:
        raise LocalProtocolError("the response has no To header")
    headers = tuple(_hop_headers(request, "ACK", to_value))
    return Request(method="ACK", uri=request.uri, headers=headers)


def make_cancel(request: Request) -> Request:
    """A CANCEL for ``request`` (RFC 3261 9.1).

    "The Request-URI, Call-ID, To, the numeric part of CSeq, and From header fields in the
    CANCEL request MUST be identical to those in the request being cancelled, including
    tags", its single Via equals the request's top Via (same branch, so the server can
    match it) and it carries the request's Route headers. Send it with
    ``TransactionLayer.start_client`` only after a provisional response arrived ("If no
    provisional response has been received, the CANCEL request MUST NOT be sent").

    Raises:
        LocalProtocolError: for ACK and CANCEL, which cannot be cancelled.
    """
    if request.method in ("ACK", "CANCEL"):
        raise LocalProtocolError(f"a {request.method} request cannot be cancelled")
    to_value = request.get("To")
    if to_value is None:
        raise LocalProtocolError("the request has no To header")
    return Request(
        method="CANCEL", uri=request.uri, headers=tuple(_hop_headers(request, "CANCEL", to_value))
    )


@final
class ClientTransaction(TransactionBase):
    """One INVITE or non-INVITE client transaction (RFC 3261 17.1, RFC 6026 8.4).

    Attributes:
        request: the request as first sent.
        destination: where the request (and a non-2xx ACK) goes.
    """

    __slots__ = ("_ack", "_interval_s", "_request_out", "client_key", "destination", "request")

    def __init__(
        self, key: ClientTransactionKey, request: Request, destination: Peer, config: TimerConfig
    ) -> None:
        kind = TransactionKind.of(Role.UAC, request.method)
        super().__init__(kind, key, reliable=destination.transport.reliable, config=config)
        self.client_key = key
        self.request = request
        self.destination = destination
        self._request_out = Outgoing(request, destination)
        self._ack: Outgoing | None = None
        self._interval_s = 0.0

    def start(self, now: float) -> list[Action]:
        """Send the request, arm the retransmission timer (A or E, unreliable transports
        only) and the timeout (B or F): 17.1.1.2 and 17.1.2.2."""
        retransmit, timeout = (
            (TimerName.A, TimerName.B) if self.kind.invite else (TimerName.E, TimerName.F)
        )
        actions: list[Action] = [Send(self._request_out)]
        interval = self.config.initial_interval(retransmit, reliable=self.reliable)
        if interval is not None:
            self._interval_s = interval
            actions.append(self.arm(retransmit, interval, now))
        actions.extend(self.arm_initial(timeout, now))
        return actions

    def receive_response(self, response: Response, source: Peer, now: float) -> list[Action]:
        """A response matched this transaction (17.1.3)."""
        trigger = trigger_of_status(response.status, received=True)
        previous = self.state
        new = self.advance(trigger, what=f"response {response.status}")
        report = Report(ResponseReceived(self.client_key, response, source))
        waiting = previous in (_S.CALLING, _S.TRYING, _S.PROCEEDING)
        if self.kind.invite:
            return self._invite_response(
                response, trigger=trigger, waiting=waiting, new=new, report=report, now=now
            )
        if not waiting:
            return []  # Completed absorbs retransmissions (17.1.2.2)
        if new is _S.COMPLETED:
            return [*self.arm_initial(TimerName.K, now), report]
        return [report]

    def _invite_response(
        self,
        response: Response,
        *,
        trigger: Trigger,
        waiting: bool,
        new: TransactionState,
        report: Report,
        now: float,
    ) -> list[Action]:
        if waiting:
            if new is _S.PROCEEDING:
                return [report]
            if new is _S.ACCEPTED:
                # RFC 6026 8.4: "the client transaction MUST transition to the Accepted
                # state, and Timer M MUST be started with a value of 64*T1".
                return [*self.arm_initial(TimerName.M, now), report]
            # 17.1.1.2: "the client transaction MUST ... generate an ACK request ... and
            # pass it to the transport layer", start Timer D, pass the response up.
            self._ack = Outgoing(make_non2xx_ack(self.request, response), self.destination)
            return [Send(self._ack), *self.arm_initial(TimerName.D, now), report]
        if new is _S.ACCEPTED and trigger is Trigger.RECEIVED_2XX:
            return [report]  # RFC 6026 8.4: every 2xx goes to the TU, which ACKs it
        if new is _S.COMPLETED and trigger is Trigger.RECEIVED_300_699 and self._ack:
            # 17.1.1.2: "Any retransmissions of the final response that are received while
            # in the Completed state MUST cause the ACK to be re-passed to the transport
            # layer for retransmission, but the newly received response MUST NOT be passed
            # up to the TU."
            return [Send(self._ack)]
        return []

    def on_timer(self, name: TimerName, now: float) -> list[Action]:
        """Timers A, E retransmit; B, F time out; D, K, M end the transaction."""
        self.advance(name)
        if name in (TimerName.A, TimerName.E):
            self._interval_s = self.config.next_interval(
                name, self._interval_s, in_proceeding=self.state is _S.PROCEEDING
            )
            return [Send(self._request_out), self.arm(name, self._interval_s, now)]
        if name in (TimerName.B, TimerName.F):
            return [Report(TransactionTimedOut(self.key, name))]
        return []
