"""The initial INVITE of a call, both directions: set-up, answers, CANCEL, ACK, teardown.

Theory of operation (RFC 3261 sections 13-15, 9):

1. An initial INVITE creates a call: the A-leg answers it at once with 100 Trying, the
   B-leg sends a new INVITE (new Call-ID, tags, CSeq, Via and Contact; Max-Forwards one
   less) to where the rules send it (``routing``): a call agent's next hop, or the
   connection of a client found in the registration cache (retarget_from_cache).
2. 101-199 from the callee are relayed (the first tagged one creates the A-leg dialog);
   a reliable one (Require: 100rel) is PRACKed on the B-leg and relayed unreliably, and
   its retransmissions are discarded (RFC 3262 section 4).
3. A 2xx is ACKed on the B-leg at once when the caller made an early offer; with a late
   offer (INVITE without SDP) the 2xx carries the offer, and the B-leg ACK waits for the
   caller's ACK, which carries the answer. The 2xx to a UDP caller is retransmitted until
   the ACK (13.3.1.4); no ACK within 64*T1 ends the call.
3a. A late offer toward a leg the SDP seam offers on itself (``local_offer``: a browser's,
   media anchored) is a *gateway offer*: the B-leg INVITE carries our offer, so the
   callee's 2xx carries the answer (``answer_in``) and is ACKed at once without a body;
   the caller's 2xx carries an offer written for its leg, and the answer in its ACK goes
   to ``answer_in`` (none, or one the seam refuses, ends the call with BYE on both legs).
   A callee's 18x SDP is learned only from a reliable 18x (RFC 3262: that is the answer);
   an unreliable one is a preview and the caller's 18x goes without SDP (no offer may
   travel in an unreliable 18x to an INVITE without one, RFC 3261 13.2.1).
4. 300-699 are relayed; the transaction layers ACK them on each leg. A 401/407 keeps the
   B-leg Call-ID, From tag and CSeq for the caller's retry with credentials. Timer B and
   a failed delivery act as a 408 / 503 (8.1.3.1): the caller gets that status and the
   call ends as ``TIMEOUT`` / ``TRANSPORT_FAILED``, not ``REJECTED``.
5. CANCEL from the caller: 487 on the A-leg INVITE, CANCEL on the B-leg once a provisional
   response came, 100 Trying included (9.1: "If no provisional response has been
   received, the CANCEL request MUST NOT be sent"); a 2xx that races the CANCEL is ACKed
   and BYEd. No final 64*T1 after our CANCEL: the B-leg INVITE is abandoned (9.1).
"""

from __future__ import annotations

from rtcgw.sdp.errors import SdpError, SdpNegotiationError
from rtcgw.sip.dialog import Dialog, DialogState
from rtcgw.sip.errors import RemoteProtocolError
from rtcgw.sip.events import ServerTransactionKey
from rtcgw.sip.ids import new_call_id, new_tag
from rtcgw.sip.message import Header, Request, Response, make_response
from rtcgw.sip.transaction import Role, TransactionState
from rtcgw.sip.transaction_client import make_cancel
from rtcgw.sip.transport import Peer
from rtcgw.worker.b2bua.call import Call, CallState, CallTrigger
from rtcgw.worker.b2bua.events import (
    CallAnswered,
    CallDirection,
    CallStarted,
    EndReason,
    MediaRefused,
)
from rtcgw.worker.b2bua.leg import Leg, Retransmission
from rtcgw.worker.b2bua.relay import copied_headers, option_tags, our_contact
from rtcgw.worker.b2bua.routing import WEBSOCKET_TRANSPORTS, route
from rtcgw.worker.b2bua.seam import LegSide
from rtcgw.worker.b2bua.session_timer import negotiate_as_uac, negotiate_as_uas
from rtcgw.worker.b2bua.state import AuthMemo, ClientContext, Engine, Purpose, ServerContext

__all__ = [
    "body_out",
    "gateway_offered",
    "hang_up",
    "media_warning",
    "on_ack",
    "on_cancel",
    "on_initial_invite",
    "on_invite_response",
    "outgoing_max_forwards",
    "send_bye",
]

SDP = "application/sdp"


