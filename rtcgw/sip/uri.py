"""URIs in SIP messages: SIP and SIPS (RFC 3261 section 19.1), tel (RFC 3966), others.

``parse_uri`` turns the text of a Request-URI or of a name-addr's ``<...>`` into one of
three immutable values:

- ``SipUri`` for ``sip:`` and ``sips:``, broken into user, password, host, port, URI
  parameters and headers, with %-escapes decoded (RFC 3261 section 19.1.2);
- ``TelUri`` for ``tel:`` (RFC 3966), kept as written;
- ``AbsoluteUri`` for every other scheme, kept opaque. A Request-URI with an unknown
  scheme parses; answering it with 416 is the user agent's business (RFC 3261 8.2.2.1).

Rules:

1. ``str(uri)`` is the wire form, re-escaped so that it parses back to an equal value:
   ``parse_uri(str(u)) == u`` for every ``u`` this module produces or accepts.
2. The dataclasses' ``==`` is structural (field by field, case-sensitive). URI
   *equivalence* as RFC 3261 section 19.1.4 defines it (case-insensitive host and
   parameters, ``transport``/``user``/``ttl``/``method``/``maddr`` that must match, ...)
   is ``SipUri.equivalent``.
3. Bad input raises ``SipParseError`` and nothing else; a value built in code with
   impossible fields raises ``LocalProtocolError``.

Parsing is a little more liberal than the grammar where real user agents are known to be
sloppy (any printable ASCII but ``<>"`` in the user part, ``_`` in host names, a URI header
without ``=``), and strict where sloppiness would be ambiguous (whitespace, bad escapes,
ports, IPv6 references). No I/O, no DNS: a host name is never compared with an address.
"""

from __future__ import annotations

import ipaddress
import string
from dataclasses import dataclass, replace
from typing import Self, TypeAlias
from urllib.parse import quote, unquote

from rtcgw.sip.errors import LocalProtocolError, SipParseError

__all__ = [
    "HOST_CHARS",
    "AbsoluteUri",
    "Param",
    "Parameterized",
    "SipUri",
    "TelUri",
    "Uri",
    "find_param",
    "parse_host_port",
    "parse_uri",
]

Param: TypeAlias = tuple[str, str | None]

_HEX = frozenset(string.hexdigits)
_DIGITS = frozenset(string.digits)
_SCHEME_CHARS = frozenset(string.ascii_letters + string.digits + "+-.")
#: Printable ASCII without space and the characters that delimit a URI in a header.
_URI_CHARS = frozenset(chr(c) for c in range(0x21, 0x7F)) - frozenset('<>"')
HOST_CHARS = frozenset(string.ascii_letters + string.digits + "-._")
_IPV6_CHARS = frozenset(string.hexdigits + ":.")
_TEL_NUMBER_CHARS = frozenset(string.hexdigits + "*#-.()")

# Characters written unescaped on output, per RFC 3261 section 25.1 (``quote`` always keeps
# letters, digits and "_.-~"; these strings add the rest of each rule).
#: unreserved / user-unreserved ("&" / "=" / "+" / "$" / "," / ";" / "?" / "/")
_USER_SAFE = "!*'()&=+$,;?/"
#: unreserved / "&" / "=" / "+" / "$" / ","
_PASSWORD_SAFE = "!*'()&=+$,"
#: unreserved / param-unreserved ("[" / "]" / "/" / ":" / "&" / "+" / "$")
_PARAM_SAFE = "!*'()[]/:&+$"
#: unreserved / hnv-unreserved ("[" / "]" / "/" / "?" / ":" / "+" / "$")
_HEADER_SAFE = "!*'()[]/?:+$"

#: RFC 3261 19.1.4: "A URI that includes ... a user, ttl, method, maddr or transport
#: parameter ... [that] appear[s] in only one URI ... never match."
_MUST_MATCH_PARAMS = ("user", "ttl", "method", "maddr", "transport")


def _show(text: str) -> str:
    """``text`` quoted for an error message, shortened if long."""
    return repr(text if len(text) <= 80 else text[:77] + "...")


def _unescape(raw: str, what: str, where: str) -> str:
    """Decode %-escapes (RFC 3261 25.1 ``escaped``); octets that are not UTF-8 survive as
    surrogate escapes, so that ``_escape`` writes them back unchanged."""
    i = raw.find("%")
    while i >= 0:
        if i + 2 >= len(raw) or raw[i + 1] not in _HEX or raw[i + 2] not in _HEX:
            raise SipParseError(f"bad %-escape in {what} {_show(raw)}", where=where)
        i = raw.find("%", i + 3)
    return unquote(raw, encoding="utf-8", errors="surrogateescape")


