"""Out-of-dialog MESSAGE (RFC 3428) through the running gateway, both ways.

A browser's MESSAGE goes to the PBX as a new request of the gateway's (new Call-ID,
topology hidden), a PBX's MESSAGE to the browser's WebSocket (480 when the user has no
binding); the final response comes back to the sender in its own transaction.
"""

from __future__ import annotations

from functools import partial

import trio

from rtcgw.sip import Response
from tests.integration.browser import browser
from tests.integration.common import args, gateway_uri, registered_browser
from tests.integration.gateway import run_gateway
from tests.integration.sipclient import UdpPeer, request
from tests.integration.sipp import before_exit, finish, free_udp_port, start_scenario


async def test_browser_message_reaches_the_pbx_and_its_answer_comes_back() -> None:
    pbx_port = free_udp_port()
    with trio.fail_after(60):
        sipp = await start_scenario("uas_message", "-p", str(pbx_port))
        async with (
            run_gateway(args(pbx_port)) as gateway,
            browser(gateway.address("WS"), "alice") as alice,
        ):
            answer = await alice.message("bob", "hello pbx")
            sent = alice.last_request
            assert sent is not None
            # The PBX's own answer (sipp checked what it got: body, Max-Forwards 68, no
            # .invalid host), relayed in the browser's transaction with a tag of ours.
            assert (answer.status, answer.reason) == (202, "Accepted")
            assert answer.get("X-Pbx") == "stored"
            assert (answer.call_id, answer.cseq) == (sent.call_id, sent.cseq)
            assert answer.top_via.branch == sent.top_via.branch
            assert answer.to_tag is not None and "SIPpTag" not in answer.to_tag
            assert await finish(sipp) == 0


async def test_pbx_message_reaches_the_registered_browser() -> None:
    pbx_port = free_udp_port()
    with trio.fail_after(60):
        async with registered_browser(pbx_port) as (gateway, alice):
            sipp = await start_scenario("uac_message", "-s", "alice", gateway_uri(gateway))
            message = await before_exit(sipp, partial(alice.receive_request, "MESSAGE"))
            # To the browser's own Contact, over its WebSocket, from the gateway alone.
            assert str(message.uri) == alice.contact.strip("<>")
            assert message.max_forwards == 69
            assert [(v.host, v.port) for v in message.vias] == [gateway.address("WS")]
            assert (message.content_type, message.body) == ("text/plain", b"hello browser\r\n")
            await alice.respond(message, 200, extra=(("X-Browser", "seen"),))
            assert await finish(sipp) == 0  # sipp got the 200 with X-Browser


async def test_pbx_message_to_a_user_without_binding_gets_480() -> None:
    with trio.fail_after(60):
        async with run_gateway(args(9)) as gateway:
            peer = await UdpPeer.open()
            with peer.sock:
                host, port = gateway.address("UDP")
                data = request("MESSAGE", f"nobody@{host}:{port}", via=peer.via, body="hi")
                await peer.send(data, (host, port))
                reply = await peer.receive()
            assert isinstance(reply, Response)
            assert (reply.status, reply.cseq.method) == (480, "MESSAGE")
