"""Reading parsed TOML tables while recording every problem with its key path.

``Table`` wraps one TOML table (a ``dict`` from ``tomllib``) with its key path. Each read
marks the key as used and either returns a typed value or records a problem and returns the
``Absent.INVALID`` marker (or the caller's default), so a whole file is read in one pass and
all problems are reported together. ``Table.finish()`` reports the keys nobody read: unknown
keys are errors, never silently ignored.

``read_dataclass`` builds a flat schema dataclass from a table using the field declarations
(type, default, ``minimum`` / ``maximum`` / ``min_items`` metadata), which keeps defaults and
bounds in one place, ``schema.py`` / ``actions.py``.

No I/O except ``Path.is_file()`` for referenced files.
"""

from __future__ import annotations

import dataclasses
import datetime
import difflib
import enum
import math
import re
import types
import typing
from collections.abc import Callable, Mapping
from ipaddress import IPv4Address, IPv6Address
from pathlib import Path
from typing import Any, TypeVar

from rtcgw.config._values import BadItems, BadValue, parse_host_port, parse_ip, port_range
from rtcgw.config.errors import ConfigProblem
from rtcgw.config.schema import HostPort, PortRange

__all__ = [
    "Absent",
    "Context",
    "Table",
    "as_bool",
    "as_str",
    "as_str_list",
    "describe",
    "index_path",
    "join_path",
    "parse_each",
    "read_dataclass",
]

T = TypeVar("T")
E = TypeVar("E", bound=enum.Enum)

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


class Absent(enum.Enum):
    """Why a read produced no value."""

    MISSING = "missing"  #: the key is not in the table
    INVALID = "invalid"  #: the key is there but its value was rejected (problem recorded)


class Context:
    """What every table of one load shares: the source name, the problem list, the base dir."""

    def __init__(self, source: str, base_dir: Path) -> None:
        self.source = source
        self.base_dir = base_dir
        self.problems: list[ConfigProblem] = []

    def add(self, key_path: str, reason: str) -> None:
        """Record one problem at ``key_path``."""
        self.problems.append(ConfigProblem(self.source, key_path, reason))


def join_path(parent: str, key: str) -> str:
    """``parent.key``, quoting the key as TOML would if it is not a bare key."""
    if not _BARE_KEY.fullmatch(key):
        key = '"' + key.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return f"{parent}.{key}" if parent else key


def index_path(parent: str, index: int) -> str:
    """``parent[index]``."""
    return f"{parent}[{index}]"


def describe(value: object) -> str:
    """What a TOML value is, for messages: "a string", "an integer", ..."""
    match value:
        case bool():
            return "a boolean"
        case int():
            return "an integer"
        case float():
            return "a float"
        case str():
            return "a string"
        case list():
            return "an array"
        case dict():
            return "a table"
        case datetime.datetime() | datetime.date() | datetime.time():
            return "a date/time"
    return type(value).__name__


def as_str(value: object) -> str:
    """A TOML string."""
    if not isinstance(value, str):
        raise BadValue(f"expected a string, got {describe(value)}")
    return value


def as_bool(value: object) -> bool:
    """A TOML boolean."""
    if not isinstance(value, bool):
        raise BadValue(f"expected true or false, got {describe(value)}")
    return value


def _as_int(value: object) -> int:
    # bool is an int subclass in Python, but `workers = true` is a mistake.
    if isinstance(value, bool) or not isinstance(value, int):
        raise BadValue(f"expected an integer, got {describe(value)}")
    return value


