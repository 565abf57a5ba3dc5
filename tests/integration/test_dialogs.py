"""Requests inside a call's dialog through the running gateway, both ways.

The browser is a scripted SIP-over-WebSocket client (``browser.py``), the PBX a sipp
scenario (``scenarios/*.xml``) that checks what it receives with ``<ereg check_it>`` and
so fails (exit code 1) on any mismatch. Each test asserts what the browser saw and that
sipp's scenario passed.
"""

from __future__ import annotations

from functools import partial

import trio

from rtcgw.sip import Response, make_response
from tests.integration.browser import Browser, Call, browser
from tests.integration.common import (
    DTMF,
    args,
    gateway_uri,
    only_our_via,
    registered_browser,
    sdp,
    session_name,
)
from tests.integration.gateway import RunningGateway, run_gateway
from tests.integration.sipp import before_exit, finish, free_udp_port, start_scenario


async def answer_pbx_requests(alice: Browser, call: Call, gateway: RunningGateway) -> None:
    """The browser's side of sipp's re-INVITE, UPDATE, INFO, MESSAGE and NOTIFY."""
    reinvite = await alice.receive_in_dialog(call, "INVITE")
    assert session_name(reinvite) == "pbx-reoffer"
    assert reinvite.max_forwards == 69  # sipp sent 70
    only_our_via(reinvite, gateway)
    await alice.respond(reinvite, 200, body=sdp("browser-reanswer"))
    ack = await alice.receive_in_dialog(call, "ACK")
    assert ack.cseq.seq == reinvite.cseq.seq

    update = await alice.receive_in_dialog(call, "UPDATE")
    assert session_name(update) == "pbx-update"
    await alice.respond(update, 200, body=sdp("browser-update-answer"))

    info = await alice.receive_in_dialog(call, "INFO")
    assert (info.content_type, info.body) == (DTMF, b"Signal=7\r\nDuration=160\r\n")
    await alice.respond(info, 200)

    message = await alice.receive_in_dialog(call, "MESSAGE")
    assert (message.content_type, message.body) == ("text/plain", b"hello from the pbx\r\n")
    await alice.respond(message, 200)

    notify = await alice.receive_in_dialog(call, "NOTIFY")
    assert notify.get("Event") == "hold"
    assert notify.get("Subscription-State") == "active"
    await alice.respond(notify, 200)
    # CSeq grows on the browser's leg in the gateway's own numbering.
    seqs = [r.cseq.seq for r in (reinvite, update, info, message, notify)]
    assert seqs == sorted(seqs) and len(set(seqs)) == 5


async def test_requests_in_a_browser_call_are_relayed_both_ways() -> None:
    pbx_port = free_udp_port()
    with trio.fail_after(60):
        sipp = await start_scenario("uas_in_dialog", "-p", str(pbx_port))
        async with (
            run_gateway(args(pbx_port)) as gateway,
            browser(gateway.address("WS"), "alice") as alice,
        ):
            call, ok = await alice.invite("bob", sdp=sdp("browser-offer"))
            assert ok.status == 200 and session_name(ok) == "pbx-answer"
            await alice.ack(call)

            # Browser -> PBX: each final answer is the PBX's, in the browser's dialog.
            reinvited = await alice.reinvite(call, sdp=sdp("browser-reoffer", "sendonly"))
            assert reinvited.status == 200 and session_name(reinvited) == "pbx-reanswer"
            assert reinvited.call_id == call.call_id
            updated = await alice.request(call, "UPDATE", body=sdp("browser-update"))
            assert updated.status == 200 and session_name(updated) == "pbx-update-answer"
            info = await alice.request(
                call, "INFO", body=b"Signal=5\r\nDuration=100\r\n", content_type=DTMF
            )
            assert info.status == 200
            message = await alice.request(
                call, "MESSAGE", body=b"hello from the browser", content_type="text/plain"
            )
            assert message.status == 202  # the PBX's own status, relayed as is
            notify = await alice.request(
                call,
                "NOTIFY",
                extra=(("Event", "talk"), ("Subscription-State", "active")),
            )
            assert notify.status == 200

            # PBX -> browser.
            await answer_pbx_requests(alice, call, gateway)

            # Max-Forwards used up: 483 from the gateway, nothing reaches sipp (whose
            # next expected request is the BYE).
            spent = await alice.request(call, "INFO", body=b"Signal=1\r\n", max_forwards=0)
            assert spent.status == 483

            bye = await alice.bye(call)
            assert bye.status == 200
            assert await finish(sipp) == 0


