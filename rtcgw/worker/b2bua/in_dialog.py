"""Requests inside a call's dialogs: BYE, relayed requests, session refreshes, timers.

Theory of operation:

1. BYE on either leg is answered 200 at once and a BYE goes out on the other leg
   (RFC 3261 15.1); the call ends.
2. re-INVITE, UPDATE with a body, INFO, MESSAGE, NOTIFY, REFER and methods we do not know
   are relayed: the other leg's dialog builds its own request (its own CSeq, Via, Contact,
   Route), the body passes the SDP seam, and the final response comes back to the
   original leg. A re-INVITE while one of ours is pending on that leg gets 491, one while
   the peer's previous re-INVITE is unanswered gets 500 (RFC 3261 14.1, 14.2); a 491 from
   the other side is relayed as is, so each peer's own glare back-off applies. A CANCEL
   of a relayed re-INVITE gets 487 at once and a CANCEL on the other leg; that leg's
   final answer is then ACKed there and goes no further. A re-INVITE without SDP on
   anchored media is answered here: our 200 carries an offer written from that leg's
   state and the ACK its answer (RFC 3261 14.1), so the other leg is not disturbed; a
   missing or unusable answer ends the call.
3. UPDATE without a body and OPTIONS inside a dialog are answered here: they are session
   refreshes or pings (RFC 4028; JsSIP refreshes every 45 s with UPDATE), which the other
   leg has no use for. PRACK is answered 481: we never send reliable provisionals.
4. DTMF: an INFO from a client with a DTMF body (``application/dtmf-relay``, as JsSIP
   and SIP.js send, or ``application/dtmf``) on a confirmed call is handed to the SDP
   seam, which sends the digit as RFC 4733 on the other leg's media when that leg
   negotiated telephone-event; the INFO is then answered 200 here and goes no further.
   Otherwise it is relayed as any INFO. A DTMF body that is not a digit gets 400 naming
   the problem. Digits the SIP side sent as RFC 4733 come back from the media relay
   (``send_dtmf_info``) as INFOs of our own toward the client, whose answers are absorbed.
5. Session timers run per leg (``session_timer``): when we are the refresher we send
   UPDATE (or a re-INVITE repeating our last SDP when the peer does not allow UPDATE); when
   the peer is, a missing refresh ends the call.
"""

from __future__ import annotations

from rtcgw.media.dtmf import (
    DTMF_CONTENT_TYPES,
    DTMF_RELAY,
    DtmfDigit,
    format_dtmf_relay,
    parse_dtmf_info,
)
from rtcgw.media.errors import RemoteMediaError
from rtcgw.sdp.errors import SdpError, SdpNegotiationError
from rtcgw.sip.dialog import DialogState
from rtcgw.sip.errors import RemoteProtocolError
from rtcgw.sip.events import ServerTransactionKey
from rtcgw.sip.message import Header, Request, Response, make_response
from rtcgw.sip.transaction import TransactionState
from rtcgw.sip.transaction_client import make_cancel
from rtcgw.worker.b2bua.call import Call, CallState
from rtcgw.worker.b2bua.events import EndReason
from rtcgw.worker.b2bua.invite import (
    SDP,
    body_out,
    hang_up,
    media_warning,
    on_ack,
    outgoing_max_forwards,
)
from rtcgw.worker.b2bua.leg import Leg, Retransmission
from rtcgw.worker.b2bua.relay import copied_headers, option_tags
from rtcgw.worker.b2bua.seam import LegSide
from rtcgw.worker.b2bua.session_timer import Refresher, parse_session_expires
from rtcgw.worker.b2bua.state import ALLOW, ClientContext, Engine, Purpose, ServerContext

__all__ = [
    "on_call_timers",
    "on_in_dialog_ack",
    "on_in_dialog_request",
    "on_refresh_response",
    "on_relay_cancel",
    "on_relay_response",
    "send_dtmf_info",
]

_HANGUP = {True: EndReason.HANGUP_CLIENT, False: EndReason.HANGUP_SIP}


