"""REGISTER from WebSocket clients: caching, throttling, relaying (RFC 3261 section 10).

A registrar cannot reach a browser's flow, so with ``register_caching`` the gateway
registers itself in the client's place: each binding (address of record + the client's
instance or Contact) gets a stable alias ``sip:<user>-<hash>@<our SIP address>``
(``rtcgw.registrations.alias_user_for``), and requests the registrar's side later sends to
the alias, or to the address of record, reach us; ``retarget_from_cache`` then finds the
client's connection. ``reg-id``, ``+sip.instance`` and the outbound/path/gruu option tags
stay on the client's side (RFC 5626 flows end at the gateway).

The registrar's answer is mapped back: a 2xx lists the client's own Contact with the
expiry the client is granted (JsSIP considers itself registered only when the 200 lists
its Contact), the binding goes into the cache (``BindingReported``; the supervisor is the
single writer and pushes it to every worker), and 401/407 pass through with their
challenges: the client's retry goes out with the same upstream Call-ID and From tag and
the next CSeq, as a registrar expects (10.2.4).

With ``register_throttling`` the client is granted ``client_expires_s`` (short: it
re-REGISTERs often, which keeps its WebSocket and any NAT alive) and the registrar is asked
for ``upstream_expires_s`` (long). A refresh from the same connection, Contact and Call-ID
while the upstream binding has more than two client intervals left is answered here from
the cache (``RegisterOutcome.ABSORBED``); anything else goes upstream (``FORWARDED``).

Removal: Expires 0 (or ``Contact: *``) is forwarded and clears the binding. A binding the
cache drops because its connection closed or the client stopped refreshing is
unregistered upstream by the worker that owns it (``unregister_upstream``), with the last
credentials the client sent; a registrar that still challenges keeps the alias until it
expires, and requests to it are answered from the cache (offline: 480).

Bad requests get 400: an Expires that is not a number, a malformed Contact, ``*`` with a
non-zero expiry or other contacts (10.3 step 6), or more than one Contact (a WebSocket
client registers its one flow).
"""

from __future__ import annotations

from dataclasses import replace

from rtcgw.registrations import Binding, alias_user_for
from rtcgw.sip.errors import RemoteProtocolError
from rtcgw.sip.events import ServerTransactionKey
from rtcgw.sip.ids import new_call_id, new_tag, shard_of
from rtcgw.sip.message import Header, Request, Response, make_response
from rtcgw.sip.transport import Peer
from rtcgw.sip.uri import SipUri, parse_uri
from rtcgw.worker.b2bua.events import (
    BindingReported,
    MessageDropped,
    RegisterHandled,
    RegisterOutcome,
)
from rtcgw.worker.b2bua.invite import outgoing_max_forwards
from rtcgw.worker.b2bua.relay import copied_headers, option_tags, our_contact
from rtcgw.worker.b2bua.routing import WEBSOCKET_TRANSPORTS, Target, route
from rtcgw.worker.b2bua.state import (
    ALLOW,
    BindingRequest,
    ClientContext,
    Engine,
    Purpose,
    Registration,
)

__all__ = ["on_register", "on_register_response", "unregister_upstream"]

#: RFC 3261 10.2.1.1: the registrar picks 3600 s when the request gives no expiry.
_DEFAULT_EXPIRES_S = 3600

#: Removals after which nobody else will tell the registrar: the owner unregisters.
UNREGISTER_REASONS = frozenset({"connection closed", "expired"})


class _BadRegister(Exception):
    """The REGISTER breaks section 10.2 in a way that gets 400; the message is the reason."""


def _number(raw: str | None, what: str) -> int | None:
    """A non-negative decimal header or parameter value; None when absent."""
    if raw is None:
        return None
    text = raw.strip()
    if not (text.isascii() and text.isdigit()) or len(text) > 10:
        raise _BadRegister(f"Invalid {what}")
    return int(text)


def _aor_of(uri: SipUri) -> str:
    """The address of record as the cache keys it: ``user@host``, host lower-cased."""
    return f"{uri.user}@{uri.host.lower()}"


def _refuse(
    engine: Engine,
    key: ServerTransactionKey,
    request: Request,
    status: int,
    reason: str | None = None,
    *,
    headers: tuple[Header, ...] = (),
) -> None:
    """Answer a client's REGISTER with a failure of our own, counted as rejected."""
    engine.reject(key, request, status, reason, headers=headers)
    engine.notice(RegisterHandled(request.call_id, RegisterOutcome.REJECTED))


