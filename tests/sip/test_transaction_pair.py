"""A UAC layer and a UAS layer talking over a fake network (h11 ``ConnectionPair`` spirit).

Each side has a small transaction user. The network can drop and duplicate datagrams with
a seeded ``random.Random``; the tests assert what each side observes: every request
reaches the UAS's TU once, every final reaches the UAC's TU once (2xx excepted: RFC 6026
passes each one up), and everything terminates.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

import pytest

from rtcgw.sip.dialog import Dialog
from rtcgw.sip.events import (
    AckReceived,
    CancelReceived,
    ClientTransactionKey,
    Event,
    Outgoing,
    RequestReceived,
    ResponseReceived,
    ServerTransactionKey,
    TransactionTerminated,
    TransactionTimedOut,
)
from rtcgw.sip.headers import Via
from rtcgw.sip.ids import new_branch
from rtcgw.sip.message import Request, Response
from rtcgw.sip.timers import TimerName
from rtcgw.sip.transaction import TransactionState
from rtcgw.sip.transaction_client import make_cancel
from rtcgw.sip.transport import Peer, Transport
from tests.sip.helpers import ALICE, BOB, T1, T2, Network, Node, make_request, respond_to

SEEDS = range(40)


@dataclass
class Callee:
    """UAS transaction user: 100 Trying at once (as the B2BUA does), provisionals, then
    ``final`` after ``delay_s``; retransmits a 2xx until ACKed (RFC 3261 13.3.1.4);
    answers a CANCELled INVITE with 487."""

    final: int = 486
    provisionals: tuple[int, ...] = ()
    delay_s: float = 0.0
    requests: list[Request] = field(default_factory=list)
    by_key: dict[ServerTransactionKey, Request] = field(default_factory=dict)
    acks: int = 0
    answered: set[ServerTransactionKey] = field(default_factory=set)

    def __call__(self, node: Node, event: Event) -> None:
        match event:
            case RequestReceived(key, request, _):
                self.requests.append(request)
                self.by_key[key] = request
                if request.method == "INVITE":
                    self._send(node, key, respond_to(request, 100, to_tag=None))
                    for status in self.provisionals:
                        self._send(node, key, respond_to(request, status))
                final = self.final if request.method == "INVITE" else 200
                node.network.call_at(
                    node.network.now + self.delay_s,
                    lambda: self._final(node, key, request, final),
                )
            case AckReceived():
                self.acks += 1
            case CancelReceived(invite_key, _, _):
                self._final(node, invite_key, self.by_key[invite_key], 487)
            case _:
                pass

    def _send(self, node: Node, key: ServerTransactionKey, response: Response) -> None:
        node.handle(node.layer.respond(key, response, node.network.now))

    def _final(self, node: Node, key: ServerTransactionKey, request: Request, status: int) -> None:
        if key in self.answered or node.layer.state(key) is None:
            return
        self.answered.add(key)
        response = respond_to(request, status)
        self._send(node, key, response)
        if 200 <= status < 300:
            self._retransmit_2xx(node, key, response, T1, node.network.now + 64 * T1)

    def _retransmit_2xx(
        self, node: Node, key: ServerTransactionKey, response: Response, interval: float, end: float
    ) -> None:
        def again() -> None:
            if self.acks or node.network.now >= end:
                return
            if node.layer.state(key) is TransactionState.ACCEPTED:
                self._send(node, key, response)
            self._retransmit_2xx(node, key, response, min(2 * interval, T2), end)

        node.network.call_at(node.network.now + interval, again)


@dataclass
class Caller:
    """UAC transaction user: ACKs every 2xx outside the transaction (RFC 6026), and
    optionally CANCELs the INVITE when the first 180 arrives."""

    invite: Request
    destination: Peer
    cancel_on_ringing: bool = False
    acks_sent: int = 0
    responses: list[int] = field(default_factory=list)
    cancel_key: ClientTransactionKey | None = None

    def __call__(self, node: Node, event: Event) -> None:
        if not isinstance(event, ResponseReceived):
            return
        response = event.response
        if event.client_key.method != "INVITE":
            return
        self.responses.append(response.status)
        if response.success:
            dialog = Dialog.from_uac(self.invite, response)
            via = Via.new(
                self.destination.transport, node.address.host, node.address.port, new_branch()
            )
            ack = dialog.create_ack(self.invite.cseq.seq, via)
            self.acks_sent += 1
            node.network.transmit(node, Outgoing(ack, self.destination))
        elif response.status == 180 and self.cancel_on_ringing and self.cancel_key is None:
            cancel = make_cancel(self.invite)
            self.cancel_key, output = node.layer.start_client(
                cancel, self.destination, node.network.now
            )
            node.handle(output)


def call(
    network: Network,
    callee: Callee,
    *,
    method: str = "INVITE",
    transport: Transport = Transport.UDP,
    cancel_on_ringing: bool = False,
) -> tuple[Node, Node, Caller, ClientTransactionKey]:
    alice_address = Peer(transport, ALICE.host, ALICE.port)
    bob_address = Peer(transport, BOB.host, BOB.port)
    request = make_request(method, via_transport=transport)
    caller = Caller(request, bob_address, cancel_on_ringing=cancel_on_ringing)
    alice = network.add("alice", alice_address, caller)
    network.add("bob", bob_address, callee)
    key, output = alice.layer.start_client(request, bob_address, network.now)
    alice.handle(output)
    return alice, network.nodes[(BOB.host, BOB.port)], caller, key


def finals(node: Node, key: ClientTransactionKey) -> list[int]:
    return [
        e.response.status
        for _, e in node.events
        if isinstance(e, ResponseReceived) and e.client_key == key and e.response.final
    ]


def timed_out(node: Node) -> list[TimerName]:
    return [e.timer for _, e in node.events if isinstance(e, TransactionTimedOut)]


def terminated_count(node: Node) -> int:
    return sum(isinstance(e, TransactionTerminated) for _, e in node.events)


# -- a clean network ------------------------------------------------------------------------------


def test_rejected_invite_over_udp() -> None:
    network = Network()
    callee = Callee(final=486)
    alice, bob, caller, _key = call(network, callee)
    network.run_until_idle()

    assert caller.responses == [100, 486]
    assert len(callee.requests) == 1
    assert callee.acks == 0  # the non-2xx ACK is absorbed by the server transaction
    assert network.methods_delivered() == ["INVITE", 100, 486, "ACK"]
    assert timed_out(alice) == timed_out(bob) == []
    # Both ends end by their timers: D (>= 32 s) on the client, I (T4) on the server.
    (client_end,) = [t for t, e in alice.events if isinstance(e, TransactionTerminated)]
    (server_end,) = [t for t, e in bob.events if isinstance(e, TransactionTerminated)]
    assert client_end == pytest.approx(0.02 + 32.0)
    assert server_end == pytest.approx(0.03 + 5.0)
    assert len(alice.layer) == len(bob.layer) == 0


def test_accepted_invite_over_udp_acks_outside_the_transaction() -> None:
    network = Network()
    callee = Callee(final=200, provisionals=(180,))
    alice, bob, caller, _key = call(network, callee)
    network.run_until_idle()

    assert caller.responses == [100, 180, 200]
    assert caller.acks_sent == 1
    assert callee.acks == 1  # AckReceived: the 2xx ACK goes to the TU
    assert network.methods_delivered() == ["INVITE", 100, 180, 200, "ACK"]
    # Accepted on both sides, ended by Timers M and L (64*T1).
    (client_end,) = [t for t, e in alice.events if isinstance(e, TransactionTerminated)]
    (server_end,) = [t for t, e in bob.events if isinstance(e, TransactionTerminated)]
    assert client_end == pytest.approx(0.02 + 64 * T1)
    assert server_end == pytest.approx(0.01 + 64 * T1)


def test_cancelled_invite() -> None:
    network = Network()
    callee = Callee(final=200, provisionals=(180,), delay_s=30.0)
    alice, bob, caller, _key = call(network, callee, cancel_on_ringing=True)
    network.run_until_idle()

    assert caller.cancel_key is not None
    assert finals(alice, caller.cancel_key) == [200]
    assert caller.responses == [100, 180, 487]
    assert [type(e) for _, e in bob.events].count(CancelReceived) == 1
    assert callee.acks == 0
    assert network.methods_delivered().count("ACK") == 1  # the 487's ACK, by the transaction
    assert len(alice.layer) == len(bob.layer) == 0


@pytest.mark.parametrize("transport", [Transport.TCP, Transport.WS])
def test_reliable_transport_sends_each_message_once_and_ends_at_once(transport: Transport) -> None:
    network = Network()
    callee = Callee(final=486, delay_s=10.0)
    alice, bob, _caller, _key = call(network, callee, transport=transport)
    network.run_until_idle()

    # 10 s of waiting and not one retransmission: Timers A and G do not run.
    assert network.methods_delivered() == ["INVITE", 100, 486, "ACK"]
    (client_end,) = [t for t, e in alice.events if isinstance(e, TransactionTerminated)]
    (server_end,) = [t for t, e in bob.events if isinstance(e, TransactionTerminated)]
    assert client_end == pytest.approx(10.02)  # D = 0: ends with the 486
    assert server_end == pytest.approx(10.03)  # I = 0: ends with the ACK
    (request,) = callee.requests
    assert request.top_via.transport == transport.value


def test_slow_answer_over_udp_is_retransmitted_then_absorbed() -> None:
    network = Network()
    callee = Callee(final=200, delay_s=2.0)
    alice, _bob, _caller, key = call(network, callee, method="OPTIONS")
    network.run_until_idle()

    delivered = network.methods_delivered()
    # Timer E: 0, 0.5, 1.5 before the answer at ~2 s; the UAS absorbed the copies.
    assert delivered.count("OPTIONS") == 3
    assert len(callee.requests) == 1
    assert finals(alice, key) == [200]


# -- a terrible network (seeded) ------------------------------------------------------------------


@pytest.mark.parametrize("seed", SEEDS)
def test_non_invite_over_a_lossy_network(seed: int) -> None:
    network = Network(rng=random.Random(seed), loss=0.3, duplicate=0.2)
    callee = Callee(delay_s=0.7)
    alice, bob, _, key = call(network, callee, method="OPTIONS")
    network.run_until_idle()

    # Retransmissions recover the losses and never reach either TU twice.
    assert len(callee.requests) == 1
    assert finals(alice, key) == [200]
    assert timed_out(alice) == []
    assert len(alice.layer) == len(bob.layer) == 0
    assert terminated_count(alice) == 1


@pytest.mark.parametrize("seed", SEEDS)
def test_rejected_invite_over_a_lossy_network(seed: int) -> None:
    network = Network(rng=random.Random(seed), loss=0.3, duplicate=0.2)
    callee = Callee(final=603)
    alice, bob, _caller, key = call(network, callee)
    network.run_until_idle()

    assert len(callee.requests) == 1
    assert finals(alice, key) == [603]
    assert timed_out(alice) == []
    # The server ends by the ACK (Confirmed, Timer I) or by Timer H; never twice.
    server_timeouts = timed_out(bob)
    assert server_timeouts in ([], [TimerName.H])
    assert callee.acks == 0
    assert len(alice.layer) == len(bob.layer) == 0


@pytest.mark.parametrize("seed", SEEDS)
def test_accepted_invite_over_a_lossy_network(seed: int) -> None:
    network = Network(rng=random.Random(seed), loss=0.2, duplicate=0.2)
    callee = Callee(final=200)
    alice, bob, caller, _key = call(network, callee)
    network.run_until_idle()

    twos = caller.responses.count(200)
    # RFC 6026: every 2xx copy that arrives in Accepted reaches the TU, which ACKs each;
    # the callee's 2xx retransmissions (13.3.1.4) get the call through the losses.
    assert twos >= 1
    assert caller.acks_sent == twos
    assert callee.acks >= 1
    assert len(callee.requests) == 1
    assert timed_out(alice) == timed_out(bob) == []
    assert len(alice.layer) == len(bob.layer) == 0


def test_lossy_runs_do_lose_and_duplicate_messages() -> None:
    # Guard against a vacuous fake network: the seeded runs above really lose messages.
    dropped = 0
    for seed in SEEDS:
        network = Network(rng=random.Random(seed), loss=0.3, duplicate=0.2)
        call(network, Callee(final=603))
        network.run_until_idle()
        dropped += network.dropped
    assert dropped > len(SEEDS)


def test_duplicated_non_2xx_final_reaches_the_tu_once() -> None:
    network = Network(duplicate=1.0)  # every datagram arrives twice
    callee = Callee(final=486)
    _, _, caller, _ = call(network, callee)
    network.run_until_idle()
    assert len(callee.requests) == 1
    assert caller.responses.count(486) == 1  # the copy is absorbed in Completed
    assert network.methods_delivered().count("ACK") == 4  # re-ACKed, each ACK duplicated


def test_duplicated_2xx_reaches_the_tu_twice() -> None:
    network = Network(duplicate=1.0)
    callee = Callee(final=200)
    _, _, caller, _ = call(network, callee)
    network.run_until_idle()
    assert len(callee.requests) == 1
    assert caller.responses.count(200) == 2  # both copies go up in Accepted (RFC 6026)
    assert caller.acks_sent == 2
    assert callee.acks == 4  # each ACK duplicated too; a TU absorbs repeated 2xx ACKs
