"""A scripted browser: a SIP-over-WebSocket user agent as JsSIP behaves, for tests.

It speaks over a real WebSocket (subprotocol ``sip``) with a Via host and Contact under
``.invalid`` as JsSIP does, and uses rtcgw's sans-IO SIP core for messages and dialogs.
Over a reliable transport it needs no retransmissions, so each method sends one request
and reads what comes back; anything unexpected fails the test with the message in hand.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import trio
from trio_websocket import WebSocketConnection, open_websocket

from rtcgw.sip import (
    Dialog,
    Header,
    Request,
    Response,
    Via,
    make_response,
    new_branch,
    new_tag,
    parse_message,
    parse_uri,
)
from rtcgw.sip.transport import Transport

#: A small audio offer, as the media milestone's browsers will replace it.
SDP_OFFER = (
    b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"
    b"m=audio 40000 RTP/AVP 0 8 101\r\nc=IN IP4 127.0.0.1\r\n"
    b"a=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n"
)


@dataclass
class Call:
    """One INVITE dialog of the browser, either direction."""

    invite: Request
    dialog: Dialog | None = None
    responses: list[Response] = field(default_factory=list)

    @property
    def call_id(self) -> str:
        return self.invite.call_id


class Browser:
    """A JsSIP-like user agent on one WebSocket connection."""

    def __init__(self, ws: WebSocketConnection, user: str, domain: str) -> None:
        self.ws = ws
        self.user = user
        self.domain = domain
        self.host = secrets.token_hex(6) + ".invalid"
        self.contact = f"<sip:{user}@{self.host};transport=ws>"
        self._cseq = 0
        self.received: list[Request | Response] = []

    # -- wire ------------------------------------------------------------------------------

    def via(self) -> Via:
        return Via.new(Transport.WSS, self.host, None, new_branch())

    async def send(self, message: Request | Response) -> None:
        await self.ws.send_message(bytes(message).decode())

    async def receive(self) -> Request | Response:
        raw = await self.ws.get_message()
        message = parse_message(raw.encode() if isinstance(raw, str) else raw)
        self.received.append(message)
        return message

    async def receive_request(self, method: str) -> Request:
        message = await self.receive()
        assert isinstance(message, Request), f"expected {method}, got {message!r}"
        assert message.method == method, f"expected {method}, got {message.method}"
        return message

    async def final_response(self, call: Call | None = None) -> Response:
        """Read responses until a final one; provisional ones are kept on ``call``."""
        while True:
            message = await self.receive()
            assert isinstance(message, Response), f"expected a response, got {message!r}"
            if call is not None:
                call.responses.append(message)
            if message.final:
                return message

    # -- requests --------------------------------------------------------------------------

    def _request(
        self,
        method: str,
        uri: str,
        *,
        to: str,
        call_id: str | None = None,
        from_tag: str | None = None,
        extra: tuple[tuple[str, str], ...] = (),
        body: bytes = b"",
    ) -> Request:
        self._cseq += 1
        headers = [
            Header("Via", str(self.via())),
            Header("Max-Forwards", "69"),
            Header("To", to),
            Header("From", f"<sip:{self.user}@{self.domain}>;tag={from_tag or new_tag()}"),
            Header("Call-ID", call_id or secrets.token_hex(10)),
            Header("CSeq", f"{self._cseq} {method}"),
            Header("Contact", self.contact),
            Header("User-Agent", "rtcgw-test-browser"),
            *(Header(n, v) for n, v in extra),
        ]
        request = Request(method, parse_uri(uri), tuple(headers))
        return request.with_body(body, "application/sdp" if body else None)

    async def register(self, *, expires: int = 600) -> Response:
        """REGISTER as JsSIP does (Supported: path, gruu, outbound; reg-id, instance)."""
        request = self._request(
            "REGISTER",
            f"sip:{self.domain}",
            to=f"<sip:{self.user}@{self.domain}>",
            extra=(("Expires", str(expires)), ("Supported", "path, gruu, outbound")),
        )
        await self.send(request)
        return await self.final_response()

    async def invite(self, target: str, *, sdp: bytes = SDP_OFFER) -> tuple[Call, Response]:
        """Send an INVITE and read up to its final response (ACK not yet sent)."""
        request = self._request(
            "INVITE",
            f"sip:{target}@{self.domain}",
            to=f"<sip:{target}@{self.domain}>",
            extra=(("Supported", "ice, replaces, outbound"),),
            body=sdp,
        )
        call = Call(request)
        await self.send(request)
        final = await self.final_response(call)
        if final.success:
            call.dialog = Dialog.from_uac(request, final)
        return call, final

    async def ack(self, call: Call) -> None:
        assert call.dialog is not None
        await self.send(call.dialog.create_ack(call.invite.cseq.seq, self.via()))

    async def bye(self, call: Call) -> Response:
        assert call.dialog is not None
        await self.send(call.dialog.create_request("BYE", self.via()))
        return await self.final_response()

    async def cancel(self, call: Call) -> None:
        invite = call.invite
        cancel = Request(
            "CANCEL",
            invite.uri,
            (
                Header("Via", str(invite.top_via)),
                Header("Max-Forwards", "70"),
                Header("To", invite.get("To") or ""),
                Header("From", invite.get("From") or ""),
                Header("Call-ID", invite.call_id),
                Header("CSeq", f"{invite.cseq.seq} CANCEL"),
                Header("Content-Length", "0"),
            ),
        )
        await self.send(cancel)

    # -- answering -------------------------------------------------------------------------

    async def answer(self, invite: Request, *, sdp: bytes = SDP_OFFER) -> Call:
        """Answer an incoming INVITE with 180 then 200 (our Contact, an SDP answer)."""
        tag = new_tag()
        contact = parse_uri(self.contact.strip("<>"))
        await self.send(make_response(invite, 180, to_tag=tag))
        ok = make_response(
            invite,
            200,
            to_tag=tag,
            headers=(Header("Contact", self.contact),),
            body=sdp,
            content_type="application/sdp",
        )
        call = Call(invite, Dialog.from_uas(invite, tag, contact))
        call.dialog.response_sent(ok)  # type: ignore[union-attr]
        await self.send(ok)
        return call

    async def respond(self, request: Request, status: int) -> None:
        await self.send(make_response(request, status))


@asynccontextmanager
async def browser(
    address: tuple[str, int], user: str, *, domain: str = "example.test"
) -> AsyncIterator[Browser]:
    """A Browser connected to the gateway's WebSocket listener at ``address``."""
    host, port = address
    async with open_websocket(host, port, "/", use_ssl=False, subprotocols=["sip"]) as ws:
        yield Browser(ws, user, domain)
        with trio.move_on_after(2):
            await ws.aclose()
