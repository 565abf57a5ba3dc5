"""A lossless model of session descriptions (RFC 8866), with their parser and serializer.

A description is its session-level lines in order, then its media sections, each an ``m=``
line and the lines that follow it in order. Every line is kept: attributes as ``Attribute``
(``a=name`` or ``a=name:value``), anything else as ``Line`` (type letter and raw value).
Unknown attributes and line types stay where they appeared; nothing is copied between the
session and media levels. Meaning is read on demand through the typed views of
``rtcgw.sdp.attributes``.

Rules:

1. ``parse_sdp(d.to_bytes()) == d`` for every description ``d`` this module accepts.
2. ``parse_sdp(text).to_bytes()`` is ``text`` with CRLF line endings and trailing whitespace
   stripped from each line, except that the fields of an ``m=`` line are re-joined with
   single spaces and its port is written without leading zeros.
3. Bad input raises ``SdpParseError`` (naming the 1-based line) and nothing else. Values
   built in code that could not be written and read back raise ``LocalSdpError``.

What the parser checks is the structure every use needs: ``v=0`` first, one ``o=`` and one
``s=`` at session level, well-formed ``o=``, ``c=`` and ``m=`` lines (RFC 8866 sections 5.2,
5.7, 5.14) and ``<letter>=<value>`` lines. Attribute values are checked when a typed view
reads them. No I/O; nothing here edits a description (the dataclasses are frozen).
"""

from __future__ import annotations

import string
from dataclasses import dataclass
from typing import TypeAlias

from rtcgw.sdp.attributes import Connection, Origin, _parse_int
from rtcgw.sdp.errors import LocalSdpError, SdpParseError

__all__ = [
    "Attribute",
    "Entry",
    "Line",
    "MediaSection",
    "SessionDescription",
    "parse_sdp",
]

_PORT_MAX = 65535
_LINE_TYPES = frozenset(string.ascii_lowercase)
#: Line types that belong to the session level only (RFC 8866 section 5, the grammar of 9).
_SESSION_ONLY = frozenset("vos")
_FORBIDDEN_CHARS = ("\n", "\r", "\x00")


def _text_problem(text: str) -> str | None:
    """Why ``text`` cannot be the value of a line, or None."""
    if any(c in text for c in _FORBIDDEN_CHARS):
        return "contains a line break or NUL"
    if text != text.rstrip():
        return "ends with whitespace, which parsing strips"
    return None


def _is_token(text: str) -> bool:
    return bool(text) and text.split() == [text] and "\x00" not in text


def _check_value(type_: str, value: str) -> str | None:
    """Why ``<type_>=<value>`` is not a line the parser would give back as is, or None."""
    problem = _text_problem(value)
    if problem is not None:
        return problem
    try:
        if type_ == "o":
            Origin.from_sdp(value)
        elif type_ == "c":
            Connection.from_sdp(value)
    except SdpParseError as exc:
        return exc.reason
    if type_ == "v" and value != "0":
        return "the only SDP version is 0"
    return None


@dataclass(frozen=True, slots=True)
class Attribute:
    """``a=name`` (a flag, ``value`` None) or ``a=name:value`` (RFC 8866 section 5.13)."""

    name: str
    value: str | None = None

    def __post_init__(self) -> None:
        if not self.name or ":" in self.name or any(c in self.name for c in _FORBIDDEN_CHARS):
            raise LocalSdpError(f"attribute name {self.name!r} is empty or has ':' or a break")
        if self.value is None:
            if self.name != self.name.rstrip():
                raise LocalSdpError(f"attribute flag {self.name!r} ends with whitespace")
        else:
            problem = _text_problem(self.value)
            if problem is not None:
                raise LocalSdpError(f"a={self.name} value {self.value!r} {problem}")

    def __str__(self) -> str:
        return self.name if self.value is None else f"{self.name}:{self.value}"


@dataclass(frozen=True, slots=True)
class Line:
    """Any line but ``a=`` and ``m=``: its type letter and raw value (``"c"``, ``"IN IP4 ..."``)."""

    type: str
    value: str

    def __post_init__(self) -> None:
        if self.type not in _LINE_TYPES or self.type in ("a", "m"):
            raise LocalSdpError(f"{self.type!r} is not the type letter of a plain line")
        problem = _check_value(self.type, self.value)
        if problem is not None:
            raise LocalSdpError(f"{self.type}={self.value!r}: {problem}")

    def __str__(self) -> str:
        return f"{self.type}={self.value}"


Entry: TypeAlias = Line | Attribute


def _entry_line(entry: Entry) -> str:
    """The line of an entry, without its line ending."""
    return f"a={entry}" if isinstance(entry, Attribute) else str(entry)