def outgoing_max_forwards(engine: Engine, request: Request) -> int | None:
    """Max-Forwards for the relayed copy of ``request``; None means answer 483.

    RFC 3261 16.6 step 3: "If the copy contains a Max-Forwards header field, the proxy
    MUST decrement its value by one"; a request arriving with 0 gets 483 (16.3 step 2).
    A request without one gets our default.
    """
    incoming = request.max_forwards
    if incoming is None:
        return engine.settings.max_forwards_default
    if incoming == 0:
        return None
    return incoming - 1


def body_out(
    engine: Engine, call: Call, leg: Leg, message: Request | Response, *, offer: bool
) -> tuple[bytes, str | None]:
    """The body and Content-Type to send on ``leg`` for ``message`` from the other leg.

    An SDP body passes through the SDP seam (offer or answer); the leg remembers it for
    refresh re-INVITEs. Other bodies (DTMF INFO, MESSAGE text) cross unchanged.

    Raises:
        SdpError: the seam refused the body (``status_hint``: what to answer its sender).
    """
    if not message.body:
        return b"", None
    content_type = message.get("Content-Type")
    if message.content_type == SDP:
        seam = engine.sdp.offer_out if offer else engine.sdp.answer_out
        body = seam(call, leg, message.body)
        leg.sdp_out = body
        return body, content_type
    return message.body, content_type


def media_warning(engine: Engine, call_id: str, exc: SdpError) -> Header:
    """Report the seam's refusal and make the Warning that explains the 488 (RFC 3261
    20.43: 305 Incompatible media format)."""
    reason = str(exc)
    engine.notice(MediaRefused(call_id, _status_of(exc), reason))
    text = reason.replace("\\", "").replace('"', "'")
    return Header("Warning", f'305 rtcgw "{text}"')


def _status_of(exc: SdpError) -> int:
    status = getattr(exc, "status_hint", 488)
    return status if isinstance(status, int) else 488


def _new_leg(
    engine: Engine, side: LegSide, role: Role, *, call_id: str, tag: str, peer: Peer
) -> Leg:
    local = engine.settings.address_for(peer.transport)
    return Leg(
        side=side,
        role=role,
        call_id=call_id,
        local_tag=tag,
        peer=peer,
        local=local,
        contact=our_contact(peer.transport, local),
    )


def on_initial_invite(
    engine: Engine, key: ServerTransactionKey, request: Request, source: Peer
) -> None:
    """An INVITE without To tag: start a call (module docstring, step 1)."""
    engine.absorb(engine.layer.respond(key, make_response(request, 100), engine.now))
    max_forwards = outgoing_max_forwards(engine, request)
    if max_forwards is None:
        engine.reject(key, request, 483)
        return
    if "100rel" in request.option_tags("Require"):
        # RFC 3262 section 4: we do not send reliable provisionals (package docstring).
        engine.reject(key, request, 420, headers=(Header("Unsupported", "100rel"),))
        return
    target = route(engine, key, request, source)
    if target is None:
        return
    b_side, destination, ruri = target.side, target.peer, target.uri
    a_side = LegSide.CLIENT if source.transport in WEBSOCKET_TRANSPORTS else LegSide.SIP
    a = _new_leg(
        engine, a_side, Role.UAS, call_id=request.call_id, tag=engine.fresh_tag(), peer=source
    )
    try:
        a.dialog = Dialog.from_uas(request, a.local_tag, a.contact)
    except RemoteProtocolError as exc:
        engine.reject(key, request, exc.status_hint)
        return
    a.invite, a.invite_server_key = request, key
    a.note_allow(request)
    a.session = negotiate_as_uas(request, engine.now)

    memo = None
    if a_side is LegSide.CLIENT:
        memo = engine.auth_memos.pop((request.call_id, request.from_tag or ""), None)
        if memo is not None and memo.expires_at < engine.now:
            memo = None
    if memo is not None:
        b_call_id, b_tag, cseq = memo.b_call_id, memo.b_from_tag, memo.b_cseq + 1
    else:
        b_call_id, b_tag, cseq = new_call_id(shard=engine.shard), new_tag(engine.shard), 1
    b = _new_leg(engine, b_side, Role.UAC, call_id=b_call_id, tag=b_tag, peer=destination)
    direction = CallDirection.FROM_CLIENT if a_side is LegSide.CLIENT else CallDirection.FROM_SIP
    call = Call(request.call_id, direction, a, b, late_offer=not request.body)
    call.decision = target.decision

    supported = option_tags(request, "Supported")
    headers = [
        Header("Via", str(b.new_via(engine.shard))),
        Header("Max-Forwards", str(max_forwards)),
        Header("From", str(request.from_.with_tag(b_tag))),
        Header("To", request.get("To") or ""),
        Header("Call-ID", b_call_id),
        Header("CSeq", f"{cseq} INVITE"),
        Header("Contact", f"<{b.contact}>"),
        *copied_headers(request),
    ]
    if b_side is LegSide.SIP:
        # RFC 4028 section 7.1: offer timers to the SIP side; it picks the refresher.
        supported.append("timer")
        headers.append(Header("Session-Expires", str(engine.settings.session_expires_s)))
        headers.append(Header("Min-SE", str(engine.settings.min_se_s)))
    if supported:
        headers.append(Header("Supported", ", ".join(supported)))
    require = option_tags(request, "Require")
    if require:
        headers.append(Header("Require", ", ".join(require)))
    headers.append(Header("User-Agent", engine.settings.user_agent))
    outgoing = Request("INVITE", ruri, tuple(headers))
    try:
        if request.body:
            body, content_type = body_out(engine, call, b, request, offer=True)
        else:
            body, content_type = _local_offer(engine, call, b)
    except SdpError as exc:
        warning = media_warning(engine, call.call_id, exc)
        engine.sdp.call_ended(call, _status_of(exc))
        engine.reject(key, request, _status_of(exc), headers=(warning,), to_tag=a.local_tag)
        return
    outgoing = outgoing.with_body(body, content_type)
    b.invite = outgoing
    engine.add_call(call)
    engine.servers[key] = ServerContext(Purpose.INVITE, request, call, a)
    b.invite_client_key = engine.start_client(
        outgoing, destination, ClientContext(Purpose.INVITE, outgoing, call, b)
    )
    engine.notice(CallStarted(call.call_id, direction, b_call_id))


