"""The per-packet shortcuts of rtcgw.media agree with the general code they bypass.

``RtpRewriter.rewrite`` has a fast path for a bare header from the current source stream;
a rewriter given a payload type map that never applies takes the general path for every
packet, so the two must produce the same bytes and the same state. ``SrtpSession`` calls
libsrtp through pylibsrtp's binding with a buffer of its own; pylibsrtp's public
``Session`` must read what it writes and the other way round.
"""

from __future__ import annotations

import struct

import pylibsrtp
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rtcgw.media.errors import SrtpAuthError, SrtpError, SrtpReplayError
from rtcgw.media.rtp import RtpRewriter
from rtcgw.media.srtp import MAX_PROTECTED_RTP_BYTES, SrtpProfile, SrtpSession, new_master_key

#: One packet's source fields and arrival: first byte (0x80 bare, else CSRC/extension/padding
#: forms), source SSRC (few values, so changes happen), sequence and timestamp steps, and the
#: wall-clock step in seconds.
_STEP = st.tuples(
    st.sampled_from([0x80, 0x80, 0x80, 0x81, 0x90, 0xA0]),
    st.sampled_from([0x11111111, 0x11111111, 0x11111111, 0x22222222]),
    st.sampled_from([1, 1, 1, 0, 2, -1, -50, 2999, 3000, 40000]),
    st.sampled_from([160, 160, 160, 0, 320, -160, 80_001, 2**31, 2**32 - 160]),
    st.sampled_from([0.02, 0.02, 0.0, 0.5, 12.0]),
)


def _packet(first: int, ssrc: int, sequence: int, timestamp: int, marker: bool) -> bytes:
    header = struct.pack("!BBHII", first, 0x80 | 8 if marker else 8, sequence, timestamp, ssrc)
    extra = b""
    if first & 0x0F:
        extra += b"\x00\x00\x00\x07" * (first & 0x0F)  # CSRCs
    if first & 0x10:
        extra += b"\xbe\xde\x00\x01\x10\xaa\x00\x00"  # one-byte extension, one word
    payload = b"\xd5" * 160
    if first & 0x20:
        payload += b"\x00\x00\x03"  # three bytes of padding, count last
    return header + extra + payload


def _rewriter(*, general: bool) -> RtpRewriter:
    rewriter = RtpRewriter(0xCAFEF00D, 8000, initial_sequence=65530, initial_timestamp=2**32 - 400)
    if general:
        # Non-empty, never applies (no packet here has payload type 127): forces the
        # general path without changing any output.
        rewriter.payload_type_map = {127: 127}
    return rewriter


@settings(max_examples=200, deadline=None)
@given(st.lists(_STEP, min_size=1, max_size=60), st.booleans(), st.booleans())
def test_rewrite_fast_path_matches_the_general_path(
    steps: list[tuple[int, int, int, int, float]], as_bytearray: bool, marker: bool
) -> None:
    fast, general = _rewriter(general=False), _rewriter(general=True)
    sequence, timestamp, now = 1000, 5000, 100.0
    for first, ssrc, seq_step, ts_step, elapsed in steps:
        sequence = (sequence + seq_step) & 0xFFFF
        timestamp = (timestamp + ts_step) & 0xFFFFFFFF
        now += elapsed
        packet = _packet(first, ssrc, sequence, timestamp, marker)
        out_fast = fast.rewrite(bytearray(packet) if as_bytearray else packet, now)
        out_general = general.rewrite(bytearray(packet) if as_bytearray else packet, now)
        assert out_fast == out_general
        assert type(out_fast) is bytes
        assert (fast.packets, fast.octets) == (general.packets, general.octets)
        assert (fast.last_sequence, fast.last_timestamp) == (
            general.last_sequence,
            general.last_timestamp,
        )
        assert fast.source_ssrc == general.source_ssrc


def test_rewrite_fast_path_rewrites_a_steady_stream_and_counts_it() -> None:
    rewriter = _rewriter(general=False)
    outputs = [
        rewriter.rewrite(_packet(0x80, 0x11111111, 7 + i, 900 + 160 * i, False), 1.0 + 0.02 * i)
        for i in range(5)
    ]
    fields = [struct.unpack_from("!BBHII", out) for out in outputs]
    # The first packet re-bases (marker set); the rest keep their byte 1 and follow on.
    assert [f[1] for f in fields] == [0x88, 8, 8, 8, 8]
    assert [f[2] for f in fields] == [65530, 65531, 65532, 65533, 65534]
    assert [f[3] for f in fields] == [(2**32 - 400 + 160 * i) % 2**32 for i in range(5)]
    assert {f[4] for f in fields} == {0xCAFEF00D}
    assert all(out[12:] == b"\xd5" * 160 for out in outputs)
    assert (rewriter.packets, rewriter.octets) == (5, 5 * 160)


