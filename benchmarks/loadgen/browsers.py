"""The browser-side load generator, as a program: N WebRTC calls through the gateway.

Run as ``python -m benchmarks.loadgen.browsers --wss HOST:PORT --cafile CERT ...``. Each
call is one SIP-over-WebSocket client (subprotocol ``sip``, Via and Contact under
``.invalid`` as JsSIP writes them) that sends an INVITE with a WebRTC offer (ICE
credentials, the fingerprint of the generator's own certificate, ``setup:actpass``,
rtcp-mux, PCMU only), ACKs the 200 and hands the gateway's answer to the media pump
(``webrtc_media.py``): ICE, DTLS, SRTP, then 50 probes a second.

Calls are set up at ``--rate`` per second. When every call is up (or failed), the measuring
window opens for ``--seconds``: probes sent in it are the ones counted. Then the window
closes, ``--drain-seconds`` let the last probes come back, every call is ended with BYE and
the program reports. Progress goes to standard output as JSON lines:

- ``{"event": "calls_up", "up": N, "failed": M, ...}`` when set-up is over;
- ``{"event": "window_start", "cpu": {...}}`` and ``{"event": "window_end", "cpu": {...}}``,
  with the CPU seconds of the processes named by ``--watch NAME=PID`` (and of the generator
  itself) read at the moment the phase changed;
- ``{"event": "report", ...}``: every counter, at the end.

With ``--mode churn`` it is the call churn of ``churn.py`` instead: a pool of WebSockets
(``--connections``, 0 = sized by the rate), then new calls at ``--rate`` per second for
``--seconds``, each held ``--hold-seconds`` with probes and hung up. It writes
``{"event": "ready", "connections": N}`` once the pool is open; with ``--start-on-go`` it
then waits for a ``go`` line on standard input (so several generators start together),
and ``{"event": "report", ...}`` at the end.

Every wait is bounded; the whole run has a hard deadline derived from its arguments.
"""

from __future__ import annotations

import argparse
import json
import os
import ssl
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Final

import trio
from trio_websocket import ConnectionClosed, HandshakeError, WebSocketConnection, open_websocket

from benchmarks.loadgen.churn import ChurnGenerator, ChurnSettings
from benchmarks.loadgen.held_calls import HeldCalls
from benchmarks.loadgen.sip_client import (
    SipIdentity,
    invite_request,
    offer_sdp,
    parse_answer,
    receive,
)
from benchmarks.loadgen.webrtc_media import CallState, MediaCall, MediaPump
from rtcgw.config import DtlsKeyType
from rtcgw.media.certificates import generate_certificate
from rtcgw.media.dtls import DtlsContexts, DtlsSettings
from rtcgw.sip import Dialog, Request, Response, Via, make_response
from rtcgw.sip.transaction_client import make_non2xx_ack

__all__ = ["Generator", "GeneratorSettings", "main", "offer_sdp", "parse_answer"]

_BYE_TIMEOUT_S: Final = 10.0
_CLOSE_TIMEOUT_S: Final = 2.0
#: How long a churn generator waits for its ``go`` line.
_GO_TIMEOUT_S: Final = 120.0


@dataclass(frozen=True)
class GeneratorSettings:
    """What one run of the generator does."""

    wss: tuple[str, int]
    cafile: str
    calls: int
    seconds: float
    rate: float = 20.0
    drain_s: float = 1.0
    setup_timeout_s: float = 20.0
    watch: dict[str, int] = field(default_factory=dict)

    @property
    def hard_deadline_s(self) -> float:
        """How long the whole run may take at most, from its start."""
        ramp = self.calls / self.rate
        return ramp + self.setup_timeout_s + self.seconds + self.drain_s + 2 * _BYE_TIMEOUT_S + 30


@dataclass(eq=False)
class _Client:
    """One call's signaling state."""

    index: int
    media: MediaCall
    identity: SipIdentity = field(default_factory=SipIdentity)
    invite: Request | None = None
    dialog: Dialog | None = None
    setup_started: float = 0.0
    outcome: str = "pending"  # up | failed:<why> | pending
    bye: str = "not sent"
    ended_by_gateway: bool = False
    requests_answered: int = 0
    _final_bye: trio.Event = field(default_factory=trio.Event)

    def via(self) -> Via:
        return self.identity.via()


