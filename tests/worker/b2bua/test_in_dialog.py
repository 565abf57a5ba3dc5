"""Out-of-dialog answers, in-dialog relays, session timers, bad input."""

from __future__ import annotations

from rtcgw.sip.message import Request, Response
from rtcgw.worker.b2bua import CallEnded, EndReason, MessageDropped
from tests.worker.b2bua.harness import (
    BROWSER,
    BROWSER_CONTACT,
    PBX,
    SDP_ANSWER,
    SDP_OFFER,
    Gateway,
    answer,
    browser_request,
    header,
    pbx_request,
)


def _call(
    gw: Gateway, *, invite_extra: tuple[tuple[str, str], ...] = (), ok_extra: tuple = ()
) -> tuple[Request, Response]:
    invite = browser_request(body=SDP_OFFER, extra=list(invite_extra))
    b_invite = gw.from_browser(invite).one_request(PBX, "INVITE")
    ok = gw.from_pbx(answer(b_invite, 200, body=SDP_ANSWER, extra=ok_extra)).responses_to(BROWSER)[
        0
    ]
    gw.from_browser(browser_request("ACK", to_tag=ok.to_tag, cseq=1))
    return b_invite, ok


def test_options_ping_is_answered_locally() -> None:
    gw = Gateway()
    sent = gw.from_pbx(pbx_request("OPTIONS", extra=[("Max-Forwards", "0")]))
    [ok] = sent.responses_to(PBX)
    assert ok.status == 200 and "INVITE" in header(ok, "Allow")
    assert sent.requests_to(BROWSER) == []


def test_max_forwards_zero_gets_483() -> None:
    gw = Gateway()
    invite = browser_request(body=SDP_OFFER).with_header_replaced("Max-Forwards", "0")
    sent = gw.from_browser(invite)
    assert sent.statuses_to(BROWSER) == [100, 483]
    assert sent.requests_to(PBX) == []


def test_unknown_method_gets_501_and_unknown_dialog_481() -> None:
    gw = Gateway()
    assert gw.from_pbx(pbx_request("FROB")).statuses_to(PBX) == [501]
    assert gw.from_pbx(pbx_request("BYE", to_tag="nope")).statuses_to(PBX) == [481]


def test_unparseable_request_gets_400_and_a_notice() -> None:
    gw = Gateway()
    data = bytes(pbx_request("OPTIONS")).replace(b"Max-Forwards: 70", b"Max-Forwards: lots")
    out = gw.core.receive_bytes(data, PBX, 0.0, interface="sip")
    assert [parse.status for parse in (_parse(o.data) for o in out.outgoing)] == [400]
    assert any(isinstance(n, MessageDropped) for n in out.notices)
    garbage = gw.core.receive_bytes(b"SIP/2.0 200 OK\r\n\r\n", PBX, 0.0, interface="sip")
    assert garbage.outgoing == () and len(garbage.notices) == 1


def _parse(data: bytes) -> Response:
    from rtcgw.sip.parse import parse_message

    message = parse_message(data)
    assert isinstance(message, Response)
    return message


def test_reinvite_from_pbx_is_relayed_with_each_legs_cseq() -> None:
    gw = Gateway()
    b_invite, _ok = _call(gw)
    reinvite = pbx_request(
        "INVITE",
        call_id=b_invite.call_id,
        from_tag="pbx-tag",
        to_tag=b_invite.from_tag,
        cseq=20,
        body=SDP_ANSWER,
    )
    sent = gw.from_pbx(reinvite)
    assert sent.statuses_to(PBX) == [100]
    client_reinvite = sent.one_request(BROWSER, "INVITE")
    assert client_reinvite.call_id == "jssip-call-1"
    assert client_reinvite.cseq.seq == 1  # our first request on the client leg
    assert client_reinvite.body == SDP_ANSWER
    reply = answer(client_reinvite, 200, to_tag="alice-tag", contact=BROWSER_CONTACT)
    relayed = gw.from_browser(reply.with_body(SDP_OFFER, "application/sdp"))
    [r200] = relayed.responses_to(PBX)
    assert r200.status == 200 and r200.cseq.seq == 20 and r200.body == SDP_OFFER
    assert relayed.one_request(BROWSER, "ACK").cseq.seq == 1


def test_info_from_client_is_relayed_and_answered() -> None:
    gw = Gateway()
    b_invite, ok = _call(gw)
    info = browser_request("INFO", to_tag=ok.to_tag, cseq=3).with_body(
        b"Signal=5\r\nDuration=100\r\n", "application/dtmf-relay"
    )
    sent = gw.from_browser(info)
    pbx_info = sent.one_request(PBX, "INFO")
    assert pbx_info.call_id == b_invite.call_id
    assert pbx_info.content_type == "application/dtmf-relay"
    back = gw.from_pbx(answer(pbx_info, 200, contact=None))
    assert back.statuses_to(BROWSER) == [200]


def test_client_update_refresh_is_answered_by_the_gateway() -> None:
    gw = Gateway()
    _, ok = _call(gw, invite_extra=(("Session-Expires", "90"), ("Supported", "timer")))
    assert header(ok, "Session-Expires") == "90;refresher=uac"
    assert "timer" in ok.option_tags("Require")
    gw.advance(40)
    sent = gw.from_browser(browser_request("UPDATE", to_tag=ok.to_tag, cseq=2))
    [r200] = sent.responses_to(BROWSER)
    assert r200.status == 200 and header(r200, "Session-Expires") == "90;refresher=uac"
    assert sent.requests_to(PBX) == []
    assert gw.of_type(CallEnded) == []


def test_client_session_expiry_ends_both_legs() -> None:
    gw = Gateway()
    b_invite, _ok = _call(gw, invite_extra=(("Session-Expires", "90"), ("Supported", "timer")))
    sent = gw.advance(60)  # 90 - min(32, 90/3)
    assert sent.one_request(PBX, "BYE").call_id == b_invite.call_id
    assert sent.one_request(BROWSER, "BYE").call_id == "jssip-call-1"
    assert gw.of_type(CallEnded)[0].reason is EndReason.SESSION_EXPIRED


def test_gateway_refreshes_toward_pbx_when_asked() -> None:
    gw = Gateway()
    b_invite, _ = _call(gw, ok_extra=(("Session-Expires", "120;refresher=uac"),))
    sent = gw.advance(60)
    update = sent.one_request(PBX, "UPDATE")
    assert update.call_id == b_invite.call_id
    assert header(update, "Session-Expires") == "120;refresher=uac"
    assert sent.requests_to(BROWSER) == []
    gw.from_pbx(answer(update, 200, extra=(("Session-Expires", "120;refresher=uac"),)))
    assert gw.advance(50).requests_to(PBX) == []
