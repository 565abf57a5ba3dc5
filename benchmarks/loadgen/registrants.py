"""Registered WebSocket clients, as a program: N browsers that REGISTER and stay connected.

Run as ``python -m benchmarks.loadgen.registrants --wss HOST:PORT --cafile CERT --clients N``.
Each client opens its own WebSocket (subprotocol ``sip``), REGISTERs its Contact once with
``--expires`` and then stays idle. Then it writes ``{"event": "registered", ...}`` (how many
got a 200, failures by reason, how long it took) on standard output and takes commands on
standard input, one per line:

- ``refresh SECONDS COUNT [IN_FLIGHT]``: every client re-REGISTERs back to back (same
  Call-ID and From tag, the next CSeq, RFC 3261 10.2.4), each sending its next one as soon
  as the previous one is answered, until SECONDS have passed or it has sent COUNT; with
  IN_FLIGHT > 0 at most that many of the program's REGISTERs are unanswered at once.
  Answers are counted by status and timed, and ``{"event": "refreshed", ...}`` reports
  them;
- end of input closes every WebSocket, writes ``{"event": "report", ...}`` and ends.

Every wait is bounded; ``--max-seconds`` bounds the whole program.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import ssl
import sys
import time
from array import array
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Final

import trio
from trio_websocket import ConnectionClosed, HandshakeError, WebSocketConnection

from benchmarks.loadgen.sip_client import SipIdentity, connect, receive, register_request, send
from benchmarks.loadgen.webrtc_media import rtt_percentiles
from rtcgw.sip import Request, Response, make_response

__all__ = ["Registrant", "Registrants", "RegistrantsSettings", "main"]

#: WebSocket handshakes and first REGISTERs under way at once.
_OPENING_AT_ONCE: Final = 32
_CLOSE_TIMEOUT_S: Final = 2.0
_POINTS: Final = (50.0, 99.0, 100.0)


@dataclass(frozen=True)
class RegistrantsSettings:
    """What one run of the program does."""

    wss: tuple[str, int]
    cafile: str
    clients: int
    expires_s: int = 60
    answer_timeout_s: float = 10.0
    max_seconds: float = 600.0


class _Gone(Exception):
    """The client's WebSocket closed."""


@dataclass(eq=False)
class Registrant:
    """One registered client: its WebSocket and its registration's Call-ID, tag, CSeq."""

    ws: WebSocketConnection
    identity: SipIdentity = field(default_factory=SipIdentity)
    call_id: str = field(default_factory=lambda: secrets.token_hex(10))
    from_tag: str = field(default_factory=lambda: secrets.token_hex(5))
    cseq: int = 0

    async def register(self, expires_s: int, timeout_s: float) -> int | None:
        """Send the next REGISTER; its final status, or None when none came in time.

        Raises:
            _Gone: the WebSocket closed.
        """
        self.cseq += 1
        request = register_request(
            self.identity,
            call_id=self.call_id,
            from_tag=self.from_tag,
            cseq=self.cseq,
            expires_s=expires_s,
        )
        try:
            await send(self.ws, request)
            with trio.move_on_after(timeout_s):
                while True:
                    message = await receive(self.ws)
                    if isinstance(message, Request):
                        if message.method != "ACK":
                            await send(self.ws, make_response(message, 200))
                    elif (
                        isinstance(message, Response)
                        and message.final
                        and message.cseq.seq == self.cseq
                        and message.call_id == self.call_id
                    ):
                        return message.status
        except ConnectionClosed:
            raise _Gone from None
        return None


