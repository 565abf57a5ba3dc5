"""The media peers on their own, without a gateway: two aiortc browsers talk to each other,
two RTP phones talk to each other, and the tone arithmetic is right.

If these fail, a media integration test failing through the gateway says nothing about the
gateway. Everything runs on loopback and every wait is bounded.
"""

from __future__ import annotations

import itertools

import pytest
import trio

from tests.integration.rtp_peer import RtpPeer, audio_destination
from tests.integration.tone import (
    ToneError,
    alaw_decode,
    alaw_encode,
    decode_pcma,
    decode_pcmu,
    dominant_frequency,
    encode_pcma,
    encode_pcmu,
    rms,
    sine_samples,
    ulaw_decode,
    ulaw_encode,
)
from tests.integration.webrtc_peer import PeerStats, WebRtcPeer, WebRtcPeerError


def near(measured: float | None, expected: float, tolerance: float = 0.02) -> bool:
    """``measured`` is within ``tolerance`` (a fraction) of ``expected``."""
    return measured is not None and abs(measured - expected) <= tolerance * expected


# -- tone.py ----------------------------------------------------------------------------------


def test_ulaw_round_trip() -> None:
    # Every code decodes to a value that encodes back to it, except 0x7F: mu-law has two
    # zeros and "negative zero" comes back as 0xFF.
    assert [c for c in range(256) if ulaw_encode(ulaw_decode(c)) != c] == [0x7F]
    assert ulaw_encode(0) == 0xFF
    assert (ulaw_decode(0x00), ulaw_decode(0x80)) == (-32124, 32124)


def test_alaw_round_trip() -> None:
    assert [c for c in range(256) if alaw_encode(alaw_decode(c)) != c] == []
    assert alaw_encode(0) == 0xD5
    assert (alaw_decode(0xD5), alaw_decode(0x55)) == (8, -8)
    assert (alaw_decode(0xAA), alaw_decode(0x2A)) == (32256, -32256)


@pytest.mark.parametrize(
    ("encode", "decode"), [(ulaw_encode, ulaw_decode), (alaw_encode, alaw_decode)]
)
def test_g711_error_is_logarithmic(encode: object, decode: object) -> None:
    assert callable(encode)
    assert callable(decode)
    worst = max(abs(decode(encode(x)) - x) / max(16, abs(x) / 16) for x in range(-32000, 32001, 7))
    assert worst <= 1.0, worst


def test_g711_payloads() -> None:
    tone = sine_samples(440, 8000, 160)
    assert len(encode_pcmu(tone)) == len(encode_pcma(tone)) == 160
    for decoded in (decode_pcmu(encode_pcmu(tone)), decode_pcma(encode_pcma(tone))):
        assert max(abs(a - b) for a, b in zip(decoded, tone, strict=True)) <= 1024


