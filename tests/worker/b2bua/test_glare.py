"""re-INVITE glare (RFC 3261 14.1, 14.2): 491 for crossing INVITEs, 500 for overlapping
ones, and a far side's 491 relayed as is so each peer's own back-off applies."""

from __future__ import annotations

from rtcgw.worker.b2bua import CallEnded, RequestRejected
from tests.worker.b2bua.harness import (
    BROWSER,
    BROWSER_CONTACT,
    PBX,
    SDP_ANSWER,
    SDP_OFFER,
    Gateway,
    answer,
    header,
)
from tests.worker.b2bua.scenarios import confirmed_client_call


def test_client_reinvite_crossing_a_relayed_one_gets_491() -> None:
    gw = Gateway()
    call = confirmed_client_call(gw)
    relayed = gw.from_pbx(call.from_pbx("INVITE", 20, body=SDP_ANSWER))
    to_client = relayed.one_request(BROWSER, "INVITE")
    # The browser's own re-INVITE crosses ours on its leg: 14.2, "return a 491".
    crossing = gw.from_browser(call.from_browser("INVITE", 2, body=SDP_OFFER))
    assert crossing.statuses_to(BROWSER) == [100, 491]
    [r491] = crossing.responses_to(BROWSER)[1:]
    assert r491.cseq.seq == 2 and r491.to_tag == call.a_tag
    assert crossing.to(PBX) == []
    assert RequestRejected("jssip-call-1", 491, "Request Pending") in gw.notices
    # Ours still completes normally.
    reply = answer(to_client, 200, to_tag="alice-tag", contact=BROWSER_CONTACT, body=SDP_OFFER)
    done = gw.from_browser(reply)
    assert done.statuses_to(PBX) == [200]
    assert done.one_request(BROWSER, "ACK").cseq.seq == to_client.cseq.seq


def test_pbx_reinvite_crossing_a_relayed_one_gets_491() -> None:
    gw = Gateway()
    call = confirmed_client_call(gw)
    relayed = gw.from_browser(call.from_browser("INVITE", 2, body=SDP_OFFER))
    assert relayed.one_request(PBX, "INVITE").cseq.seq == 2
    crossing = gw.from_pbx(call.from_pbx("INVITE", 20, body=SDP_ANSWER))
    assert crossing.statuses_to(PBX) == [100, 491]
    assert crossing.to(BROWSER) == []


def test_reinvite_while_ours_is_pending_on_the_other_leg_gets_491() -> None:
    gw = Gateway()
    # The PBX makes us the refresher; 120 s sessions: at 60 s we refresh. The PBX does
    # not allow UPDATE, so the refresh is a re-INVITE pending on the PBX leg.
    call = confirmed_client_call(
        gw,
        ok_extra=(("Session-Expires", "120;refresher=uac"), ("Allow", "INVITE, ACK, BYE")),
    )
    refresh = gw.advance(60).one_request(PBX, "INVITE")
    assert refresh.body == SDP_OFFER
    # The browser's re-INVITE cannot go out on the PBX leg now: 491 to the browser.
    sent = gw.from_browser(call.from_browser("INVITE", 2, body=SDP_OFFER))
    assert sent.statuses_to(BROWSER) == [100, 491]
    assert sent.to(PBX) == []
    # And the PBX's own re-INVITE crossing our refresh gets 491 too.
    crossing = gw.from_pbx(call.from_pbx("INVITE", 20, body=SDP_ANSWER))
    assert crossing.statuses_to(PBX) == [100, 491]
    assert crossing.to(BROWSER) == []


def test_second_reinvite_before_the_first_is_answered_gets_500() -> None:
    gw = Gateway()
    call = confirmed_client_call(gw)
    first = gw.from_pbx(call.from_pbx("INVITE", 20, body=SDP_ANSWER))
    to_client = first.one_request(BROWSER, "INVITE")
    second = gw.from_pbx(call.from_pbx("INVITE", 21, body=SDP_ANSWER))
    assert second.statuses_to(PBX) == [100, 500]
    [r500] = second.responses_to(PBX)[1:]
    assert r500.cseq.seq == 21
    assert header(r500, "Retry-After") == "1"  # 14.2: "between 0 and 10 seconds"
    assert second.to(BROWSER) == []
    # The first one is still relayed to its end.
    reply = answer(to_client, 200, to_tag="alice-tag", contact=BROWSER_CONTACT, body=SDP_OFFER)
    [r200] = gw.from_browser(reply).responses_to(PBX)
    assert r200.status == 200 and r200.cseq.seq == 20


def test_491_from_the_far_side_is_relayed_as_is() -> None:
    gw = Gateway()
    call = confirmed_client_call(gw)
    to_client = gw.from_pbx(call.from_pbx("INVITE", 20, body=SDP_ANSWER)).one_request(
        BROWSER, "INVITE"
    )
    refused = gw.from_browser(answer(to_client, 491, to_tag="alice-tag"))
    [r491] = refused.responses_to(PBX)
    assert r491.status == 491 and r491.cseq.seq == 20
    assert r491.call_id == call.b_invite.call_id
    # The non-2xx is ACKed hop by hop on the browser's leg (RFC 3261 17.1.1.3).
    assert refused.one_request(BROWSER, "ACK").cseq.seq == to_client.cseq.seq
    assert gw.of_type(CallEnded) == []
    # After the back-off the PBX's retry goes through: nothing is left pending.
    gw.advance(3)
    retry = gw.from_pbx(call.from_pbx("INVITE", 21, body=SDP_ANSWER))
    assert retry.statuses_to(PBX) == [100]
    assert retry.one_request(BROWSER, "INVITE").cseq.seq == to_client.cseq.seq + 1
