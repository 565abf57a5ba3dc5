"""100rel (RFC 3262): never offered, refused when required, PRACKed on the leg that sent a
reliable provisional, and never relayed reliably (package docstring)."""

from __future__ import annotations

from rtcgw.sip.message import Request, Response
from rtcgw.worker.b2bua import CallStarted, RequestRejected
from tests.worker.b2bua.harness import (
    BROWSER,
    BROWSER_CONTACT,
    PBX,
    SDP_ANSWER,
    SDP_OFFER,
    Gateway,
    Sent,
    answer,
    browser_request,
    header,
    pbx_request,
)
from tests.worker.b2bua.scenarios import (
    browser_binding,
    confirmed_client_call,
    start_client_call,
)

RELIABLE = (("Require", "100rel"), ("RSeq", "1"))


def _option_tags(message: Request | Response) -> set[str]:
    return message.option_tags("Supported") | message.option_tags("Require")


def test_client_invite_requiring_100rel_gets_420() -> None:
    gw = Gateway()
    invite = browser_request(body=SDP_OFFER, extra=[("Supported", "timer"), ("Require", "100rel")])
    sent = gw.from_browser(invite)
    assert sent.statuses_to(BROWSER) == [100, 420]
    r420 = sent.responses_to(BROWSER)[1]
    assert header(r420, "Unsupported") == "100rel"  # RFC 3261 8.2.2.3
    assert sent.to(PBX) == []
    assert gw.of_type(CallStarted) == []
    assert gw.of_type(RequestRejected) == [RequestRejected("jssip-call-1", 420, r420.reason)]
    assert gw.core.active_calls == 0


def test_pbx_invite_requiring_100rel_gets_420() -> None:
    gw = Gateway(bindings=browser_binding())
    sent = gw.from_pbx(pbx_request(body=SDP_ANSWER, extra=[("Require", "100rel")]))
    assert sent.statuses_to(PBX) == [100, 420]
    assert header(sent.responses_to(PBX)[1], "Unsupported") == "100rel"
    assert sent.to(BROWSER) == []


def test_reliable_provisional_is_pracked_and_relayed_unreliably() -> None:
    gw = Gateway()
    _, b_invite = start_client_call(gw)
    reliable = answer(
        b_invite,
        183,
        body=SDP_ANSWER,
        extra=RELIABLE,
        record_route=("<sip:10.0.0.9;lr>",),
    )
    sent = gw.from_pbx(reliable)
    prack = sent.one_request(PBX, "PRACK")
    assert prack.call_id == b_invite.call_id
    assert prack.from_tag == b_invite.from_tag and prack.to_tag == "pbx-tag"
    assert header(prack, "RAck") == f"1 {b_invite.cseq.seq} INVITE"
    assert prack.cseq.seq == b_invite.cseq.seq + 1
    assert str(prack.uri) == "sip:bob@192.0.2.50:5060"  # the 183's Contact
    assert [str(r.uri) for r in prack.routes] == ["sip:10.0.0.9;lr"]
    [r183] = sent.responses_to(BROWSER)
    assert r183.status == 183 and r183.body == SDP_ANSWER
    assert not r183.has("RSeq") and not r183.has("Require")
    assert "100rel" not in _option_tags(r183)
    # The PRACK's 200 concerns the PBX leg only.
    assert gw.from_pbx(answer(prack, 200, contact=None)).outgoing == []
    # The call goes on: the 200 reaches the browser, the ACK the PBX.
    done = gw.from_pbx(answer(b_invite, 200, body=SDP_ANSWER))
    assert done.statuses_to(BROWSER) == [200]
    assert done.one_request(PBX, "ACK").cseq.seq == b_invite.cseq.seq


def test_retransmitted_reliable_provisional_is_not_pracked_or_relayed_again() -> None:
    gw = Gateway()
    _, b_invite = start_client_call(gw)
    reliable = answer(b_invite, 180, extra=RELIABLE)
    first = gw.from_pbx(reliable)
    assert first.one_request(PBX, "PRACK")
    assert first.statuses_to(BROWSER) == [180]
    # RFC 3262 section 4: "retransmissions of that response MUST be discarded"; our
    # PRACK's own transaction takes care of its retransmissions.
    again = gw.from_pbx(reliable)
    assert again.requests_to(PBX, "PRACK") == []
    assert again.to(BROWSER) == []
    # The next reliable provisional (RSeq + 1) is PRACKed.
    progress = answer(b_invite, 183, body=SDP_ANSWER, extra=(("Require", "100rel"), ("RSeq", "2")))
    later = gw.from_pbx(progress)
    assert header(later.one_request(PBX, "PRACK"), "RAck") == f"2 {b_invite.cseq.seq} INVITE"
    assert later.statuses_to(BROWSER) == [183]