def _escape(text: str, safe: str) -> str:
    return quote(text, safe=safe, encoding="utf-8", errors="surrogateescape")


def _check_uri_chars(text: str, where: str) -> None:
    for ch in text:
        if ch not in _URI_CHARS:
            raise SipParseError(f"character {ch!r} not allowed in URI {_show(text)}", where=where)


def _parse_port(raw: str, text: str, where: str) -> int:
    if not raw or len(raw) > 5 or not all(c in _DIGITS for c in raw) or int(raw) > 65535:
        raise SipParseError(f"bad port {raw!r} in {_show(text)}", where=where)
    return int(raw)


def _check_ipv6_reference(host: str, text: str, where: str) -> None:
    inner = host[1:-1]
    if not inner or not all(c in _IPV6_CHARS for c in inner):
        raise SipParseError(f"bad IPv6 reference {host!r} in {_show(text)}", where=where)
    try:
        ipaddress.IPv6Address(inner)
    except ValueError:
        raise SipParseError(f"bad IPv6 reference {host!r} in {_show(text)}", where=where) from None


def parse_host_port(hostport: str, text: str, where: str) -> tuple[str, int | None]:
    """RFC 3261 25.1 ``hostport``: hostname, IPv4address or IPv6reference, then [":" port]."""
    if hostport.startswith("["):
        end = hostport.find("]")
        if end < 0:
            raise SipParseError(f"unterminated IPv6 reference in {_show(text)}", where=where)
        host, after = hostport[: end + 1], hostport[end + 1 :]
        _check_ipv6_reference(host, text, where)
        if not after:
            return host, None
        if not after.startswith(":"):
            raise SipParseError(f"junk after IPv6 reference in {_show(text)}", where=where)
        return host, _parse_port(after[1:], text, where)
    host, colon, port_text = hostport.partition(":")
    if not host or not all(c in HOST_CHARS for c in host):
        raise SipParseError(f"bad host {host!r} in {_show(text)}", where=where)
    return host, (_parse_port(port_text, text, where) if colon else None)


def _hosts_equal(a: str, b: str) -> bool:
    if a.startswith("[") and b.startswith("["):
        try:
            return ipaddress.IPv6Address(a[1:-1]) == ipaddress.IPv6Address(b[1:-1])
        except ValueError:
            return a.lower() == b.lower()
    return a.lower() == b.lower()


def find_param(params: tuple[Param, ...], name: str) -> Param | None:
    """The first ``(name, value)`` pair whose name matches case-insensitively, or None."""
    low = name.lower()
    for item in params:
        if item[0].lower() == low:
            return item
    return None


def _with_param(params: tuple[Param, ...], name: str, value: str | None) -> tuple[Param, ...]:
    """``params`` with ``name`` set to ``value``: replaced in place, or appended."""
    low = name.lower()
    out: list[Param] = []
    placed = False
    for item in params:
        if item[0].lower() != low:
            out.append(item)
        elif not placed:
            out.append((item[0], value))
            placed = True
    if not placed:
        out.append((name, value))
    return tuple(out)


def _without_param(params: tuple[Param, ...], name: str) -> tuple[Param, ...]:
    low = name.lower()
    return tuple(item for item in params if item[0].lower() != low)


class Parameterized:
    """The parameter accessors that URIs, Via and name-addr values share.

    Subclasses are frozen dataclasses with a ``params`` field; names compare
    case-insensitively and order is kept (RFC 3261 sections 19.1.4 and 7.3.1).
    """

    __slots__ = ()

    params: tuple[Param, ...]

    def param(self, name: str) -> str | None:
        """The value of parameter ``name`` (case-insensitive); None if absent or bare."""
        item = find_param(self.params, name)
        return None if item is None else item[1]

    def has_param(self, name: str) -> bool:
        """True if parameter ``name`` is present, with or without a value."""
        return find_param(self.params, name) is not None

    def with_param(self, name: str, value: str | None = None) -> Self:
        """A copy with ``name`` set to ``value`` (replaced where it was, else appended)."""
        return replace(self, params=_with_param(self.params, name, value))  # type: ignore[type-var]

    def without_param(self, name: str) -> Self:
        """A copy without any parameter called ``name``."""
        return replace(self, params=_without_param(self.params, name))  # type: ignore[type-var]