def _attributes(entries: tuple[Entry, ...]) -> tuple[Attribute, ...]:
    return tuple(e for e in entries if isinstance(e, Attribute))


def _values(entries: tuple[Entry, ...], name: str) -> tuple[str, ...]:
    return tuple(
        "" if e.value is None else e.value
        for e in entries
        if isinstance(e, Attribute) and e.name == name
    )


def _value(entries: tuple[Entry, ...], name: str) -> str | None:
    for e in entries:
        if isinstance(e, Attribute) and e.name == name:
            return "" if e.value is None else e.value
    return None


def _connection(entries: tuple[Entry, ...]) -> Connection | None:
    for e in entries:
        if isinstance(e, Line) and e.type == "c":
            return Connection.from_sdp(e.value)
    return None


@dataclass(frozen=True, slots=True)
class MediaSection:
    """An ``m=`` line (RFC 8866 section 5.14) and every line after it, in order."""

    media: str
    port: int
    port_count: int | None
    proto: str
    formats: tuple[str, ...]
    entries: tuple[Entry, ...] = ()

    def __post_init__(self) -> None:
        where = f"m={self.media} {self.port}"
        if not _is_token(self.media) or not _is_token(self.proto):
            raise LocalSdpError(f"{where}: media {self.media!r} or proto {self.proto!r} is empty")
        if not 0 <= self.port <= _PORT_MAX:
            raise LocalSdpError(f"{where}: port out of range")
        if self.port_count is not None and not 1 <= self.port_count <= _PORT_MAX:
            raise LocalSdpError(f"{where}: port count {self.port_count} out of range")
        if not self.formats or not all(_is_token(f) for f in self.formats):
            raise LocalSdpError(f"{where}: formats {self.formats!r} empty or not tokens")
        for entry in self.entries:
            if isinstance(entry, Line) and entry.type in _SESSION_ONLY:
                raise LocalSdpError(f"{where}: {entry.type}= belongs to the session level")

    @property
    def attributes(self) -> tuple[Attribute, ...]:
        """The section's ``a=`` lines, in order."""
        return _attributes(self.entries)

    def has(self, name: str) -> bool:
        """True if the section has an ``a=name`` line."""
        return _value(self.entries, name) is not None

    def value(self, name: str) -> str | None:
        """The value of the first ``a=name`` ("" for a flag), None if absent."""
        return _value(self.entries, name)

    def values(self, name: str) -> tuple[str, ...]:
        """The values of every ``a=name``, in order ("" for flags)."""
        return _values(self.entries, name)

    @property
    def connection(self) -> Connection | None:
        """The section's own ``c=`` line, parsed (see ``connection_of`` for the fallback)."""
        return _connection(self.entries)

    @property
    def mid(self) -> str | None:
        """The ``a=mid`` value (RFC 5888 section 4)."""
        return _value(self.entries, "mid")

    @property
    def rejected(self) -> bool:
        """True for port 0: a stream rejected or disabled (RFC 3264 sections 6 and 8.2)."""
        return self.port == 0

    @property
    def m_value(self) -> str:
        """The value of the ``m=`` line, e.g. ``audio 49170 RTP/AVP 0 8``."""
        port = str(self.port) if self.port_count is None else f"{self.port}/{self.port_count}"
        return " ".join((self.media, port, self.proto, *self.formats))


@dataclass(frozen=True, slots=True)
class SessionDescription:
    """A whole description: session-level lines in order, then the media sections."""

    entries: tuple[Entry, ...]
    media: tuple[MediaSection, ...] = ()

    def __post_init__(self) -> None:
        if not self.entries or self.entries[0] != Line("v", "0"):
            raise LocalSdpError("a description starts with v=0")
        counts = dict.fromkeys(_SESSION_ONLY, 0)
        for entry in self.entries:
            if isinstance(entry, Line) and entry.type in counts:
                counts[entry.type] += 1
        wrong = sorted(t for t, n in counts.items() if n != 1)
        if wrong:
            raise LocalSdpError(f"a description has exactly one of v=, o=, s=; not {wrong}")

    @property
    def attributes(self) -> tuple[Attribute, ...]:
        """The session-level ``a=`` lines, in order."""
        return _attributes(self.entries)

    def has(self, name: str) -> bool:
        """True if the session level has an ``a=name`` line."""
        return _value(self.entries, name) is not None

    def value(self, name: str) -> str | None:
        """The value of the first session-level ``a=name`` ("" for a flag), None if absent."""
        return _value(self.entries, name)

    def values(self, name: str) -> tuple[str, ...]:
        """The values of every session-level ``a=name``, in order ("" for flags)."""
        return _values(self.entries, name)

    @property
    def connection(self) -> Connection | None:
        """The session-level ``c=`` line, parsed."""
        return _connection(self.entries)

    @property
    def origin(self) -> Origin:
        """The ``o=`` line, parsed."""
        for e in self.entries:
            if isinstance(e, Line) and e.type == "o":
                return Origin.from_sdp(e.value)
        raise LocalSdpError("description has no o= line")  # __post_init__ prevents it

    def lines(self) -> tuple[str, ...]:
        """Every line as written, without line endings."""
        out = [_entry_line(e) for e in self.entries]
        for section in self.media:
            out.append(f"m={section.m_value}")
            out.extend(_entry_line(e) for e in section.entries)
        return tuple(out)

    def to_bytes(self) -> bytes:
        """The description as sent: UTF-8, CRLF after every line (RFC 8866 section 5)."""
        return ("\r\n".join(self.lines()) + "\r\n").encode("utf-8")


