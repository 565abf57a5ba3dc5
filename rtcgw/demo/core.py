"""The demo SIP service's logic: registrar, stateless record-routing proxy between
registered users, and the echo and tone extensions as a minimal UAS; sans-IO.

Messages and their source go in; messages to send, media to start or stop and log events
come out. The proxy is stateless (RFC 3261 section 16.11): a request's branch toward the
next hop is derived from its incoming branch, so an INVITE, its CANCEL and the ACK of a
non-2xx answer reach the same transaction downstream; responses travel back on their Vias.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from rtcgw.demo.media import Offer, answer_sdp, parse_offer
from rtcgw.demo.registrar import Registrar
from rtcgw.sip import (
    Header,
    NameAddr,
    Request,
    Response,
    SipUri,
    Via,
    make_response,
    new_tag,
)

__all__ = [
    "ECHO_EXTENSION",
    "TONE_EXTENSION",
    "Action",
    "DemoCore",
    "LogEvent",
    "Retransmit",
    "Send",
    "StartMedia",
    "StopMedia",
]

ECHO_EXTENSION = "600"
TONE_EXTENSION = "601"
#: codecs the tone can be sent in, in our order of preference
TONE_CODECS = ("PCMU", "PCMA")
_NOT_MEDIA = {"telephone-event", "cn", "red", "ulpfec", "rtx"}

Address = tuple[str, int]


@dataclass(frozen=True, slots=True)
class Send:
    """Send ``message`` to ``destination`` over UDP."""

    message: Request | Response
    destination: Address


@dataclass(frozen=True, slots=True)
class Retransmit:
    """Resend a 2xx to an INVITE until its ACK arrives (``DemoCore.awaiting_ack``)."""

    call_id: str
    cseq: int
    message: Response
    destination: Address


@dataclass(frozen=True, slots=True)
class StartMedia:
    """Start (or re-aim) an extension's media for a call."""

    call_id: str
    extension: str
    remote: Address
    payload_type: int
    codec: str
    event_payload_type: int | None
    sending: bool


@dataclass(frozen=True, slots=True)
class StopMedia:
    """Stop a call's media and close its socket."""

    call_id: str


@dataclass(frozen=True, slots=True)
class LogEvent:
    """Something worth a log line; ``fields`` include call_id when there is a call."""

    event: str
    fields: dict[str, object] = field(default_factory=dict)


Action = Send | Retransmit | StartMedia | StopMedia | LogEvent


@dataclass
class _LocalCall:
    extension: str
    to_tag: str
    media_port: int
    offer: Offer
    payload_type: int
    session_version: int = 1
    acked_cseq: int = 0
    invite_cseq: int = 0


def _destination(uri: SipUri) -> Address:
    return uri.maddr or uri.host.strip("[]"), uri.port or 5060


def _response_destination(via: Via) -> Address:
    """Where a response goes back to (RFC 3261 18.2.2 with RFC 3581 rport)."""
    host = via.param("received") or via.host.strip("[]")
    rport = via.param("rport")
    port = int(rport) if rport else (via.port or 5060)
    return host, port


