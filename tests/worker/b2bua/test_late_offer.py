"""A late offer from the PBX toward a browser: the gateway offers to the browser itself,
learns the browser's answer from its 2xx, offers to the PBX in its 200 and learns the
PBX's answer from the ACK (``invite`` module docstring, step 3a)."""

from __future__ import annotations

from dataclasses import dataclass, field

from rtcgw.media.dtmf import DtmfDigit
from rtcgw.registrations import MemoryCache
from rtcgw.sdp.errors import SdpNegotiationError
from rtcgw.sip.message import Request, Response
from rtcgw.worker.b2bua import B2bua, CallAnswered, CallEnded, EndReason, MediaRefused
from rtcgw.worker.b2bua.call import Call
from rtcgw.worker.b2bua.leg import Leg
from rtcgw.worker.b2bua.seam import LegSide
from tests.worker.b2bua.harness import (
    BROWSER,
    BROWSER_CONTACT,
    PBX,
    SDP_ANSWER,
    SDP_OFFER,
    SETTINGS,
    SHARD,
    Gateway,
    answer,
    header,
    pbx_request,
)
from tests.worker.b2bua.scenarios import ClientCall, browser_binding, confirmed_client_call

OFFER_TO_BROWSER = b"v=0\r\no=- 7 1 IN IP4 192.0.2.1\r\ns=offer to the browser\r\nt=0 0\r\n"
OFFER_TO_PBX = b"v=0\r\no=- 8 1 IN IP4 192.0.2.1\r\ns=offer to the PBX\r\nt=0 0\r\n"
BROWSER_ANSWER = SDP_OFFER
PBX_ANSWER = SDP_ANSWER
#: an answer the fake seam refuses, as the media seam refuses one with no common codec
UNUSABLE = b"v=0\r\no=- 9 1 IN IP4 192.0.2.50\r\ns=unusable\r\nt=0 0\r\n"
SDP = "application/sdp"


@dataclass
class OfferingSeam:
    """An SDP seam that offers on its own toward browsers (``offers``) and records the
    answers it learns; it refuses ``UNUSABLE``."""

    offers: bool = True
    refuse_offer: bool = False
    offered: list[LegSide] = field(default_factory=list)
    learned: list[tuple[LegSide, bytes]] = field(default_factory=list)
    ended: list[int | None] = field(default_factory=list)

    def offer_out(self, call: Call, leg: Leg, sdp: bytes) -> bytes:
        return sdp

    def answer_out(self, call: Call, leg: Leg, sdp: bytes) -> bytes:
        return sdp

    def local_answer(self, call: Call, leg: Leg, sdp: bytes) -> bytes | None:
        return None

    def local_offer(self, call: Call, leg: Leg) -> bytes | None:
        if not self.offers:
            return None
        if self.refuse_offer:
            raise SdpNegotiationError("no codec to offer on leg b: the rules allow none")
        if leg.side is LegSide.SIP and not self.learned:
            # As the media session does: no offer on one leg before the other answered.
            raise SdpNegotiationError("leg b gave no answer to the offer made there")
        self.offered.append(leg.side)
        return OFFER_TO_BROWSER if leg.side is LegSide.CLIENT else OFFER_TO_PBX

    def answer_in(self, call: Call, leg: Leg, sdp: bytes) -> None:
        if sdp == UNUSABLE:
            raise SdpNegotiationError("no common codec: offered PCMU/8000; answered G729/8000")
        self.learned.append((leg.side, sdp))

    def call_ended(self, call: Call, status: int | None) -> None:
        self.ended.append(status)

    def dtmf_out(self, call: Call, leg: Leg, digit: DtmfDigit) -> bool:
        return False


def _gateway(seam: OfferingSeam) -> Gateway:
    gw = Gateway(bindings=browser_binding())
    cache = MemoryCache()
    for binding in gw.bindings.values():
        cache.put(binding, "registered")
    gw.core = B2bua(SETTINGS, shard=SHARD, rules=gw.config, registrations=cache, sdp=seam)
    return gw


def _offerless_invite(gw: Gateway) -> tuple[Request, Request]:
    """The PBX's INVITE without SDP and the INVITE the browser got."""
    invite = pbx_request()
    sent = gw.from_pbx(invite)
    assert sent.statuses_to(PBX) == [100]
    return invite, sent.one_request(BROWSER, "INVITE")


def _browser_answers(
    gw: Gateway, b_invite: Request, body: bytes = BROWSER_ANSWER
) -> tuple[Response, list[Request]]:
    """The browser's 200 (with ``body``): the PBX's 200 and the ACKs the browser got."""
    sent = gw.from_browser(
        answer(b_invite, 200, to_tag="js-tag", contact=BROWSER_CONTACT, body=body)
    )
    [ok] = sent.responses_to(PBX)
    return ok, sent.requests_to(BROWSER, "ACK")


def _pbx_ack(ok: Response, body: bytes) -> Request:
    return pbx_request("ACK", to_tag=ok.to_tag, cseq=1, body=body)


