"""Client transactions (RFC 3261 17.1, RFC 6026 8.4) driven alone with a fake clock.

Each test plays the server by hand: it feeds responses into one ``TransactionLayer`` and
checks what the layer sends, reports, and when.
"""

from __future__ import annotations

import itertools

import pytest

from rtcgw.sip.errors import LocalProtocolError
from rtcgw.sip.events import (
    ClientTransactionKey,
    Output,
    ResponseReceived,
    StrayResponseReceived,
    TransactionTerminated,
    TransactionTimedOut,
    TransportFailed,
)
from rtcgw.sip.message import Request
from rtcgw.sip.timers import TimerName
from rtcgw.sip.transaction import TransactionState
from rtcgw.sip.transaction_client import make_cancel, make_non2xx_ack
from rtcgw.sip.transport import Peer, Transport
from tests.sip.helpers import BOB, T1, T2, T4, Driver, make_request, respond_to

TCP_BOB = Peer(Transport.TCP, BOB.host, 5060, connection_id=7)


def start(
    driver: Driver, request: Request | None = None, destination: Peer = BOB
) -> tuple[ClientTransactionKey, Request]:
    request = request if request is not None else make_request()
    key, output = driver.layer.start_client(request, destination, driver.now)
    driver.record(output)
    assert [o.message for o in output.outgoing] == [request]
    assert output.outgoing[0].destination == destination
    return key, request


def intervals(times: list[float]) -> list[float]:
    return [round(b - a, 6) for a, b in itertools.pairwise(times)]


# -- INVITE client ---------------------------------------------------------------------------


def test_invite_timer_a_doubles_without_cap_and_timer_b_times_out() -> None:
    driver = Driver()
    key, _ = start(driver)
    assert driver.layer.state(key) is TransactionState.CALLING

    driver.advance_to(64 * T1)

    times = driver.sent_times("INVITE")
    assert times == [0.0, 0.5, 1.5, 3.5, 7.5, 15.5, 31.5]
    # 17.1.1.2: A doubles each time, and unlike E and G it is not capped at T2.
    assert intervals(times) == [T1, 2 * T1, 4 * T1, 8 * T1, 16 * T1, 32 * T1]
    assert max(intervals(times)) > T2
    assert driver.events == [
        (64 * T1, TransactionTimedOut(key, TimerName.B)),
        (64 * T1, TransactionTerminated(key)),
    ]
    assert driver.layer.state(key) is None
    assert driver.layer.next_deadline() is None


def test_invite_provisional_moves_to_proceeding_and_stops_timers_a_and_b() -> None:
    driver = Driver()
    key, request = start(driver)
    driver.advance_to(0.6)  # one retransmission at 0.5
    ringing = respond_to(request, 180)

    output = driver.receive(ringing, BOB)

    assert output.events == (ResponseReceived(key, ringing, BOB),)
    assert driver.layer.state(key) is TransactionState.PROCEEDING
    assert driver.layer.next_deadline() is None  # no A, no B in Proceeding (Figure 5)
    driver.advance_to(1000.0)
    assert driver.sent_times("INVITE") == [0.0, 0.5]
    assert driver.layer.state(key) is TransactionState.PROCEEDING


def test_invite_non_2xx_final_is_acked_by_the_transaction_and_retransmissions_re_acked() -> None:
    route = "<sip:proxy.example.org;lr>"
    driver = Driver()
    key, request = start(driver, make_request(route=[route]))
    driver.receive(respond_to(request, 100, to_tag=None), BOB)
    driver.advance_to(2.0)
    busy = respond_to(request, 486)

    output = driver.receive(busy, BOB)

    assert output.events == (ResponseReceived(key, busy, BOB),)
    assert driver.layer.state(key) is TransactionState.COMPLETED
    (ack_out,) = output.outgoing
    ack = ack_out.message
    assert isinstance(ack, Request)
    assert ack_out.destination == BOB
    # 17.1.1.3: same Request-URI, the INVITE's top Via, its From, the response's To.
    assert ack.method == "ACK"
    assert ack.uri == request.uri
    assert ack.values("Via") == request.values("Via")[:1]
    assert ack.get("From") == request.get("From")
    assert ack.to_tag == "bob-tag"
    assert ack.call_id == request.call_id
    assert (ack.cseq.seq, ack.cseq.method) == (1, "ACK")
    assert ack.values("Route") == [route]

    again = driver.receive(busy, BOB)  # a retransmission of the 486
    assert again.events == ()
    assert again.outgoing == (ack_out,)  # the same ACK, byte for byte

    driver.advance_to(2.0 + 32.0 - 0.001)
    assert driver.layer.state(key) is TransactionState.COMPLETED
    output = driver.advance_to(2.0 + 32.0)  # Timer D, >= 32 s on UDP
    assert output.events == (TransactionTerminated(key),)


