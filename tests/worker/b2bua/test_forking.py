"""A forking PBX: several early dialogs, one answer kept, a second fork's 2xx ACKed and
ended with BYE (RFC 3261 13.2.2.4) while the first dialog stands."""

from __future__ import annotations

from rtcgw.worker.b2bua import CallAnswered, CallEnded, EndReason
from tests.worker.b2bua.harness import (
    BROWSER,
    PBX,
    SDP_ANSWER,
    Gateway,
    answer,
    browser_request,
)
from tests.worker.b2bua.scenarios import start_client_call

FORK_1 = "sip:bob@192.0.2.61:5060"
FORK_2 = "sip:bob@192.0.2.62:5060"


def test_second_fork_2xx_is_acked_and_byed_while_the_first_stands() -> None:
    gw = Gateway()
    _, b_invite = start_client_call(gw)
    r1 = gw.from_pbx(answer(b_invite, 180, to_tag="fork-1", contact=FORK_1))
    r2 = gw.from_pbx(answer(b_invite, 180, to_tag="fork-2", contact=FORK_2))
    # Both ring in the browser's single early dialog.
    [ring1], [ring2] = r1.responses_to(BROWSER), r2.responses_to(BROWSER)
    assert ring1.to_tag == ring2.to_tag
    a_tag = ring1.to_tag
    first = gw.from_pbx(answer(b_invite, 200, to_tag="fork-1", contact=FORK_1, body=SDP_ANSWER))
    [ok] = first.responses_to(BROWSER)
    assert ok.status == 200 and ok.to_tag == a_tag
    ack1 = first.one_request(PBX, "ACK")
    assert ack1.to_tag == "fork-1" and str(ack1.uri) == FORK_1
    gw.from_browser(browser_request("ACK", to_tag=a_tag, cseq=1))

    second = gw.from_pbx(answer(b_invite, 200, to_tag="fork-2", contact=FORK_2, body=SDP_ANSWER))
    ack2 = second.one_request(PBX, "ACK")
    bye2 = second.one_request(PBX, "BYE")
    for request in (ack2, bye2):
        assert request.call_id == b_invite.call_id and request.to_tag == "fork-2"
        assert request.from_tag == b_invite.from_tag
        assert str(request.uri) == FORK_2
    assert ack2.cseq.seq == b_invite.cseq.seq
    assert bye2.cseq.seq == b_invite.cseq.seq + 1
    assert second.to(BROWSER) == []
    assert gw.from_pbx(answer(bye2, 200, to_tag="fork-2", contact=None)).outgoing == []

    # The first dialog is untouched: one answer, no end, and the browser's BYE goes there.
    assert gw.of_type(CallAnswered) == [CallAnswered("jssip-call-1")]
    assert gw.of_type(CallEnded) == []
    assert gw.core.active_calls == 1
    hangup = gw.from_browser(browser_request("BYE", to_tag=a_tag, cseq=2))
    bye1 = hangup.one_request(PBX, "BYE")
    assert bye1.to_tag == "fork-1" and str(bye1.uri) == FORK_1
    assert gw.of_type(CallEnded) == [CallEnded("jssip-call-1", EndReason.HANGUP_CLIENT)]


def test_second_fork_2xx_before_the_callers_ack_is_byed_too() -> None:
    gw = Gateway()
    _, b_invite = start_client_call(gw)
    gw.from_pbx(answer(b_invite, 200, to_tag="fork-1", contact=FORK_1, body=SDP_ANSWER))
    second = gw.from_pbx(answer(b_invite, 200, to_tag="fork-2", contact=FORK_2, body=SDP_ANSWER))
    assert second.one_request(PBX, "ACK").to_tag == "fork-2"
    assert second.one_request(PBX, "BYE").to_tag == "fork-2"
    assert second.to(BROWSER) == []
    # The first fork's retransmitted 2xx is re-ACKed, and only ACKed (13.2.2.4).
    again = gw.from_pbx(answer(b_invite, 200, to_tag="fork-1", contact=FORK_1, body=SDP_ANSWER))
    assert again.one_request(PBX, "ACK").to_tag == "fork-1"
    assert again.requests_to(PBX, "BYE") == [] and again.to(BROWSER) == []
    assert gw.of_type(CallEnded) == []
