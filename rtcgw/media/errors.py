"""Exceptions of the media layer.

As in ``rtcgw.sip.errors``, whose fault it is decides the type: ``LocalMediaError`` is a
misuse of the API (a bug on our side), ``RemoteMediaError`` means a peer sent something we
cannot accept. Configuration problems (a certificate that cannot be read) are
``MediaConfigError`` and name the file.
"""

from __future__ import annotations

__all__ = [
    "LocalMediaError",
    "MediaConfigError",
    "MediaError",
    "RemoteMediaError",
    "SrtpAuthError",
    "SrtpError",
    "SrtpReplayError",
]


class MediaError(Exception):
    """Root of every error the media layer raises."""


class LocalMediaError(MediaError):
    """The API was used in a way it does not allow (a bug on our side)."""


class RemoteMediaError(MediaError):
    """A peer sent something we cannot accept (a malformed packet, a failed handshake)."""


class MediaConfigError(MediaError):
    """Media configuration that cannot be used: the message names the file and the reason."""


class SrtpError(RemoteMediaError):
    """An SRTP or SRTCP packet could not be protected or unprotected."""


class SrtpAuthError(SrtpError):
    """The packet's authentication tag did not verify (tampered, or keyed differently)."""


class SrtpReplayError(SrtpError):
    """The packet's index was seen before or is too old for the replay window."""