def test_invite_calling_straight_to_completed() -> None:
    driver = Driver()
    key, request = start(driver)
    output = driver.receive(respond_to(request, 503), BOB)
    assert [o.message.method for o in output.outgoing if isinstance(o.message, Request)] == ["ACK"]
    assert driver.layer.state(key) is TransactionState.COMPLETED
    driver.advance_to(10.0)
    assert driver.sent_times("INVITE") == [0.0]  # Timer A stopped with the final


def test_invite_completed_absorbs_provisionals_and_late_2xx() -> None:
    driver = Driver()
    key, request = start(driver)
    driver.receive(respond_to(request, 404), BOB)
    for status in (180, 200):
        output = driver.receive(respond_to(request, status), BOB)
        assert output.events == ()
        assert output.outgoing == ()
    assert driver.layer.state(key) is TransactionState.COMPLETED


def test_invite_2xx_moves_to_accepted_and_every_2xx_goes_to_the_tu() -> None:
    driver = Driver()
    key, request = start(driver)
    driver.receive(respond_to(request, 180), BOB)
    ok = respond_to(request, 200, contact="sip:bob@198.51.100.20")
    driver.now = 1.0

    output = driver.receive(ok, BOB)

    assert output.events == (ResponseReceived(key, ok, BOB),)
    assert output.outgoing == ()  # the 2xx ACK is the TU's job
    assert driver.layer.state(key) is TransactionState.ACCEPTED

    driver.now = 1.5
    assert driver.receive(ok, BOB).events == (ResponseReceived(key, ok, BOB),)  # RFC 6026
    forked = respond_to(request, 200, to_tag="other-fork")
    assert driver.receive(forked, BOB).events == (ResponseReceived(key, forked, BOB),)
    assert driver.receive(respond_to(request, 183), BOB).events == ()  # absorbed
    assert driver.receive(respond_to(request, 486), BOB).events == ()  # absorbed

    assert driver.advance_to(1.0 + 64 * T1 - 0.001).events == ()
    assert driver.advance_to(1.0 + 64 * T1).events == (TransactionTerminated(key),)  # Timer M
    late = driver.receive(ok, BOB)
    assert late.events == (StrayResponseReceived(ok, BOB),)


def test_invite_over_reliable_transport_has_no_timer_a_and_zero_timer_d() -> None:
    driver = Driver()
    request = make_request(via_transport=Transport.TCP)
    key, _ = start(driver, request, TCP_BOB)
    driver.advance_to(64 * T1 - 0.001)
    assert driver.sent_times("INVITE") == [0.0]  # no Timer A on TCP

    driver.now = 1.0
    busy = respond_to(request, 486)
    output = driver.receive(busy, TCP_BOB)

    # Completed, ACK sent, and Timer D = 0 ends the transaction in the same call.
    assert output.events == (ResponseReceived(key, busy, TCP_BOB), TransactionTerminated(key))
    assert [o.message.method for o in output.outgoing if isinstance(o.message, Request)] == ["ACK"]
    assert output.outgoing[0].destination == TCP_BOB
    assert driver.layer.state(key) is None


def test_invite_over_reliable_transport_still_times_out_with_timer_b() -> None:
    driver = Driver()
    key, _ = start(driver, make_request(via_transport=Transport.TCP), TCP_BOB)
    output = driver.advance_to(64 * T1)
    assert output.events == (TransactionTimedOut(key, TimerName.B), TransactionTerminated(key))


def test_invite_transport_error_in_calling_informs_the_tu() -> None:
    driver = Driver()
    key, _ = start(driver)
    output = driver.layer.transport_failed(key, 0.1)
    assert output.events == (TransportFailed(key), TransactionTerminated(key))
    assert driver.layer.next_deadline() is None
    assert driver.layer.transport_failed(key, 0.2) == Output()  # unknown key: ignored


def test_tu_can_abandon_a_proceeding_invite() -> None:
    driver = Driver()
    key, request = start(driver)
    driver.receive(respond_to(request, 180), BOB)
    output = driver.layer.terminate(key, 40.0)
    assert output.events == (TransactionTerminated(key),)
    assert driver.layer.state(key) is None


# -- non-INVITE client ----------------------------------------------------------------------


