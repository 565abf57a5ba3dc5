"""Our session refreshes toward the PBX (RFC 4028 section 10): UPDATE first, a re-INVITE
repeating our last SDP when UPDATE is refused, and the call's end when a refresh fails."""

from __future__ import annotations

import pytest

from rtcgw.worker.b2bua import CallEnded, EndReason
from tests.worker.b2bua.harness import (
    BROWSER,
    PBX,
    SDP_ANSWER,
    SDP_OFFER,
    Gateway,
    answer,
    header,
)
from tests.worker.b2bua.scenarios import ClientCall, confirmed_client_call

#: The PBX's 2xx makes us the refresher of a 120 s session: we refresh every 60 s.
US_REFRESHING = (("Session-Expires", "120;refresher=uac"),)


def _refreshing_call(gw: Gateway) -> ClientCall:
    return confirmed_client_call(gw, ok_extra=US_REFRESHING)


@pytest.mark.parametrize("status", [405, 501])
def test_refresh_falls_back_on_reinvite_when_update_is_refused(status: int) -> None:
    gw = Gateway()
    call = _refreshing_call(gw)
    update = gw.advance(60).one_request(PBX, "UPDATE")
    refused = gw.from_pbx(
        answer(update, status, contact=None, extra=(("Allow", "INVITE, ACK, BYE"),))
    )
    assert refused.outgoing == []
    # One second later: a re-INVITE with the SDP we last sent the PBX.
    assert gw.advance(0.9).to(PBX) == []
    sent = gw.advance(0.1)
    reinvite = sent.one_request(PBX, "INVITE")
    assert reinvite.call_id == call.b_invite.call_id and reinvite.to_tag == "pbx-tag"
    assert reinvite.cseq.seq == update.cseq.seq + 1
    assert reinvite.body == SDP_OFFER and reinvite.content_type == "application/sdp"
    assert header(reinvite, "Session-Expires") == "120;refresher=uac"
    assert "timer" in reinvite.option_tags("Supported")
    assert sent.to(BROWSER) == []
    # The PBX's 2xx is ACKed on its leg; the browser hears nothing of it.
    ok = answer(reinvite, 200, body=SDP_ANSWER, extra=US_REFRESHING)
    done = gw.from_pbx(ok)
    ack = done.one_request(PBX, "ACK")
    assert ack.cseq.seq == reinvite.cseq.seq and ack.to_tag == "pbx-tag"
    assert done.to(BROWSER) == []
    # The next refresh is a re-INVITE straight away, 60 s after that 2xx.
    assert gw.advance(59.9).requests_to(PBX, "INVITE") == []
    assert gw.advance(0.1).one_request(PBX, "INVITE").cseq.seq == reinvite.cseq.seq + 1
    assert gw.of_type(CallEnded) == []


def test_refresh_is_a_reinvite_when_the_pbx_does_not_allow_update() -> None:
    gw = Gateway()
    confirmed_client_call(gw, ok_extra=(*US_REFRESHING, ("Allow", "INVITE, ACK, BYE, CANCEL")))
    sent = gw.advance(60)
    assert sent.requests_to(PBX, "UPDATE") == []
    assert sent.one_request(PBX, "INVITE").body == SDP_OFFER


def test_refresh_answered_481_ends_both_legs() -> None:
    gw = Gateway()
    call = _refreshing_call(gw)
    update = gw.advance(60).one_request(PBX, "UPDATE")
    ended = gw.from_pbx(answer(update, 481, contact=None))
    bye = ended.one_request(BROWSER, "BYE")
    assert bye.call_id == "jssip-call-1" and bye.from_tag == call.a_tag
    # 481: the PBX's dialog is gone already (RFC 3261 12.2.1.2), so no BYE there.
    assert ended.to(PBX) == []
    assert gw.of_type(CallEnded) == [CallEnded("jssip-call-1", EndReason.REFRESH_FAILED)]
    assert gw.core.active_calls == 0


def test_refresh_timing_out_ends_both_legs() -> None:
    gw = Gateway()
    _refreshing_call(gw)
    update = gw.advance(60).one_request(PBX, "UPDATE")
    # No answer: Timer E resends it, Timer F gives up at 64*T1 = 32 s (a 408).
    waiting = gw.advance(31.9)
    assert {r.cseq.seq for r in waiting.requests_to(PBX, "UPDATE")} == {update.cseq.seq}
    assert waiting.to(BROWSER) == []
    ended = gw.advance(0.1)
    assert ended.one_request(BROWSER, "BYE").call_id == "jssip-call-1"
    assert ended.requests_to(PBX, "BYE") == []
    assert gw.of_type(CallEnded) == [CallEnded("jssip-call-1", EndReason.REFRESH_FAILED)]
    assert gw.core.active_calls == 0


def test_reinvite_refresh_answered_408_ends_both_legs() -> None:
    gw = Gateway()
    _refreshing_call(gw)
    update = gw.advance(60).one_request(PBX, "UPDATE")
    gw.from_pbx(answer(update, 501, contact=None))
    reinvite = gw.advance(1).one_request(PBX, "INVITE")
    ended = gw.from_pbx(answer(reinvite, 408))
    assert ended.one_request(PBX, "ACK").cseq.seq == reinvite.cseq.seq  # the layer's
    assert ended.one_request(BROWSER, "BYE").call_id == "jssip-call-1"
    assert ended.requests_to(PBX, "BYE") == []
    assert gw.of_type(CallEnded) == [CallEnded("jssip-call-1", EndReason.REFRESH_FAILED)]
