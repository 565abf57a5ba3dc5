"""Every log line of a call names its call, its leg and its worker.

A whole WebRTC call runs through ``rtcgw run`` with JSON logs (``calls.py``: aiortc calls
the PBX, media flows both ways, the browser hangs up), then the gateway's log is read:
each line with a Call-ID has ``leg`` and ``worker`` (or is one of the supervisor's
documented lines), and the call's dialog, ICE, DTLS, conversion path and rule decision
each left their line with the fields an operator searches by. The leg bookkeeping behind
those fields is checked on its own first.
"""

from __future__ import annotations

from pathlib import Path

import trio

from rtcgw.observability.logging import LEGS, SUPERVISOR_CALL_EVENTS
from rtcgw.worker.b2bua import (
    CallDirection,
    CallEnded,
    CallStarted,
    EndReason,
    MessageDropped,
    RequestRejected,
    RouteDecided,
    RouteOutcome,
)
from rtcgw.worker.log_fields import CallLegs, notice_event
from tests.integration.calls import browser_calls_the_pbx
from tests.integration.gateway import LogEvent

B_CALL_ID = "r1-0123456789abcdef01234567@127.0.0.1"


def test_a_line_about_the_callee_leg_names_the_call_and_keeps_the_leg_call_id() -> None:
    legs = CallLegs()
    legs.note(CallStarted("browser-call-1", CallDirection.FROM_CLIENT, B_CALL_ID))
    event, values = notice_event(RequestRejected(B_CALL_ID, 481, "Gone"), legs)
    assert event == "b2bua.request_rejected"
    assert values["call_id"] == "browser-call-1"
    assert values["leg"] == "b"
    assert values["leg_call_id"] == B_CALL_ID
    _, values = notice_event(RequestRejected("browser-call-1", 491, "Request Pending"), legs)
    assert (values["call_id"], values["leg"]) == ("browser-call-1", "a")
    assert "leg_call_id" not in values


def test_an_ended_call_is_still_named_by_its_late_lines_within_a_bounded_memory() -> None:
    legs = CallLegs(ended_kept=2)
    for n in range(5):
        b_call_id = f"r1-{n:024x}"
        started = CallStarted(f"call-{n}", CallDirection.FROM_CLIENT, b_call_id)
        legs.note(started)
        legs.note(CallEnded(f"call-{n}", EndReason.HANGUP_CLIENT))
    # A stray answer on the last call's callee leg, after the call ended.
    _, values = notice_event(MessageDropped("stray_response", "200", f"r1-{4:024x}"), legs)
    assert (values["call_id"], values["leg"]) == ("call-4", "b")
    # The oldest calls were forgotten: a Call-ID the gateway minted is still a callee leg.
    assert len(legs) == 4
    assert legs.resolve(f"r1-{0:024x}") == (f"r1-{0:024x}", "b")
    assert legs.resolve("browser-register-1") == ("browser-register-1", "a")


def test_whole_call_notices_are_logged_with_leg_call() -> None:
    legs = CallLegs()
    decided = RouteDecided(
        "browser-call-2", "INVITE", "browsers", "pbx", "rtc/a:to_pbx -> route pbx",
        (("rtc", "a", "to_pbx"),), realm="rtc", rule="rtc/a:to_pbx",
        outcome=RouteOutcome.ROUTED,
    )  # fmt: skip
    event, values = notice_event(decided, legs)
    assert event == "b2bua.route_decided"
    assert values["leg"] == "call"
    assert (values["realm"], values["rule"], values["outcome"]) == ("rtc", "rtc/a:to_pbx", "routed")


def _first(lines: list[LogEvent], event: str) -> LogEvent:
    found = [line for line in lines if line.get("event") == event]
    assert found, f"no {event} among {sorted({str(line.get('event')) for line in lines})}"
    return found[0]


async def test_every_line_of_a_webrtc_call_names_its_call_leg_and_worker(
    tmp_path: Path,
) -> None:
    with trio.fail_after(120):
        async with browser_calls_the_pbx(tmp_path) as call:
            gateway, call_id = call.gateway, call.call_id
            await call.hang_up()
            await gateway.wait_for("b2bua.call_ended", where=lambda e: e["call_id"] == call_id)
            await gateway.wait_for(
                "media.stream_closed", count=2, where=lambda e: e["call_id"] == call_id
            )
    # The gateway has stopped: its whole log is in, shutdown lines included.
    events = gateway.events
    unnamed = [
        e
        for e in events
        if e.get("call_id")
        and not (e.get("leg") in LEGS and "worker" in e)
        and e.get("event") not in SUPERVISOR_CALL_EVENTS
    ]
    assert unnamed == []

    lines = [e for e in events if e.get("call_id") == call_id]
    workers = {e["worker"] for e in lines if e.get("event") not in SUPERVISOR_CALL_EVENTS}
    assert len(workers) == 1, workers  # one call, one worker

    decided = [
        e for e in lines if e.get("event") == "b2bua.route_decided" and e["method"] == "INVITE"
    ]
    assert len(decided) == 1, decided
    assert decided[0]["leg"] == "call" and decided[0]["outcome"] == "routed"
    assert decided[0]["realm"] == "rtc" and decided[0]["rule"], decided[0]

    # The dialog: INVITE received (and forwarded), answered, ended by the browser's BYE.
    assert _first(lines, "b2bua.call_started")["leg"] == "call"
    assert _first(lines, "b2bua.call_answered")["leg"] == "call"
    ended = _first(lines, "b2bua.call_ended")
    assert (ended["leg"], ended["reason"]) == ("call", "hangup_client")

    # ICE and DTLS happen on the browser's leg, the caller's here.
    for event in ("media.ice_first_check", "media.ice_nominated", "media.dtls_started"):
        assert _first(lines, event)["leg"] == "a", event
    done = _first(lines, "media.dtls_connected")
    assert done["leg"] == "a" and done["role"] == "server", done
    assert done["cipher"] and done["srtp_profile"], done
    assert isinstance(done["duration_ms"], int | float), done
    assert not [e for e in lines if e.get("event") == "media.dtls_failed"]

    paths = [e for e in lines if e.get("event") == "media.path"]
    assert [(p["leg"], p["path"]) for p in paths] == [
        ("call", "wss dtls-srtp pcmu <-> udp rtp pcmu")
    ]
    closed = [e for e in lines if e.get("event") == "media.stream_closed"]
    assert sorted(e["leg"] for e in closed) == ["a", "b"]
