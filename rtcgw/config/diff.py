"""What differs between two configuration snapshots, one human line per change.

``rtcgw ctl reload --dry-run`` prints this list and applies nothing. Named tables
(interfaces, media interfaces, realms, call agents, rules) are matched by name, so a
renamed rule shows as one removed and one added; a rule kept in both whose place in its
realm's evaluation order moved is reported once per realm and kind. The order of the list
is stable: gateway and HTTP settings, interfaces, media interfaces, realms, call agents,
then rules, each in the new file's order with removals after.

Sans-IO and pure: nothing here reads a file.
"""

from __future__ import annotations

import dataclasses
import enum
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, TypeVar, final

from rtcgw.config.actions import Action
from rtcgw.config.schema import (
    CallAgent,
    Conditions,
    GatewayConfig,
    Interface,
    MediaInterface,
    Realm,
    Rule,
)

__all__ = ["ChangeKind", "ConfigChange", "config_changes"]

ChangeKind = Literal["added", "removed", "changed"]

_Named = TypeVar("_Named", Interface, MediaInterface, Realm, CallAgent, Rule)


@final
@dataclass(frozen=True, slots=True)
class ConfigChange:
    """One difference: ``kind`` of change, ``what`` changed (a key path in words), ``detail``."""

    kind: ChangeKind
    what: str
    detail: str

    def __str__(self) -> str:
        sign = {"added": "+", "removed": "-", "changed": "~"}[self.kind]
        return f"{sign} {self.kind} {self.what}: {self.detail}"


def config_changes(old: GatewayConfig, new: GatewayConfig) -> list[ConfigChange]:
    """Every difference from ``old`` to ``new``; an empty list when nothing changed.

    The snapshots' ``source`` and ``generated`` notes are not configuration and are ignored.
    """
    changes: list[ConfigChange] = []
    changes += _field_changes("gateway", old.gateway, new.gateway)
    changes += _field_changes("http", old.http, new.http)
    changes += _other_sections(old, new)
    changes += _named_changes(
        "interface", old.interfaces, new.interfaces, _describe_interface, ("name",)
    )
    changes += _named_changes("media", old.media, new.media, _describe_media, ("name",))
    changes += _named_changes(
        "realm",
        old.realms,
        new.realms,
        _describe_realm,
        ("name", "call_agents", "a_rules", "c_rules"),
    )
    old_agents = [agent for realm in old.realms for agent in realm.call_agents]
    new_agents = [agent for realm in new.realms for agent in realm.call_agents]
    changes += _named_changes(
        "call agent", old_agents, new_agents, _describe_agent, ("name",), label=_agent_label
    )
    old_realms = {realm.name: realm for realm in old.realms}
    new_realms = {realm.name: realm for realm in new.realms}
    for realm in new.realms:
        before = old_realms.get(realm.name)
        changes += _rule_changes(realm.name, "a-rule", _rules(before, "a"), realm.a_rules)
        changes += _rule_changes(realm.name, "c-rule", _rules(before, "c"), realm.c_rules)
    for realm in old.realms:
        if realm.name not in new_realms:
            changes += _rule_changes(realm.name, "a-rule", realm.a_rules, ())
            changes += _rule_changes(realm.name, "c-rule", realm.c_rules, ())
    return changes


#: GatewayConfig fields compared by the dedicated code above (or not configuration).
_KNOWN_SECTIONS = frozenset(
    ("source", "generated", "gateway", "http", "interfaces", "media", "realms")
)


def _other_sections(old: GatewayConfig, new: GatewayConfig) -> list[ConfigChange]:
    """Sections without dedicated handling (e.g. an optional ``[web]``), field by field."""
    changes: list[ConfigChange] = []
    for field in dataclasses.fields(old):
        if field.name in _KNOWN_SECTIONS:
            continue
        before, after = getattr(old, field.name), getattr(new, field.name)
        if _text(before) == _text(after):
            continue
        if before is None or after is None:
            kind: ChangeKind = "added" if before is None else "removed"
            changes.append(
                ConfigChange(kind, field.name, _text(after if before is None else before))
            )
        elif dataclasses.is_dataclass(before) and type(before) is type(after):
            changes += _field_changes(field.name, before, after)
        else:
            changes.append(
                ConfigChange("changed", field.name, f"{_text(before)} -> {_text(after)}")
            )
    return changes


def _rules(realm: Realm | None, kind: str) -> Sequence[Rule]:
    if realm is None:
        return ()
    return realm.a_rules if kind == "a" else realm.c_rules


def _field_changes(
    prefix: str, old: object, new: object, skip: Iterable[str] = ()
) -> list[ConfigChange]:
    """One change per field of two dataclasses of one type whose values differ."""
    skipped = set(skip)
    changes = []
    for field in dataclasses.fields(old):  # type: ignore[arg-type]
        if field.name in skipped:
            continue
        before, after = getattr(old, field.name), getattr(new, field.name)
        if _text(before) != _text(after):
            changes.append(
                ConfigChange(
                    "changed", f"{prefix} {field.name}", f"{_text(before)} -> {_text(after)}"
                )
            )
    return changes


