"""The transaction layer's own rules: matching (RFC 3261 17.1.3, 17.2.3), CANCEL (9.2),
stray messages, server transport rules (18.2.1, 18.2.2, RFC 3581) and API misuse."""

from __future__ import annotations

import pytest

from rtcgw.sip.errors import LocalProtocolError, RemoteProtocolError
from rtcgw.sip.events import (
    AckReceived,
    CancelReceived,
    ClientTransactionKey,
    Output,
    RequestReceived,
    ResponseReceived,
    Rfc2543Id,
    ServerTransactionKey,
    StrayResponseReceived,
    TransactionTerminated,
)
from rtcgw.sip.ids import new_branch, shard_of
from rtcgw.sip.message import Header, Request, Response
from rtcgw.sip.transaction import TransactionState
from rtcgw.sip.transaction_client import make_cancel, make_non2xx_ack
from rtcgw.sip.transaction_layer import TransactionLayer
from rtcgw.sip.transport import Peer, Transport
from tests.sip.helpers import ALICE, BOB, T1, Driver, make_request, respond_to, wire

NATTED = Peer(Transport.UDP, "203.0.113.7", 40001)


def new_request(driver: Driver, request: Request, source: Peer = ALICE) -> RequestReceived:
    (event,) = driver.receive(request, source).events
    assert isinstance(event, RequestReceived)
    return event


def statuses(output: Output) -> list[int]:
    return [o.message.status for o in output.outgoing if isinstance(o.message, Response)]


# -- server transport: received, rport, where responses go ------------------------------------


def test_received_and_rport_are_stamped_and_responses_go_to_the_source_port() -> None:
    driver = Driver()
    request = make_request("OPTIONS", via_host="alice.example.org", via_port=5060, rport=True)
    event = new_request(driver, request, NATTED)
    via = event.request.top_via
    assert via.received == "203.0.113.7"  # 18.2.1: sent-by is a domain name
    assert via.rport == 40001  # RFC 3581: the source port fills the empty rport

    response = respond_to(event.request, 200)
    assert response.top_via == via  # make_response copies the stamped Via
    (out,) = driver.layer.respond(event.server_key, response, 0.0).outgoing
    assert out.destination == NATTED  # RFC 3581 section 4: source address and port


def test_without_rport_udp_responses_go_to_received_at_the_sent_by_port() -> None:
    driver = Driver()
    request = make_request("OPTIONS", via_host="192.0.2.99", via_port=5070, rport=False)
    event = new_request(driver, request, NATTED)
    assert event.request.top_via.received == "203.0.113.7"
    assert event.request.top_via.has_rport is False
    (out,) = driver.layer.respond(event.server_key, respond_to(event.request, 200), 0.0).outgoing
    assert out.destination == Peer(Transport.UDP, "203.0.113.7", 5070)


def test_without_port_udp_responses_go_to_5060() -> None:
    driver = Driver()
    request = make_request("OPTIONS", via_port=None, rport=False)
    event = new_request(driver, request, Peer(Transport.UDP, "192.0.2.10", 5999))
    (out,) = driver.layer.respond(event.server_key, respond_to(event.request, 200), 0.0).outgoing
    assert out.destination == Peer(Transport.UDP, "192.0.2.10", 5060)


def test_via_matching_the_source_is_left_alone() -> None:
    driver = Driver()
    request = wire(make_request("OPTIONS", rport=False))
    event = new_request(driver, request, ALICE)
    assert event.request == request


@pytest.mark.parametrize("transport", [Transport.TCP, Transport.TLS, Transport.WS, Transport.WSS])
def test_responses_on_connections_go_back_over_the_same_connection(transport: Transport) -> None:
    driver = Driver()
    source = Peer(transport, "203.0.113.50", 61000, connection_id=42)
    request = make_request("REGISTER", via_transport=transport, via_host="df7jal23ls0d.invalid")
    event = new_request(driver, request, source)
    assert event.request.top_via.received == "203.0.113.50"
    (out,) = driver.layer.respond(event.server_key, respond_to(event.request, 200), 0.0).outgoing
    assert out.destination == source
    assert out.destination.connection_id == 42


