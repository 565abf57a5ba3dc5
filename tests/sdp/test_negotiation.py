"""Reading peers' offers and answers once (``describe``) and matching an answer's codecs."""

from __future__ import annotations

import pytest

from rtcgw.sdp import LegProfile, parse_sdp
from rtcgw.sdp.attributes import Direction, Setup
from rtcgw.sdp.codecs import Codec
from rtcgw.sdp.errors import SdpNegotiationError
from rtcgw.sdp.negotiation import answer_codecs, describe
from tests.sdp.helpers import corpus, sdp

CHROME_STREAM = "f3c95789-ace1-4954-ac5d-6baed2eac902"


def test_a_bundled_chrome_offer() -> None:
    remote = describe(corpus("chrome-120-offer-audio-video-bundle.sdp"))
    assert remote.profile is LegProfile.WEBRTC
    assert remote.bundle == ("0", "1")
    audio, video = remote.streams
    assert remote.bundled(audio) and remote.bundled(video)
    assert (audio.media, video.media) == ("audio", "video")
    assert audio.ice == ("hs5L", "dTGjjGu5PDHHIUrQdMftdK7Z")
    assert audio.setup is Setup.ACTPASS and audio.rtcp_mux
    assert audio.ssrcs == (2506203346,)
    assert audio.msid == f"{CHROME_STREAM} cbf27734-ac10-4525-8b66-402800e03d2c"
    # Both tracks belong to one MediaStream: the other leg's browser syncs them.
    assert video.msid is not None and video.msid.split()[0] == CHROME_STREAM
    assert [c.name for c in audio.codecs][:2] == ["opus", "red"]


def test_the_msid_of_an_older_browser_comes_from_its_ssrc_lines() -> None:
    remote = describe(
        parse_sdp(
            sdp(
                "m=audio 9 UDP/TLS/RTP/SAVPF 111",
                "a=rtpmap:111 opus/48000/2",
                "a=ssrc:77 cname:x",
                "a=ssrc:77 msid:stream track",
            ).encode()
        )
    )
    assert remote.streams[0].msid == "stream track"
    assert remote.streams[0].ssrcs == (77,)


def test_a_sip_phone_offer_has_no_webrtc_attributes() -> None:
    (stream,) = describe(corpus("sipp-uac-pcmu.sdp")).streams
    assert stream.profile is LegProfile.RTP_AVP
    assert (stream.address, stream.port) == ("127.0.0.1", 6000)
    assert stream.ice is None and stream.fingerprints == () and stream.msid is None
    assert stream.direction is Direction.SENDRECV
    assert [c.name for c in stream.codecs] == ["PCMU"]


def test_an_sdes_offer_keeps_every_crypto_line_in_order() -> None:
    (stream,) = describe(corpus("freeswitch-1.10-offer-savp-sdes.sdp")).streams
    assert stream.profile is LegProfile.RTP_SAVP
    assert [c.tag for c in stream.crypto] == list(range(1, 10))
    assert stream.crypto[4].suite == "AES_CM_128_HMAC_SHA1_80"
    assert (stream.rtcp_port, stream.rtcp_address) == (24917, "198.51.100.9")


def test_a_description_without_m_lines_is_refused() -> None:
    with pytest.raises(SdpNegotiationError, match="no m-line"):
        describe(parse_sdp(sdp().encode()))


def test_a_malformed_attribute_names_its_m_line() -> None:
    bad = sdp("m=audio 4000 RTP/SAVP 0", "a=rtpmap:0 PCMU/8000", "a=crypto:1")
    with pytest.raises(SdpNegotiationError, match=r"m-line 1 \(audio\)"):
        describe(parse_sdp(bad.encode()))


def test_answered_codecs_keep_the_offerers_payload_types_in_the_answers_order() -> None:
    offered = (
        Codec(111, "opus", 48000, 2),
        Codec(0, "PCMU", 8000),
        Codec(126, "telephone-event", 8000),
    )
    # The answerer renumbered telephone-event and preferred PCMU.
    answered = (Codec(0, "PCMU", 8000), Codec(101, "telephone-event", 8000))
    chosen = answer_codecs(offered, answered)
    assert [(c.payload_type, c.name) for c in chosen] == [(0, "PCMU"), (126, "telephone-event")]


def test_an_answer_with_only_telephone_event_has_no_common_codec() -> None:
    offered = (Codec(0, "PCMU", 8000), Codec(101, "telephone-event", 8000))
    with pytest.raises(SdpNegotiationError, match="no common codec: offered"):
        answer_codecs(offered, (Codec(101, "telephone-event", 8000),))


def test_a_captured_chromium_offer() -> None:
    remote = describe(corpus("chromium-156-offer-audio-video-bundle.sdp"))
    audio, video = remote.streams
    assert remote.bundle == ("0", "1") and remote.profile is LegProfile.WEBRTC
    assert audio.setup is Setup.ACTPASS and audio.rtcp_mux and audio.ice is not None
    # A track with no MediaStream: Chromium writes "-" as the stream id.
    assert audio.msid is not None and audio.msid.startswith("- ")
    assert [c.name for c in audio.codecs][:2] == ["opus", "red"]
    names = {c.name for c in video.codecs}
    assert {"VP8", "H264", "rtx"} <= names
    assert audio.candidates == ()  # trickle ICE: candidates come later, or not at all


def test_a_captured_chromium_answer_to_the_gateways_offer() -> None:
    (stream,) = describe(corpus("chromium-156-answer-audio.sdp")).streams
    assert stream.setup is Setup.ACTIVE  # the browser takes the DTLS client role
    assert [c.name for c in stream.codecs] == ["PCMU", "PCMA", "telephone-event"]
    assert stream.msid is not None and len(stream.ssrcs) == 1
    assert stream.rtcp_mux and stream.mid == "0"
