"""Descriptions written from a leg's own state: WebRTC legs get everything a browser needs,
plain RTP legs nothing that belongs to WebRTC, and every output reads back equal."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rtcgw.sdp import (
    Attribute,
    Candidate,
    Codec,
    Crypto,
    Direction,
    Fingerprint,
    LegProfile,
    LegState,
    LocalSdpError,
    SessionDescription,
    Setup,
    StreamState,
    bundle_groups,
    candidate_priority,
    codecs_of,
    direction_of,
    fingerprints_of,
    ice_credentials_of,
    parse_sdp,
    rtcp_of,
    setup_of,
    write_sdp,
)

FINGERPRINT = Fingerprint("sha-256", ":".join(["5A"] * 32))
OPUS = Codec(111, "opus", 48000, 2, "minptime=10;useinbandfec=1", ("transport-cc",))
PCMU = Codec(0, "PCMU", 8000, 1)
DTMF = Codec(126, "telephone-event", 8000, None, "0-15")
VP8 = Codec(96, "VP8", 90000, None, None, ("nack", "goog-remb"))
RTX = Codec(97, "rtx", 90000, None, "apt=96")
CRYPTO = Crypto.inline(1, "AES_CM_128_HMAC_SHA1_80", bytes(range(30)))
MSID = Attribute("msid", "rtcgw-stream rtcgw-audio")

AUDIO = StreamState(
    media="audio",
    port=40000,
    codecs=(OPUS, PCMU, DTMF),
    direction=Direction.SENDRECV,
    mid="0",
    rtcp_port=40001,
    crypto=(CRYPTO,),
    extra=(Attribute("ssrc", "1592590337 cname:rtcgw"), MSID),
)
VIDEO = StreamState(
    media="video",
    port=40000,
    codecs=(VP8, RTX),
    direction=Direction.RECVONLY,
    mid="1",
    extra=(Attribute("rtcp-rsize"),),
)
REJECTED = StreamState(
    media="video",
    port=0,
    codecs=(),
    direction=Direction.INACTIVE,
    mid="2",
    formats=("98",),
)
WEBRTC = LegState(
    profile=LegProfile.WEBRTC,
    address="203.0.113.5",
    session_id=1335477858,
    session_version=2,
    streams=(AUDIO, VIDEO, REJECTED),
    ice=("398c43a7", "e4013fe6855b2cd7235793ef"),
    candidate_addresses=("203.0.113.5", "2001:db8::5"),
    fingerprint=FINGERPRINT,
    setup=Setup.PASSIVE,
    rtcp_mux=True,
    rtcp_feedback=True,
    bundle=True,
)
SIP = replace(WEBRTC, profile=LegProfile.RTP_AVP, address="198.51.100.2")


def lines_of(desc: SessionDescription) -> list[str]:
    return list(desc.lines())


def test_webrtc_leg_session_level() -> None:
    desc = write_sdp(WEBRTC)
    assert lines_of(desc)[:8] == [
        "v=0",
        "o=rtcgw 1335477858 2 IN IP4 203.0.113.5",
        "s=-",
        "c=IN IP4 203.0.113.5",
        "t=0 0",
        "a=ice-lite",
        "a=group:BUNDLE 0 1",
        "a=msid-semantic: WMS *",
    ]
    assert len(desc.entries) == 8
    # The rejected mid stays on its m-line but out of the group.
    assert bundle_groups(desc) == (("0", "1"),)
    assert desc.media[2].mid == "2"


def test_webrtc_leg_audio_section_line_by_line() -> None:
    desc = write_sdp(WEBRTC)
    audio = desc.media[0]
    assert audio.m_value == "audio 40000 UDP/TLS/RTP/SAVPF 111 0 126"
    cand_v4, cand_v6 = (Candidate.from_sdp(v) for v in audio.values("candidate"))
    assert [str(e) for e in audio.entries] == [
        "mid:0",
        "sendrecv",
        "rtcp-mux",
        "ice-ufrag:398c43a7",
        "ice-pwd:e4013fe6855b2cd7235793ef",
        "fingerprint:sha-256 " + FINGERPRINT.value,
        "setup:passive",
        f"candidate:{cand_v4.foundation} 1 udp 2130706431 203.0.113.5 40000 typ host",
        f"candidate:{cand_v6.foundation} 1 udp 2130706175 2001:db8::5 40000 typ host",
        "end-of-candidates",
        "rtpmap:111 opus/48000/2",
        "fmtp:111 minptime=10;useinbandfec=1",
        "rtcp-fb:111 transport-cc",
        "rtpmap:0 PCMU/8000",
        "rtpmap:126 telephone-event/8000",
        "fmtp:126 0-15",
        "ssrc:1592590337 cname:rtcgw",
        "msid:rtcgw-stream rtcgw-audio",
    ]
    # Never SDES next to DTLS, never a=rtcp on a muxed leg.
    assert not audio.has("crypto")
    assert rtcp_of(audio) is None


def test_candidates_one_per_address_with_stable_distinct_foundations() -> None:
    first = write_sdp(WEBRTC).media[0].values("candidate")
    again = write_sdp(replace(WEBRTC, session_version=3)).media[0].values("candidate")
    assert first == again
    candidates = [Candidate.from_sdp(v) for v in first]
    assert [c.address for c in candidates] == ["203.0.113.5", "2001:db8::5"]
    assert len({c.foundation for c in candidates}) == 2
    assert len({c.priority for c in candidates}) == 2
    assert all(
        (c.component, c.transport, c.type, c.port) == (1, "udp", "host", 40000) for c in candidates
    )
    # Each stream's candidates are at that stream's port.
    other = replace(WEBRTC, streams=(AUDIO, replace(VIDEO, port=40002)))
    video = write_sdp(other).media[1]
    assert {Candidate.from_sdp(v).port for v in video.values("candidate")} == {40002}


def test_candidate_priority_follows_rfc_8445() -> None:
    assert candidate_priority(type_preference=126, local_preference=65535, component=1) == (
        2130706431
    )
    assert candidate_priority(type_preference=0, local_preference=0, component=256) == 0


def test_webrtc_video_feedback() -> None:
    video = write_sdp(WEBRTC).media[1]
    assert video.values("rtcp-fb") == (
        "96 nack",
        "96 goog-remb",
        "96 nack pli",
        "96 ccm fir",
    )
    assert video.has("rtcp-rsize")
    assert direction_of(video, write_sdp(WEBRTC)) is Direction.RECVONLY
    no_fb = write_sdp(replace(WEBRTC, rtcp_feedback=False))
    assert all(not s.has("rtcp-fb") for s in no_fb.media)


def test_rejected_stream_is_only_its_m_line_and_mid() -> None:
    rejected = write_sdp(WEBRTC).media[2]
    assert rejected.m_value == "video 0 UDP/TLS/RTP/SAVPF 98"
    assert rejected.entries == (Attribute("mid", "2"),)
    without_formats = replace(REJECTED, formats=(), codecs=(VP8,), mid=None)
    written = write_sdp(replace(WEBRTC, streams=(AUDIO, without_formats))).media[1]
    assert written.formats == ("96",)
    assert written.entries == ()


def test_written_views_read_back_as_the_state() -> None:
    desc = write_sdp(WEBRTC)
    audio, video, _ = desc.media
    assert codecs_of(audio) == (OPUS, Codec(0, "PCMU", 8000), DTMF)
    assert codecs_of(video)[1] == RTX
    assert fingerprints_of(audio, desc) == (FINGERPRINT,)
    assert setup_of(video, desc) is Setup.PASSIVE
    assert ice_credentials_of(video, desc) == WEBRTC.ice


WEBRTC_ONLY = (
    "ice-lite",
    "ice-ufrag",
    "ice-pwd",
    "candidate",
    "end-of-candidates",
    "fingerprint",
    "setup",
    "rtcp-mux",
    "rtcp-fb",
    "group",
    "msid-semantic",
)


def attribute_names(desc: SessionDescription) -> set[str]:
    found = {a.name for a in desc.attributes}
    for section in desc.media:
        found.update(a.name for a in section.attributes)
    return found


def test_rtp_avp_leg_gets_no_webrtc_line_at_all() -> None:
    desc = write_sdp(SIP)
    assert attribute_names(desc).isdisjoint(WEBRTC_ONLY)
    assert not any(s.has("crypto") for s in desc.media)
    assert [s.proto for s in desc.media] == ["RTP/AVP"] * 3
    audio = desc.media[0]
    assert rtcp_of(audio) == (40001, None)
    assert [str(a) for a in audio.attributes[:3]] == ["mid:0", "sendrecv", "rtcp:40001"]
    assert desc.lines()[1] == "o=rtcgw 1335477858 2 IN IP4 198.51.100.2"


@pytest.mark.parametrize(
    ("profile", "crypto", "feedback"),
    [
        (LegProfile.RTP_AVP, False, False),
        (LegProfile.RTP_AVPF, False, True),
        (LegProfile.RTP_SAVP, True, False),
        (LegProfile.RTP_SAVPF, True, True),
    ],
)
def test_sip_profiles_write_what_they_allow(
    profile: LegProfile, crypto: bool, feedback: bool
) -> None:
    desc = write_sdp(replace(SIP, profile=profile))
    names = attribute_names(desc)
    assert ("crypto" in names) is crypto
    assert ("rtcp-fb" in names) is feedback
    assert names.isdisjoint(set(WEBRTC_ONLY) - {"rtcp-fb"})
    if crypto:
        assert desc.media[0].values("crypto") == (CRYPTO.to_sdp(),)
    assert (profile.srtp, profile.feedback, profile.dtls) == (crypto, feedback, False)


def test_profiles_by_proto() -> None:
    assert LegProfile.of_proto("udp/tls/rtp/savpf") is LegProfile.WEBRTC
    assert LegProfile.of_proto("RTP/AVP") is LegProfile.RTP_AVP
    assert LegProfile.of_proto("RTP/SAVPF") is LegProfile.RTP_SAVPF
    assert LegProfile.of_proto("TCP/TLS/RTP/SAVPF") is None
    assert LegProfile.of_proto("UDP/DTLS/SCTP") is None
    assert LegProfile.WEBRTC.srtp and LegProfile.WEBRTC.dtls and LegProfile.WEBRTC.feedback


def test_ipv6_leg_and_host_name() -> None:
    desc = write_sdp(replace(SIP, address="2001:db8::7"))
    assert desc.lines()[1:4] == (
        "o=rtcgw 1335477858 2 IN IP6 2001:db8::7",
        "s=-",
        "c=IN IP6 2001:db8::7",
    )
    assert write_sdp(replace(SIP, address="media.example.org")).lines()[3] == (
        "c=IN IP4 media.example.org"
    )


def test_ice_off_and_bundle_off() -> None:
    desc = write_sdp(replace(WEBRTC, ice=None, bundle=False))
    names = attribute_names(desc)
    assert names.isdisjoint({"ice-lite", "ice-ufrag", "candidate", "end-of-candidates", "group"})
    assert "fingerprint" in names


@pytest.mark.parametrize(
    "leg",
    [
        replace(SIP, address="not an address"),
        replace(SIP, address="2001:db8::zz"),
        replace(SIP, address=""),
        replace(SIP, username="two words"),
        replace(SIP, streams=(replace(AUDIO, codecs=()),)),
        replace(SIP, streams=(replace(REJECTED, formats=()),)),
        replace(WEBRTC, ice=("ufrag\r\n", "pwd")),
    ],
)
def test_unwritable_state_raises_local_errors(leg: LegState) -> None:
    with pytest.raises(LocalSdpError):
        write_sdp(leg)


def test_data_channel_stream_uses_its_formats() -> None:
    channel = StreamState(
        "application",
        40000,
        (),
        Direction.SENDRECV,
        "3",
        formats=("webrtc-datachannel",),
        extra=(Attribute("sctp-port", "5000"),),
    )
    section = write_sdp(replace(WEBRTC, streams=(channel,))).media[0]
    assert section.formats == ("webrtc-datachannel",)
    assert section.value("sctp-port") == "5000"
    assert not section.has("rtpmap")


_CODECS = st.lists(
    st.builds(
        Codec,
        st.integers(0, 127),
        st.sampled_from(["opus", "PCMU", "VP8", "rtx", "telephone-event", "red"]),
        st.sampled_from([8000, 48000, 90000]),
        st.sampled_from([None, 1, 2]),
        st.one_of(st.none(), st.sampled_from(["apt=96", "0-15", "111/111"])),
        st.lists(st.sampled_from(["nack", "nack pli", "transport-cc"]), max_size=3).map(tuple),
    ),
    min_size=1,
    max_size=4,
    unique_by=lambda c: c.payload_type,
).map(tuple)
_STREAMS = st.builds(
    StreamState,
    media=st.sampled_from(["audio", "video"]),
    port=st.integers(0, 65535),
    codecs=_CODECS,
    direction=st.sampled_from(list(Direction)),
    mid=st.one_of(st.none(), st.from_regex(r"[a-z0-9]{1,4}", fullmatch=True)),
    rtcp_port=st.one_of(st.none(), st.integers(1, 65535)),
    crypto=st.just((CRYPTO,)),
    extra=st.just((MSID,)),
)
_LEGS = st.builds(
    LegState,
    profile=st.sampled_from(list(LegProfile)),
    address=st.ip_addresses().map(str),
    session_id=st.integers(0, 2**63),
    session_version=st.integers(0, 2**32),
    streams=st.lists(_STREAMS, max_size=3).map(tuple),
    ice=st.one_of(st.none(), st.just(WEBRTC.ice)),
    candidate_addresses=st.lists(st.ip_addresses().map(str), max_size=3).map(tuple),
    fingerprint=st.one_of(st.none(), st.just(FINGERPRINT)),
    setup=st.one_of(st.none(), st.sampled_from(list(Setup))),
    rtcp_mux=st.booleans(),
    rtcp_feedback=st.booleans(),
    bundle=st.booleans(),
)


@given(_LEGS)
def test_written_descriptions_read_back_equal(leg: LegState) -> None:
    desc = write_sdp(leg)
    assert parse_sdp(desc.to_bytes()) == desc
    if not leg.profile.dtls:
        assert attribute_names(desc).isdisjoint(set(WEBRTC_ONLY) - {"rtcp-fb"})
    for section, stream in zip(desc.media, leg.streams, strict=True):
        assert section.port == stream.port
        if not section.rejected:
            assert [c.payload_type for c in codecs_of(section)] == [
                c.payload_type for c in stream.codecs
            ]
            assert direction_of(section, desc) is stream.direction


def test_written_description_round_trips() -> None:
    for leg in (WEBRTC, SIP, replace(SIP, profile=LegProfile.RTP_SAVPF)):
        desc = write_sdp(leg)
        assert parse_sdp(desc.to_bytes()) == desc
