"""CallTimelines on its own: events in order, bounded memory, and each verdict rule from
media figures as the seam's probe would report them."""

from __future__ import annotations

import dataclasses
import json

import pytest

from rtcgw.worker.timeline import CallTimelines, LegFigures, peek_sip

INVITE = (
    b"INVITE sip:100@gw SIP/2.0\r\nVia: SIP/2.0/WSS x;branch=z9hG4bK1\r\n"
    b"Call-ID: abc@browser\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n"
)
RINGING = b"SIP/2.0 180 Ringing\r\ni: b-leg-1\r\nCSeq:   1   INVITE\r\n\r\n"

BROWSER_OK = LegFigures(
    leg="a",
    webrtc=True,
    packets_in=50,
    packets_out=48,
    first_in_at=12.0,
    first_out_at=11.5,
    ice_checks=3,
    ice_first_check_at=10.2,
    ice_nominated_at=10.3,
    dtls_state="connected",
    dtls_role="server",
    dtls_started_at=10.3,
    dtls_completed_at=10.6,
    dtls_cipher="ECDHE-ECDSA-AES128-GCM-SHA256",
    srtp_profile="AES128_CM_SHA1_80",
)
PHONE_OK = LegFigures(
    leg="b", webrtc=False, packets_in=49, packets_out=50, first_in_at=11.4, first_out_at=12.1
)


class Clock:
    def __init__(self) -> None:
        self.now = 10.0

    def __call__(self) -> float:
        return self.now


def answered(figures: tuple[LegFigures, ...], **options: int) -> CallTimelines:
    """A call answered at t=0 whose probe reports ``figures``."""
    timelines = CallTimelines(clock=Clock(), **options)  # type: ignore[arg-type]
    timelines.open("abc@browser", 10.0, b_call_id="b-leg-1")
    timelines.watch("abc@browser", lambda: figures)
    timelines.record("abc@browser", "answered", 10.0)
    timelines.record("abc@browser", "media_answered", 10.0, a="dtls-srtp pcmu", b="rtp pcmu")
    return timelines


def verdict(*figures: LegFigures, **events: float) -> object:
    timelines = answered(figures)
    for name, at in events.items():
        timelines.record("abc@browser", name, at, leg="a")
    detail = timelines.detail("abc@browser", now=20.0)
    assert detail is not None
    return detail["verdict"]


def test_peek_sip_reads_call_id_message_and_cseq() -> None:
    assert peek_sip(INVITE) == ("abc@browser", "INVITE", "1 INVITE")
    assert peek_sip(RINGING) == ("b-leg-1", "180 Ringing", "1 INVITE")
    assert peek_sip(b"SIP/2.0 200 OK\r\nCSeq: 1 BYE\r\n\r\n") is None


def test_detail_orders_sip_and_media_events_and_is_json() -> None:
    timelines = answered((BROWSER_OK, PHONE_OK))
    timelines.sip(INVITE, 9.0, direction="in", transport="WSS")
    timelines.sip(RINGING, 9.5, direction="in", transport="UDP")
    timelines.sip(b"OPTIONS sip:x SIP/2.0\r\nCall-ID: other\r\n\r\n", 9.6, direction="in")
    detail = timelines.detail("b-leg-1", now=20.0)  # either leg's Call-ID finds the call
    assert detail is not None
    print(json.dumps(detail, indent=1))
    assert json.loads(json.dumps(detail)) == detail
    assert detail["call_id"] == "abc@browser" and detail["verdict"] is None
    assert detail["path"] == "wss dtls-srtp pcmu <-> udp rtp pcmu"
    assert detail["ice"] == "nominated" and detail["dtls"] == "connected"
    events = detail["events"]
    assert isinstance(events, list)
    assert [(e["t"], e["event"]) for e in events] == [
        (-1.0, "sip_in"),
        (-0.5, "sip_in"),
        (0.0, "answered"),
        (0.0, "media_answered"),
        (0.2, "ice_first_check"),
        (0.3, "ice_nominated"),
        (0.3, "dtls_started"),
        (0.6, "dtls_connected"),
        (1.4, "first_packet_from"),
        (1.5, "first_packet_toward"),
        (2.0, "first_packet_from"),
        (2.1, "first_packet_toward"),
    ]
    assert events[1] == {
        "t": -0.5,
        "event": "sip_in",
        "leg": "b",
        "message": "180 Ringing",
        "cseq": "1 INVITE",
    }
    assert events[7]["duration_ms"] == 300.0
    media = detail["media"]
    assert isinstance(media, list)
    assert media[0]["from"] == "browser (a)"
    assert (media[0]["packets_in"], media[0]["packets_relayed"]) == (50, 50)
    assert (media[1]["packets_in"], media[1]["packets_relayed"]) == (49, 48)
    assert detail["packets"] == {
        "from browser (a)": 50,
        "toward browser (a)": 48,
        "from sip (b)": 49,
        "toward sip (b)": 50,
    }
    assert detail["srtp_auth_failures"] == {"from browser (a)": 0, "from sip (b)": 0}