def _ours(engine: Engine, leg: Leg, request: Request, status: int) -> Response:
    headers = [Header("Server", engine.settings.user_agent)]
    if status == 200 and request.method in ("UPDATE", "INVITE"):
        headers.append(Header("Contact", f"<{leg.contact}>"))
        if leg.session is not None:
            headers.append(Header("Session-Expires", leg.session.header_value()))
            if leg.session.refresher_param == "uac" and leg.role.value == "UAS":
                headers.append(Header("Require", "timer"))
    if status == 200 and request.method == "OPTIONS":
        headers.append(Header("Allow", ALLOW))
    return make_response(request, status, headers=tuple(headers))


def on_in_dialog_request(
    engine: Engine, call: Call, leg: Leg, key: ServerTransactionKey, request: Request
) -> None:
    """A request with our tag in To, on ``leg`` of ``call``."""
    dialog = leg.dialog
    if dialog is None or dialog.state is DialogState.TERMINATED:
        engine.reject(key, request, 481)
        return
    try:
        dialog.receive_request(request)
    except RemoteProtocolError as exc:
        engine.reject(key, request, exc.status_hint)
        return
    method = request.method
    if method == "INVITE":
        engine.absorb(engine.layer.respond(key, make_response(request, 100), engine.now))
    if method == "BYE":
        engine.respond(key, _ours(engine, leg, request, 200))
        hang_up(engine, call, _HANGUP[leg.side.value == "client"], gone=leg)
        return
    if method == "PRACK":
        engine.reject(key, request, 481, reason="No Reliable Provisional Pending")
        return
    if method == "OPTIONS" or (method == "UPDATE" and not request.body):
        if leg.session is not None and method == "UPDATE":
            parsed = parse_session_expires(request)
            leg.session = leg.session.refreshed(engine.now, parsed[0] if parsed else None)
            engine.schedule(call)
        engine.respond(key, _ours(engine, leg, request, 200))
        return
    if method == "INVITE":
        if leg.reinvite_out is not None:
            engine.reject(key, request, 491)  # RFC 3261 14.2 glare
            return
        if leg.reinvite_in is not None:
            engine.reject(key, request, 500, headers=(Header("Retry-After", "1"),))
            return
    client_info = method == "INFO" and leg.side is LegSide.CLIENT
    if client_info and _dtmf_sent(engine, call, leg, key, request):
        return
    if method == "INVITE" and not request.body and _offered_here(engine, call, leg, key, request):
        return
    _relay(engine, call, leg, key, request)


def _offered_here(
    engine: Engine, call: Call, leg: Leg, key: ServerTransactionKey, request: Request
) -> bool:
    """A late-offer re-INVITE (RFC 3261 14.1) on anchored media, answered with our offer
    written from ``leg``'s state; its answer comes in the ACK. False: relay it."""
    if call.state is not CallState.CONFIRMED:
        return False
    try:
        offer = engine.sdp.local_offer(call, leg)
    except SdpError as exc:
        engine.reject(key, request, 488, headers=(media_warning(engine, call.call_id, exc),))
        return True
    if offer is None:
        return False
    leg.sdp_out = offer
    leg.local_offer_pending = True
    if leg.session is not None:
        leg.session = leg.session.refreshed(engine.now)
    ok = _ours(engine, leg, request, 200).with_body(offer, SDP)
    if not leg.peer.transport.reliable:
        leg.retransmission = Retransmission(
            key, ok, engine.now + engine.t1, engine.t1, engine.now + 64 * engine.t1
        )
    engine.respond(key, ok)
    engine.schedule(call)
    return True


def _dtmf_sent(
    engine: Engine, call: Call, leg: Leg, key: ServerTransactionKey, request: Request
) -> bool:
    """A client's DTMF INFO sent as RFC 4733 (answered 200) or refused (400); False when
    it is no DTMF INFO or the other leg's media takes no telephone-event: relay it."""
    content_type = request.content_type
    if content_type is None or content_type.lower() not in DTMF_CONTENT_TYPES:
        return False
    try:
        digit = parse_dtmf_info(content_type, request.body.decode("utf-8", "replace"))
    except RemoteMediaError as exc:
        engine.reject(key, request, 400, reason=_reason_phrase(str(exc)))
        return True
    if call.state is not CallState.CONFIRMED or not engine.sdp.dtmf_out(
        call, call.other(leg), digit
    ):
        return False
    engine.respond(key, _ours(engine, leg, request, 200))
    return True


