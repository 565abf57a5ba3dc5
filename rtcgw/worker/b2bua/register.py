"""REGISTER from WebSocket clients, relayed to the PBX (RFC 3261 section 10).

The PBX cannot reach a browser's flow, so the Contact it gets is an alias at our SIP
address, ``sip:<user>@<our SIP host:port>`` (``expires`` kept; ``reg-id``,
``+sip.instance`` and the outbound/path/gruu option tags dropped, RFC 5626). Requests the
PBX later sends to that alias reach us, and ``bindings(user)`` finds the client.

The answer is mapped back: a 2xx's Contact list becomes the client's own Contact with the
granted expiry (JsSIP considers itself registered only when the 200 lists its Contact),
and ``BindingReported`` tells the runtime (expires 0: removed). 401/407 pass through with
their challenges, and the client's retry with credentials goes out with the same B-side
Call-ID and From tag and the next CSeq, as a registrar expects (10.2.4).
"""

from __future__ import annotations

from rtcgw.sip.events import ServerTransactionKey
from rtcgw.sip.headers import NameAddr, Via
from rtcgw.sip.ids import new_branch, new_call_id, new_tag
from rtcgw.sip.message import Header, Request, Response, make_response
from rtcgw.sip.transport import Peer
from rtcgw.sip.uri import SipUri
from rtcgw.worker.b2bua.events import BindingReported
from rtcgw.worker.b2bua.invite import WEBSOCKET_TRANSPORTS, outgoing_max_forwards
from rtcgw.worker.b2bua.relay import copied_headers, option_tags, uri_toward_pbx
from rtcgw.worker.b2bua.state import ALLOW, ClientContext, Engine, Purpose, Registration

__all__ = ["on_register", "on_register_response"]

#: RFC 3261 10.2.1.1: the registrar picks 3600 s when the request gives no expiry.
_DEFAULT_EXPIRES_S = 3600


def _requested_expires(request: Request | Response, contact: NameAddr | None) -> int | None:
    raw = contact.param("expires") if contact is not None else None
    raw = raw if raw is not None else request.get("Expires")
    return int(raw) if raw is not None and raw.strip().isdigit() else None


def on_register(engine: Engine, key: ServerTransactionKey, request: Request, source: Peer) -> None:
    """A REGISTER: relay it for a WebSocket client, refuse it from anyone else."""
    if source.transport not in WEBSOCKET_TRANSPORTS or source.connection_id is None:
        engine.reject(key, request, 405, headers=(Header("Allow", ALLOW),))
        return
    max_forwards = outgoing_max_forwards(engine, request)
    if max_forwards is None:
        engine.reject(key, request, 483)
        return
    aor = request.to.sip_uri
    if aor is None or not aor.user:
        engine.reject(key, request, 404)
        return
    registration = engine.registrations.get(request.call_id)
    if registration is None or registration.connection_id != source.connection_id:
        registration = Registration(
            aor.user, source.connection_id, new_call_id(shard=engine.shard), new_tag(engine.shard)
        )
        engine.registrations[request.call_id] = registration
    registration.b_cseq += 1
    pbx = engine.settings.pbx
    local = engine.settings.address_for(pbx.transport)
    contacts = request.contacts
    headers = [
        Header("Via", str(_via(engine, pbx))),
        Header("Max-Forwards", str(max_forwards)),
        Header("From", str(request.from_.with_tag(registration.b_from_tag))),
        Header("To", request.get("To") or ""),
        Header("Call-ID", registration.b_call_id),
        Header("CSeq", f"{registration.b_cseq} REGISTER"),
    ]
    if request.contact_star:
        headers.append(Header("Contact", "*"))
    elif contacts:
        alias = NameAddr(None, SipUri(user=aor.user, host=local.host, port=local.port))
        expires = contacts[0].param("expires")
        if expires is not None:
            alias = alias.with_param("expires", expires)
        headers.append(Header("Contact", str(alias)))
    headers.extend(copied_headers(request))
    supported = option_tags(request, "Supported")
    if supported:
        headers.append(Header("Supported", ", ".join(supported)))
    headers.append(Header("User-Agent", engine.settings.user_agent))
    outgoing = Request(
        "REGISTER", uri_toward_pbx(request.uri, engine.settings), tuple(headers)
    ).with_body(b"")
    engine.start_client(
        outgoing,
        pbx,
        ClientContext(
            Purpose.REGISTER,
            outgoing,
            inbound_key=key,
            inbound_request=request,
            registration=registration,
        ),
    )


def _via(engine: Engine, pbx: Peer) -> Via:
    local = engine.settings.address_for(pbx.transport)
    return Via.new(pbx.transport, local.host, local.port, new_branch(engine.shard))


def on_register_response(engine: Engine, context: ClientContext, response: Response) -> None:
    """The PBX answered a relayed REGISTER: map the answer back to the client."""
    request, key, registration = (
        context.inbound_request,
        context.inbound_key,
        context.registration,
    )
    assert request is not None and key is not None and registration is not None
    status = response.status
    if status < 200:
        return
    headers = list(copied_headers(response))
    headers.append(Header("Server", engine.settings.user_agent))
    if 200 <= status < 300:
        client_contacts = request.contacts
        granted = _granted(engine, context.request, response)
        if client_contacts and not request.contact_star:
            contact = client_contacts[0]
            if granted > 0:
                shown = NameAddr(contact.display_name, contact.uri, contact.params)
                headers.append(Header("Contact", str(shown.with_param("expires", str(granted)))))
            engine.notice(
                BindingReported(
                    registration.user,
                    registration.connection_id,
                    str(contact.uri),
                    granted,
                    request.call_id,
                )
            )
        if granted == 0 or request.contact_star:
            engine.registrations.pop(request.call_id, None)
    engine.respond(key, make_response(request, status, response.reason, headers=tuple(headers)))


def _granted(engine: Engine, sent: Request, response: Response) -> int:
    """The expiry the registrar granted our alias (RFC 3261 10.2.4), 0 if it is gone."""
    sent_contacts = sent.contacts
    if not sent_contacts:
        return 0
    alias = sent_contacts[0].uri
    for contact in response.contacts:
        uri = contact.uri
        if (
            isinstance(uri, SipUri)
            and isinstance(alias, SipUri)
            and (
                uri.user == alias.user
                and uri.host.lower() == alias.host.lower()
                and (uri.port or 5060) == (alias.port or 5060)
            )
        ):
            value = _requested_expires(response, contact)
            return value if value is not None else _DEFAULT_EXPIRES_S
    return 0