class DemoCore:
    """The demo service at ``host:port``: feed it every datagram's message."""

    def __init__(self, host: str, port: int, registrar: Registrar) -> None:
        self.host = host
        self.port = port
        self.registrar = registrar
        self._calls: dict[str, _LocalCall] = {}

    # -- helpers ---------------------------------------------------------------------------

    def _is_me(self, uri: object) -> bool:
        return (
            isinstance(uri, SipUri)
            and uri.host.strip("[]") == self.host
            and (uri.port or 5060) == self.port
        )

    @property
    def record_route(self) -> str:
        """Our Record-Route value: loose routing back through this service."""
        return f"<sip:{self.host}:{self.port};lr>"

    def awaiting_ack(self, call_id: str, cseq: int) -> bool:
        """Whether the 2xx to INVITE ``cseq`` of a local call still waits for its ACK."""
        call = self._calls.get(call_id)
        return call is not None and call.invite_cseq == cseq and call.acked_cseq < cseq

    def calls(self) -> list[str]:
        """The Call-IDs of the extensions' current calls."""
        return list(self._calls)

    def needs_media_port(self, request: Request) -> bool:
        """True for a new call to an extension: give ``handle`` a bound RTP port for it."""
        return (
            request.method == "INVITE"
            and request.to_tag is None
            and request.call_id not in self._calls
            and self._extension(request) is not None
            and not self._has_foreign_route(request)
        )

    def _extension(self, request: Request) -> str | None:
        user = request.uri.user if isinstance(request.uri, SipUri) else None
        return user if user in (ECHO_EXTENSION, TONE_EXTENSION) else None

    def _has_foreign_route(self, request: Request) -> bool:
        routes = request.routes
        if routes and self._is_me(routes[0].uri):
            routes = routes[1:]
        return bool(routes)

    # -- entry point -----------------------------------------------------------------------

    def handle(
        self,
        message: Request | Response,
        source: Address,
        now: float,
        *,
        media_port: int | None = None,
    ) -> list[Action]:
        """What to do with one message received from ``source``."""
        if isinstance(message, Response):
            return self._response(message)
        return self._request(message, source, now, media_port)

    def _response(self, response: Response) -> list[Action]:
        vias = response.vias
        if len(vias) < 2 or not self._is_me_via(vias[0]):
            return [LogEvent("demo.response_dropped", {"call_id": response.call_id})]
        rest = response.without_header("Via")
        for via in reversed(vias[1:]):
            rest = rest.with_header_first("Via", str(via))
        return [Send(rest, _response_destination(vias[1]))]

    def _is_me_via(self, via: Via) -> bool:
        return via.host.strip("[]") == self.host and (via.port or 5060) == self.port

    def _request(
        self, request: Request, source: Address, now: float, media_port: int | None
    ) -> list[Action]:
        top = request.top_via
        request = request.without_header("Via")
        marked = top.with_param("received", source[0])
        if top.has_param("rport"):
            marked = marked.with_param("rport", str(source[1]))
        vias = [marked, *request.vias]
        for via in reversed(vias):
            request = request.with_header_first("Via", str(via))
        forwards = request.max_forwards
        if forwards is not None and forwards <= 0 and request.method != "ACK":
            return self._reply(request, 483)
        routes = request.routes
        popped = bool(routes) and self._is_me(routes[0].uri)
        if popped:
            routes = routes[1:]
            request = request.without_header("Route")
            for route in routes:
                request = request.with_header("Route", str(route))
        if routes:
            target = routes[0].uri
            if not isinstance(target, SipUri):
                return self._reply(request, 416)
            return self._forward(request, _destination(target))
        if request.call_id in self._calls:
            return self._in_dialog(request, self._calls[request.call_id], now)
        if popped and not self._is_me(request.uri):
            if not isinstance(request.uri, SipUri):
                return self._reply(request, 416)
            return self._forward(request, _destination(request.uri))
        if request.method == "REGISTER":
            return [*self._register(request, now)]
        extension = self._extension(request)
        if extension is not None:
            if request.to_tag is not None:
                return [] if request.method == "ACK" else self._reply(request, 481)
            if request.method == "INVITE":
                return self._answer(request, extension, media_port)
            if request.method == "CANCEL":
                return self._reply(request, 481)
            if request.method == "ACK":
                return []
            return self._reply(request, 200 if request.method == "OPTIONS" else 405)
        return self._to_user(request, now)

    def _register(self, request: Request, now: float) -> list[Action]:
        response = self.registrar.handle(request, now)
        user = request.to.uri.user if isinstance(request.to.uri, SipUri) else None
        actions: list[Action] = [Send(response, _response_destination(response.vias[0]))]
        if response.status == 200:
            contacts = [str(b.contact.uri) for b in self.registrar.bindings(user or "", now)]
            actions.append(
                LogEvent(
                    "demo.registered",
                    {"call_id": request.call_id, "user": user, "contacts": contacts},
                )
            )
        return actions

    def _to_user(self, request: Request, now: float) -> list[Action]:
        user = request.uri.user if isinstance(request.uri, SipUri) else None
        if user is None:
            if request.method == "OPTIONS":
                return self._reply(request, 200)
            return [] if request.method == "ACK" else self._reply(request, 404)
        bindings = [b for b in self.registrar.bindings(user, now) if b.uri is not None]
        if not bindings:
            if request.method == "ACK":
                return []
            return [
                *self._reply(request, 480),
                LogEvent("demo.user_offline", {"call_id": request.call_id, "user": user}),
            ]
        contact = bindings[-1].uri
        assert contact is not None
        forwarded = request.__class__(
            request.method, contact, request.headers, request.body, request.version
        )
        if request.method == "INVITE" and request.to_tag is None:
            forwarded = forwarded.with_header_first("Record-Route", self.record_route)
        actions = self._forward(forwarded, _destination(contact))
        if request.method == "INVITE" and request.to_tag is None:
            actions.append(
                LogEvent(
                    "demo.call_proxied",
                    {"call_id": request.call_id, "user": user, "contact": str(contact)},
                )
            )
        return actions

    def _forward(self, request: Request, destination: Address) -> list[Action]:
        top = request.top_via
        seed = f"{top.param('branch')}|{top.host}|{top.port}|{destination}".encode()
        branch = "z9hG4bK" + hashlib.sha256(seed).hexdigest()[:20]
        ours = Via.new("UDP", self.host, self.port, branch).with_param("rport")
        forwards = request.max_forwards
        out = request.with_header_replaced(
            "Max-Forwards", str(70 if forwards is None else forwards - 1)
        ).with_header_first("Via", str(ours))
        return [Send(out, destination)]

    def _reply(
        self,
        request: Request,
        status: int,
        *,
        to_tag: str | None = None,
        headers: tuple[Header, ...] = (),
        body: bytes = b"",
    ) -> list[Action]:
        if request.method == "ACK":
            return []
        response = make_response(
            request,
            status,
            to_tag=to_tag if to_tag is not None else (None if status < 200 else new_tag()),
            headers=headers,
            body=body,
            content_type="application/sdp" if body else None,
        )
        return [Send(response, _response_destination(request.top_via))]

    # -- the extensions (a minimal UAS) ----------------------------------------------------

    def _contact(self, extension: str) -> str:
        return str(NameAddr(None, SipUri(user=extension, host=self.host, port=self.port)))

    def _choose(self, extension: str, offer: Offer) -> int | None:
        if extension == TONE_EXTENSION:
            for name in TONE_CODECS:
                pt = offer.find(name)
                if pt is not None:
                    return pt
            return None
        for pt in offer.payload_types:
            if offer.rtpmaps.get(pt, ("", 0, ""))[0].lower() not in _NOT_MEDIA:
                return pt
        return None

    def _answer(self, request: Request, extension: str, media_port: int | None) -> list[Action]:
        offer = parse_offer(request.body) if request.body else None
        if offer is None:
            return self._reply(
                request, 488, headers=(Header("Warning", '399 demo "send an offer"'),)
            )
        if media_port is None:
            return self._reply(request, 503)
        payload_type = self._choose(extension, offer)
        if payload_type is None:
            return self._reply(
                request,
                488,
                headers=(
                    Header("Warning", f'305 demo "{extension} needs {"/".join(TONE_CODECS)}"'),
                ),
            )
        call = _LocalCall(
            extension,
            new_tag(),
            media_port,
            offer,
            payload_type,
            invite_cseq=request.cseq.seq,
        )
        self._calls[request.call_id] = call
        actions = self._ok_with_answer(request, call)
        actions.append(
            LogEvent(
                "demo.extension_answered",
                {
                    "call_id": request.call_id,
                    "extension": extension,
                    "codec": offer.rtpmaps.get(payload_type, ("?", 0, ""))[0],
                },
            )
        )
        return actions

    def _ok_with_answer(self, request: Request, call: _LocalCall) -> list[Action]:
        body = answer_sdp(
            call.offer,
            address=self.host,
            port=call.media_port,
            codec=call.payload_type,
            session_version=call.session_version,
        )
        response = make_response(
            request,
            200,
            to_tag=call.to_tag,
            headers=(
                Header("Contact", self._contact(call.extension)),
                Header("Allow", "INVITE, ACK, BYE, CANCEL, OPTIONS, INFO, UPDATE"),
            ),
            body=body,
            content_type="application/sdp",
        )
        destination = _response_destination(request.top_via)
        offer = call.offer
        actions: list[Action] = [
            Send(response, destination),
            StartMedia(
                request.call_id,
                call.extension,
                (offer.address, offer.port),
                call.payload_type,
                offer.rtpmaps.get(call.payload_type, ("?", 0, ""))[0],
                offer.find("telephone-event"),
                offer.direction in ("sendrecv", "recvonly"),
            ),
        ]
        if request.method == "INVITE":
            actions.append(Retransmit(request.call_id, request.cseq.seq, response, destination))
        return actions

    def _in_dialog(self, request: Request, call: _LocalCall, now: float) -> list[Action]:
        call_id = request.call_id
        if request.method == "ACK":
            call.acked_cseq = max(call.acked_cseq, request.cseq.seq)
            return []
        if request.method == "BYE":
            del self._calls[call_id]
            return [
                *self._reply(request, 200, to_tag=call.to_tag),
                StopMedia(call_id),
                LogEvent("demo.call_ended", {"call_id": call_id, "extension": call.extension}),
            ]
        if request.method == "CANCEL":
            # Answered at once: the INVITE is already complete, the CANCEL changes nothing.
            return self._reply(request, 200, to_tag=call.to_tag)
        if request.method in ("INVITE", "UPDATE"):
            if request.body:
                offer = parse_offer(request.body)
                if offer is None or offer.rtpmaps.get(call.payload_type) is None:
                    return self._reply(request, 488, to_tag=call.to_tag)
                call.offer = offer
            if request.method == "INVITE":
                call.invite_cseq = request.cseq.seq
            call.session_version += 1
            return self._ok_with_answer(request, call)
        if request.method == "INFO":
            actions = self._reply(request, 200, to_tag=call.to_tag)
            digit = _info_digit(request)
            if digit is not None:
                actions.append(
                    LogEvent(
                        "demo.dtmf",
                        {
                            "call_id": call_id,
                            "digit": digit,
                            "extension": call.extension,
                            "via": "INFO",
                        },
                    )
                )
            return actions
        return self._reply(
            request, 200 if request.method in ("OPTIONS", "NOTIFY") else 405, to_tag=call.to_tag
        )


def _info_digit(request: Request) -> str | None:
    kind = (request.content_type or "").lower()
    text = request.body.decode("utf-8", errors="replace")
    if kind.startswith("application/dtmf-relay"):
        for line in text.splitlines():
            name, _, value = line.partition("=")
            if name.strip().lower() == "signal" and value.strip():
                return value.strip()
    elif kind.startswith("application/dtmf") and text.strip():
        return text.strip()
    return None
