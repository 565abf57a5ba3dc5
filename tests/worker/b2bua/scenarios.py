"""Call set-ups shared by the B2BUA tests, built on the harness's fake browser and PBX.

Each helper drives a call to a known point and checks only what it needs to get there;
the tests assert the behaviour under study. No clock is read: the harness's ``Gateway``
carries the fake time.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from rtcgw.registrations import Binding
from rtcgw.sip.events import Outgoing
from rtcgw.sip.message import Request, Response
from rtcgw.sip.transport import Peer
from tests.worker.b2bua.harness import (
    BROWSER,
    GW_SIP,
    PBX,
    SDP_ANSWER,
    SDP_OFFER,
    Gateway,
    Sent,
    answer,
    browser_request,
    client_binding,
    pbx_request,
)

#: The B2BUA's SIP-side Contact, the Request-URI of the PBX's in-dialog requests.
GW_SIP_URI = f"sip:rtcgw@{GW_SIP.host}:{GW_SIP.port}"

Extra = Iterable[tuple[str, str]]


@dataclass(frozen=True)
class ClientCall:
    """A call the browser placed: its INVITE, the PBX's copy, and the 2xx it got."""

    invite: Request
    b_invite: Request
    ok: Response

    @property
    def a_tag(self) -> str:
        """Our tag on the browser's leg."""
        assert self.ok.to_tag is not None
        return self.ok.to_tag

    def from_browser(self, method: str, cseq: int, *, body: bytes = b"") -> Request:
        """An in-dialog request from the browser."""
        return browser_request(method, to_tag=self.a_tag, cseq=cseq, body=body)

    def from_pbx(self, method: str, cseq: int, *, body: bytes = b"", extra: Extra = ()) -> Request:
        """An in-dialog request from the PBX on the B-leg (its To tag is ours)."""
        return pbx_request(
            method,
            call_id=self.b_invite.call_id,
            from_tag="pbx-tag",
            to_tag=self.b_invite.from_tag,
            cseq=cseq,
            uri=GW_SIP_URI,
            body=body,
            extra=list(extra),
        )


def browser_binding() -> dict[str, Binding]:
    """The binding table with the fake browser registered as alice."""
    binding = client_binding("alice")
    return {"alice": binding}


def start_client_call(
    gw: Gateway, *, body: bytes = SDP_OFFER, extra: Extra = ()
) -> tuple[Request, Request]:
    """The browser's INVITE and the copy the PBX got."""
    invite = browser_request(body=body, extra=list(extra))
    sent = gw.from_browser(invite)
    assert sent.statuses_to(BROWSER) == [100]
    return invite, sent.one_request(PBX, "INVITE")


def confirmed_client_call(
    gw: Gateway, *, ok_extra: Extra = (), invite_extra: Extra = ()
) -> ClientCall:
    """A browser-to-PBX call through 200 and both ACKs."""
    invite, b_invite = start_client_call(gw, extra=invite_extra)
    sent = gw.from_pbx(answer(b_invite, 200, body=SDP_ANSWER, extra=tuple(ok_extra)))
    [ok] = sent.responses_to(BROWSER)
    assert ok.status == 200
    assert sent.one_request(PBX, "ACK")
    call = ClientCall(invite, b_invite, ok)
    assert gw.from_browser(browser_request("ACK", to_tag=call.a_tag, cseq=1)).outgoing == []
    return call


def outgoing_to(sent: Sent, peer: Peer) -> list[Outgoing]:
    """The raw ``Outgoing`` items of ``sent`` bound for ``peer``'s connection."""
    return [
        o
        for o in sent.outgoing
        if (o.destination.host, o.destination.port, o.destination.connection_id)
        == (peer.host, peer.port, peer.connection_id)
    ]


def transport_failed(gw: Gateway, outgoing: Outgoing) -> Sent:
    """Tell the B2BUA the runtime could not deliver ``outgoing``."""
    out = gw.core.transport_failed(outgoing, gw.now)
    gw.notices.extend(out.notices)
    return Sent(list(out.outgoing))
