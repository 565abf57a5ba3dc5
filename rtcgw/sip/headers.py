"""Typed values of the SIP headers rtcgw interprets, and comma-list splitting.

A message keeps every header as text (``rtcgw.sip.message.Header``); this module turns
the values of the headers the core relies on into immutable objects and back:

- ``Via`` (RFC 3261 section 20.42, with ``rport`` from RFC 3581),
- ``CSeq`` (section 20.16),
- ``NameAddr`` for From, To, Contact, Route, Record-Route and the like (section 20.10,
  20.20, 20.39: ``[display-name] <URI> *(;param)`` or a bare ``addr-spec``),
- ``split_header_values`` and ``is_list_header`` for the comma-separated form of list
  headers (section 7.3.1).

Rules:

1. ``Foo.parse(text)`` accepts what RFC 3261's grammar accepts, including linear white
   space around ``/``, ``:``, ``;`` and ``=`` (RFC 4475 section 3.1.1.1), and raises
   ``SipParseError`` (never anything else) on anything it cannot represent.
2. ``str(value)`` writes the canonical form, which parses back to an equal value.
3. Header parameters keep their order and their values as written (a quoted value keeps
   its quotes: ``+sip.instance="<urn:uuid:...>"``); names compare case-insensitively.

No I/O; nothing here knows about transactions or dialogs.
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass, field
from typing import Final

from rtcgw.sip.errors import LocalProtocolError, SipParseError
from rtcgw.sip.transport import Transport
from rtcgw.sip.uri import (
    HOST_CHARS,
    Param,
    Parameterized,
    SipUri,
    Uri,
    find_param,
    parse_host_port,
    parse_uri,
)

__all__ = [
    "MAGIC_COOKIE",
    "CSeq",
    "NameAddr",
    "Via",
    "is_list_header",
    "split_header_values",
]

#: RFC 3261 section 8.1.1.7: the branch of an RFC 3261 client "MUST always begin with the
#: characters "z9hG4bK"".
MAGIC_COOKIE: Final = "z9hG4bK"

#: RFC 3261 section 25.1 ``token``.
TOKEN_CHARS: Final = frozenset(string.ascii_letters + string.digits + "-.!%*_+`'~")
_WS = " \t"
_DIGITS = frozenset(string.digits)
#: Characters of an unquoted generic-param value: token, plus ":" and "[]" for IPv6
#: ``host`` values (``received=2001:db8::1``, ``maddr=[::1]``) and "/" some stacks send.
_VALUE_CHARS = TOKEN_CHARS | frozenset(":[]/")

#: Lower-case long names of headers whose grammar is a comma-separated list, so that
#: ``a, b`` on one line means the same as two lines (RFC 3261 section 7.3.1). Headers not
#: listed (Authorization, Date, Call-ID, unknown extensions, ...) are never split.
_LIST_HEADERS: Final = frozenset(
    {
        "accept",
        "accept-contact",  # RFC 3841
        "accept-encoding",
        "accept-language",
        "accept-resource-priority",  # RFC 4412
        "alert-info",
        "allow",
        "allow-events",  # RFC 6665
        "call-info",
        "contact",
        "content-encoding",
        "content-language",
        "error-info",
        "geolocation",  # RFC 6442
        "history-info",  # RFC 7044
        "in-reply-to",
        "p-asserted-identity",  # RFC 3325
        "p-associated-uri",  # RFC 7315
        "p-preferred-identity",  # RFC 3325
        "path",  # RFC 3327
        "proxy-require",
        "reason",  # RFC 3326
        "record-route",
        "recv-info",  # RFC 6086
        "reject-contact",  # RFC 3841
        "request-disposition",  # RFC 3841
        "require",
        "resource-priority",  # RFC 4412
        "route",
        "security-client",  # RFC 3329
        "security-server",  # RFC 3329
        "security-verify",  # RFC 3329
        "service-route",  # RFC 3608
        "supported",
        "unsupported",
        "via",
        "warning",
    }
)


def is_list_header(key: str) -> bool:
    """True if the header with this lower-case long name is a comma-separated list.

    Unknown headers are not: splitting what we do not understand could break it.
    """
    return key in _LIST_HEADERS


def split_header_values(value: str, *, where: str) -> list[str]:
    """Split a list header's value on the commas that separate its elements.

    Commas inside double-quoted strings (with backslash escapes) or inside ``<...>`` do
    not count. Elements are stripped of white space; empty elements are dropped.

    Raises:
        SipParseError: an unterminated quoted string or ``<``.
    """
    out: list[str] = []
    start = 0
    in_quotes = in_angle = escaped = False
    for i, ch in enumerate(value):
        if in_quotes:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_quotes = False
        elif in_angle:
            if ch == ">":
                in_angle = False
        elif ch == '"':
            in_quotes = True
        elif ch == "<":
            in_angle = True
        elif ch == ",":
            out.append(value[start:i])
            start = i + 1
    if in_quotes:
        raise SipParseError("unterminated quoted string", where=where)
    if in_angle:
        raise SipParseError("unterminated '<'", where=where)
    out.append(value[start:])
    return [item.strip(_WS) for item in out if item.strip(_WS)]


# -- low-level scanning: ``(text, index)`` in, ``(result, new index)`` out ---------------


def _skip_ws(s: str, i: int) -> int:
    while i < len(s) and s[i] in _WS:
        i += 1
    return i


def _read_while(s: str, i: int, allowed: frozenset[str]) -> tuple[str, int]:
    j = i
    while j < len(s) and s[j] in allowed:
        j += 1
    return s[i:j], j


def _read_quoted(s: str, i: int, where: str) -> tuple[str, int]:
    """The quoted-string starting at ``s[i] == '"'``, quotes included, and the index after."""
    j = i + 1
    while j < len(s):
        ch = s[j]
        if ch == "\\":
            j += 2
            continue
        if ch == '"':
            return s[i : j + 1], j + 1
        j += 1
    raise SipParseError("unterminated quoted string", where=where)


def _unquote(quoted: str) -> str:
    """The content of a quoted-string with its quoted-pairs resolved (RFC 3261 25.1)."""
    out: list[str] = []
    inner = quoted[1:-1]
    i = 0
    while i < len(inner):
        if inner[i] == "\\" and i + 1 < len(inner):
            i += 1
        out.append(inner[i])
        i += 1
    return "".join(out)


def _quote(text: str) -> str:
    """A quoted-string for ``text``: backslash before ``"``, ``\\`` and control characters."""
    out = ['"']
    for ch in text:
        if ch in '"\\' or (ord(ch) < 0x20 and ch != "\t") or ch == "\x7f":
            out.append("\\")
        out.append(ch)
    out.append('"')
    return "".join(out)


