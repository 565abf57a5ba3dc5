"""Every description of tests/corpus/sdp/: lossless round trip, every typed view readable and
writable, and what each source is known to send."""

from __future__ import annotations

from pathlib import Path

import pytest

from rtcgw.sdp import (
    Candidate,
    Crypto,
    Direction,
    Fingerprint,
    Fmtp,
    LegProfile,
    RtcpFb,
    Rtpmap,
    Setup,
    bundle_groups,
    codecs_of,
    connection_of,
    direction_of,
    fingerprints_of,
    format_codecs,
    ice_credentials_of,
    parse_sdp,
    rtcp_of,
    setup_of,
    strongest_fingerprint,
)
from tests.sdp.helpers import CORPUS_FILES, corpus, normalized

IDS = [p.name for p in CORPUS_FILES]


def test_corpus_has_a_file_per_source() -> None:
    assert len(CORPUS_FILES) >= 12
    sources = {p.name.split("-")[0] for p in CORPUS_FILES}
    assert {"chrome", "firefox", "safari", "aiortc", "sipp", "asterisk"} <= sources


@pytest.mark.parametrize("path", CORPUS_FILES, ids=IDS)
def test_corpus_round_trips(path: Path) -> None:
    data = path.read_bytes()
    desc = parse_sdp(data)
    assert desc.to_bytes() == normalized(data)
    assert parse_sdp(desc.to_bytes()) == desc
    # The files are stored as sent: CRLF endings.
    assert data == normalized(data)


@pytest.mark.parametrize("path", CORPUS_FILES, ids=IDS)
def test_every_typed_view_reads_and_writes_back(path: Path) -> None:
    desc = parse_sdp(path.read_bytes())
    desc.origin  # noqa: B018 - reading it must not raise
    bundle_groups(desc)
    for section in desc.media:
        direction_of(section, desc)
        setup_of(section, desc)
        connection_of(section, desc)
        rtcp_of(section)
        ice_credentials_of(section, desc)
        fps = fingerprints_of(section, desc)
        assert all(Fingerprint.from_sdp(fp.to_sdp()) == fp for fp in fps)
        views: list[tuple[str, type[Rtpmap | Fmtp | RtcpFb | Candidate | Crypto]]] = [
            ("rtpmap", Rtpmap),
            ("fmtp", Fmtp),
            ("rtcp-fb", RtcpFb),
            ("candidate", Candidate),
            ("crypto", Crypto),
        ]
        for name, view in views:
            for value in section.values(name):
                parsed = view.from_sdp(value)
                # Corpus values use single spaces, so these views give the text back whole.
                assert parsed.to_sdp() == value
                assert view.from_sdp(parsed.to_sdp()) == parsed
        for value in section.values("crypto"):
            assert len(Crypto.from_sdp(value).key_salt()) >= 28  # GCM: 16 + 12
        if LegProfile.of_proto(section.proto) is not None:
            codecs = codecs_of(section)
            if not section.rejected:
                assert codecs, f"{path.name}: {section.media} has no codec"
            assert format_codecs(codecs)


def test_chrome_offer() -> None:
    desc = corpus("chrome-120-offer-audio-video-bundle.sdp")
    audio, video = desc.media
    assert bundle_groups(desc) == (("0", "1"),)
    assert (desc.value("msid-semantic") or "").startswith(" WMS ")
    assert [s.proto for s in desc.media] == ["UDP/TLS/RTP/SAVPF"] * 2
    assert (audio.mid, video.mid) == ("0", "1")
    assert format_codecs(codecs_of(audio)) == (
        "opus/48000/2, red/48000/2, G722/8000, PCMU/8000, PCMA/8000, CN/8000, "
        "telephone-event/48000, telephone-event/8000"
    )
    opus = codecs_of(audio)[0]
    assert opus.fmtp == "minptime=10;useinbandfec=1"
    assert opus.rtcp_fb == ("transport-cc",)
    assert codecs_of(audio)[1].repairs == 111
    vp8, rtx = codecs_of(video)[:2]
    assert vp8.rtcp_fb == ("goog-remb", "transport-cc", "ccm fir", "nack", "nack pli")
    assert rtx.repairs == 96
    assert setup_of(video, desc) is Setup.ACTPASS
    assert direction_of(video, desc) is Direction.SENDRECV
    credentials = ice_credentials_of(audio, desc)
    assert credentials is not None
    assert len(credentials[0]) == 4
    candidates = [Candidate.from_sdp(v) for v in audio.values("candidate")]
    assert [c.type for c in candidates] == ["host", "srflx", "host"]
    assert candidates[1].extension("raddr") == "192.168.1.23"
    assert candidates[2].extension("tcptype") == "active"
    assert rtcp_of(audio) == (9, "0.0.0.0")
    assert video.values("ssrc-group")[0].startswith("FID ")


