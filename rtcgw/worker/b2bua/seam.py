"""The SDP seam: the one place per leg where an offer or an answer leaves the B2BUA.

Every SDP body the B2BUA sends (INVITE, 18x, 2xx, ACK, UPDATE, PRACK with
``application/sdp``) goes through ``offer_out`` or ``answer_out`` of the ``SdpSeam`` it was
given, with the leg it is sent on. The media layer (``rtcgw.worker.media.seam``) plugs its
WebRTC <-> plain RTP conversion and its relay allocation in here; ``PassThroughSdp`` leaves
bodies unchanged.

An INVITE that comes without an offer toward a leg the gateway can offer on itself (a
browser's, when media is anchored) gets one from ``local_offer``: the callee's SDP is then
the answer, learned with ``answer_in``, and the caller gets an offer of ours in the 2xx
(``local_offer`` on its leg), whose answer in the ACK goes to ``answer_in`` as well.

The seam is also where DTMF meets the media: ``dtmf_out`` asks it to send a client's
INFO digit as RFC 4733 telephone-events on a leg's media instead of relaying the INFO.

A seam refuses a body it cannot use by raising ``rtcgw.sdp.errors.SdpError`` (its
``status_hint`` is 488): the B2BUA then answers the offerer with that status instead of
forwarding.
"""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING, Protocol, final

if TYPE_CHECKING:
    from rtcgw.media.dtmf import DtmfDigit
    from rtcgw.worker.b2bua.call import Call
    from rtcgw.worker.b2bua.leg import Leg

__all__ = ["LegSide", "PassThroughSdp", "SdpSeam"]


class LegSide(enum.Enum):
    """Which side of the gateway a leg faces."""

    CLIENT = "client"  #: a WebSocket client (browser, JsSIP, SIP.js)
    SIP = "sip"  #: the SIP side (the PBX)


class SdpSeam(Protocol):
    """Where offers and answers go out; ``leg`` is the leg the body is sent on."""

    def offer_out(self, call: Call, leg: Leg, sdp: bytes) -> bytes:
        """The offer to send on ``leg``, made from the other leg's offer."""
        ...

    def answer_out(self, call: Call, leg: Leg, sdp: bytes) -> bytes:
        """The answer to send on ``leg``, made from the other leg's answer."""
        ...

    def local_answer(self, call: Call, leg: Leg, sdp: bytes) -> bytes | None:
        """An answer to ``leg``'s re-offer that concerns ``leg`` alone (an ICE restart),
        or None when the other leg must see the offer."""
        ...

    def local_offer(self, call: Call, leg: Leg) -> bytes | None:
        """An offer of our own for ``leg``, written from its state (fresh or negotiated),
        for an INVITE that came without one; None when the INVITE goes on without SDP."""
        ...

    def answer_in(self, call: Call, leg: Leg, sdp: bytes) -> None:
        """``leg``'s peer answered a ``local_offer`` with ``sdp``: learn it (the other leg
        sees nothing of it)."""
        ...

    def call_ended(self, call: Call, status: int | None) -> None:
        """The call is over (``status``: the final answer that ended it, if any)."""
        ...

    def dtmf_out(self, call: Call, leg: Leg, digit: DtmfDigit) -> bool:
        """Send ``digit`` as RFC 4733 on ``leg``'s media; False when that media cannot
        (not anchored, no telephone-event negotiated), and the INFO is to be relayed."""
        ...


@final
class PassThroughSdp:
    """An ``SdpSeam`` that sends every body unchanged (signaling-only tests, no media)."""

    def offer_out(self, call: Call, leg: Leg, sdp: bytes) -> bytes:
        """Return ``sdp`` unchanged."""
        return sdp

    def answer_out(self, call: Call, leg: Leg, sdp: bytes) -> bytes:
        """Return ``sdp`` unchanged."""
        return sdp

    def local_answer(self, call: Call, leg: Leg, sdp: bytes) -> bytes | None:
        """Every re-offer goes to the other leg."""
        return None

    def local_offer(self, call: Call, leg: Leg) -> bytes | None:
        """No offers of our own: an INVITE without SDP goes on without SDP."""
        return None

    def answer_in(self, call: Call, leg: Leg, sdp: bytes) -> None:
        """Never called: we make no offers of our own."""

    def call_ended(self, call: Call, status: int | None) -> None:
        """Nothing to release."""

    def dtmf_out(self, call: Call, leg: Leg, digit: DtmfDigit) -> bool:
        """No media here: DTMF INFO is relayed."""
        return False
