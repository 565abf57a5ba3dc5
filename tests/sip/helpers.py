"""Test helpers for the SIP transaction and dialog tests: message builders, a fake clock
driver for one ``TransactionLayer``, and a fake network joining several layers.

Everything is sans-IO: time is a float the test advances, "sending" appends to a list, and
the fake network is a discrete-event loop over a heap, with a seeded ``random.Random``
deciding losses and duplicates (trio's "terrible network" test in spirit, without trio).
"""

from __future__ import annotations

import heapq
import itertools
import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TypeVar

from rtcgw.sip.events import Event, Outgoing, Output
from rtcgw.sip.headers import Via
from rtcgw.sip.ids import new_branch
from rtcgw.sip.message import Header, Request, Response, make_response
from rtcgw.sip.parse import parse_message
from rtcgw.sip.timers import TimerConfig
from rtcgw.sip.transaction_layer import TransactionLayer
from rtcgw.sip.transport import Peer, Transport
from rtcgw.sip.uri import parse_uri

#: Documentation addresses (RFC 5737) for the two ends of most tests.
ALICE = Peer(Transport.UDP, "192.0.2.10", 5060)
BOB = Peer(Transport.UDP, "198.51.100.20", 5060)

T1 = TimerConfig().t1_s
T2 = TimerConfig().t2_s
T4 = TimerConfig().t4_s


# -- message builders ----------------------------------------------------------------------


def make_request(
    method: str = "INVITE",
    *,
    branch: str | None = None,
    via_transport: Transport = Transport.UDP,
    via_host: str = "192.0.2.10",
    via_port: int | None = 5060,
    rport: bool = True,
    uri: str = "sip:bob@198.51.100.20",
    call_id: str = "call-1@192.0.2.10",
    from_tag: str | None = "alice-tag",
    to_tag: str | None = None,
    cseq: int = 1,
    cseq_method: str | None = None,
    contact: str | None = "sip:alice@192.0.2.10:5060",
    record_route: Iterable[str] = (),
    route: Iterable[str] = (),
    extra: Iterable[tuple[str, str]] = (),
    body: bytes = b"",
) -> Request:
    """A complete request, Alice to Bob by default, with a fresh magic-cookie branch."""
    via = Via.new(via_transport, via_host, via_port, branch or new_branch())
    if not rport:
        via = via.without_param("rport")
    from_value = "Alice <sip:alice@example.org>" + (f";tag={from_tag}" if from_tag else "")
    to_value = "Bob <sip:bob@example.org>" + (f";tag={to_tag}" if to_tag else "")
    headers = [
        Header("Via", str(via)),
        Header("Max-Forwards", "70"),
        Header("From", from_value),
        Header("To", to_value),
        Header("Call-ID", call_id),
        Header("CSeq", f"{cseq} {cseq_method or method}"),
    ]
    headers.extend(Header("Record-Route", value) for value in record_route)
    headers.extend(Header("Route", value) for value in route)
    if contact is not None:
        headers.append(Header("Contact", f"<{contact}>"))
    headers.extend(Header(name, value) for name, value in extra)
    request = Request(method=method, uri=parse_uri(uri), headers=tuple(headers))
    return request.with_body(body, "application/sdp" if body else None)


def respond_to(
    request: Request,
    status: int,
    *,
    to_tag: str | None = "bob-tag",
    contact: str | None = None,
    record_route: Iterable[str] | None = None,
) -> Response:
    """A response to ``request`` (``make_response``), optionally with Contact and a
    Record-Route replacing the copied one."""
    extra: list[Header] = []
    if contact is not None:
        extra.append(Header("Contact", f"<{contact}>"))
    response = make_response(request, status, to_tag=to_tag, headers=tuple(extra))
    if record_route is not None:
        response = response.without_header("Record-Route")
        for value in record_route:
            response = response.with_header("Record-Route", value)
    return response


M = TypeVar("M", Request, Response)


def wire(message: M) -> M:
    """The message after a trip through bytes and the parser, as the network delivers it."""
    parsed = parse_message(bytes(message))
    assert isinstance(parsed, type(message))
    return parsed


# -- one layer and a fake clock ------------------------------------------------------------


@dataclass
class Driver:
    """One ``TransactionLayer`` with a fake clock, recording everything it emits.

    ``sent`` and ``events`` keep ``(time, item)`` pairs so tests can assert *when* a
    retransmission happened, not only that it did.
    """

    layer: TransactionLayer = field(default_factory=TransactionLayer)
    now: float = 0.0
    sent: list[tuple[float, Outgoing]] = field(default_factory=list)
    events: list[tuple[float, Event]] = field(default_factory=list)

    def record(self, output: Output) -> Output:
        self.sent.extend((self.now, o) for o in output.outgoing)
        self.events.extend((self.now, e) for e in output.events)
        return output

    def receive(self, message: Request | Response, source: Peer) -> Output:
        return self.record(self.layer.receive(parse_message(bytes(message)), source, self.now))

    def advance_to(self, until: float) -> Output:
        """Fire every deadline up to ``until`` at its own time, then set the clock there.

        Returns what those timers produced, merged.
        """
        events: list[Event] = []
        outgoing: list[Outgoing] = []
        while (deadline := self.layer.next_deadline()) is not None and deadline <= until:
            self.now = max(self.now, deadline)
            output = self.record(self.layer.handle_timeout(self.now))
            events.extend(output.events)
            outgoing.extend(output.outgoing)
        self.now = max(self.now, until)
        return Output(tuple(events), tuple(outgoing))

    def advance_by(self, seconds: float) -> Output:
        return self.advance_to(self.now + seconds)

    def run_out(self, limit_s: float = 3600.0) -> Output:
        """Fire timers until none is left (bounded, so a bug cannot loop forever)."""
        output = self.advance_to(self.now + limit_s)
        assert self.layer.next_deadline() is None, "timers still running after the limit"
        return output

    def sent_times(self, method_or_status: str | int) -> list[float]:
        """When messages with this method (requests) or status (responses) were sent."""
        return [t for t, o in self.sent if _label(o.message) == method_or_status]

    def event_types(self) -> list[type[Event]]:
        return [type(e) for _, e in self.events]