@dataclass(frozen=True, slots=True)
class SipUri(Parameterized):
    """A ``sip:`` or ``sips:`` URI (RFC 3261 section 19.1.1), %-escapes decoded.

    ``host`` is kept as written (IPv6 with its brackets, ``"[::1]"``); compare hosts with
    ``equivalent``. ``params`` and ``headers`` keep their order; a parameter without
    ``=value`` (``;lr``) has the value None.
    """

    scheme: str = "sip"
    user: str | None = None
    password: str | None = None
    host: str = ""
    port: int | None = None
    params: tuple[Param, ...] = ()
    headers: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        if self.scheme not in ("sip", "sips"):
            raise LocalProtocolError(f"SipUri scheme must be 'sip' or 'sips', not {self.scheme!r}")
        if not self.host:
            raise LocalProtocolError("SipUri needs a host")
        if self.port is not None and not 0 <= self.port <= 65535:
            raise LocalProtocolError(f"SipUri port out of range: {self.port}")

    # -- parameters -----------------------------------------------------------------------

    @property
    def transport(self) -> str | None:
        """The ``transport`` parameter, lower-case (``"udp"``, ``"tcp"``, ``"ws"``), or None."""
        value = self.param("transport")
        return value.lower() if value else None

    @property
    def lr(self) -> bool:
        """True for a loose-routing URI (``;lr``, RFC 3261 section 19.1.1)."""
        return self.has_param("lr")

    @property
    def maddr(self) -> str | None:
        """The ``maddr`` parameter, or None."""
        return self.param("maddr")

    @property
    def user_param(self) -> str | None:
        """The ``user`` URI parameter (``"phone"``, ``"ip"``), lower-case, or None."""
        value = self.param("user")
        return value.lower() if value else None

    @property
    def host_port(self) -> str:
        """``host`` or ``host:port``."""
        return self.host if self.port is None else f"{self.host}:{self.port}"

    # -- comparison -----------------------------------------------------------------------

    def equivalent(self, other: object) -> bool:
        """True if the two URIs are equivalent by the rules of RFC 3261 section 19.1.4.

        User and password compare case-sensitively, everything else case-insensitively;
        an omitted port or transport never equals an explicit default; ``user``, ``ttl``,
        ``method``, ``maddr`` and ``transport`` must be in both or neither; other
        parameters are compared only when both URIs have them; headers must all match.
        """
        if not isinstance(other, SipUri):
            return False
        if (self.scheme, self.user, self.password, self.port) != (
            other.scheme,
            other.user,
            other.password,
            other.port,
        ):
            return False
        if not _hosts_equal(self.host, other.host):
            return False
        mine = {k.lower(): v for k, v in reversed(self.params)}
        theirs = {k.lower(): v for k, v in reversed(other.params)}
        if any((name in mine) != (name in theirs) for name in _MUST_MATCH_PARAMS):
            return False
        for name in mine.keys() & theirs.keys():
            a, b = mine[name], theirs[name]
            if a != b and (a is None or b is None or a.lower() != b.lower()):
                return False

        def _headers(uri: SipUri) -> list[tuple[str, str]]:
            return sorted((k.lower(), v.lower()) for k, v in uri.headers)

        return _headers(self) == _headers(other)

    # -- wire form ------------------------------------------------------------------------

    def __str__(self) -> str:
        out = [self.scheme, ":"]
        if self.user is not None:
            out.append(_escape(self.user, _USER_SAFE))
            if self.password is not None:
                out.append(":" + _escape(self.password, _PASSWORD_SAFE))
            out.append("@")
        out.append(self.host_port)
        for name, value in self.params:
            out.append(";" + _escape(name, _PARAM_SAFE))
            if value is not None:
                out.append("=" + _escape(value, _PARAM_SAFE))
        if self.headers:
            out.append("?")
            out.append(
                "&".join(
                    f"{_escape(name, _HEADER_SAFE)}={_escape(value, _HEADER_SAFE)}"
                    for name, value in self.headers
                )
            )
        return "".join(out)


@dataclass(frozen=True, slots=True)
class TelUri(Parameterized):
    """A ``tel:`` URI (RFC 3966): the number and the parameters, both as written."""

    number: str
    params: tuple[Param, ...] = ()

    @property
    def global_number(self) -> bool:
        """True for a global number (``tel:+1-201-555-0123``), False for a local one."""
        return self.number.startswith("+")

    def __str__(self) -> str:
        params = "".join(f";{k}" if v is None else f";{k}={v}" for k, v in self.params)
        return f"tel:{self.number}{params}"


