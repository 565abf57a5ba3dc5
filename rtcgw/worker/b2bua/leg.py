"""One leg of a call: one dialog with one peer, seen from the B2BUA.

A leg is the user-agent half the B2BUA plays toward one peer: its own Call-ID, tags, CSeq
(held by its ``Dialog``), Via and Contact address, and the peer its requests go to. The
A-leg is the UAS of the caller's INVITE, the B-leg the UAC of the INVITE we send.

Rules:

1. Requests on a leg always go to ``peer``: for a WebSocket client that is its connection
   (``Peer.connection_id``), never the ``.invalid`` host of its Contact; for the SIP side
   the PBX address or the address the PBX's INVITE came from.
2. A leg's identifiers are minted with the worker's shard (``rtcgw.sip.ids``), so traffic
   on legs we created comes back to this worker.
3. Leg state belongs to its call; nothing else mutates it. No I/O, no clock.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import final

from rtcgw.sip.dialog import Dialog
from rtcgw.sip.events import ClientTransactionKey, ServerTransactionKey
from rtcgw.sip.headers import Via
from rtcgw.sip.ids import new_branch
from rtcgw.sip.message import Request, Response
from rtcgw.sip.transaction import Role
from rtcgw.sip.transport import Peer
from rtcgw.sip.uri import SipUri
from rtcgw.worker.b2bua.seam import LegSide
from rtcgw.worker.b2bua.session_timer import SessionTimer
from rtcgw.worker.b2bua.settings import LocalAddress

__all__ = ["Leg", "LegKey", "Retransmission"]

#: ``(Call-ID, our tag)``: how a received in-dialog request finds its leg.
LegKey = tuple[str, str]


@dataclass(slots=True)
class Retransmission:
    """A 2xx we keep resending over UDP until the ACK comes (RFC 3261 13.3.1.4)."""

    server_key: ServerTransactionKey
    response: Response
    next_at: float
    interval_s: float
    give_up_at: float


@final
@dataclass(slots=True, eq=False)
class Leg:
    """One leg; see the module docstring.

    Attributes:
        side: which side of the gateway the leg faces.
        role: UAS for the caller's leg (A), UAC for the callee's (B).
        call_id: the leg's Call-ID.
        local_tag: our tag on this leg.
        peer: where requests on this leg go (Rule 1).
        local: our sent-by/Contact address on this leg.
        contact: our Contact URI on this leg.
        invite: the initial INVITE: as received (A) or as sent (B).
        invite_server_key / invite_client_key: its transaction.
        dialog: the confirmed (or early, for A) dialog; None before any.
        early: B-leg early dialogs by remote tag (a forking PBX sends several).
        ack: the ACK we sent for the 2xx (B), re-sent for each retransmitted 2xx.
        retransmission: our 2xx waiting for its ACK over UDP (A).
        session: the leg's session timer (RFC 4028), None when not negotiated.
        sdp_out: the last SDP body we sent on this leg (a re-INVITE refresh repeats it).
        peer_allows_update: the peer listed UPDATE in Allow (or sent no Allow).
        reinvite_in / reinvite_out: an INVITE transaction in progress inside the dialog,
            for 14.1/14.2's glare rules (491 / 500).
        ack_relay_seq: the peer's ACK on this leg must be relayed as the ACK with this
            CSeq on the other leg (a late-offer re-INVITE: the ACK carries the answer).
        local_offer_pending: we answered the peer's late-offer re-INVITE with an offer of
            ours; its ACK carries the answer, for this leg alone.
        rseq: the RSeq of the last reliable provisional PRACKed, per early dialog
            (remote tag), so retransmissions are discarded (RFC 3262 section 4).
    """

    side: LegSide
    role: Role
    call_id: str
    local_tag: str
    peer: Peer
    local: LocalAddress
    contact: SipUri
    invite: Request | None = None
    invite_server_key: ServerTransactionKey | None = None
    invite_client_key: ClientTransactionKey | None = None
    dialog: Dialog | None = None
    early: dict[str, Dialog] = field(default_factory=dict)
    ack: Request | None = None
    retransmission: Retransmission | None = None
    session: SessionTimer | None = None
    sdp_out: bytes = b""
    peer_allows_update: bool = True
    reinvite_in: ServerTransactionKey | None = None
    reinvite_out: ClientTransactionKey | None = None
    ack_relay_seq: int | None = None
    local_offer_pending: bool = False
    rseq: dict[str, int] = field(default_factory=dict)

    @property
    def key(self) -> LegKey:
        """``(Call-ID, our tag)``."""
        return (self.call_id, self.local_tag)

    def new_via(self, shard: int) -> Via:
        """Our Via for a new request on this leg, with a fresh sharded branch."""
        return Via.new(self.peer.transport, self.local.host, self.local.port, new_branch(shard))

    def note_allow(self, message: Request | Response) -> None:
        """Remember whether the peer accepts UPDATE (RFC 3311), from its Allow header."""
        allow = message.values("Allow")
        if allow:
            self.peer_allows_update = any(m.strip().upper() == "UPDATE" for m in allow)
