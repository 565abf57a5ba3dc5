"""A live scrape after a real call passes ``promtool check metrics`` and shows the call.

The media test's setup: aiortc plays the browser (ICE, DTLS-SRTP) over the scripted
SIP-over-WebSocket client, sipp plays the registrar and then the PBX with its RTP echo,
and the gateway runs the handbook's configuration. After the call has ended, /metrics is
scraped until the worker's once-a-second media flush has landed (bounded), then checked
with promtool and for the metrics of the operations contract with values a call must give.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import trio

from tests.integration.common import Samples, http, scrape
from tests.integration.handbook import handbook_config
from tests.integration.sipp import finish, free_udp_port, start_scenario, start_sipp
from tests.integration.test_grafana import assert_dashboard_and_alerts_are_served
from tests.integration.test_handbook import handbook_gateway
from tests.integration.webrtc_peer import WebRtcPeer

PROMTOOL = shutil.which("promtool")

#: Every metric family the operations contract names (as served, without _total etc.).
CONTRACT = (
    "rtcgw_calls_active",
    "rtcgw_calls_total",
    "rtcgw_call_setup_seconds",
    "rtcgw_post_pickup_delay_seconds",
    "rtcgw_registrations_active",
    "rtcgw_register_requests_total",
    "rtcgw_websocket_connections_active",
    "rtcgw_websocket_connections_closed_total",
    "rtcgw_sip_messages_total",
    "rtcgw_ice_binding_requests_total",
    "rtcgw_ice_nomination_seconds",
    "rtcgw_dtls_handshakes_total",
    "rtcgw_dtls_handshake_seconds",
    "rtcgw_media_packets_total",
    "rtcgw_media_bytes_total",
    "rtcgw_media_dropped_total",
    "rtcgw_workers_up",
    "rtcgw_worker_restarts_total",
    "rtcgw_worker_calls_active",
    "rtcgw_config_reloads_total",
    "rtcgw_rule_hits_total",
    "rtcgw_draining",
)


def _sum(samples: Samples, name: str, **labels: str) -> float:
    """The sum of ``name``'s samples whose labels include ``labels``."""
    wanted = set(labels.items())
    return sum(v for (n, got), v in samples.items() if n == name and wanted <= got)


def _names(text: str) -> set[str]:
    """The metric families of an exposition, from its ``# TYPE`` lines."""
    return {line.split()[2] for line in text.splitlines() if line.startswith("# TYPE ")}


async def test_a_live_scrape_after_a_webrtc_call_passes_promtool_and_shows_the_call(
    tmp_path: Path,
) -> None:
    # make test installs Debian's prometheus: a missing promtool is a failure.
    assert PROMTOOL is not None, "promtool (Debian package prometheus) is not installed"
    pbx_port = free_udp_port()
    with trio.fail_after(120):
        registrar = await start_scenario("registrar", "-p", str(pbx_port))
        config = handbook_config(tmp_path, pbx_port)
        async with handbook_gateway(config) as (gateway, alice), WebRtcPeer.start() as peer:
            assert (await alice.register()).status == 200
            assert await finish(registrar) == 0
            pbx = await start_sipp(
                "-sn", "uas", "-p", str(pbx_port), "-m", "1",
                "-rtp_echo", "-mp", str(free_udp_port()),
            )  # fmt: skip
            offer = await peer.offer(audio="pcmu", tone_hz=1000.0)
            call, final = await alice.invite("bob", sdp=offer.encode())
            assert final.status == 200, final
            await alice.ack(call)
            await peer.accept_answer(final.body.decode())
            await peer.wait_for_audio(min_frames=50, timeout_s=20)
            during = await scrape(gateway)
            assert _sum(during, "rtcgw_calls_active", path="dtls-srtp<->rtp") == 1.0
            assert (await alice.bye(call)).status == 200
            assert await finish(pbx) == 0

            # The media figures reach /metrics at the session's close; scrape until then.
            for _ in range(100):
                samples = await scrape(gateway)
                if _sum(samples, "rtcgw_post_pickup_delay_seconds_count") >= 2:
                    break
                await trio.sleep(0.1)
            _, _, text = await http(gateway, "/metrics")

    exposition = tmp_path / "metrics.txt"
    exposition.write_text(text)
    checked = await trio.run_process(
        [PROMTOOL, "check", "metrics"], stdin=text.encode(), capture_stdout=True,
        capture_stderr=True, check=False,
    )  # fmt: skip
    problems = (checked.stdout + checked.stderr).decode()
    print(f"promtool check metrics: exit {checked.returncode} {problems.strip() or 'clean'}")
    assert checked.returncode == 0, problems

    served = _names(text)
    missing = [n for n in CONTRACT if n not in served and n.removesuffix("_total") not in served]
    assert missing == []
    # The same scrape serves everything grafana/ queries.
    assert_dashboard_and_alerts_are_served(text)

    figures = {
        "setup count": _sum(samples, "rtcgw_call_setup_seconds_count", direction="from_client"),
        "setup sum": _sum(samples, "rtcgw_call_setup_seconds_sum", direction="from_client"),
        "pickup to browser": _sum(
            samples, "rtcgw_post_pickup_delay_seconds_count", toward="browser"
        ),
        "pickup to sip": _sum(samples, "rtcgw_post_pickup_delay_seconds_count", toward="sip"),
        "ice nominations": _sum(samples, "rtcgw_ice_nomination_seconds_count"),
        "dtls ok": _sum(samples, "rtcgw_dtls_handshakes_total", result="ok"),
        "dtls timed": _sum(samples, "rtcgw_dtls_handshake_seconds_count"),
        "srtp->rtp packets": _sum(samples, "rtcgw_media_packets_total", path="srtp->rtp"),
        "rtp->srtp packets": _sum(samples, "rtcgw_media_packets_total", path="rtp->srtp"),
        "INVITE in": _sum(samples, "rtcgw_sip_messages_total", direction="in", method="INVITE"),
        "2xx out": _sum(samples, "rtcgw_sip_messages_total", direction="out", status_class="2xx"),
        "calls ended": _sum(samples, "rtcgw_calls_total", direction="from_client"),
        "calls active": _sum(samples, "rtcgw_calls_active"),
        "rule hits": _sum(samples, "rtcgw_rule_hits_total"),
        "register forwarded": _sum(samples, "rtcgw_register_requests_total", outcome="forwarded"),
        "websockets open": _sum(samples, "rtcgw_websocket_connections_active"),
    }
    print(figures)
    assert figures["setup count"] == 1.0 and figures["setup sum"] > 0
    assert figures["pickup to browser"] == 1.0 and figures["pickup to sip"] == 1.0
    assert figures["ice nominations"] == 1.0
    assert figures["dtls ok"] == 1.0 and figures["dtls timed"] == 1.0
    assert figures["srtp->rtp packets"] >= 50 and figures["rtp->srtp packets"] >= 50
    assert figures["INVITE in"] >= 1 and figures["2xx out"] >= 1
    assert figures["calls ended"] == 1.0 and figures["calls active"] == 0.0
    assert figures["rule hits"] >= 2  # the REGISTER's and the INVITE's A-rules at least
    assert figures["register forwarded"] == 1.0
    assert figures["websockets open"] == 1.0  # alice's wss is still open at the scrape
