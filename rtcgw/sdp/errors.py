"""Exceptions of the SDP package.

Whose fault it is decides the type, as in h11 and ``rtcgw.sip.errors``:

- ``SdpParseError``: the peer sent a description we cannot read. It names the 1-based line
  (0 when a single attribute value was parsed on its own) and carries ``status_hint`` 488
  (RFC 3261 21.4.26, Not Acceptable Here), the answer a user agent gives to an offer it
  cannot use.
- ``SdpNegotiationError``: the description was readable but offers nothing acceptable (no
  common codec, a transport profile we do not speak); also 488.
- ``LocalSdpError``: a value built in code breaks a rule of the model (a line that would not
  parse back, a stream without formats). That is a bug on our side, never the peer's.
"""

from __future__ import annotations

__all__ = [
    "LocalSdpError",
    "SdpError",
    "SdpNegotiationError",
    "SdpParseError",
]

_SHOWN_CHARS = 80


def _show(text: str) -> str:
    """``text`` quoted for an error message, shortened if long."""
    if len(text) > _SHOWN_CHARS:
        text = text[: _SHOWN_CHARS - 3] + "..."
    return repr(text)


class SdpError(Exception):
    """Root of every error the SDP package raises."""


class SdpParseError(SdpError):
    """A session description, one of its lines or an attribute value could not be read.

    ``line_no`` is 1-based within the description, or 0 when an attribute value was parsed
    outside of a description (the typed views' ``from_sdp``); ``line`` is the offending text.
    """

    status_hint: int = 488

    def __init__(self, line_no: int, line: str, reason: str) -> None:
        where = f"SDP line {line_no}" if line_no > 0 else "SDP value"
        super().__init__(f"{where} {_show(line)}: {reason}")
        self.line_no = line_no
        self.line = line
        self.reason = reason


class SdpNegotiationError(SdpError):
    """The peer's description is readable but leaves no acceptable media."""

    status_hint: int = 488

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class LocalSdpError(SdpError, ValueError):
    """A description or value built in code breaks a rule of the model (a bug on our side)."""