def test_chrome_reoffer_keeps_the_rejected_video_out_of_bundle() -> None:
    desc = corpus("chrome-124-reoffer-video-rejected.sdp")
    audio, video = desc.media
    assert video.rejected
    assert video.mid == "1"
    assert bundle_groups(desc) == (("0",),)
    assert direction_of(video, desc) is Direction.INACTIVE
    assert not audio.rejected


def test_firefox_offer_puts_the_fingerprint_at_session_level() -> None:
    desc = corpus("firefox-153-offer-audio-video.sdp")
    audio, video = desc.media
    assert not audio.has("fingerprint")
    (fp,) = fingerprints_of(audio, desc)
    assert fp.algorithm == "sha-256"
    assert len(fp.digest()) == 32
    # Firefox writes a frozen version into the origin, not its real one.
    assert desc.origin.username == "mozilla...THIS_IS_SDPARTA-99.0"
    assert desc.has("sendrecv")
    assert bundle_groups(desc) == (("0", "1"),)
    assert [c.payload_type for c in codecs_of(audio)] == [109, 9, 0, 8, 101]
    g722 = codecs_of(audio)[1]
    assert (g722.name, g722.channels, g722.key) == ("G722", 1, ("g722", 8000, 1))
    assert audio.has("end-of-candidates")
    # ufrag after the candidates, as Firefox writes it
    names = [a.name for a in audio.attributes]
    assert names.index("ice-ufrag") > names.index("candidate")
    # Gathering completed, yet m= and c= keep the placeholder 9 / 0.0.0.0.
    assert audio.port == 9
    connection = connection_of(audio, desc)
    assert connection is not None
    assert connection.address == "0.0.0.0"
    # Host addresses hidden behind mDNS names, RTCP candidates offered next to rtcp-mux,
    # and a=rtcp naming an mDNS host.
    candidates = [Candidate.from_sdp(v) for v in audio.values("candidate")]
    assert all(c.address.endswith(".local") for c in candidates)
    assert [c.component for c in candidates] == [1, 1, 1, 1, 2, 2, 2, 2]
    assert audio.has("rtcp-mux")
    rtcp = rtcp_of(audio)
    assert rtcp is not None
    assert rtcp[0] == candidates[4].port
    assert (rtcp[1] or "").endswith(".local")
    vp8, rtx = codecs_of(video)[:2]
    assert vp8.rtcp_fb == ("nack", "nack pli", "ccm fir", "goog-remb", "transport-cc")
    assert rtx.repairs == 120
    assert ice_credentials_of(video, desc) == ice_credentials_of(audio, desc)
    assert video.values("ssrc-group")[0].startswith("FID ")


def test_firefox_answer() -> None:
    desc = corpus("firefox-153-answer-audio.sdp")
    (audio,) = desc.media
    assert setup_of(audio, desc) is Setup.ACTIVE
    assert not audio.has("fingerprint")
    assert [fp.algorithm for fp in fingerprints_of(audio, desc)] == ["sha-256"]
    assert bundle_groups(desc) == (("0",),)
    assert [c.payload_type for c in codecs_of(audio)] == [0, 8, 101]
    # The offer said 0-16; Firefox answers with the events it supports.
    assert codecs_of(audio)[2].fmtp == "0-15"
    # rtcp-mux was offered, so only component 1 candidates and no a=rtcp.
    candidates = [Candidate.from_sdp(v) for v in audio.values("candidate")]
    assert {c.component for c in candidates} == {1}
    assert rtcp_of(audio) is None


def test_safari_offer_hides_host_addresses_behind_mdns() -> None:
    desc = corpus("safari-17-offer-audio-video.sdp")
    audio, video = desc.media
    host = Candidate.from_sdp(audio.values("candidate")[0])
    assert host.address.endswith(".local")
    assert codecs_of(video)[0].name == "H264"
    assert "packetization-mode=1" in (codecs_of(video)[0].fmtp or "")


