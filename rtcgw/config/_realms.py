"""Reading ``[realms.*]``: call agents, A-rules, C-rules, conditions and actions.

Checks that need only one rule (action placement and combinations) or one realm (rule names,
what browsers can take) are made while reading, where the key paths are at hand. References
that may point into another realm (``route``, ``source_call_agent``) are recorded with their
key paths and resolved by ``RealmReader.check_references()`` once every realm is read.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from ipaddress import ip_address, ip_network
from typing import Any

from rtcgw.config._reader import (
    Absent,
    Context,
    Table,
    as_str,
    as_str_list,
    index_path,
    parse_each,
    read_dataclass,
)
from rtcgw.config._values import (
    BadItems,
    BadValue,
    check_codec,
    check_name,
    check_reason_phrase,
    compile_regex,
    parse_destination,
    parse_method,
    parse_network,
)
from rtcgw.config.actions import (
    ACTION_TYPES,
    Action,
    CodecBlacklist,
    CodecWhitelist,
    ForceRtp,
    ForceSrtp,
    RegisterCaching,
    RegisterThrottling,
    Reply,
    RetargetFromCache,
    Route,
    SrtpKeying,
)
from rtcgw.config.schema import (
    AllSources,
    ARule,
    CallAgent,
    Conditions,
    CRule,
    Destination,
    Interface,
    InterfaceKind,
    IPNetwork,
    Realm,
)
from rtcgw.sip.message import canonical_name

__all__ = [
    "ACTIONS_BY_NAME",
    "RealmReader",
    "make_destination",
    "read_sources",
    "sources_from_destination",
]

ACTIONS_BY_NAME: Mapping[str, type[Action]] = {cls.ACTION: cls for cls in ACTION_TYPES}

# Decided before C-rules run, so only A-rules may carry them.
_A_RULE_ONLY: tuple[type[Action], ...] = (Route, RetargetFromCache)
_REGISTER_ONLY: tuple[type[Action], ...] = (RegisterCaching, RegisterThrottling)

# RFC 3261 section 25.1: a header name is a token.
_TOKEN = re.compile(r"[A-Za-z0-9.!%*_+`'~-]+")


def read_sources(table: Table, key: str) -> tuple[IPNetwork, ...] | AllSources | Absent:
    """``sources``: "all", one CIDR, or an array of CIDRs; each bad entry is reported."""
    value = table.get(key, lambda raw: raw)
    if isinstance(value, Absent):
        return value
    if value == AllSources.ALL.value:
        return AllSources.ALL
    try:
        texts = as_str_list(value, single_ok=True)
    except BadValue as exc:
        table.problem(key, f'{exc} (or "all")')
        return Absent.INVALID
    if not texts:
        table.problem(key, 'empty: list source networks or write "all"')
        return Absent.INVALID
    try:
        return parse_each(texts, parse_network)
    except BadItems as exc:
        for index, reason in exc.items:
            table.context.add(index_path(table.path_of(key), index), reason)
        return Absent.INVALID


def make_destination(table: Table, key: str, interface: Interface | None) -> Destination | None:
    """``destination`` of a call agent reached on ``interface`` (None if unknown yet)."""
    text = table.get(key, as_str)
    if isinstance(text, Absent):
        return None
    try:
        host, port, transport = parse_destination(text)
    except BadValue as exc:
        table.problem(key, str(exc))
        return None
    if interface is None:
        return None
    if interface.type is InterfaceKind.WEBSOCKET:
        table.problem(
            key,
            "a call agent on a websocket interface has no destination: browsers are reached "
            "over the connection they registered from (use retarget_from_cache)",
        )
        return None
    if transport is not None and transport is not interface.transport:
        table.problem(
            key,
            f"asks for {transport.value.lower()} but interfaces.{interface.name} carries "
            f"{interface.transport.value.lower()}",
        )
        return None
    return Destination(text, host, port, interface.transport)


def sources_from_destination(destination: Destination | None) -> tuple[IPNetwork, ...]:
    """A destination given as an IP literal also identifies its requests' source."""
    if destination is None:
        return ()
    try:
        return (ip_network(ip_address(destination.host)),)
    except ValueError:
        return ()


@dataclass(frozen=True, slots=True)
class _RouteRef:
    path: str
    target: str
    has_retarget: bool


@dataclass(frozen=True, slots=True)
class _SourceRef:
    path: str
    agent: str
    realm: str | None  #: the realm the agent must belong to (A-rules), None for C-rules


