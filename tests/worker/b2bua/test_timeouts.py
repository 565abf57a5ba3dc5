"""Timers and failed deliveries: CANCEL without a final, 2xx without ACK, Timer B, and
messages the runtime could not deliver. T1 is 0.5 s, so 64*T1 is 32 s."""

from __future__ import annotations

from rtcgw.sip.message import Request
from rtcgw.worker.b2bua import (
    CallAnswered,
    CallEnded,
    EndReason,
    MessageDropped,
)
from tests.worker.b2bua.harness import (
    BROWSER,
    BROWSER_CONTACT,
    PBX,
    SDP_ANSWER,
    SDP_OFFER,
    Gateway,
    answer,
    browser_request,
    pbx_request,
)
from tests.worker.b2bua.scenarios import (
    browser_binding,
    confirmed_client_call,
    outgoing_to,
    start_client_call,
    transport_failed,
)

T1 = 0.5
SIXTY_FOUR_T1 = 64 * T1


def _cancel(invite: Request) -> Request:
    return browser_request("CANCEL", branch=invite.top_via.branch, cseq=invite.cseq.seq)


# -- CANCEL without a final response (RFC 3261 9.1) ----------------------------------------


def test_cancelled_invite_without_final_is_dropped_after_64_t1() -> None:
    gw = Gateway()
    invite, b_invite = start_client_call(gw)
    gw.from_pbx(answer(b_invite, 180))
    cancelled = gw.from_browser(_cancel(invite))
    assert sorted(cancelled.statuses_to(BROWSER)) == [200, 487]
    pbx_cancel = cancelled.one_request(PBX, "CANCEL")
    gw.from_pbx(answer(pbx_cancel, 200))
    # The PBX never sends its 487: the call lingers, then goes, silently.
    assert gw.advance(SIXTY_FOUR_T1 - 0.1).to(PBX) == []
    assert gw.core.active_calls == 1
    dropped = gw.advance(0.1)
    assert dropped.outgoing == []
    assert gw.core.active_calls == 0
    assert gw.core.next_deadline() is None
    assert gw.of_type(CallEnded) == [CallEnded("jssip-call-1", EndReason.CANCELLED, 487)]
    # A 487 arriving afterwards matches nothing.
    late = gw.from_pbx(answer(b_invite, 487))
    assert late.outgoing == []
    dropped_notices = [n for n in gw.notices if isinstance(n, MessageDropped)]
    assert [n.reason for n in dropped_notices] == ["stray_response"]


def test_cancel_before_any_provisional_goes_out_on_100_trying() -> None:
    gw = Gateway()
    invite, b_invite = start_client_call(gw)
    early = gw.from_browser(_cancel(invite))
    assert sorted(early.statuses_to(BROWSER)) == [200, 487]
    assert early.to(PBX) == []  # 9.1: not before a provisional response
    # 100 Trying is a provisional response: now the CANCEL may go.
    trying = gw.from_pbx(answer(b_invite, 100))
    pbx_cancel = trying.one_request(PBX, "CANCEL")
    assert pbx_cancel.top_via.branch == b_invite.top_via.branch
    assert trying.to(BROWSER) == []
    gw.from_pbx(answer(pbx_cancel, 200))
    done = gw.from_pbx(answer(b_invite, 487))
    assert done.one_request(PBX, "ACK").cseq.seq == b_invite.cseq.seq
    assert gw.core.active_calls == 0
    assert gw.of_type(CallEnded) == [CallEnded("jssip-call-1", EndReason.CANCELLED, 487)]


# -- 2xx without ACK (RFC 3261 13.3.1.4) ---------------------------------------------------


def test_2xx_to_the_client_without_ack_ends_the_call() -> None:
    gw = Gateway()
    _, b_invite = start_client_call(gw)
    answered = gw.from_pbx(answer(b_invite, 200, body=SDP_ANSWER))
    [ok] = answered.responses_to(BROWSER)
    assert answered.one_request(PBX, "ACK")
    # Over WSS nothing is retransmitted; the browser never ACKs.
    assert gw.advance(SIXTY_FOUR_T1 - 0.1).outgoing == []
    ended = gw.advance(0.1)
    pbx_bye = ended.one_request(PBX, "BYE")
    assert pbx_bye.call_id == b_invite.call_id and pbx_bye.to_tag == "pbx-tag"
    # 13.3.1.4: "the dialog is confirmed, but the session SHOULD be terminated" with BYE.
    client_bye = ended.one_request(BROWSER, "BYE")
    assert client_bye.call_id == "jssip-call-1" and client_bye.from_tag == ok.to_tag
    assert gw.of_type(CallEnded) == [CallEnded("jssip-call-1", EndReason.NO_ACK)]
    assert gw.core.active_calls == 0


