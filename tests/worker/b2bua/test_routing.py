"""Routing by the rules: admission by source, replies, unrouted requests, retargeting
from the registration cache, RouteDecided, OPTIONS, and 183 -> 180 mediation."""

from __future__ import annotations

from dataclasses import replace

from rtcgw.config import GatewayConfig, load_config_text
from rtcgw.sip.message import Response
from rtcgw.sip.transport import Peer, Transport
from rtcgw.worker.b2bua import CallStarted, RequestRejected, RouteDecided
from tests.worker.b2bua.harness import (
    BROWSER,
    BROWSER_CONTACT,
    GW_SIP,
    PBX,
    SDP_ANSWER,
    SDP_OFFER,
    Gateway,
    answer,
    browser_request,
    client_binding,
    header,
    pbx_request,
)

#: A SIP peer that no call agent holds.
STRANGER = Peer(Transport.UDP, "198.51.100.7", 5060)
OTHER_BROWSER = Peer(Transport.WSS, "203.0.113.6", 50001, connection_id=8)

REGISTER_RULE = """
[[realms.rtc.a_rules]]
name = "register_upstream"
when = { method = "REGISTER" }
actions = [{ action = "register_caching" }, { action = "route", destination = "pbx" }]
"""


def gateway_config(
    *,
    rtc_rules: str = "",
    to_pbx_methods: str = '["INVITE", "MESSAGE"]',
    to_pbx_actions: str = '{ action = "route", destination = "pbx" }',
    retarget: str = '{ action = "retarget_from_cache" }',
) -> GatewayConfig:
    """The harness's realms with the PBX's sources spelt out, plus ``rtc_rules`` first."""
    text = f"""
[interfaces.wss]
type = "websocket"
listen = "127.0.0.1:8080"

[interfaces.sip]
type = "sip"
transport = "udp"
listen = "{GW_SIP.host}:{GW_SIP.port}"

[realms.rtc.call_agents.browsers]
interface = "wss"
sources = "all"
{rtc_rules}
{REGISTER_RULE}
[[realms.rtc.a_rules]]
name = "to_pbx"
when = {{ method = {to_pbx_methods} }}
actions = [{to_pbx_actions}]

[realms.pbx.call_agents.pbx]
interface = "sip"
sources = ["{PBX.host}/32"]
destination = "{PBX.host}:{PBX.port}"

[[realms.pbx.a_rules]]
name = "to_browser"
when = {{ method = ["INVITE", "MESSAGE"] }}
actions = [{retarget}, {{ action = "route", destination = "browsers" }}]
"""
    return load_config_text(text, source="routing.toml")


def route_decisions(gw: Gateway) -> list[RouteDecided]:
    return [n for n in gw.of_type(RouteDecided) if isinstance(n, RouteDecided)]


def rejections(gw: Gateway) -> list[tuple[str | None, int, str]]:
    return [
        (n.call_id, n.status, n.reason)
        for n in gw.of_type(RequestRejected)
        if isinstance(n, RequestRejected)
    ]


def test_request_from_a_source_no_call_agent_holds_gets_403() -> None:
    gw = Gateway(config=gateway_config())
    invite = pbx_request(via_host=STRANGER.host, call_id="stranger-1", body=SDP_ANSWER)
    sent = gw.send(invite, STRANGER)
    [final] = [r for r in sent.responses_to(STRANGER) if r.status >= 200]
    assert final.status == 403
    assert sent.to(BROWSER) == [] and sent.to(PBX) == []
    [decided] = route_decisions(gw)
    assert decided == RouteDecided(
        "stranger-1", "INVITE", None, None, "no call agent holds the source address"
    )
    assert [r[:2] for r in rejections(gw)] == [("stranger-1", 403)]
    assert gw.of_type(CallStarted) == []


def test_the_same_request_from_the_pbx_is_admitted() -> None:
    gw = Gateway(config=gateway_config(), bindings={"alice": client_binding("alice")})
    sent = gw.from_pbx(pbx_request(body=SDP_ANSWER))
    assert sent.one_request(BROWSER, "INVITE")
    [decided] = route_decisions(gw)
    assert (decided.source_agent, decided.destination_agent) == ("pbx", "browsers")


def test_a_reply_rule_answers_with_its_code_and_reason() -> None:
    blocked = """
[[realms.rtc.a_rules]]
name = "block_900"
when = { method = "INVITE", ruri_user = "^900$" }
actions = [{ action = "reply", code = 403, reason = "Blocked" }]
"""
    gw = Gateway(config=gateway_config(rtc_rules=blocked))
    sent = gw.from_browser(browser_request(uri="sip:900@pbx.example.org", body=SDP_OFFER))
    [final] = [r for r in sent.responses_to(BROWSER) if r.status >= 200]
    assert (final.status, final.reason) == (403, "Blocked")
    assert sent.to(PBX) == []
    assert rejections(gw) == [("jssip-call-1", 403, "Blocked")]
    [decided] = route_decisions(gw)
    assert decided.source_agent == "browsers" and decided.destination_agent is None
    assert decided.rules == "rtc/a:block_900 -> reply 403 Blocked"
    # Any other number still goes through.
    gw.from_browser(browser_request(call_id="jssip-call-2", body=SDP_OFFER))
    assert gw.of_type(CallStarted) != []