def _reason_phrase(text: str) -> str:
    """``text`` as a reason phrase: one line of printable characters (RFC 3261 25.1)."""
    cleaned = "".join(c if c.isprintable() else " " for c in text)
    return cleaned[:120] or "Bad DTMF body"


def send_dtmf_info(engine: Engine, call: Call, digit: DtmfDigit) -> bool:
    """Send ``digit`` to the call's client leg as an INFO of ours (``application/dtmf-relay``);
    False when the call has no confirmed client leg."""
    leg = call.a if call.a.side is LegSide.CLIENT else call.b
    dialog = leg.dialog
    if leg.side is not LegSide.CLIENT or dialog is None:
        return False
    if call.state is not CallState.CONFIRMED or dialog.state is not DialogState.CONFIRMED:
        return False
    info = dialog.create_request(
        "INFO",
        leg.new_via(engine.shard),
        headers=(Header("User-Agent", engine.settings.user_agent),),
        body=format_dtmf_relay(digit).encode(),
        content_type=DTMF_RELAY,
    )
    engine.start_client(info, leg.peer, ClientContext(Purpose.INFO, info, call, leg))
    return True


def _relay(
    engine: Engine, call: Call, leg: Leg, key: ServerTransactionKey, request: Request
) -> None:
    other = call.other(leg)
    target = other.dialog
    if call.state is not CallState.CONFIRMED or target is None:
        engine.reject(key, request, 491 if request.method == "INVITE" else 500)
        return
    max_forwards = outgoing_max_forwards(engine, request)
    if max_forwards is None:
        engine.reject(key, request, 483)
        return
    method = request.method
    if method == "INVITE" and other.reinvite_out is not None:
        engine.reject(key, request, 491)
        return
    headers = list(copied_headers(request))
    supported = option_tags(request, "Supported")
    if method in ("INVITE", "UPDATE") and other.session is not None:
        supported.append("timer")
        headers.append(Header("Session-Expires", other.session.header_value()))
    if supported:
        headers.append(Header("Supported", ", ".join(supported)))
    require = option_tags(request, "Require")
    if require:
        headers.append(Header("Require", ", ".join(require)))
    headers.append(Header("User-Agent", engine.settings.user_agent))
    if method in ("INVITE", "UPDATE") and request.body and request.content_type == SDP:
        try:
            local = engine.sdp.local_answer(call, leg, request.body)
        except SdpError as exc:
            warning = media_warning(engine, call.call_id, exc)
            engine.reject(key, request, 488, headers=(warning,))
            return
        if local is not None:
            # Only this leg's transport changed (an ICE restart): answered here, the
            # other leg never sees it (browsers.md item 9).
            leg.sdp_out = local
            engine.respond(key, _ours(engine, leg, request, 200).with_body(local, SDP))
            return
    try:
        body, content_type = body_out(engine, call, other, request, offer=True)
    except SdpError as exc:
        warning = media_warning(engine, call.call_id, exc)
        engine.reject(key, request, 488, headers=(warning,))
        return
    outgoing = target.create_request(
        method,
        other.new_via(engine.shard),
        headers=tuple(headers),
        body=body,
        content_type=content_type,
    ).with_header_replaced("Max-Forwards", str(max_forwards))
    context = ClientContext(
        Purpose.RELAY,
        outgoing,
        call,
        other,
        inbound_key=key,
        inbound_request=request,
        inbound_leg=leg,
    )
    out_key = engine.start_client(outgoing, other.peer, context)
    engine.servers[key] = ServerContext(Purpose.RELAY, request, call, leg, out_key)
    if method == "INVITE":
        leg.reinvite_in = key
        other.reinvite_out = out_key