def test_2xx_to_the_pbx_is_retransmitted_then_the_call_ends_without_ack() -> None:
    gw = Gateway(bindings=browser_binding())
    b_invite = gw.from_pbx(pbx_request(body=SDP_ANSWER)).one_request(BROWSER, "INVITE")
    ok = answer(b_invite, 200, to_tag="js-tag", contact=BROWSER_CONTACT, body=SDP_OFFER)
    [r200] = gw.from_browser(ok).responses_to(PBX)
    resent_at: list[float] = []
    while gw.now < SIXTY_FOUR_T1 - 0.5:
        step = gw.advance(0.25)
        resent_at += [gw.now] * len(step.responses_to(PBX))
        assert step.requests_to(PBX) == []
    # T1, doubling, capped at T2 (RFC 3261 13.3.1.4).
    assert resent_at == [0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5]
    ended = gw.advance(0.5)
    assert gw.now == SIXTY_FOUR_T1
    assert ended.one_request(BROWSER, "BYE").to_tag == "js-tag"
    pbx_bye = ended.one_request(PBX, "BYE")
    assert pbx_bye.call_id == "pbx-call-1@192.0.2.50" and pbx_bye.from_tag == r200.to_tag
    assert gw.of_type(CallEnded) == [CallEnded("pbx-call-1@192.0.2.50", EndReason.NO_ACK)]


# -- Timer B on the B-leg INVITE -----------------------------------------------------------


def test_timer_b_on_the_pbx_leg_gives_the_client_408() -> None:
    gw = Gateway()
    start_client_call(gw)
    waiting = gw.advance(SIXTY_FOUR_T1 - 0.1)
    # Timer A retransmits the INVITE over UDP at 0.5, 1.5, 3.5, 7.5, 15.5, 31.5 s.
    assert len(waiting.requests_to(PBX, "INVITE")) == 6
    assert waiting.to(BROWSER) == []
    timed_out = gw.advance(0.1)
    [r408] = timed_out.responses_to(BROWSER)
    assert r408.status == 408 and r408.call_id == "jssip-call-1"
    assert r408.to_tag is not None and r408.from_tag == "alice-tag"
    assert timed_out.to(PBX) == []
    assert gw.of_type(CallEnded) == [CallEnded("jssip-call-1", EndReason.TIMEOUT, 408)]
    assert gw.of_type(CallAnswered) == []
    assert gw.core.active_calls == 0


def test_timer_b_on_the_client_leg_gives_the_pbx_408() -> None:
    gw = Gateway(bindings=browser_binding())
    gw.from_pbx(pbx_request(body=SDP_ANSWER)).one_request(BROWSER, "INVITE")
    timed_out = gw.advance(SIXTY_FOUR_T1)
    assert [r.status for r in timed_out.responses_to(PBX)] == [408]
    assert timed_out.to(BROWSER) == []
    assert gw.of_type(CallEnded) == [CallEnded("pbx-call-1@192.0.2.50", EndReason.TIMEOUT, 408)]


# -- failed deliveries ---------------------------------------------------------------------


def test_undeliverable_2xx_to_the_client_ends_the_call() -> None:
    gw = Gateway()
    _, b_invite = start_client_call(gw)
    answered = gw.from_pbx(answer(b_invite, 200, body=SDP_ANSWER))
    [to_client] = outgoing_to(answered, BROWSER)
    failed = transport_failed(gw, to_client)
    bye = failed.one_request(PBX, "BYE")
    assert bye.call_id == b_invite.call_id and bye.to_tag == "pbx-tag"
    assert failed.to(BROWSER) == []
    assert gw.of_type(CallEnded) == [CallEnded("jssip-call-1", EndReason.TRANSPORT_FAILED)]
    assert gw.core.active_calls == 0
    # Nothing is left to fire later (no ACK wait, no BYE to the browser).
    assert gw.advance(SIXTY_FOUR_T1 + 1).to(BROWSER) == []


def test_undeliverable_request_to_the_client_ends_the_call() -> None:
    gw = Gateway()
    call = confirmed_client_call(gw)
    relayed = gw.from_pbx(call.from_pbx("INVITE", 20, body=SDP_ANSWER))
    [to_client] = outgoing_to(relayed, BROWSER)
    failed = transport_failed(gw, to_client)
    # RFC 3261 8.1.3.1: treated as a 503, which the PBX gets for its re-INVITE; the
    # client is unreachable, so the call ends and the PBX gets a BYE too.
    [r503] = failed.responses_to(PBX)
    assert r503.status == 503 and r503.cseq.seq == 20
    bye = failed.one_request(PBX, "BYE")
    assert bye.call_id == call.b_invite.call_id
    assert failed.to(BROWSER) == []
    assert gw.of_type(CallEnded) == [CallEnded("jssip-call-1", EndReason.TRANSPORT_FAILED)]
    assert gw.core.active_calls == 0


def test_undeliverable_invite_to_the_client_gives_the_pbx_503() -> None:
    gw = Gateway(bindings=browser_binding())
    sent = gw.from_pbx(pbx_request(body=SDP_ANSWER))
    [to_client] = outgoing_to(sent, BROWSER)
    failed = transport_failed(gw, to_client)
    assert failed.statuses_to(PBX) == [503]
    assert failed.to(BROWSER) == []
    assert gw.of_type(CallEnded) == [
        CallEnded("pbx-call-1@192.0.2.50", EndReason.TRANSPORT_FAILED, 503)
    ]
