"""Server transactions (RFC 3261 17.2, RFC 6026 8.7) driven alone with a fake clock.

Each test plays the client by hand: it feeds requests (and retransmissions, ACKs) into one
``TransactionLayer`` and answers as the transaction user would.
"""

from __future__ import annotations

import itertools

import pytest

from rtcgw.sip.errors import LocalProtocolError
from rtcgw.sip.events import (
    AckReceived,
    Output,
    RequestReceived,
    ServerTransactionKey,
    TransactionTerminated,
    TransactionTimedOut,
)
from rtcgw.sip.message import Request, Response
from rtcgw.sip.timers import TimerName
from rtcgw.sip.transaction import TransactionState
from rtcgw.sip.transaction_client import make_non2xx_ack
from rtcgw.sip.transport import Peer, Transport
from tests.sip.helpers import ALICE, T1, T2, T4, Driver, make_request, respond_to

TCP_ALICE = Peer(Transport.TCP, ALICE.host, 50123, connection_id=3)


def arrive(driver: Driver, request: Request, source: Peer = ALICE) -> ServerTransactionKey:
    output = driver.receive(request, source)
    (event,) = output.events
    assert isinstance(event, RequestReceived)
    assert event.source == source
    assert event.request.method == request.method
    return event.server_key


def answer(driver: Driver, key: ServerTransactionKey, response: Response) -> Output:
    output = driver.record(driver.layer.respond(key, response, driver.now))
    assert response in [o.message for o in output.outgoing]
    return output


def sent_statuses(output: Output) -> list[int]:
    return [o.message.status for o in output.outgoing if isinstance(o.message, Response)]


def intervals(times: list[float]) -> list[float]:
    return [round(b - a, 6) for a, b in itertools.pairwise(times)]


# -- INVITE server ------------------------------------------------------------------------------


def test_invite_retransmission_resends_the_last_provisional_only() -> None:
    driver = Driver()
    invite = make_request()
    key = arrive(driver, invite)
    assert driver.layer.state(key) is TransactionState.PROCEEDING

    # Nothing sent yet (the TU sends 100 Trying): a retransmission is simply absorbed.
    assert driver.receive(invite, ALICE) == Output()
    answer(driver, key, respond_to(invite, 100, to_tag=None))
    answer(driver, key, respond_to(invite, 180))
    again = driver.receive(invite, ALICE)
    assert again.events == ()  # not passed to the TU
    assert sent_statuses(again) == [180]


def test_invite_non_2xx_final_retransmitted_by_timer_g_until_timer_h() -> None:
    driver = Driver()
    invite = make_request()
    key = arrive(driver, invite)
    driver.now = 1.0
    output = answer(driver, key, respond_to(invite, 486))
    assert output.events == ()
    assert driver.layer.state(key) is TransactionState.COMPLETED

    driver.advance_to(1.0 + 64 * T1)

    times = driver.sent_times(486)
    assert times[0] == 1.0
    # 17.2.1: G starts at T1, doubles, and is capped at T2.
    assert intervals(times)[:4] == [T1, 2 * T1, 4 * T1, T2]
    assert set(intervals(times)[3:]) == {T2}
    assert [e for _, e in driver.events][-2:] == [
        TransactionTimedOut(key, TimerName.H),
        TransactionTerminated(key),
    ]
    assert driver.events[-1][0] == 1.0 + 64 * T1
    assert driver.layer.state(key) is None