# -- matching -------------------------------------------------------------------------------------


def test_server_key_is_branch_sent_by_and_method() -> None:
    driver = Driver()
    request = make_request(branch="z9hG4bK-abc", via_host="Alice.Example.ORG", via_port=5062)
    event = new_request(driver, request)
    assert event.server_key == ServerTransactionKey(
        "z9hG4bK-abc", "alice.example.org", 5062, "INVITE"
    )


def test_same_branch_from_another_sent_by_is_another_transaction() -> None:
    driver = Driver()
    first = new_request(driver, make_request(branch="z9hG4bK-same", via_host="192.0.2.10"))
    second = new_request(driver, make_request(branch="z9hG4bK-same", via_host="192.0.2.11"))
    assert first.server_key != second.server_key
    assert len(driver.layer) == 2


def test_response_matches_on_branch_and_cseq_method() -> None:
    driver = Driver()
    invite = make_request()
    key, _ = driver.layer.start_client(invite, BOB, 0.0)
    # Same branch, but CSeq method CANCEL: not this transaction (17.1.3).
    cancel_answer = respond_to(make_cancel(invite), 200)
    output = driver.receive(cancel_answer, BOB)
    assert [type(e) for e in output.events] == [StrayResponseReceived]
    ringing = respond_to(invite, 180)
    assert driver.receive(ringing, BOB).events == (ResponseReceived(key, ringing, BOB),)


def test_response_with_unknown_branch_is_stray() -> None:
    driver = Driver()
    response = respond_to(make_request(), 200)
    assert driver.receive(response, BOB).events == (StrayResponseReceived(wire(response), BOB),)
    assert len(driver.layer) == 0


def test_ack_without_transaction_is_passed_up() -> None:
    driver = Driver()
    ack = make_request("ACK", to_tag="bob-tag")
    output = driver.receive(ack, ALICE)
    (event,) = output.events
    assert isinstance(event, AckReceived)
    assert event.source == ALICE
    assert event.request.top_via.branch == ack.top_via.branch
    assert event.request.top_via.rport == ALICE.port  # stamped like every request
    assert len(driver.layer) == 0  # an ACK never creates a transaction


def test_rfc_2543_requests_match_on_call_id_from_tag_and_cseq() -> None:
    driver = Driver()
    old = make_request(branch="1234", rport=False)  # no magic cookie
    event = new_request(driver, old)
    key = event.server_key
    assert key.rfc2543 == Rfc2543Id("call-1@192.0.2.10", "alice-tag", 1)
    assert driver.receive(old, ALICE) == Output()  # retransmission absorbed

    busy = respond_to(event.request, 486)
    driver.layer.respond(key, busy, 0.0)
    assert driver.layer.state(key) is TransactionState.COMPLETED
    assert driver.receive(make_non2xx_ack(old, busy), ALICE) == Output()
    assert driver.layer.state(key) is TransactionState.CONFIRMED

    # Another CSeq with the same Via is another transaction.
    new_request(driver, make_request(branch="1234", rport=False, cseq=2))


# -- CANCEL (RFC 3261 9.2) ------------------------------------------------------------------------


