"""SRTP and SRTCP protection for one media transport (RFC 3711), over libsrtp (pylibsrtp).

``SrtpProfile`` names the protection profiles the gateway speaks, with their key and salt
lengths and their names in DTLS-SRTP (RFC 5764 section 4.1.2, RFC 7714 section 14.2) and in
SDES ``a=crypto`` lines (RFC 4568 section 6.2, RFC 7714 section 14.2). ``SrtpSession`` holds
the two libsrtp contexts of one transport: ours, which protects what we send, and the
peer's, which unprotects what we receive.

What this module does not do: negotiate anything (DTLS-SRTP keys come from
``rtcgw.media.dtls``, SDES keys from the SDP layer), parse RTP, count, or log. Errors are
typed once here (``SrtpAuthError``, ``SrtpReplayError``, ``SrtpError``) so the relay can
count each kind of drop.

Invariants: ``protect``/``unprotect`` are the per-packet hot path; they do nothing but the
libsrtp call and, on failure, the mapping of its error. A session is bound to one worker
(libsrtp contexts are not re-entrant, which a single trio thread never needs).
"""

from __future__ import annotations

import enum
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import final

import pylibsrtp

from rtcgw.media.errors import (
    LocalMediaError,
    SrtpAuthError,
    SrtpError,
    SrtpReplayError,
)

__all__ = [
    "DTLS_SRTP_PROFILES",
    "MAX_PROTECTED_RTCP_BYTES",
    "MAX_PROTECTED_RTP_BYTES",
    "SrtpProfile",
    "SrtpSession",
    "new_master_key",
]

#: The largest RTP packet ``protect`` accepts: pylibsrtp works in one 1500-byte buffer and
#: keeps 144 bytes free for the authentication tag and MKI it may append.
MAX_PROTECTED_RTP_BYTES = 1500 - 144
#: The same for RTCP, whose trailer also carries the 4-byte SRTCP index.
MAX_PROTECTED_RTCP_BYTES = 1500 - 148


@dataclass(frozen=True, slots=True)
class _ProfileInfo:
    key_length: int
    salt_length: int
    dtls_name: bytes | None
    sdes_name: str | None
    libsrtp_id: int


class SrtpProfile(enum.Enum):
    """An SRTP protection profile (crypto suite)."""

    #: RFC 7714: AES-128 in GCM, 16-byte tag; 16-byte key, 12-byte salt
    AEAD_AES_128_GCM = "AEAD_AES_128_GCM"
    #: RFC 3711 default: AES-128 counter mode, 80-bit HMAC-SHA1 tag; 16-byte key, 14-byte salt
    AES_CM_128_HMAC_SHA1_80 = "AES_CM_128_HMAC_SHA1_80"
    #: As above with a 32-bit tag; offered over SDES only (RFC 5764 allows it in DTLS-SRTP,
    #: but we never offer it there: browsers prefer the stronger suites)
    AES_CM_128_HMAC_SHA1_32 = "AES_CM_128_HMAC_SHA1_32"

    @property
    def key_length(self) -> int:
        """Length of the master key in bytes."""
        return _PROFILE_INFO[self].key_length

    @property
    def salt_length(self) -> int:
        """Length of the master salt in bytes."""
        return _PROFILE_INFO[self].salt_length

    @property
    def dtls_name(self) -> bytes | None:
        """The name OpenSSL uses in the DTLS ``use_srtp`` extension, or None if not offered."""
        return _PROFILE_INFO[self].dtls_name

    @property
    def sdes_name(self) -> str | None:
        """The crypto-suite name of an SDES ``a=crypto`` line, or None."""
        return _PROFILE_INFO[self].sdes_name

    @classmethod
    def from_dtls_name(cls, name: bytes) -> SrtpProfile:
        """The profile OpenSSL reports as selected (``get_selected_srtp_profile``).

        Raises:
            LocalMediaError: ``name`` is not a profile we could have offered.
        """
        profile = _BY_DTLS_NAME.get(name)
        if profile is None:
            raise LocalMediaError(f"unknown DTLS-SRTP profile name {name!r}")
        return profile

    @classmethod
    def from_sdes_name(cls, name: str) -> SrtpProfile | None:
        """The profile of an SDES crypto-suite name, or None when we do not support it."""
        return _BY_SDES_NAME.get(name)


_PROFILE_INFO: dict[SrtpProfile, _ProfileInfo] = {
    # RFC 7714 section 14.2 registers both the DTLS-SRTP profile and the SDES suite name.
    SrtpProfile.AEAD_AES_128_GCM: _ProfileInfo(
        16,
        12,
        b"SRTP_AEAD_AES_128_GCM",
        "AEAD_AES_128_GCM",
        pylibsrtp.Policy.SRTP_PROFILE_AEAD_AES_128_GCM,
    ),
    SrtpProfile.AES_CM_128_HMAC_SHA1_80: _ProfileInfo(
        16,
        14,
        b"SRTP_AES128_CM_SHA1_80",
        "AES_CM_128_HMAC_SHA1_80",
        pylibsrtp.Policy.SRTP_PROFILE_AES128_CM_SHA1_80,
    ),
    SrtpProfile.AES_CM_128_HMAC_SHA1_32: _ProfileInfo(
        16,
        14,
        None,
        "AES_CM_128_HMAC_SHA1_32",
        pylibsrtp.Policy.SRTP_PROFILE_AES128_CM_SHA1_32,
    ),
}
_BY_DTLS_NAME = {i.dtls_name: p for p, i in _PROFILE_INFO.items() if i.dtls_name is not None}
_BY_SDES_NAME = {i.sdes_name: p for p, i in _PROFILE_INFO.items() if i.sdes_name is not None}

