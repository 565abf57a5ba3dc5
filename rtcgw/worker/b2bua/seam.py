"""The SDP seam: the one place per leg where an offer or an answer leaves the B2BUA.

Every SDP body the B2BUA sends (INVITE, 18x, 2xx, ACK, UPDATE, PRACK with
``application/sdp``) goes through ``offer_out`` or ``answer_out`` of the ``SdpSeam`` it was
given, with the side it is sent to. The media layer plugs its WebRTC <-> plain RTP
transform and its relay allocation in here; ``PassThroughSdp`` leaves bodies unchanged.
"""

from __future__ import annotations

import enum
from typing import Protocol, final

__all__ = ["LegSide", "PassThroughSdp", "SdpSeam"]


class LegSide(enum.Enum):
    """Which side of the gateway a leg faces."""

    CLIENT = "client"  #: a WebSocket client (browser, JsSIP, SIP.js)
    SIP = "sip"  #: the SIP side (the PBX)


class SdpSeam(Protocol):
    """Where offers and answers go out; ``call_id`` is the call's (A-leg) Call-ID."""

    def offer_out(self, call_id: str, leg: LegSide, sdp: bytes) -> bytes:
        """The offer to send on the ``leg`` side, made from the other side's offer."""
        ...

    def answer_out(self, call_id: str, leg: LegSide, sdp: bytes) -> bytes:
        """The answer to send on the ``leg`` side, made from the other side's answer."""
        ...

    def call_ended(self, call_id: str) -> None:
        """The call is over: release whatever was allocated for it."""
        ...


@final
class PassThroughSdp:
    """An ``SdpSeam`` that sends every body unchanged (signaling-only tests, no media)."""

    def offer_out(self, call_id: str, leg: LegSide, sdp: bytes) -> bytes:
        """Return ``sdp`` unchanged."""
        return sdp

    def answer_out(self, call_id: str, leg: LegSide, sdp: bytes) -> bytes:
        """Return ``sdp`` unchanged."""
        return sdp

    def call_ended(self, call_id: str) -> None:
        """Nothing to release."""
