"""Cutting SIP messages out of a TCP or TLS byte stream (RFC 3261 section 18.3).

A stream has no message boundaries: a message's header section ends at the first empty
line, and its body is exactly Content-Length bytes long. RFC 3261 section 18.3: "In the
case of stream-oriented transports such as TCP, the Content-Length header field indicates
the size of the body. The Content-Length header field MUST be used with stream oriented
transports." A message without it is a framing error.

Between messages a peer may send keep-alives (RFC 5626 section 4.4.1): a double CRLF is a
"ping", which the receiver answers with a single CRLF "pong"; a single CRLF is a pong (or
one of the stray CRLFs RFC 3261 section 7.5 says to ignore) and is skipped.

Calling convention, as in h11: ``feed(data)`` whatever arrived, then call
``next_event()`` until it returns None. It returns

- ``bytes``: one whole message (header section and body), for ``parse_message``;
- ``KeepAlivePing.PING``: a ping arrived; write ``PONG`` to the same connection;
- ``None``: nothing complete yet; feed more.

The framer looks only at line ends and Content-Length; everything else is
``parse_message``'s job. It never reads a socket or a clock.

Error handling: a framing error (no or bad Content-Length, a message above
``max_message_bytes``, a stray CR) raises ``SipParseError``. The stream cannot be
resynchronised after that, so the connection should be closed (after a 400 or 513 answer
if the runtime wishes); every later ``next_event`` raises the same error again.
"""

from __future__ import annotations

import enum
import re
from typing import Final

from rtcgw.sip.errors import LocalProtocolError, SipParseError

__all__ = ["DEFAULT_MAX_MESSAGE_BYTES", "PONG", "KeepAlivePing", "StreamFramer"]

#: The default limit on one message, header section and body together.
DEFAULT_MAX_MESSAGE_BYTES: Final = 65536

#: RFC 5626 section 4.4.1: the answer to a ping is a single CRLF.
PONG: Final = b"\r\n"

_HEADER_END = re.compile(rb"\r?\n\r?\n")
_PING = b"\r\n\r\n"
_CONTENT_LENGTH_NAMES = (b"content-length", b"l")


class KeepAlivePing(enum.Enum):
    """A keep-alive ping (CRLFCRLF, RFC 5626 section 4.4.1) arrived between messages."""

    PING = "ping"  #: answer with ``PONG`` on the same connection


def _too_large(size: int, limit: int) -> SipParseError:
    return SipParseError(
        f"message of at least {size} bytes exceeds the limit of {limit}",
        where="message",
        status_hint=513,
    )


def _content_length(head: bytes, limit: int) -> int:
    """The Content-Length of a header section (start line first, no final empty line).

    Returns ``limit + 1`` for any value above ``limit``, so that no digit string is
    converted whole.
    """
    lines = [line.rstrip(b"\r") for line in head.split(b"\n")[1:]]
    length: int | None = None
    for i, line in enumerate(lines):
        name, colon, value = line.partition(b":")
        if not colon or name.strip(b" \t").lower() not in _CONTENT_LENGTH_NAMES:
            continue
        if line[:1] in (b" ", b"\t"):
            continue  # a continuation line that happens to contain "l:"
        for follow in lines[i + 1 :]:
            if follow[:1] not in (b" ", b"\t"):
                break
            value += b" " + follow
        raw = value.strip(b" \t")
        if not raw or not raw.isdigit():
            raise SipParseError(f"not a number: {raw[:20]!r}", where="Content-Length")
        digits = raw.lstrip(b"0") or b"0"
        number = limit + 1 if len(digits) > len(str(limit)) else min(int(digits), limit + 1)
        if length is not None and number != length:
            raise SipParseError("two different values", where="Content-Length")
        length = number
    if length is None:
        raise SipParseError(
            "mandatory on stream transports (RFC 3261 section 18.3)", where="Content-Length"
        )
    return length


class StreamFramer:
    """Splits a TCP/TLS byte stream into SIP messages and keep-alive pings.

    Args:
        max_message_bytes: the largest message accepted, header section and body together;
            a larger one raises ``SipParseError`` with ``status_hint`` 513 (Message Too
            Large, RFC 3261 section 21.5.7) as soon as that is known.
    """

    def __init__(self, *, max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES) -> None:
        if max_message_bytes < 1:
            raise LocalProtocolError(f"max_message_bytes must be positive: {max_message_bytes}")
        self.max_message_bytes = max_message_bytes
        self._buffer = bytearray()
        self._scan_from = 0  # where to resume looking for the end of the header section
        self._expected: int | None = None  # size of the message at the front, once known
        self._error: SipParseError | None = None

    @property
    def buffered_bytes(self) -> int:
        """How many bytes were fed but not yet returned as an event."""
        return len(self._buffer)

    def feed(self, data: bytes) -> None:
        """Append bytes received on the stream."""
        self._buffer += data

    def next_event(self) -> bytes | KeepAlivePing | None:
        """The next message or ping, or None if more bytes are needed.

        Raises:
            SipParseError: the stream is not SIP or breaks a limit; close the connection.
                Raised again by every later call.
        """
        if self._error is not None:
            raise self._error
        try:
            return self._next_event()
        except SipParseError as exc:
            self._error = exc
            raise

    def _next_event(self) -> bytes | KeepAlivePing | None:
        buf = self._buffer
        while buf and buf[0] in b"\r\n":
            self._scan_from = 0
            if buf.startswith(_PING):
                del buf[:4]
                return KeepAlivePing.PING
            if _PING.startswith(buf):
                return None  # "\r", "\r\n" or "\r\n\r": a ping may be on its way
            if buf.startswith(b"\r\n"):
                del buf[:2]  # a pong, or a stray CRLF (RFC 3261 section 7.5)
            elif buf.startswith(b"\n"):
                del buf[:1]  # a bare LF, tolerated like CRLF
            else:
                raise SipParseError("CR not followed by LF between messages", where="stream")
        total = self._expected
        if total is None:
            match = _HEADER_END.search(buf, self._scan_from)
            if match is None:
                if len(buf) > self.max_message_bytes:
                    raise _too_large(len(buf), self.max_message_bytes)
                self._scan_from = max(0, len(buf) - 3)
                return None
            if match.end() > self.max_message_bytes:
                raise _too_large(match.end(), self.max_message_bytes)
            length = _content_length(bytes(buf[: match.start()]), self.max_message_bytes)
            total = match.end() + length
            if total > self.max_message_bytes:
                raise _too_large(total, self.max_message_bytes)
            self._expected = total
        if len(buf) < total:
            return None
        message = bytes(buf[:total])
        del buf[:total]
        self._scan_from = 0
        self._expected = None
        return message
