"""SRTP profiles and sessions: round trips, the error each failure becomes, key material."""

from __future__ import annotations

import struct

import pytest

from rtcgw.media.errors import (
    LocalMediaError,
    RemoteMediaError,
    SrtpAuthError,
    SrtpError,
    SrtpReplayError,
)
from rtcgw.media.srtp import (
    DTLS_SRTP_PROFILES,
    MAX_PROTECTED_RTP_BYTES,
    SrtpProfile,
    SrtpSession,
    new_master_key,
)

ALL_PROFILES = list(SrtpProfile)
#: authentication tag bytes added to RTP
TAG_BYTES = {
    SrtpProfile.AEAD_AES_128_GCM: 16,
    SrtpProfile.AES_CM_128_HMAC_SHA1_80: 10,
    SrtpProfile.AES_CM_128_HMAC_SHA1_32: 4,
}
#: and to RTCP, besides the 4-byte SRTCP index: SRTCP keeps the 80-bit tag even with the
#: 32-bit RTP suite (RFC 5764 section 4.1.2)
RTCP_TAG_BYTES = {**TAG_BYTES, SrtpProfile.AES_CM_128_HMAC_SHA1_32: 10}


def rtp(seq: int, payload: bytes = b"\xd5" * 160, ssrc: int = 0x1234ABCD) -> bytes:
    return struct.pack("!BBHII", 0x80, 0, seq, seq * 160, ssrc) + payload


def rtcp_receiver_report(ssrc: int = 0x1234ABCD) -> bytes:
    # RFC 3550 6.4.2: an RR with no report blocks is 8 bytes, length field 1.
    return struct.pack("!BBHI", 0x80, 201, 1, ssrc)


def session_pair(profile: SrtpProfile) -> tuple[SrtpSession, SrtpSession]:
    """Two ends of one transport: each one's tx key is the other's rx key."""
    a_key, b_key = new_master_key(profile), new_master_key(profile)
    return SrtpSession(profile, a_key, b_key), SrtpSession(profile, b_key, a_key)


@pytest.mark.parametrize(
    ("profile", "key", "salt", "dtls", "sdes"),
    [
        (SrtpProfile.AEAD_AES_128_GCM, 16, 12, b"SRTP_AEAD_AES_128_GCM", "AEAD_AES_128_GCM"),
        (
            SrtpProfile.AES_CM_128_HMAC_SHA1_80,
            16,
            14,
            b"SRTP_AES128_CM_SHA1_80",
            "AES_CM_128_HMAC_SHA1_80",
        ),
        (SrtpProfile.AES_CM_128_HMAC_SHA1_32, 16, 14, None, "AES_CM_128_HMAC_SHA1_32"),
    ],
)
def test_profile_parameters(
    profile: SrtpProfile, key: int, salt: int, dtls: bytes | None, sdes: str
) -> None:
    assert (profile.key_length, profile.salt_length) == (key, salt)
    assert profile.dtls_name == dtls
    assert profile.sdes_name == sdes
    assert SrtpProfile.from_sdes_name(sdes) is profile
    if dtls is not None:
        assert SrtpProfile.from_dtls_name(dtls) is profile


def test_dtls_preference_is_gcm_then_cm_sha1_80() -> None:
    assert DTLS_SRTP_PROFILES == (
        SrtpProfile.AEAD_AES_128_GCM,
        SrtpProfile.AES_CM_128_HMAC_SHA1_80,
    )


def test_unknown_names() -> None:
    assert SrtpProfile.from_sdes_name("F8_128_HMAC_SHA1_80") is None
    with pytest.raises(LocalMediaError, match="SRTP_NULL_NULL"):
        SrtpProfile.from_dtls_name(b"SRTP_NULL_NULL")
    with pytest.raises(LocalMediaError):
        SrtpProfile.from_dtls_name(b"")


@pytest.mark.parametrize("profile", ALL_PROFILES)
def test_new_master_key_lengths(profile: SrtpProfile) -> None:
    keys = {new_master_key(profile) for _ in range(8)}
    assert len(keys) == 8
    assert all(len(k) == profile.key_length + profile.salt_length for k in keys)