def _as_number(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise BadValue(f"expected a number, got {describe(value)}")
    # TOML has `nan`: it would pass every bounds check (its comparisons are all false),
    # mean nothing as a rate or a timeout, and make the snapshot unequal to itself.
    if math.isnan(value):
        raise BadValue("expected a number, got nan")
    return float(value)


def as_str_list(value: object, *, single_ok: bool = False) -> tuple[str, ...]:
    """A TOML array of strings (or, with ``single_ok``, one string meaning a list of one)."""
    if single_ok and isinstance(value, str):
        return (value,)
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise BadValue(f"expected an array of strings, got {describe(value)}")
    return tuple(value)


def _bounded(value: T, minimum: object, maximum: object) -> T:
    if isinstance(value, int | float):
        if isinstance(minimum, int) and value < minimum:
            raise BadValue(f"{value} is below the minimum {minimum}")
        if isinstance(maximum, int) and value > maximum:
            raise BadValue(f"{value} is above the maximum {maximum}")
    return value


class Table:
    """One TOML table being read, with its key path and the keys read so far."""

    def __init__(self, data: Mapping[str, object], path: str, context: Context) -> None:
        self.data = data
        self.path = path
        self.context = context
        self._used: set[str] = set()

    def __contains__(self, key: str) -> bool:
        return key in self.data

    def path_of(self, key: str) -> str:
        """The key path of ``key`` in this table."""
        return join_path(self.path, key)

    def problem(self, key: str | None, reason: str) -> None:
        """Record a problem at ``key`` (or at the table itself when ``key`` is None)."""
        self.context.add(self.path if key is None else self.path_of(key), reason)

    def get(self, key: str, parse: Callable[[object], T]) -> T | Absent:
        """Read ``key`` through ``parse``; a ``BadValue`` becomes a problem and INVALID."""
        self._used.add(key)
        if key not in self.data:
            return Absent.MISSING
        try:
            return parse(self.data[key])
        except BadItems as exc:
            for index, reason in exc.items:
                self.context.add(index_path(self.path_of(key), index), reason)
            return Absent.INVALID
        except BadValue as exc:
            self.problem(key, str(exc))
            return Absent.INVALID

    def required(self, key: str, parse: Callable[[object], T], hint: str = "") -> T | Absent:
        """Like ``get``, and a missing key is a problem too."""
        value = self.get(key, parse)
        if value is Absent.MISSING:
            self.problem(key, f"missing{' (' + hint + ')' if hint else ''}")
        return value

    def boolean(self, key: str, default: bool) -> bool:
        """A boolean, or ``default`` when missing or invalid."""
        value = self.get(key, as_bool)
        return default if isinstance(value, Absent) else value

    def table(self, key: str) -> Table | None:
        """The sub-table at ``key``, or None when missing or not a table."""
        value = self.get(key, _as_table)
        if isinstance(value, Absent):
            return None
        return Table(value, self.path_of(key), self.context)

    def named_tables(self, key: str) -> list[tuple[str, Table]]:
        """The entries of a table of tables (``[interfaces.<name>]``), in file order."""
        outer = self.table(key)
        if outer is None:
            return []
        return outer.entries()

    def entries(self) -> list[tuple[str, Table]]:
        """This table's entries, each of which must itself be a table."""
        found: list[tuple[str, Table]] = []
        for name in self.data:
            inner = self.table(name)
            if inner is not None:
                found.append((name, inner))
        return found

    def array_of_tables(self, key: str) -> list[Table]:
        """The elements of an array of tables (``[[realms.x.a_rules]]``), in file order."""
        value = self.get(key, _as_list)
        if isinstance(value, Absent):
            return []
        tables: list[Table] = []
        for index, item in enumerate(value):
            path = index_path(self.path_of(key), index)
            if isinstance(item, dict):
                tables.append(Table(item, path, self.context))
            else:
                self.context.add(path, f"expected a table, got {describe(item)}")
        return tables

    def file(self, key: str) -> Path | None:
        """A path to an existing file, relative to the configuration file's directory."""
        value = self.get(key, as_str)
        if isinstance(value, Absent):
            return None
        if not value:
            self.problem(key, "the path is empty")
            return None
        path = self.context.base_dir / value
        if not path.is_file():
            self.problem(key, f"no such file: {value!r} (looked for {path})")
            return None
        return path

    def finish(self) -> None:
        """Report every key of this table that no reader asked for."""
        known = sorted(self._used)
        for key in self.data:
            if key in self._used:
                continue
            close = difflib.get_close_matches(key, known, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            self.problem(key, f"unknown key{hint}")


def _as_enum(value: object, enum_type: type[E]) -> E:
    choices = [member.value for member in enum_type]
    for member in enum_type:
        if member.value == value:
            return member
    listed = ", ".join(str(choice) for choice in choices)
    shown = repr(value) if isinstance(value, str) else describe(value)
    raise BadValue(f"{shown} is not one of: {listed}")


def _as_table(value: object) -> dict[str, object]:
    if not isinstance(value, dict):
        raise BadValue(f"expected a table, got {describe(value)}")
    return value


def _as_list(value: object) -> list[object]:
    if not isinstance(value, list):
        raise BadValue(f"expected an array, got {describe(value)}")
    return value


def _as_port_range(value: object) -> PortRange:
    if (
        not isinstance(value, list)
        or len(value) != 2
        or not all(isinstance(v, int) and not isinstance(v, bool) for v in value)
    ):
        raise BadValue(f"expected [first, last] ports, got {describe(value)}")
    return port_range(value[0], value[1])


def parse_each(items: tuple[str, ...], parse: Callable[[str], T]) -> tuple[T, ...]:
    """``parse`` applied to every item; raises ``BadItems`` naming each bad one."""
    parsed: list[T] = []
    bad: list[tuple[int, str]] = []
    for index, item in enumerate(items):
        try:
            parsed.append(parse(item))
        except BadValue as exc:
            bad.append((index, str(exc)))
    if bad:
        raise BadItems(bad)
    return tuple(parsed)


def _as_ip_list(value: object) -> tuple[IPv4Address | IPv6Address, ...]:
    return parse_each(as_str_list(value, single_ok=True), parse_ip)


def _as_host_port(value: object) -> HostPort:
    # Every plain HostPort field of the schema is an address to listen on ([http] listen),
    # so port 0 (the kernel picks one; the bound port is logged) is allowed.
    return parse_host_port(as_str(value), listen=True)


def _field_parser(hint: object, metadata: Mapping[str, object]) -> Callable[[object], Any]:
    """The parser for a schema field of type ``hint``."""
    minimum, maximum = metadata.get("minimum"), metadata.get("maximum")
    if hint is bool:
        return as_bool
    if hint is int:
        return lambda value: _bounded(_as_int(value), minimum, maximum)
    if hint is float:
        return lambda value: _bounded(_as_number(value), minimum, maximum)
    if hint is str:
        return as_str
    if hint is HostPort:
        return _as_host_port
    if hint is PortRange:
        return _as_port_range
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        enum_type: type[enum.Enum] = hint
        return lambda value: _as_enum(value, enum_type)
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is types.UnionType and set(args) == {IPv4Address, IPv6Address}:
        return lambda value: parse_ip(as_str(value))
    if origin is tuple and args == (str, Ellipsis):
        min_items = metadata.get("min_items")

        def str_list(value: object) -> tuple[str, ...]:
            items = as_str_list(value)
            if isinstance(min_items, int) and len(items) < min_items:
                raise BadValue(f"needs at least {min_items} item(s)")
            return items

        return str_list
    if origin is tuple and args == (IPv4Address | IPv6Address, Ellipsis):
        return _as_ip_list
    raise TypeError(f"no TOML reader for schema type {hint!r}")  # a bug in the schema


def _checked(
    parse: Callable[[object], Any], check: Callable[[Any], object]
) -> Callable[[object], Any]:
    def parse_and_check(raw: object) -> Any:
        value = parse(raw)
        check(value)
        return value

    return parse_and_check


def read_dataclass(
    cls: type[T],
    table: Table,
    *,
    preset: Mapping[str, object] | None = None,
    checks: Mapping[str, Callable[[Any], object]] | None = None,
) -> T | None:
    """Build ``cls`` from ``table``: one key per field, defaults from the declarations.

    Fields in ``preset`` are not read (the caller knows them, e.g. the table's name);
    ``checks`` adds a check (raising ``BadValue``) to a field after its type and bounds;
    ``Path | None`` fields are read as files relative to the configuration file. Returns
    None when a required key is missing or invalid (the problem is recorded); an invalid
    optional key is recorded and replaced by its default. Does not call ``finish()``.
    """
    preset = preset or {}
    checks = checks or {}
    hints = typing.get_type_hints(cls)
    kwargs: dict[str, Any] = dict(preset)
    complete = True
    for spec in dataclasses.fields(cls):  # type: ignore[arg-type]
        if spec.name in preset:
            continue
        hint = hints[spec.name]
        if hint == Path | None:
            path = table.file(spec.name)
            if path is not None:
                kwargs[spec.name] = path
            continue
        has_default = spec.default is not dataclasses.MISSING
        parse = _field_parser(hint, spec.metadata)
        if spec.name in checks:
            parse = _checked(parse, checks[spec.name])
        value = table.get(spec.name, parse) if has_default else table.required(spec.name, parse)
        if isinstance(value, Absent):
            complete = complete and has_default
        else:
            kwargs[spec.name] = value
    return cls(**kwargs) if complete else None