def _parse_params(s: str, i: int, where: str) -> tuple[Param, ...]:
    """``*( SEMI generic-param )`` from ``s[i:]`` to the end, LWS allowed around ``;``/``=``.

    A value is a token, an IPv6 reference or host, or a quoted-string kept with its quotes.
    """
    params: list[Param] = []
    i = _skip_ws(s, i)
    while i < len(s):
        if s[i] != ";":
            raise SipParseError(f"unexpected {s[i]!r} where ';' was expected in {s!r}", where=where)
        i = _skip_ws(s, i + 1)
        name, i = _read_while(s, i, TOKEN_CHARS)
        if not name:
            raise SipParseError(f"empty parameter name in {s!r}", where=where)
        i = _skip_ws(s, i)
        value: str | None = None
        if i < len(s) and s[i] == "=":
            i = _skip_ws(s, i + 1)
            if i < len(s) and s[i] == '"':
                value, i = _read_quoted(s, i, where)
            else:
                value, i = _read_while(s, i, _VALUE_CHARS)
                if not value:
                    raise SipParseError(f"parameter {name!r} has no value in {s!r}", where=where)
            i = _skip_ws(s, i)
        params.append((name, value))
    return tuple(params)


def _format_params(params: tuple[Param, ...]) -> str:
    return "".join(f";{k}" if v is None else f";{k}={v}" for k, v in params)