@pytest.mark.parametrize("profile", ALL_PROFILES)
def test_rtp_and_rtcp_round_trip_both_ways(profile: SrtpProfile) -> None:
    a, b = session_pair(profile)
    assert a.profile is profile
    for seq in range(1, 20):
        packet = rtp(seq)
        protected = a.protect(packet)
        assert protected != packet
        assert len(protected) == len(packet) + TAG_BYTES[profile]
        assert b.unprotect(protected) == packet
        back = rtp(seq, payload=bytes(range(100)), ssrc=0x55667788)
        assert a.unprotect(b.protect(back)) == back
    report = rtcp_receiver_report()
    protected_rtcp = a.protect_rtcp(report)
    assert len(protected_rtcp) == len(report) + 4 + RTCP_TAG_BYTES[profile]
    assert b.unprotect_rtcp(protected_rtcp) == report
    assert a.unprotect_rtcp(b.protect_rtcp(report)) == report


@pytest.mark.parametrize("profile", ALL_PROFILES)
def test_tampered_packet_is_an_auth_error(profile: SrtpProfile) -> None:
    a, b = session_pair(profile)
    protected = bytearray(a.protect(rtp(1)))
    protected[20] ^= 0x01
    with pytest.raises(SrtpAuthError, match="authentication failure"):
        b.unprotect(bytes(protected))
    protected_rtcp = bytearray(a.protect_rtcp(rtcp_receiver_report()))
    protected_rtcp[5] ^= 0x01
    with pytest.raises(SrtpAuthError):
        b.unprotect_rtcp(bytes(protected_rtcp))


def test_wrong_key_is_an_auth_error() -> None:
    profile = SrtpProfile.AES_CM_128_HMAC_SHA1_80
    a, _ = session_pair(profile)
    stranger = SrtpSession(profile, new_master_key(profile), new_master_key(profile))
    with pytest.raises(SrtpAuthError):
        stranger.unprotect(a.protect(rtp(1)))


@pytest.mark.parametrize("profile", ALL_PROFILES)
def test_replayed_packet_is_a_replay_error(profile: SrtpProfile) -> None:
    a, b = session_pair(profile)
    protected = a.protect(rtp(7))
    b.unprotect(protected)
    with pytest.raises(SrtpReplayError, match="replay check failed"):
        b.unprotect(protected)
    protected_rtcp = a.protect_rtcp(rtcp_receiver_report())
    b.unprotect_rtcp(protected_rtcp)
    with pytest.raises(SrtpReplayError):
        b.unprotect_rtcp(protected_rtcp)


def test_too_old_packet_is_a_replay_error() -> None:
    a, b = session_pair(SrtpProfile.AEAD_AES_128_GCM)
    old = a.protect(rtp(1))
    for seq in range(2, 300):  # moves the 128-packet replay window past seq 1
        b.unprotect(a.protect(rtp(seq)))
    with pytest.raises(SrtpReplayError):
        b.unprotect(old)


def test_rtp_too_long_to_protect() -> None:
    a, _ = session_pair(SrtpProfile.AEAD_AES_128_GCM)
    longest = rtp(1, payload=b"\x00" * (MAX_PROTECTED_RTP_BYTES - 12))
    assert len(a.protect(longest)) == MAX_PROTECTED_RTP_BYTES + 16
    too_long = rtp(2, payload=b"\x00" * (MAX_PROTECTED_RTP_BYTES - 11))
    with pytest.raises(SrtpError, match="1357 bytes exceeds") as caught:
        a.protect(too_long)
    # The packet came from the SIP-side peer: a remote fault, never a crash of ours.
    assert isinstance(caught.value, RemoteMediaError)
    with pytest.raises(SrtpError, match="RTCP packet of 2000 bytes"):
        a.protect_rtcp(rtcp_receiver_report() + b"\x00" * 1992)


@pytest.mark.parametrize(
    "garbage", [b"", b"\x80", b"\x80\x00\x00\x01", b"\x00" * 1600, b"\xff" * 40]
)
def test_garbage_to_unprotect_is_an_srtp_error(garbage: bytes) -> None:
    _, b = session_pair(SrtpProfile.AES_CM_128_HMAC_SHA1_80)
    with pytest.raises(SrtpError):
        b.unprotect(garbage)
    with pytest.raises(SrtpError):
        b.unprotect_rtcp(garbage)


def test_keys_of_the_wrong_length_are_refused() -> None:
    profile = SrtpProfile.AEAD_AES_128_GCM
    with pytest.raises(LocalMediaError, match=r"tx_key .* 28 bytes, not 30"):
        SrtpSession(profile, b"\x00" * 30, b"\x00" * 28)
    with pytest.raises(LocalMediaError, match="rx_key"):
        SrtpSession(profile, b"\x00" * 28, b"\x00" * 16)
