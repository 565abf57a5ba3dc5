"""The media seam feeds a worker's call timelines: a scripted browser calls a plain phone
through a running relay, and ``detail`` shows what happened on the wire."""

from __future__ import annotations

import json

import trio

from rtcgw.worker.timeline import CallTimelines
from tests.worker.media.harness import browser_calls_phone, running_gateway


def event_names(detail: dict[str, object]) -> list[str]:
    events = detail["events"]
    assert isinstance(events, list)
    return [event["event"] for event in events]


async def test_connected_call_shows_ice_dtls_first_packets_and_no_verdict() -> None:
    timelines = CallTimelines(clock=trio.current_time)
    with trio.fail_after(20):
        async with running_gateway() as gateway:
            gateway.seam.timelines = timelines
            async with browser_calls_phone(gateway) as call:
                call_id = call.call.call_id
                await call.phone_to_browser(10)
                await call.browser_to_phone(12)
                detail = timelines.detail(call_id)
                summary = timelines.summary()
                gateway.seam.call_ended(call.call, 200)  # type: ignore[arg-type]
                timelines.ended(call_id, trio.current_time())
                after = timelines.detail(call_id)
    print(json.dumps(detail, indent=1))
    assert detail is not None and after is not None
    assert detail["verdict"] is None
    names = event_names(detail)
    for name in (
        "media_answered",
        "ice_first_check",
        "ice_nominated",
        "dtls_started",
        "dtls_connected",
        "first_packet_from",
        "first_packet_toward",
    ):
        assert name in names, (name, names)
    assert names.index("ice_first_check") < names.index("dtls_connected")
    assert detail["ice"] == "nominated" and detail["dtls"] == "connected"
    assert detail["path"] == "dtls-srtp pcmu <-> rtp pcmu"
    media = detail["media"]
    assert isinstance(media, list)
    browser_to_phone, phone_to_browser = media
    assert browser_to_phone["from"] == "browser (a)" and browser_to_phone["to"] == "sip (b)"
    assert browser_to_phone["packets_in"] == browser_to_phone["packets_relayed"] == 12
    assert phone_to_browser["packets_in"] == phone_to_browser["packets_relayed"] == 10
    assert browser_to_phone["srtp_auth_failures"] == 0
    assert [row["call_id"] for row in summary] == [call_id]
    assert summary[0]["path"] == "dtls-srtp pcmu <-> rtp pcmu"
    # Kept after the end, with the figures frozen when the media was released.
    assert after["active"] is False and after["verdict"] is None
    assert after["media"] == detail["media"]
    assert timelines.summary() == []
    json.dumps(after)


async def test_browser_that_never_checks_gets_the_ice_verdict() -> None:
    timelines = CallTimelines(clock=trio.current_time)
    with trio.fail_after(20):
        async with running_gateway() as gateway:
            gateway.seam.timelines = timelines
            async with browser_calls_phone(gateway, connect=False) as call:
                await call.phone.send(call.phone.packet())
                detail = timelines.detail(call.call.call_id)
    print(json.dumps(detail, indent=1))
    assert detail is not None
    assert detail["verdict"] == "browser never sent an ICE check"
    assert detail["ice"] == "waiting" and detail["dtls"] == "new"
    assert "ice_first_check" not in event_names(detail)