def test_an_offerless_invite_from_the_pbx_reaches_the_browser_with_our_offer() -> None:
    seam = OfferingSeam()
    gw = _gateway(seam)
    _, b_invite = _offerless_invite(gw)
    assert b_invite.body == OFFER_TO_BROWSER
    assert b_invite.content_type == SDP
    assert seam.offered == [LegSide.CLIENT]


def test_the_browsers_answer_is_acked_at_once_and_the_pbx_answers_our_offer_in_its_ack() -> None:
    seam = OfferingSeam()
    gw = _gateway(seam)
    _, b_invite = _offerless_invite(gw)
    ok, [browser_ack] = _browser_answers(gw, b_invite)
    # The browser's 200 was an answer: its ACK goes now, without a body ...
    assert browser_ack.body == b"" and not browser_ack.has("Content-Type")
    assert browser_ack.cseq.seq == b_invite.cseq.seq and browser_ack.to_tag == "js-tag"
    # ... and the PBX gets an offer of ours for its leg in the 200.
    assert ok.status == 200 and ok.body == OFFER_TO_PBX and ok.content_type == SDP
    assert seam.learned == [(LegSide.CLIENT, BROWSER_ANSWER)]
    assert seam.offered == [LegSide.CLIENT, LegSide.SIP]
    assert len(gw.of_type(CallAnswered)) == 1
    acked = gw.from_pbx(_pbx_ack(ok, PBX_ANSWER))
    assert acked.outgoing == []  # the browser has its ACK already
    assert seam.learned[-1] == (LegSide.SIP, PBX_ANSWER)
    assert gw.of_type(CallEnded) == []
    assert gw.core.active_calls == 1
    # A retransmitted 200 from the browser gets the same bodiless ACK again.
    again = gw.from_browser(
        answer(b_invite, 200, to_tag="js-tag", contact=BROWSER_CONTACT, body=BROWSER_ANSWER)
    )
    assert [a.body for a in again.requests_to(BROWSER, "ACK")] == [b""]


def test_a_pbx_answer_with_no_common_codec_ends_the_call_on_both_legs() -> None:
    seam = OfferingSeam()
    gw = _gateway(seam)
    _, b_invite = _offerless_invite(gw)
    ok, _ = _browser_answers(gw, b_invite)
    sent = gw.from_pbx(_pbx_ack(ok, UNUSABLE))
    assert sent.one_request(PBX, "BYE").call_id == ok.call_id
    assert sent.one_request(BROWSER, "BYE").call_id == b_invite.call_id
    [refused] = gw.of_type(MediaRefused)
    assert "no common codec" in refused.reason
    [ended] = gw.of_type(CallEnded)
    assert ended.reason is EndReason.MEDIA_REFUSED


def test_an_ack_without_the_answer_ends_the_call_on_both_legs() -> None:
    seam = OfferingSeam()
    gw = _gateway(seam)
    _, b_invite = _offerless_invite(gw)
    ok, _ = _browser_answers(gw, b_invite)
    sent = gw.from_pbx(_pbx_ack(ok, b""))
    assert sent.one_request(PBX, "BYE") and sent.one_request(BROWSER, "BYE")
    [refused] = gw.of_type(MediaRefused)
    assert "carries no answer" in refused.reason
    assert gw.of_type(CallEnded)[0].reason is EndReason.MEDIA_REFUSED


def test_a_browser_answer_the_seam_refuses_gets_ack_and_bye_and_the_pbx_488() -> None:
    seam = OfferingSeam()
    gw = _gateway(seam)
    _, b_invite = _offerless_invite(gw)
    sent = gw.from_browser(
        answer(b_invite, 200, to_tag="js-tag", contact=BROWSER_CONTACT, body=UNUSABLE)
    )
    assert sent.one_request(BROWSER, "ACK").body == b""
    assert sent.one_request(BROWSER, "BYE")
    [refusal] = sent.responses_to(PBX)
    assert refusal.status == 488
    assert "no common codec" in header(refusal, "Warning")
    assert gw.of_type(CallEnded)[0].reason is EndReason.MEDIA_REFUSED


def test_a_browser_200_without_an_answer_gets_bye_and_the_pbx_488() -> None:
    seam = OfferingSeam()
    gw = _gateway(seam)
    _, b_invite = _offerless_invite(gw)
    sent = gw.from_browser(answer(b_invite, 200, to_tag="js-tag", contact=BROWSER_CONTACT))
    assert sent.one_request(BROWSER, "BYE")
    [refusal] = sent.responses_to(PBX)
    assert refusal.status == 488 and "no answer" in header(refusal, "Warning")