def on_relay_response(engine: Engine, context: ClientContext, response: Response) -> None:
    """A response to a request we relayed: answer the original with it."""
    call, other, leg = context.call, context.leg, context.inbound_leg
    request, key = context.inbound_request, context.inbound_key
    assert call is not None and other is not None and leg is not None
    assert request is not None and key is not None
    status = response.status
    if status == 100:
        return
    if status < 200:
        context.provisional_seen = True
    if other.dialog is not None and other.dialog.state is not DialogState.TERMINATED:
        other.dialog.receive_response(response)
    method = request.method
    success = 200 <= status < 300
    cancelled = context.cancelled  # our 487 answered it (RFC 3261 9.2): nothing to relay
    if method == "INVITE" and success and other.dialog is not None:
        if context.request.body or not response.body or cancelled:
            ack = other.dialog.create_ack(response.cseq.seq, other.new_via(engine.shard))
            engine.send_direct(ack, other.peer)
        else:
            leg.ack_relay_seq = response.cseq.seq  # late-offer re-INVITE: wait for answer
    if cancelled:
        if response.final and method == "INVITE":
            other.reinvite_out = None
        return
    if method in ("INVITE", "UPDATE") and success:
        other.note_allow(response)
        for refreshed in (leg, other):
            if refreshed.session is not None:
                refreshed.session = refreshed.session.refreshed(engine.now)
        engine.schedule(call)
    headers = list(copied_headers(response))
    if 100 < status < 300 and method in ("INVITE", "UPDATE"):
        headers.append(Header("Contact", f"<{leg.contact}>"))
        if success and leg.session is not None:
            headers.append(Header("Session-Expires", leg.session.header_value()))
    headers.append(Header("Server", engine.settings.user_agent))
    offer = method == "INVITE" and not request.body
    try:
        body, content_type = body_out(engine, call, leg, response, offer=offer)
    except SdpError as exc:
        # The peer's answer cannot be converted: keep the media as it was negotiated.
        media_warning(engine, call.call_id, exc)
        body, content_type = leg.sdp_out, SDP
    relayed = make_response(request, status, response.reason, headers=tuple(headers))
    relayed = relayed.with_body(body, content_type)
    if response.final:
        if method == "INVITE":
            leg.reinvite_in = None
            other.reinvite_out = None
        if method == "INVITE" and success and not leg.peer.transport.reliable:
            leg.retransmission = Retransmission(
                key, relayed, engine.now + engine.t1, engine.t1, engine.now + 64 * engine.t1
            )
            engine.schedule(call)
    engine.respond(key, relayed)
    if status in (408, 481) and call.state is CallState.CONFIRMED:
        hang_up(engine, call, EndReason.TIMEOUT if status == 408 else EndReason.HANGUP_SIP)


def on_relay_cancel(engine: Engine, key: ServerTransactionKey, context: ServerContext) -> None:
    """The peer cancelled a re-INVITE we relayed: 487 it, CANCEL ours when we may."""
    engine.respond(key, make_response(context.request, 487))
    if context.leg is not None:
        context.leg.reinvite_in = None
    out_key = context.outbound_key
    out_context = engine.clients.get(out_key) if out_key is not None else None
    if out_key is None or out_context is None:
        return
    out_context.cancelled = True
    if engine.layer.state(out_key) is TransactionState.PROCEEDING:
        cancel = make_cancel(out_context.request)
        assert out_context.leg is not None
        engine.start_client(
            cancel,
            out_context.leg.peer,
            ClientContext(Purpose.CANCEL, cancel, out_context.call, out_context.leg),
        )


def on_in_dialog_ack(engine: Engine, call: Call, leg: Leg, ack: Request) -> None:
    """An ACK on ``leg``: for the initial 2xx, or for a relayed re-INVITE's 2xx."""
    if call.state is CallState.ANSWERED:
        on_ack(engine, call, leg, ack)
        return
    leg.retransmission = None
    if leg.local_offer_pending:
        leg.local_offer_pending = False
        try:
            if not ack.body:
                raise SdpNegotiationError(f"the ACK of call {call.call_id} carries no answer")
            engine.sdp.answer_in(call, leg, ack.body)
        except SdpError as exc:
            media_warning(engine, call.call_id, exc)
            hang_up(engine, call, EndReason.MEDIA_REFUSED)
            return
    other = call.other(leg)
    if leg.ack_relay_seq is not None and other.dialog is not None:
        seq, leg.ack_relay_seq = leg.ack_relay_seq, None
        try:
            body, content_type = body_out(engine, call, other, ack, offer=False)
        except SdpError as exc:
            media_warning(engine, call.call_id, exc)
            body, content_type = b"", None
        relayed = other.dialog.create_ack(
            seq, other.new_via(engine.shard), body=body, content_type=content_type
        )
        engine.send_direct(relayed, other.peer)
    engine.schedule(call)


