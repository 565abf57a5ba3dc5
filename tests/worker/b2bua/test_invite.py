"""Calls both ways: INVITE, 100/180/183/200, ACK, BYE, failures, CANCEL, late offer."""

from __future__ import annotations

from rtcgw.sip.ids import shard_of
from rtcgw.sip.message import Request, Response
from rtcgw.worker.b2bua import (
    CallAnswered,
    CallDirection,
    CallEnded,
    CallStarted,
    EndReason,
)
from tests.worker.b2bua.harness import (
    BROWSER,
    BROWSER_CONTACT,
    PBX,
    SDP_ANSWER,
    SDP_OFFER,
    SHARD,
    Gateway,
    answer,
    browser_request,
    client_binding,
    header,
    pbx_request,
)


def _client_call(gw: Gateway, body: bytes = SDP_OFFER) -> tuple[Request, Request]:
    invite = browser_request(body=body, extra=[("Supported", "timer, ice, replaces, 100rel")])
    sent = gw.from_browser(invite)
    assert sent.statuses_to(BROWSER) == [100]
    return invite, sent.one_request(PBX, "INVITE")


def _answered_client_call(gw: Gateway) -> tuple[Request, Request, Response]:
    invite, b_invite = _client_call(gw)
    sent = gw.from_pbx(answer(b_invite, 200, body=SDP_ANSWER))
    ok = sent.responses_to(BROWSER)[0]
    assert sent.one_request(PBX, "ACK")
    return invite, b_invite, ok


def test_client_invite_reaches_pbx_with_its_identity_hidden() -> None:
    gw = Gateway()
    sent = gw.from_browser(browser_request(body=SDP_OFFER))
    b_invite = sent.one_request(PBX, "INVITE")
    assert b"invalid" not in sent.raw_to(PBX)
    assert b_invite.call_id != "jssip-call-1"
    assert shard_of(b_invite.call_id) == SHARD
    assert shard_of(b_invite.from_tag or "") == SHARD
    assert b_invite.from_tag != "alice-tag"
    assert b_invite.max_forwards == 69
    assert [v.host for v in b_invite.vias] == ["192.0.2.1"]
    assert shard_of(b_invite.top_via.branch or "") == SHARD
    assert str(b_invite.contacts[0].uri) == "sip:rtcgw@192.0.2.1:5060"
    assert str(b_invite.uri) == "sip:bob@pbx.example.org"
    assert b_invite.body == SDP_OFFER
    assert "timer" in b_invite.option_tags("Supported")
    assert header(b_invite, "Session-Expires") == "1800"
    [started] = gw.of_type(CallStarted)
    assert started == CallStarted("jssip-call-1", CallDirection.FROM_CLIENT, b_invite.call_id)


def test_100rel_is_not_offered_to_the_pbx() -> None:
    gw = Gateway()
    _, b_invite = _client_call(gw)
    assert "100rel" not in b_invite.option_tags("Supported")
    assert {"ice", "replaces", "timer"} <= b_invite.option_tags("Supported")


def test_uri_to_the_gateway_host_gets_the_destination_host() -> None:
    gw = Gateway()
    sent = gw.from_browser(browser_request(uri="sip:bob@gw.example.net", body=SDP_OFFER))
    assert str(sent.one_request(PBX, "INVITE").uri) == "sip:bob@192.0.2.50"


def test_provisional_and_answer_reach_the_client_in_its_own_dialog() -> None:
    gw = Gateway()
    invite, b_invite = _client_call(gw)
    internal_rr = ("<sip:10.0.0.9;lr>",)
    ringing = gw.from_pbx(answer(b_invite, 180, record_route=internal_rr))
    [r180] = ringing.responses_to(BROWSER)
    assert r180.status == 180
    assert r180.call_id == invite.call_id and r180.from_tag == "alice-tag"
    a_tag = r180.to_tag
    assert a_tag is not None and a_tag != "pbx-tag"
    progress = gw.from_pbx(answer(b_invite, 183, body=SDP_ANSWER))
    [r183] = progress.responses_to(BROWSER)
    assert r183.body == SDP_ANSWER and r183.to_tag == a_tag
    ok = answer(b_invite, 200, body=SDP_ANSWER, record_route=internal_rr)
    sent = gw.from_pbx(ok)
    [r200] = sent.responses_to(BROWSER)
    assert r200.status == 200 and r200.to_tag == a_tag and r200.body == SDP_ANSWER
    assert str(r200.contacts[0].uri) == "sip:rtcgw@gw.example.net:443;transport=ws"
    assert not r200.has("Record-Route")
    assert [v.host for v in r200.vias] == ["df7jal23ls0d.invalid"]
    ack = sent.one_request(PBX, "ACK")
    assert ack.call_id == b_invite.call_id and ack.cseq.seq == b_invite.cseq.seq
    assert str(ack.uri) == "sip:bob@192.0.2.50:5060"
    assert [str(r.uri) for r in ack.routes] == ["sip:10.0.0.9;lr"]
    assert gw.of_type(CallAnswered) == [CallAnswered("jssip-call-1")]
    client_ack = browser_request("ACK", to_tag=a_tag, cseq=1)
    assert gw.from_browser(client_ack).outgoing == []