class Generator(HeldCalls):
    """The calls of one run through the gateway and the figures they collect."""

    settings: GeneratorSettings

    def __init__(self, settings: GeneratorSettings) -> None:
        certificate = generate_certificate(DtlsKeyType.EC_P256, common_name="load")
        self.contexts = DtlsContexts(DtlsSettings(certificate=certificate))
        super().__init__(settings, MediaPump(self.contexts))
        self.tls = ssl.create_default_context(cafile=settings.cafile)
        self.clients: list[_Client] = []

    def emit(self, event: dict[str, Any]) -> None:
        """Write one JSON event line on standard output."""
        sys.stdout.write(json.dumps(event) + "\n")
        sys.stdout.flush()

    def _records(self) -> list[_Client]:
        return self.clients

    def _window_opened(self) -> None:
        up = sum(client.outcome == "up" for client in self.clients)
        self.emit({"event": "calls_up", "up": up, "failed": self.settings.calls - up})
        self.emit({"event": "window_start", "cpu": self.window["cpu_start"]})

    def _window_closed(self) -> None:
        self.emit({"event": "window_end", "cpu": self.window["cpu_end"], **self.window})

    async def _call(self, index: int) -> None:
        media = self.pump.open_call(index)
        client = _Client(index, media)
        self.clients.append(client)
        host, port = self.settings.wss
        try:
            async with open_websocket(
                host,
                port,
                "/",
                use_ssl=self.tls,
                subprotocols=["sip"],
                connect_timeout=self.settings.setup_timeout_s,
                disconnect_timeout=_CLOSE_TIMEOUT_S,
            ) as ws:
                await self._talk(client, ws)
        except (OSError, HandshakeError, ConnectionClosed) as exc:
            self.pump.fail(media, "websocket")
            self._settle(client, f"failed:websocket {type(exc).__name__}")
        finally:
            self.pump.close_call(media)
            self._settle(client, "failed:ended early")

    async def _talk(self, client: _Client, ws: WebSocketConnection) -> None:
        client.setup_started = time.monotonic()  # the pump's clock: ready_at is on it
        with trio.move_on_after(self.settings.setup_timeout_s):
            final = await self._invite(client, ws)
            if final is None:
                return
            try:
                remote = parse_answer(final.body)
            except ValueError:
                self._settle(client, "failed:bad answer")
                return
            self.pump.connect(client.media, remote)
            await client.media.ready.wait()
            self._settle(client, "up")
        if client.outcome != "up":
            reason = client.media.failure or f"media {client.media.state} timeout"
            if client.media.state != CallState.READY:
                self.pump.fail(client.media, reason)
            self._settle(client, f"failed:{reason}")
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._read_in_dialog, client, ws)
            await self.hangup.wait()
            if client.dialog is not None and not client.ended_by_gateway:
                await self._bye(client, ws)
            nursery.cancel_scope.cancel()

    async def _invite(self, client: _Client, ws: WebSocketConnection) -> Response | None:
        sdp = offer_sdp(client.media, self.contexts.fingerprint)
        invite = invite_request(client.identity, sdp)
        client.invite = invite
        await ws.send_message(bytes(invite).decode())
        while True:
            message = await self._receive(ws)
            if isinstance(message, Request):
                await self._answer_request(client, ws, message)
                continue
            if message is None or not message.final:
                continue
            if not message.success:
                await ws.send_message(bytes(make_non2xx_ack(invite, message)).decode())
                self._settle(client, f"failed:{message.status}")
                return None
            client.dialog = Dialog.from_uac(invite, message)
            ack = client.dialog.create_ack(invite.cseq.seq, client.via())
            await ws.send_message(bytes(ack).decode())
            return message

    async def _bye(self, client: _Client, ws: WebSocketConnection) -> None:
        assert client.dialog is not None
        bye = client.dialog.create_request("BYE", client.via())
        try:
            await ws.send_message(bytes(bye).decode())
        except ConnectionClosed:
            client.bye = "connection closed"
            return
        client.bye = "sent"
        with trio.move_on_after(_BYE_TIMEOUT_S):
            await client._final_bye.wait()
        if not client._final_bye.is_set():
            client.bye = "no answer"

    async def _read_in_dialog(self, client: _Client, ws: WebSocketConnection) -> None:
        while True:
            message = await self._receive(ws)
            if isinstance(message, Request):
                await self._answer_request(client, ws, message)
            elif isinstance(message, Response) and message.final and message.cseq.method == "BYE":
                client.bye = str(message.status)
                client._final_bye.set()

    async def _answer_request(
        self, client: _Client, ws: WebSocketConnection, request: Request
    ) -> None:
        client.requests_answered += 1
        if request.method == "ACK":
            return
        if request.method == "BYE":
            client.ended_by_gateway = True
        await ws.send_message(bytes(make_response(request, 200)).decode())

    @staticmethod
    async def _receive(ws: WebSocketConnection) -> Request | Response | None:
        return await receive(ws)

    def report(self) -> dict[str, Any]:
        """Every counter of the run, summed over the calls."""
        return {
            **self._common_report(),
            "ended_by_gateway": sum(c.ended_by_gateway for c in self.clients),
            **self.window,
        }