def on_refresh_response(engine: Engine, context: ClientContext, response: Response) -> None:
    """A response to our own session refresh (RFC 4028 section 10)."""
    call, leg = context.call, context.leg
    assert call is not None and leg is not None
    status = response.status
    if status < 200 or call.ended:
        return
    if leg.dialog is not None and leg.dialog.state is not DialogState.TERMINATED:
        leg.dialog.receive_response(response)
    if 200 <= status < 300:
        if context.request.method == "INVITE" and leg.dialog is not None:
            ack = leg.dialog.create_ack(response.cseq.seq, leg.new_via(engine.shard))
            engine.send_direct(ack, leg.peer)
            leg.reinvite_out = None
        parsed = parse_session_expires(response)
        if leg.session is not None:
            leg.session = leg.session.refreshed(engine.now, parsed[0] if parsed else None)
    elif status in (405, 501) and context.request.method == "UPDATE" and leg.session:
        leg.peer_allows_update = False  # fall back on re-INVITE one second later
        leg.session = leg.session.refreshed(engine.now + 1 - leg.session.interval_s / 2)
    else:
        leg.reinvite_out = None
        hang_up(engine, call, EndReason.REFRESH_FAILED)
        return
    engine.schedule(call)


def _send_refresh(engine: Engine, call: Call, leg: Leg) -> None:
    dialog = leg.dialog
    session = leg.session
    if dialog is None or session is None or dialog.state is not DialogState.CONFIRMED:
        return
    headers = (
        Header("Session-Expires", session.header_value()),
        Header("Supported", "timer"),
        Header("User-Agent", engine.settings.user_agent),
    )
    if leg.peer_allows_update or not leg.sdp_out:
        request = dialog.create_request("UPDATE", leg.new_via(engine.shard), headers=headers)
    else:
        request = dialog.create_request(
            "INVITE",
            leg.new_via(engine.shard),
            headers=headers,
            body=leg.sdp_out,
            content_type=SDP,
        )
    key = engine.start_client(request, leg.peer, ClientContext(Purpose.REFRESH, request, call, leg))
    if request.method == "INVITE":
        leg.reinvite_out = key
    leg.session = session.refreshed(engine.now)  # the response restarts it for real


def on_call_timers(engine: Engine, call: Call) -> None:
    """Fire the call's timers due at ``engine.now``."""
    now = engine.now
    if call.cancel_deadline is not None and call.cancel_deadline <= now:
        call.cancel_deadline = None
        if call.b.invite_client_key is not None:
            engine.absorb(engine.layer.terminate(call.b.invite_client_key, now))
        engine.finish(call, EndReason.CANCELLED, 487)
        return
    if call.ack_deadline is not None and call.ack_deadline <= now:
        hang_up(engine, call, EndReason.NO_ACK)
        return
    for leg in (call.a, call.b):
        resend = leg.retransmission
        if resend is not None and resend.next_at <= now:
            if now >= resend.give_up_at:
                leg.retransmission = None
                if call.state is CallState.ANSWERED:
                    hang_up(engine, call, EndReason.NO_ACK)
                    return
                continue
            engine.respond(resend.server_key, resend.response)
            resend.interval_s = min(2 * resend.interval_s, engine.layer.config.t2_s)
            resend.next_at = now + resend.interval_s
    if call.state is CallState.CONFIRMED:
        for leg in (call.a, call.b):
            session = leg.session
            if session is None or session.deadline > now:
                continue
            if session.refresher is Refresher.US:
                _send_refresh(engine, call, leg)
            else:
                hang_up(engine, call, EndReason.SESSION_EXPIRED)
                return
    engine.schedule(call)