def _split_lines(data: bytes | str) -> list[str]:
    """The lines of ``data``, decoded, right-stripped, trailing empty lines dropped."""
    if isinstance(data, bytes):
        lines = []
        for number, raw in enumerate(data.split(b"\n"), start=1):
            try:
                lines.append(raw.decode("utf-8"))
            except UnicodeDecodeError as exc:
                shown = raw.decode("utf-8", errors="replace").rstrip()
                raise SdpParseError(number, shown, f"not UTF-8 ({exc.reason})") from None
    else:
        lines = data.split("\n")
    lines = [line.rstrip() for line in lines]
    while lines and not lines[-1]:
        lines.pop()
    return lines


def _parse_media_line(number: int, line: str) -> MediaSection:
    """The ``m=`` line ``line`` as an empty media section (RFC 8866 section 5.14)."""
    fields = line[2:].split()
    if len(fields) < 4:
        raise SdpParseError(number, line, "m= needs media, port, proto and at least one format")
    media, port_text, proto, *formats = fields
    port_text, slash, count_text = port_text.partition("/")
    try:
        port = _parse_int(port_text, "port", line, maximum=_PORT_MAX)
        count = (
            _parse_int(count_text, "port count", line, minimum=1, maximum=_PORT_MAX)
            if slash
            else None
        )
    except SdpParseError as exc:
        raise SdpParseError(number, line, exc.reason) from None
    return MediaSection(media, port, count, proto, tuple(formats))


def parse_sdp(data: bytes | str) -> SessionDescription:
    """Parse a session description (RFC 8866).

    Args:
        data: the body as received; CRLF or bare LF line endings.

    Returns:
        The description, every line kept in order.

    Raises:
        SdpParseError: the text is not UTF-8 or breaks the structure the module docstring
            lists; ``line_no`` is 1-based.
    """
    lines = _split_lines(data)
    if not lines:
        raise SdpParseError(1, "", "the description is empty")
    session: list[Entry] = []
    sections: list[MediaSection] = []
    current: list[Entry] = session
    seen: dict[str, int] = {}

    def close_section() -> None:
        if sections and current is not session:
            last = sections[-1]
            sections[-1] = MediaSection(
                last.media, last.port, last.port_count, last.proto, last.formats, tuple(current)
            )

    for number, line in enumerate(lines, start=1):
        if not line:
            raise SdpParseError(number, line, "empty line")
        if len(line) < 2 or line[1] != "=" or line[0] not in _LINE_TYPES:
            raise SdpParseError(number, line, "not a <lowercase letter>=<value> line")
        type_, value = line[0], line[2:]
        if any(c in value for c in _FORBIDDEN_CHARS):
            raise SdpParseError(number, line, "contains a carriage return or NUL")
        if number == 1 and line != "v=0":
            raise SdpParseError(number, line, "a description starts with v=0")
        if type_ in _SESSION_ONLY:
            if current is not session:
                raise SdpParseError(number, line, f"{type_}= is not allowed in a media section")
            if type_ in seen:
                raise SdpParseError(number, line, f"{type_}= repeats the one on line {seen[type_]}")
            seen[type_] = number
        if type_ == "m":
            close_section()
            sections.append(_parse_media_line(number, line))
            current = []
        elif type_ == "a":
            name, colon, attr_value = value.partition(":")
            if not name:
                raise SdpParseError(number, line, "attribute has no name")
            current.append(Attribute(name, attr_value if colon else None))
        else:
            problem = _check_value(type_, value)
            if problem is not None:
                raise SdpParseError(number, line, problem)
            current.append(Line(type_, value))
    close_section()
    for type_, position in (("o", 2), ("s", 3)):
        if type_ not in seen:
            shown = lines[position - 1] if len(lines) >= position else ""
            raise SdpParseError(position, shown, f"the description has no {type_}= line")
    return SessionDescription(tuple(session), tuple(sections))