#: The DTLS-SRTP profiles we offer, most preferred first: GCM authenticates and encrypts in
#: one pass and costs less per packet; CM_SHA1_80 is the one every WebRTC stack must support
#: (RFC 8827 section 6.5).
DTLS_SRTP_PROFILES: tuple[SrtpProfile, ...] = (
    SrtpProfile.AEAD_AES_128_GCM,
    SrtpProfile.AES_CM_128_HMAC_SHA1_80,
)

# libsrtp's error strings, as pylibsrtp words them, and the type each one becomes.
_AUTH_FAILURE = "authentication failure"
_REPLAY_FAILURES = frozenset(
    {"replay check failed (bad index)", "replay check failed (index too old)"}
)

_Process = Callable[[bytes], bytes]


def _map_error(error: pylibsrtp.Error, what: str) -> SrtpError:
    """Our exception for a libsrtp failure while doing ``what``."""
    reason = str(error)
    if reason == _AUTH_FAILURE:
        return SrtpAuthError(f"{what}: {reason}")
    if reason in _REPLAY_FAILURES:
        return SrtpReplayError(f"{what}: {reason}")
    return SrtpError(f"{what}: {reason}")


def new_master_key(profile: SrtpProfile) -> bytes:
    """A random master key followed by a random master salt, for an SDES ``a=crypto`` line."""
    return secrets.token_bytes(profile.key_length + profile.salt_length)


@final
class SrtpSession:
    """The SRTP contexts of one transport: ``tx_key`` protects, ``rx_key`` unprotects.

    Each key is the master key followed by the master salt (``key_length + salt_length``
    bytes). Every SSRC is accepted in both directions (libsrtp's "any inbound/outbound"
    templates), which is what a relay needs when a peer changes SSRC.
    """

    __slots__ = ("_protect", "_protect_rtcp", "_unprotect", "_unprotect_rtcp", "profile")

    def __init__(self, profile: SrtpProfile, tx_key: bytes, rx_key: bytes) -> None:
        """Create both contexts.

        Raises:
            LocalMediaError: a key does not have the length the profile needs.
        """
        expected = profile.key_length + profile.salt_length
        for name, key in (("tx_key", tx_key), ("rx_key", rx_key)):
            if len(key) != expected:
                raise LocalMediaError(
                    f"SRTP {name} for {profile.value} must be {expected} bytes, not {len(key)}"
                )
        self.profile = profile
        libsrtp_id = _PROFILE_INFO[profile].libsrtp_id
        outbound = pylibsrtp.Session(
            pylibsrtp.Policy(
                key=tx_key,
                ssrc_type=pylibsrtp.Policy.SSRC_ANY_OUTBOUND,
                srtp_profile=libsrtp_id,
            )
        )
        inbound = pylibsrtp.Session(
            pylibsrtp.Policy(
                key=rx_key,
                ssrc_type=pylibsrtp.Policy.SSRC_ANY_INBOUND,
                srtp_profile=libsrtp_id,
            )
        )
        # Bound methods kept once: the hot path then costs one call, not two lookups.
        self._protect: _Process = outbound.protect
        self._protect_rtcp: _Process = outbound.protect_rtcp
        self._unprotect: _Process = inbound.unprotect
        self._unprotect_rtcp: _Process = inbound.unprotect_rtcp

    def protect(self, rtp: bytes) -> bytes:
        """Encrypt and authenticate one RTP packet we send.

        Raises:
            SrtpError: the packet is longer than ``MAX_PROTECTED_RTP_BYTES`` or is not RTP
                libsrtp can parse. The packet came from the other leg's peer, so this is a
                remote fault (``SrtpError`` is a ``RemoteMediaError``).
        """
        try:
            return self._protect(rtp)
        except pylibsrtp.Error as exc:
            raise _map_error(exc, "SRTP protect") from None
        except ValueError:
            raise SrtpError(
                f"SRTP protect: RTP packet of {len(rtp)} bytes exceeds the "
                f"{MAX_PROTECTED_RTP_BYTES}-byte limit"
            ) from None

    def unprotect(self, srtp: bytes) -> bytes:
        """Check and decrypt one SRTP packet we received.

        Raises:
            SrtpAuthError: the authentication tag does not verify.
            SrtpReplayError: the packet index was seen already or is too old.
            SrtpError: any other reason (too short, too long, unparsable).
        """
        try:
            return self._unprotect(srtp)
        except pylibsrtp.Error as exc:
            raise _map_error(exc, "SRTP unprotect") from None
        except ValueError:
            raise SrtpError(f"SRTP unprotect: packet of {len(srtp)} bytes is too long") from None

    def protect_rtcp(self, rtcp: bytes) -> bytes:
        """Encrypt and authenticate one RTCP compound packet we send (SRTCP).

        Raises:
            SrtpError: longer than ``MAX_PROTECTED_RTCP_BYTES`` or unparsable.
        """
        try:
            return self._protect_rtcp(rtcp)
        except pylibsrtp.Error as exc:
            raise _map_error(exc, "SRTCP protect") from None
        except ValueError:
            raise SrtpError(
                f"SRTCP protect: RTCP packet of {len(rtcp)} bytes exceeds the "
                f"{MAX_PROTECTED_RTCP_BYTES}-byte limit"
            ) from None

    def unprotect_rtcp(self, srtcp: bytes) -> bytes:
        """Check and decrypt one SRTCP packet we received.

        Raises:
            SrtpAuthError / SrtpReplayError / SrtpError: as for ``unprotect``.
        """
        try:
            return self._unprotect_rtcp(srtcp)
        except pylibsrtp.Error as exc:
            raise _map_error(exc, "SRTCP unprotect") from None
        except ValueError:
            raise SrtpError(f"SRTCP unprotect: packet of {len(srtcp)} bytes is too long") from None
