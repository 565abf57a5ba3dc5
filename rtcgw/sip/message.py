"""SIP messages as immutable values.

A message keeps its headers as an ordered tuple of ``Header`` lines with their names as
received (compact or long, any case): a B2BUA must re-emit what it does not understand,
in the order it came. Typed views (Via, CSeq, From/To, Contact, Route, ...) are parsed on
demand from those lines by ``rtcgw.sip.headers``.

"Changing" a message means building a new one (``with_header``, ``with_body``, or
``dataclasses.replace``). No I/O, no clock.

Serialisation (``bytes(message)``) emits the start line, the header lines as stored and
the body. ``with_body`` keeps Content-Length equal to the body's length, which stream
transports need (RFC 3261 section 18.3); nothing is added behind the caller's back.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Self

from rtcgw.sip.errors import SipParseError
from rtcgw.sip.headers import CSeq, NameAddr, Via, is_list_header, split_header_values
from rtcgw.sip.status import reason_phrase

if TYPE_CHECKING:
    from rtcgw.sip.uri import Uri

__all__ = [
    "COMPACT_FORMS",
    "Header",
    "Message",
    "Request",
    "Response",
    "canonical_name",
    "make_response",
]

#: RFC 3261 section 7.3.3 and later RFCs: compact header names and their long forms.
COMPACT_FORMS: dict[str, str] = {
    "a": "accept-contact",  # RFC 3841
    "b": "referred-by",  # RFC 3892
    "c": "content-type",
    "d": "request-disposition",  # RFC 3841
    "e": "content-encoding",
    "f": "from",
    "i": "call-id",
    "j": "reject-contact",  # RFC 3841
    "k": "supported",
    "l": "content-length",
    "m": "contact",
    "n": "identity-info",  # RFC 4474
    "o": "event",  # RFC 6665
    "r": "refer-to",  # RFC 3515
    "s": "subject",
    "t": "to",
    "u": "allow-events",  # RFC 6665
    "v": "via",
    "x": "session-expires",  # RFC 4028
    "y": "identity",  # RFC 8224
}

#: Conventional spelling of the long names we emit, for ``Header.display``.
_CANONICAL_SPELLING: dict[str, str] = {
    "call-id": "Call-ID",
    "cseq": "CSeq",
    "www-authenticate": "WWW-Authenticate",
    "mime-version": "MIME-Version",
    "rack": "RAck",
    "rseq": "RSeq",
}


def canonical_name(name: str) -> str:
    """The lower-case long form of a header name (``"v"`` and ``"VIA"`` give ``"via"``)."""
    low = name.strip().lower()
    return COMPACT_FORMS.get(low, low)


@dataclass(frozen=True, slots=True)
class Header:
    """One header line: the name as received and its value, unfolded and trimmed."""

    name: str
    value: str

    @property
    def key(self) -> str:
        """The lower-case long form of the name, for comparisons."""
        return canonical_name(self.name)

    @property
    def display(self) -> str:
        """The long name in its conventional spelling (``Call-ID``, ``Content-Length``)."""
        key = self.key
        return _CANONICAL_SPELLING.get(key) or "-".join(p.capitalize() for p in key.split("-"))


def _decimal(raw: str, limit: int, where: str) -> int:
    """A decimal number in ``0..limit``; leading zeros are allowed (RFC 4475 3.1.1.1).

    ASCII digits only (``str.isdigit`` also accepts "²", which ``int`` rejects), and the
    length is checked before ``int()`` so that a long digit string cannot raise ValueError.
    """
    raw = raw.strip()
    digits = raw.lstrip("0") or "0"
    if not raw.isascii() or not raw.isdigit() or len(digits) > len(str(limit)):
        raise SipParseError(f"not a number in 0..{limit}: {raw!r}", where=where)
    value = int(digits)
    if value > limit:
        raise SipParseError(f"not a number in 0..{limit}: {raw!r}", where=where)
    return value


class _Message:
    """What requests and responses share: header access, typed views, body."""

    __slots__ = ()

    headers: tuple[Header, ...]
    body: bytes
    version: str

    # -- generic header access ------------------------------------------------------------

    def header_lines(self, name: str) -> list[Header]:
        """Every header line with this name (compact or long, any case), in order."""
        key = canonical_name(name)
        return [h for h in self.headers if h.key == key]

    def get(self, name: str) -> str | None:
        """The value of the first line with this name, or None."""
        key = canonical_name(name)
        for h in self.headers:
            if h.key == key:
                return h.value
        return None

    def has(self, name: str) -> bool:
        """True if at least one line with this name is present."""
        return self.get(name) is not None

    def values(self, name: str) -> list[str]:
        """All values of a header, comma-separated lists split (RFC 3261 section 7.3.1).

        Headers whose grammar is not a comma list (Authorization, Date, ...) are returned
        one value per line, unsplit.
        """
        key = canonical_name(name)
        out: list[str] = []
        for h in self.headers:
            if h.key != key:
                continue
            if is_list_header(key):
                out.extend(split_header_values(h.value, where=h.name))
            else:
                out.append(h.value)
        return out

    def _require(self, name: str) -> str:
        value = self.get(name)
        if value is None:
            raise SipParseError("mandatory header missing", where=name)
        return value

    # -- building modified copies ---------------------------------------------------------

    def with_header(self, name: str, value: str) -> Self:
        """A copy with one more header line at the end."""
        return replace(self, headers=(*self.headers, Header(name, value)))  # type: ignore[type-var]

    def with_header_first(self, name: str, value: str) -> Self:
        """A copy with one more header line before all others (a new top Via)."""
        return replace(self, headers=(Header(name, value), *self.headers))  # type: ignore[type-var]

    def without_header(self, name: str) -> Self:
        """A copy without any line of this header."""
        key = canonical_name(name)
        kept = tuple(h for h in self.headers if h.key != key)
        return replace(self, headers=kept)  # type: ignore[type-var]

    def with_header_replaced(self, name: str, value: str) -> Self:
        """A copy where this header has exactly one line, at the place of its first line."""
        key = canonical_name(name)
        out: list[Header] = []
        placed = False
        for h in self.headers:
            if h.key != key:
                out.append(h)
            elif not placed:
                out.append(Header(h.name, value))
                placed = True
        if not placed:
            out.append(Header(name, value))
        return replace(self, headers=tuple(out))  # type: ignore[type-var]

    def with_body(self, body: bytes, content_type: str | None = None) -> Self:
        """A copy carrying ``body``, with Content-Length (and Content-Type) set to match.

        An empty body removes Content-Type and sets Content-Length: 0.
        """
        msg = self.with_header_replaced("Content-Length", str(len(body)))
        if not body:
            msg = msg.without_header("Content-Type")
        elif content_type is not None:
            msg = msg.with_header_replaced("Content-Type", content_type)
        return replace(msg, body=body)  # type: ignore[type-var]

    # -- typed views ----------------------------------------------------------------------

    @property
    def vias(self) -> list[Via]:
        """Every Via, top first."""
        return [Via.parse(v) for v in self.values("Via")]

    @property
    def top_via(self) -> Via:
        """The topmost Via; raises ``SipParseError`` if there is none."""
        values = self.values("Via")
        if not values:
            raise SipParseError("mandatory header missing", where="Via")
        return Via.parse(values[0])

    @property
    def call_id(self) -> str:
        """The Call-ID value."""
        return self._require("Call-ID")

    @property
    def cseq(self) -> CSeq:
        """The CSeq: sequence number and method."""
        return CSeq.parse(self._require("CSeq"))

    @property
    def from_(self) -> NameAddr:
        """The From header as a name-addr with its parameters."""
        return NameAddr.parse(self._require("From"))

    @property
    def to(self) -> NameAddr:
        """The To header as a name-addr with its parameters."""
        return NameAddr.parse(self._require("To"))

    @property
    def from_tag(self) -> str | None:
        """The From tag, or None."""
        return self.from_.tag

    @property
    def to_tag(self) -> str | None:
        """The To tag, or None (an out-of-dialog request, a 100 Trying)."""
        return self.to.tag

    @property
    def contacts(self) -> list[NameAddr]:
        """Every Contact as a name-addr; ``Contact: *`` yields an empty list (see ``star``)."""
        return [NameAddr.parse(v) for v in self.values("Contact") if v.strip() != "*"]

    @property
    def contact_star(self) -> bool:
        """True for ``Contact: *`` (REGISTER removing all bindings, RFC 3261 10.2.2)."""
        return any(v.strip() == "*" for v in self.values("Contact"))

    @property
    def routes(self) -> list[NameAddr]:
        """Every Route entry, in order."""
        return [NameAddr.parse(v) for v in self.values("Route")]

    @property
    def record_routes(self) -> list[NameAddr]:
        """Every Record-Route entry, in order."""
        return [NameAddr.parse(v) for v in self.values("Record-Route")]

    @property
    def max_forwards(self) -> int | None:
        """Max-Forwards as an int, or None if absent."""
        raw = self.get("Max-Forwards")
        return None if raw is None else _decimal(raw, 255, "Max-Forwards")

    @property
    def content_length(self) -> int | None:
        """Content-Length as an int, or None if absent."""
        raw = self.get("Content-Length")
        return None if raw is None else _decimal(raw, 2**31 - 1, "Content-Length")

    @property
    def content_type(self) -> str | None:
        """The media type of the body, lower-case, without parameters (``application/sdp``)."""
        raw = self.get("Content-Type")
        if raw is None:
            return None
        return raw.split(";", 1)[0].strip().lower()

    def option_tags(self, name: str) -> set[str]:
        """The option tags of Supported, Require, Proxy-Require or Unsupported, lower-case."""
        return {v.strip().lower() for v in self.values(name) if v.strip()}

    def _header_bytes(self) -> bytes:
        return b"".join(f"{h.name}: {h.value}\r\n".encode() for h in self.headers)


@dataclass(frozen=True, slots=True)
class Request(_Message):
    """A SIP request: method, Request-URI, header lines, body."""

    method: str
    uri: Uri
    headers: tuple[Header, ...] = ()
    body: bytes = b""
    version: str = "SIP/2.0"

    def __bytes__(self) -> bytes:
        start = f"{self.method} {self.uri} {self.version}\r\n".encode()
        return start + self._header_bytes() + b"\r\n" + self.body


@dataclass(frozen=True, slots=True)
class Response(_Message):
    """A SIP response: status code, reason phrase, header lines, body."""

    status: int
    reason: str
    headers: tuple[Header, ...] = ()
    body: bytes = b""
    version: str = "SIP/2.0"

    @property
    def provisional(self) -> bool:
        """True for 1xx."""
        return 100 <= self.status < 200

    @property
    def success(self) -> bool:
        """True for 2xx."""
        return 200 <= self.status < 300

    @property
    def final(self) -> bool:
        """True for 2xx-6xx."""
        return self.status >= 200

    def __bytes__(self) -> bytes:
        start = f"{self.version} {self.status} {self.reason}\r\n".encode()
        return start + self._header_bytes() + b"\r\n" + self.body


Message = Request | Response

#: Methods whose 1xx (but 100) and 2xx responses create a dialog (RFC 3261 12.1, RFC 6665).
_DIALOG_CREATING = frozenset({"INVITE", "SUBSCRIBE", "REFER", "NOTIFY"})


def make_response(
    request: Request,
    status: int,
    reason: str | None = None,
    *,
    to_tag: str | None = None,
    headers: tuple[Header, ...] = (),
    body: bytes = b"",
    content_type: str | None = None,
) -> Response:
    """Build a response to ``request`` as RFC 3261 section 8.2.6.2 says.

    Via (all values, in order), From, To, Call-ID and CSeq are copied; ``to_tag`` is added
    to To unless the request already had one (never on 100 Trying). Timestamp is copied
    into 100 Trying (section 8.2.6.1); Record-Route is copied into 101-299 responses to
    dialog-creating requests (section 12.1.1). ``headers`` follow, then Content-Length.
    """
    copied: list[Header] = []
    for h in request.headers:
        key = h.key
        if key in ("via", "from", "call-id", "cseq"):
            copied.append(h)
        elif key == "to":
            value = h.value
            if to_tag is not None and status != 100 and NameAddr.parse(value).tag is None:
                value = str(NameAddr.parse(value).with_tag(to_tag))
            copied.append(Header(h.name, value))
        elif (key == "timestamp" and status == 100) or (
            key == "record-route" and 100 < status < 300 and request.method in _DIALOG_CREATING
        ):
            copied.append(h)
    copied.extend(headers)
    if body and content_type is not None:
        copied.append(Header("Content-Type", content_type))
    copied.append(Header("Content-Length", str(len(body))))
    return Response(
        status=status,
        reason=reason if reason is not None else reason_phrase(status),
        headers=tuple(copied),
        body=body,
    )
