"""Parsing one SIP message from bytes (RFC 3261 sections 7 and 18.3).

``parse_message`` takes a whole message as it arrived: a UDP datagram, a WebSocket
message (RFC 7118), or the bytes ``StreamFramer`` cut from a TCP/TLS stream. It returns a
``Request`` or ``Response`` whose header lines are kept as received (names as written,
values unfolded and trimmed) and whose body is the raw bytes.

Rules:

1. Whatever the bytes, the only exception is ``SipParseError``; its ``status_hint`` says
   what to answer (400 in general, 505 for another SIP version, 501 for an unknown method
   whose CSeq does not match). Any other exception is a bug.
2. What every SIP element relies on is checked here, once, so that later code can trust
   it: the start line, Via (at least one, each parses), From, To, Call-ID and CSeq (exactly
   one each, and the CSeq method is the request's), Max-Forwards and Content-Length when
   present. Other headers are kept as they are, however odd (RFC 4475 section 3.1.1.1:
   "the receiving element ... must parse it as a header value").
3. Tolerated, as RFC 3261 asks or real peers need: CRLFs before the start line (section
   7.5), bare LF line ends, header folding (section 7.3.1), white space before the colon,
   compact and oddly cased names, a missing Content-Length (the body is the rest, section
   18.3 for datagrams and RFC 7118 section 5 for WebSocket), a Content-Length shorter than
   the rest (the extra octets are dropped, RFC 4475 section 3.1.1.8).

The header section must be UTF-8; the body is never decoded. No I/O.
"""

from __future__ import annotations

import re
from typing import Final

from rtcgw.sip.errors import SipParseError
from rtcgw.sip.headers import TOKEN_CHARS, CSeq, NameAddr, Via, split_header_values
from rtcgw.sip.message import Header, Request, Response
from rtcgw.sip.uri import SipUri, Uri, parse_uri

__all__ = ["KNOWN_METHODS", "parse_message"]

#: Methods of RFC 3261 and of the extensions rtcgw meets (RFC 3262 PRACK, RFC 3311 UPDATE,
#: RFC 3428 MESSAGE, RFC 3515 REFER, RFC 3903 PUBLISH, RFC 6086 INFO, RFC 6665
#: SUBSCRIBE/NOTIFY). Used only to choose 501 over 400 (RFC 4475 section 3.1.2.18).
KNOWN_METHODS: Final = frozenset(
    {
        "ACK",
        "BYE",
        "CANCEL",
        "INFO",
        "INVITE",
        "MESSAGE",
        "NOTIFY",
        "OPTIONS",
        "PRACK",
        "PUBLISH",
        "REFER",
        "REGISTER",
        "SUBSCRIBE",
        "UPDATE",
    }
)

_SIP_VERSION: Final = "SIP/2.0"
_HEADER_END = re.compile(rb"\r?\n\r?\n")
_ASCII_DIGITS = frozenset("0123456789")
_WS = " \t"
#: Headers a message may carry only once (RFC 3261 section 7.3.1: only list headers may
#: repeat). Content-Length is handled on its own: equal repeats are harmless.
_SINGLE: Final = (("from", "From"), ("to", "To"), ("call-id", "Call-ID"), ("cseq", "CSeq"))


def _number(raw: str, limit: int, where: str) -> int:
    """A decimal number in ``0..limit``, leading zeros allowed; the length is checked before
    ``int()`` so that no amount of digits costs time or raises ValueError."""
    digits = raw.lstrip("0") or "0"
    if not raw or not all(c in _ASCII_DIGITS for c in raw) or len(digits) > len(str(limit)):
        raise SipParseError(f"not a number in 0..{limit}: {raw!r}", where=where)
    value = int(digits)
    if value > limit:
        raise SipParseError(f"not a number in 0..{limit}: {raw!r}", where=where)
    return value


def _check_version(text: str, where: str) -> None:
    """RFC 3261 section 7.1: "The SIP-Version string is case-insensitive"; another SIP
    version is answered with 505 Version Not Supported (section 21.5.6)."""
    upper = text.upper()
    if upper == _SIP_VERSION:
        return
    if upper.startswith("SIP/"):
        raise SipParseError(f"unsupported SIP version {text!r}", where=where, status_hint=505)
    raise SipParseError(f"not a SIP version: {text!r}", where=where)


def _split_lines(data: bytes, start: int) -> tuple[list[str], int]:
    """The decoded lines of the header section from ``start``, and where the body begins."""
    match = _HEADER_END.search(data, start)
    if match is None:
        raise SipParseError("no empty line ends the header section", where="message")
    try:
        head = data[start : match.start()].decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SipParseError(
            f"header section is not UTF-8 (byte {start + exc.start})", where="message"
        ) from None
    lines = [line[:-1] if line.endswith("\r") else line for line in head.split("\n")]
    for number, line in enumerate(lines, start=1):
        if "\r" in line:
            raise SipParseError("CR not followed by LF", where=f"line {number}")
    return lines, match.end()


def _unfold(lines: list[str]) -> list[Header]:
    """Header lines, continuation lines joined (RFC 3261 section 7.3.1: "a continuation line
    begins with a space or horizontal tab"; all linear white space means one SP)."""
    parts: list[tuple[str, list[str]]] = []
    for number, line in enumerate(lines, start=2):
        if line[:1] in (" ", "\t"):
            if not parts:
                raise SipParseError("continuation line before any header", where=f"line {number}")
            parts[-1][1].append(line)
            continue
        name, colon, value = line.partition(":")
        name = name.rstrip(_WS)
        if not colon:
            raise SipParseError(f"header line without ':': {line[:60]!r}", where=f"line {number}")
        if not name or not all(c in TOKEN_CHARS for c in name):
            raise SipParseError(f"bad header name {name[:60]!r}", where=f"line {number}")
        parts.append((name, [value]))
    return [
        Header(name, " ".join(p.strip(_WS) for p in pieces if p.strip(_WS)))
        for name, pieces in parts
    ]