def _named_changes(
    noun: str,
    old: Sequence[_Named],
    new: Sequence[_Named],
    describe: Callable[[_Named], str],
    skip: tuple[str, ...],
    *,
    label: Callable[[_Named], str] | None = None,
) -> list[ConfigChange]:
    """Tables matched by name: added and changed in the new order, then removed."""

    def name_of(item: _Named) -> str:
        return label(item) if label is not None else f"{noun} {item.name}"

    before = {item.name: item for item in old}
    after = {item.name for item in new}
    changes: list[ConfigChange] = []
    for item in new:
        previous = before.get(item.name)
        if previous is None:
            changes.append(ConfigChange("added", name_of(item), describe(item)))
        else:
            changes += _field_changes(name_of(item), previous, item, skip)
    for item in old:
        if item.name not in after:
            changes.append(ConfigChange("removed", name_of(item), describe(item)))
    return changes


def _rule_changes(
    realm: str, kind: str, old: Sequence[Rule], new: Sequence[Rule]
) -> list[ConfigChange]:
    """Rules of one realm and kind, matched by name, plus one line if their order moved."""
    before = {rule.name: (index, rule) for index, rule in enumerate(old)}
    after = {rule.name for rule in new}
    changes: list[ConfigChange] = []
    for index, rule in enumerate(new):
        what = f"realm {realm} {kind} {rule.name}"
        found = before.get(rule.name)
        if found is None:
            changes.append(
                ConfigChange("added", what, f"at position {index + 1}: {_describe_rule(rule)}")
            )
            continue
        parts = []
        if _conditions(found[1].when) != _conditions(rule.when):
            parts.append(f"when {_conditions(found[1].when)} -> {_conditions(rule.when)}")
        parts += _action_changes(found[1].actions, rule.actions)
        if parts:
            changes.append(ConfigChange("changed", what, "; ".join(parts)))
    for index, rule in enumerate(old):
        if rule.name not in after:
            changes.append(
                ConfigChange(
                    "removed",
                    f"realm {realm} {kind} {rule.name}",
                    f"was at position {index + 1}: {_describe_rule(rule)}",
                )
            )
    kept_old = [rule.name for rule in old if rule.name in after]
    kept_new = [rule.name for rule in new if rule.name in before]
    if kept_old != kept_new:
        changes.append(
            ConfigChange(
                "changed",
                f"realm {realm} {kind}s order",
                f"{', '.join(kept_old)} -> {', '.join(kept_new)}",
            )
        )
    return changes


def _action_changes(old: Sequence[Action], new: Sequence[Action]) -> list[str]:
    """Action by action when the list of action names is the same, else the whole lists."""
    if [action.ACTION for action in old] != [action.ACTION for action in new]:
        return [f"actions {_actions(old)} -> {_actions(new)}"]
    parts = []
    for index, (before, after) in enumerate(zip(old, new, strict=True)):
        for field in dataclasses.fields(before):
            was, now = getattr(before, field.name), getattr(after, field.name)
            if _text(was) != _text(now):
                parts.append(
                    f"action {index + 1} {after.ACTION} {field.name} {_text(was)} -> {_text(now)}"
                )
    return parts


def _agent_label(agent: CallAgent) -> str:
    return f"realm {agent.realm} call agent {agent.name}"


def _describe_interface(interface: Interface) -> str:
    return f"{interface.type.value} {interface.transport.value} on {interface.listen}"


def _describe_media(media: MediaInterface) -> str:
    advertised = _text(media.advertised_addresses)
    return f"bind {media.bind_address}, advertised {advertised}, ports {media.rtp_port_range}"


def _describe_realm(realm: Realm) -> str:
    return (
        f"media {realm.media}, {len(realm.call_agents)} call agent(s), "
        f"{len(realm.a_rules)} a-rule(s), {len(realm.c_rules)} c-rule(s)"
    )


def _describe_agent(agent: CallAgent) -> str:
    text = f"on interface {agent.interface}, sources {_text(agent.sources)}"
    if agent.destination is not None:
        text += f", destination {agent.destination}"
    return text


def _describe_rule(rule: Rule) -> str:
    return f"when {_conditions(rule.when)}, actions {_actions(rule.actions)}"


def _conditions(when: Conditions) -> str:
    parts = []
    for field in dataclasses.fields(when):
        value = getattr(when, field.name)
        if value is None or value == ():
            continue
        if field.name == "header":
            parts += [f"header {name}={pattern.pattern}" for name, pattern in value]
        else:
            parts.append(f"{field.name}={_text(value)}")
    return "{" + ", ".join(parts) + "}" if parts else "{always}"


def _actions(actions: Sequence[Action]) -> str:
    return "[" + ", ".join(_action(action) for action in actions) + "]"


def _action(action: Action) -> str:
    """The action's name, with the fields it sets that differ from their defaults."""
    params = []
    for field in dataclasses.fields(action):
        value = getattr(action, field.name)
        if field.default is not dataclasses.MISSING and _text(field.default) == _text(value):
            continue
        params.append(f"{field.name}={_text(value)}")
    return f"{action.ACTION}({', '.join(params)})" if params else action.ACTION


def _text(value: object) -> str:
    """A value as the file would spell it, so equal settings print (and compare) equal."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, enum.Enum):
        return str(value.value)
    if isinstance(value, re.Pattern):
        return str(value.pattern)
    if isinstance(value, tuple):
        return "[" + ", ".join(_text(item) for item in value) + "]"
    if isinstance(value, Path):
        return str(value)
    return str(value)
