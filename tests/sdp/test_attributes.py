"""Typed views: parsing, writing back, errors with line 0, and the session/media level rules."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rtcgw.sdp import (
    Candidate,
    Connection,
    Crypto,
    Direction,
    Fingerprint,
    Fmtp,
    Origin,
    RtcpFb,
    Rtpmap,
    SdpParseError,
    Setup,
    bundle_groups,
    connection_of,
    direction_of,
    fingerprints_of,
    ice_credentials_of,
    parse_sdp,
    rtcp_of,
    setup_of,
    strongest_fingerprint,
)
from tests.sdp.helpers import sdp

FP256 = ":".join(["AB"] * 32)


def test_direction_reverse() -> None:
    assert Direction.SENDONLY.reverse() is Direction.RECVONLY
    assert Direction.RECVONLY.reverse() is Direction.SENDONLY
    assert Direction.SENDRECV.reverse() is Direction.SENDRECV
    assert Direction.INACTIVE.reverse() is Direction.INACTIVE
    assert Direction.from_sdp("sendonly") is Direction.SENDONLY
    assert Direction.INACTIVE.to_sdp() == "inactive"
    with pytest.raises(SdpParseError):
        Direction.from_sdp("sideways")


@pytest.mark.parametrize(
    ("session_attr", "media_attr", "expected"),
    [
        (None, None, Direction.SENDRECV),
        ("a=sendonly", None, Direction.SENDONLY),
        ("a=sendonly", "a=recvonly", Direction.RECVONLY),
        (None, "a=inactive", Direction.INACTIVE),
    ],
)
def test_direction_levels(
    session_attr: str | None, media_attr: str | None, expected: Direction
) -> None:
    lines = [line for line in (session_attr, "m=audio 4000 RTP/AVP 0", media_attr) if line]
    desc = parse_sdp(sdp(*lines))
    assert direction_of(desc.media[0], desc) is expected


def test_setup_levels_and_values() -> None:
    desc = parse_sdp(
        sdp("a=setup:actpass", "m=audio 1 RTP/AVP 0", "m=audio 2 RTP/AVP 0", "a=setup:PASSIVE")
    )
    first, second = desc.media
    assert setup_of(first, desc) is Setup.ACTPASS
    assert setup_of(second, desc) is Setup.PASSIVE
    bare = parse_sdp(sdp("m=audio 1 RTP/AVP 0"))
    assert setup_of(bare.media[0], bare) is None
    bad = parse_sdp(sdp("m=audio 1 RTP/AVP 0", "a=setup:sometimes"))
    with pytest.raises(SdpParseError) as info:
        setup_of(bad.media[0], bad)
    assert info.value.line_no == 0
    assert str(info.value) == "SDP value 'sometimes': not a setup role"


def test_connection_and_origin() -> None:
    assert Connection.from_sdp("IN IP4 224.2.1.1/127/3") == Connection("IN", "IP4", "224.2.1.1")
    assert Connection("IN", "IP6", "::1").to_sdp() == "IN IP6 ::1"
    assert Connection.from_sdp("IN IP4 0.0.0.0").is_unspecified
    assert not Connection.from_sdp("IN IP4 192.0.2.1").is_unspecified
    for bad in ("IN IP4", "IN IP4 1.2.3.4 extra", "IN IP4 /127"):
        with pytest.raises(SdpParseError):
            Connection.from_sdp(bad)
    origin = Origin.from_sdp("alice 2890844526 2890842807 IN IP4 198.51.100.1")
    assert origin.session_version == "2890842807"
    assert origin.to_sdp() == "alice 2890844526 2890842807 IN IP4 198.51.100.1"
    desc = parse_sdp(
        sdp(
            "c=IN IP4 192.0.2.1", "m=audio 1 RTP/AVP 0", "m=audio 2 RTP/AVP 0", "c=IN IP4 192.0.2.2"
        )
    )
    assert connection_of(desc.media[0], desc) == Connection("IN", "IP4", "192.0.2.1")
    assert connection_of(desc.media[1], desc) == Connection("IN", "IP4", "192.0.2.2")


def test_rtpmap() -> None:
    assert Rtpmap.from_sdp("96 opus/48000/2") == Rtpmap(96, "opus", 48000, 2)
    assert Rtpmap.from_sdp("0 PCMU/8000") == Rtpmap(0, "PCMU", 8000, None)
    assert Rtpmap(9, "G722", 8000, 1).to_sdp() == "9 G722/8000/1"
    for bad in (
        "96",
        "96 opus",
        "x opus/48000",
        "128 opus/48000",
        "96 opus/0",
        "96 /8000",
        "96 opus/48000/2/1",
        "96 opus/48000/0",
        "96 opus/fast",
    ):
        with pytest.raises(SdpParseError) as info:
            Rtpmap.from_sdp(bad)
        assert info.value.line_no == 0


def test_fmtp_and_its_parameters() -> None:
    fmtp = Fmtp.from_sdp("111 minptime=10; useinbandfec=1")
    assert fmtp == Fmtp(111, "minptime=10; useinbandfec=1")
    assert fmtp.parameter("useinbandfec") == "1"
    assert fmtp.parameter("MINPTIME") == "10"
    assert fmtp.parameter("stereo") is None
    assert Fmtp.from_sdp("101 0-15").to_sdp() == "101 0-15"
    assert Fmtp.from_sdp("97").to_sdp() == "97"
    assert Fmtp.from_sdp("97 apt=96").parameter("apt") == "96"
    with pytest.raises(SdpParseError):
        Fmtp.from_sdp("webrtc-datachannel max-message-size=262144")


def test_rtcp_fb() -> None:
    assert RtcpFb.from_sdp("96 nack pli") == RtcpFb("96", "nack pli")
    assert RtcpFb.from_sdp("* transport-cc").to_sdp() == "* transport-cc"
    for bad in ("96", "x nack", "200 nack"):
        with pytest.raises(SdpParseError):
            RtcpFb.from_sdp(bad)


def test_fingerprint_normalizes_case_and_checks_length() -> None:
    fp = Fingerprint.from_sdp("SHA-256 " + FP256.lower())
    assert fp == Fingerprint("sha-256", FP256)
    assert fp.digest() == b"\xab" * 32
    assert fp.to_sdp() == "sha-256 " + FP256
    assert Fingerprint.from_sdp("x-new-hash 01:02").digest() == b"\x01\x02"
    for bad in (
        "sha-256",
        "sha-256 AB:CD",
        "sha-1 " + FP256,
        "sha-256 " + FP256.replace(":", ""),
        "sha-256 " + FP256[:-2] + "GG",
        "sha-256 " + FP256 + ":",
    ):
        with pytest.raises(SdpParseError):
            Fingerprint.from_sdp(bad)


def test_fingerprint_of_a_certificate() -> None:
    der = b"0\x82\x01\x1e not really a certificate"
    fp = Fingerprint.of_certificate(der)
    assert fp.digest() == hashlib.sha256(der).digest()
    assert Fingerprint.from_sdp(fp.to_sdp()) == fp
    assert fp.matches(der)
    assert not fp.matches(der + b"!")
    assert Fingerprint.of_certificate(der, "sha-512").matches(der)
    with pytest.raises(SdpParseError):
        Fingerprint("x-new-hash", "01:02").matches(der)


def test_strongest_fingerprint() -> None:
    def fp(algorithm: str) -> Fingerprint:
        return Fingerprint(algorithm, "00")

    assert strongest_fingerprint([]) is None
    assert strongest_fingerprint([fp("sha-1"), fp("sha-256"), fp("sha-384")]) == fp("sha-384")
    assert strongest_fingerprint([fp("sha-512"), fp("sha-256")]) == fp("sha-512")
    assert strongest_fingerprint([fp("sha-1")]) == fp("sha-1")
    # Unknown and broken hash functions are never chosen.
    assert strongest_fingerprint([fp("md5"), fp("x-new"), fp("sha-1")]) == fp("sha-1")
    assert strongest_fingerprint([fp("md5"), fp("x-new")]) is None
    assert Fingerprint.STRENGTH["sha-512"] > Fingerprint.STRENGTH["sha-384"]
    assert Fingerprint.STRENGTH["sha-224"] > Fingerprint.STRENGTH["sha-1"]
    assert Fingerprint.STRENGTH["sha-1"] > Fingerprint.STRENGTH["md5"]


def test_fingerprints_media_level_wins_over_session_level() -> None:
    other = ":".join(["CD"] * 32)
    desc = parse_sdp(
        sdp(
            f"a=fingerprint:sha-256 {FP256}",
            "m=audio 1 RTP/AVP 0",
            "m=audio 2 RTP/AVP 0",
            f"a=fingerprint:sha-256 {other}",
        )
    )
    assert fingerprints_of(desc.media[0], desc) == (Fingerprint("sha-256", FP256),)
    assert fingerprints_of(desc.media[1], desc) == (Fingerprint("sha-256", other),)


def test_ice_credentials_levels() -> None:
    desc = parse_sdp(
        sdp(
            "a=ice-ufrag:sess",
            "a=ice-pwd:sessionpassword1234567",
            "m=audio 1 RTP/AVP 0",
            "m=audio 2 RTP/AVP 0",
            "a=ice-ufrag:medi",
        )
    )
    assert ice_credentials_of(desc.media[0], desc) == ("sess", "sessionpassword1234567")
    assert ice_credentials_of(desc.media[1], desc) == ("medi", "sessionpassword1234567")
    lone = parse_sdp(sdp("m=audio 1 RTP/AVP 0", "a=ice-ufrag:only"))
    assert ice_credentials_of(lone.media[0], lone) is None


def test_candidate() -> None:
    value = (
        "1853887674 1 udp 1518280447 47.61.61.61 36768 typ srflx"
        " raddr 192.168.0.196 rport 36768 generation 0"
    )
    cand = Candidate.from_sdp(value)
    assert (cand.component, cand.priority, cand.port, cand.type) == (1, 1518280447, 36768, "srflx")
    assert cand.extras == ("raddr", "192.168.0.196", "rport", "36768", "generation", "0")
    assert cand.extension("rport") == "36768"
    assert cand.extension("tcptype") is None
    assert cand.to_sdp() == value
    for bad in (
        "1 1 udp 2130706431 192.0.2.1 5000 host",
        "1 1 udp 2130706431 192.0.2.1 5000 type host",
        "1 0 udp 2130706431 192.0.2.1 5000 typ host",
        "1 1 udp 2130706431 192.0.2.1 99999 typ host",
        "1 1 udp 99999999999 192.0.2.1 5000 typ host",
    ):
        with pytest.raises(SdpParseError):
            Candidate.from_sdp(bad)


def test_crypto() -> None:
    key = bytes(range(30))
    crypto = Crypto.inline(1, "AES_CM_128_HMAC_SHA1_80", key)
    assert crypto.key_salt() == key
    assert Crypto.from_sdp(crypto.to_sdp()) == crypto
    value = (
        "2 AES_CM_128_HMAC_SHA1_32 inline:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwd|2^20|1:4"
        " KDR=1 UNENCRYPTED_SRTCP"
    )
    parsed = Crypto.from_sdp(value)
    assert parsed.session_params == ("KDR=1", "UNENCRYPTED_SRTCP")
    assert parsed.key_salt() == key
    assert parsed.to_sdp() == value
    # GCM keys of 28 bytes need padding, which some peers leave out.
    gcm = Crypto.inline(3, "AEAD_AES_128_GCM", bytes(28))
    assert gcm.key_params.endswith("=")
    assert Crypto(3, "AEAD_AES_128_GCM", gcm.key_params.rstrip("=")).key_salt() == bytes(28)
    for bad in ("1 AES_CM_128_HMAC_SHA1_80", "x AES inline:AAAA"):
        with pytest.raises(SdpParseError):
            Crypto.from_sdp(bad)
    for params in ("inline:!!!!", "inline:", "uri:https://example.org/key"):
        with pytest.raises(SdpParseError):
            Crypto(1, "AES_CM_128_HMAC_SHA1_80", params).key_salt()


def test_bundle_groups_and_rtcp() -> None:
    desc = parse_sdp(
        sdp(
            "a=group:BUNDLE a v",
            "a=group:LS a v",
            "a=group:BUNDLE d",
            "m=audio 1 RTP/AVP 0",
            "a=rtcp:53020 IN IP4 126.16.64.4",
            "m=audio 2 RTP/AVP 0",
            "a=rtcp:53021",
            "m=audio 3 RTP/AVP 0",
            "a=rtcp:x",
        )
    )
    assert bundle_groups(desc) == (("a", "v"), ("d",))
    first, second, third = desc.media
    assert rtcp_of(first) == (53020, "126.16.64.4")
    assert rtcp_of(second) == (53021, None)
    with pytest.raises(SdpParseError):
        rtcp_of(third)
    assert rtcp_of(parse_sdp(sdp("m=audio 1 RTP/AVP 0")).media[0]) is None


_VIEWS = st.one_of(
    st.builds(
        Rtpmap,
        st.integers(0, 127),
        st.from_regex(r"[A-Za-z0-9\-]{1,12}", fullmatch=True),
        st.integers(1, 2**32 - 1),
        st.one_of(st.none(), st.integers(1, 255)),
    ),
    st.builds(
        Candidate,
        st.from_regex(r"[A-Za-z0-9+/]{1,32}", fullmatch=True),
        st.integers(1, 256),
        st.sampled_from(["udp", "UDP", "tcp"]),
        st.integers(0, 2**32 - 1),
        st.ip_addresses().map(str),
        st.integers(0, 65535),
        st.sampled_from(["host", "srflx", "prflx", "relay"]),
        st.lists(st.from_regex(r"[a-z0-9.]{1,8}", fullmatch=True), max_size=4).map(tuple),
    ),
    st.builds(
        Crypto.inline,
        st.integers(0, 999_999_999),
        st.sampled_from(["AES_CM_128_HMAC_SHA1_80", "AEAD_AES_256_GCM"]),
        st.binary(min_size=1, max_size=64),
    ),
    st.builds(lambda d: Fingerprint.of_certificate(d, "sha-384"), st.binary()),
)


@given(_VIEWS)
def test_views_round_trip(view: Rtpmap | Candidate | Crypto | Fingerprint) -> None:
    assert type(view).from_sdp(view.to_sdp()) == view
