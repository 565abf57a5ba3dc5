"""What the gateway answers itself, whichever side asks: 483 when Max-Forwards is used
up, 501 for a method it does not know (RFC 3261 16.3, 8.2.1). The decrement of
Max-Forwards on relayed requests is checked where they arrive (sipp scenarios and the
browser in test_dialogs, test_messages)."""

from __future__ import annotations

import trio

from rtcgw.sip import Response
from tests.integration.browser import Call, browser
from tests.integration.common import args
from tests.integration.gateway import RunningGateway, run_gateway
from tests.integration.sipclient import UdpPeer, request


async def _over_udp(
    gateway: RunningGateway, method: str, *, max_forwards: int = 70, body: str = ""
) -> list[Response]:
    """Send one request from a SIP peer over UDP; read responses up to a final one."""
    peer = await UdpPeer.open()
    host, port = gateway.address("UDP")
    responses: list[Response] = []
    with peer.sock:
        target = f"alice@{host}:{port}"
        data = request(method, target, via=peer.via, max_forwards=max_forwards, body=body)
        await peer.send(data, (host, port))
        while not responses or not responses[-1].final:
            reply = await peer.receive()
            assert isinstance(reply, Response)
            responses.append(reply)
    return responses


async def test_max_forwards_zero_gets_483_from_either_side() -> None:
    with trio.fail_after(60):
        async with (
            run_gateway(args(9)) as gateway,
            browser(gateway.address("WS"), "alice") as alice,
        ):
            invite = alice.new_invite("bob", max_forwards=0)
            call = Call(invite)
            await alice.send(invite)
            final = await alice.final_response(call)
            assert [r.status for r in call.responses] == [100, 483]
            await alice.ack_failure(call, final)
            assert (await alice.message("bob", "hi", max_forwards=0)).status == 483

            from_pbx = await _over_udp(gateway, "INVITE", max_forwards=0)
            assert [r.status for r in from_pbx] == [100, 483]
            from_pbx = await _over_udp(gateway, "MESSAGE", max_forwards=0, body="hi")
            assert [r.status for r in from_pbx] == [483]
        assert gateway.matching("b2bua.call_started") == []
        assert len(gateway.matching("b2bua.request_rejected", status=483)) == 4


async def test_unknown_method_gets_501_from_either_side() -> None:
    with trio.fail_after(60):
        async with (
            run_gateway(args(9)) as gateway,
            browser(gateway.address("WS"), "alice") as alice,
        ):
            frob = alice._request("FROB", "sip:bob@example.test", to="<sip:bob@example.test>")
            await alice.send(frob)
            reply = await alice.final_response()
            assert (reply.status, reply.call_id) == (501, frob.call_id)
            assert "INVITE" in (reply.get("Allow") or "")

            [from_pbx] = await _over_udp(gateway, "FROB")
            assert from_pbx.status == 501
            assert "MESSAGE" in (from_pbx.get("Allow") or "")
