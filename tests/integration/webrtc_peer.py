"""A WebRTC "browser" for the integration tests: aiortc in a child process, driven from trio.

aiortc runs on asyncio and the tests run on trio, so the peer is a small program
(``python -m tests.integration.webrtc_peer``) that reads one JSON command per line on
standard input and writes exactly one JSON reply line per command on standard output; its
logs go to standard error. ``WebRtcPeer`` is the trio side: it starts the program, sends
commands and turns replies into values or ``WebRtcPeerError``.

The program holds one ``RTCPeerConnection`` at a time (a new offer or answer replaces it).
It sends a sine tone as its audio track (and generated frames as video when asked), keeps
the last second of the audio it receives, resampled to 16 kHz mono, and reports the
dominant frequency and energy of that second, the frames and RTP packets it received, and
the connection, ICE and DTLS states. Everything stays on loopback: no STUN server, and
aioice's host-address lookup is patched to offer 127.0.0.1 only (aioice filters it out
otherwise). A command that fails is answered with an error reply; the program goes on.
It does not trickle ICE candidates, renegotiate or send data channels.
"""

from __future__ import annotations

import asyncio
import contextlib
import fractions
import json
import logging
import os
import subprocess
import sys
from array import array
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, TextIO

import aioice.ice
import trio
from aiortc import (
    MediaStreamTrack,
    RTCConfiguration,
    RTCPeerConnection,
    RTCRtpCodecCapability,
    RTCRtpSender,
    RTCSessionDescription,
)
from aiortc.mediastreams import MediaStreamError
from aiortc.rtcconfiguration import RTCBundlePolicy
from av import AudioFrame, AudioResampler, VideoFrame
from av.frame import Frame

from tests.integration.tone import ToneError, dominant_frequency, rms, sine_samples

__all__ = ["AUDIO_CODECS", "VIDEO_CODECS", "PeerStats", "WebRtcPeer", "WebRtcPeerError", "main"]

#: Our audio codec names and the MIME types aiortc knows them by.
AUDIO_CODECS = {
    "pcmu": "audio/PCMU",
    "pcma": "audio/PCMA",
    "g722": "audio/G722",
    "opus": "audio/opus",
}
#: The rate the tone is generated at for each audio codec (G.722 codes 16 kHz audio).
_TONE_RATES = {"opus": 48000, "g722": 16000}
#: Our video codec names and the MIME types aiortc knows them by (H.264 needs PyAV's
#: libx264 encoder, which its wheels bundle).
VIDEO_CODECS = {"vp8": "video/VP8", "h264": "video/H264"}

REPO_ROOT = Path(__file__).resolve().parents[2]

#: Received audio is resampled to this rate before it is measured: tones up to 8 kHz.
_ANALYSIS_RATE = 16000
_AUDIO_PTIME_S = 0.020
#: Generated video: small, slow frames keep VP8 cheap on a two-core CI machine.
_VIDEO_SIZE = (320, 240)
_VIDEO_FPS = 15
_VIDEO_CLOCK = 90000
#: A command the program does not answer within this time marks the peer as broken.
_COMMAND_TIMEOUT_S = 30.0

log = logging.getLogger("webrtc_peer")


class WebRtcPeerError(Exception):
    """The WebRTC peer failed a command, died, or did not reach the awaited state."""


@dataclass(frozen=True, slots=True)
class PeerStats:
    """What the peer's connection is doing and what it has received so far."""

    #: RTCPeerConnection.connectionState ("new", "connecting", "connected", "failed", ...)
    connection_state: str
    #: RTCPeerConnection.iceConnectionState ("new", "checking", "completed", "failed", ...)
    ice_state: str
    #: "connected" when every DTLS transport is, else the state of the first that is not
    dtls_state: str
    signaling_state: str
    #: decoded audio frames received (20 ms each), all audio tracks together
    audio_frames: int
    #: dominant frequency of the last second of received audio; None when none arrived
    audio_hz: float | None
    #: RMS of the last second of received audio, in 16-bit sample units (0 = silence)
    audio_rms: float
    #: decoded video frames received
    video_frames: int
    #: RTP packets received (inbound-rtp packetsReceived), all streams together
    rtp_packets_received: int
    audio_packets_received: int
    video_packets_received: int
    #: RTP packets sent (outbound-rtp packetsSent), all streams together
    rtp_packets_sent: int

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> PeerStats:
        """The stats from a reply of the peer program."""
        try:
            return cls(**{field.name: data[field.name] for field in fields(cls)})
        except KeyError as missing:
            raise WebRtcPeerError(f"stats reply without {missing}: {data}") from None


