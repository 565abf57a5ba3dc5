"""Where an out-of-dialog request goes: the rules' ``Decision`` made into a destination.

Every out-of-dialog request but ACK and CANCEL is decided by the rules engine
(``rtcgw.rules.decide``) from its facts: the interface it came in on, its source address,
its start line and headers, and the registration view (the worker's mirror of the
supervisor's cache). The decision becomes one of:

- an answer of ours: 403 Forbidden when no call agent of the interface holds the source
  address, the rule's code and reason for ``reply`` (and for ``retarget_from_cache`` of a
  user who is not registered), 404 Not Found when no rule routed the request, or when it
  was routed to a call agent that has no destination and was not retargeted;
- a ``Target``: the peer to send to, the Request-URI there, and the decision itself, which
  the call keeps (media policy, 183 -> 180, dialog handling).

A retargeted request goes to the client's own Contact over the connection of its binding
(RFC 7118: never to the ``.invalid`` host). Otherwise it goes to the destination call
agent's next hop; the Request-URI is kept, unless the client addressed the gateway itself,
in which case its host becomes the destination's host (``uri_toward``).

Each decision is reported as a ``RouteDecided`` notice with the rules that made it, so
the runtime logs it with the request's Call-ID.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from ipaddress import ip_address
from typing import final

from rtcgw.config import CallAgent, Reply, RetargetFromCache, Route
from rtcgw.registrations import Binding
from rtcgw.rules import Decision, RequestFacts, decide
from rtcgw.rules.facts import ruri_parts
from rtcgw.sip.errors import RemoteProtocolError
from rtcgw.sip.events import ServerTransactionKey
from rtcgw.sip.message import Request
from rtcgw.sip.transport import Peer, Transport
from rtcgw.sip.uri import SipUri, Uri, parse_uri
from rtcgw.worker.b2bua.events import RouteDecided, RouteOutcome
from rtcgw.worker.b2bua.seam import LegSide
from rtcgw.worker.b2bua.settings import B2buaSettings
from rtcgw.worker.b2bua.state import Engine

__all__ = ["WEBSOCKET_TRANSPORTS", "Target", "decide_request", "route", "uri_toward"]

#: Transports on which the peer is a WebSocket client.
WEBSOCKET_TRANSPORTS = frozenset({Transport.WS, Transport.WSS})


@final
@dataclass(frozen=True, slots=True)
class Target:
    """Where a routed request goes, and the decision that sent it there."""

    decision: Decision
    peer: Peer
    uri: Uri
    #: the registration a retargeted request goes to; None when not retargeted
    binding: Binding | None = None

    @property
    def side(self) -> LegSide:
        """Which side of the gateway the destination is on."""
        return LegSide.CLIENT if self.peer.transport in WEBSOCKET_TRANSPORTS else LegSide.SIP


def uri_toward(uri: Uri, settings: B2buaSettings, host: str) -> Uri:
    """The Request-URI of a relayed request whose next hop is ``host``.

    The URI is kept as is, so the digest ``uri`` a client computed stays equal to the
    Request-URI the registrar or PBX checks (RFC 2617 section 3.2.2.5). Only when the
    client addressed the gateway itself does the host become ``host`` (port and
    ``transport`` dropped); such clients should then authenticate against that host.
    """
    if not isinstance(uri, SipUri) or not settings.is_local_host(uri.host):
        return uri
    return replace(uri, host=host, port=None).without_param("transport")


def decide_request(engine: Engine, request: Request, source: Peer) -> Decision:
    """The rules' decision on ``request``, received from ``source`` on the current interface."""
    try:
        address = ip_address(source.host.strip("[]"))
    except ValueError:
        return Decision()  # no call agent can hold a source that is not an address
    facts = RequestFacts.from_request(
        request, interface=engine.interface, source_address=address, source_port=source.port
    )
    decision = decide(engine.rules, facts, registrations=engine.registrations.is_registered)
    engine.notice(
        RouteDecided(
            request.call_id,
            request.method,
            _name(decision.source_agent),
            _name(decision.destination_agent),
            decision.reason(),
            tuple((hit.realm, hit.kind.value, hit.rule) for hit in decision.trace),
            realm=decision.source_realm,
            rule=_deciding_rule(decision),
            outcome=_outcome(decision),
        )
    )
    return decision


def _outcome(decision: Decision) -> RouteOutcome:
    if decision.source_agent is None:
        return RouteOutcome.FORBIDDEN
    if decision.reply is not None:
        return RouteOutcome.REPLIED
    if decision.destination_agent is None:
        return RouteOutcome.NOT_ROUTED
    return RouteOutcome.RETARGETED if decision.retarget else RouteOutcome.ROUTED


def _deciding_rule(decision: Decision) -> str | None:
    """The rule that settled the outcome, as ``realm/kind:name``: the one that replied
    (evaluation stops there), else the last that routed or retargeted; None if none did."""
    settles = (Reply, RetargetFromCache, Route)
    for hit in reversed(decision.trace):
        if hit.offline or any(isinstance(action, settles) for action in hit.actions):
            return f"{hit.realm}/{hit.kind.value}:{hit.rule}"
    return None


def route(
    engine: Engine, key: ServerTransactionKey, request: Request, source: Peer
) -> Target | None:
    """The decision's destination for ``request``; None after answering it ourselves."""
    decision = decide_request(engine, request, source)
    if decision.source_agent is None:
        engine.reject(key, request, 403)
        return None
    if decision.reply is not None:
        code, reason = decision.reply
        engine.reject(key, request, code, reason)
        return None
    agent = decision.destination_agent
    if agent is None:
        engine.reject(key, request, 404)
        return None
    if decision.retarget:
        binding = _binding_of(engine, request.uri)
        if binding is None:
            engine.reject(key, request, 480)  # gone since the rules looked
            return None
        try:
            contact = parse_uri(binding.contact)
        except RemoteProtocolError:
            engine.reject(key, request, 480)
            return None
        return Target(decision, binding.peer, contact, binding)
    destination = agent.destination
    if destination is None:
        engine.reject(key, request, 404, "No Route To Call Agent")
        return None
    peer = Peer(destination.transport, destination.host, destination.port_or_default)
    return Target(decision, peer, uri_toward(request.uri, engine.settings, destination.host))


def _binding_of(engine: Engine, uri: Uri) -> Binding | None:
    user, _ = ruri_parts(uri)  # the user the rules asked the registration view about
    return engine.registrations.lookup(user) if user else None


def _name(agent: CallAgent | None) -> str | None:
    return None if agent is None else agent.name
