"""Codecs of a media section, and the whitelist/blacklist filters."""

from __future__ import annotations

import pytest

from rtcgw.sdp import (
    STATIC_PAYLOAD_TYPES,
    Codec,
    SdpParseError,
    codecs_of,
    filter_codecs,
    format_codecs,
    has_media_codec,
    parse_sdp,
)
from tests.sdp.helpers import corpus, sdp


def names(codecs: tuple[Codec, ...]) -> list[str]:
    return [f"{c.payload_type}:{c.name}" for c in codecs]


CHROME = corpus("chrome-120-offer-audio-video-bundle.sdp")
CHROME_AUDIO = codecs_of(CHROME.media[0])
CHROME_VIDEO = codecs_of(CHROME.media[1])


def test_static_table_follows_rfc_3551() -> None:
    assert STATIC_PAYLOAD_TYPES[0] == ("PCMU", 8000, 1)
    assert STATIC_PAYLOAD_TYPES[8] == ("PCMA", 8000, 1)
    assert STATIC_PAYLOAD_TYPES[9] == ("G722", 8000, 1)
    assert STATIC_PAYLOAD_TYPES[13] == ("CN", 8000, 1)
    assert STATIC_PAYLOAD_TYPES[18] == ("G729", 8000, 1)
    assert STATIC_PAYLOAD_TYPES[34] == ("H263", 90000, None)
    assert 2 not in STATIC_PAYLOAD_TYPES  # reserved since RFC 3551


def test_codecs_of_names_static_types_and_skips_unmapped_dynamic_ones() -> None:
    section = parse_sdp(
        sdp(
            "m=audio 4000 RTP/AVP 0 18 96 97 35 101",
            "a=rtpmap:97 speex/16000",
            "a=rtpmap:101 telephone-event/8000",
            "a=fmtp:101 0-16",
            "a=fmtp:101 0-15",
            "a=fmtp:18 annexb=no",
        )
    ).media[0]
    codecs = codecs_of(section)
    assert codecs == (
        Codec(0, "PCMU", 8000, 1),
        Codec(18, "G729", 8000, 1, "annexb=no"),
        Codec(97, "speex", 16000),
        Codec(101, "telephone-event", 8000, None, "0-16"),
    )
    assert (
        codecs[0].key
        == codecs_of(parse_sdp(sdp("m=audio 1 RTP/AVP 0", "a=rtpmap:0 pcmu/8000")).media[0])[0].key
    )


def test_codecs_of_gathers_feedback_for_the_type_and_wildcard_in_order() -> None:
    section = parse_sdp(
        sdp(
            "m=video 4000 RTP/AVPF 96 97",
            "a=rtcp-fb:* ccm fir",
            "a=rtpmap:96 VP8/90000",
            "a=rtcp-fb:96 nack",
            "a=rtpmap:97 rtx/90000",
            "a=fmtp:97 apt=96",
            "a=rtcp-fb:96 nack pli",
        )
    ).media[0]
    vp8, rtx = codecs_of(section)
    assert vp8.rtcp_fb == ("ccm fir", "nack", "nack pli")
    assert rtx.rtcp_fb == ("ccm fir",)
    assert rtx.repairs == 96


def test_codecs_of_skips_non_rtp_formats() -> None:
    section = parse_sdp(
        sdp("m=application 9 UDP/DTLS/SCTP webrtc-datachannel", "a=sctp-port:5000")
    ).media[0]
    assert codecs_of(section) == ()


def test_codecs_of_raises_on_a_malformed_rtpmap_of_a_listed_type() -> None:
    section = parse_sdp(sdp("m=audio 4000 RTP/AVP 96", "a=rtpmap:96 opus")).media[0]
    with pytest.raises(SdpParseError) as info:
        codecs_of(section)
    assert info.value.line_no == 0