def _split_ws(text: str) -> list[str]:
    """``text`` split on runs of SP/HT (``str.split()`` would split on any Unicode space)."""
    return [w for w in re.split(r"[ \t]+", text) if w]


def _is_token(text: str) -> bool:
    return bool(text) and all(c in TOKEN_CHARS for c in text)


# -- Via --------------------------------------------------------------------------------


def _via_params_problem(params: tuple[Param, ...]) -> str | None:
    """What is wrong with the Via parameters the core reads (RFC 3261 25.1 via-params,
    RFC 3581 response-port), or None."""
    for name, limit in (("rport", 65535), ("ttl", 255)):
        item = find_param(params, name)
        raw = None if item is None else item[1]
        if raw is not None and (
            not raw or len(raw) > 5 or not all(c in _DIGITS for c in raw) or int(raw) > limit
        ):
            return f"{name} is not a number in 0..{limit}: {raw!r}"
    for name in ("branch", "received", "maddr"):
        item = find_param(params, name)
        if item is not None and not item[1]:
            return f"{name} without a value"
    return None


@dataclass(frozen=True, slots=True)
class Via(Parameterized):
    """One Via header value (RFC 3261 section 20.42): ``SIP/2.0/UDP host:port;params``.

    ``transport`` is upper-case (``"UDP"``, ``"WSS"``, or an unknown token such as
    ``"SCTP"``); ``host`` is as written (IPv6 with brackets). Parameters keep their order.
    """

    protocol: str = "SIP/2.0"
    transport: str = "UDP"
    host: str = ""
    port: int | None = None
    params: tuple[Param, ...] = ()

    def __post_init__(self) -> None:
        if not self.host:
            raise LocalProtocolError("Via needs a host")
        problem = _via_params_problem(self.params)
        if problem is not None:
            raise LocalProtocolError(problem)
        if not _is_token(self.transport) or self.transport != self.transport.upper():
            raise LocalProtocolError(
                f"Via transport must be an upper-case token: {self.transport!r}"
            )

    @classmethod
    def new(cls, transport: Transport | str, host: str, port: int | None, branch: str) -> Via:
        """A Via for a request we send: ``;branch=...;rport`` (RFC 3261 8.1.1.7, RFC 3581 3)."""
        name = transport.value if isinstance(transport, Transport) else transport.upper()
        return cls(
            transport=name,
            host=host,
            port=port,
            params=(("branch", branch), ("rport", None)),
        )

    @classmethod
    def parse(cls, value: str, *, where: str = "Via") -> Via:
        """Parse one Via value (one element of the comma list).

        Linear white space is allowed around ``/``, ``:``, ``;`` and ``=`` as RFC 3261
        25.1 (``SLASH``, ``COLON``, ``SEMI``, ``EQUAL``) allows.

        Raises:
            SipParseError: not a Via value, or an ``rport``/``ttl`` that is not a number in
                range, or a ``branch``/``received``/``maddr`` without a value.
        """
        s = value.strip(_WS)
        parts: list[str] = []
        i = 0
        for k in range(3):
            if k:
                i = _skip_ws(s, i)
                if i >= len(s) or s[i] != "/":
                    raise SipParseError(f"bad sent-protocol in {value!r}", where=where)
                i = _skip_ws(s, i + 1)
            token, i = _read_while(s, i, TOKEN_CHARS)
            if not token:
                raise SipParseError(f"bad sent-protocol in {value!r}", where=where)
            parts.append(token)
        j = _skip_ws(s, i)
        if j == i or j >= len(s):
            raise SipParseError(f"no sent-by in {value!r}", where=where)
        # sent-by: host [COLON port], with optional white space around the colon.
        if s[j] == "[":
            end = s.find("]", j)
            if end < 0:
                raise SipParseError(f"unterminated IPv6 reference in {value!r}", where=where)
            host_text, i = s[j : end + 1], end + 1
        else:
            host_text, i = _read_while(s, j, HOST_CHARS)
        k = _skip_ws(s, i)
        port_text = ""
        if k < len(s) and s[k] == ":":
            k = _skip_ws(s, k + 1)
            port_text, k = _read_while(s, k, _DIGITS)
            host_text += ":" + port_text
            i = k
        host, port = parse_host_port(host_text, value, where)
        params = _parse_params(s, i, where)
        problem = _via_params_problem(params)
        if problem is not None:
            raise SipParseError(f"{problem} in {value!r}", where=where)
        return cls(
            protocol=f"{parts[0]}/{parts[1]}",
            transport=parts[2].upper(),
            host=host,
            port=port,
            params=params,
        )

    # -- parameters -----------------------------------------------------------------------

    @property
    def branch(self) -> str | None:
        """The branch parameter (the transaction id when it starts with ``MAGIC_COOKIE``)."""
        return self.param("branch")

    @property
    def received(self) -> str | None:
        """The ``received`` address a server added (RFC 3261 section 18.2.1), or None."""
        return self.param("received")

    @property
    def rport(self) -> int | None:
        """The ``rport`` port a server filled in (RFC 3581 section 4); None if bare or absent."""
        raw = self.param("rport")
        return int(raw) if raw is not None else None

    @property
    def has_rport(self) -> bool:
        """True if ``rport`` is present, bare (a request asking for it) or with a value."""
        return self.has_param("rport")

    @property
    def maddr(self) -> str | None:
        """The ``maddr`` parameter, or None."""
        return self.param("maddr")

    @property
    def ttl(self) -> int | None:
        """The ``ttl`` parameter as an int, or None."""
        raw = self.param("ttl")
        return int(raw) if raw is not None else None

    @property
    def sent_by(self) -> str:
        """``host`` or ``host:port``."""
        return self.host if self.port is None else f"{self.host}:{self.port}"

    def __str__(self) -> str:
        return f"{self.protocol}/{self.transport} {self.sent_by}{_format_params(self.params)}"