@pytest.mark.parametrize(
    ("hz", "rate"), [(440, 8000), (1000, 8000), (3000, 8000), (123.4, 8000), (1000, 48000)]
)
def test_dominant_frequency_of_clean_tones(hz: float, rate: int) -> None:
    measured = dominant_frequency(sine_samples(hz, rate, rate // 2), rate)
    print(f"{hz} Hz at {rate} Hz -> {measured:.2f} Hz")
    assert near(measured, hz, 0.005)


def test_dominant_frequency_ignores_leading_silence_and_g711() -> None:
    samples = [0] * 2000 + decode_pcmu(encode_pcmu(sine_samples(440, 8000, 4000, amplitude=0.1)))
    assert near(dominant_frequency(samples, 8000), 440)


def test_dominant_frequency_of_nothing() -> None:
    with pytest.raises(ToneError, match="silence"):
        dominant_frequency([0] * 800, 8000)
    with pytest.raises(ToneError, match="64 needed"):
        dominant_frequency(sine_samples(440, 8000, 20), 8000)


def test_rms_of_a_sine() -> None:
    assert rms([]) == 0.0
    # A sine's RMS is its peak over the square root of two.
    assert abs(rms(sine_samples(1000, 8000, 8000, amplitude=0.5)) - 0.5 * 32767 / 2**0.5) < 20


# -- RtpPeer ----------------------------------------------------------------------------------


async def test_rtp_peers_carry_a_tone() -> None:
    with trio.fail_after(20):
        async with RtpPeer.open() as phone, RtpPeer.open() as pbx:
            sdp = pbx.sdp()
            assert f"m=audio {pbx.port} RTP/AVP 0 8 101\r\n" in sdp
            assert "a=rtpmap:101 telephone-event/8000\r\n" in sdp
            assert audio_destination(sdp) == ("127.0.0.1", pbx.port)
            assert pbx.rtcp_port != pbx.port
            sent = await phone.send_tone(audio_destination(sdp), hz=440, seconds=1.2)
            received = await pbx.wait_for_packets(sent)
            hz = pbx.audio_hz(0)
            print(f"RTP: sent {sent} PCMU packets, received {len(received)}, measured {hz} Hz")
            assert sent == 60
            assert {p.payload_type for p in received} == {0}
            assert {p.source for p in received} == {(phone.host, phone.port)}
            assert len({p.ssrc for p in received}) == 1
            seqs = [p.seq for p in received]
            assert all((b - a) & 0xFFFF == 1 for a, b in itertools.pairwise(seqs))
            assert received[0].marker
            assert not any(p.marker for p in received[1:])
            assert near(hz, 440)
            assert pbx.audio_hz(8) is None


async def test_rtp_peer_pcma_and_events() -> None:
    with trio.fail_after(20):
        async with RtpPeer.open() as phone, RtpPeer.open() as pbx:
            to = (pbx.host, pbx.port)
            await phone.send_tone(to, hz=1000, payload_type=8, seconds=0.6)
            sent = await phone.send_event(to, 5, duration_ms=100)
            await phone.send_event(to, 11, duration_ms=60)
            await pbx.wait_for_packets(30 + sent + 5)
            hz = pbx.audio_hz(8)
            events = pbx.telephone_events()
            print(f"PCMA measured {hz} Hz; events {events}")
            assert near(hz, 1000)
            # Three end packets per event, reported once each, durations in 8 kHz units.
            assert events == [(5, 800), (11, 480)]


async def test_rtp_echo_returns_packets() -> None:
    with trio.fail_after(20):
        async with RtpPeer.open(echo=True) as echo, RtpPeer.open() as phone:
            sent = await phone.send_tone((echo.host, echo.port), hz=440, seconds=0.5, ssrc=1234)
            back = await phone.wait_for_packets(sent)
            print(f"echo: sent {sent}, got back {len(back)}, {phone.audio_hz()} Hz")
            assert {p.source for p in back} == {(echo.host, echo.port)}
            assert {p.ssrc for p in back} == {1234}
            assert [p.payload for p in back] == [p.payload for p in echo.received]
            assert near(phone.audio_hz(), 440)


def test_rtp_peer_sdp_shapes() -> None:
    assert audio_destination(
        "v=0\r\nc=IN IP4 10.0.0.1\r\nm=audio 4000 RTP/AVP 0\r\nc=IN IP4 10.0.0.2\r\n"
        "m=video 5000 RTP/AVP 96\r\nc=IN IP4 10.0.0.3\r\n"
    ) == ("10.0.0.2", 4000)
    assert audio_destination("v=0\r\nc=IN IP4 10.0.0.1\r\nm=audio 4000 RTP/AVP 0\r\n") == (
        "10.0.0.1",
        4000,
    )


# -- WebRtcPeer -------------------------------------------------------------------------------


def show(name: str, stats: PeerStats) -> None:
    print(
        f"{name}: {stats.connection_state}/{stats.ice_state}/{stats.dtls_state}, "
        f"{stats.audio_frames} audio frames at {stats.audio_hz} Hz (rms {stats.audio_rms:.0f}), "
        f"{stats.video_frames} video frames, {stats.rtp_packets_received} RTP packets"
    )


@pytest.mark.parametrize(
    ("audio", "video", "bundle"),
    [
        ("pcmu", False, True),
        ("opus", False, True),
        ("g722", False, True),
        ("pcma", True, True),
        ("pcmu", True, False),
    ],
)
async def test_two_browsers(audio: str, video: bool, bundle: bool) -> None:
    with trio.fail_after(45):
        async with WebRtcPeer.start() as a, WebRtcPeer.start() as b:
            offer = await a.offer(audio=audio, video=video, tone_hz=1000, bundle=bundle)
            assert "a=candidate:" in offer
            assert " 127.0.0.1 " in offer
            assert ("a=group:BUNDLE" in offer) == bundle
            audio_line = next(line for line in offer.splitlines() if line.startswith("m=audio"))
            assert len(audio_line.split()) == 4, audio_line  # one codec offered
            assert offer.count("m=video") == int(video)
            answer = await b.answer(offer, tone_hz=440)
            assert ("a=group:BUNDLE" in answer) == bundle
            await a.accept_answer(answer)

            at_a = await a.wait_for_audio(min_frames=50)
            at_b = await b.wait_for_audio(min_frames=50)
            show(f"A ({audio}, video={video}, bundle={bundle})", at_a)
            show("B", at_b)
            for stats in (at_a, at_b):
                assert stats.connection_state == "connected"
                assert stats.dtls_state == "connected"
                assert stats.audio_rms > 1000
                assert stats.audio_packets_received > 0
                assert stats.rtp_packets_sent > 0
            assert near(at_a.audio_hz, 440), at_a
            assert near(at_b.audio_hz, 1000), at_b
            if video:
                show("A video", await a.wait_for_video(min_frames=10))
                show("B video", await b.wait_for_video(min_frames=10))
            else:
                assert at_a.video_frames == at_b.video_frames == 0
            await a.close()
            await b.close()


async def test_browser_reports_errors_and_survives() -> None:
    with trio.fail_after(30):
        async with WebRtcPeer.start() as peer:
            with pytest.raises(WebRtcPeerError, match="no connection"):
                await peer.stats()
            # A plain RTP offer, as a SIP phone makes it: no ICE, no DTLS.
            async with RtpPeer.open() as phone:
                with pytest.raises(WebRtcPeerError, match="answer failed: ValueError: ICE"):
                    await peer.answer(phone.sdp())
            with pytest.raises(WebRtcPeerError, match="not one of"):
                await peer.offer(audio="g729")
            offer = await peer.offer(audio="pcma")
            assert "PCMA/8000" in offer
            assert "opus" not in offer


async def test_two_browsers_with_h264_video() -> None:
    with trio.fail_after(45):
        async with WebRtcPeer.start() as a, WebRtcPeer.start() as b:
            offer = await a.offer(audio="pcmu", video=True, video_codec="h264", tone_hz=1000)
            video_rtpmaps = [
                line.split()[1] for line in offer.splitlines() if line.startswith("a=rtpmap:")
            ]
            assert any(name.startswith("H264/90000") for name in video_rtpmaps), offer
            assert not any(name.startswith("VP8/") for name in video_rtpmaps), offer
            await a.accept_answer(await b.answer(offer, tone_hz=440))
            at_a = await a.wait_for_video(min_frames=10)
            at_b = await b.wait_for_video(min_frames=10)
            show("A H.264", at_a)
            show("B H.264", at_b)
            assert at_a.video_packets_received > 0 and at_b.video_packets_received > 0
            with pytest.raises(WebRtcPeerError, match="not one of"):
                await a.offer(video=True, video_codec="av1")