def _local_offer(engine: Engine, call: Call, leg: Leg) -> tuple[bytes, str | None]:
    """Our own offer for ``leg`` (module docstring, step 3a), or no body when the seam
    makes none."""
    offer = engine.sdp.local_offer(call, leg)
    if offer is None:
        return b"", None
    leg.sdp_out = offer
    return offer, SDP


def gateway_offered(call: Call) -> bool:
    """True when the caller's INVITE had no offer and the B-leg INVITE carries ours."""
    b_invite = call.b.invite
    return call.late_offer and b_invite is not None and bool(b_invite.body)


def _offer_to_caller(engine: Engine, call: Call, response: Response) -> tuple[bytes, str | None]:
    """A gateway offer's callee answered (step 3a): learn its answer; the caller's 2xx
    gets our offer, its 1xx no SDP.

    Raises:
        SdpError: the answer is unusable, or a 2xx came with no answer at all.
    """
    reliable = "100rel" in response.option_tags("Require")
    has_sdp = bool(response.body) and response.content_type == SDP
    if has_sdp and (response.status >= 200 or reliable):
        engine.sdp.answer_in(call, call.b, response.body)
    if response.status < 200:
        return b"", None
    body, content_type = _local_offer(engine, call, call.a)
    if not body:
        raise SdpNegotiationError(f"no offer for the caller of call {call.call_id}")
    return body, content_type


def _relay_to_caller(engine: Engine, call: Call, response: Response) -> Response:
    """The A-leg copy of the callee's 1xx/2xx/failure ``response``."""
    a = call.a
    assert a.invite is not None and a.dialog is not None
    status = response.status
    headers = list(copied_headers(response))
    if 100 < status < 300:
        headers.append(Header("Contact", f"<{a.contact}>"))
    if 200 <= status < 300 and a.session is not None:
        headers.append(Header("Session-Expires", a.session.header_value()))
        if a.session.refresher_param == "uac":
            headers.append(Header("Require", "timer"))  # RFC 4028 section 9
    headers.append(Header("Server", engine.settings.user_agent))
    offer = call.late_offer and 200 <= status < 300
    try:
        if gateway_offered(call):
            body, content_type = _offer_to_caller(engine, call, response)
        else:
            body, content_type = body_out(engine, call, a, response, offer=offer)
    except SdpError as exc:
        if 200 <= status < 300:
            raise  # the caller of a 2xx ends the call (_on_success)
        # A provisional answer we cannot convert: relay the progress without its SDP.
        media_warning(engine, call.call_id, exc)
        body, content_type = b"", None
    reason = response.reason
    if status == 183 and call.decision.mediate_183_to_180 and a.side is LegSide.CLIENT:
        # The early SDP went through the seam above (the gateway's side uses it); the
        # client gets plain ringing and plays its own ringback.
        status, reason, body, content_type = 180, "Ringing", b"", None
    relayed = make_response(
        a.invite,
        status,
        reason,
        to_tag=a.local_tag,
        headers=tuple(headers),
        body=body,
        content_type=None,
    )
    if content_type is not None:
        relayed = relayed.with_body(body, content_type)
    return relayed