def test_cancel_of_a_pending_invite_is_answered_200_and_reported() -> None:
    driver = Driver()
    invite = make_request()
    invite_key = new_request(driver, invite).server_key
    driver.layer.respond(invite_key, respond_to(invite, 180, to_tag="b-tag"), 0.0)

    cancel = make_cancel(invite)
    output = driver.receive(cancel, ALICE)

    (event,) = output.events
    assert isinstance(event, CancelReceived)
    assert (event.invite_key, event.source) == (invite_key, ALICE)
    assert event.request.method == "CANCEL"
    (out,) = output.outgoing
    assert isinstance(out.message, Response)
    assert out.message.status == 200
    assert out.message.cseq.method == "CANCEL"
    assert out.message.to_tag == "b-tag"  # 9.2: the same To tag as the INVITE's responses
    assert out.destination == ALICE

    again = driver.receive(cancel, ALICE)  # retransmitted CANCEL: same answer, no new event
    assert again.events == ()
    assert again.outgoing == output.outgoing

    # The TU answers the INVITE with 487; the ACK then closes it as usual.
    terminated = respond_to(invite, 487, to_tag="b-tag")
    driver.layer.respond(invite_key, terminated, 0.0)
    driver.receive(make_non2xx_ack(invite, terminated), ALICE)
    assert driver.layer.state(invite_key) is TransactionState.CONFIRMED


def test_cancel_without_matching_transaction_gets_481_with_a_to_tag() -> None:
    driver = Driver()
    driver.layer = TransactionLayer(shard=4)
    output = driver.receive(make_cancel(make_request()), ALICE)
    assert output.events == ()
    (out,) = output.outgoing
    assert isinstance(out.message, Response)
    assert out.message.status == 481
    assert out.message.to_tag is not None
    assert shard_of(out.message.to_tag) == 4


def test_cancel_after_the_final_response_has_no_effect_but_gets_200() -> None:
    driver = Driver()
    invite = make_request()
    invite_key = new_request(driver, invite).server_key
    driver.layer.respond(invite_key, respond_to(invite, 200), 0.0)
    output = driver.receive(make_cancel(invite), ALICE)
    assert output.events == ()
    assert statuses(output) == [200]
    assert driver.layer.state(invite_key) is TransactionState.ACCEPTED


def test_cancel_transaction_is_terminated_by_timer_j() -> None:
    driver = Driver()
    invite = make_request()
    new_request(driver, invite)
    driver.receive(make_cancel(invite), ALICE)
    output = driver.advance_to(64 * T1)
    (event,) = output.events
    assert isinstance(event, TransactionTerminated)
    assert isinstance(event.key, ServerTransactionKey)
    assert event.key.method == "CANCEL"


# -- timing of the calls themselves -----------------------------------------------------------


def test_receive_fires_due_timers_first() -> None:
    driver = Driver()
    invite = make_request()
    key, _ = driver.layer.start_client(invite, BOB, 0.0)
    driver.now = 0.6  # the runtime woke late: Timer A (0.5) has not been handled yet
    ringing = respond_to(invite, 180)
    output = driver.receive(ringing, BOB)
    assert [o.message for o in output.outgoing] == [invite]  # A fired before the 180
    assert output.events == (ResponseReceived(key, ringing, BOB),)


def test_time_must_not_go_backwards() -> None:
    layer = TransactionLayer()
    layer.handle_timeout(5.0)
    with pytest.raises(LocalProtocolError, match="time went backwards"):
        layer.start_client(make_request(), BOB, 4.0)


def test_a_bad_request_raises_remote_error_and_changes_nothing() -> None:
    driver = Driver()
    driver.layer.start_client(make_request(), BOB, 0.0)
    bad = make_request("OPTIONS", cseq_method="INFO")  # the parser would refuse it too
    with pytest.raises(RemoteProtocolError) as info:
        driver.layer.receive(bad, ALICE, 1.0)
    assert info.value.status_hint == 400
    assert driver.layer.next_deadline() == 0.5  # Timer A did not fire


def test_a_request_without_via_raises_remote_error() -> None:
    request = make_request("OPTIONS").without_header("Via")
    with pytest.raises(RemoteProtocolError):
        TransactionLayer().receive(request, ALICE, 0.0)


# -- start_client misuse -------------------------------------------------------------------------


def test_start_client_refuses_ack() -> None:
    with pytest.raises(LocalProtocolError, match="ACK is not sent in a client transaction"):
        TransactionLayer().start_client(make_request("ACK"), BOB, 0.0)