def test_bye_from_client_reaches_pbx() -> None:
    gw = Gateway()
    _, b_invite, ok = _answered_client_call(gw)
    bye = browser_request("BYE", to_tag=ok.to_tag, cseq=2)
    sent = gw.from_browser(bye)
    assert sent.statuses_to(BROWSER) == [200]
    pbx_bye = sent.one_request(PBX, "BYE")
    assert pbx_bye.call_id == b_invite.call_id and pbx_bye.cseq.seq == 2
    assert gw.of_type(CallEnded) == [CallEnded("jssip-call-1", EndReason.HANGUP_CLIENT)]
    assert gw.core.active_calls == 0


def test_bye_from_pbx_reaches_client_over_its_connection() -> None:
    gw = Gateway()
    _, b_invite, _ok = _answered_client_call(gw)
    bye = pbx_request(
        "BYE",
        call_id=b_invite.call_id,
        from_tag="pbx-tag",
        to_tag=b_invite.from_tag,
        cseq=7,
        uri="sip:rtcgw@192.0.2.1:5060",
    )
    sent = gw.from_pbx(bye)
    assert sent.statuses_to(PBX) == [200]
    client_bye = sent.one_request(BROWSER, "BYE")
    assert client_bye.call_id == "jssip-call-1" and client_bye.to_tag == "alice-tag"
    assert str(client_bye.uri) == BROWSER_CONTACT
    assert gw.of_type(CallEnded)[0].reason is EndReason.HANGUP_SIP


def test_failure_is_relayed_and_acked_on_the_failing_leg() -> None:
    gw = Gateway()
    _, b_invite = _client_call(gw)
    sent = gw.from_pbx(answer(b_invite, 486))
    assert sent.statuses_to(BROWSER) == [486]
    ack = sent.one_request(PBX, "ACK")
    assert ack.call_id == b_invite.call_id
    assert gw.of_type(CallEnded) == [CallEnded("jssip-call-1", EndReason.REJECTED, 486)]


def test_pbx_call_goes_to_the_registered_client() -> None:
    gw = Gateway(bindings={"alice": client_binding("alice")})
    invite = pbx_request(body=SDP_ANSWER)
    sent = gw.from_pbx(invite)
    assert sent.statuses_to(PBX) == [100]
    b_invite = sent.one_request(BROWSER, "INVITE")
    assert str(b_invite.uri) == BROWSER_CONTACT
    assert b_invite.call_id != invite.call_id
    assert [v.host for v in b_invite.vias] == ["gw.example.net"]
    assert all("192.0.2.50" not in h.value for h in b_invite.headers if h.key != "from")
    assert not b_invite.has("Session-Expires")
    assert "transport=ws" in str(b_invite.contacts[0].uri)
    assert gw.of_type(CallStarted)[0].direction is CallDirection.FROM_SIP
    ok = answer(b_invite, 200, to_tag="js-tag", contact=BROWSER_CONTACT, body=SDP_OFFER)
    answered = gw.from_browser(ok)
    [r200] = answered.responses_to(PBX)
    assert r200.status == 200 and r200.body == SDP_OFFER
    assert b"invalid" not in answered.raw_to(PBX)
    assert answered.one_request(BROWSER, "ACK").call_id == b_invite.call_id
    # The 2xx is retransmitted over UDP until the PBX's ACK (RFC 3261 13.3.1.4).
    again = gw.advance(0.6)
    assert again.statuses_to(PBX) == [200]
    ack = pbx_request("ACK", to_tag=r200.to_tag, cseq=1)
    gw.from_pbx(ack)
    assert gw.advance(10).statuses_to(PBX) == []


def test_pbx_call_to_unknown_user_gets_480() -> None:
    gw = Gateway()
    sent = gw.from_pbx(pbx_request(body=SDP_ANSWER))
    assert sent.statuses_to(PBX) == [100, 480]


