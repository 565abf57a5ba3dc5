"""The handbook's scenario (d): two WebSocket clients call each other through the PBX
loop, RTC -> SIP -> RTC, with ``examples/gateway.toml`` as written.

alice and bob connect over wss and register through the gateway to the PBX. alice calls
bob: the gateway sends the INVITE to the PBX, and the PBX, acting as a proxy, sends it
to bob's registered contact, which is the gateway again; the gateway hands it to bob's
WebSocket. Answer, ACK and BYE travel the same loop.

sipp plays the PBX as two twins in third-party call control mode (``-3pcc``), because
one sipp call is one Call-ID and one direction: ``loop_pbx_inbound.xml`` listens on the
PBX's port and takes the gateway's INVITE, ``loop_pbx_outbound.xml`` sends it back to
the gateway for bob. The twins pass the offer, the answer and the hang-up to each other
over a local TCP connection (``sendCmd``/``recvCmd``), keyed by the Call-ID the gateway
chose toward the PBX, which the outbound twin keeps as a proxy does.
"""

from __future__ import annotations

import socket
from pathlib import Path

import trio

from tests.integration.browser import browser
from tests.integration.common import gateway_uri, sdp_lines, webrtc_sdp
from tests.integration.gateway import RunningGateway, run_gateway
from tests.integration.handbook import client_tls, handbook_config
from tests.integration.sipp import error_log, finish, free_udp_port, start_scenario


def _free_tcp_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (the listening twin binds it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _bound(table: str, port: int, state: str) -> bool:
    """Whether a socket of ``/proc/net/TABLE`` is on ``port`` of 127.0.0.1 (or of any
    address, as sipp binds its twin socket) in ``state``. Reading the kernel's table
    leaves the socket alone: connecting to find out would take the one twin connection
    sipp accepts."""
    wanted = {f"0100007F:{port:04X}", f"00000000:{port:04X}"}
    with open(f"/proc/net/{table}", encoding="ascii") as rows:
        next(rows)
        return any(fields[1] in wanted and fields[3] == state for fields in map(str.split, rows))


async def _wait_bound(process: trio.Process, table: str, port: int) -> None:
    """Wait until sipp has its socket: the twin that connects fails if started before
    the one that listens, and a gateway request sent before sipp binds its port is only
    retransmitted later."""
    state = "0A" if table == "tcp" else "07"  # TCP LISTEN, UDP unconnected
    while not _bound(table, port, state):
        assert process.returncode is None, f"sipp exited at start:\n{error_log(process)}"
        await trio.sleep(0.05)


async def _wait_binding(gateway: RunningGateway, user: str) -> None:
    await gateway.wait_for("binding.changed", where=lambda e: e.get("user") == user)


async def test_two_clients_call_each_other_through_the_pbx(tmp_path: Path) -> None:
    pbx_port = free_udp_port()
    twin_port = _free_tcp_port()
    with trio.fail_after(60):
        async with run_gateway(("-c", str(handbook_config(tmp_path, pbx_port)))) as gateway:
            wss, tls = gateway.address("WSS"), client_tls()
            async with (
                browser(wss, "alice", tls=tls) as alice,
                browser(wss, "bob", tls=tls) as bob,
            ):
                # Each browser's REGISTER goes upstream with a Call-ID of its own: two
                # registrar calls.
                registrar = await start_scenario("registrar", "-p", str(pbx_port), calls=2)
                await _wait_bound(registrar, "udp", pbx_port)
                assert (await alice.register()).status == 200
                assert (await bob.register()).status == 200
                assert await finish(registrar) == 0
                await _wait_binding(gateway, "alice")
                await _wait_binding(gateway, "bob")

                twin = ("-3pcc", f"127.0.0.1:{twin_port}")
                outbound = await start_scenario(
                    "loop_pbx_outbound",
                    *twin,
                    "-s",
                    "bob",
                    "-p",
                    str(free_udp_port()),
                    gateway_uri(gateway),
                )
                await _wait_bound(outbound, "tcp", twin_port)
                inbound = await start_scenario("loop_pbx_inbound", *twin, "-p", str(pbx_port))
                await _wait_bound(inbound, "udp", pbx_port)

                async def bob_answers() -> None:
                    invite = await bob.receive_request("INVITE")
                    # Retargeted from the PBX's R-URI to the contact bob registered.
                    assert invite.uri.host == bob.host, invite.uri  # type: ignore[union-attr]
                    # The offer bob gets was written for his leg by the second pass
                    # through the gateway: a WebRTC offer with that call's own ICE
                    # credentials, not alice's SDP.
                    lines = sdp_lines(invite)
                    assert "a=setup:actpass" in lines and "a=ice-lite" in lines
                    assert "a=ice-ufrag:alic" not in lines
                    offered.extend(x for x in lines if x.startswith("a=ice-ufrag:"))
                    call = await bob.answer(invite, sdp=webrtc_sdp("active", ufrag="bobb"))
                    await bob.receive_in_dialog(call, "ACK")
                    bye = await bob.receive_in_dialog(call, "BYE")
                    await bob.respond(bye, 200)

                offered: list[str] = []
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(bob_answers)
                    call, final = await alice.invite("bob", sdp=webrtc_sdp(ufrag="alic"))
                    assert final.status == 200, final
                    # alice's answer is the first pass's own, for her leg.
                    lines = sdp_lines(final)
                    assert "a=setup:passive" in lines and "a=ice-lite" in lines
                    answered = [x for x in lines if x.startswith("a=ice-ufrag:")]
                    # Two passes, two calls, two media sessions with their own credentials.
                    assert answered and offered and answered != offered
                    await alice.ack(call)
                    assert (await alice.bye(call)).status == 200

                assert await finish(inbound) == 0
                assert await finish(outbound) == 0

        # The gateway saw two calls: alice's toward the PBX, and the PBX's toward bob.
        directions = sorted(e["direction"] for e in gateway.matching("b2bua.call_started"))
        assert directions == ["from_client", "from_sip"], directions