def on_register(engine: Engine, key: ServerTransactionKey, request: Request, source: Peer) -> None:
    """A REGISTER without To tag: route it by the rules, then cache, absorb or relay it."""
    if outgoing_max_forwards(engine, request) is None:
        _refuse(engine, key, request, 483)
        return
    target = route(engine, key, request, source)
    if target is None:  # the rules answered it (reply, no route): a refusal all the same
        engine.notice(RegisterHandled(request.call_id, RegisterOutcome.REJECTED))
        return
    if not target.decision.register_caching:
        _refuse(engine, key, request, 403, "Registration Not Cached Here")
        return
    if source.transport not in WEBSOCKET_TRANSPORTS or source.connection_id is None:
        _refuse(engine, key, request, 405, headers=(Header("Allow", ALLOW),))
        return
    aor_uri = request.to.sip_uri
    if aor_uri is None or not aor_uri.user:
        _refuse(engine, key, request, 404)
        return
    try:
        header_expires = _number(request.get("Expires"), "Expires")
        contacts = request.contacts
        if request.contact_star:
            if len(request.values("Contact")) != 1 or header_expires != 0:
                raise _BadRegister("Invalid Contact *")
        elif len(contacts) > 1:
            raise _BadRegister("One Contact Per Registration")
        contact = contacts[0] if contacts and not request.contact_star else None
        requested, reg_id = header_expires, None
        if contact is not None:
            param = _number(contact.param("expires"), "Contact expires")
            requested = param if param is not None else header_expires
            reg_id = _number(contact.param("reg-id"), "reg-id")
    except _BadRegister as exc:
        _refuse(engine, key, request, 400, str(exc))
        return
    aor = _aor_of(aor_uri)
    connection_id = source.connection_id
    if request.contact_star:
        _forward(
            engine,
            key,
            request,
            target,
            aor=aor,
            wanted=None,
            connection_id=connection_id,
            requested=0,
        )
    elif contact is None:
        _answer_query(engine, key, request, aor)
    else:
        instance = contact.param("+sip.instance")
        wanted = BindingRequest(aor_uri.user, aor, contact, instance, reg_id, connection_id, source)
        if requested != 0 and _absorb(
            engine, key, request, target, wanted=wanted, requested=requested
        ):
            return
        _forward(
            engine,
            key,
            request,
            target,
            aor=aor,
            wanted=wanted,
            connection_id=connection_id,
            requested=requested,
        )


def _absorb(
    engine: Engine,
    key: ServerTransactionKey,
    request: Request,
    target: Target,
    *,
    wanted: BindingRequest,
    requested: int | None,
) -> bool:
    """Answer a refresh from the cache (throttling); False when it must go upstream."""
    throttling = target.decision.register_throttling
    if throttling is None:
        return False
    existing = engine.registrations.get(wanted.key)
    if (
        existing is None
        or existing.connection_id != wanted.connection_id
        or existing.contact != str(wanted.contact.uri)
        or existing.call_id != request.call_id
    ):
        return False
    client_s = throttling.client_expires_s
    upstream_left = existing.upstream_expires_at - engine.now
    if upstream_left <= 2 * client_s:
        return False  # near its end: this refresh goes upstream
    granted = min(client_s, requested if requested is not None else client_s)
    refreshed = replace(existing, client_expires_at=engine.now + granted)
    _report(engine, refreshed, removed=False, reason="refreshed")
    _answer_ok(engine, key, request, wanted.aor)
    engine.notice(RegisterHandled(request.call_id, RegisterOutcome.ABSORBED))
    return True


def _registration(
    engine: Engine, request: Request, connection_id: int, existing: Binding | None
) -> Registration:
    """The upstream identifiers for this client Call-ID: kept from the last request, or
    from the cached binding (this worker restarted), or new."""
    registration = engine.registrations_in_flight.get(request.call_id)
    if registration is None or registration.connection_id != connection_id:
        if existing is not None and shard_of(existing.upstream_call_id) == engine.shard:
            registration = Registration(
                connection_id,
                existing.upstream_call_id,
                existing.upstream_from_tag,
                existing.upstream_cseq,
            )
        else:
            registration = Registration(
                connection_id, new_call_id(shard=engine.shard), new_tag(engine.shard)
            )
        engine.registrations_in_flight[request.call_id] = registration
    elif existing is not None and existing.upstream_call_id == registration.b_call_id:
        # Another client Call-ID may have sent on this upstream Call-ID since: the CSeq
        # must still grow (10.3 step 7: a registrar refuses one it has seen).
        registration.b_cseq = max(registration.b_cseq, existing.upstream_cseq)
    return registration