@dataclass(frozen=True, slots=True)
class AbsoluteUri:
    """A URI of a scheme rtcgw does not interpret (``http:``, ``urn:``, ...), kept opaque."""

    scheme: str
    rest: str

    def __str__(self) -> str:
        return f"{self.scheme}:{self.rest}"


Uri: TypeAlias = SipUri | TelUri | AbsoluteUri


def _split_params(raw: str, text: str, where: str) -> tuple[Param, ...]:
    params: list[Param] = []
    for item in raw.split(";"):
        name, eq, value = item.partition("=")
        if not name:
            raise SipParseError(f"empty URI parameter in {_show(text)}", where=where)
        params.append(
            (
                _unescape(name, "parameter", where),
                _unescape(value, "parameter", where) if eq else None,
            )
        )
    return tuple(params)


def _parse_sip(scheme: str, rest: str, text: str, where: str) -> SipUri:
    """``rest`` is what follows ``sip:``; RFC 3261 25.1 ``SIP-URI``."""
    _check_uri_chars(rest, where)
    user: str | None = None
    password: str | None = None
    # "@" appears unescaped nowhere but at the end of userinfo, which may itself contain
    # ";", "?" and "/" (RFC 3261 25.1 user-unreserved, RFC 4475 section 3.1.1.9).
    userinfo, at, hostpart = rest.partition("@")
    if not at:
        userinfo, hostpart = "", rest
    else:
        user_raw, colon, password_raw = userinfo.partition(":")
        if not user_raw:
            raise SipParseError(f"empty user part in {_show(text)}", where=where)
        user = _unescape(user_raw, "user part", where)
        if colon:
            password = _unescape(password_raw, "password", where)
    hostpart, question, headers_raw = hostpart.partition("?")
    hostport, semicolon, params_raw = hostpart.partition(";")
    host, port = parse_host_port(hostport, text, where)
    params = _split_params(params_raw, text, where) if semicolon else ()
    headers: list[tuple[str, str]] = []
    if question:
        for item in headers_raw.split("&"):
            name, _eq, value = item.partition("=")
            if not name:
                raise SipParseError(f"empty URI header in {_show(text)}", where=where)
            headers.append((_unescape(name, "header", where), _unescape(value, "header", where)))
    return SipUri(
        scheme=scheme,
        user=user,
        password=password,
        host=host,
        port=port,
        params=params,
        headers=tuple(headers),
    )


def _parse_tel(rest: str, text: str, where: str) -> TelUri:
    """RFC 3966 section 3 ``telephone-subscriber``: number, then ``;name[=value]``."""
    _check_uri_chars(rest, where)
    number, semicolon, params_raw = rest.partition(";")
    digits = number[1:] if number.startswith("+") else number
    if not digits or not all(c in _TEL_NUMBER_CHARS for c in digits):
        raise SipParseError(f"bad telephone number in {_show(text)}", where=where)
    params: list[Param] = []
    if semicolon:
        for item in params_raw.split(";"):
            name, eq, value = item.partition("=")
            if not name or (eq and not value):
                raise SipParseError(f"bad tel parameter {item!r} in {_show(text)}", where=where)
            params.append((name, value if eq else None))
    return TelUri(number=number, params=tuple(params))


def parse_uri(text: str, *, where: str = "URI") -> Uri:
    """Parse a URI as it appears in a Request-URI or between ``<`` and ``>``.

    Args:
        text: the URI, without surrounding whitespace or brackets.
        where: what to name in the error (``"Request-URI"``, ``"Contact"``, ...).

    Returns:
        A ``SipUri`` for sip/sips, a ``TelUri`` for tel, an ``AbsoluteUri`` otherwise.

    Raises:
        SipParseError: the text is not a URI (no scheme, whitespace, bad escape, bad host
            or port, ...). Nothing else is raised, whatever the text.
    """
    scheme, colon, rest = text.partition(":")
    if not colon or not scheme or not scheme[0].isascii() or not scheme[0].isalpha():
        raise SipParseError(f"no scheme in {_show(text)}", where=where)
    if not all(c in _SCHEME_CHARS for c in scheme):
        raise SipParseError(f"bad scheme in {_show(text)}", where=where)
    scheme = scheme.lower()
    if not rest:
        raise SipParseError(f"nothing after the scheme in {_show(text)}", where=where)
    if scheme in ("sip", "sips"):
        return _parse_sip(scheme, rest, text, where)
    if scheme == "tel":
        return _parse_tel(rest, text, where)
    _check_uri_chars(rest, where)
    return AbsoluteUri(scheme=scheme, rest=rest)