class Registrants:
    """The clients of one run and what they counted."""

    def __init__(self, settings: RegistrantsSettings) -> None:
        self.settings = settings
        self.tls = ssl.create_default_context(cafile=settings.cafile)
        self.clients: list[Registrant] = []
        self.failures: Counter[str] = Counter()

    async def register_all(self, nursery: trio.Nursery) -> dict[str, Any]:
        """Open every client's WebSocket and REGISTER it once; the ``registered`` event."""
        s = self.settings
        limiter = trio.CapacityLimiter(_OPENING_AT_ONCE)
        start = time.monotonic()

        async def one() -> None:
            async with limiter:
                try:
                    with trio.fail_after(s.answer_timeout_s):
                        ws = await connect(nursery, s.wss, self.tls)
                except (OSError, HandshakeError, ConnectionClosed, trio.TooSlowError) as exc:
                    self.failures[f"websocket {type(exc).__name__}"] += 1
                    return
                client = Registrant(ws)
                try:
                    status = await client.register(s.expires_s, s.answer_timeout_s)
                except _Gone:
                    self.failures["websocket closed"] += 1
                    return
                if status == 200:
                    self.clients.append(client)
                else:
                    self.failures["timeout" if status is None else f"SIP {status}"] += 1

        async with trio.open_nursery() as opening:
            for _ in range(s.clients):
                opening.start_soon(one)
        return {
            "event": "registered",
            "registered": len(self.clients),
            "failures": dict(self.failures),
            "seconds": round(time.monotonic() - start, 3),
        }

    async def refresh(self, seconds: float, count: int, in_flight: int = 0) -> dict[str, Any]:
        """Every client re-REGISTERs back to back for ``seconds`` or ``count`` requests,
        at most ``in_flight`` unanswered at once (0: one per client)."""
        s = self.settings
        limiter = trio.CapacityLimiter(in_flight if in_flight > 0 else max(1, len(self.clients)))
        statuses: Counter[str] = Counter()
        answer_us: array[int] = array("q")
        start = time.monotonic()
        end = start + seconds

        async def one(client: Registrant) -> None:
            for _ in range(count):
                if time.monotonic() >= end:
                    return
                try:
                    async with limiter:
                        if time.monotonic() >= end:
                            return  # waited for its turn past the end
                        sent_ns = time.monotonic_ns()
                        status = await client.register(s.expires_s, s.answer_timeout_s)
                except _Gone:
                    statuses["websocket closed"] += 1
                    return
                if status is None:
                    statuses["timeout"] += 1
                    continue
                statuses[str(status)] += 1
                answer_us.append((time.monotonic_ns() - sent_ns) // 1000)

        async with trio.open_nursery() as refreshing:
            for client in self.clients:
                refreshing.start_soon(one, client)
        elapsed = time.monotonic() - start
        return {
            "event": "refreshed",
            "clients": len(self.clients),
            "answers": dict(statuses),
            "ok": statuses["200"],
            "seconds": round(elapsed, 3),
            "in_flight": limiter.total_tokens,
            "answer_ms": rtt_percentiles(answer_us, _POINTS),
        }

    async def close_all(self) -> None:
        """Close every WebSocket, each within a short bound."""

        async def close(client: Registrant) -> None:
            with trio.move_on_after(_CLOSE_TIMEOUT_S):
                await client.ws.aclose()

        async with trio.open_nursery() as closing:
            for client in self.clients:
                closing.start_soon(close, client)


def _emit(event: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(event) + "\n")
    sys.stdout.flush()


async def _commands(registrants: Registrants) -> None:
    """Follow the commands on standard input until its end."""
    buffer = b""
    async with trio.lowlevel.FdStream(os.dup(sys.stdin.fileno())) as stdin:
        while True:
            chunk = await stdin.receive_some()
            if not chunk:
                return
            buffer += chunk
            *lines, buffer = buffer.split(b"\n")
            for line in lines:
                words = line.decode(errors="replace").split()
                if len(words) in (3, 4) and words[0] == "refresh":
                    in_flight = int(words[3]) if len(words) == 4 else 0
                    _emit(await registrants.refresh(float(words[1]), int(words[2]), in_flight))
                elif words:
                    _emit({"event": "error", "text": f"unknown command {line!r}"})


async def _run(settings: RegistrantsSettings) -> None:
    registrants = Registrants(settings)
    with trio.move_on_after(settings.max_seconds):
        async with trio.open_nursery() as nursery:
            _emit(await registrants.register_all(nursery))
            await _commands(registrants)
            await registrants.close_all()
            nursery.cancel_scope.cancel()
    _emit({"event": "report", "registered": len(registrants.clients)})


def _address(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    return host, int(port)


def main(argv: list[str] | None = None) -> int:
    """Register the clients, follow the commands, close; see the module's docstring."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.loadgen.registrants")
    parser.add_argument("--wss", required=True, type=_address, help="gateway wss HOST:PORT")
    parser.add_argument("--cafile", required=True, help="CA file the wss certificate chains to")
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--expires", type=int, default=60, help="Expires of each REGISTER")
    parser.add_argument("--answer-timeout", type=float, default=10.0)
    parser.add_argument("--max-seconds", type=float, default=600.0, help="hard stop")
    args = parser.parse_args(argv)
    settings = RegistrantsSettings(
        wss=args.wss,
        cafile=args.cafile,
        clients=args.clients,
        expires_s=args.expires,
        answer_timeout_s=args.answer_timeout,
        max_seconds=args.max_seconds,
    )
    trio.run(_run, settings)
    return 0


if __name__ == "__main__":
    sys.exit(main())