async def test_requests_in_a_pbx_call_are_relayed_both_ways_and_the_pbx_hangs_up() -> None:
    pbx_port = free_udp_port()
    with trio.fail_after(60):
        async with registered_browser(pbx_port) as (gateway, alice):
            sipp = await start_scenario("uac_in_dialog", "-s", "alice", gateway_uri(gateway))
            invite = await before_exit(sipp, partial(alice.receive_request, "INVITE"))
            assert session_name(invite) == "pbx-offer"
            assert invite.max_forwards == 69  # sipp sent 70
            only_our_via(invite, gateway)
            # The PBX's session timer stays on its leg: nothing the browser must support.
            assert not invite.has("Session-Expires") and not invite.has("Min-SE")
            assert "timer" not in invite.option_tags("Require")
            call = await alice.answer(invite, sdp=sdp("browser-answer"))
            await alice.receive_in_dialog(call, "ACK")

            info = await alice.receive_in_dialog(call, "INFO")
            assert (info.content_type, info.body) == (DTMF, b"Signal=1\r\nDuration=100\r\n")
            await alice.respond(info, 200)

            reinvited = await alice.reinvite(call, sdp=sdp("browser-reoffer"))
            assert reinvited.status == 200 and session_name(reinvited) == "pbx-reanswer"
            late = await alice.reinvite(call, sdp=b"", answer=sdp("browser-late-answer"))
            assert late.status == 200 and session_name(late) == "pbx-late-offer"
            updated = await alice.request(call, "UPDATE", body=sdp("browser-update"))
            assert updated.status == 200 and session_name(updated) == "pbx-update-answer"

            bye = await alice.receive_in_dialog(call, "BYE")
            only_our_via(bye, gateway)
            await alice.respond(bye, 200)
            assert await finish(sipp) == 0  # sipp got the 200 for its BYE
            await gateway.wait_for("b2bua.call_ended")
        [ended] = gateway.matching("b2bua.call_ended")
        assert ended["reason"] == "hangup_sip"


async def test_late_offer_from_the_browser() -> None:
    pbx_port = free_udp_port()
    with trio.fail_after(60):
        sipp = await start_scenario("uas_late_offer", "-p", str(pbx_port))
        async with (
            run_gateway(args(pbx_port)) as gateway,
            browser(gateway.address("WS"), "alice") as alice,
        ):
            call, ok = await alice.invite("bob", sdp=b"")
            assert ok.status == 200 and session_name(ok) == "pbx-offer"
            await alice.ack(call, sdp=sdp("browser-answer"))  # sipp checks it got this
            assert (await alice.bye(call)).status == 200
            assert await finish(sipp) == 0


async def test_late_offer_from_the_pbx() -> None:
    pbx_port = free_udp_port()
    with trio.fail_after(60):
        async with registered_browser(pbx_port) as (gateway, alice):
            sipp = await start_scenario("uac_late_offer", "-s", "alice", gateway_uri(gateway))
            invite = await before_exit(sipp, partial(alice.receive_request, "INVITE"))
            assert invite.body == b""
            call = await alice.answer(invite, sdp=sdp("browser-offer"))
            ack = await alice.receive_in_dialog(call, "ACK")
            assert session_name(ack) == "pbx-answer"  # the answer came in the PBX's ACK
            bye = await alice.receive_in_dialog(call, "BYE")
            await alice.respond(bye, 200)
            assert await finish(sipp) == 0


async def test_pbx_cancels_a_ringing_browser() -> None:
    pbx_port = free_udp_port()
    with trio.fail_after(60):
        async with registered_browser(pbx_port) as (gateway, alice):
            sipp = await start_scenario("uac_cancel", "-s", "alice", gateway_uri(gateway))
            invite = await before_exit(sipp, partial(alice.receive_request, "INVITE"))
            tag = "ringing-tag"
            await alice.send(make_response(invite, 180, to_tag=tag))
            # The gateway cancels the browser's INVITE transaction: same branch, CSeq.
            cancel = await alice.receive_request("CANCEL")
            assert cancel.call_id == invite.call_id
            assert cancel.top_via.branch == invite.top_via.branch
            assert cancel.cseq.seq == invite.cseq.seq
            await alice.respond(cancel, 200, to_tag=tag)
            await alice.respond(invite, 487, to_tag=tag)
            # ... and ACKs the 487 in that transaction (RFC 3261 17.1.1.3).
            ack = await alice.receive_request("ACK")
            assert ack.top_via.branch == invite.top_via.branch
            assert ack.to_tag == tag
            assert await finish(sipp) == 0  # sipp got 200 for its CANCEL, 487, and ACKed
        [ended] = gateway.matching("b2bua.call_ended")
        assert (ended["reason"], ended["status"]) == ("cancelled", 487)


async def test_browser_session_refresh_is_answered_by_the_gateway() -> None:
    pbx_port = free_udp_port()
    timers = (("Session-Expires", "90;refresher=uac"), ("Supported", "timer"))
    with trio.fail_after(60):
        sipp = await start_scenario("uas_timer", "-p", str(pbx_port))
        async with (
            run_gateway(args(pbx_port)) as gateway,
            browser(gateway.address("WS"), "alice") as alice,
        ):
            call, ok = await alice.invite("bob", extra=timers)
            assert ok.status == 200
            # JsSIP's own interval and refresher, accepted as asked (RFC 4028 section 9).
            assert ok.get("Session-Expires") == "90;refresher=uac"
            assert "timer" in ok.option_tags("Require")
            await alice.ack(call)
            for _refresh in range(2):  # JsSIP refreshes with UPDATE without SDP
                refreshed = await alice.request(call, "UPDATE", extra=timers)
                assert refreshed.status == 200
                assert refreshed.get("Session-Expires") == "90;refresher=uac"
                assert refreshed.get("Server") == gateway_user_agent(ok)
            assert (await alice.bye(call)).status == 200
            # sipp saw INVITE (with the gateway's own 1800 s offer), ACK and BYE only.
            assert await finish(sipp) == 0
        statuses = [m.status for m in alice.received if isinstance(m, Response)]
        assert 420 not in statuses and 422 not in statuses


def gateway_user_agent(response: Response) -> str:
    server = response.get("Server")
    assert server is not None and server.startswith("rtcgw/")
    return server
