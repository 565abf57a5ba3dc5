"""The handbook's scenario end to end, with ``examples/gateway.toml`` as written.

The gateway runs the example's realms and rules (``handbook.py`` changes only the
addresses); browsers are scripted JsSIP-like clients over wss; sipp plays the registrar
and the PBX and checks what it receives, failing (exit code 1) on any mismatch:

(a) a browser registers through the gateway to a registrar that asks for digest
    credentials (the registrar sees the gateway's alias, never the ``.invalid`` host);
(b) a registered browser's call goes to the PBX;
(c) the PBX's call to a registered browser's address of record is retargeted to its
    WebSocket, and one to a user who is not registered is declined with 480;
and throttling: with expiries scaled down by the test's configuration (client 2 s,
registrar 8 s), the browser refreshes every second (half its interval, as JsSIP refreshes
before its binding ends) and the registrar sees only the
refreshes its binding needs. (d), the loop between two browsers, is in
``test_handbook_loop.py``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import trio

from tests.integration.browser import Browser, browser
from tests.integration.common import gateway_uri, scrape, sdp_lines, value, webrtc_sdp
from tests.integration.gateway import RunningGateway, run_gateway
from tests.integration.handbook import client_tls, handbook_config
from tests.integration.sipp import finish, free_udp_port, start_scenario, start_sipp

PBX_HOST = "127.0.0.1"


@asynccontextmanager
async def handbook_gateway(
    config: Path, gateway_args: tuple[str, ...] = ()
) -> AsyncIterator[tuple[RunningGateway, Browser]]:
    """The gateway on ``config`` (and ``gateway_args``) and alice's browser connected to it
    over wss."""
    async with (
        run_gateway(("-c", str(config), *gateway_args)) as gateway,
        browser(gateway.address("WSS"), "alice", domain=PBX_HOST, tls=client_tls()) as alice,
    ):
        yield gateway, alice


async def test_a_browser_registers_with_digest_through_the_gateway(tmp_path: Path) -> None:
    pbx_port = free_udp_port()
    with trio.fail_after(60):
        registrar = await start_scenario("registrar_auth", "-p", str(pbx_port))
        config = handbook_config(tmp_path, pbx_port)
        async with handbook_gateway(config) as (gateway, alice):
            registered = await alice.register(password="secret")
            assert [r.status for r in alice.register_finals] == [401, 200]
            # JsSIP counts itself registered only if the 200 lists its own Contact; the
            # handbook's throttling grants it 60 s, however long the registrar's is.
            [contact] = registered.contacts
            assert alice.host in str(contact.uri) and contact.param("expires") == "60"
            assert await finish(registrar) == 0
            [changed] = await gateway.wait_for("binding.changed")
            assert changed.get("user") == "alice" and changed.get("removed") is False
            decided = gateway.matching("b2bua.route_decided")
            assert decided and "rtc/a:register_upstream" in str(decided[0].get("rules"))


async def test_b_a_registered_browser_calls_the_pbx(tmp_path: Path) -> None:
    pbx_port = free_udp_port()
    with trio.fail_after(60):
        registrar = await start_scenario("registrar", "-p", str(pbx_port))
        config = handbook_config(tmp_path, pbx_port)
        async with handbook_gateway(config) as (gateway, alice):
            assert (await alice.register()).status == 200
            assert await finish(registrar) == 0
            pbx = await start_sipp("-sn", "uas", "-p", str(pbx_port), "-m", "1")
            call, final = await alice.invite("bob", sdp=webrtc_sdp())
            assert final.status == 200
            await alice.ack(call)
            assert (await alice.bye(call)).status == 200
            assert await finish(pbx) == 0
            [started] = gateway.matching("b2bua.call_started")
            assert started.get("direction") == "from_client"
            rules = [str(e.get("rules")) for e in gateway.matching("b2bua.route_decided")]
            assert any(r.startswith("rtc/a:call_to_pbx") and "pbx/c:plain_rtp" in r for r in rules)


async def test_c_the_pbx_reaches_a_registered_browser_and_not_an_offline_one(
    tmp_path: Path,
) -> None:
    pbx_port = free_udp_port()
    with trio.fail_after(60):
        registrar = await start_scenario("registrar", "-p", str(pbx_port))
        config = handbook_config(tmp_path, pbx_port)
        async with handbook_gateway(config) as (gateway, alice):
            assert (await alice.register()).status == 200
            assert await finish(registrar) == 0
            await gateway.wait_for("binding.changed")
            # The PBX calls the address of record; the gateway finds alice's WebSocket.
            caller = await start_sipp(
                "-sn", "uac", "-s", "alice", gateway_uri(gateway), "-p", str(free_udp_port()),
                "-m", "1", "-d", "200",
            )  # fmt: skip
            invite = await alice.receive_request("INVITE")
            assert str(invite.uri) == alice.contact.strip("<>")  # retargeted to its Contact
            # The PBX offered plain RTP; alice gets a WebRTC offer and answers as Chrome does.
            assert "a=setup:actpass" in sdp_lines(invite)
            call = await alice.answer(invite, sdp=webrtc_sdp("active"))
            await alice.receive_request("ACK")
            bye = await alice.receive_in_dialog(call, "BYE")
            await alice.respond(bye, 200)
            assert await finish(caller) == 0
            [started] = gateway.matching("b2bua.call_started")
            assert started.get("direction") == "from_sip"
            # Nobody registered as carol: retarget_from_cache declines with 480.
            offline = await start_scenario(
                "uac_offline", "-s", "carol", gateway_uri(gateway), "-p", str(free_udp_port())
            )
            assert await finish(offline) == 0
            [declined] = gateway.matching("b2bua.request_rejected", status=480)
            assert declined.get("reason") == "Temporarily Unavailable"
            offline_rules = [
                str(e.get("rules"))
                for e in gateway.matching("b2bua.route_decided")
                if "not registered" in str(e.get("rules"))
            ]
            assert offline_rules and offline_rules[0].startswith("pbx/a:call_to_browser")


async def test_throttling_the_registrar_sees_only_the_refreshes_it_needs(
    tmp_path: Path,
) -> None:
    pbx_port = free_udp_port()
    client_s, upstream_s = 2, 8
    refreshes = 8
    with trio.fail_after(60):
        registrar = await start_scenario("registrar_refresh", "-p", str(pbx_port))
        config = handbook_config(
            tmp_path, pbx_port, client_expires_s=client_s, upstream_expires_s=upstream_s
        )
        async with handbook_gateway(config) as (gateway, alice):
            started = trio.current_time()
            for _ in range(refreshes + 1):
                answer = await alice.register(expires=600)
                assert answer.status == 200
                # Every answer, local or the registrar's, grants the client interval.
                assert [c.param("expires") for c in answer.contacts] == [str(client_s)]
                await trio.sleep(client_s / 2)  # a client refreshes before its binding ends
            elapsed = trio.current_time() - started
            outcomes = [e.get("outcome") for e in gateway.matching("b2bua.register_handled")]
            # Unregistering always reaches the registrar, which then ends its scenario.
            gone = await alice.register(expires=0)
            assert gone.status == 200 and gone.contacts == []
            assert await finish(registrar) == 0
        forwarded, absorbed = outcomes.count("forwarded"), outcomes.count("absorbed")
        assert forwarded + absorbed == refreshes + 1
        # The registrar is refreshed once its binding has no more than two client
        # intervals left, so at most once per (upstream - 2 * client) seconds.
        assert 2 <= forwarded <= 1 + int(elapsed // (upstream_s - 2 * client_s))
        assert absorbed >= refreshes + 1 - forwarded > 0


async def test_a_closed_websocket_is_unregistered_upstream_at_once(tmp_path: Path) -> None:
    pbx_port = free_udp_port()
    with trio.fail_after(60):
        # The registrar's scenario ends only when it gets a Contact with expires=0.
        registrar = await start_scenario("registrar_refresh", "-p", str(pbx_port))
        config = handbook_config(tmp_path, pbx_port)
        async with run_gateway(("-c", str(config))) as gateway:
            async with browser(
                gateway.address("WSS"), "alice", domain=PBX_HOST, tls=client_tls()
            ) as alice:
                assert (await alice.register()).status == 200
                await gateway.wait_for("binding.changed")
            # The browser is gone (it never unregistered): the gateway does it.
            [removed] = await gateway.wait_for(
                "binding.changed", where=lambda e: e.get("removed") is True
            )
            assert removed.get("reason") == "connection closed"
            assert await finish(registrar) == 0


async def test_a_register_flood_from_one_address_gets_503_with_retry_after(
    tmp_path: Path,
) -> None:
    pbx_port = free_udp_port()
    with trio.fail_after(60):
        registrar = await start_scenario("registrar_refresh", "-p", str(pbx_port))
        # Two REGISTERs at once, then one per 100 s: the third is over the limit.
        config = handbook_config(tmp_path, pbx_port, register_limit=(0.01, 2))
        async with handbook_gateway(config) as (gateway, alice):
            assert (await alice.register()).status == 200
            assert (await alice.register()).status == 200
            refused = await alice.register()
            assert (refused.status, refused.reason) == (503, "Too Many Registrations")
            retry_after = refused.get("Retry-After") or ""
            assert retry_after.isdigit() and int(retry_after) >= 1
            samples = await scrape(gateway)
            limited = "rtcgw_register_requests_total"
            assert value(samples, limited, outcome="rate_limited") == 1.0
            assert [e.get("source") for e in gateway.matching("register.rate_limited")] == [
                "127.0.0.1"
            ]
            registrar.kill()  # it waits for an unregistration the limit now refuses
            await finish(registrar, timeout_s=5)