class RealmReader:
    """Reads every realm of one file, then resolves the references between them."""

    def __init__(self, interfaces: Mapping[str, Interface], media_names: Sequence[str]) -> None:
        self._interfaces = interfaces
        self._media_names = media_names
        self._routes: list[_RouteRef] = []
        self._sources: list[_SourceRef] = []
        self._retargets: list[str] = []
        self._caching = False

    def read(self, realms: Table) -> list[Realm]:
        """Read ``[realms.*]``; problems go to the table's context."""
        found = []
        for name, table in realms.entries():
            realm = self._realm(name, table)
            if realm is not None:
                found.append(realm)
        if not found and not realms.data:
            realms.problem(None, "no realms declared")
        return found

    def _realm(self, name: str, table: Table) -> Realm | None:
        _check_name(table, None, name)
        media = table.get("media", as_str)
        if media is Absent.MISSING:
            if len(self._media_names) == 1:
                media = self._media_names[0]
            else:
                table.problem("media", "missing: several media interfaces exist, name one")
        elif isinstance(media, str) and media not in self._media_names:
            table.problem("media", _unknown("media interface", media, self._media_names))
        agents = []
        for agent_name, agent_table in table.named_tables("call_agents"):
            agent = self._call_agent(agent_name, agent_table, name)
            if agent is not None:
                agents.append(agent)
        if "call_agents" not in table:
            table.problem(None, f"no call agents: add [{table.path}.call_agents.<name>]")
        browsers = any(self._is_websocket(agent) for agent in agents)
        a_rules = [
            self._rule(t, name, a_rule=True, browsers=browsers)
            for t in table.array_of_tables("a_rules")
        ]
        c_rules = [
            self._rule(t, name, a_rule=False, browsers=browsers)
            for t in table.array_of_tables("c_rules")
        ]
        seen: set[str] = set()
        for rule_table, _ in [*a_rules, *c_rules]:
            rule_name = rule_table.data.get("name")
            if isinstance(rule_name, str) and rule_name in seen:
                rule_table.problem("name", f"rule name {rule_name!r} is used twice in this realm")
            elif isinstance(rule_name, str):
                seen.add(rule_name)
        table.finish()
        if not isinstance(media, str):
            return None
        return Realm(
            name=name,
            media=media,
            call_agents=tuple(agents),
            a_rules=tuple(r for _, r in a_rules if isinstance(r, ARule)),
            c_rules=tuple(r for _, r in c_rules if isinstance(r, CRule)),
        )

    def _is_websocket(self, agent: CallAgent) -> bool:
        interface = self._interfaces.get(agent.interface)
        return interface is not None and interface.type is InterfaceKind.WEBSOCKET

    def _call_agent(self, name: str, table: Table, realm: str) -> CallAgent | None:
        _check_name(table, None, name)
        interface_name = table.required("interface", as_str, "name of an interface")
        interface = None
        if isinstance(interface_name, str):
            interface = self._interfaces.get(interface_name)
            if interface is None:
                table.problem("interface", _unknown("interface", interface_name, self._interfaces))
        sources = read_sources(table, "sources")
        destination = make_destination(table, "destination", interface)
        if sources is Absent.MISSING and "destination" not in table:
            table.problem(None, 'needs sources (CIDRs or "all"), a destination, or both')
        table.finish()
        if not isinstance(interface_name, str) or sources is Absent.INVALID:
            return None
        if sources is Absent.MISSING:
            if destination is None:
                return None
            sources = sources_from_destination(destination)
        return CallAgent(
            name=name,
            realm=realm,
            interface=interface_name,
            sources=sources,
            destination=destination,
        )

    def _rule(
        self, table: Table, realm: str, *, a_rule: bool, browsers: bool
    ) -> tuple[Table, ARule | CRule | None]:
        name = table.required("name", as_str, "unique within the realm")
        if isinstance(name, str):
            _check_name(table, "name", name)
        when = self._conditions(table.table("when"), realm if a_rule else None)
        actions_tables = table.array_of_tables("actions")
        if "actions" not in table:
            table.problem(None, "missing actions: a rule needs at least one")
        elif table.data["actions"] == []:
            table.problem("actions", "empty: a rule needs at least one action")
        actions = [_action(t) for t in actions_tables]
        self._check_actions(actions_tables, actions, when, a_rule=a_rule, browsers=browsers)
        table.finish()
        if not isinstance(name, str) or when is None or None in actions:
            return table, None
        cls = ARule if a_rule else CRule
        return table, cls(name=name, when=when, actions=tuple(a for a in actions if a is not None))

    def _conditions(self, table: Table | None, realm: str | None) -> Conditions | None:
        if table is None:
            return Conditions()
        methods = table.get(
            "method", lambda raw: parse_each(as_str_list(raw, single_ok=True), parse_method)
        )
        if methods == ():
            table.problem("method", "empty: list methods or leave the key out")
        ruri_user = table.get("ruri_user", lambda raw: compile_regex(as_str(raw)))
        ruri_domain = table.get("ruri_domain", lambda raw: compile_regex(as_str(raw)))
        source = table.get("source_call_agent", as_str)
        if isinstance(source, str):
            self._sources.append(_SourceRef(table.path_of("source_call_agent"), source, realm))
        headers = _header_conditions(table.table("header")) if "header" in table else ()
        networks = table.get(
            "source", lambda raw: parse_each(as_str_list(raw, single_ok=True), parse_network)
        )
        if networks == ():
            table.problem("source", "empty: list source networks or leave the key out")
        table.finish()
        values = (methods, ruri_user, ruri_domain, source, networks)
        if Absent.INVALID in values or methods == () or networks == () or headers is None:
            return None
        return Conditions(
            method=methods if isinstance(methods, tuple) else (),
            ruri_user=None if isinstance(ruri_user, Absent) else ruri_user,
            ruri_domain=None if isinstance(ruri_domain, Absent) else ruri_domain,
            source_call_agent=None if isinstance(source, Absent) else source,
            header=headers,
            source=networks if isinstance(networks, tuple) else (),
        )

    def _check_actions(
        self,
        tables: Sequence[Table],
        actions: Sequence[Action | None],
        when: Conditions | None,
        *,
        a_rule: bool,
        browsers: bool,
    ) -> None:
        first_at: dict[type[Action], int] = {}
        kinds = {type(a) for a in actions if a is not None}
        reply_at: int | None = None
        for index, (table, action) in enumerate(zip(tables, actions, strict=True)):
            if action is None:
                continue
            kind = type(action)
            if reply_at is not None:
                table.problem(None, f"never applied: 'reply' at actions[{reply_at}] ends the rule")
            if kind in first_at:
                table.problem(None, f"{kind.ACTION!r} is already at actions[{first_at[kind]}]")
            first_at.setdefault(kind, index)
            if isinstance(action, Reply):
                reply_at = index
            if not a_rule and isinstance(action, _A_RULE_ONLY):
                table.problem(
                    None,
                    f"{kind.ACTION!r} is for a_rules only: C-rules run once the destination "
                    "is chosen",
                )
            if isinstance(action, ForceSrtp) and ForceRtp in kinds:
                table.problem(None, "force_rtp and force_srtp contradict each other")
            if isinstance(action, RegisterThrottling) and RegisterCaching not in kinds:
                table.problem(None, "register_throttling needs register_caching in the same rule")
            if (
                isinstance(action, _REGISTER_ONLY)
                and when is not None
                and when.method
                and "REGISTER" not in when.method
            ):
                table.problem(None, f"{kind.ACTION!r} acts on REGISTER, which when.method excludes")
            if browsers and isinstance(action, ForceRtp):
                table.problem(
                    None,
                    "this realm has browsers, and WebRTC media is always SRTP "
                    "(RFC 8827 section 6.5): force_rtp would fail every call",
                )
            if browsers and isinstance(action, ForceSrtp) and action.keying is SrtpKeying.SDES:
                table.problem(
                    None,
                    "this realm has browsers, which key SRTP with DTLS only "
                    '(RFC 8827 section 6.5): use keying = "dtls"',
                )
            if isinstance(action, RegisterCaching):
                self._caching = True
            if isinstance(action, RetargetFromCache):
                self._retargets.append(table.path)
            if isinstance(action, Route):
                # Actions apply in order: a route relies only on retargeting done before it.
                self._routes.append(
                    _RouteRef(table.path, action.destination, RetargetFromCache in first_at)
                )

    def check_references(self, realms: Sequence[Realm], context: Context) -> None:
        """Resolve routes and source conditions across realms; report what dangles."""
        agents: dict[str, CallAgent] = {}
        for realm in realms:
            for agent in realm.call_agents:
                first = agents.setdefault(agent.name, agent)
                if first is not agent:
                    context.add(
                        f"realms.{realm.name}.call_agents.{agent.name}",
                        f"call agent name {agent.name!r} is already used in realm {first.realm!r}",
                    )
        for route in self._routes:
            target = agents.get(route.target)
            if target is None:
                context.add(
                    f"{route.path}.destination", _unknown("call agent", route.target, agents)
                )
            elif self._is_websocket(target) and not route.has_retarget:
                context.add(
                    f"{route.path}.destination",
                    f"{route.target!r} is reached through the registration cache: put "
                    "retarget_from_cache before the route",
                )
        for source in self._sources:
            origin = agents.get(source.agent)
            if origin is None:
                context.add(source.path, _unknown("call agent", source.agent, agents))
            elif source.realm is not None and origin.realm != source.realm:
                context.add(
                    source.path,
                    f"{source.agent!r} belongs to realm {origin.realm!r}: an A-rule of realm "
                    f"{source.realm!r} only sees requests from its own call agents",
                )
        if not self._caching:
            for path in self._retargets:
                context.add(
                    path, "no rule does register_caching, so the registration cache stays empty"
                )
        _check_overlapping_sources(agents.values(), context)


