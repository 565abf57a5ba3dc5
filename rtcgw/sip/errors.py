"""Exceptions of the SIP core.

Whose fault it is decides the type, as in h11: ``LocalProtocolError`` means we (or our
caller) misused the API, a bug; ``RemoteProtocolError`` means the peer sent something we
cannot accept, and carries the status code to answer with (``status_hint``).
"""

from __future__ import annotations

__all__ = [
    "LocalProtocolError",
    "RemoteProtocolError",
    "SipError",
    "SipParseError",
]


class SipError(Exception):
    """Root of every error the SIP core raises."""


class LocalProtocolError(SipError):
    """The API was used in a way the protocol does not allow (a bug on our side)."""


class RemoteProtocolError(SipError):
    """The peer sent something we cannot accept; ``status_hint`` is what to answer."""

    def __init__(self, message: str, *, status_hint: int = 400) -> None:
        super().__init__(message)
        self.status_hint = status_hint


class SipParseError(RemoteProtocolError):
    """A SIP message, header or URI could not be parsed.

    ``reason`` says what was wrong and ``where`` names the place (a header name, "start
    line", "URI", an offset), so logs point at the culprit.
    """

    def __init__(self, reason: str, *, where: str | None = None, status_hint: int = 400) -> None:
        text = f"{where}: {reason}" if where else reason
        super().__init__(text, status_hint=status_hint)
        self.reason = reason
        self.where = where
