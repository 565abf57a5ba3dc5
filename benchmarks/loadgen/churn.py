"""Call churn: new WebRTC calls at a steady rate, each set up, held briefly and hung up.

The browser-side generator's second mode (``browsers.py --mode churn``). Before the run it
opens a pool of WebSocket connections, as registered browsers would have them; each call
takes an idle one and gives it back at its end. When none is idle the call shares a busy
one (counted: the pool was too small), so no TLS handshake adds to the load during the
run. Calls start at ``rate`` per second for ``seconds`` on a fixed schedule: a call that
starts over 50 ms late is counted, and the ones behind start at once, so the average rate
holds. Each call:

    INVITE -> 200 -> ACK -> ICE -> DTLS done -> hold with probes -> BYE -> 200

and ends ``ok`` or with the first reason it failed: ``SIP <status>``, ``INVITE timeout``,
``ICE timeout``, ``DTLS timeout``, ``DTLS: <why>``, ``no media echoed``, ``ended by
gateway``, ``BYE <status>``, ``BYE timeout``, ``websocket <why>``.

Times are taken on ``time.monotonic``, the media pump's clock: INVITE sent to 200 received,
INVITE sent to DTLS done, and the post-pickup delay, from the 200 reaching this program to
the first media packet it receives. The SIP side only echoes, so that first packet is the
echo of the call's own first probe: the delay spans ICE, DTLS and one round trip through
the gateway. All of it is measured inside this program, so its own load is in the figures.
"""

from __future__ import annotations

import math
import ssl
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import trio
from trio_websocket import ConnectionClosed, HandshakeError, WebSocketConnection

from benchmarks.loadgen.probe import Phase
from benchmarks.loadgen.sip_client import (
    SipIdentity,
    connect,
    invite_request,
    offer_sdp,
    parse_answer,
    receive,
    send,
)
from benchmarks.loadgen.webrtc_media import CallState, MediaCall, MediaPump, rtt_percentiles
from rtcgw.config import DtlsKeyType
from rtcgw.media.certificates import generate_certificate
from rtcgw.media.dtls import DtlsContexts, DtlsSettings
from rtcgw.sip import Dialog, Request, Response, make_response
from rtcgw.sip.transaction_client import make_non2xx_ack

__all__ = ["ChurnCall", "ChurnGenerator", "ChurnSettings", "percentiles"]

OK: Final = "ok"
#: A call that starts later than this after its scheduled time is counted as late.
LATE_START_S: Final = 0.05
_BYE_TIMEOUT_S: Final = 10.0
_CLOSE_TIMEOUT_S: Final = 2.0
#: WebSocket handshakes under way at once while the pool is filled.
_OPENING_AT_ONCE: Final = 16
_RTT_POINTS: Final = (50.0, 99.0, 100.0)


def percentiles(samples: Sequence[float], points: Sequence[float]) -> dict[str, float | None]:
    """``{"p50": value, ...}`` by nearest rank (None without samples)."""
    ordered = sorted(samples)
    result: dict[str, float | None] = {}
    for point in points:
        if not ordered:
            result[f"p{point:g}"] = None
            continue
        rank = min(len(ordered) - 1, max(0, math.ceil(point / 100 * len(ordered)) - 1))
        result[f"p{point:g}"] = round(ordered[rank], 2)
    return result


@dataclass(frozen=True)
class ChurnSettings:
    """What one churn run does."""

    wss: tuple[str, int]
    cafile: str
    rate: float
    seconds: float
    hold_s: float = 1.0
    setup_timeout_s: float = 10.0
    #: WebSockets opened before the run; 0 = enough for the calls in flight
    connections: int = 0

    @property
    def calls(self) -> int:
        """Calls the run starts."""
        return max(1, round(self.rate * self.seconds))

    @property
    def pool_size(self) -> int:
        """WebSockets to open before the run."""
        if self.connections > 0:
            return self.connections
        return math.ceil(self.rate * (self.hold_s + 1.0)) + 5

    @property
    def hard_deadline_s(self) -> float:
        """How long the run may take at most, from ``go``."""
        return self.seconds + self.setup_timeout_s + self.hold_s + _BYE_TIMEOUT_S + 30