def _check_overlapping_sources(agents: Iterable[CallAgent], context: Context) -> None:
    """Two call agents on one interface may not claim the very same sources."""
    claimed: dict[tuple[str, str], CallAgent] = {}
    for agent in agents:
        keys = (
            [AllSources.ALL.value]
            if isinstance(agent.sources, AllSources)
            else [str(network) for network in agent.sources]
        )
        for key in keys:
            first = claimed.setdefault((agent.interface, key), agent)
            if first is not agent:
                context.add(
                    f"realms.{agent.realm}.call_agents.{agent.name}.sources",
                    f"{key} on interface {agent.interface!r} is already claimed by call agent "
                    f"{first.name!r}: which one a request belongs to would be ambiguous",
                )


def _header_conditions(table: Table | None) -> tuple[tuple[str, re.Pattern[str]], ...] | None:
    """``when.header``: header name -> regex; None when the table or an entry is bad."""
    if table is None:  # not a table: Table.table has reported it
        return None
    if not table.data:
        table.problem(None, "empty: name headers or leave the key out")
        return None
    found: list[tuple[str, re.Pattern[str]]] = []
    first_as: dict[str, str] = {}
    valid = True
    for name in table.data:
        pattern = table.get(name, lambda raw: compile_regex(as_str(raw)))
        if not _TOKEN.fullmatch(name):
            table.problem(name, f"{name!r} is not a header name (RFC 3261 section 25.1)")
            valid = False
            continue
        key = canonical_name(name)
        if key in first_as:
            table.problem(
                name,
                f"the same header as {first_as[key]!r} (names are compared in "
                "their long form, case-insensitively)",
            )
            valid = False
            continue
        first_as[key] = name
        if isinstance(pattern, Absent):
            valid = False
        else:
            found.append((key, pattern))
    table.finish()
    return tuple(found) if valid else None