def test_aiortc_offer_has_three_fingerprints_and_the_strongest_wins() -> None:
    desc = corpus("aiortc-1.16-offer-audio.sdp")
    (audio,) = desc.media
    fps = fingerprints_of(audio, desc)
    assert [fp.algorithm for fp in fps] == ["sha-256", "sha-384", "sha-512"]
    best = strongest_fingerprint(fps)
    assert best is not None
    assert best.algorithm == "sha-512"
    assert len(best.digest()) == 64
    assert ice_credentials_of(audio, desc) == ("RCdw", "gJKPnyK0HZirgMEHi3h5zS")
    assert connection_of(audio, desc) is not None


def test_sip_side_offers() -> None:
    sipp = corpus("sipp-uac-pcmu.sdp")
    assert [c.name for c in codecs_of(sipp.media[0])] == ["PCMU"]
    assert connection_of(sipp.media[0], sipp) == sipp.connection
    assert sipp.media[0].connection is None

    asterisk = corpus("asterisk-offer-ulaw-alaw-dtmf.sdp")
    (audio,) = asterisk.media
    assert format_codecs(codecs_of(audio)) == "PCMU/8000, PCMA/8000, telephone-event/8000"
    assert codecs_of(audio)[2].fmtp == "0-16"
    assert audio.value("ptime") == "20"
    assert LegProfile.of_proto(audio.proto) is LegProfile.RTP_AVP

    baresip = corpus("baresip-1.0-offer-opus-pcmu.sdp")
    (audio,) = baresip.media
    assert baresip.value("tool") == "baresip 1.0.0"
    assert format_codecs(codecs_of(audio)) == "opus/48000/2, PCMU/8000, telephone-event/8000"
    assert codecs_of(audio)[0].fmtp == "stereo=1;sprop-stereo=1;maxaveragebitrate=28000"
    # Its default configuration offers rtcp-rsize but not rtcp-mux.
    assert audio.has("rtcp-rsize")
    assert not audio.has("rtcp-mux")
    assert LegProfile.of_proto(audio.proto) is LegProfile.RTP_AVP


def test_rtpengine_sdp() -> None:
    answer = corpus("rtpengine-10.5-answer-rtp-avp.sdp")
    (plain,) = answer.media
    assert LegProfile.of_proto(plain.proto) is LegProfile.RTP_AVP
    # Its own address at media level, RTCP on the next port, no DTLS or ICE left.
    assert connection_of(plain, answer) == plain.connection
    assert rtcp_of(plain) == (plain.port + 1, None)
    assert fingerprints_of(plain, answer) == ()
    assert ice_credentials_of(plain, answer) is None
    assert not plain.has("rtcp-mux")

    webrtc = corpus("rtpengine-10.5-offer-webrtc.sdp")
    (audio,) = webrtc.media
    assert LegProfile.of_proto(audio.proto) is LegProfile.WEBRTC
    assert setup_of(audio, webrtc) is Setup.ACTPASS
    assert not audio.has("crypto")
    # rtcp-mux offered, with an a=rtcp port and component 2 candidates in case it is refused.
    assert audio.has("rtcp-mux")
    candidates = [Candidate.from_sdp(v) for v in audio.values("candidate")]
    assert [c.component for c in candidates] == [1, 2]
    assert rtcp_of(audio) == (candidates[1].port, None)
    assert webrtc.value("group") is None
    assert audio.mid is None


def test_freeswitch_sdes_offer() -> None:
    desc = corpus("freeswitch-1.10-offer-savp-sdes.sdp")
    (audio,) = desc.media
    assert LegProfile.of_proto(audio.proto) is LegProfile.RTP_SAVP
    suites = {Crypto.from_sdp(v).suite: Crypto.from_sdp(v) for v in audio.values("crypto")}
    assert len(suites["AES_CM_128_HMAC_SHA1_80"].key_salt()) == 30
    assert len(suites["AEAD_AES_256_GCM_8"].key_salt()) == 44
    assert rtcp_of(audio) == (24917, "198.51.100.9")


def test_polycom_hold_uses_a_session_level_direction() -> None:
    desc = corpus("polycom-vvx-reinvite-hold.sdp")
    (audio,) = desc.media
    assert direction_of(audio, desc) is Direction.SENDONLY
    assert codecs_of(audio)[3].fmtp == "annexb=no"