# -- CSeq -------------------------------------------------------------------------------

_MAX_CSEQ = 2**31 - 1


@dataclass(frozen=True, slots=True)
class CSeq:
    """The CSeq header (RFC 3261 section 20.16): sequence number and method.

    RFC 3261 8.1.1.5: "The sequence number value MUST be expressible as a 32-bit unsigned
    integer and MUST be less than 2**31."
    """

    seq: int
    method: str

    def __post_init__(self) -> None:
        if not 0 <= self.seq <= _MAX_CSEQ:
            raise LocalProtocolError(f"CSeq number out of range: {self.seq}")
        if not _is_token(self.method):
            raise LocalProtocolError(f"CSeq method is not a token: {self.method!r}")

    @classmethod
    def parse(cls, value: str, *, where: str = "CSeq") -> CSeq:
        """Parse ``"<number> <method>"``; leading zeros are allowed (RFC 4475 3.1.1.1).

        Raises:
            SipParseError: not two fields, not a number below 2**31, not a token.
        """
        fields = _split_ws(value)
        if len(fields) != 2:
            raise SipParseError(f"expected '<number> <method>', got {value!r}", where=where)
        number, method = fields
        digits = number.lstrip("0") or "0"
        if not all(c in _DIGITS for c in number) or len(digits) > 10 or int(digits) > _MAX_CSEQ:
            raise SipParseError(f"sequence number is not in 0..2**31-1: {number!r}", where=where)
        if not _is_token(method):
            raise SipParseError(f"method is not a token: {method!r}", where=where)
        return cls(int(digits), method)

    def __str__(self) -> str:
        return f"{self.seq} {self.method}"


# -- NameAddr ---------------------------------------------------------------------------


def _display_word_ok(word: str) -> bool:
    """True for a word of an unquoted display name: a token, or any non-ASCII text, which
    user agents send although RFC 3261 wants it quoted."""
    return all(c in TOKEN_CHARS or ord(c) > 0x7F for c in word)