def _send_prack(engine: Engine, call: Call, b: Leg, dialog: Dialog, response: Response) -> bool:
    """PRACK a reliable provisional (RFC 3262 section 7.2) on the B-leg itself.

    Returns False for one to discard: RFC 3262 section 4, a response whose RSeq "is not
    one higher than the value of the sequence number ... MUST NOT be acknowledged with a
    PRACK, and MUST NOT be processed further" (a retransmission, or one out of order).
    """
    rseq = (response.get("RSeq") or "").strip()
    if not (rseq.isascii() and rseq.isdigit()):
        return True
    tag = response.to_tag or ""
    last = b.rseq.get(tag)
    if last is not None and int(rseq) != last + 1:
        return False
    b.rseq[tag] = int(rseq)
    cseq = response.cseq
    prack = dialog.create_request(
        "PRACK",
        b.new_via(engine.shard),
        headers=(Header("RAck", f"{rseq} {cseq.seq} {cseq.method}"),),
    )
    engine.start_client(prack, b.peer, ClientContext(Purpose.PRACK, prack, call, b))
    return True


def _send_cancel(engine: Engine, call: Call) -> None:
    b = call.b
    assert b.invite is not None
    cancel = make_cancel(b.invite)
    engine.start_client(cancel, b.peer, ClientContext(Purpose.CANCEL, cancel, call, b))
    call.cancel_pending = False
    call.cancel_deadline = engine.now + 64 * engine.t1


def on_invite_response(
    engine: Engine, call: Call, response: Response, *, failure: EndReason | None = None
) -> None:
    """A response to the B-leg INVITE (module docstring, steps 2-5).

    ``failure`` is the end reason when ``response`` is the 408 or 503 that stands for a
    timeout (Timer B) or a transport failure; None for a response the callee sent.
    """
    b = call.b
    assert b.invite is not None
    status = response.status
    if status == 100:
        if call.cancel_pending:  # 9.1: any provisional response, 100 too, lets it go
            _send_cancel(engine, call)
    elif status < 200:
        _on_provisional(engine, call, response)
    elif status < 300:
        _on_success(engine, call, response)
    else:
        _on_failure(engine, call, response, failure or EndReason.REJECTED)
    engine.schedule(call)


def _on_provisional(engine: Engine, call: Call, response: Response) -> None:
    b = call.b
    assert b.invite is not None
    tag = response.to_tag
    if tag is not None:
        dialog = b.early.get(tag)
        if dialog is None:
            dialog = b.early[tag] = Dialog.from_uac(b.invite, response)
        else:
            dialog.receive_response(response)
        reliable = "100rel" in response.option_tags("Require")
        if reliable and not _send_prack(engine, call, b, dialog, response):
            return
    if call.state is CallState.CANCELLING:
        if call.cancel_pending:
            _send_cancel(engine, call)
        return
    if call.state not in (CallState.CALLING, CallState.EARLY):
        return
    call.fire(CallTrigger.PROVISIONAL)
    relayed = _relay_to_caller(engine, call, response)
    assert call.a.dialog is not None and call.a.invite_server_key is not None
    call.a.dialog.response_sent(relayed)
    engine.respond(call.a.invite_server_key, relayed)


def _confirm_b_dialog(b: Leg, response: Response) -> Dialog:
    assert b.invite is not None
    tag = response.to_tag or ""
    dialog = b.early.pop(tag, None)
    if dialog is None:
        dialog = Dialog.from_uac(b.invite, response)
    else:
        dialog.receive_response(response)
    for other in b.early.values():
        other.terminate()
    b.early.clear()
    return dialog