def test_start_client_needs_a_magic_cookie_branch() -> None:
    with pytest.raises(LocalProtocolError, match="lacks the magic cookie"):
        TransactionLayer().start_client(make_request(branch="1234"), BOB, 0.0)


def test_start_client_refuses_a_branch_in_use() -> None:
    layer = TransactionLayer()
    request = make_request("OPTIONS")
    layer.start_client(request, BOB, 0.0)
    with pytest.raises(LocalProtocolError, match="already exists"):
        layer.start_client(request, BOB, 0.0)


def test_start_client_checks_cseq_and_via_transport() -> None:
    layer = TransactionLayer()
    with pytest.raises(LocalProtocolError, match="CSeq"):
        layer.start_client(make_request("OPTIONS", cseq_method="INFO"), BOB, 0.0)
    tcp_bob = Peer(Transport.TCP, BOB.host, BOB.port)
    with pytest.raises(LocalProtocolError, match="Via transport UDP but sent over TCP"):
        layer.start_client(make_request("OPTIONS"), tcp_bob, 0.0)


def test_respond_on_unknown_key_names_the_key_and_status() -> None:
    key = ServerTransactionKey(new_branch(), "192.0.2.10", 5060, "INVITE")
    response = respond_to(make_request(), 486)
    with pytest.raises(LocalProtocolError) as info:
        TransactionLayer().respond(key, response, 0.0)
    assert str(key) in str(info.value)
    assert "486 Busy Here" in str(info.value)
    assert "Terminated" in str(info.value)


def test_terminate_and_transport_failed_ignore_unknown_keys() -> None:
    layer = TransactionLayer()
    key = ClientTransactionKey(new_branch(), "INVITE")
    assert layer.terminate(key, 0.0) == Output()
    assert layer.transport_failed(key, 0.0) == Output()


def test_len_and_state_follow_the_transactions() -> None:
    driver = Driver()
    key, _ = driver.layer.start_client(make_request("OPTIONS"), BOB, 0.0)
    info = new_request(driver, make_request("INFO", via_host="192.0.2.33"))
    assert len(driver.layer) == 2
    driver.advance_to(100.0)
    # The client timed out (Timer F); a server transaction waits for its TU indefinitely.
    assert driver.layer.state(key) is None
    assert driver.layer.state(info.server_key) is TransactionState.TRYING
    assert len(driver.layer) == 1
    driver.layer.respond(info.server_key, respond_to(info.request, 200), driver.now)
    driver.run_out()
    assert len(driver.layer) == 0


def test_extra_headers_survive_the_round_trip() -> None:
    driver = Driver()
    request = make_request("MESSAGE", extra=[("X-Custom", "keep me")], body=b"hi")
    event = new_request(driver, request)
    assert Header("X-Custom", "keep me") in event.request.headers
    assert event.request.body == b"hi"


def test_start_client_refuses_an_unknown_via_transport() -> None:
    request = make_request("OPTIONS")
    request = request.with_header_replaced("Via", str(request.top_via).replace("UDP", "SCTP"))
    with pytest.raises(LocalProtocolError, match="unknown Via transport SCTP"):
        TransactionLayer().start_client(request, BOB, 0.0)


def test_timers_of_ended_transactions_do_not_pile_up() -> None:
    layer = TransactionLayer()
    tcp_bob = Peer(Transport.TCP, BOB.host, BOB.port, connection_id=1)
    for _ in range(1000):
        request = make_request("OPTIONS", via_transport=Transport.TCP)
        layer.start_client(request, tcp_bob, 0.0)  # arms Timer F for 32 s
        output = layer.receive(wire(respond_to(request, 200)), tcp_bob, 0.0)
        assert [type(e) for e in output.events] == [ResponseReceived, TransactionTerminated]
    assert len(layer) == 0
    assert len(layer._timers) <= 64  # stale Timer F entries were compacted away
    assert layer.next_deadline() is None