def _alias(engine: Engine, target: Target, wanted: BindingRequest) -> SipUri:
    transport = target.peer.transport
    user = alias_user_for(wanted.user, wanted.key)
    return our_contact(transport, engine.settings.address_for(transport), user)


def _forward(
    engine: Engine,
    key: ServerTransactionKey,
    request: Request,
    target: Target,
    *,
    aor: str,
    wanted: BindingRequest | None,
    connection_id: int,
    requested: int | None,
) -> None:
    """Send the REGISTER upstream with our alias Contact(s) in the client's place."""
    throttling = target.decision.register_throttling
    contacts: list[str] = []
    if wanted is None:  # Contact: *  -> every alias of this AOR on this connection
        for binding in engine.registrations.of_aor(aor):
            if binding.connection_id == connection_id:
                contacts.append(f"<{binding.alias}>;expires=0")
        if not contacts:
            _answer_ok(engine, key, request, aor)
            return
    else:
        alias = _alias(engine, target, wanted)
        if requested == 0:
            upstream = 0
        elif throttling is not None:
            upstream = throttling.upstream_expires_s
        else:
            upstream = requested if requested is not None else _DEFAULT_EXPIRES_S
        contacts.append(f"<{alias}>;expires={upstream}")
    existing = None if wanted is None else engine.registrations.get(wanted.key)
    registration = _registration(engine, request, connection_id, existing)
    registration.b_cseq += 1
    registration.credentials = tuple(
        h for h in request.headers if h.key in ("authorization", "proxy-authorization")
    )
    headers = [
        Header("Via", str(engine.new_via(target.peer.transport))),
        Header("Max-Forwards", str(outgoing_max_forwards(engine, request))),
        Header("From", str(request.from_.with_tag(registration.b_from_tag))),
        Header("To", request.get("To") or ""),
        Header("Call-ID", registration.b_call_id),
        Header("CSeq", f"{registration.b_cseq} REGISTER"),
        *(Header("Contact", value) for value in contacts),
        *(h for h in copied_headers(request) if h.key != "expires"),
    ]
    supported = option_tags(request, "Supported")
    if supported:
        headers.append(Header("Supported", ", ".join(supported)))
    headers.append(Header("User-Agent", engine.settings.user_agent))
    outgoing = Request("REGISTER", target.uri, tuple(headers)).with_body(b"")
    engine.start_client(
        outgoing,
        target.peer,
        ClientContext(
            Purpose.REGISTER,
            outgoing,
            inbound_key=key,
            inbound_request=request,
            registration=registration,
            target=target,
            wanted=wanted,
        ),
    )
    engine.notice(RegisterHandled(request.call_id, RegisterOutcome.FORWARDED))


def on_register_response(engine: Engine, context: ClientContext, response: Response) -> None:
    """The registrar answered a REGISTER we sent: map it back, update the cache."""
    if context.inbound_request is None:
        _on_unregister_response(engine, context, response)
        return
    request, key = context.inbound_request, context.inbound_key
    registration, target = context.registration, context.target
    assert key is not None and registration is not None and target is not None
    status = response.status
    if status < 200:
        return
    if not 200 <= status < 300:
        if status not in (401, 407):  # a challenge is the normal first round, not a refusal
            engine.notice(RegisterHandled(request.call_id, RegisterOutcome.REJECTED))
        headers = (*copied_headers(response), Header("Server", engine.settings.user_agent))
        engine.respond(key, make_response(request, status, response.reason, headers=headers))
        return
    aor_uri = request.to.sip_uri
    assert aor_uri is not None
    aor = _aor_of(aor_uri)
    wanted = context.wanted
    if wanted is None:  # Contact: *
        for binding in engine.registrations.of_aor(aor):
            if binding.connection_id == registration.connection_id:
                _report(engine, binding, removed=True, reason="unregistered")
        engine.registrations_in_flight.pop(request.call_id, None)
    else:
        granted = _granted(context.request, response)
        throttling = target.decision.register_throttling
        client_s = granted
        if throttling is not None and granted > 0:
            client_s = min(throttling.client_expires_s, granted)
        key_of_binding = wanted.key
        if granted == 0:
            gone = engine.registrations.get(key_of_binding)
            if gone is not None:
                _report(engine, gone, removed=True, reason="unregistered")
            engine.registrations_in_flight.pop(request.call_id, None)
        else:
            sent = context.request.contacts[0]
            binding = Binding(
                aor=aor,
                user=wanted.user,
                contact=str(wanted.contact.uri),
                instance=wanted.instance,
                reg_id=wanted.reg_id,
                call_id=request.call_id,
                connection_id=wanted.connection_id,
                transport=wanted.source.transport,
                host=wanted.source.host,
                port=wanted.source.port,
                alias=str(sent.uri),
                client_expires_at=engine.now + client_s,
                upstream_expires_at=engine.now + granted,
                upstream_call_id=registration.b_call_id,
                upstream_from_tag=registration.b_from_tag,
                upstream_cseq=registration.b_cseq,
                registrar_transport=target.peer.transport,
                registrar_host=target.peer.host,
                registrar_port=target.peer.port,
                registrar_uri=str(context.request.uri),
            )
            fresh = engine.registrations.get(key_of_binding) is None
            _report(engine, binding, removed=False, reason="registered" if fresh else "refreshed")
    headers = tuple(h for h in copied_headers(response) if h.key != "expires")
    _answer_ok(engine, key, request, aor, headers=headers, status=status)