def test_codec_properties() -> None:
    assert Codec(101, "Telephone-Event", 8000).is_telephone_event
    assert Codec(13, "CN", 8000, 1).is_comfort_noise
    assert Codec(96, "opus", 48000, 2).key == ("opus", 48000, 2)
    assert Codec(0, "PCMU", 8000).key == ("pcmu", 8000, 1)
    assert Codec(97, "rtx", 90000, None, "apt=96").repairs == 96
    assert Codec(97, "RTX", 90000, None, "apt=96;rtx-time=3000").repairs == 96
    assert Codec(63, "red", 48000, 2, "111/111").repairs == 111
    assert Codec(116, "red", 90000).repairs is None
    assert Codec(118, "ulpfec", 90000).repairs is None
    assert Codec(97, "rtx", 90000, None, "apt=x").repairs is None
    assert Codec(96, "opus", 48000, 2, "apt=1").repairs is None
    assert str(Codec(96, "opus", 48000, 2)) == "opus/48000/2"
    assert str(Codec(0, "PCMU", 8000, 1)) == "PCMU/8000"


def test_whitelist_keeps_dtmf_and_cn_and_the_repair_of_kept_codecs() -> None:
    kept = filter_codecs(CHROME_AUDIO, whitelist=["OPUS"])
    assert names(kept) == [
        "111:opus",
        "63:red",
        "13:CN",
        "110:telephone-event",
        "126:telephone-event",
    ]
    kept = filter_codecs(CHROME_AUDIO, whitelist=["PCMU", "pcma"])
    assert names(kept) == [
        "0:PCMU",
        "8:PCMA",
        "13:CN",
        "110:telephone-event",
        "126:telephone-event",
    ]


def test_blacklist_removes_what_it_names_dtmf_included() -> None:
    kept = filter_codecs(CHROME_AUDIO, blacklist=["telephone-event", "CN", "opus"])
    # red repairs opus, so it goes with it.
    assert names(kept) == ["9:G722", "0:PCMU", "8:PCMA"]


def test_rtx_follows_the_codec_it_repairs() -> None:
    kept = filter_codecs(CHROME_VIDEO, whitelist=["VP8"])
    assert names(kept) == ["96:VP8", "97:rtx", "116:red", "117:rtx", "118:ulpfec"]
    kept = filter_codecs(CHROME_VIDEO, whitelist=["vp8"], blacklist=["red"])
    # The RTX of RED (apt=116) goes with RED.
    assert names(kept) == ["96:VP8", "97:rtx", "118:ulpfec"]
    kept = filter_codecs(CHROME_VIDEO, blacklist=["rtx", "red", "ulpfec", "H264", "VP9"])
    assert names(kept) == ["96:VP8", "45:AV1"]
    h264 = filter_codecs(CHROME_VIDEO, whitelist=["H264"], blacklist=["red", "ulpfec"])
    assert [c.name for c in h264] == ["H264", "rtx"] * 7
    assert all(c.repairs == h264[i - 1].payload_type for i, c in enumerate(h264) if c.is_repair)


def test_a_repair_codec_for_a_missing_type_is_dropped() -> None:
    codecs = (Codec(0, "PCMU", 8000), Codec(97, "rtx", 8000, None, "apt=96"))
    assert filter_codecs(codecs) == (Codec(0, "PCMU", 8000),)


def test_nothing_left_but_dtmf() -> None:
    kept = filter_codecs(CHROME_AUDIO, whitelist=["AMR-WB"])
    assert names(kept) == ["13:CN", "110:telephone-event", "126:telephone-event"]
    assert not has_media_codec(kept)
    assert has_media_codec(CHROME_AUDIO)
    assert not has_media_codec(filter_codecs(CHROME_VIDEO, whitelist=["theora"]))
    assert filter_codecs(CHROME_VIDEO, whitelist=["theora"]) == ()


def test_no_lists_keep_everything_consistent() -> None:
    assert filter_codecs(CHROME_AUDIO) == CHROME_AUDIO
    assert filter_codecs(CHROME_VIDEO) == CHROME_VIDEO


def test_format_codecs() -> None:
    assert format_codecs(filter_codecs(CHROME_AUDIO, whitelist=["opus", "PCMU"])) == (
        "opus/48000/2, red/48000/2, PCMU/8000, CN/8000, telephone-event/48000, telephone-event/8000"
    )
    assert format_codecs(()) == ""