def _parse_request_line(line: str) -> tuple[str, Uri]:
    """RFC 3261 section 7.1: ``Method SP Request-URI SP SIP-Version``, single spaces.

    Extra or trailing spaces are rejected, as RFC 4475 sections 3.1.2.9 and 3.1.2.10 allow
    ("It is acceptable to reject this request as malformed").
    """
    fields = line.split(" ")
    if len(fields) != 3 or not all(fields):
        raise SipParseError(
            f"expected 'METHOD SP Request-URI SP SIP/2.0', got {line[:80]!r}", where="request line"
        )
    method, uri_text, version = fields
    if not all(c in TOKEN_CHARS for c in method):
        raise SipParseError(f"method is not a token: {method!r}", where="request line")
    _check_version(version, "request line")
    uri = parse_uri(uri_text, where="Request-URI")
    if isinstance(uri, SipUri) and uri.headers:
        # RFC 3261 section 19.1.1, table 1: headers are not allowed in a Request-URI;
        # RFC 4475 section 3.1.2.11 finds rejecting such a request acceptable.
        raise SipParseError("headers are not allowed in a Request-URI", where="Request-URI")
    return method, uri


def _parse_status_line(line: str) -> tuple[int, str]:
    """RFC 3261 section 7.2: ``SIP-Version SP Status-Code SP Reason-Phrase``.

    The reason may be empty (RFC 4475 section 3.1.1.13); so may the SP before it.
    """
    version, _sp, rest = line.partition(" ")
    _check_version(version, "status line")
    code, _sp, reason = rest.partition(" ")
    if len(code) != 3 or not all(c in _ASCII_DIGITS for c in code) or not 100 <= int(code) <= 699:
        # RFC 4475 section 3.1.2.19: a code above 699 must not break the receiver.
        raise SipParseError(f"status code is not 100..699: {code[:20]!r}", where="status line")
    return int(code), reason


def _body(headers: list[Header], rest: bytes) -> bytes:
    """The body: ``rest`` cut to Content-Length when there is one (RFC 3261 section 18.3)."""
    length: int | None = None
    for h in headers:
        if h.key != "content-length":
            continue
        value = _number(h.value, 2**31 - 1, "Content-Length")
        if length is not None and value != length:
            raise SipParseError(
                f"two different values, {length} and {value}", where="Content-Length"
            )
        length = value
    if length is None:
        return rest
    if length > len(rest):
        # RFC 4475 section 3.1.2.2: over a datagram transport, answer 400.
        raise SipParseError(
            f"announces {length} bytes but only {len(rest)} follow", where="Content-Length"
        )
    return rest[:length]


def _validate(headers: list[Header], method: str | None) -> None:
    """The checks of rule 2; ``method`` is the request method, None for a response."""
    keyed: dict[str, list[Header]] = {}
    for h in headers:
        keyed.setdefault(h.key, []).append(h)
    for key, display in _SINGLE:
        found = keyed.get(key, [])
        if not found:
            raise SipParseError("mandatory header missing", where=display)
        if len(found) > 1:
            raise SipParseError(f"appears {len(found)} times", where=display)
    vias = [v for h in keyed.get("via", []) for v in split_header_values(h.value, where="Via")]
    if not vias:
        raise SipParseError("mandatory header missing", where="Via")
    for value in vias:
        Via.parse(value)
    cseq = CSeq.parse(keyed["cseq"][0].value)
    # RFC 3261 section 8.1.1.5: "The method MUST match that of the request." This holds
    # for ACK and CANCEL too (sections 17.1.1.3 and 9.1 only fix their sequence number).
    if method is not None and cseq.method != method:
        raise SipParseError(
            f"method {cseq.method!r} does not match request method {method!r}",
            where="CSeq",
            status_hint=400 if method in KNOWN_METHODS else 501,
        )
    NameAddr.parse(keyed["from"][0].value, where="From")
    NameAddr.parse(keyed["to"][0].value, where="To")
    call_id = keyed["call-id"][0].value
    if not call_id or any(not c.isascii() or not c.isprintable() or c == " " for c in call_id):
        raise SipParseError(f"not a Call-ID: {call_id[:60]!r}", where="Call-ID")
    for h in keyed.get("max-forwards", []):
        # RFC 3261 section 20.22: "an integer in the range 0-255".
        _number(h.value, 255, "Max-Forwards")


def parse_message(data: bytes) -> Request | Response:
    """Parse one whole SIP message.

    Args:
        data: a datagram, a WebSocket message, or one message cut by ``StreamFramer``.

    Returns:
        The request or response, header lines as received, body as bytes.

    Raises:
        SipParseError: the message is malformed; ``str(error)`` says what and where, and
            ``status_hint`` what to answer if it is a request. Nothing else is raised: any
            other exception is a bug.
    """
    start = 0
    while start < len(data) and data[start] in b"\r\n":
        start += 1  # RFC 3261 section 7.5: ignore CRLFs before the start line.
    lines, body_start = _split_lines(data, start)
    start_line = lines[0]
    headers = _unfold(lines[1:])
    first_word = start_line.partition(" ")[0]
    if "/" in first_word:
        status, reason = _parse_status_line(start_line)
        _validate(headers, None)
        body = _body(headers, data[body_start:])
        return Response(status=status, reason=reason, headers=tuple(headers), body=body)
    method, uri = _parse_request_line(start_line)
    _validate(headers, method)
    body = _body(headers, data[body_start:])
    return Request(method=method, uri=uri, headers=tuple(headers), body=body)
