"""The rules engine: a pure function from request facts to a ``Decision``.

Evaluation, in this explicit order (ABC SBC semantics):

1. Classify: the source call agent is the one on the request's interface whose ``sources``
   hold the source address; the longest prefix wins and ``"all"`` is shorter than any
   prefix (``classify``). No call agent: no rule runs, the runtime rejects (403).
2. A-rules of the source agent's realm, in file order. A rule matches when every condition
   it gives holds. Every matching rule applies, not only the first: its actions apply in
   order, and a later action of the same kind overrides an earlier one (a later ``route``
   changes the destination, a later ``codec_whitelist`` replaces the list, force_rtp and
   force_srtp override each other). ``reply`` ends evaluation at once, and so does a
   ``retarget_from_cache`` whose user is not registered (it replies with the action's
   ``offline_code`` / ``offline_reason``).
3. If a ``route`` chose a destination call agent, the C-rules of its realm, in file order,
   matched against the same facts (``source_call_agent`` still names the agent the
   request came from; the R-URI is the one received, before retargeting), applied the
   same way.

A request no rule routes gets a decision without destination and without reply: the
runtime answers it 404 Not Found. Rules are for out-of-dialog requests; in-dialog requests
follow their dialog.

``CompiledRules.from_config`` does the per-snapshot work once (call agents per interface
ordered by prefix length, realms and agents by name); ``decide`` and ``classify`` accept a
``GatewayConfig`` too and compile it on the spot, which is fine for tests and one-offs.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from ipaddress import IPv4Address, IPv6Address
from typing import assert_never, final

from rtcgw.config import (
    Action,
    AllSources,
    CallAgent,
    CodecBlacklist,
    CodecWhitelist,
    Conditions,
    DialogHandling,
    DtmfInfoToBrowser,
    ForceRtp,
    ForceSrtp,
    GatewayConfig,
    IPNetwork,
    Mediate183To180,
    Realm,
    RegisterCaching,
    RegisterThrottling,
    Reply,
    RetargetFromCache,
    Route,
    RtpAnchoring,
    Rule,
    StripVideo,
)
from rtcgw.rules.decision import Decision, MediaPolicy, RuleHit, RuleKind
from rtcgw.rules.facts import RequestFacts

__all__ = ["CompiledRules", "Registrations", "classify", "decide", "matches"]

#: The registration view: is this R-URI user registered (has a cached binding)?
Registrations = Callable[[str], bool]

IPAddress = IPv4Address | IPv6Address

# Prefix length given to ``sources = "all"``: shorter than /0.
_ALL_PREFIX = -1


@final
@dataclass(frozen=True, slots=True, eq=False)
class CompiledRules:
    """One configuration snapshot, indexed for evaluation."""

    config: GatewayConfig
    #: per interface: (prefix length, network or None for "all", agent), longest first,
    #: file order among equals
    candidates: Mapping[str, tuple[tuple[int, IPNetwork | None, CallAgent], ...]]
    realms: Mapping[str, Realm]
    agents: Mapping[str, CallAgent]

    @classmethod
    def from_config(cls, config: GatewayConfig) -> CompiledRules:
        """Index ``config`` for ``classify`` and ``decide``."""
        per_interface: dict[str, list[tuple[int, IPNetwork | None, CallAgent]]] = {}
        agents: dict[str, CallAgent] = {}
        for realm in config.realms:
            for agent in realm.call_agents:
                agents.setdefault(agent.name, agent)
                entries = per_interface.setdefault(agent.interface, [])
                if isinstance(agent.sources, AllSources):
                    entries.append((_ALL_PREFIX, None, agent))
                else:
                    entries.extend((net.prefixlen, net, agent) for net in agent.sources)
        candidates = {
            name: tuple(sorted(entries, key=lambda entry: -entry[0]))
            for name, entries in per_interface.items()
        }
        realms = {realm.name: realm for realm in config.realms}
        return cls(config=config, candidates=candidates, realms=realms, agents=agents)


def _compiled(rules: GatewayConfig | CompiledRules) -> CompiledRules:
    return rules if isinstance(rules, CompiledRules) else CompiledRules.from_config(rules)


def _plain(address: IPAddress) -> IPAddress:
    """An IPv4-mapped IPv6 address (a dual-stack socket's view) as the IPv4 address."""
    if isinstance(address, IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def classify(
    rules: GatewayConfig | CompiledRules, interface: str, source_address: IPAddress
) -> CallAgent | None:
    """The call agent on ``interface`` whose sources hold ``source_address``, or None.

    The longest matching prefix wins; ``"all"`` matches every address and loses to any
    prefix. None means nobody on that interface is expected to send from there: the
    runtime rejects the request.
    """
    address = _plain(source_address)
    for _, network, agent in _compiled(rules).candidates.get(interface, ()):
        if network is None or address in network:
            return agent
    return None


def matches(conditions: Conditions, facts: RequestFacts, source_agent: CallAgent) -> bool:
    """True when every condition given holds for the request (none given: always)."""
    if conditions.method and facts.method not in conditions.method:
        return False
    if conditions.ruri_user is not None and (
        facts.ruri_user is None or conditions.ruri_user.fullmatch(facts.ruri_user) is None
    ):
        return False
    if conditions.ruri_domain is not None and (
        facts.ruri_host is None or conditions.ruri_domain.fullmatch(facts.ruri_host) is None
    ):
        return False
    if (
        conditions.source_call_agent is not None
        and conditions.source_call_agent != source_agent.name
    ):
        return False
    for name, pattern in conditions.header:
        if not any(pattern.fullmatch(value) for value in facts.header_values(name)):
            return False
    if conditions.source:
        address = _plain(facts.source_address)
        if not any(address in network for network in conditions.source):
            return False
    return True


@dataclass(slots=True)
class _Leg:
    """Settings one list of rules (A or C) builds up for its leg."""

    media: MediaPolicy
    dialog_handling: bool = False


@dataclass(slots=True)
class _Evaluation:
    """The mutable state of one evaluation; turned into a frozen ``Decision`` at the end."""

    facts: RequestFacts
    source_agent: CallAgent
    registrations: Registrations | None
    agents: Mapping[str, CallAgent]
    destination: CallAgent | None = None
    reply: tuple[int, str] | None = None
    retarget: bool = False
    register_caching: bool = False
    register_throttling: RegisterThrottling | None = None
    mediate_183_to_180: bool = False
    dtmf_info_to_browser: bool = False

    def run(self, realm: str, kind: RuleKind, rules: Sequence[Rule], leg: _Leg) -> list[RuleHit]:
        """Apply every matching rule in order; stops early once a reply is decided."""
        hits: list[RuleHit] = []
        for rule in rules:
            if not matches(rule.when, self.facts, self.source_agent):
                continue
            applied = []
            for action in rule.actions:
                applied.append(action)
                self._apply(action, leg)
                if self.reply is not None:
                    break
            offline = self.reply is not None and isinstance(applied[-1], RetargetFromCache)
            hits.append(RuleHit(realm, kind, rule.name, tuple(applied), offline))
            if self.reply is not None:
                break
        return hits

    def _registered(self) -> bool:
        user = self.facts.ruri_user
        return user is not None and self.registrations is not None and self.registrations(user)

    def _apply(self, action: Action, leg: _Leg) -> None:
        media = leg.media
        if isinstance(action, Reply):
            self.reply = (action.code, action.reason)
        elif isinstance(action, RetargetFromCache):
            self.retarget = True
            if not self._registered():
                self.reply = (action.offline_code, action.offline_reason)
        elif isinstance(action, Route):
            self.destination = self.agents[action.destination]
        elif isinstance(action, RtpAnchoring):
            leg.media = replace(
                media,
                anchoring=True,
                offer_ice=action.offer_ice,
                offer_rtcp_feedback=action.offer_rtcp_feedback,
            )
        elif isinstance(action, ForceRtp):
            leg.media = replace(media, force_rtp=True, force_srtp=None)
        elif isinstance(action, ForceSrtp):
            leg.media = replace(media, force_rtp=False, force_srtp=action.keying)
        elif isinstance(action, CodecWhitelist):
            leg.media = replace(media, codec_whitelist=action.codecs)
        elif isinstance(action, CodecBlacklist):
            leg.media = replace(media, codec_blacklist=action.codecs)
        elif isinstance(action, StripVideo):
            leg.media = replace(media, strip_video=True)
        elif isinstance(action, DialogHandling):
            leg.dialog_handling = True
        elif isinstance(action, RegisterCaching):
            self.register_caching = True
        elif isinstance(action, RegisterThrottling):
            self.register_throttling = action
        elif isinstance(action, Mediate183To180):
            self.mediate_183_to_180 = True
        elif isinstance(action, DtmfInfoToBrowser):
            self.dtmf_info_to_browser = True
        else:
            assert_never(action)


def decide(
    rules: GatewayConfig | CompiledRules,
    facts: RequestFacts,
    *,
    registrations: Registrations | None = None,
) -> Decision:
    """Evaluate the rules for one out-of-dialog request (see the module docstring).

    ``registrations(user)`` tells whether the R-URI user has a binding in the registration
    cache; it is asked only by ``retarget_from_cache``. None stands for an empty cache:
    nobody is registered.
    """
    compiled = _compiled(rules)
    source = classify(compiled, facts.interface, facts.source_address)
    if source is None:
        return Decision()
    state = _Evaluation(facts, source, registrations, compiled.agents)
    source_leg = _Leg(MediaPolicy())
    destination_leg = _Leg(MediaPolicy())
    trace = state.run(source.realm, RuleKind.A, compiled.realms[source.realm].a_rules, source_leg)
    if state.reply is None and state.destination is not None:
        realm = state.destination.realm
        trace += state.run(realm, RuleKind.C, compiled.realms[realm].c_rules, destination_leg)
    return Decision(
        source_agent=source,
        destination_agent=state.destination if state.reply is None else None,
        reply=state.reply,
        retarget=state.retarget,
        source_media=source_leg.media,
        destination_media=destination_leg.media,
        source_dialog_handling=source_leg.dialog_handling,
        destination_dialog_handling=destination_leg.dialog_handling,
        register_caching=state.register_caching,
        register_throttling=state.register_throttling,
        mediate_183_to_180=state.mediate_183_to_180,
        dtmf_info_to_browser=state.dtmf_info_to_browser,
        trace=tuple(trace),
    )