def test_cancel_after_provisional_is_forwarded() -> None:
    gw = Gateway()
    invite, b_invite = _client_call(gw)
    gw.from_pbx(answer(b_invite, 180))
    cancel = browser_request("CANCEL", branch=invite.top_via.branch, cseq=1)
    sent = gw.from_browser(cancel)
    assert sorted(sent.statuses_to(BROWSER)) == [200, 487]
    pbx_cancel = sent.one_request(PBX, "CANCEL")
    assert pbx_cancel.top_via.branch == b_invite.top_via.branch
    assert gw.of_type(CallEnded) == [CallEnded("jssip-call-1", EndReason.CANCELLED, 487)]
    gw.from_pbx(answer(pbx_cancel, 200))
    done = gw.from_pbx(answer(b_invite, 487))
    assert done.one_request(PBX, "ACK")
    assert done.to(BROWSER) == []
    assert gw.core.active_calls == 0


def test_cancel_before_provisional_waits_for_it() -> None:
    gw = Gateway()
    invite, b_invite = _client_call(gw)
    sent = gw.from_browser(browser_request("CANCEL", branch=invite.top_via.branch, cseq=1))
    assert sent.requests_to(PBX) == []
    later = gw.from_pbx(answer(b_invite, 180))
    assert later.one_request(PBX, "CANCEL")
    assert later.to(BROWSER) == []


def test_answer_racing_cancel_is_acked_and_ended() -> None:
    gw = Gateway()
    invite, b_invite = _client_call(gw)
    gw.from_pbx(answer(b_invite, 180))
    gw.from_browser(browser_request("CANCEL", branch=invite.top_via.branch, cseq=1))
    sent = gw.from_pbx(answer(b_invite, 200, body=SDP_ANSWER))
    assert sent.one_request(PBX, "ACK")
    assert sent.one_request(PBX, "BYE").call_id == b_invite.call_id
    assert sent.to(BROWSER) == []


def test_cancel_from_pbx_reaches_client() -> None:
    gw = Gateway(bindings={"alice": client_binding("alice")})
    invite = pbx_request(body=SDP_ANSWER)
    b_invite = gw.from_pbx(invite).one_request(BROWSER, "INVITE")
    gw.from_browser(answer(b_invite, 180, to_tag="js-tag", contact=BROWSER_CONTACT))
    sent = gw.from_pbx(pbx_request("CANCEL", branch=invite.top_via.branch, cseq=1))
    assert sorted(sent.statuses_to(PBX)) == [200, 487]
    assert sent.one_request(BROWSER, "CANCEL").call_id == b_invite.call_id


def test_late_offer_answer_travels_in_the_acks() -> None:
    gw = Gateway()
    _, b_invite = _client_call(gw, body=b"")
    assert b_invite.body == b""
    sent = gw.from_pbx(answer(b_invite, 200, body=SDP_ANSWER))
    [r200] = sent.responses_to(BROWSER)
    assert r200.body == SDP_ANSWER
    assert sent.requests_to(PBX, "ACK") == []  # waits for the answer
    ack = browser_request("ACK", to_tag=r200.to_tag, cseq=1, body=SDP_OFFER)
    acked = gw.from_browser(ack)
    pbx_ack = acked.one_request(PBX, "ACK")
    assert pbx_ack.body == SDP_OFFER and pbx_ack.content_type == "application/sdp"


def test_connection_close_ends_the_call_toward_the_pbx() -> None:
    gw = Gateway()
    _, b_invite, _ = _answered_client_call(gw)
    sent = gw.closed(7)
    assert sent.one_request(PBX, "BYE").call_id == b_invite.call_id
    assert sent.to(BROWSER) == []
    assert gw.of_type(CallEnded)[0].reason is EndReason.CONNECTION_CLOSED


def test_retried_invite_after_407_reuses_the_b_leg_identity() -> None:
    gw = Gateway()
    _invite, b_invite = _client_call(gw)
    challenge = ("Proxy-Authenticate", 'Digest realm="pbx", nonce="abc"')
    sent = gw.from_pbx(answer(b_invite, 407, extra=(challenge,)))
    [r407] = sent.responses_to(BROWSER)
    assert r407.get("Proxy-Authenticate") == 'Digest realm="pbx", nonce="abc"'
    creds = 'Digest username="alice", realm="pbx", nonce="abc", uri="sip:bob@pbx.example.org"'
    retry = browser_request(cseq=2, body=SDP_OFFER, extra=[("Proxy-Authorization", creds)])
    b_retry = gw.from_browser(retry).one_request(PBX, "INVITE")
    assert b_retry.call_id == b_invite.call_id
    assert b_retry.from_tag == b_invite.from_tag
    assert b_retry.cseq.seq == b_invite.cseq.seq + 1
    assert b_retry.get("Proxy-Authorization") == creds
    assert str(b_retry.uri) == "sip:bob@pbx.example.org"
