"""Out-of-dialog MESSAGE (RFC 3428), relayed both ways with an INVITE's routing.

Theory of operation:

1. A MESSAGE goes where the rules send it (``routing``), as an INVITE would: a call
   agent's next hop, or, retargeted from the registration cache, the client's connection
   with the client's Contact as Request-URI.
2. The relayed request is a new request of ours (topology hiding, as for an INVITE's
   B-leg): new Call-ID, From tag, CSeq and Via with our shard; To, From's URI, the body
   and the end-to-end headers (``relay.copied_headers``: Authorization passes through)
   kept; Max-Forwards one less, 483 at zero. No Contact: a MESSAGE creates no dialog.
3. The final response goes back to the sender with the status, reason, end-to-end
   headers and body the receiver sent, and a To tag of ours; provisional responses stay
   on their leg. A timeout or a transport failure answers 408 / 503 (RFC 3261 8.1.3.1).

No I/O.
"""

from __future__ import annotations

from rtcgw.sip.events import ServerTransactionKey
from rtcgw.sip.ids import new_call_id
from rtcgw.sip.message import Header, Request, Response, make_response
from rtcgw.sip.transport import Peer
from rtcgw.worker.b2bua.invite import outgoing_max_forwards
from rtcgw.worker.b2bua.relay import copied_headers
from rtcgw.worker.b2bua.routing import route
from rtcgw.worker.b2bua.state import ClientContext, Engine, Purpose

__all__ = ["on_message", "on_message_response"]


def on_message(engine: Engine, key: ServerTransactionKey, request: Request, source: Peer) -> None:
    """A MESSAGE without To tag: relay it (module docstring, steps 1-2)."""
    max_forwards = outgoing_max_forwards(engine, request)
    if max_forwards is None:
        engine.reject(key, request, 483)
        return
    target = route(engine, key, request, source)
    if target is None:
        return
    destination, uri = target.peer, target.uri
    via = engine.new_via(destination.transport)
    headers = (
        Header("Via", str(via)),
        Header("Max-Forwards", str(max_forwards)),
        Header("From", str(request.from_.with_tag(engine.fresh_tag()))),
        Header("To", request.get("To") or ""),
        Header("Call-ID", new_call_id(shard=engine.shard)),
        Header("CSeq", "1 MESSAGE"),
        *copied_headers(request),
        Header("User-Agent", engine.settings.user_agent),
    )
    outgoing = Request("MESSAGE", uri, headers).with_body(
        request.body, request.get("Content-Type") if request.body else None
    )
    engine.start_client(
        outgoing,
        destination,
        ClientContext(Purpose.MESSAGE, outgoing, inbound_key=key, inbound_request=request),
    )


def on_message_response(engine: Engine, context: ClientContext, response: Response) -> None:
    """A final response to a MESSAGE we relayed: answer the sender with it (step 3)."""
    request, key = context.inbound_request, context.inbound_key
    assert request is not None and key is not None
    if response.status < 200:
        return
    headers = (*copied_headers(response), Header("Server", engine.settings.user_agent))
    content_type = response.get("Content-Type") if response.body else None
    engine.respond(
        key,
        make_response(
            request,
            response.status,
            response.reason,
            to_tag=engine.fresh_tag(),
            headers=headers,
            body=response.body,
            content_type=content_type,
        ),
    )
