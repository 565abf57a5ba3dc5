"""Provisional responses through the running gateway: early media (183 with SDP) both
ways, and 100rel (RFC 3262), which rtcgw never relays (README, "100rel").

The browser is the scripted SIP-over-WebSocket client (``browser.py``), the PBX a sipp
scenario (``scenarios/*.xml``) that checks what it receives with ``<ereg check_it>`` (or
``check_it_inverse`` for what must be absent) and so fails (exit code 1) on any mismatch.
Each test asserts what the browser saw and that sipp's scenario passed.
"""

from __future__ import annotations

from functools import partial

import trio

from rtcgw.sip import Dialog, Header, Request, Response, make_response, parse_uri
from tests.integration.browser import Browser, Call, browser
from tests.integration.common import (
    args,
    gateway_uri,
    registered_browser,
    sdp,
    session_name,
)
from tests.integration.gateway import run_gateway
from tests.integration.sipp import before_exit, finish, free_udp_port, start_scenario

#: The SDP answer ``uas_early_media.xml`` sends in its 183 and its 200, as sipp sends it.
PBX_EARLY_SDP = (
    b"v=0\r\no=pbx 1 1 IN IP4 127.0.0.1\r\ns=pbx-early\r\nc=IN IP4 127.0.0.1\r\n"
    b"t=0 0\r\nm=audio 6000 RTP/AVP 0\r\na=sendrecv\r\n"
)


def no_100rel(message: Request | Response) -> None:
    """``100rel`` is in neither the Supported nor the Require header of ``message``."""
    for name in ("Supported", "Require"):
        assert "100rel" not in message.option_tags(name), (name, message)


async def test_pbx_early_media_183_reaches_the_browser_as_ringing() -> None:
    # The handbook's call_to_pbx rule has mediate_183_to_180: the browser gets 180 Ringing
    # without SDP and plays its own ringback; the PBX's SDP arrives with the 200.
    pbx_port = free_udp_port()
    with trio.fail_after(30):
        sipp = await start_scenario("uas_early_media", "-p", str(pbx_port))
        async with (
            run_gateway(args(pbx_port)) as gateway,
            browser(gateway.address("WS"), "alice") as alice,
        ):
            call, ok = await alice.invite("bob", sdp=sdp("browser-offer"))
            assert [r.status for r in call.responses] == [100, 180, 200]
            progress = call.responses[1]
            assert progress.reason == "Ringing" and progress.body == b""
            assert progress.call_id == call.call_id
            assert ok.body == PBX_EARLY_SDP  # SDP passes unchanged at this stage
            assert ok.status == 200 and session_name(ok) == "pbx-early"
            # The early dialog and the confirmed one are the same on the browser's leg.
            assert progress.to_tag is not None and progress.to_tag == ok.to_tag
            await alice.ack(call)
            assert (await alice.bye(call)).status == 200
            assert await finish(sipp) == 0


async def test_reliable_180_from_the_pbx_is_pracked_and_relayed_unreliably() -> None:
    pbx_port = free_udp_port()
    with trio.fail_after(30):
        # sipp checks its INVITE offers no 100rel, the PRACK's RAck (1 1 INVITE), and
        # that no request it gets has 100rel in Supported or Require.
        sipp = await start_scenario("uas_reliable_180", "-p", str(pbx_port))
        async with (
            run_gateway(args(pbx_port)) as gateway,
            browser(gateway.address("WS"), "alice") as alice,
        ):
            call, ok = await alice.invite("bob", sdp=sdp("browser-offer"))
            assert [r.status for r in call.responses] == [100, 180, 200]
            ringing = call.responses[1]
            assert not ringing.has("Require") and not ringing.has("RSeq"), ringing
            assert ok.status == 200 and session_name(ok) == "pbx-answer"
            await alice.ack(call)
            assert (await alice.bye(call)).status == 200
            assert await finish(sipp) == 0
        assert alice.received
        for message in alice.received:
            no_100rel(message)
            assert not message.has("RSeq") and not message.has("RAck"), message


async def test_browser_invite_requiring_100rel_gets_420() -> None:
    pbx_port = free_udp_port()
    with trio.fail_after(30):
        # One call: the first INVITE sipp takes must be the ordinary one that follows.
        sipp = await start_scenario("uas_after_420", "-p", str(pbx_port))
        async with (
            run_gateway(args(pbx_port)) as gateway,
            browser(gateway.address("WS"), "alice") as alice,
        ):
            rejected, final = await alice.invite(
                "bob", sdp=sdp("browser-requires-100rel"), extra=(("Require", "100rel"),)
            )
            assert final.status == 420, final
            assert "100rel" in final.option_tags("Unsupported"), final
            assert [r.status for r in rejected.responses] == [100, 420]
            await alice.ack_failure(rejected, final)

            call, ok = await alice.invite("bob", sdp=sdp("browser-plain"))
            assert ok.status == 200 and session_name(ok) == "pbx-answer"
            await alice.ack(call)
            assert (await alice.bye(call)).status == 200
            assert await finish(sipp) == 0
        # Only the ordinary call was started toward the PBX.
        assert len(gateway.matching("b2bua.call_started")) == 1


async def answer_with_early_media(alice: Browser, invite: Request, answer: bytes) -> Call:
    """Answer ``invite`` 183 with the SDP ``answer``, then 200 with the same answer, in
    one dialog (same To tag, our Contact on both)."""
    tag = "early-media-tag"
    contact = (Header("Contact", alice.contact),)
    await alice.send(
        make_response(
            invite,
            183,
            to_tag=tag,
            headers=contact,
            body=answer,
            content_type="application/sdp",
        )
    )
    ok = make_response(
        invite, 200, to_tag=tag, headers=contact, body=answer, content_type="application/sdp"
    )
    call = Call(invite, Dialog.from_uas(invite, tag, parse_uri(alice.contact.strip("<>"))))
    call.dialog.response_sent(ok)  # type: ignore[union-attr]
    await alice.send(ok)
    return call


async def test_browser_early_media_183_reaches_the_pbx() -> None:
    pbx_port = free_udp_port()
    with trio.fail_after(30):
        async with registered_browser(pbx_port) as (gateway, alice):
            # sipp checks the 183 (application/sdp, s=browser-early), then the 200.
            sipp = await start_scenario("uac_early_media", "-s", "alice", gateway_uri(gateway))
            invite = await before_exit(sipp, partial(alice.receive_request, "INVITE"))
            assert session_name(invite) == "pbx-offer"
            no_100rel(invite)
            call = await answer_with_early_media(alice, invite, sdp("browser-early"))
            await alice.receive_in_dialog(call, "ACK")
            bye = await alice.receive_in_dialog(call, "BYE")
            await alice.respond(bye, 200)
            assert await finish(sipp) == 0
