"""The SIP side of a benchmark: a UDP registrar and answerer with an RTP echo, as a program.

Run as ``python -m benchmarks.loadgen.pbx``. It binds a SIP socket on loopback and prints
one JSON line ``{"event": "ready", "sip_port": P, "pid": N}`` on standard output. Then it
answers REGISTER with 200 (the Contact echoed), INVITE with 100 and a 200 whose SDP offers
plain RTP/AVP PCMU on a port of its own for that call, BYE, CANCEL and OPTIONS with 200,
and ignores ACK. Every RTP packet that reaches a call's port is sent back to where it came
from, so a gateway in front hears its own stream again.

It must not be the bottleneck of what it measures, so there is no trio and no per-packet
await: one ``epoll`` loop drains each ready socket in batches with plain non-blocking calls,
reading into one buffer and sending from it. RTP is counted by the probe phase in its
payload (``probe.py``): received (the browser -> SIP direction) and echoed (the
SIP -> browser direction). For each probe of the measuring window the echo keeps the
browser -> SIP one-way delay (its arrival time minus the probe's ``sent_ns``, one clock for
all programs of a run), and it stamps every probe with its own send time (``echo_ns``) so
the browser side can measure the way back. A ``SelfLoop`` sends the echo a stamp every
20 ms just before the loop waits: the echo's floor (``delays.py``), kept while the probes
it sees are of the measuring window.

Standard input takes commands, one per line: ``report`` prints the counters as one JSON
line ``{"event": "report", ...}`` and ends the program; end of input ends it too, and so
does ``--max-seconds``.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import select
import socket
import sys
import time
from array import array
from dataclasses import dataclass, field
from typing import Final

from benchmarks.loadgen.delays import INTERVAL_S as FLOOR_INTERVAL_S
from benchmarks.loadgen.delays import SelfLoop, delay_percentiles
from benchmarks.loadgen.probe import HEADER_BYTES, Phase, stamp_echo
from rtcgw.sip import Header, Request, Response, SipError, make_response, parse_message

__all__ = ["EchoCounters", "PbxSide", "main"]

#: Datagrams read from one socket before the loop looks at the others again.
BATCH: Final = 64
_MAX_DATAGRAM: Final = 4096
_SOCKET_BUFFER_BYTES: Final = 1 << 20
#: RTP header without CSRCs; the probe phase is the payload's first byte.
_RTP_HEADER_BYTES: Final = 12
_PROBE_END: Final = _RTP_HEADER_BYTES + HEADER_BYTES
_PHASES: Final = len(Phase)
_MEASURE: Final = int(Phase.MEASURE)


@dataclass
class EchoCounters:
    """What the RTP echo saw, by probe phase (index = ``Phase`` value)."""

    received: list[int] = field(default_factory=lambda: [0] * _PHASES)
    echoed: list[int] = field(default_factory=lambda: [0] * _PHASES)
    #: sends refused by the kernel (full socket buffer): loss at the echo itself
    send_failed: int = 0
    #: datagrams that were not a probe (too short, other payload)
    not_probes: int = 0
    #: browser -> SIP one-way delays (microseconds) of measuring-window probes
    one_way_us: array[int] = field(default_factory=lambda: array("q"))
    #: the phase of the last probe seen: the floor is kept while it is MEASURE
    phase: int = 0


@dataclass
class _Call:
    echo: socket.socket
    final: bytes
    to_tag: str


class PbxSide:
    """The registrar, answerer and echo; ``run`` is its loop."""

    def __init__(self, host: str) -> None:
        self.host = host
        self.sip = self._bind(host, 0)
        self.sip_port: int = self.sip.getsockname()[1]
        self.counters = EchoCounters()
        self.calls: dict[str, _Call] = {}
        self.calls_answered = 0
        self.calls_ended = 0
        self.sip_errors = 0
        self._echo_by_fd: dict[int, socket.socket] = {}
        self._buffer = bytearray(_MAX_DATAGRAM)
        self._view = memoryview(self._buffer)
        self._epoll = select.epoll()
        self._epoll.register(self.sip.fileno(), select.EPOLLIN)
        self.floor = SelfLoop(host)
        self._epoll.register(self.floor.fileno(), select.EPOLLIN)

    @staticmethod
    def _bind(host: str, port: int) -> socket.socket:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, _SOCKET_BUFFER_BYTES)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, _SOCKET_BUFFER_BYTES)
        sock.bind((host, port))
        sock.setblocking(False)
        return sock

    def run(self, max_seconds: float, control_fd: int) -> None:
        """Serve until ``report`` or end of input on ``control_fd``, at most ``max_seconds``."""
        self._epoll.register(control_fd, select.EPOLLIN)
        control = b""
        now = time.monotonic()
        deadline = now + max_seconds
        floor_fd = self.floor.fileno()
        while (left := deadline - now) > 0:
            self.floor.send_if_due(now)
            for fd, _ in self._epoll.poll(min(left, FLOOR_INTERVAL_S)):
                if fd == floor_fd:
                    self.floor.drain(record=self.counters.phase == _MEASURE)
                elif fd == control_fd:
                    chunk = os.read(control_fd, 4096)
                    if not chunk:
                        return
                    control += chunk
                    if b"report" in control:
                        return
                elif fd == self.sip.fileno():
                    self._drain_sip()
                else:
                    self._drain_echo(fd)
            now = time.monotonic()

    def report(self) -> dict[str, object]:
        """The counters, as the ``report`` line carries them."""
        return {
            "event": "report",
            "received": self.counters.received,
            "echoed": self.counters.echoed,
            "send_failed": self.counters.send_failed,
            "not_probes": self.counters.not_probes,
            "one_way_ms": {"browser_to_sip": delay_percentiles(self.counters.one_way_us)},
            "floor_ms": {"browser_to_sip": delay_percentiles(self.floor.samples_us)},
            "calls_answered": self.calls_answered,
            "calls_ended": self.calls_ended,
            "sip_errors": self.sip_errors,
        }

    # -- RTP echo --------------------------------------------------------------------------

    def _drain_echo(self, fd: int) -> None:
        sock = self._echo_by_fd.get(fd)
        if sock is None:
            return
        counters = self.counters
        received, echoed, one_way_us = counters.received, counters.echoed, counters.one_way_us
        buffer, view = self._buffer, self._view
        recvfrom_into, sendto = sock.recvfrom_into, sock.sendto
        monotonic_ns = time.monotonic_ns
        for _ in range(BATCH):
            try:
                size, source = recvfrom_into(buffer)
            except BlockingIOError:
                return
            except OSError:  # an ICMP error of an earlier send; nothing about this one
                continue
            # Phase byte: payload's first byte after a CSRC-less header (the relay adds none).
            phase = buffer[_RTP_HEADER_BYTES] if size >= _PROBE_END else _PHASES
            if phase >= _PHASES:
                counters.not_probes += 1
                continue
            # One clock read: the arrival time is also the echo's send time (a few hundred
            # nanoseconds apart), which keeps the hot loop to one call of the clock.
            now_ns = monotonic_ns()
            sent_ns = stamp_echo(buffer, _RTP_HEADER_BYTES, now_ns)
            received[phase] += 1
            counters.phase = phase
            if phase == _MEASURE:
                one_way_us.append((now_ns - sent_ns) // 1000)
            try:
                sendto(view[:size], source)
            except OSError:  # BlockingIOError included: the echo drops and says so
                counters.send_failed += 1
                continue
            echoed[phase] += 1

    # -- SIP -------------------------------------------------------------------------------

    def _drain_sip(self) -> None:
        for _ in range(BATCH):
            try:
                data, source = self.sip.recvfrom(65535)
            except BlockingIOError:
                return
            except OSError:
                continue
            if not data.strip():
                continue  # a keep-alive CRLF
            try:
                message = parse_message(data)
            except SipError:
                self.sip_errors += 1
                continue
            if isinstance(message, Request):
                for answer in self._answer(message):
                    self._send_sip(answer, source)

    def _send_sip(self, message: bytes, destination: tuple[str, int]) -> None:
        try:
            self.sip.sendto(message, destination)
        except OSError:
            self.sip_errors += 1

    def _answer(self, request: Request) -> list[bytes]:
        method = request.method
        if method == "ACK":
            return []
        if method == "INVITE":
            return self._answer_invite(request)
        if method == "REGISTER":
            contact = request.get("Contact")
            headers = (Header("Contact", contact),) if contact else ()
            expires = request.get("Expires")
            if expires is not None:
                headers = (*headers, Header("Expires", expires))
            ok = make_response(request, 200, to_tag=secrets.token_hex(4), headers=headers)
            return [bytes(ok)]
        if method == "BYE":
            call = self.calls.pop(request.call_id, None)
            if call is not None:
                self._close_echo(call.echo)
                self.calls_ended += 1
        return [bytes(make_response(request, 200, to_tag=secrets.token_hex(4)))]

    def _answer_invite(self, request: Request) -> list[bytes]:
        call = self.calls.get(request.call_id)
        if call is not None:
            # A retransmission, or a re-INVITE: same answer, same port.
            if ";tag=" in (request.get("To") or ""):
                return [bytes(self._ok(request, call.echo, call.to_tag))]
            return [call.final]
        echo = self._bind(self.host, 0)
        self._echo_by_fd[echo.fileno()] = echo
        self._epoll.register(echo.fileno(), select.EPOLLIN)
        to_tag = secrets.token_hex(4)
        final = bytes(self._ok(request, echo, to_tag))
        self.calls[request.call_id] = _Call(echo, final, to_tag)
        self.calls_answered += 1
        return [bytes(make_response(request, 100)), final]

    def _ok(self, request: Request, echo: socket.socket, to_tag: str) -> Response:
        port = echo.getsockname()[1]
        session = secrets.randbelow(1 << 31)
        sdp = (
            f"v=0\r\no=pbx {session} 1 IN IP4 {self.host}\r\ns=-\r\n"
            f"c=IN IP4 {self.host}\r\nt=0 0\r\n"
            f"m=audio {port} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=ptime:20\r\na=sendrecv\r\n"
        ).encode()
        contact = Header("Contact", f"<sip:pbx@{self.host}:{self.sip_port};transport=udp>")
        return make_response(
            request,
            200,
            to_tag=to_tag,
            headers=(contact,),
            body=sdp,
            content_type="application/sdp",
        )

    def _close_echo(self, sock: socket.socket) -> None:
        fd = sock.fileno()
        if self._echo_by_fd.pop(fd, None) is not None:
            self._epoll.unregister(fd)
        sock.close()

    def close(self) -> None:
        """Close every socket."""
        for call in self.calls.values():
            call.echo.close()
        self.calls.clear()
        self.sip.close()
        self.floor.close()
        self._epoll.close()


def _emit(line: dict[str, object]) -> None:
    sys.stdout.write(json.dumps(line) + "\n")
    sys.stdout.flush()


def main(argv: list[str] | None = None) -> int:
    """Run the SIP side until ``report``, end of input or ``--max-seconds``."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.loadgen.pbx")
    parser.add_argument("--host", default="127.0.0.1", help="loopback address to bind")
    parser.add_argument("--max-seconds", type=float, default=600.0, help="hard stop")
    args = parser.parse_args(argv)
    pbx = PbxSide(args.host)
    try:
        _emit({"event": "ready", "sip_port": pbx.sip_port, "pid": os.getpid()})
        pbx.run(args.max_seconds, sys.stdin.fileno())
        _emit(pbx.report())
    finally:
        pbx.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
