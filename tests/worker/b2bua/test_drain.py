"""A draining worker: new INVITEs get 503 with Retry-After (RFC 3261 21.5.4), while calls
in progress go on and end normally."""

from __future__ import annotations

from rtcgw.worker.b2bua import CallEnded, EndReason
from rtcgw.worker.b2bua.core import DRAIN_RETRY_AFTER_S
from tests.worker.b2bua.harness import BROWSER, PBX, SDP_ANSWER, Gateway, browser_request
from tests.worker.b2bua.scenarios import confirmed_client_call


def test_a_new_invite_gets_503_with_retry_after_and_reaches_no_one() -> None:
    gw = Gateway()
    gw.core.draining = True
    sent = gw.from_browser(browser_request(call_id="drained-1"))
    [answer] = [r for r in sent.responses_to(BROWSER) if r.status >= 200]
    assert answer.status == 503
    assert answer.get("Retry-After") == str(DRAIN_RETRY_AFTER_S)
    assert sent.to(PBX) == []


def test_a_call_in_progress_goes_on_while_draining_and_ends_normally() -> None:
    gw = Gateway()
    call = confirmed_client_call(gw)
    gw.core.draining = True
    # A re-INVITE inside the call is not a new call: it is relayed.
    reinvite = call.from_pbx("INVITE", 20, body=SDP_ANSWER)
    assert gw.from_pbx(reinvite).one_request(BROWSER, "INVITE")
    bye = call.from_pbx("BYE", 21)
    sent = gw.from_pbx(bye)
    assert sent.statuses_to(PBX) == [200]
    assert sent.one_request(BROWSER, "BYE")
    [ended] = gw.of_type(CallEnded)
    assert ended.reason is EndReason.HANGUP_SIP
    # Undrained, new calls are taken again.
    gw.core.draining = False
    fresh = gw.from_browser(browser_request(call_id="after-drain"))
    assert fresh.statuses_to(BROWSER) == [100]
    assert fresh.one_request(PBX, "INVITE")
