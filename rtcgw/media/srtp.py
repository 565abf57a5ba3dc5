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

Invariants: ``protect``/``unprotect`` are the per-packet hot path; they do nothing but copy
the packet into the session's own buffer, the libsrtp call and, on failure, the mapping of
its error. A session is bound to one worker (libsrtp contexts are not re-entrant, which a
single trio thread never needs).

Why libsrtp's C functions are called through pylibsrtp's cffi binding rather than through
``pylibsrtp.Session``: its methods allocate a new length cell and go through two Python
frames per packet, which cost more than the cipher itself on a G.711 packet. The binding
declares libsrtp's own C API (``srtp_create``, ``srtp_protect``, ...), so a session made
here is the same libsrtp context ``pylibsrtp.Session`` makes from the same policy.
"""

from __future__ import annotations

import enum
import secrets
from dataclasses import dataclass
from typing import Any, final

import pylibsrtp
from pylibsrtp._binding import ffi as _ffi
from pylibsrtp._binding import lib as _lib

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

#: Each session works in one buffer of this size (as pylibsrtp does): the largest datagram
#: ``unprotect`` accepts.
_BUFFER_BYTES = 1500
#: The largest RTP packet ``protect`` accepts: 144 bytes of the buffer stay free for the
#: authentication tag and MKI libsrtp may append.
MAX_PROTECTED_RTP_BYTES = _BUFFER_BYTES - 144
#: The same for RTCP, whose trailer also carries the 4-byte SRTCP index.
MAX_PROTECTED_RTCP_BYTES = _BUFFER_BYTES - 148


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

# libsrtp's status codes (srtp_err_status_t), worded as pylibsrtp words them, and the type
# each one becomes.
_AUTH_FAILURE = "authentication failure"
_REPLAY_FAILURES = frozenset(
    {"replay check failed (bad index)", "replay check failed (index too old)"}
)
_STATUS_TEXT: tuple[str, ...] = tuple(pylibsrtp.ERRORS)
_OK = _lib.srtp_err_status_ok
_SRTP_PROTECT = _lib.srtp_protect
_SRTP_UNPROTECT = _lib.srtp_unprotect
_SRTP_PROTECT_RTCP = _lib.srtp_protect_rtcp
_SRTP_UNPROTECT_RTCP = _lib.srtp_unprotect_rtcp
_MEMMOVE = _ffi.memmove


def _map_status(status: int, what: str) -> SrtpError:
    """Our exception for libsrtp's failure ``status`` while doing ``what``."""
    reason = _STATUS_TEXT[status] if 0 <= status < len(_STATUS_TEXT) else f"libsrtp status {status}"
    if reason == _AUTH_FAILURE:
        return SrtpAuthError(f"{what}: {reason}")
    if reason in _REPLAY_FAILURES:
        return SrtpReplayError(f"{what}: {reason}")
    return SrtpError(f"{what}: {reason}")


def _new_context(libsrtp_id: int, key: bytes, ssrc_type: int) -> Any:
    """A libsrtp context for every SSRC of one direction, freed when the result is collected.

    Raises:
        LocalMediaError: libsrtp refused the policy (a profile it was built without).
    """
    policy = _ffi.new("srtp_policy_t *")
    for status in (
        _lib.srtp_crypto_policy_set_from_profile_for_rtp(_ffi.addressof(policy.rtp), libsrtp_id),
        _lib.srtp_crypto_policy_set_from_profile_for_rtcp(_ffi.addressof(policy.rtcp), libsrtp_id),
    ):
        if status != _OK:
            raise _local_failure(status, "SRTP policy")
    # libsrtp derives its session keys in srtp_create and keeps no pointer to this copy.
    master = _ffi.new("unsigned char[]", key)
    policy.key = master
    policy.ssrc.type = ssrc_type
    holder = _ffi.new("srtp_t *")
    status = _lib.srtp_create(holder, policy)
    if status != _OK:
        raise _local_failure(status, "SRTP context")
    return _ffi.gc(holder, _free_context)


def _free_context(holder: Any) -> None:
    _lib.srtp_dealloc(holder[0])