def _ack_and_bye(engine: Engine, call: Call, b: Leg, dialog: Dialog, cseq: int) -> None:
    """ACK a 2xx we cannot use and end that dialog (a race with CANCEL, a second fork)."""
    engine.send_direct(dialog.create_ack(cseq, b.new_via(engine.shard)), b.peer)
    bye = dialog.create_request("BYE", b.new_via(engine.shard))
    dialog.terminate()
    engine.start_client(bye, b.peer, ClientContext(Purpose.ACK_AND_BYE, bye, call, b))


def _on_success(engine: Engine, call: Call, response: Response) -> None:
    b, a = call.b, call.a
    assert b.invite is not None
    cseq = response.cseq.seq
    if b.dialog is not None:
        if b.dialog.id.remote_tag == (response.to_tag or ""):
            if b.ack is not None:  # a retransmitted 2xx: re-send the same ACK (13.2.2.4)
                engine.send_direct(b.ack, b.peer)
            return
        _ack_and_bye(engine, call, b, Dialog.from_uac(b.invite, response), cseq)
        return
    dialog = _confirm_b_dialog(b, response)
    if call.state in (CallState.CANCELLING, CallState.ENDED):
        _ack_and_bye(engine, call, b, dialog, cseq)
        engine.finish(call, EndReason.CANCELLED, 487)
        return
    b.dialog = dialog
    b.note_allow(response)
    b.session = negotiate_as_uac(response, engine.now)
    call.fire(CallTrigger.ANSWER)
    if not call.late_offer or gateway_offered(call):
        # The 2xx carries no offer for the caller to answer: the ACK needs no body.
        b.ack = dialog.create_ack(cseq, b.new_via(engine.shard))
        engine.send_direct(b.ack, b.peer)
    try:
        relayed = _relay_to_caller(engine, call, response)
    except SdpError as exc:
        _refuse_answer(engine, call, exc)
        return
    assert a.dialog is not None and a.invite_server_key is not None
    a.dialog.response_sent(relayed)
    engine.respond(a.invite_server_key, relayed)
    call.ack_deadline = engine.now + 64 * engine.t1
    if not a.peer.transport.reliable:
        a.retransmission = Retransmission(
            a.invite_server_key,
            relayed,
            engine.now + engine.t1,
            engine.t1,
            engine.now + 64 * engine.t1,
        )
    engine.notice(CallAnswered(call.call_id))


def _refuse_answer(engine: Engine, call: Call, exc: SdpError) -> None:
    """The callee's 2xx carries SDP we cannot convert: end its dialog, 488 the caller."""
    a, b = call.a, call.b
    warning = media_warning(engine, call.call_id, exc)
    if b.ack is None and b.dialog is not None and b.invite is not None:
        b.ack = b.dialog.create_ack(b.invite.cseq.seq, b.new_via(engine.shard))
        engine.send_direct(b.ack, b.peer)
    send_bye(engine, call, b)
    assert a.invite is not None and a.invite_server_key is not None
    status = _status_of(exc)
    refusal = make_response(a.invite, status, to_tag=a.local_tag, headers=(warning,))
    engine.respond(a.invite_server_key, refusal)
    if a.dialog is not None:
        a.dialog.terminate()
    engine.finish(call, EndReason.MEDIA_REFUSED, status)


def _on_failure(engine: Engine, call: Call, response: Response, reason: EndReason) -> None:
    b, a = call.b, call.a
    assert b.invite is not None
    for dialog in b.early.values():
        dialog.terminate()
    b.early.clear()
    if call.state in (CallState.CANCELLING, CallState.ENDED):
        engine.finish(call, EndReason.CANCELLED, 487)
        return
    if call.state not in (CallState.CALLING, CallState.EARLY):
        return
    status = response.status
    if status in (401, 407) and a.side is LegSide.CLIENT and a.invite is not None:
        engine.auth_memos[(a.call_id, a.invite.from_tag or "")] = AuthMemo(
            b.call_id, b.local_tag, b.invite.cseq.seq, engine.now + 64 * engine.t1
        )
    relayed = _relay_to_caller(engine, call, response)
    assert a.dialog is not None and a.invite_server_key is not None
    a.dialog.response_sent(relayed)
    engine.respond(a.invite_server_key, relayed)
    engine.finish(call, reason, status)


