"""Out-of-dialog MESSAGE (RFC 3428): relayed both ways, the final answer relayed back."""

from __future__ import annotations

from rtcgw.sip.message import Request
from rtcgw.worker.b2bua import RequestRejected
from tests.worker.b2bua.harness import (
    BROWSER,
    BROWSER_CONTACT,
    PBX,
    Gateway,
    answer,
    browser_request,
    client_binding,
    header,
    pbx_request,
)

ALICE = client_binding("alice")


def _message(request: Request, text: bytes = b"hello") -> Request:
    return request.with_body(text, "text/plain").with_header("Authorization", 'Digest x="y"')


def test_client_message_reaches_the_pbx_with_a_new_identity() -> None:
    gw = Gateway()
    message = _message(browser_request("MESSAGE", contact=None))
    sent = gw.from_browser(message)
    out = sent.one_request(PBX, "MESSAGE")
    assert sent.to(BROWSER) == []
    assert str(out.uri) == "sip:bob@pbx.example.org"
    assert out.call_id != message.call_id and out.from_tag != message.from_tag
    assert out.cseq.seq == 1
    assert [v.host for v in out.vias] == ["192.0.2.1"]
    assert out.max_forwards == 69
    assert (out.content_type, out.body) == ("text/plain", b"hello")
    assert header(out, "Authorization") == 'Digest x="y"'  # digest passes through
    assert not out.has("Contact")
    assert b"invalid" not in bytes(out)

    ok = answer(out, 202, to_tag="pbx-tag", contact=None)
    back = gw.from_pbx(ok)
    [relayed] = back.responses_to(BROWSER)
    assert relayed.status == 202 and relayed.reason == "Accepted"
    assert relayed.call_id == message.call_id and relayed.cseq == message.cseq
    assert relayed.top_via.branch == message.top_via.branch
    assert relayed.to_tag not in (None, "pbx-tag")
    assert back.to(PBX) == []


def test_pbx_message_reaches_the_registered_client_over_its_connection() -> None:
    gw = Gateway(bindings={"alice": ALICE})
    message = _message(pbx_request("MESSAGE", contact=None), b"ping")
    sent = gw.from_pbx(message)
    out = sent.one_request(BROWSER, "MESSAGE")
    assert str(out.uri) == BROWSER_CONTACT
    assert [v.host for v in out.vias] == ["gw.example.net"]
    assert out.call_id != message.call_id
    assert out.body == b"ping"
    assert b"192.0.2.50" not in bytes(out).split(b"\r\nFrom:")[0]

    failed = gw.from_browser(answer(out, 415, to_tag="js", contact=None))
    [relayed] = failed.responses_to(PBX)
    assert (relayed.status, relayed.call_id) == (415, message.call_id)


def test_pbx_message_to_an_offline_user_gets_480() -> None:
    gw = Gateway()
    sent = gw.from_pbx(pbx_request("MESSAGE", contact=None))
    assert sent.statuses_to(PBX) == [480]
    assert sent.to(BROWSER) == []
    [rejected] = gw.of_type(RequestRejected)
    assert isinstance(rejected, RequestRejected) and rejected.status == 480


def test_message_with_max_forwards_zero_gets_483() -> None:
    gw = Gateway()
    message = browser_request("MESSAGE", contact=None).with_header_replaced("Max-Forwards", "0")
    sent = gw.from_browser(message)
    assert sent.statuses_to(BROWSER) == [483]
    assert sent.to(PBX) == []


def test_unanswered_message_gets_408() -> None:
    gw = Gateway()
    sent = gw.from_browser(browser_request("MESSAGE", contact=None))
    assert sent.one_request(PBX, "MESSAGE")
    later = gw.advance(40)  # Timer F: 64*T1
    assert later.statuses_to(BROWSER) == [408]
