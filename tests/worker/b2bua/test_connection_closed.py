"""A client's WebSocket goes away while its call is still ringing: the other side's INVITE
is cancelled (or answered), and nothing more is sent to the vanished connection."""

from __future__ import annotations

from rtcgw.worker.b2bua import CallEnded, EndReason
from tests.worker.b2bua.harness import (
    BROWSER,
    BROWSER_CONTACT,
    PBX,
    SDP_ANSWER,
    Gateway,
    answer,
    pbx_request,
)
from tests.worker.b2bua.scenarios import browser_binding, start_client_call


def test_closed_connection_cancels_a_ringing_call_to_the_pbx() -> None:
    gw = Gateway()
    _, b_invite = start_client_call(gw)
    gw.from_pbx(answer(b_invite, 180))
    closed = gw.closed(BROWSER.connection_id or 0)
    cancel = closed.one_request(PBX, "CANCEL")
    assert cancel.top_via.branch == b_invite.top_via.branch
    assert cancel.call_id == b_invite.call_id and cancel.cseq.seq == b_invite.cseq.seq
    assert closed.to(BROWSER) == []
    assert gw.of_type(CallEnded) == [CallEnded("jssip-call-1", EndReason.CONNECTION_CLOSED)]
    # The PBX completes the cancellation; the browser hears nothing.
    gw.from_pbx(answer(cancel, 200))
    done = gw.from_pbx(answer(b_invite, 487))
    assert done.one_request(PBX, "ACK").cseq.seq == b_invite.cseq.seq
    assert done.to(BROWSER) == []
    assert len(gw.of_type(CallEnded)) == 1
    assert gw.core.active_calls == 0


def test_closed_connection_before_any_provisional_cancels_on_the_first() -> None:
    gw = Gateway()
    _, b_invite = start_client_call(gw)
    closed = gw.closed(BROWSER.connection_id or 0)
    assert closed.outgoing == []  # RFC 3261 9.1: no CANCEL before a provisional
    trying = gw.from_pbx(answer(b_invite, 100))
    assert trying.one_request(PBX, "CANCEL").top_via.branch == b_invite.top_via.branch
    assert trying.to(BROWSER) == []


def test_answer_after_the_connection_closed_is_acked_and_byed() -> None:
    gw = Gateway()
    _, b_invite = start_client_call(gw)
    gw.from_pbx(answer(b_invite, 180))
    gw.closed(BROWSER.connection_id or 0)
    raced = gw.from_pbx(answer(b_invite, 200, body=SDP_ANSWER))
    assert raced.one_request(PBX, "ACK").to_tag == "pbx-tag"
    assert raced.one_request(PBX, "BYE").to_tag == "pbx-tag"
    assert raced.to(BROWSER) == []
    assert gw.of_type(CallEnded) == [CallEnded("jssip-call-1", EndReason.CONNECTION_CLOSED)]
    assert gw.core.active_calls == 0


def test_closed_connection_of_a_ringing_callee_answers_the_pbx() -> None:
    gw = Gateway(bindings=browser_binding())
    b_invite = gw.from_pbx(pbx_request(body=SDP_ANSWER)).one_request(BROWSER, "INVITE")
    gw.from_browser(answer(b_invite, 180, to_tag="js-tag", contact=BROWSER_CONTACT))
    closed = gw.closed(BROWSER.connection_id or 0)
    assert closed.statuses_to(PBX) == [480]
    assert closed.to(BROWSER) == []  # no CANCEL to a connection that is gone
    assert gw.of_type(CallEnded) == [
        CallEnded("pbx-call-1@192.0.2.50", EndReason.CONNECTION_CLOSED, 480)
    ]
    assert gw.core.active_calls == 0