@dataclass(eq=False)
class ChurnCall:
    """One call's times (``time.monotonic``) and how it ended."""

    index: int
    scheduled_at: float
    started_at: float = 0.0
    invite_at: float | None = None
    answered_at: float | None = None
    ready_at: float | None = None
    first_rtp_at: float | None = None
    outcome: str | None = None

    def fail(self, reason: str) -> None:
        """Keep the first reason the call failed."""
        if self.outcome is None:
            self.outcome = reason


class _Gone(Exception):
    """The call's WebSocket closed under it."""


@dataclass(eq=False)
class _Connection:
    """One pooled WebSocket and the calls it carries, by Call-ID."""

    ws: WebSocketConnection
    identity: SipIdentity = field(default_factory=SipIdentity)
    inboxes: dict[str, trio.MemorySendChannel[Request | Response]] = field(default_factory=dict)
    alive: bool = True

    async def read(self) -> None:
        """Hand every message to its call; answer requests for unknown calls with 481."""
        try:
            while True:
                message = await receive(self.ws)
                if message is None:
                    continue
                inbox = self.inboxes.get(message.call_id)
                if inbox is not None:
                    inbox.send_nowait(message)
                elif isinstance(message, Request) and message.method != "ACK":
                    await send(self.ws, make_response(message, 481))
        except ConnectionClosed:
            pass
        finally:
            self.alive = False
            for inbox in self.inboxes.values():
                inbox.close()