def test_non_invite_timer_e_doubles_up_to_t2_and_timer_f_times_out() -> None:
    driver = Driver()
    key, _ = start(driver, make_request("OPTIONS"))
    assert driver.layer.state(key) is TransactionState.TRYING

    driver.advance_to(64 * T1)

    times = driver.sent_times("OPTIONS")
    assert intervals(times)[:4] == [T1, 2 * T1, 4 * T1, T2]
    assert set(intervals(times)[3:]) == {T2}  # capped at T2 (17.1.2.2)
    assert times[-1] < 64 * T1
    assert [e for _, e in driver.events] == [
        TransactionTimedOut(key, TimerName.F),
        TransactionTerminated(key),
    ]


def test_non_invite_proceeding_retransmits_every_t2_until_timer_f() -> None:
    driver = Driver()
    key, request = start(driver, make_request("REGISTER", uri="sip:example.org"))
    driver.advance_to(0.7)  # E fired at 0.5, next at 1.5
    trying = respond_to(request, 100, to_tag=None)
    assert driver.receive(trying, BOB).events == (ResponseReceived(key, trying, BOB),)
    assert driver.layer.state(key) is TransactionState.PROCEEDING

    driver.advance_to(64 * T1)

    times = driver.sent_times("REGISTER")
    assert times[:3] == [0.0, 0.5, 1.5]
    assert set(intervals(times)[2:]) == {T2}  # "reset with a value of T2" in Proceeding
    assert isinstance(driver.events[-2][1], TransactionTimedOut)
    assert driver.events[-2][1] == TransactionTimedOut(key, TimerName.F)


def test_non_invite_final_completes_absorbs_retransmissions_and_ends_after_timer_k() -> None:
    driver = Driver()
    key, request = start(driver, make_request("BYE", to_tag="bob-tag"))
    driver.now = 0.2
    ok = respond_to(request, 200)

    assert driver.receive(ok, BOB).events == (ResponseReceived(key, ok, BOB),)
    assert driver.layer.state(key) is TransactionState.COMPLETED
    driver.now = 1.0
    assert driver.receive(ok, BOB) == Output()  # a retransmission: absorbed
    assert driver.advance_to(0.2 + T4 - 0.001).events == ()
    assert driver.sent_times("BYE") == [0.0]  # Timer E stopped by the final
    assert driver.advance_to(0.2 + T4).events == (TransactionTerminated(key),)  # Timer K = T4


def test_non_invite_over_reliable_transport_no_timer_e_and_zero_timer_k() -> None:
    driver = Driver()
    request = make_request("OPTIONS", via_transport=Transport.TCP)
    key, _ = start(driver, request, TCP_BOB)
    driver.advance_to(10.0)
    assert driver.sent_times("OPTIONS") == [0.0]
    ok = respond_to(request, 200)
    output = driver.receive(ok, TCP_BOB)
    assert output.events == (ResponseReceived(key, ok, TCP_BOB), TransactionTerminated(key))


def test_cancel_is_its_own_client_transaction_sharing_the_invite_branch() -> None:
    driver = Driver()
    invite_key, invite = start(driver)
    driver.receive(respond_to(invite, 180), BOB)
    cancel = make_cancel(invite)
    cancel_key, _ = start(driver, cancel)
    assert cancel_key == ClientTransactionKey(invite_key.branch, "CANCEL")

    ok_cancel = respond_to(cancel, 200)
    assert driver.receive(ok_cancel, BOB).events == (ResponseReceived(cancel_key, ok_cancel, BOB),)
    terminated = respond_to(invite, 487)
    output = driver.receive(terminated, BOB)
    assert output.events == (ResponseReceived(invite_key, terminated, BOB),)
    assert driver.layer.state(invite_key) is TransactionState.COMPLETED


# -- builders ---------------------------------------------------------------------------------


def test_make_cancel_copies_what_rfc_3261_9_1_requires() -> None:
    invite = make_request(route=["<sip:p1.example.org;lr>", "<sip:p2.example.org;lr>"])
    cancel = make_cancel(invite)
    assert cancel.method == "CANCEL"
    assert cancel.uri == invite.uri
    assert cancel.values("Via") == invite.values("Via")[:1]
    for name in ("From", "To", "Call-ID"):
        assert cancel.get(name) == invite.get(name)
    assert (cancel.cseq.seq, cancel.cseq.method) == (invite.cseq.seq, "CANCEL")
    assert cancel.values("Route") == invite.values("Route")
    assert cancel.max_forwards == 70


@pytest.mark.parametrize("method", ["ACK", "CANCEL"])
def test_make_cancel_refuses_ack_and_cancel(method: str) -> None:
    with pytest.raises(LocalProtocolError, match=f"{method} request cannot be cancelled"):
        make_cancel(make_request(method))


def test_make_non2xx_ack_refuses_a_2xx() -> None:
    invite = make_request()
    with pytest.raises(LocalProtocolError, match="300-699"):
        make_non2xx_ack(invite, respond_to(invite, 200))