def test_invite_ack_confirms_absorbs_and_timer_i_terminates() -> None:
    driver = Driver()
    invite = make_request()
    key = arrive(driver, invite)
    busy = respond_to(invite, 486)
    answer(driver, key, busy)
    driver.advance_to(0.6)  # one G retransmission at 0.5
    assert driver.sent_times(486) == [0.0, 0.5]

    # A retransmitted INVITE in Completed gets the final again.
    assert sent_statuses(driver.receive(invite, ALICE)) == [486]

    ack = make_non2xx_ack(invite, busy)
    assert driver.receive(ack, ALICE) == Output()  # absorbed, not an event
    assert driver.layer.state(key) is TransactionState.CONFIRMED
    assert driver.receive(ack, ALICE) == Output()
    assert driver.receive(invite, ALICE) == Output()  # absorbed in Confirmed

    output = driver.advance_to(0.6 + T4)  # Timer I
    assert output.events == (TransactionTerminated(key),)
    assert output.outgoing == ()  # G stopped by the ACK
    assert driver.sent_times(486) == [0.0, 0.5, 0.6]


def test_invite_2xx_moves_to_accepted_and_timer_l_terminates() -> None:
    driver = Driver()
    invite = make_request()
    key = arrive(driver, invite)
    ok = respond_to(invite, 200, contact="sip:bob@198.51.100.20")
    driver.now = 2.0
    answer(driver, key, ok)
    assert driver.layer.state(key) is TransactionState.ACCEPTED

    # RFC 6026 8.7: INVITE retransmissions are absorbed and not passed up.
    assert driver.receive(invite, ALICE) == Output()
    # The TU retransmits its 2xx (RFC 3261 13.3.1.4) through the transaction.
    driver.now = 2.5
    assert sent_statuses(answer(driver, key, ok)) == [200]
    # No automatic 2xx retransmission by the transaction itself.
    assert driver.advance_to(2.0 + 64 * T1 - 0.001).outgoing == ()

    output = driver.advance_to(2.0 + 64 * T1)
    assert output.events == (TransactionTerminated(key),)
    with pytest.raises(LocalProtocolError, match=r"cannot send 200 OK: server INVITE .* unknown"):
        driver.layer.respond(key, ok, driver.now)


def test_ack_for_2xx_is_passed_to_the_tu_with_or_without_a_transaction() -> None:
    driver = Driver()
    invite = make_request()
    key = arrive(driver, invite)
    answer(driver, key, respond_to(invite, 200))

    # The normal case: a 2xx ACK has a fresh branch and matches no transaction.
    ack = make_request("ACK", cseq=1, to_tag="bob-tag")
    output = driver.receive(ack, ALICE)
    assert [type(e) for e in output.events] == [AckReceived]
    # An ACK that reuses the INVITE's branch matches the Accepted transaction: also passed.
    same_branch = make_request("ACK", branch=invite.top_via.branch, to_tag="bob-tag")
    output = driver.receive(same_branch, ALICE)
    assert [type(e) for e in output.events] == [AckReceived]
    assert driver.layer.state(key) is TransactionState.ACCEPTED


def test_ack_before_any_final_is_absorbed() -> None:
    driver = Driver()
    invite = make_request()
    key = arrive(driver, invite)
    stray_ack = make_request("ACK", branch=invite.top_via.branch)
    assert driver.receive(stray_ack, ALICE) == Output()
    assert driver.layer.state(key) is TransactionState.PROCEEDING


def test_invite_over_reliable_transport_no_timer_g_and_zero_timer_i() -> None:
    driver = Driver()
    invite = make_request(via_transport=Transport.TCP)
    key = arrive(driver, invite, TCP_ALICE)
    busy = respond_to(invite, 603)
    output = answer(driver, key, busy)
    assert output.outgoing[0].destination == TCP_ALICE
    driver.advance_to(10.0)
    assert driver.sent_times(603) == [0.0]  # no Timer G on TCP

    output = driver.receive(make_non2xx_ack(invite, busy), TCP_ALICE)
    assert output.events == (TransactionTerminated(key),)  # Confirmed, then I = 0


def test_invite_over_reliable_transport_timer_h_still_runs() -> None:
    driver = Driver()
    invite = make_request(via_transport=Transport.TCP)
    key = arrive(driver, invite, TCP_ALICE)
    answer(driver, key, respond_to(invite, 480))
    output = driver.advance_to(64 * T1)
    assert output.events == (TransactionTimedOut(key, TimerName.H), TransactionTerminated(key))