class ChurnGenerator:
    """The calls of one churn run and the figures they collect."""

    def __init__(self, settings: ChurnSettings) -> None:
        self.settings = settings
        certificate = generate_certificate(DtlsKeyType.EC_P256, common_name="load")
        self.contexts = DtlsContexts(DtlsSettings(certificate=certificate))
        self.pump = MediaPump(self.contexts)
        self.tls = ssl.create_default_context(cafile=settings.cafile)
        self.calls: list[ChurnCall] = []
        self.pool_opened = 0
        self.opened_during_run = 0
        #: calls that had to share a WebSocket with another call (the pool was too small)
        self.shared = 0
        self._turn = 0
        self.open_failures: Counter[str] = Counter()
        self._idle: list[_Connection] = []
        self._all: list[_Connection] = []
        self._nursery: trio.Nursery | None = None

    # -- the pool --------------------------------------------------------------------------

    async def open_pool(self, nursery: trio.Nursery) -> int:
        """Open the pool's WebSockets (connection tasks run in ``nursery``); how many opened."""
        self._nursery = nursery
        limiter = trio.CapacityLimiter(_OPENING_AT_ONCE)

        async def open_one() -> None:
            async with limiter:
                connection = await self._open()
            if connection is not None:
                self._idle.append(connection)

        with trio.move_on_after(self.settings.setup_timeout_s + self.settings.pool_size / 50):
            async with trio.open_nursery() as opening:
                for _ in range(self.settings.pool_size):
                    opening.start_soon(open_one)
        self.pool_opened = len(self._idle)
        return self.pool_opened

    async def _open(self) -> _Connection | None:
        assert self._nursery is not None
        try:
            with trio.fail_after(self.settings.setup_timeout_s):
                ws = await connect(self._nursery, self.settings.wss, self.tls)
        except (OSError, HandshakeError, ConnectionClosed, trio.TooSlowError) as exc:
            self.open_failures[type(exc).__name__] += 1
            return None
        connection = _Connection(ws)
        self._all.append(connection)
        self._nursery.start_soon(connection.read)
        return connection

    async def _take(self) -> _Connection | None:
        """An idle connection; else one already carrying a call (a browser with a second
        call), so that no TLS handshake adds to the load during the run; else a new one."""
        while self._idle:
            connection = self._idle.pop()
            if connection.alive and not connection.inboxes:
                return connection
        alive = [c for c in self._all if c.alive]
        if alive:
            self.shared += 1
            self._turn = (self._turn + 1) % len(alive)
            return alive[self._turn]
        self.opened_during_run += 1
        return await self._open()

    def _give(self, connection: _Connection) -> None:
        if connection.alive and not connection.inboxes:
            self._idle.append(connection)

    async def close_pool(self) -> None:
        """Close every WebSocket, each within a short bound."""

        async def close_one(connection: _Connection) -> None:
            with trio.move_on_after(_CLOSE_TIMEOUT_S):
                await connection.ws.aclose()

        async with trio.open_nursery() as closing:
            for connection in self._all:
                closing.start_soon(close_one, connection)

    # -- the run ---------------------------------------------------------------------------

    async def run(self) -> dict[str, Any]:
        """Open the pool, then ``churn``; the report. (A program that must start together
        with others calls ``open_pool`` and ``churn`` itself, with its signal between.)"""
        async with trio.open_nursery() as nursery:
            await self.open_pool(nursery)
            report = await self.churn()
            nursery.cancel_scope.cancel()
        return report

    async def churn(self) -> dict[str, Any]:
        """Start the calls at the rate, wait for every one to end; the report."""
        s = self.settings
        assert self._nursery is not None, "open_pool first"
        self.pump.phase = Phase.MEASURE
        with trio.move_on_after(s.hard_deadline_s):
            async with trio.open_nursery() as media:
                media.start_soon(self.pump.run, trio.current_time() + s.hard_deadline_s)
                async with trio.open_nursery() as calls:
                    start = time.monotonic()
                    for index in range(s.calls):
                        scheduled = start + index / s.rate
                        await trio.sleep(max(0.0, scheduled - time.monotonic()))
                        call = ChurnCall(index, scheduled, started_at=time.monotonic())
                        self.calls.append(call)
                        calls.start_soon(self._call, call)
                media.cancel_scope.cancel()
        for call in self.calls:
            call.fail("not ended within the run's deadline")
        await self.close_pool()
        return self.report()

    async def _call(self, call: ChurnCall) -> None:
        connection = await self._take()
        if connection is None:
            call.fail("websocket not opened")
            return
        media = self.pump.open_call(call.index)
        invite = invite_request(connection.identity, offer_sdp(media, self.contexts.fingerprint))
        send_channel, inbox = trio.open_memory_channel[Request | Response](math.inf)
        connection.inboxes[invite.call_id] = send_channel
        try:
            await self._talk(call, connection, media, invite, inbox)
        except (_Gone, ConnectionClosed):
            call.fail("websocket closed")
        finally:
            call.first_rtp_at = media.first_rtp_at
            self.pump.close_call(media)
            del connection.inboxes[invite.call_id]
            self._give(connection)
        call.fail(OK)

    async def _talk(
        self,
        call: ChurnCall,
        connection: _Connection,
        media: MediaCall,
        invite: Request,
        inbox: trio.MemoryReceiveChannel[Request | Response],
    ) -> None:
        s = self.settings
        call.invite_at = time.monotonic()
        await send(connection.ws, invite)
        final = None
        with trio.move_on_after(s.setup_timeout_s):
            final = await self._final(connection, inbox)
        if final is None:
            call.fail("INVITE timeout")
            return
        if not final.success:
            await send(connection.ws, make_non2xx_ack(invite, final))
            call.fail(f"SIP {final.status}")
            return
        call.answered_at = time.monotonic()
        dialog = Dialog.from_uac(invite, final)
        await send(connection.ws, dialog.create_ack(invite.cseq.seq, connection.identity.via()))
        try:
            remote = parse_answer(final.body)
        except ValueError:
            call.fail("bad answer")
        else:
            self.pump.connect(media, remote)
            with trio.move_on_after(
                max(0.0, s.setup_timeout_s - (call.answered_at - call.invite_at))
            ):
                await media.ready.wait()
            if media.ready_at is None:
                reason = media.failure or f"{media.state.upper()} timeout"
                if media.state != CallState.FAILED:
                    self.pump.fail(media, reason)
                call.fail(reason)
            else:
                call.ready_at = media.ready_at
                if await self._hold(connection, inbox, s.hold_s):
                    call.fail("ended by gateway")
                    return
                if media.first_rtp_at is None:
                    call.fail("no media echoed")
        await self._bye(call, connection, dialog, inbox)

    async def _final(
        self, connection: _Connection, inbox: trio.MemoryReceiveChannel[Request | Response]
    ) -> Response | None:
        """The INVITE's final response, answering any request that comes meanwhile."""
        while True:
            message = await self._next(inbox)
            if isinstance(message, Request):
                await self._answer(connection, message)
            elif message.final and message.cseq.method == "INVITE":
                return message

    async def _hold(
        self,
        connection: _Connection,
        inbox: trio.MemoryReceiveChannel[Request | Response],
        seconds: float,
    ) -> bool:
        """Let media flow for ``seconds``; True if the gateway hung up meanwhile."""
        with trio.move_on_after(seconds):
            while True:
                message = await self._next(inbox)
                if isinstance(message, Request):
                    await self._answer(connection, message)
                    if message.method == "BYE":
                        return True
        return False

    async def _bye(
        self,
        call: ChurnCall,
        connection: _Connection,
        dialog: Dialog,
        inbox: trio.MemoryReceiveChannel[Request | Response],
    ) -> None:
        bye = dialog.create_request("BYE", connection.identity.via())
        await send(connection.ws, bye)
        with trio.move_on_after(_BYE_TIMEOUT_S):
            while True:
                message = await self._next(inbox)
                if isinstance(message, Request):
                    await self._answer(connection, message)
                elif message.final and message.cseq.method == "BYE":
                    if message.status != 200:
                        call.fail(f"BYE {message.status}")
                    return
        call.fail("BYE timeout")

    @staticmethod
    async def _next(inbox: trio.MemoryReceiveChannel[Request | Response]) -> Request | Response:
        try:
            return await inbox.receive()
        except trio.EndOfChannel:
            raise _Gone from None

    @staticmethod
    async def _answer(connection: _Connection, request: Request) -> None:
        if request.method != "ACK":
            await send(connection.ws, make_response(request, 200))

    # -- figures ---------------------------------------------------------------------------

    def report(self) -> dict[str, Any]:
        """Outcomes, the raw times in ms (several generators' reports are merged), counts."""

        def ms(later: float | None, earlier: float | None) -> float | None:
            if later is None or earlier is None:
                return None
            return round(1000 * (later - earlier), 3)

        def samples(pairs: list[tuple[float | None, float | None]]) -> list[float]:
            return [v for v in (ms(a, b) for a, b in pairs) if v is not None]

        calls = self.calls
        lags = [c.started_at - c.scheduled_at for c in calls]
        span = calls[-1].started_at - calls[0].started_at if len(calls) > 1 else 0.0
        return {
            "event": "report",
            "rate": self.settings.rate,
            "seconds": self.settings.seconds,
            "calls": len(calls),
            "start_span_s": round(span, 3),
            "late_starts": sum(lag > LATE_START_S for lag in lags),
            "start_lag_ms_max": round(1000 * max(lags), 2) if lags else None,
            "outcomes": dict(Counter(c.outcome for c in calls)),
            "invite_to_200_ms": samples([(c.answered_at, c.invite_at) for c in calls]),
            "invite_to_dtls_ms": samples([(c.ready_at, c.invite_at) for c in calls]),
            "post_pickup_ms": samples([(c.first_rtp_at, c.answered_at) for c in calls]),
            "rtt_ms": rtt_percentiles(self.pump.rtt_us, _RTT_POINTS),
            "late_ticks": self.pump.late_ticks,
            "connections": {
                "pool": self.pool_opened,
                "opened_during_run": self.opened_during_run,
                "shared": self.shared,
                "open_failures": dict(self.open_failures),
            },
        }
