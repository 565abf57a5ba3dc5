"""The demo SIP service's trio edge: one UDP socket for SIP, one per extension call for RTP."""

from __future__ import annotations

import secrets
import socket as _socket
from dataclasses import dataclass, field

import trio

from rtcgw.demo.core import (
    ECHO_EXTENSION,
    Action,
    DemoCore,
    LogEvent,
    Retransmit,
    Send,
    StartMedia,
    StopMedia,
)
from rtcgw.demo.media import dtmf_event, rtp_packet, rtp_payload, tone_frames
from rtcgw.demo.registrar import Registrar
from rtcgw.observability.logging import get_logger
from rtcgw.sip import Request, SipError, parse_message

__all__ = ["TONE_HZ", "serve_demo"]

log = get_logger()

TONE_HZ = 440.0
_FRAME_S = 0.020
# RFC 3261 timers for 2xx retransmission: T1, T2 and 64*T1.
_T1, _T2, _GIVE_UP_S = 0.5, 4.0, 32.0


@dataclass(eq=False)
class _Media:
    """One extension call's RTP socket and what it does with it."""

    call_id: str
    sock: trio.socket.SocketType
    port: int
    start: StartMedia | None = None
    scope: trio.CancelScope = field(default_factory=trio.CancelScope)
    packets_in: int = 0
    packets_out: int = 0

    async def run(self) -> None:
        with self.scope:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._receive)
                if self.start is not None and self.start.extension != ECHO_EXTENSION:
                    nursery.start_soon(self._tone)
        log.info(
            "demo.media_closed",
            call_id=self.call_id,
            packets_in=self.packets_in,
            packets_out=self.packets_out,
        )
        self.sock.close()

    async def _receive(self) -> None:
        last_digit: tuple[str, int] | None = None
        while True:
            packet, source = await self.sock.recvfrom(2048)
            start = self.start
            parsed = rtp_payload(packet)
            if start is None or parsed is None:
                continue
            self.packets_in += 1
            pt, timestamp, payload = parsed
            if start.extension == ECHO_EXTENSION:
                if start.sending:
                    # Symmetric RTP: back to where it came from, as it came.
                    await self.sock.sendto(packet, source)
                    self.packets_out += 1
            elif pt == start.event_payload_type:
                event = dtmf_event(payload)
                if event is not None and event[1] and (event[0], timestamp) != last_digit:
                    # The end packet is sent three times (RFC 4733 2.5.1.4): log it once.
                    last_digit = (event[0], timestamp)
                    log.info("demo.dtmf", call_id=self.call_id, digit=event[0], via="rfc4733")

    async def _tone(self) -> None:
        frames: dict[str, list[bytes]] = {}
        ssrc = secrets.randbits(32)
        seq = secrets.randbits(16)
        stamp = secrets.randbits(32)
        deadline = trio.current_time()
        index = 0
        while True:
            start = self.start
            assert start is not None
            if start.sending:
                codec = start.codec.upper()
                if codec not in frames:
                    frames[codec] = tone_frames(TONE_HZ, codec)
                payload = frames[codec][index % len(frames[codec])]
                packet = rtp_packet(start.payload_type, seq, stamp, ssrc, payload)
                try:
                    await self.sock.sendto(packet, start.remote)
                    self.packets_out += 1
                except OSError as exc:
                    log.warning("demo.rtp_send_failed", call_id=self.call_id, error=str(exc))
            index += 1
            seq = (seq + 1) & 0xFFFF
            stamp = (stamp + 160) & 0xFFFFFFFF
            deadline += _FRAME_S
            await trio.sleep_until(deadline)


async def _open_rtp(host: str) -> tuple[trio.socket.SocketType, int]:
    sock = trio.socket.socket(_socket.AF_INET, _socket.SOCK_DGRAM)
    await sock.bind((host, 0))
    return sock, int(sock.getsockname()[1])


async def serve_demo(
    host: str,
    port: int,
    registrar: Registrar,
    *,
    task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve the demo SIP service on UDP ``host:port`` until cancelled; reports the port."""
    sock = trio.socket.socket(_socket.AF_INET, _socket.SOCK_DGRAM)
    with sock:
        await sock.bind((host, port))
        bound = int(sock.getsockname()[1])
        core = DemoCore(host, bound, registrar)
        media: dict[str, _Media] = {}
        async with trio.open_nursery() as nursery:

            async def send(action: Send) -> None:
                try:
                    await sock.sendto(bytes(action.message), action.destination)
                except OSError as exc:
                    log.warning(
                        "demo.send_failed",
                        call_id=action.message.get("Call-ID") or "",
                        destination=f"{action.destination[0]}:{action.destination[1]}",
                        error=str(exc),
                    )

            async def retransmit(action: Retransmit) -> None:
                interval, waited = _T1, 0.0
                while waited < _GIVE_UP_S:
                    await trio.sleep(interval)
                    waited += interval
                    if not core.awaiting_ack(action.call_id, action.cseq):
                        return
                    await send(Send(action.message, action.destination))
                    interval = min(interval * 2, _T2)
                log.warning("demo.ack_missing", call_id=action.call_id)

            async def perform(actions: list[Action], fresh: _Media | None) -> None:
                for action in actions:
                    if isinstance(action, Send):
                        await send(action)
                    elif isinstance(action, Retransmit):
                        nursery.start_soon(retransmit, action)
                    elif isinstance(action, StartMedia):
                        session = media.get(action.call_id)
                        if session is None and fresh is not None:
                            session, fresh = fresh, None
                            media[action.call_id] = session
                            session.start = action
                            nursery.start_soon(session.run)
                        elif session is not None:
                            session.start = action
                    elif isinstance(action, StopMedia):
                        stopped = media.pop(action.call_id, None)
                        if stopped is not None:
                            stopped.scope.cancel()
                    elif isinstance(action, LogEvent):
                        fields = dict(action.fields)
                        fields.setdefault("call_id", "")
                        log.info(action.event, **fields)
                if fresh is not None:
                    fresh.sock.close()  # the call was refused: no media after all

            task_status.started(bound)
            log.info("demo.sip_ready", call_id="", host=host, port=bound)
            while True:
                data, source = await sock.recvfrom(65535)
                if not data.strip():
                    continue  # keep-alive
                try:
                    message = parse_message(data)
                except SipError as exc:
                    log.warning("demo.unparsable", call_id="", error=str(exc))
                    continue
                fresh: _Media | None = None
                if isinstance(message, Request) and core.needs_media_port(message):
                    rtp, rtp_port = await _open_rtp(host)
                    fresh = _Media(message.call_id, rtp, rtp_port)
                try:
                    actions = core.handle(
                        message,
                        (source[0], source[1]),
                        trio.current_time(),
                        media_port=None if fresh is None else fresh.port,
                    )
                except SipError as exc:
                    log.warning(
                        "demo.bad_message", call_id=message.get("Call-ID") or "", error=str(exc)
                    )
                    if fresh is not None:
                        fresh.sock.close()
                    continue
                await perform(actions, fresh)
