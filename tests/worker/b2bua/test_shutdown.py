"""A stopping worker hangs up its calls cleanly instead of vanishing."""

from __future__ import annotations

from rtcgw.worker.b2bua import CallEnded, EndReason
from tests.worker.b2bua.harness import BROWSER, PBX, Gateway, Sent, answer
from tests.worker.b2bua.scenarios import confirmed_client_call, start_client_call


def _shutdown(gw: Gateway) -> Sent:
    out = gw.core.shutdown(gw.now)
    gw.notices.extend(out.notices)
    return Sent(list(out.outgoing))


def test_shutdown_byes_both_legs_of_an_answered_call() -> None:
    gw = Gateway()
    call = confirmed_client_call(gw)
    sent = _shutdown(gw)
    to_browser = sent.one_request(BROWSER, "BYE")
    to_pbx = sent.one_request(PBX, "BYE")
    assert to_browser.call_id == call.invite.call_id
    assert to_pbx.call_id == call.b_invite.call_id
    assert gw.of_type(CallEnded) == [CallEnded(call.invite.call_id, EndReason.SHUTDOWN)]
    assert gw.core.active_calls == 0
    # The BYE transactions stay until answered, which a stopping worker waits for.
    assert gw.core.pending_transactions > 0
    gw.from_browser(answer(to_browser, 200))
    gw.from_pbx(answer(to_pbx, 200))


def test_shutdown_of_a_ringing_call_answers_503_and_cancels_the_callee() -> None:
    gw = Gateway()
    _, b_invite = start_client_call(gw)
    gw.from_pbx(answer(b_invite, 180))
    sent = _shutdown(gw)
    assert sent.statuses_to(BROWSER) == [503]
    assert sent.one_request(PBX, "CANCEL").top_via.branch == b_invite.top_via.branch