def _action(table: Table) -> Action | None:
    name = table.required("action", as_str, "the action's name")
    if not isinstance(name, str):
        return None
    cls = ACTIONS_BY_NAME.get(name)
    if cls is None:
        table.problem(None, _unknown("action", name, ACTIONS_BY_NAME))
        return None
    action = read_dataclass(cls, table, checks=_FIELD_CHECKS.get(cls))
    if isinstance(action, RegisterThrottling) and (
        action.client_expires_s > action.upstream_expires_s
    ):
        table.problem(
            "client_expires_s",
            f"{action.client_expires_s} exceeds upstream_expires_s "
            f"{action.upstream_expires_s}: clients must refresh at least as often as "
            "the registrar",
        )
    table.finish()
    return action


def _check_codecs(codecs: tuple[str, ...]) -> None:
    problems: list[tuple[int, str]] = []
    seen: set[str] = set()
    for index, codec in enumerate(codecs):
        try:
            check_codec(codec)
        except BadValue as exc:
            problems.append((index, str(exc)))
        # RFC 4855 section 3: media subtype names are case-insensitive.
        if codec.lower() in seen:
            problems.append((index, f"codec {codec!r} is listed twice"))
        seen.add(codec.lower())
    if problems:
        raise BadItems(problems)


# Checks on single action fields beyond type and bounds (those come from actions.py).
_FIELD_CHECKS: Mapping[type[Action], Mapping[str, Callable[[Any], object]]] = {
    Reply: {"reason": check_reason_phrase},
    RetargetFromCache: {"offline_reason": check_reason_phrase},
    CodecWhitelist: {"codecs": _check_codecs},
    CodecBlacklist: {"codecs": _check_codecs},
    Route: {"destination": check_name},
}


def _check_name(table: Table, key: str | None, name: str) -> None:
    try:
        check_name(name)
    except BadValue as exc:
        table.problem(key, str(exc))


def _unknown(what: str, name: str, known: Mapping[str, object] | Sequence[str]) -> str:
    """ "unknown <what> 'x'", with the closest known name or the list of known names."""
    names = sorted(known)
    # Above difflib's default cutoff (0.6), suggestions are usually right; below, listing
    # every name helps more than a wrong guess.
    close = difflib.get_close_matches(name, names, n=1, cutoff=0.7)
    if close:
        return f"unknown {what} {name!r} (did you mean {close[0]!r}?)"
    listed = ", ".join(names) if names else "none declared"
    return f"unknown {what} {name!r} (known: {listed})"
