"""A scripted browser: a SIP-over-WebSocket user agent as JsSIP behaves, for tests.

It speaks over a real WebSocket (subprotocol ``sip``) with a Via host and Contact under
``.invalid`` as JsSIP does, and uses rtcgw's sans-IO SIP core for messages and dialogs.
Over a reliable transport it needs no retransmissions, so each method sends one request
and reads what comes back; anything unexpected fails the test with the message in hand.
"""

from __future__ import annotations

import secrets
import ssl
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
from rtcgw.sip.transaction_client import make_cancel, make_non2xx_ack
from rtcgw.sip.transport import Transport
from tests.integration.digest import credentials

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
    #: the 401/407 answered before this INVITE (digest retry), in order
    challenges: list[Response] = field(default_factory=list)
    #: the in-dialog requests we sent, in order
    sent: list[Request] = field(default_factory=list)

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
        self.register_finals: list[Response] = []
        self.last_request: Request | None = None
        self.register_call_id = secrets.token_hex(10)
        self.register_from_tag = new_tag()

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
        cseq: int | None = None,
        max_forwards: int = 69,
        extra: tuple[tuple[str, str], ...] = (),
        body: bytes = b"",
        content_type: str = "application/sdp",
    ) -> Request:
        self._cseq = self._cseq + 1 if cseq is None else cseq
        headers = [
            Header("Via", str(self.via())),
            Header("Max-Forwards", str(max_forwards)),
            Header("To", to),
            Header("From", f"<sip:{self.user}@{self.domain}>;tag={from_tag or new_tag()}"),
            Header("Call-ID", call_id or secrets.token_hex(10)),
            Header("CSeq", f"{self._cseq} {method}"),
            Header("Contact", self.contact),
            Header("User-Agent", "rtcgw-test-browser"),
            *(Header(n, v) for n, v in extra),
        ]
        request = Request(method, parse_uri(uri), tuple(headers))
        return request.with_body(body, content_type if body else None)

    async def register(self, *, expires: int = 600, password: str | None = None) -> Response:
        """REGISTER as JsSIP does (Supported: path, gruu, outbound), answering one digest
        challenge when ``password`` is given (same Call-ID and From tag, CSeq + 1).
        Returns the last final response; ``register_finals`` has them all."""
        # JsSIP keeps one Call-ID and From tag for all its REGISTERs (RFC 3261 10.2.4).
        call_id, from_tag = self.register_call_id, self.register_from_tag
        uri = f"sip:{self.domain}"
        extra: tuple[tuple[str, str], ...] = (
            ("Expires", str(expires)),
            ("Supported", "path, gruu, outbound"),
        )
        finals: list[Response] = []
        for _attempt in range(2):
            request = self._request(
                "REGISTER",
                uri,
                to=f"<sip:{self.user}@{self.domain}>",
                call_id=call_id,
                from_tag=from_tag,
                extra=extra,
            )
            await self.send(request)
            final = await self.final_response()
            finals.append(final)
            authorization = self._answer_challenge(final, "REGISTER", uri, password)
            if authorization is None:
                break
            extra = (*extra, authorization)
        self.register_finals = finals
        return finals[-1]

    def _answer_challenge(
        self, response: Response, method: str, uri: str, password: str | None
    ) -> tuple[str, str] | None:
        """The (header, value) answering a 401/407, or None (no challenge or no password)."""
        if password is None or response.status not in (401, 407):
            return None
        name = "WWW-Authenticate" if response.status == 401 else "Proxy-Authenticate"
        answer_name = "Authorization" if response.status == 401 else "Proxy-Authorization"
        challenge = response.get(name)
        assert challenge is not None, f"{response.status} without {name}"
        value = credentials(
            challenge, method=method, uri=uri, username=self.user, password=password
        )
        return answer_name, value

    def new_invite(
        self,
        target: str,
        *,
        sdp: bytes = SDP_OFFER,
        max_forwards: int = 69,
        extra: tuple[tuple[str, str], ...] = (),
        call_id: str | None = None,
        from_tag: str | None = None,
        cseq: int | None = None,
    ) -> Request:
        """An initial INVITE as JsSIP builds it (not sent)."""
        return self._request(
            "INVITE",
            f"sip:{target}@{self.domain}",
            to=f"<sip:{target}@{self.domain}>",
            call_id=call_id,
            from_tag=from_tag,
            cseq=cseq,
            max_forwards=max_forwards,
            extra=(("Supported", "ice, replaces, outbound"), *extra),
            body=sdp,
        )

    async def invite(
        self,
        target: str,
        *,
        sdp: bytes = SDP_OFFER,
        max_forwards: int = 69,
        extra: tuple[tuple[str, str], ...] = (),
        password: str | None = None,
    ) -> tuple[Call, Response]:
        """Send an INVITE and read up to its final response (ACK not yet sent).

        A 401/407 is ACKed and, when ``password`` is given, answered once: the retry has
        the same Call-ID and From tag, CSeq + 1, and the credentials for the R-URI.
        """
        request = self.new_invite(target, sdp=sdp, max_forwards=max_forwards, extra=extra)
        call = Call(request)
        await self.send(request)
        final = await self.final_response(call)
        authorization = self._answer_challenge(final, "INVITE", str(request.uri), password)
        if authorization is not None:
            call.challenges.append(final)
            await self.ack_failure(call, final)
            request = self.new_invite(
                target,
                sdp=sdp,
                max_forwards=max_forwards,
                extra=(*extra, authorization),
                call_id=request.call_id,
                from_tag=request.from_tag,
                cseq=request.cseq.seq + 1,
            )
            call = Call(request, challenges=call.challenges)
            await self.send(request)
            final = await self.final_response(call)
        if final.success:
            call.dialog = Dialog.from_uac(request, final)
        return call, final

    async def ack(self, call: Call, *, sdp: bytes = b"") -> None:
        """ACK the 2xx of the call's INVITE (with the SDP answer of a late offer)."""
        assert call.dialog is not None
        ack = call.dialog.create_ack(
            call.invite.cseq.seq,
            self.via(),
            body=sdp,
            content_type="application/sdp" if sdp else None,
        )
        await self.send(ack)

    async def ack_failure(self, call: Call, response: Response) -> None:
        """ACK a 300-699 to the INVITE, as its client transaction does (RFC 3261 17.1.1.3)."""
        await self.send(make_non2xx_ack(call.invite, response))

    async def bye(self, call: Call) -> Response:
        return await self.request(call, "BYE")

    async def request(
        self,
        call: Call,
        method: str,
        *,
        body: bytes = b"",
        content_type: str | None = None,
        extra: tuple[tuple[str, str], ...] = (),
        max_forwards: int = 69,
    ) -> Response:
        """Send ``method`` inside the call's dialog (Max-Forwards 69, as JsSIP) and read
        its final response."""
        assert call.dialog is not None
        request = call.dialog.create_request(
            method,
            self.via(),
            headers=tuple(Header(n, v) for n, v in extra),
            body=body,
            content_type=content_type or ("application/sdp" if body else None),
        )
        request = request.with_header_replaced("Max-Forwards", str(max_forwards))
        call.sent.append(request)
        await self.send(request)
        return await self.final_response()

    async def reinvite(
        self, call: Call, *, sdp: bytes = SDP_OFFER, answer: bytes = SDP_OFFER
    ) -> Response:
        """A re-INVITE with the offer ``sdp``, or without one (``sdp=b""``: a late-offer
        re-INVITE gets the offer in the 2xx and ``answer`` goes in the ACK); ACKs a 2xx."""
        final = await self.request(call, "INVITE", body=sdp)
        if final.success:
            assert call.dialog is not None
            call.dialog.receive_response(final)
            in_ack = b"" if sdp else answer
            ack = call.dialog.create_ack(
                final.cseq.seq,
                self.via(),
                body=in_ack,
                content_type="application/sdp" if in_ack else None,
            )
            await self.send(ack)
        return final

    async def message(self, target: str, text: str, *, max_forwards: int = 69) -> Response:
        """An out-of-dialog MESSAGE (RFC 3428) with a text/plain body."""
        request = self._request(
            "MESSAGE",
            f"sip:{target}@{self.domain}",
            to=f"<sip:{target}@{self.domain}>",
            max_forwards=max_forwards,
            body=text.encode(),
            content_type="text/plain",
        )
        self.last_request = request
        await self.send(request)
        return await self.final_response()

    async def cancel(self, call: Call) -> None:
        await self.send(make_cancel(call.invite))

    # -- answering -------------------------------------------------------------------------

    async def answer(self, invite: Request, *, sdp: bytes = SDP_OFFER, ring: bool = True) -> Call:
        """Answer an incoming INVITE with 180 then 200 (our Contact, an SDP body: the
        answer, or the offer when the INVITE had none)."""
        tag = new_tag()
        contact = parse_uri(self.contact.strip("<>"))
        if ring:
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

    async def receive_in_dialog(self, call: Call, method: str) -> Request:
        """Read the next request, which must be ``method`` in the call's dialog."""
        request = await self.receive_request(method)
        assert call.dialog is not None
        assert request.call_id == call.call_id, (request.call_id, call.call_id)
        if method != "ACK":
            call.dialog.receive_request(request)
        return request

    async def respond(
        self,
        request: Request,
        status: int,
        *,
        body: bytes = b"",
        content_type: str = "application/sdp",
        to_tag: str | None = None,
        extra: tuple[tuple[str, str], ...] = (),
    ) -> None:
        """Answer ``request``; a 2xx to INVITE/UPDATE carries our Contact."""
        headers = tuple(Header(n, v) for n, v in extra)
        if 200 <= status < 300 and request.method in ("INVITE", "UPDATE"):
            headers = (Header("Contact", self.contact), *headers)
        await self.send(
            make_response(
                request,
                status,
                to_tag=to_tag,
                headers=headers,
                body=body,
                content_type=content_type if body else None,
            )
        )


@asynccontextmanager
async def browser(
    address: tuple[str, int],
    user: str,
    *,
    domain: str = "example.test",
    tls: ssl.SSLContext | None = None,
) -> AsyncIterator[Browser]:
    """A Browser connected to the gateway's WebSocket listener at ``address`` (over TLS,
    wss, when ``tls`` is given)."""
    host, port = address
    use_ssl: ssl.SSLContext | bool = tls if tls is not None else False
    async with open_websocket(host, port, "/", use_ssl=use_ssl, subprotocols=["sip"]) as ws:
        yield Browser(ws, user, domain)
        with trio.move_on_after(2):
            await ws.aclose()