def test_a_request_no_rule_routes_gets_404() -> None:
    gw = Gateway(config=gateway_config(to_pbx_methods='"INVITE"'))
    message = browser_request("MESSAGE", call_id="msg-1").with_body(b"hi", "text/plain")
    sent = gw.from_browser(message)
    assert sent.statuses_to(BROWSER) == [404]
    assert sent.to(PBX) == []
    [decided] = route_decisions(gw)
    assert decided.destination_agent is None and decided.rules.endswith("not routed")
    # A method the gateway does not handle is refused before any rule looks at it.
    subscribe = gw.from_browser(browser_request("SUBSCRIBE", call_id="sub-1"))
    assert subscribe.statuses_to(BROWSER) == [405]
    assert "INVITE" in header(subscribe.responses_to(BROWSER)[0], "Allow")
    assert len(route_decisions(gw)) == 1


def test_pbx_invite_to_an_unregistered_user_gets_480() -> None:
    gw = Gateway(config=gateway_config())
    sent = gw.from_pbx(pbx_request(body=SDP_ANSWER))
    [final] = [r for r in sent.responses_to(PBX) if r.status >= 200]
    assert (final.status, final.reason) == (480, "Temporarily Unavailable")
    assert sent.to(BROWSER) == []
    [decided] = route_decisions(gw)
    assert "not registered: 480" in decided.rules


def test_offline_code_is_configurable() -> None:
    retarget = '{ action = "retarget_from_cache", offline_code = 404, offline_reason = "Nobody" }'
    gw = Gateway(config=gateway_config(retarget=retarget))
    sent = gw.from_pbx(pbx_request(body=SDP_ANSWER))
    [final] = [r for r in sent.responses_to(PBX) if r.status >= 200]
    assert (final.status, final.reason) == (404, "Nobody")
    assert sent.to(BROWSER) == []


def test_pbx_invite_to_an_alias_reaches_that_binding() -> None:
    first = client_binding("alice")
    # A later binding of the same user: a call to "alice" would go there.
    tablet_contact = "sip:alice@tablet.invalid;transport=ws"
    tablet = replace(client_binding("alice", OTHER_BROWSER, tablet_contact), client_expires_at=2e9)
    gw = Gateway(bindings={"first": first, "tablet": tablet})
    assert first.alias_user != tablet.alias_user

    to_alias = pbx_request(uri=f"sip:{first.alias_user}@{GW_SIP.host}", body=SDP_ANSWER)
    sent = gw.from_pbx(to_alias)
    assert sent.to(OTHER_BROWSER) == []
    b_invite = sent.one_request(BROWSER, "INVITE")
    assert str(b_invite.uri) == BROWSER_CONTACT
    assert b_invite.body == SDP_ANSWER
    [decided] = route_decisions(gw)
    assert decided.rules == "pbx/a:to_browser -> retarget_from_cache, route browsers"

    to_user = pbx_request(call_id="pbx-call-2@192.0.2.50", body=SDP_ANSWER)
    other = gw.from_pbx(to_user)
    assert str(other.one_request(OTHER_BROWSER, "INVITE").uri) == tablet_contact
    assert other.to(BROWSER) == []


def test_route_decided_names_the_call_and_the_rules() -> None:
    gw = Gateway()
    gw.from_browser(browser_request(body=SDP_OFFER))
    assert route_decisions(gw) == [
        RouteDecided("jssip-call-1", "INVITE", "browsers", "pbx", "rtc/a:to_pbx -> route pbx")
    ]


def test_options_from_an_admitted_source_is_answered_and_from_a_stranger_refused() -> None:
    gw = Gateway(config=gateway_config())
    admitted = gw.from_pbx(pbx_request("OPTIONS", call_id="ping-1"))
    [ok] = admitted.responses_to(PBX)
    assert ok.status == 200 and "REGISTER" in header(ok, "Allow")
    refused = gw.send(pbx_request("OPTIONS", via_host=STRANGER.host, call_id="ping-2"), STRANGER)
    assert refused.statuses_to(STRANGER) == [403]
    assert admitted.to(BROWSER) == [] and refused.to(BROWSER) == []
    assert [(d.call_id, d.source_agent) for d in route_decisions(gw)] == [
        ("ping-1", "pbx"),
        ("ping-2", None),
    ]


def _early_media_call(gw: Gateway) -> list[Response]:
    """A browser call the PBX answers with a 183 with SDP, then a 200 with SDP; what the
    browser received."""
    sent = gw.from_browser(browser_request(body=SDP_OFFER))
    b_invite = sent.one_request(PBX, "INVITE")
    early = gw.from_pbx(answer(b_invite, 183, body=SDP_ANSWER))
    answered = gw.from_pbx(answer(b_invite, 200, body=SDP_ANSWER))
    assert answered.one_request(PBX, "ACK")
    return early.responses_to(BROWSER) + answered.responses_to(BROWSER)


def test_mediate_183_to_180_gives_the_browser_plain_ringing() -> None:
    actions = '{ action = "mediate_183_to_180" }, { action = "route", destination = "pbx" }'
    gw = Gateway(config=gateway_config(to_pbx_actions=actions))
    ringing, ok = _early_media_call(gw)
    assert (ringing.status, ringing.reason, ringing.body) == (180, "Ringing", b"")
    assert not ringing.has("Content-Type") and ringing.content_length == 0
    assert (ok.status, ok.body, ok.content_type) == (200, SDP_ANSWER, "application/sdp")


def test_without_mediation_the_183_and_its_sdp_reach_the_browser() -> None:
    gw = Gateway(config=gateway_config())
    progress, ok = _early_media_call(gw)
    assert (progress.status, progress.body, progress.content_type) == (
        183,
        SDP_ANSWER,
        "application/sdp",
    )
    assert (ok.status, ok.body) == (200, SDP_ANSWER)