@pytest.mark.parametrize(
    ("browser", "phone", "events", "expected"),
    [
        (
            LegFigures("a", webrtc=True),
            PHONE_OK,
            {},
            "browser never sent an ICE check",
        ),
        (
            dataclasses.replace(BROWSER_OK, dtls_state="handshaking", packets_in=0),
            PHONE_OK,
            {},
            "browser never completed DTLS",
        ),
        (
            dataclasses.replace(BROWSER_OK, dtls_state="failed", dtls_failure="handshake timeout"),
            PHONE_OK,
            {},
            "DTLS failed: handshake timeout",
        ),
        (
            dataclasses.replace(BROWSER_OK, dtls_state="failed", dtls_fingerprint_mismatch=True),
            PHONE_OK,
            {},
            "DTLS fingerprint mismatch",
        ),
        (
            dataclasses.replace(BROWSER_OK, packets_in=0),
            PHONE_OK,
            {},
            "no SRTP from the browser since DTLS completed",
        ),
        (
            dataclasses.replace(BROWSER_OK, packets_in=0, srtp_auth_failures=40),
            PHONE_OK,
            {},
            "every SRTP packet from the browser failed authentication",
        ),
        (
            BROWSER_OK,
            dataclasses.replace(PHONE_OK, packets_in=0),
            {},
            "no RTP from the SIP side since answer",
        ),
        (
            BROWSER_OK,
            dataclasses.replace(PHONE_OK, packets_out=0),
            {},
            "packets from the browser are not relayed toward the sip",
        ),
        (
            dataclasses.replace(BROWSER_OK, packets_out=0),
            PHONE_OK,
            {},
            "packets from the sip are not relayed toward the browser",
        ),
        (
            BROWSER_OK,
            PHONE_OK,
            {"ice_consent_lost": 17.25},
            "browser stopped answering consent checks at 7.2 s",
        ),
        (BROWSER_OK, PHONE_OK, {}, None),
    ],
)
def test_verdicts(
    browser: LegFigures, phone: LegFigures, events: dict[str, float], expected: str | None
) -> None:
    assert verdict(browser, phone, **events) == expected


def test_unanswered_and_unanchored_calls() -> None:
    timelines = CallTimelines(clock=Clock())
    timelines.open("x", 10.0)
    detail = timelines.detail("x")
    assert detail is not None and detail["verdict"] == "call not answered yet"
    timelines.record("x", "answered", 11.0)
    detail = timelines.detail("x")
    assert detail is not None
    assert detail["verdict"] == "media does not pass through the gateway (not anchored)"
    assert detail["ice"] is None and detail["packets"] is None
    assert detail["path"] == "? <-> ? (signaling only)"


def test_ended_calls_are_kept_five_minutes_and_at_most_max_ended() -> None:
    timelines = CallTimelines(clock=Clock(), max_ended=3)
    for number in range(5):
        timelines.open(f"c{number}", 10.0, b_call_id=f"b{number}")
        timelines.ended(f"c{number}", 20.0 + number)
    assert [c for c in ("c0", "c1", "c2", "c3", "c4") if timelines.detail(c)] == ["c2", "c3", "c4"]
    assert timelines.detail("b0") is None and timelines.detail("b4") is not None
    assert timelines.summary() == []
    # A message on an ended call lands on its timeline and does not revive it.
    timelines.sip(RINGING.replace(b"b-leg-1", b"b4"), 24.5, direction="out")
    assert timelines.summary() == []
    ended = timelines.detail("c4")
    assert ended is not None and ended["active"] is False and ended["age_s"] == 14.0
    # Five minutes after its end a call is gone (pruned when the next one ends).
    timelines.open("late", 400.0)
    timelines.ended("late", 400.0)
    assert [c for c in ("c2", "c3", "c4", "late") if timelines.detail(c)] == ["late"]


def test_events_per_call_are_capped_and_counted() -> None:
    timelines = CallTimelines(clock=Clock(), max_events=5)
    timelines.open("x", 10.0)
    for number in range(12):
        timelines.record("x", "sip", 10.0 + number, message=str(number))
    detail = timelines.detail("x")
    assert detail is not None
    events = detail["events"]
    assert isinstance(events, list) and len(events) == 5
    assert detail["events_left_out"] == 7


def test_probe_is_frozen_when_the_media_is_released() -> None:
    figures = [(BROWSER_OK, PHONE_OK)]
    timelines = answered(figures[0])

    def probe() -> tuple[LegFigures, ...]:
        return figures[0]

    timelines.watch("abc@browser", probe)
    timelines.unwatch("abc@browser", probe)
    figures[0] = (LegFigures("a", webrtc=True), PHONE_OK)
    detail = timelines.detail("abc@browser", now=20.0)
    assert detail is not None and detail["verdict"] is None
    # A retry of a challenged caller (same Call-ID) resumes the ended timeline.
    timelines.ended("abc@browser", 21.0)
    timelines.open("abc@browser", 22.0)
    assert [row["call_id"] for row in timelines.summary(now=23.0)] == ["abc@browser"]