def test_sdp_in_an_unreliable_183_is_a_preview_the_pbx_does_not_see() -> None:
    seam = OfferingSeam()
    gw = _gateway(seam)
    _, b_invite = _offerless_invite(gw)
    progress = answer(b_invite, 183, to_tag="js-tag", contact=BROWSER_CONTACT, body=BROWSER_ANSWER)
    [r183] = gw.from_browser(progress).responses_to(PBX)
    assert r183.status == 183 and r183.body == b"" and not r183.has("Content-Type")
    assert seam.learned == []  # the final answer is in the 2xx
    ok, _ = _browser_answers(gw, b_invite)
    assert ok.body == OFFER_TO_PBX
    assert seam.learned == [(LegSide.CLIENT, BROWSER_ANSWER)]


def test_the_answer_in_a_reliable_183_serves_a_200_without_sdp() -> None:
    seam = OfferingSeam()
    gw = _gateway(seam)
    _, b_invite = _offerless_invite(gw)
    reliable = (("Require", "100rel"), ("RSeq", "1"))
    progress = answer(
        b_invite, 183, to_tag="js-tag", contact=BROWSER_CONTACT, body=BROWSER_ANSWER, extra=reliable
    )
    sent = gw.from_browser(progress)
    assert sent.one_request(BROWSER, "PRACK")
    [r183] = sent.responses_to(PBX)
    assert r183.body == b""
    assert seam.learned == [(LegSide.CLIENT, BROWSER_ANSWER)]
    ok, [ack] = _browser_answers(gw, b_invite, body=b"")
    assert ok.status == 200 and ok.body == OFFER_TO_PBX
    assert ack.body == b""


def test_an_offer_the_rules_cannot_make_gets_488_and_no_invite() -> None:
    seam = OfferingSeam(refuse_offer=True)
    gw = _gateway(seam)
    sent = gw.from_pbx(pbx_request())
    assert sent.requests_to(BROWSER) == []
    assert sent.statuses_to(PBX) == [100, 488]
    [refusal] = sent.responses_to(PBX)[1:]
    assert "no codec to offer" in header(refusal, "Warning")
    assert seam.ended == [488]


def test_without_an_offer_of_ours_the_invite_goes_on_without_sdp() -> None:
    seam = OfferingSeam(offers=False)
    gw = _gateway(seam)
    _, b_invite = _offerless_invite(gw)
    assert b_invite.body == b""
    # The browser offers in its 200; its ACK waits for the PBX's, which carries the answer.
    ok, acks = _browser_answers(gw, b_invite, body=SDP_OFFER)
    assert acks == [] and ok.body == SDP_OFFER
    acked = gw.from_pbx(_pbx_ack(ok, PBX_ANSWER))
    assert acked.one_request(BROWSER, "ACK").body == PBX_ANSWER
    assert seam.learned == []


def _confirmed_browser_call(seam: OfferingSeam) -> tuple[Gateway, ClientCall]:
    """A browser-to-PBX call through both ACKs; the seam then offers on either leg."""
    gw = _gateway(seam)
    call = confirmed_client_call(gw)
    seam.learned.append((LegSide.SIP, SDP_ANSWER))  # both legs negotiated
    return gw, call


def test_a_late_offer_reinvite_from_the_pbx_is_answered_here_with_our_offer() -> None:
    seam = OfferingSeam()
    gw, call = _confirmed_browser_call(seam)
    sent = gw.from_pbx(call.from_pbx("INVITE", 20))
    # RFC 3261 14.1: the 2xx to an offerless re-INVITE carries the offer, written for the
    # PBX's leg from its own state; the browser's leg sees nothing.
    [ok] = [r for r in sent.responses_to(PBX) if r.status == 200]
    assert ok.body == OFFER_TO_PBX and ok.content_type == SDP and ok.cseq.seq == 20
    assert sent.to(BROWSER) == []
    assert seam.offered[-1] is LegSide.SIP
    acked = gw.from_pbx(call.from_pbx("ACK", 20, body=PBX_ANSWER))
    assert acked.outgoing == []
    assert seam.learned[-1] == (LegSide.SIP, PBX_ANSWER)
    # Once ACKed, the 200 is no longer retransmitted, and the call goes on.
    assert gw.advance(10).to(PBX) == []
    assert gw.of_type(CallEnded) == []


def test_a_late_offer_reinvite_whose_ack_has_no_usable_answer_ends_the_call() -> None:
    for body in (b"", UNUSABLE):
        seam = OfferingSeam()
        gw, call = _confirmed_browser_call(seam)
        gw.from_pbx(call.from_pbx("INVITE", 20))
        sent = gw.from_pbx(call.from_pbx("ACK", 20, body=body))
        assert sent.one_request(BROWSER, "BYE") and sent.one_request(PBX, "BYE")
        [ended] = gw.of_type(CallEnded)
        assert ended.reason is EndReason.MEDIA_REFUSED
        assert gw.of_type(MediaRefused)


def test_a_late_offer_reinvite_without_anchored_media_is_relayed() -> None:
    seam = OfferingSeam(offers=False)
    gw, call = _confirmed_browser_call(seam)
    sent = gw.from_pbx(call.from_pbx("INVITE", 20))
    to_client = sent.one_request(BROWSER, "INVITE")
    assert to_client.body == b""