def _address(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    return host, int(port)


def _watch(items: list[str]) -> dict[str, int]:
    watch: dict[str, int] = {}
    for item in items:
        name, _, pid = item.partition("=")
        watch[name] = int(pid)
    return watch


def main(argv: list[str] | None = None) -> int:
    """Run the generator once and print its report."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.loadgen.browsers")
    parser.add_argument("--wss", required=True, type=_address, help="gateway wss HOST:PORT")
    parser.add_argument("--cafile", required=True, help="CA file the wss certificate chains to")
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=30.0, help="measuring window")
    parser.add_argument("--rate", type=float, default=20.0, help="call set-ups per second")
    parser.add_argument("--drain-seconds", type=float, default=1.0)
    parser.add_argument("--setup-timeout", type=float, default=20.0)
    parser.add_argument("--watch", action="append", default=[], help="NAME=PID to sample")
    parser.add_argument(
        "--mode",
        choices=("window", "churn"),
        default="window",
        help="window: N calls held through a measuring window (default); churn: calls "
        "started at --rate for --seconds, each held --hold-seconds and hung up",
    )
    parser.add_argument("--hold-seconds", type=float, default=1.0, help="churn: media hold")
    parser.add_argument("--connections", type=int, default=0, help="churn: WebSocket pool")
    parser.add_argument(
        "--start-on-go", action="store_true", help="churn: wait for 'go' on standard input"
    )
    args = parser.parse_args(argv)
    if args.mode == "churn":
        churn = ChurnSettings(
            wss=args.wss,
            cafile=args.cafile,
            rate=args.rate,
            seconds=args.seconds,
            hold_s=args.hold_seconds,
            setup_timeout_s=args.setup_timeout,
            connections=args.connections,
        )
        trio.run(_churn, churn, args.start_on_go)
        return 0
    settings = GeneratorSettings(
        wss=args.wss,
        cafile=args.cafile,
        calls=args.calls,
        seconds=args.seconds,
        rate=args.rate,
        drain_s=args.drain_seconds,
        setup_timeout_s=args.setup_timeout,
        watch=_watch(args.watch),
    )

    async def run() -> None:
        generator = Generator(settings)
        generator.emit(await generator.run())

    trio.run(run)
    return 0


async def _churn(settings: ChurnSettings, start_on_go: bool) -> None:
    generator = ChurnGenerator(settings)
    async with trio.open_nursery() as nursery:
        opened = await generator.open_pool(nursery)
        _emit({"event": "ready", "connections": opened})
        if not start_on_go or await _go():
            _emit(await generator.churn())
        else:
            await generator.close_pool()
        nursery.cancel_scope.cancel()


async def _go() -> bool:
    """True once a ``go`` line arrives on standard input; False on its end or a timeout."""
    received = b""
    with trio.move_on_after(_GO_TIMEOUT_S):
        async with trio.lowlevel.FdStream(os.dup(sys.stdin.fileno())) as stdin:
            while b"go\n" not in received:
                chunk = await stdin.receive_some()
                if not chunk:
                    return False
                received += chunk
            return True
    return False


def _emit(event: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(event) + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    sys.exit(main())