@dataclass(frozen=True, slots=True)
class NameAddr(Parameterized):
    """A name-addr or addr-spec with header parameters (RFC 3261 sections 20.10, 20.20).

    ``display_name`` is unquoted and unescaped (None when absent, ``""`` for ``""``).
    ``params`` are the header parameters after the URI (``tag``, ``expires``, ``q``, ...).
    ``bracketed`` records whether the URI was written in ``<>``; it is not compared.
    """

    display_name: str | None
    uri: Uri
    params: tuple[Param, ...] = ()
    bracketed: bool = field(default=True, compare=False)

    def __post_init__(self) -> None:
        if self.display_name is not None and (
            "\r" in self.display_name or "\n" in self.display_name
        ):
            raise LocalProtocolError("a display name cannot contain CR or LF")

    @classmethod
    def parse(cls, value: str, *, where: str = "name-addr") -> NameAddr:
        """Parse ``"Bob" <sip:b@x>;tag=1``, ``Bob <sip:b@x>``, ``<sip:b@x>`` or ``sip:b@x;tag=1``.

        In the addr-spec form (no ``<>``), everything after the first ``;`` is header
        parameters, as RFC 3261 section 20.10 says; such a URI may not contain ``?``.

        Raises:
            SipParseError: unterminated quote or ``<``, a display name that is not tokens
                or a quoted-string (RFC 4475 3.1.2.15), a bad URI, bad parameters.
        """
        s = value.strip(_WS)
        display: str | None = None
        if s.startswith('"'):
            quoted, i = _read_quoted(s, 0, where)
            display = _unquote(quoted)
            i = _skip_ws(s, i)
            if i >= len(s) or s[i] != "<":
                raise SipParseError(
                    f"expected '<' after the display name in {value!r}", where=where
                )
        else:
            i = s.find("<")
            if i >= 0:
                words = _split_ws(s[:i])
                if not all(_display_word_ok(w) for w in words):
                    raise SipParseError(
                        f"display name must be tokens or a quoted string in {value!r}", where=where
                    )
                display = " ".join(words) if words else None
        if i >= 0:
            end = s.find(">", i)
            if end < 0:
                raise SipParseError(f"unterminated '<' in {value!r}", where=where)
            uri_text = s[i + 1 : end]
            if uri_text != uri_text.strip(_WS):
                # RFC 4475 section 3.1.2.14: "reasonable to reject ... with a 400".
                raise SipParseError(f"white space inside '<>' in {value!r}", where=where)
            uri = parse_uri(uri_text, where=where)
            return cls(display, uri, _parse_params(s, end + 1, where), bracketed=True)
        # addr-spec: the URI ends at the first ";" or white space.
        j = 0
        while j < len(s) and s[j] not in ";" + _WS:
            j += 1
        uri_text = s[:j]
        if "?" in uri_text:
            raise SipParseError(
                f"a URI with headers must be enclosed in '<>': {value!r}", where=where
            )
        uri = parse_uri(uri_text, where=where)
        return cls(None, uri, _parse_params(s, j, where), bracketed=False)

    # -- parameters -----------------------------------------------------------------------

    @property
    def tag(self) -> str | None:
        """The ``tag`` parameter of From/To (RFC 3261 section 19.3), or None."""
        return self.param("tag")

    def with_tag(self, tag: str) -> NameAddr:
        """A copy with ``;tag=`` set."""
        return self.with_param("tag", tag)

    @property
    def sip_uri(self) -> SipUri | None:
        """The URI if it is a SIP or SIPS URI, else None."""
        return self.uri if isinstance(self.uri, SipUri) else None

    def __str__(self) -> str:
        uri = str(self.uri)
        params = _format_params(self.params)
        if self.display_name is not None:
            return f"{_quote(self.display_name)} <{uri}>{params}"
        if self.bracketed or self.params or any(c in uri for c in ",;?"):
            return f"<{uri}>{params}"
        return uri