def on_cancel(engine: Engine, call: Call) -> None:
    """The caller cancelled the A-leg INVITE (the layer already answered the CANCEL)."""
    if call.state not in (CallState.CALLING, CallState.EARLY):
        return
    a = call.a
    assert a.invite is not None and a.invite_server_key is not None
    engine.respond(a.invite_server_key, make_response(a.invite, 487, to_tag=a.local_tag))
    if a.dialog is not None:
        a.dialog.terminate()
    _cancel_b_leg(engine, call)
    engine.report_end(call, EndReason.CANCELLED, 487)
    engine.schedule(call)


def _cancel_b_leg(engine: Engine, call: Call) -> None:
    was = call.state
    call.fire(CallTrigger.CANCEL)
    key = call.b.invite_client_key
    if key is not None and engine.layer.state(key) is TransactionState.PROCEEDING:
        _send_cancel(engine, call)
    elif was in (CallState.CALLING, CallState.EARLY):
        call.cancel_pending = True


def on_ack(engine: Engine, call: Call, leg: Leg, ack: Request) -> None:
    """The caller's ACK for our 2xx on the A-leg (late offer: carries the answer)."""
    if leg is not call.a or call.state is not CallState.ANSWERED:
        return
    leg.retransmission = None
    call.ack_deadline = None
    call.fire(CallTrigger.ACK)
    b = call.b
    refused = False
    if gateway_offered(call):
        refused = not _caller_answered(engine, call, ack)
    elif b.ack is None and b.dialog is not None and b.invite is not None:
        try:
            body, content_type = body_out(engine, call, b, ack, offer=False)
        except SdpError as exc:
            # The late answer cannot be converted: the ACK must still go (RFC 3261 13.2.2.4),
            # then the call ends on both legs.
            media_warning(engine, call.call_id, exc)
            body, content_type, refused = b"", None, True
        b.ack = b.dialog.create_ack(
            b.invite.cseq.seq, b.new_via(engine.shard), body=body, content_type=content_type
        )
        engine.send_direct(b.ack, b.peer)
    if refused:
        hang_up(engine, call, EndReason.MEDIA_REFUSED)
        return
    engine.schedule(call)


def _caller_answered(engine: Engine, call: Call, ack: Request) -> bool:
    """Give the answer in the caller's ACK to the seam (step 3a); False when there is
    none or the seam refuses it."""
    try:
        if not ack.body or ack.content_type != SDP:
            raise SdpNegotiationError(
                f"the ACK of call {call.call_id} carries no answer to the offer in our 2xx"
            )
        engine.sdp.answer_in(call, call.a, ack.body)
    except SdpError as exc:
        media_warning(engine, call.call_id, exc)
        return False
    return True


def send_bye(engine: Engine, call: Call, leg: Leg) -> None:
    """Send BYE on ``leg`` if its dialog is confirmed."""
    dialog = leg.dialog
    if dialog is None or dialog.state is not DialogState.CONFIRMED:
        return
    bye = dialog.create_request(
        "BYE",
        leg.new_via(engine.shard),
        headers=(Header("User-Agent", engine.settings.user_agent),),
    )
    dialog.terminate()
    engine.start_client(bye, leg.peer, ClientContext(Purpose.BYE, bye, call, leg))


def hang_up(
    engine: Engine,
    call: Call,
    reason: EndReason,
    *,
    gone: Leg | None = None,
    status: int | None = None,
    caller_status: int = 480,
) -> None:
    """End ``call`` from our side: BYE each confirmed leg but ``gone``, answer an
    unanswered caller with ``caller_status``, cancel an unanswered callee."""
    a, b = call.a, call.b
    a.retransmission = b.retransmission = None
    call.ack_deadline = None
    if a is not gone:
        if call.state in (CallState.CALLING, CallState.EARLY) and a.invite_server_key:
            assert a.invite is not None
            engine.respond(
                a.invite_server_key, make_response(a.invite, caller_status, to_tag=a.local_tag)
            )
            status = status or caller_status
        else:
            send_bye(engine, call, a)
    if call.state in (CallState.CALLING, CallState.EARLY):
        if b is gone:
            if b.invite_client_key is not None:
                engine.absorb(engine.layer.terminate(b.invite_client_key, engine.now))
        else:
            _cancel_b_leg(engine, call)
            engine.report_end(call, reason, status)
            engine.schedule(call)
            return
    elif b is not gone:
        send_bye(engine, call, b)
    for leg in (a, b):
        if leg.dialog is not None:
            leg.dialog.terminate()
    engine.finish(call, reason, status)
