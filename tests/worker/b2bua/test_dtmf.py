"""DTMF at the B2BUA: a browser's INFO becomes RFC 4733 through the seam (or is relayed),
and digits the media relay reports go to the browser as INFO when the rules ask."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from rtcgw.config import load_config_text
from rtcgw.media.dtmf import DtmfDigit, parse_dtmf_relay
from rtcgw.registrations import MemoryCache
from rtcgw.sip.message import Request
from rtcgw.worker.b2bua import B2bua
from rtcgw.worker.b2bua.call import Call
from rtcgw.worker.b2bua.leg import Leg
from rtcgw.worker.b2bua.seam import LegSide
from tests.worker.b2bua.harness import (
    BROWSER,
    CONFIG_TEXT,
    PBX,
    SETTINGS,
    SHARD,
    Gateway,
    Sent,
    answer,
    header,
)
from tests.worker.b2bua.scenarios import ClientCall, confirmed_client_call

RELAY_BODY = b"Signal=5\r\nDuration=160\r\n"


@dataclass
class DtmfSeam:
    """An SDP seam that leaves bodies alone and records the digits it is asked to send."""

    telephone_event: bool = True
    sent: list[tuple[str, LegSide, DtmfDigit]] = field(default_factory=list)

    def offer_out(self, call: Call, leg: Leg, sdp: bytes) -> bytes:
        return sdp

    def answer_out(self, call: Call, leg: Leg, sdp: bytes) -> bytes:
        return sdp

    def local_answer(self, call: Call, leg: Leg, sdp: bytes) -> bytes | None:
        return None

    def call_ended(self, call: Call, status: int | None) -> None:
        return None

    def dtmf_out(self, call: Call, leg: Leg, digit: DtmfDigit) -> bool:
        if not self.telephone_event:
            return False
        self.sent.append((call.call_id, leg.side, digit))
        return True


def _gateway(seam: DtmfSeam, *, info_rule: bool = False) -> Gateway:
    text = CONFIG_TEXT
    if info_rule:
        text += (
            '\n[[realms.pbx.c_rules]]\nname = "digits"\n'
            'actions = [{ action = "dtmf_info_to_browser" }]\n'
        )
    gw = Gateway(config=load_config_text(text, source="dtmf.toml"))
    gw.core = B2bua(SETTINGS, shard=SHARD, rules=gw.config, registrations=MemoryCache(), sdp=seam)
    return gw


def _info(call: ClientCall, body: bytes, content_type: str = "application/dtmf-relay") -> Request:
    return call.from_browser("INFO", 2).with_body(body, content_type)


def test_a_dtmf_relay_info_is_answered_here_and_sent_as_rfc_4733() -> None:
    seam = DtmfSeam()
    gw = _gateway(seam)
    call = confirmed_client_call(gw)
    sent = gw.from_browser(_info(call, RELAY_BODY))
    assert sent.statuses_to(BROWSER) == [200]
    assert sent.to(PBX) == []  # not forwarded
    [(_, side, digit)] = seam.sent
    assert side is LegSide.SIP and digit == DtmfDigit(5, 160)


@pytest.mark.parametrize(
    ("body", "content_type", "expected"),
    [
        (b"Signal=#\r\nDuration=250\r\n", "application/dtmf-relay", DtmfDigit(11, 250)),
        (b"signal = *\n", "Application/DTMF-Relay", DtmfDigit(10, 100)),
        (b"7", "application/dtmf", DtmfDigit(7, 100)),
    ],
)
def test_both_dtmf_body_types_are_read(body: bytes, content_type: str, expected: DtmfDigit) -> None:
    seam = DtmfSeam()
    gw = _gateway(seam)
    call = confirmed_client_call(gw)
    assert gw.from_browser(_info(call, body, content_type)).statuses_to(BROWSER) == [200]
    assert [digit for _, _, digit in seam.sent] == [expected]


def test_without_telephone_event_the_info_is_relayed_unchanged() -> None:
    seam = DtmfSeam(telephone_event=False)
    gw = _gateway(seam)
    call = confirmed_client_call(gw)
    sent = gw.from_browser(_info(call, RELAY_BODY))
    relayed = sent.one_request(PBX, "INFO")
    assert relayed.body == RELAY_BODY
    assert header(relayed, "Content-Type") == "application/dtmf-relay"
    assert sent.statuses_to(BROWSER) == []  # the PBX's answer will come back
    sent = gw.from_pbx(answer(relayed, 200, contact=None))
    assert sent.statuses_to(BROWSER) == [200]


@pytest.mark.parametrize(
    ("body", "named"),
    [
        (b"Signal=X\r\nDuration=100\r\n", "Signal 'X'"),
        (b"Duration=100\r\n", "no Signal"),
        (b"Signal=1\r\nDuration=lots\r\n", "Duration 'lots'"),
    ],
)
def test_an_unparseable_dtmf_body_gets_400_naming_the_problem(body: bytes, named: str) -> None:
    seam = DtmfSeam()
    gw = _gateway(seam)
    call = confirmed_client_call(gw)
    sent = gw.from_browser(_info(call, body))
    [response] = sent.responses_to(BROWSER)
    assert response.status == 400 and named in response.reason, response.reason
    assert sent.to(PBX) == [] and seam.sent == []


def test_other_info_bodies_are_relayed() -> None:
    seam = DtmfSeam()
    gw = _gateway(seam)
    call = confirmed_client_call(gw)
    sent = gw.from_browser(_info(call, b"<xml/>", "application/media_control+xml"))
    assert sent.one_request(PBX, "INFO").body == b"<xml/>"
    assert seam.sent == []


def _digit_to_client(gw: Gateway, call_id: str, digit: DtmfDigit) -> Sent:
    out = gw.core.dtmf_to_client(call_id, digit, gw.now)
    gw.notices.extend(out.notices)
    return Sent(list(out.outgoing))


def test_a_reported_digit_reaches_the_browser_as_info_when_the_rule_asks() -> None:
    gw = _gateway(DtmfSeam(), info_rule=True)
    call = confirmed_client_call(gw)
    sent = _digit_to_client(gw, call.invite.call_id, DtmfDigit(11, 120))
    info = sent.one_request(BROWSER, "INFO")
    assert header(info, "Content-Type") == "application/dtmf-relay"
    assert parse_dtmf_relay(info.body.decode()) == DtmfDigit(11, 120)
    assert info.call_id == call.invite.call_id and info.from_tag == call.a_tag
    # The browser's answer is absorbed: nothing goes to the PBX.
    assert gw.from_browser(answer(info, 200, to_tag=call.invite.from_tag or "")).outgoing == []
    # A second digit is a new request in the same dialog.
    again = _digit_to_client(gw, call.invite.call_id, DtmfDigit(1, 100))
    assert again.one_request(BROWSER, "INFO").cseq.seq == info.cseq.seq + 1


def test_a_reported_digit_is_dropped_when_the_rule_does_not_ask() -> None:
    gw = _gateway(DtmfSeam())
    call = confirmed_client_call(gw)
    assert _digit_to_client(gw, call.invite.call_id, DtmfDigit(1)).outgoing == []
    assert _digit_to_client(gw, "no-such-call", DtmfDigit(1)).outgoing == []