def _answer_ok(
    engine: Engine,
    key: ServerTransactionKey,
    request: Request,
    aor: str,
    *,
    headers: tuple[Header, ...] = (),
    status: int = 200,
) -> None:
    """Answer with every cached binding of ``aor``: the clients' own Contacts, each with
    the expiry its client was granted (what is left of it)."""
    contacts = []
    for binding in engine.registrations.of_aor(aor):
        left = int(binding.client_expires_at - engine.now + 0.5)
        if left > 0:
            contacts.append(Header("Contact", f"<{binding.contact}>;expires={left}"))
    response = make_response(
        request,
        status,
        to_tag=engine.fresh_tag(),
        headers=(*contacts, *headers, Header("Server", engine.settings.user_agent)),
    )
    engine.respond(key, response)


def _answer_query(engine: Engine, key: ServerTransactionKey, request: Request, aor: str) -> None:
    """A REGISTER without Contact asks for the current bindings (10.2.3): from the cache."""
    _answer_ok(engine, key, request, aor)
    engine.notice(RegisterHandled(request.call_id, RegisterOutcome.ABSORBED))


def _report(engine: Engine, binding: Binding, *, removed: bool, reason: str) -> None:
    """Apply a change to our mirror at once (our next decision sees it) and report it."""
    if removed:
        engine.registrations.remove(binding.key, reason)
    else:
        engine.registrations.put(binding, reason)
    engine.notice(BindingReported(binding, removed, reason))


def _granted(sent: Request, response: Response) -> int:
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
            and uri.user == alias.user
            and uri.host.lower() == alias.host.lower()
            and (uri.port or 5060) == (alias.port or 5060)
        ):
            raw = contact.param("expires") or response.get("Expires")
            if raw is not None and raw.strip().isdigit():
                return int(raw.strip())
            return _DEFAULT_EXPIRES_S
    return 0


def unregister_upstream(engine: Engine, binding: Binding, reason: str) -> None:
    """Tell the registrar a binding the cache dropped is gone (if this worker owns it)."""
    if reason not in UNREGISTER_REASONS or shard_of(binding.upstream_call_id) != engine.shard:
        return
    registration = engine.registrations_in_flight.pop(binding.call_id, None)
    cseq = max(binding.upstream_cseq, registration.b_cseq if registration else 0) + 1
    credentials = registration.credentials if registration is not None else ()
    registrar = binding.registrar
    aor = f"sip:{binding.aor}"
    headers = (
        Header("Via", str(engine.new_via(registrar.transport))),
        Header("Max-Forwards", str(engine.settings.max_forwards_default)),
        Header("From", f"<{aor}>;tag={binding.upstream_from_tag}"),
        Header("To", f"<{aor}>"),
        Header("Call-ID", binding.upstream_call_id),
        Header("CSeq", f"{cseq} REGISTER"),
        Header("Contact", f"<{binding.alias}>;expires=0"),
        *credentials,
        Header("User-Agent", engine.settings.user_agent),
    )
    try:
        uri = parse_uri(binding.registrar_uri)
    except RemoteProtocolError:
        uri = SipUri(host=binding.aor.rpartition("@")[2])
    outgoing = Request("REGISTER", uri, headers).with_body(b"")
    engine.start_client(outgoing, registrar, ClientContext(Purpose.REGISTER, outgoing))


def _on_unregister_response(engine: Engine, context: ClientContext, response: Response) -> None:
    if 200 <= response.status < 300 or response.status < 200:
        return
    # Without the client there are no fresh credentials to answer a challenge with: the
    # alias stays registered upstream until it expires, and requests to it get 480.
    engine.notice(
        MessageDropped(
            "unregister_refused",
            f"{response.status} {response.reason}",
            context.request.call_id,
        )
    )
