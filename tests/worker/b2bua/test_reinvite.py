"""Relayed re-INVITEs: CANCEL of one in progress, and late offers (no SDP in the
re-INVITE: the offer comes in the 2xx, the answer in the ACK)."""

from __future__ import annotations

from rtcgw.sip.message import Request
from rtcgw.worker.b2bua import CallEnded, MessageDropped
from tests.worker.b2bua.harness import (
    BROWSER,
    BROWSER_CONTACT,
    PBX,
    SDP_ANSWER,
    SDP_OFFER,
    Gateway,
    answer,
    pbx_request,
)
from tests.worker.b2bua.scenarios import ClientCall, confirmed_client_call


def _relayed_pbx_reinvite(gw: Gateway, call: ClientCall, cseq: int = 20) -> tuple[Request, Request]:
    """The PBX's re-INVITE and the browser's copy of it."""
    reinvite = call.from_pbx("INVITE", cseq, body=SDP_ANSWER)
    return reinvite, gw.from_pbx(reinvite).one_request(BROWSER, "INVITE")


def test_cancel_of_a_relayed_reinvite_is_relayed() -> None:
    gw = Gateway()
    call = confirmed_client_call(gw)
    reinvite, to_client = _relayed_pbx_reinvite(gw, call)
    assert gw.from_browser(answer(to_client, 100, to_tag="alice-tag")).to(PBX) == []
    cancel = pbx_request(
        "CANCEL",
        call_id=call.b_invite.call_id,
        from_tag="pbx-tag",
        to_tag=call.b_invite.from_tag,
        cseq=20,
        branch=reinvite.top_via.branch,
        uri=str(reinvite.uri),
    )
    sent = gw.from_pbx(cancel)
    responses = {r.cseq.method: r.status for r in sent.responses_to(PBX)}
    assert responses == {"CANCEL": 200, "INVITE": 487}
    client_cancel = sent.one_request(BROWSER, "CANCEL")
    assert client_cancel.top_via.branch == to_client.top_via.branch
    assert client_cancel.cseq.seq == to_client.cseq.seq
    assert client_cancel.call_id == "jssip-call-1"
    # The browser answers its CANCEL and then ends its re-INVITE with 487: ACKed on its
    # leg, and nothing more reaches the PBX, which already has its 487.
    assert gw.from_browser(answer(client_cancel, 200, to_tag="alice-tag")).to(PBX) == []
    done = gw.from_browser(answer(to_client, 487, to_tag="alice-tag"))
    assert done.one_request(BROWSER, "ACK").cseq.seq == to_client.cseq.seq
    assert done.to(PBX) == []
    assert gw.of_type(CallEnded) == []
    # The call goes on: a new re-INVITE is relayed.
    _, again = _relayed_pbx_reinvite(gw, call, cseq=21)
    assert again.cseq.seq == to_client.cseq.seq + 1


def test_cancelled_reinvite_answered_200_anyway_is_acked_not_relayed() -> None:
    gw = Gateway()
    call = confirmed_client_call(gw)
    reinvite, to_client = _relayed_pbx_reinvite(gw, call)
    gw.from_browser(answer(to_client, 180, to_tag="alice-tag", contact=BROWSER_CONTACT))
    cancel = pbx_request(
        "CANCEL",
        call_id=call.b_invite.call_id,
        from_tag="pbx-tag",
        to_tag=call.b_invite.from_tag,
        cseq=20,
        branch=reinvite.top_via.branch,
        uri=str(reinvite.uri),
    )
    assert gw.from_pbx(cancel).one_request(BROWSER, "CANCEL")
    # The browser's 200 raced the CANCEL (RFC 3261 9.2): it must be ACKed; the PBX
    # has its 487 and gets nothing more.
    late = answer(to_client, 200, to_tag="alice-tag", contact=BROWSER_CONTACT, body=SDP_OFFER)
    sent = gw.from_browser(late)
    assert sent.one_request(BROWSER, "ACK").cseq.seq == to_client.cseq.seq
    assert sent.to(PBX) == []
    assert gw.of_type(CallEnded) == []


def test_late_offer_reinvite_from_pbx() -> None:
    gw = Gateway()
    call = confirmed_client_call(gw)
    reinvite = call.from_pbx("INVITE", 20)
    to_client = gw.from_pbx(reinvite).one_request(BROWSER, "INVITE")
    assert to_client.body == b"" and not to_client.has("Content-Type")
    # The browser's 2xx carries its offer; the PBX gets it in the relayed 2xx.
    reply = answer(to_client, 200, to_tag="alice-tag", contact=BROWSER_CONTACT, body=SDP_OFFER)
    sent = gw.from_browser(reply)
    [r200] = sent.responses_to(PBX)
    assert r200.status == 200 and r200.cseq.seq == 20
    assert r200.body == SDP_OFFER and r200.content_type == "application/sdp"
    # The ACK toward the browser waits for the answer, which only the PBX's ACK has.
    assert sent.requests_to(BROWSER, "ACK") == []
    ack = call.from_pbx("ACK", 20, body=SDP_ANSWER)
    acked = gw.from_pbx(ack)
    client_ack = acked.one_request(BROWSER, "ACK")
    assert client_ack.cseq.seq == to_client.cseq.seq
    assert client_ack.call_id == "jssip-call-1" and client_ack.to_tag == "alice-tag"
    assert client_ack.body == SDP_ANSWER and client_ack.content_type == "application/sdp"
    assert acked.to(PBX) == []
    # Once ACKed, the 2xx to the PBX (UDP) is no longer retransmitted.
    assert gw.advance(10).to(PBX) == []
    assert gw.of_type(CallEnded) == []


def test_late_offer_reinvite_from_client() -> None:
    gw = Gateway()
    call = confirmed_client_call(gw)
    to_pbx = gw.from_browser(call.from_browser("INVITE", 2)).one_request(PBX, "INVITE")
    assert to_pbx.body == b""
    reply = answer(to_pbx, 200, body=SDP_ANSWER)
    sent = gw.from_pbx(reply)
    [r200] = sent.responses_to(BROWSER)
    assert r200.status == 200 and r200.body == SDP_ANSWER
    assert sent.requests_to(PBX, "ACK") == []
    # The PBX retransmits its 2xx while it waits (UDP): no ACK without the answer.
    assert gw.from_pbx(reply).requests_to(PBX, "ACK") == []
    acked = gw.from_browser(call.from_browser("ACK", 2, body=SDP_OFFER))
    pbx_ack = acked.one_request(PBX, "ACK")
    assert pbx_ack.cseq.seq == to_pbx.cseq.seq and pbx_ack.call_id == call.b_invite.call_id
    assert pbx_ack.body == SDP_OFFER and pbx_ack.content_type == "application/sdp"
    # A second copy of the browser's ACK does not make a second ACK.
    again = gw.from_browser(call.from_browser("ACK", 2, body=SDP_OFFER))
    assert again.requests_to(PBX, "ACK") == []
    assert not [n for n in gw.notices if isinstance(n, MessageDropped)]
