"""One cached registration: a client's binding and the alias the gateway registered for it.

A browser cannot be reached by the PBX on its own Contact (an ``.invalid`` host behind a
WebSocket), so for each binding the gateway registers an *alias* Contact at its own SIP
address upstream, and keeps both sides here: what the client registered (its Contact, the
WebSocket connection it is reached on, when its binding ends) and what the gateway
registered upstream (the alias, when the registrar's binding ends, the Call-ID, From tag
and CSeq its own REGISTERs use, and where they are sent).

Rules:

1. A binding is identified by its ``BindingKey``: the address-of-record and the device. The
   device is the ``+sip.instance`` (with the ``reg-id``) when the client sends one, as a
   RFC 5626 registrar matches bindings (section 6), and the Contact URI otherwise (RFC 3261 10.3:
   one binding per Contact of an AOR).
2. The alias user part is derived from the key alone (``alias_user_for``), so it survives
   re-registrations over new connections and restarts of the gateway: the registrar keeps
   updating one binding instead of collecting a new one per WebSocket.
3. Times are absolute, on the clock of the process holding the value; ``shifted``
   re-expresses them on another process's clock. Nothing here reads a clock.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from typing import TypeAlias, final

from rtcgw.sip.errors import SipParseError
from rtcgw.sip.transport import Peer, Transport
from rtcgw.sip.uri import SipUri, parse_uri

__all__ = ["Binding", "BindingKey", "alias_user_for", "binding_key"]

#: (address-of-record, device identity); see ``binding_key``.
BindingKey: TypeAlias = tuple[str, str]

#: 40 bits: a collision between two devices of one AOR is out of reach in practice, and the
#: alias stays short enough for PBX displays and logs.
_ALIAS_HASH_CHARS = 10


def binding_key(aor: str, contact: str, instance: str | None, reg_id: int | None) -> BindingKey:
    """The key of a binding: the AOR with the device's instance (and reg-id) or its Contact.

    A non-empty ``instance`` wins over the Contact, because a browser that reconnects gets a
    new Contact but keeps its instance; an empty one is treated as absent.
    """
    if instance:
        identity = instance if reg_id is None else f"{instance};reg-id={reg_id}"
    else:
        identity = contact
    return (aor, identity)


def alias_user_for(user: str, key: BindingKey) -> str:
    """The alias user part for a binding: ``user`` and 10 hex digits of the key's SHA-256.

    Stable for a key, distinct between keys; it only appends ``-`` and hex digits, which
    are unreserved in a SIP URI user part (RFC 3261 section 25.1).
    """
    aor, identity = key
    digest = hashlib.sha256(f"{aor}\0{identity}".encode()).hexdigest()
    return f"{user}-{digest[:_ALIAS_HASH_CHARS]}"


@final
@dataclass(frozen=True, slots=True)
class Binding:
    """A client's registration and the alias registered upstream for it."""

    aor: str  #: "user@host" of the REGISTER's To URI, host lower-cased
    user: str  #: the AOR's user part: what retargeting looks up
    contact: str  #: the client's own Contact URI, as sent
    instance: str | None  #: the ``+sip.instance`` value as sent, quotes and brackets included
    reg_id: int | None  #: the ``reg-id`` Contact parameter (RFC 5626 section 4.2)
    call_id: str  #: the client's REGISTER Call-ID
    connection_id: int  #: the WebSocket connection the client is reached on
    transport: Transport  #: that connection's transport
    host: str  #: that connection's remote address
    port: int  #: that connection's remote port
    alias: str  #: the Contact URI registered upstream for this binding
    client_expires_at: float  #: when the client's binding ends
    upstream_expires_at: float  #: when the registrar's binding of the alias ends
    #: RFC 3261 10.2.4: refreshes and the final un-REGISTER reuse the Call-ID and From tag
    #: of the gateway's first REGISTER, with a growing CSeq.
    upstream_call_id: str
    upstream_from_tag: str
    upstream_cseq: int
    #: Where those REGISTERs went: the final un-REGISTER may be sent long after the request
    #: that chose the destination, by a worker that no longer has it.
    registrar_transport: Transport
    registrar_host: str
    registrar_port: int
    registrar_uri: str  #: the Request-URI of the gateway's REGISTERs

    @property
    def key(self) -> BindingKey:
        """The binding's identity: its AOR and device."""
        return binding_key(self.aor, self.contact, self.instance, self.reg_id)

    @property
    def peer(self) -> Peer:
        """Where requests to the client go: its connection."""
        return Peer(self.transport, self.host, self.port, self.connection_id)

    @property
    def registrar(self) -> Peer:
        """Where the gateway's REGISTERs for this binding go."""
        return Peer(self.registrar_transport, self.registrar_host, self.registrar_port)

    @property
    def alias_user(self) -> str:
        """The user part of ``alias``, or "" if it has none or is not a SIP URI."""
        try:
            uri = parse_uri(self.alias, where="alias")
        except SipParseError:
            return ""
        if isinstance(uri, SipUri) and uri.user is not None:
            return uri.user
        return ""

    def shifted(self, offset: float) -> Binding:
        """This binding with both expiry times moved by ``offset`` (onto another clock)."""
        return replace(
            self,
            client_expires_at=self.client_expires_at + offset,
            upstream_expires_at=self.upstream_expires_at + offset,
        )

    def remaining(self, now: float) -> tuple[float, float]:
        """Seconds left of the client's and of the upstream binding at ``now``, never negative."""
        return (
            max(0.0, self.client_expires_at - now),
            max(0.0, self.upstream_expires_at - now),
        )