def test_reliable_provisional_from_a_client_is_pracked_on_its_leg() -> None:
    gw = Gateway(bindings=browser_binding())
    b_invite = gw.from_pbx(pbx_request(body=SDP_ANSWER)).one_request(BROWSER, "INVITE")
    ringing = answer(b_invite, 180, to_tag="js-tag", contact=BROWSER_CONTACT, extra=RELIABLE)
    sent = gw.from_browser(ringing)
    prack = sent.one_request(BROWSER, "PRACK")
    assert prack.call_id == b_invite.call_id and prack.to_tag == "js-tag"
    assert str(prack.uri) == BROWSER_CONTACT
    [r180] = sent.responses_to(PBX)
    assert r180.status == 180 and not r180.has("RSeq") and not r180.has("Require")


def test_prack_from_a_peer_gets_481() -> None:
    gw = Gateway()
    call = confirmed_client_call(gw)
    prack = call.from_browser("PRACK", 2).with_header("RAck", "1 1 INVITE")
    sent = gw.from_browser(prack)
    assert sent.statuses_to(BROWSER) == [481]
    assert sent.to(PBX) == []
    pbx_prack = call.from_pbx("PRACK", 20).with_header("RAck", "1 1 INVITE")
    assert gw.from_pbx(pbx_prack).statuses_to(PBX) == [481]
    # Out of any dialog too.
    assert gw.from_pbx(pbx_request("PRACK", to_tag="nope")).statuses_to(PBX) == [481]
    assert gw.from_pbx(pbx_request("PRACK")).statuses_to(PBX) == [481]


def test_prack_in_an_early_dialog_gets_481() -> None:
    gw = Gateway(bindings=browser_binding())
    invite = pbx_request(body=SDP_ANSWER)
    b_invite = gw.from_pbx(invite).one_request(BROWSER, "INVITE")
    [r180] = gw.from_browser(
        answer(b_invite, 180, to_tag="js-tag", contact=BROWSER_CONTACT)
    ).responses_to(PBX)
    prack = pbx_request("PRACK", to_tag=r180.to_tag, cseq=2).with_header("RAck", "1 1 INVITE")
    sent = gw.from_pbx(prack)
    assert sent.statuses_to(PBX) == [481]
    assert sent.to(BROWSER) == []


def _everything(sents: list[Sent], peer_is_browser: bool) -> list[Request | Response]:
    peer = BROWSER if peer_is_browser else PBX
    return [m for sent in sents for m in sent.to(peer)]


def test_100rel_never_reaches_either_side_in_supported_or_require() -> None:
    gw = Gateway(bindings=browser_binding())
    tags = (("Supported", "100rel, timer, replaces"), ("Require", "replaces"))
    sents: list[Sent] = []
    # From the PBX to the browser: INVITE, 18x and 2xx, both carrying 100rel.
    invite = pbx_request(body=SDP_ANSWER, extra=list(tags))
    sents.append(gw.from_pbx(invite))
    b_invite = sents[-1].one_request(BROWSER, "INVITE")
    ring = answer(b_invite, 180, to_tag="js-tag", contact=BROWSER_CONTACT, extra=tags)
    sents.append(gw.from_browser(ring))
    ok = answer(b_invite, 200, to_tag="js-tag", contact=BROWSER_CONTACT, body=SDP_OFFER, extra=tags)
    sents.append(gw.from_browser(ok))
    [r200] = sents[-1].responses_to(PBX)
    sents.append(gw.from_pbx(pbx_request("ACK", to_tag=r200.to_tag, cseq=1)))
    # A re-INVITE each way inside the dialog, with its 2xx.
    reinvite = pbx_request("INVITE", to_tag=r200.to_tag, cseq=2, body=SDP_ANSWER, extra=list(tags))
    sents.append(gw.from_pbx(reinvite))
    to_client = sents[-1].one_request(BROWSER, "INVITE")
    reply = answer(to_client, 200, to_tag="js-tag", contact=BROWSER_CONTACT, body=SDP_OFFER)
    sents.append(gw.from_browser(reply.with_header("Supported", "100rel, timer")))
    sents.append(gw.from_pbx(pbx_request("ACK", to_tag=r200.to_tag, cseq=2)))
    # And a browser-to-PBX call offering 100rel.
    _, to_pbx = start_client_call(gw, extra=tags)
    sents.append(gw.from_pbx(answer(to_pbx, 200, body=SDP_ANSWER, extra=tags)))
    for message in _everything(sents, True) + _everything(sents, False):
        assert "100rel" not in _option_tags(message), message
    assert "replaces" in b_invite.option_tags("Require")
    assert "replaces" in to_pbx.option_tags("Require")