def test_second_final_is_a_local_protocol_error_naming_key_state_and_status() -> None:
    driver = Driver()
    invite = make_request()
    key = arrive(driver, invite)
    answer(driver, key, respond_to(invite, 486))
    with pytest.raises(LocalProtocolError) as info:
        driver.layer.respond(key, respond_to(invite, 200), driver.now)
    message = str(info.value)
    assert "INVITE server transaction in state Completed cannot handle 2xx from TU" in message
    assert str(key) in message
    assert "response 200" in message
    assert driver.layer.state(key) is TransactionState.COMPLETED  # unchanged


def test_provisional_after_2xx_is_refused() -> None:
    driver = Driver()
    invite = make_request()
    key = arrive(driver, invite)
    answer(driver, key, respond_to(invite, 200))
    with pytest.raises(LocalProtocolError, match="state Accepted cannot handle 1xx from TU"):
        driver.layer.respond(key, respond_to(invite, 180), driver.now)


def test_response_of_another_request_is_refused() -> None:
    driver = Driver()
    invite = make_request()
    key = arrive(driver, invite)
    other = respond_to(make_request(cseq=2), 200)
    with pytest.raises(LocalProtocolError, match="does not belong to"):
        driver.layer.respond(key, other, driver.now)


# -- non-INVITE server --------------------------------------------------------------------------


def test_non_invite_trying_proceeding_completed_then_timer_j() -> None:
    driver = Driver()
    register = make_request("REGISTER", uri="sip:example.org")
    key = arrive(driver, register)
    assert driver.layer.state(key) is TransactionState.TRYING
    assert driver.receive(register, ALICE) == Output()  # Trying: absorbed, nothing to resend

    answer(driver, key, respond_to(register, 100, to_tag=None))
    assert driver.layer.state(key) is TransactionState.PROCEEDING
    assert sent_statuses(driver.receive(register, ALICE)) == [100]

    driver.now = 3.0
    answer(driver, key, respond_to(register, 200))
    assert driver.layer.state(key) is TransactionState.COMPLETED
    assert sent_statuses(driver.receive(register, ALICE)) == [200]
    assert driver.advance_to(3.0 + 64 * T1 - 0.001).events == ()
    assert driver.sent_times(200) == [3.0, 3.0]  # no retransmission timer on the server side
    assert driver.advance_to(3.0 + 64 * T1).events == (TransactionTerminated(key),)  # Timer J


def test_non_invite_trying_straight_to_completed() -> None:
    driver = Driver()
    options = make_request("OPTIONS")
    key = arrive(driver, options)
    answer(driver, key, respond_to(options, 405))
    assert driver.layer.state(key) is TransactionState.COMPLETED
    with pytest.raises(LocalProtocolError, match=r"non-INVITE server .* Completed"):
        driver.layer.respond(key, respond_to(options, 200), driver.now)


def test_non_invite_over_reliable_transport_ends_with_the_final() -> None:
    driver = Driver()
    options = make_request("OPTIONS", via_transport=Transport.TCP)
    key = arrive(driver, options, TCP_ALICE)
    output = answer(driver, key, respond_to(options, 200))
    assert output.events == (TransactionTerminated(key),)  # Timer J = 0 on TCP
    # The same request again is a new transaction now (a TCP peer never retransmits).
    assert arrive(driver, options, TCP_ALICE) == key


def test_server_transport_error_terminates_and_informs() -> None:
    driver = Driver()
    options = make_request("OPTIONS")
    key = arrive(driver, options)
    answer(driver, key, respond_to(options, 200))
    output = driver.layer.transport_failed(key, driver.now)
    assert [type(e).__name__ for e in output.events] == ["TransportFailed", "TransactionTerminated"]