def _public_pair(profile_id: int, key: bytes) -> tuple[pylibsrtp.Session, pylibsrtp.Session]:
    out = pylibsrtp.Session(
        pylibsrtp.Policy(
            key=key, ssrc_type=pylibsrtp.Policy.SSRC_ANY_OUTBOUND, srtp_profile=profile_id
        )
    )
    into = pylibsrtp.Session(
        pylibsrtp.Policy(
            key=key, ssrc_type=pylibsrtp.Policy.SSRC_ANY_INBOUND, srtp_profile=profile_id
        )
    )
    return out, into


_LIBSRTP_IDS = {
    SrtpProfile.AEAD_AES_128_GCM: pylibsrtp.Policy.SRTP_PROFILE_AEAD_AES_128_GCM,
    SrtpProfile.AES_CM_128_HMAC_SHA1_80: pylibsrtp.Policy.SRTP_PROFILE_AES128_CM_SHA1_80,
    SrtpProfile.AES_CM_128_HMAC_SHA1_32: pylibsrtp.Policy.SRTP_PROFILE_AES128_CM_SHA1_32,
}


@pytest.mark.parametrize("profile", list(SrtpProfile))
def test_srtp_session_interoperates_with_pylibsrtp_sessions(profile: SrtpProfile) -> None:
    ours_key, theirs_key = new_master_key(profile), new_master_key(profile)
    session = SrtpSession(profile, ours_key, theirs_key)
    our_reader = _public_pair(_LIBSRTP_IDS[profile], ours_key)[1]
    their_writer = _public_pair(_LIBSRTP_IDS[profile], theirs_key)[0]
    for sequence in range(1, 40):
        rtp = struct.pack("!BBHII", 0x80, 0, sequence, sequence * 160, 0xABCD) + bytes(
            [sequence]
        ) * (sequence * 7)
        protected = session.protect(rtp)
        assert protected != rtp
        assert our_reader.unprotect(protected) == rtp
        assert session.unprotect(their_writer.protect(rtp)) == rtp
        rtcp = struct.pack("!BBHI", 0x80, 201, 1, 0xABCD)
        assert our_reader.unprotect_rtcp(session.protect_rtcp(rtcp)) == rtcp
        assert session.unprotect_rtcp(their_writer.protect_rtcp(rtcp)) == rtcp


def test_srtp_session_failures_keep_their_types_and_the_buffer_is_reused_safely() -> None:
    profile = SrtpProfile.AES_CM_128_HMAC_SHA1_80
    a_key, b_key = new_master_key(profile), new_master_key(profile)
    sender, receiver = SrtpSession(profile, a_key, b_key), SrtpSession(profile, b_key, a_key)
    first = sender.protect(struct.pack("!BBHII", 0x80, 0, 1, 160, 7) + b"\x01" * 160)
    second = sender.protect(struct.pack("!BBHII", 0x80, 0, 2, 320, 7) + b"\x02" * 20)
    # Results are copies: the next call, which reuses the session's buffer, leaves them be.
    assert len(first) == 12 + 160 + 10 and len(second) == 12 + 20 + 10
    assert receiver.unprotect(first)[12:] == b"\x01" * 160
    assert receiver.unprotect(second)[12:] == b"\x02" * 20
    with pytest.raises(SrtpReplayError, match="SRTP unprotect: replay check failed"):
        receiver.unprotect(first)
    tampered = bytearray(sender.protect(struct.pack("!BBHII", 0x80, 0, 3, 480, 7) + bytes(8)))
    tampered[14] ^= 1
    with pytest.raises(SrtpAuthError, match="SRTP unprotect: authentication failure"):
        receiver.unprotect(bytes(tampered))
    with pytest.raises(SrtpError, match="too long"):
        receiver.unprotect(bytes(1501))
    with pytest.raises(SrtpError, match=f"{MAX_PROTECTED_RTP_BYTES}-byte limit"):
        sender.protect(bytes(MAX_PROTECTED_RTP_BYTES + 1))
    with pytest.raises(SrtpError):
        receiver.unprotect_rtcp(b"\x80\xc9\x00\x01")