def _local_failure(status: int, what: str) -> LocalMediaError:
    return LocalMediaError(f"{what}: libsrtp refused it ({_map_status(status, what)})")


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

    __slots__ = ("_buffer", "_holders", "_length", "_rx", "_tx", "_view", "profile")

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
        outbound = _new_context(libsrtp_id, tx_key, _lib.ssrc_any_outbound)
        inbound = _new_context(libsrtp_id, rx_key, _lib.ssrc_any_inbound)
        # The holders own the contexts (freed with them); the hot path uses the contexts.
        self._holders = (outbound, inbound)
        self._tx = outbound[0]
        self._rx = inbound[0]
        # One buffer and one length cell for every call: libsrtp works in place, and the
        # result leaves as a bytes copy before the next packet comes.
        self._buffer = _ffi.new("unsigned char[]", _BUFFER_BYTES)
        self._view = _ffi.buffer(self._buffer)
        self._length = _ffi.new("int *")

    def protect(self, rtp: bytes) -> bytes:
        """Encrypt and authenticate one RTP packet we send.

        Raises:
            SrtpError: the packet is longer than ``MAX_PROTECTED_RTP_BYTES`` or is not RTP
                libsrtp can parse. The packet came from the other leg's peer, so this is a
                remote fault (``SrtpError`` is a ``RemoteMediaError``).
        """
        length = len(rtp)
        if length > MAX_PROTECTED_RTP_BYTES:
            raise SrtpError(
                f"SRTP protect: RTP packet of {length} bytes exceeds the "
                f"{MAX_PROTECTED_RTP_BYTES}-byte limit"
            )
        cell = self._length
        cell[0] = length
        _MEMMOVE(self._buffer, rtp, length)
        status = _SRTP_PROTECT(self._tx, self._buffer, cell)
        if status:
            raise _map_status(status, "SRTP protect")
        protected: bytes = self._view[0 : cell[0]]
        return protected

    def unprotect(self, srtp: bytes) -> bytes:
        """Check and decrypt one SRTP packet we received.

        Raises:
            SrtpAuthError: the authentication tag does not verify.
            SrtpReplayError: the packet index was seen already or is too old.
            SrtpError: any other reason (too short, too long, unparsable).
        """
        length = len(srtp)
        if length > _BUFFER_BYTES:
            raise SrtpError(f"SRTP unprotect: packet of {length} bytes is too long")
        cell = self._length
        cell[0] = length
        _MEMMOVE(self._buffer, srtp, length)
        status = _SRTP_UNPROTECT(self._rx, self._buffer, cell)
        if status:
            raise _map_status(status, "SRTP unprotect")
        plain: bytes = self._view[0 : cell[0]]
        return plain

    def protect_rtcp(self, rtcp: bytes) -> bytes:
        """Encrypt and authenticate one RTCP compound packet we send (SRTCP).

        Raises:
            SrtpError: longer than ``MAX_PROTECTED_RTCP_BYTES`` or unparsable.
        """
        length = len(rtcp)
        if length > MAX_PROTECTED_RTCP_BYTES:
            raise SrtpError(
                f"SRTCP protect: RTCP packet of {length} bytes exceeds the "
                f"{MAX_PROTECTED_RTCP_BYTES}-byte limit"
            )
        cell = self._length
        cell[0] = length
        _MEMMOVE(self._buffer, rtcp, length)
        status = _SRTP_PROTECT_RTCP(self._tx, self._buffer, cell)
        if status:
            raise _map_status(status, "SRTCP protect")
        protected: bytes = self._view[0 : cell[0]]
        return protected

    def unprotect_rtcp(self, srtcp: bytes) -> bytes:
        """Check and decrypt one SRTCP packet we received.

        Raises:
            SrtpAuthError / SrtpReplayError / SrtpError: as for ``unprotect``.
        """
        length = len(srtcp)
        if length > _BUFFER_BYTES:
            raise SrtpError(f"SRTCP unprotect: packet of {length} bytes is too long")
        cell = self._length
        cell[0] = length
        _MEMMOVE(self._buffer, srtcp, length)
        status = _SRTP_UNPROTECT_RTCP(self._rx, self._buffer, cell)
        if status:
            raise _map_status(status, "SRTCP unprotect")
        plain: bytes = self._view[0 : cell[0]]
        return plain