# -- trio side ---------------------------------------------------------------------------------


class WebRtcPeer:
    """The trio handle of one peer program; create it with ``WebRtcPeer.start()``."""

    def __init__(self, process: trio.Process) -> None:
        self._process = process
        self._buffer = b""
        self._lock = trio.Lock()
        #: set while a command waits for its reply: if that wait is cancelled, the reply
        #: stream is out of step and the peer cannot be used any more
        self._in_flight: str | None = None

    @property
    def pid(self) -> int:
        return self._process.pid

    @classmethod
    @asynccontextmanager
    async def start(cls) -> AsyncIterator[WebRtcPeer]:
        """Start the peer program and yield its handle once it is ready.

        Resource handling: when the block ends, the program's standard input is closed
        (it closes its connection and exits); if it is still running 5 s later it is
        killed by its PID.
        """
        process = await trio.lowlevel.open_process(
            [sys.executable, "-m", "tests.integration.webrtc_peer"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            cwd=REPO_ROOT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        peer = cls(process)
        try:
            with trio.fail_after(_COMMAND_TIMEOUT_S):
                await peer._reply("start")
            yield peer
        finally:
            with trio.CancelScope(shield=True):
                await peer._stop()

    async def _stop(self) -> None:
        process = self._process
        if process.returncode is None and process.stdin is not None:
            with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
                await process.stdin.aclose()
            with trio.move_on_after(5):
                await process.wait()
        if process.returncode is None:
            process.kill()
            await process.wait()

    async def _call(self, command: str, **params: object) -> dict[str, Any]:
        async with self._lock:
            if self._in_flight is not None:
                raise WebRtcPeerError(
                    f"webrtc peer {self.pid} is unusable: the reply to {self._in_flight!r} "
                    "was never read"
                )
            stdin = self._process.stdin
            if stdin is None or self._process.returncode is not None:
                raise WebRtcPeerError(f"webrtc peer {self.pid} is not running ({command})")
            self._in_flight = command
            line = json.dumps({"command": command, **params}) + "\n"
            try:
                with trio.fail_after(_COMMAND_TIMEOUT_S):
                    await stdin.send_all(line.encode())
                    result = await self._reply(command)
            except trio.TooSlowError:
                raise WebRtcPeerError(
                    f"webrtc peer {self.pid}: no reply to {command!r} "
                    f"within {_COMMAND_TIMEOUT_S:.0f} s"
                ) from None
            except trio.BrokenResourceError:
                raise WebRtcPeerError(
                    f"webrtc peer {self.pid} closed its input before {command!r}"
                ) from None
            return result

    async def _reply(self, command: str) -> dict[str, Any]:
        """Read one reply line; its result, or WebRtcPeerError with the peer's message."""
        stdout = self._process.stdout
        if stdout is None:
            raise WebRtcPeerError(f"webrtc peer {self.pid} has no standard output pipe")
        while b"\n" not in self._buffer:
            chunk = await stdout.receive_some(65536)
            if not chunk:
                code = self._process.poll()
                raise WebRtcPeerError(
                    f"webrtc peer {self.pid} exited (code {code}) before replying to "
                    f"{command!r}; its log is on standard error"
                )
            self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        self._in_flight = None  # the reply is read: the stream is in step again
        try:
            reply = json.loads(line)
        except json.JSONDecodeError:
            raise WebRtcPeerError(
                f"webrtc peer {self.pid}: reply to {command!r} is not JSON: {line[:200]!r}"
            ) from None
        if not reply.get("ok"):
            raise WebRtcPeerError(f"webrtc peer {self.pid}: {command} failed: {reply.get('error')}")
        result: dict[str, Any] = reply.get("result", {})
        return result

    async def offer(
        self,
        *,
        audio: str = "pcmu",
        video: bool = False,
        tone_hz: float = 1000.0,
        bundle: bool = True,
        video_codec: str = "vp8",
    ) -> str:
        """A new connection's offer SDP, after ICE gathering: a sendrecv tone track whose
        codecs are restricted to ``audio`` ("pcmu", "pcma", "g722" or "opus"), and a video track
        restricted to ``video_codec`` ("vp8" or "h264", with rtx) when ``video``.
        ``bundle`` selects max-bundle; without it the offer has one transport per m-line
        and no BUNDLE group."""
        if audio not in AUDIO_CODECS:
            raise WebRtcPeerError(f"audio codec {audio!r} is not one of {sorted(AUDIO_CODECS)}")
        if video_codec not in VIDEO_CODECS:
            raise WebRtcPeerError(
                f"video codec {video_codec!r} is not one of {sorted(VIDEO_CODECS)}"
            )
        result = await self._call(
            "offer",
            audio=audio,
            video=video,
            tone_hz=tone_hz,
            bundle=bundle,
            video_codec=video_codec,
        )
        return str(result["sdp"])

    async def answer(self, offer_sdp: str, *, tone_hz: float = 1000.0) -> str:
        """A new connection's answer to ``offer_sdp``, sending our tone (and video frames
        when the offer has video), after ICE gathering."""
        result = await self._call("answer", sdp=offer_sdp, tone_hz=tone_hz)
        return str(result["sdp"])

    async def accept_answer(self, answer_sdp: str) -> None:
        """Apply the remote answer to our offer; ICE and DTLS start."""
        await self._call("accept_answer", sdp=answer_sdp)

    async def stats(self) -> PeerStats:
        """Current states and received media, the audio measured over its last second."""
        return PeerStats.from_json(await self._call("stats", measure=True))

    async def wait_for_audio(self, *, min_frames: int = 50, timeout_s: float = 15) -> PeerStats:
        """Poll until ``min_frames`` audio frames arrived; the stats then, or
        WebRtcPeerError with the last stats after ``timeout_s``."""
        return await self._wait_for("audio_frames", min_frames, timeout_s)

    async def wait_for_video(self, *, min_frames: int = 10, timeout_s: float = 15) -> PeerStats:
        """Poll until ``min_frames`` video frames arrived; as ``wait_for_audio``."""
        return await self._wait_for("video_frames", min_frames, timeout_s)

    async def _wait_for(self, counter: str, minimum: int, timeout_s: float) -> PeerStats:
        # A deadline checked between polls rather than a cancel scope: cancelling a command
        # halfway would leave its reply unread.
        deadline = trio.current_time() + timeout_s
        while True:
            # Polls skip the frequency measurement, which costs the peer tens of ms.
            stats = PeerStats.from_json(await self._call("stats", measure=False))
            if getattr(stats, counter) >= minimum:
                return await self.stats()
            if trio.current_time() >= deadline:
                final = await self.stats()
                raise WebRtcPeerError(
                    f"webrtc peer {self.pid}: {getattr(final, counter)} {counter} after "
                    f"{timeout_s} s, {minimum} wanted; {final}"
                )
            await trio.sleep(0.1)

    async def close(self) -> None:
        """Close the connection (DTLS close_notify, RTCP BYE); the program keeps running."""
        await self._call("close")


# -- the peer program (asyncio) ----------------------------------------------------------------


class ToneTrack(MediaStreamTrack):
    """An audio track of 20 ms s16 mono frames of a sine, paced in real time."""

    kind = "audio"

    def __init__(self, hz: float, rate: int) -> None:
        super().__init__()
        self.hz = hz
        self.rate = rate
        self._samples = round(rate * _AUDIO_PTIME_S)
        self._index = 0
        self._start: float | None = None

    async def recv(self) -> Frame:
        if self.readyState != "live":
            raise MediaStreamError
        loop = asyncio.get_running_loop()
        if self._start is None:
            self._start = loop.time()
        else:
            await asyncio.sleep(self._start + self._index * _AUDIO_PTIME_S - loop.time())
        offset = self._index * self._samples
        frame = AudioFrame(format="s16", layout="mono", samples=self._samples)
        data = array("h", sine_samples(self.hz, self.rate, self._samples, start=offset))
        plane = frame.planes[0]
        plane.update(data.tobytes().ljust(plane.buffer_size, b"\0"))
        frame.sample_rate = self.rate
        frame.pts = offset
        frame.time_base = fractions.Fraction(1, self.rate)
        self._index += 1
        return frame


class PatternVideoTrack(MediaStreamTrack):
    """A video track of small uniform frames whose shade changes every frame."""

    kind = "video"

    def __init__(self) -> None:
        super().__init__()
        self._index = 0
        self._start: float | None = None

    async def recv(self) -> Frame:
        if self.readyState != "live":
            raise MediaStreamError
        loop = asyncio.get_running_loop()
        if self._start is None:
            self._start = loop.time()
        else:
            await asyncio.sleep(self._start + self._index / _VIDEO_FPS - loop.time())
        width, height = _VIDEO_SIZE
        frame = VideoFrame(width=width, height=height, format="yuv420p")
        shades = ((self._index * 4) % 256, 128, 128)  # luma ramps, chroma stays neutral
        for plane, shade in zip(frame.planes, shades, strict=True):
            plane.update(bytes([shade]) * plane.buffer_size)
        frame.pts = self._index * (_VIDEO_CLOCK // _VIDEO_FPS)
        frame.time_base = fractions.Fraction(1, _VIDEO_CLOCK)
        self._index += 1
        return frame


def _loopback_only(use_ipv4: bool, use_ipv6: bool) -> list[str]:
    """aioice's host addresses, reduced to loopback: it skips 127.0.0.1 by itself."""
    return ["127.0.0.1"] if use_ipv4 else []


def _without_bundle(sdp: str) -> str:
    """The SDP without its ``a=group:BUNDLE`` line (aiortc always writes one)."""
    return "".join(
        line for line in sdp.splitlines(keepends=True) if not line.startswith("a=group:BUNDLE")
    )


def _first_audio_codec(sdp: str) -> str:
    """The encoding name of the first payload type of the first audio m-line ("" if none)."""
    first: str | None = None
    for line in sdp.splitlines():
        if first is None and line.startswith("m=audio "):
            parts = line.split()
            first = parts[3] if len(parts) > 3 else ""
        elif first and line.startswith(f"a=rtpmap:{first} "):
            return line.split()[1].split("/")[0].lower()
    return ""


class Session:
    """One RTCPeerConnection and what it received."""

    def __init__(self, bundle_policy: RTCBundlePolicy) -> None:
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[], bundlePolicy=bundle_policy))
        self.audio: deque[int] = deque(maxlen=_ANALYSIS_RATE)
        self.audio_frames = 0
        self.video_frames = 0
        self._consumers: set[asyncio.Task[None]] = set()
        self.pc.on("track", self._on_track)

    def _on_track(self, track: MediaStreamTrack) -> None:
        log.info("remote %s track %s", track.kind, track.id)
        consume = self._consume_audio if track.kind == "audio" else self._consume_video
        task = asyncio.ensure_future(consume(track))
        self._consumers.add(task)
        task.add_done_callback(self._consumers.discard)

    async def _consume_audio(self, track: MediaStreamTrack) -> None:
        resampler = AudioResampler(format="s16", layout="mono", rate=_ANALYSIS_RATE)
        while True:
            try:
                frame = await track.recv()
            except MediaStreamError:
                return
            if not isinstance(frame, AudioFrame):
                continue
            self.audio_frames += 1
            for out in resampler.resample(frame):
                samples = array("h")
                samples.frombytes(bytes(out.planes[0])[: out.samples * 2])
                self.audio.extend(samples)

    async def _consume_video(self, track: MediaStreamTrack) -> None:
        while True:
            try:
                await track.recv()
            except MediaStreamError:
                return
            self.video_frames += 1

    async def stats(self, *, measure: bool) -> PeerStats:
        received = {"audio": 0, "video": 0}
        sent = 0
        for item in (await self.pc.getStats()).values():
            if item.type == "inbound-rtp":
                received[item.kind] = received.get(item.kind, 0) + item.packetsReceived
            elif item.type == "outbound-rtp":
                sent += item.packetsSent
        states = {t.receiver.transport.state for t in self.pc.getTransceivers()}
        pending = sorted(states - {"connected"})
        samples = list(self.audio)
        audio_hz: float | None = None
        if measure and samples:
            try:
                audio_hz = dominant_frequency(samples, _ANALYSIS_RATE)
            except ToneError:
                audio_hz = None
        return PeerStats(
            connection_state=self.pc.connectionState,
            ice_state=self.pc.iceConnectionState,
            dtls_state=pending[0] if pending else ("connected" if states else "new"),
            signaling_state=self.pc.signalingState,
            audio_frames=self.audio_frames,
            audio_hz=audio_hz,
            audio_rms=rms(samples) if measure else 0.0,
            video_frames=self.video_frames,
            rtp_packets_received=sum(received.values()),
            audio_packets_received=received["audio"],
            video_packets_received=received["video"],
            rtp_packets_sent=sent,
        )

    async def close(self) -> None:
        await self.pc.close()
        for task in list(self._consumers):
            task.cancel()


class Program:
    """The command loop of the peer program: one reply line per command line."""

    def __init__(self, replies: TextIO) -> None:
        self._replies = replies
        self._session: Session | None = None
        self._commands: dict[str, Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]] = {
            "offer": self._offer,
            "answer": self._answer,
            "accept_answer": self._accept_answer,
            "stats": self._stats,
            "close": self._close,
        }

    def reply(self, ok: bool, payload: dict[str, Any] | str) -> None:
        message = {"ok": True, "result": payload} if ok else {"ok": False, "error": payload}
        self._replies.write(json.dumps(message) + "\n")
        self._replies.flush()

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader(limit=1 << 20)
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
        self.reply(True, {"pid": os.getpid()})
        try:
            while line := await reader.readline():
                await self.handle(line)
        finally:
            await self._replace(None)

    async def handle(self, line: bytes) -> None:
        try:
            request = json.loads(line)
            command = request.pop("command")
            handler = self._commands[command]
        except (json.JSONDecodeError, AttributeError, KeyError, TypeError):
            self.reply(False, f"not a known command: {line[:200]!r}")
            return
        # Stats are polled several times a second: keep them out of the log.
        log.log(
            logging.DEBUG if command == "stats" else logging.INFO,
            "%s %s",
            command,
            {k: v for k, v in request.items() if k != "sdp"},
        )
        try:
            result = await handler(request)
        # Any failure inside aiortc becomes the error reply the test sees, with the
        # traceback on standard error: the program must survive a bad SDP.
        except Exception as error:
            log.exception("%s failed", command)
            self.reply(False, f"{type(error).__name__}: {error}")
            return
        self.reply(True, result)

    async def _replace(self, session: Session | None) -> None:
        previous, self._session = self._session, session
        if previous is not None:
            await previous.close()

    def _current(self) -> Session:
        if self._session is None:
            raise WebRtcPeerError("no connection: send an offer or an answer first")
        return self._session

    async def _offer(self, request: dict[str, Any]) -> dict[str, Any]:
        audio, video, bundle = request["audio"], bool(request["video"]), bool(request["bundle"])
        video_codec = request.get("video_codec", "vp8")
        if audio not in AUDIO_CODECS:
            raise WebRtcPeerError(f"audio codec {audio!r} is not one of {sorted(AUDIO_CODECS)}")
        if video_codec not in VIDEO_CODECS:
            raise WebRtcPeerError(
                f"video codec {video_codec!r} is not one of {sorted(VIDEO_CODECS)}"
            )
        # max-bundle: every m-line on one transport, as browsers do; balanced otherwise,
        # which gives audio and video a transport each.
        policy = RTCBundlePolicy.MAX_BUNDLE if bundle else RTCBundlePolicy.BALANCED
        session = Session(policy)
        await self._replace(session)
        rate = _TONE_RATES.get(audio, 8000)
        tone = ToneTrack(float(request["tone_hz"]), rate)
        transceiver = session.pc.addTransceiver(tone, direction="sendrecv")
        transceiver.setCodecPreferences(_codecs("audio", {AUDIO_CODECS[audio]}))
        if video:
            transceiver = session.pc.addTransceiver(PatternVideoTrack(), direction="sendrecv")
            wanted = {VIDEO_CODECS[video_codec], "video/rtx"}
            transceiver.setCodecPreferences(_codecs("video", wanted))
        offer = await session.pc.createOffer()
        sdp = offer.sdp if bundle else _without_bundle(offer.sdp)
        # aiortc gathers every candidate inside setLocalDescription (no trickle).
        await session.pc.setLocalDescription(RTCSessionDescription(sdp=sdp, type="offer"))
        return {"sdp": session.pc.localDescription.sdp}

    async def _answer(self, request: dict[str, Any]) -> dict[str, Any]:
        offer_sdp = str(request["sdp"])
        session = Session(RTCBundlePolicy.BALANCED)  # the offer's BUNDLE group decides
        await self._replace(session)
        pc = session.pc
        await pc.setRemoteDescription(RTCSessionDescription(sdp=offer_sdp, type="offer"))
        rate = _TONE_RATES.get(_first_audio_codec(offer_sdp), 8000)
        for transceiver in pc.getTransceivers():
            # addTrack fills the first transceiver of its kind that has no track yet.
            if transceiver.kind == "audio":
                pc.addTrack(ToneTrack(float(request["tone_hz"]), rate))
            elif transceiver.kind == "video":
                pc.addTrack(PatternVideoTrack())
        answer = await pc.createAnswer()
        sdp = answer.sdp
        if "a=group:BUNDLE" not in offer_sdp:
            # RFC 8843 section 7.3.1: no BUNDLE group in an answer to an offer without one.
            sdp = _without_bundle(sdp)
        await pc.setLocalDescription(RTCSessionDescription(sdp=sdp, type="answer"))
        return {"sdp": pc.localDescription.sdp}

    async def _accept_answer(self, request: dict[str, Any]) -> dict[str, Any]:
        answer = RTCSessionDescription(sdp=str(request["sdp"]), type="answer")
        await self._current().pc.setRemoteDescription(answer)
        return {}

    async def _stats(self, request: dict[str, Any]) -> dict[str, Any]:
        return asdict(await self._current().stats(measure=bool(request.get("measure", True))))

    async def _close(self, request: dict[str, Any]) -> dict[str, Any]:
        await self._replace(None)
        return {}


def _codecs(kind: str, mime_types: set[str]) -> list[RTCRtpCodecCapability]:
    """aiortc's codecs of ``kind`` whose MIME type is in ``mime_types``, in its order."""
    wanted = {m.lower() for m in mime_types}
    chosen = [
        codec
        for codec in RTCRtpSender.getCapabilities(kind).codecs
        if codec.mimeType.lower() in wanted
    ]
    if not chosen:
        raise WebRtcPeerError(f"aiortc has no {kind} codec among {sorted(mime_types)}")
    return chosen


def main() -> None:
    """Run the peer program on standard input and output."""
    logging.basicConfig(
        stream=sys.stderr, level=logging.WARNING, format="webrtc_peer %(levelname)s %(message)s"
    )
    log.setLevel(logging.INFO)
    # Replies own the real standard output; anything else printed goes to standard error.
    replies = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)
    aioice.ice.get_host_addresses = _loopback_only
    asyncio.run(Program(replies).run())


if __name__ == "__main__":
    main()