def _label(message: Request | Response) -> str | int:
    return message.method if isinstance(message, Request) else message.status


# -- several layers on a fake network -------------------------------------------------------

TransactionUser = Callable[["Node", Event], None]


@dataclass
class Node:
    """One endpoint on the ``Network``: a layer, its address and a transaction user."""

    name: str
    address: Peer
    network: Network
    layer: TransactionLayer
    tu: TransactionUser | None = None
    events: list[tuple[float, Event]] = field(default_factory=list)

    def handle(self, output: Output) -> None:
        for outgoing in output.outgoing:
            self.network.transmit(self, outgoing)
        for event in output.events:
            self.events.append((self.network.now, event))
            if self.tu is not None:
                self.tu(self, event)

    def event_types(self) -> list[type[Event]]:
        return [type(e) for _, e in self.events]

    def of_type(self, kind: type[Event]) -> list[Event]:
        return [e for _, e in self.events if isinstance(e, kind)]


@dataclass
class Network:
    """A discrete-event network: messages arrive after ``latency_s``, may be lost or
    duplicated (seeded), and every node's timers fire at their deadlines.

    Messages travel as bytes and are parsed on arrival, so the tests cover serialisation
    too. Connection-oriented transports are lossless, and the receiver sees a source
    ``Peer`` with a ``connection_id`` per pair of nodes. ``call_at`` lets a transaction
    user act later (answer after a delay, retransmit a 2xx).
    """

    rng: random.Random = field(default_factory=lambda: random.Random(0))
    loss: float = 0.0
    duplicate: float = 0.0
    latency_s: float = 0.01
    now: float = 0.0
    nodes: dict[tuple[str, int], Node] = field(default_factory=dict)
    delivered: list[tuple[float, Request | Response]] = field(default_factory=list)
    dropped: int = 0
    _queue: list[tuple[float, int, Callable[[], None]]] = field(default_factory=list)
    _seq: itertools.count[int] = field(default_factory=itertools.count)
    _connections: dict[frozenset[str], int] = field(default_factory=dict)

    def add(self, name: str, address: Peer, tu: TransactionUser | None = None) -> Node:
        node = Node(name, address, self, TransactionLayer(), tu)
        self.nodes[(address.host, address.port)] = node
        return node

    def call_at(self, when: float, action: Callable[[], None]) -> None:
        heapq.heappush(self._queue, (when, next(self._seq), action))

    def transmit(self, sender: Node, outgoing: Outgoing) -> None:
        destination = outgoing.destination
        receiver = self.nodes[(destination.host, destination.port)]
        connection_id = None
        if destination.transport.reliable:
            pair = frozenset({sender.name, receiver.name})
            connection_id = self._connections.setdefault(pair, len(self._connections) + 1)
        source = Peer(
            destination.transport, sender.address.host, sender.address.port, connection_id
        )
        copies = 1
        if not destination.transport.reliable:
            if self.rng.random() < self.loss:
                self.dropped += 1
                copies = 0
            elif self.rng.random() < self.duplicate:
                copies = 2
        data = outgoing.data

        def deliver() -> None:
            message = parse_message(data)
            self.delivered.append((self.now, message))
            receiver.handle(receiver.layer.receive(message, source, self.now))

        for _ in range(copies):
            self.call_at(self.now + self.latency_s, deliver)

    def _next_time(self) -> float | None:
        times = [self._queue[0][0]] if self._queue else []
        times.extend(d for n in self.nodes.values() if (d := n.layer.next_deadline()) is not None)
        return min(times) if times else None

    def run_until(self, until: float) -> None:
        """Deliver messages, run scheduled actions and fire timers in time order."""
        while (when := self._next_time()) is not None and when <= until:
            self.now = max(self.now, when)
            if self._queue and self._queue[0][0] <= self.now:
                _, _, action = heapq.heappop(self._queue)
                action()
                continue
            for node in self.nodes.values():
                deadline = node.layer.next_deadline()
                if deadline is not None and deadline <= self.now:
                    node.handle(node.layer.handle_timeout(self.now))
        self.now = max(self.now, until)

    def run_until_idle(self, limit_s: float = 3600.0) -> None:
        """Run until nothing is queued and no timer runs (bounded)."""
        self.run_until(self.now + limit_s)
        assert self._next_time() is None, "network still busy after the limit"

    def methods_delivered(self) -> list[str | int]:
        return [_label(m) for _, m in self.delivered]
