"""The browser side's media: ICE checks, a DTLS client, SRTP and paced G.711 probes.

One ``MediaPump`` carries the media of every call of the generator, the way the gateway's
relay does: one task waits for readiness across all sockets (one level-triggered
``epoll``) or for the next 2 ms tick, then drains each ready socket in batches with plain
non-blocking calls. Calls are spread over ten tick slots, so each sends one packet every
20 ms and the ten slots spread the load over each 20 ms period instead of one burst.

Per call (``MediaCall``): Binding requests with USE-CANDIDATE and the relay's credentials
until one is answered, then the DTLS handshake as client (the relay answered
``a=setup:passive``), then SRTP with the exported keys. A relay running full ICE (rtpengine)
sends its own checks too: they are answered as a browser does, with a Binding success
response carrying XOR-MAPPED-ADDRESS, MESSAGE-INTEGRITY keyed with the call's own ice-pwd
and FINGERPRINT (RFC 8445 section 7.3). Once ready it sends 50 probes a second
(``probe.py``), counts what comes back by phase, checks the order by the probe counter,
notes misrouted probes (another call's index) and, for each probe sent in the measuring
window, the round trip and the SIP -> browser one-way delay (from the echo's stamp). A
Binding request every 5 s keeps the relay's consent (RFC 7675) fresh.

Each probe is stamped just before it is encrypted and sent (not once per tick), so the
one-way figures do not include the time the pump spends on the calls before it in the same
tick. A ``SelfLoop`` sends itself a stamp every 20 ms just before the pump waits: its own
floor (``delays.py``).
"""

from __future__ import annotations

import math
import secrets
import select
import socket
import struct
import time
from array import array
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import trio
from aioice import stun as aioice_stun

from benchmarks.loadgen.delays import SelfLoop, delay_percentiles
from benchmarks.loadgen.probe import Phase, pack_probe, unpack_probe
from rtcgw.media.dtls import DtlsContexts, DtlsEndpoint, DtlsRole, DtlsState
from rtcgw.media.errors import MediaError
from rtcgw.media.rtp import rtp_payload_offset_untrusted
from rtcgw.media.srtp import SrtpSession
from rtcgw.media.stun import binding_success, parse_binding_request_untrusted, verify_integrity

__all__ = ["RTT_POINTS", "CallState", "MediaCall", "MediaPump", "Remote", "rtt_percentiles"]

TICK_S: Final = 0.002
#: Round-trip percentiles a report gives.
RTT_POINTS: Final = (50.0, 90.0, 99.0, 100.0)
SLOTS: Final = 10  # TICK_S * SLOTS = 20 ms, the G.711 packet time
SAMPLES_PER_PACKET: Final = 160
CONSENT_INTERVAL_S: Final = 5.0
ICE_RETRY_S: Final = 0.5
BATCH: Final = 64
_MAX_DATAGRAM: Final = 4096
_SOCKET_BUFFER_BYTES: Final = 1 << 20
_RTP_HEADER: Final = struct.Struct("!BBHII")
_PCMU: Final = 0
#: A host candidate's priority (RFC 8445 section 5.1.2.1 with type preference 126).
_PRIORITY: Final = 2130706431
_PHASES: Final = len(Phase)
#: A STUN message type of 0x0001: a Binding request (RFC 8489 section 5).
_BINDING_REQUEST: Final = b"\x00\x01"


class CallState:
    """Where a call's media is (plain string constants keep the hot path cheap)."""

    NEW = "new"
    ICE = "ice"
    DTLS = "dtls"
    READY = "ready"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class Remote:
    """What the gateway's SDP answer said about its browser-side transport."""

    address: tuple[str, int]
    ice_ufrag: str
    ice_pwd: str
    fingerprints: tuple[tuple[str, str], ...]


@dataclass(eq=False)
class MediaCall:
    """One call's media transport on the browser side."""

    index: int
    sock: socket.socket
    ice_ufrag: str = field(default_factory=lambda: secrets.token_hex(4))
    ice_pwd: str = field(default_factory=lambda: secrets.token_hex(12))
    ssrc: int = field(default_factory=lambda: secrets.randbits(32))
    sequence: int = field(default_factory=lambda: secrets.randbelow(1 << 15))
    timestamp: int = field(default_factory=lambda: secrets.randbits(31))
    state: str = CallState.NEW
    failure: str | None = None
    remote: Remote | None = None
    dtls: DtlsEndpoint | None = None
    srtp: SrtpSession | None = None
    ready: trio.Event = field(default_factory=trio.Event)
    ready_at: float | None = None
    #: when the first probe came back (time.monotonic): the end of the post-pickup delay
    first_rtp_at: float | None = None
    sending: bool = True
    counter: int = 0
    sent: list[int] = field(default_factory=lambda: [0] * _PHASES)
    received: list[int] = field(default_factory=lambda: [0] * _PHASES)
    send_failed: int = 0
    out_of_order: int = 0
    misrouted: int = 0
    srtp_errors: int = 0
    rtcp_received: int = 0
    stun_answered: int = 0
    #: the relay's own connectivity checks we answered (full ICE), and those refused
    checks_answered: int = 0
    checks_refused: int = 0
    last_counter: int = -1
    _binding_id: bytes = b""
    _next_check_at: float = 0.0
    _checks: int = 0

    @property
    def port(self) -> int:
        """The local port of the call's socket (its ICE host candidate)."""
        port: int = self.sock.getsockname()[1]
        return port


class MediaPump:
    """Every browser-side media socket of the generator and the task that serves them."""

    def __init__(self, contexts: DtlsContexts, host: str = "127.0.0.1") -> None:
        self.contexts = contexts
        self.host = host
        self.phase = Phase.WARMUP
        #: round trips (microseconds) of probes sent in the measuring window
        self.rtt_us: array[int] = array("q")
        #: SIP -> browser one-way delays (microseconds) of the same probes
        self.sip_to_browser_us: array[int] = array("q")
        self.late_ticks = 0
        self._epoll = select.epoll()
        self.floor = SelfLoop(host)
        self._epoll.register(self.floor.fileno(), select.EPOLLIN)
        self._by_fd: dict[int, MediaCall] = {}
        self._slots: list[list[MediaCall]] = [[] for _ in range(SLOTS)]
        self._pending: set[MediaCall] = set()  # ICE or DTLS under way
        self._tiebreaker = secrets.randbits(64)

    # -- calls -----------------------------------------------------------------------------

    def open_call(self, index: int) -> MediaCall:
        """A call with its own socket on ``host``, port chosen by the kernel."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, _SOCKET_BUFFER_BYTES)
        sock.bind((self.host, 0))
        sock.setblocking(False)
        call = MediaCall(index, sock)
        self._by_fd[sock.fileno()] = call
        self._epoll.register(sock.fileno(), select.EPOLLIN)
        return call

    def connect(self, call: MediaCall, remote: Remote) -> None:
        """Start ICE toward the gateway's candidate; DTLS follows the first answer."""
        call.remote = remote
        call.dtls = DtlsEndpoint(self.contexts, DtlsRole.CLIENT, remote.fingerprints)
        call.state = CallState.ICE
        self._pending.add(call)
        self._check(call, time.monotonic(), nominate=True)

    def close_call(self, call: MediaCall) -> None:
        """Stop sending and close the call's socket (its counters stay)."""
        call.sending = False
        self._pending.discard(call)
        for slot in self._slots:
            if call in slot:
                slot.remove(call)
        fd = call.sock.fileno()
        if self._by_fd.pop(fd, None) is not None:
            self._epoll.unregister(fd)
        call.sock.close()

    def fail(self, call: MediaCall, reason: str) -> None:
        """Give up on a call's media set-up."""
        call.state = CallState.FAILED
        call.failure = reason
        self._pending.discard(call)

    # -- the task --------------------------------------------------------------------------

    async def run(self, until: float) -> None:
        """Serve until cancelled or until ``until`` (trio clock): a hard bound."""
        next_tick = trio.current_time()
        tick = 0
        try:
            while trio.current_time() < until:
                self.floor.send_if_due(time.monotonic())
                with trio.move_on_at(next_tick):
                    await trio.lowlevel.wait_readable(self._epoll.fileno())
                self._drain()
                now = trio.current_time()
                if now >= next_tick:
                    behind = 0
                    while now >= next_tick and behind < SLOTS:
                        self._tick(tick % SLOTS)
                        tick += 1
                        next_tick += TICK_S
                        behind += 1
                    if now - next_tick > SLOTS * TICK_S:
                        # More than a packet time behind: skip ahead rather than burst.
                        self.late_ticks += 1
                        next_tick = now + TICK_S
                    self._service_pending()
                await trio.lowlevel.checkpoint()
        finally:
            for call in list(self._by_fd.values()):
                self.close_call(call)
            self._epoll.close()
            self.floor.close()

    def report(self, calls: Sequence[MediaCall]) -> dict[str, Any]:
        """The media counters of ``calls`` summed, with the round trips and one-way
        delays of the window: the part every generator's report shares."""
        return {
            "sent": [sum(c.sent[p] for c in calls) for p in Phase],
            "received": [sum(c.received[p] for c in calls) for p in Phase],
            "send_failed": sum(c.send_failed for c in calls),
            "out_of_order": sum(c.out_of_order for c in calls),
            "misrouted": sum(c.misrouted for c in calls),
            "srtp_errors": sum(c.srtp_errors for c in calls),
            "rtcp_received": sum(c.rtcp_received for c in calls),
            "stun_answered": sum(c.stun_answered for c in calls),
            "checks_answered": sum(c.checks_answered for c in calls),
            "checks_refused": sum(c.checks_refused for c in calls),
            "late_ticks": self.late_ticks,
            "rtt_ms": rtt_percentiles(self.rtt_us, RTT_POINTS),
            **self.delay_report(),
        }

    def delay_report(self) -> dict[str, dict[str, dict[str, float | int | None]]]:
        """The SIP -> browser one-way delays and the pump's floor, as a report carries them.

        ``{"one_way_ms": {"sip_to_browser": {...}}, "floor_ms": {"sip_to_browser": {...}}}``
        with ``delays.delay_percentiles`` figures; measuring-window probes only.
        """
        return {
            "one_way_ms": {"sip_to_browser": delay_percentiles(self.sip_to_browser_us)},
            "floor_ms": {"sip_to_browser": delay_percentiles(self.floor.samples_us)},
        }

    def _tick(self, slot: int) -> None:
        phase = self.phase
        now = time.monotonic()
        monotonic_ns = time.monotonic_ns
        pack_header = _RTP_HEADER.pack
        for call in self._slots[slot]:
            if not call.sending:
                continue
            srtp, remote = call.srtp, call.remote
            if srtp is None or remote is None:
                continue
            call.sequence = (call.sequence + 1) & 0xFFFF
            call.timestamp = (call.timestamp + SAMPLES_PER_PACKET) & 0xFFFFFFFF
            packet = pack_header(0x80, _PCMU, call.sequence, call.timestamp, call.ssrc)
            packet += pack_probe(phase, call.index, call.counter, monotonic_ns())
            call.counter += 1
            try:
                call.sock.sendto(srtp.protect(packet), remote.address)
            except OSError:
                call.send_failed += 1
                continue
            call.sent[phase] += 1
            if now >= call._next_check_at:
                self._check(call, now, nominate=False)

    def _service_pending(self) -> None:
        now = time.monotonic()
        for call in list(self._pending):
            if call.state == CallState.ICE and now >= call._next_check_at:
                self._check(call, now, nominate=True)
            elif call.state == CallState.DTLS and call.dtls is not None:
                deadline = call.dtls.next_deadline()
                if deadline is not None and now >= deadline:
                    self._send_all(call, call.dtls.handle_timeout(now))
                    if call.dtls.state is DtlsState.FAILED:
                        self.fail(call, f"DTLS: {call.dtls.failure}")

    # -- receiving -------------------------------------------------------------------------

    def _drain(self) -> None:
        by_fd = self._by_fd
        for fd, _ in self._epoll.poll(0):
            call = by_fd.get(fd)
            if call is None:
                if fd == self.floor.fileno():
                    self.floor.drain(record=self.phase == Phase.MEASURE)
                continue
            recvfrom = call.sock.recvfrom
            for _ in range(BATCH):
                try:
                    data, source = recvfrom(_MAX_DATAGRAM)
                except BlockingIOError:
                    break
                except OSError:
                    continue
                first = data[0] if data else 0
                if 128 <= first <= 191:
                    self._receive_rtp(call, data)
                elif first <= 3:
                    self._receive_stun(call, data, source)
                elif 20 <= first <= 63:
                    self._receive_dtls(call, data)

    def _receive_rtp(self, call: MediaCall, data: bytes) -> None:
        srtp = call.srtp
        if srtp is None:
            call.srtp_errors += 1
            return
        if 192 <= data[1] <= 223:  # RTCP under rtcp-mux (RFC 5761 section 4)
            call.rtcp_received += 1
            return
        try:
            packet = srtp.unprotect(data)
        except MediaError:
            call.srtp_errors += 1
            return
        offset = rtp_payload_offset_untrusted(packet)
        probe = None if offset is None else unpack_probe(packet, offset)
        if probe is None:
            call.srtp_errors += 1
            return
        phase, index, counter, sent_ns, echo_ns = probe
        if index != call.index or phase >= _PHASES:
            call.misrouted += 1
            return
        call.received[phase] += 1
        if call.first_rtp_at is None:
            call.first_rtp_at = time.monotonic()
        if counter <= call.last_counter:
            call.out_of_order += 1
        else:
            call.last_counter = counter
        if phase == Phase.MEASURE:
            now_ns = time.monotonic_ns()
            self.rtt_us.append((now_ns - sent_ns) // 1000)
            if echo_ns:
                self.sip_to_browser_us.append((now_ns - echo_ns) // 1000)

    def _receive_stun(self, call: MediaCall, data: bytes, source: tuple[str, int]) -> None:
        if data[:2] == _BINDING_REQUEST:
            self._answer_check(call, data, source)
            return
        remote = call.remote
        if remote is None:
            return
        try:
            message = aioice_stun.parse_message(data)
        except (ValueError, struct.error):
            return
        if (
            message.message_class != aioice_stun.Class.RESPONSE
            or message.transaction_id != call._binding_id
            or not verify_integrity(data, remote.ice_pwd.encode())
        ):
            return
        call.stun_answered += 1
        if call.state == CallState.ICE and call.dtls is not None:
            call.state = CallState.DTLS
            self._send_all(call, call.dtls.start(time.monotonic()))

    def _receive_dtls(self, call: MediaCall, data: bytes) -> None:
        dtls = call.dtls
        if dtls is None:
            return
        now = time.monotonic()
        self._send_all(call, dtls.receive_untrusted(data, now))
        if dtls.state is DtlsState.CONNECTED and call.state == CallState.DTLS:
            call.srtp = dtls.srtp_session()
            call.state = CallState.READY
            call.ready_at = now
            self._pending.discard(call)
            self._slots[call.index % SLOTS].append(call)
            call._next_check_at = now + CONSENT_INTERVAL_S
            call.ready.set()
        elif dtls.state is DtlsState.FAILED:
            self.fail(call, f"DTLS: {dtls.failure}")

    def _answer_check(self, call: MediaCall, data: bytes, source: tuple[str, int]) -> None:
        """Answer the relay's own connectivity check as a browser does (RFC 8445 section 7.3).

        The request's USERNAME starts with our ufrag and its MESSAGE-INTEGRITY is keyed with
        our password; the success response goes back to the request's source with that
        address in XOR-MAPPED-ADDRESS. Anything else is refused silently (and counted).
        """
        request = parse_binding_request_untrusted(data)
        if (
            request is None
            or not request.has_integrity
            or not (request.username or "").startswith(f"{call.ice_ufrag}:")
            or not verify_integrity(data, call.ice_pwd.encode())
        ):
            call.checks_refused += 1
            return
        response = binding_success(request.transaction_id, source, call.ice_pwd.encode())
        try:
            call.sock.sendto(response, source)
        except OSError:
            call.send_failed += 1
            return
        call.checks_answered += 1

    # -- sending ---------------------------------------------------------------------------

    def _send_all(self, call: MediaCall, datagrams: list[bytes]) -> None:
        if call.remote is None:
            return
        for datagram in datagrams:
            try:
                call.sock.sendto(datagram, call.remote.address)
            except OSError:
                call.send_failed += 1

    def _check(self, call: MediaCall, now: float, *, nominate: bool) -> None:
        """Send a Binding request: a connectivity check, or a consent refresh."""
        remote = call.remote
        if remote is None:
            return
        message = aioice_stun.Message(
            message_method=aioice_stun.Method.BINDING,
            message_class=aioice_stun.Class.REQUEST,
        )
        message.attributes["USERNAME"] = f"{remote.ice_ufrag}:{call.ice_ufrag}"
        message.attributes["PRIORITY"] = _PRIORITY
        message.attributes["ICE-CONTROLLING"] = self._tiebreaker
        if nominate:
            message.attributes["USE-CANDIDATE"] = None
        message.add_message_integrity(remote.ice_pwd.encode())
        call._binding_id = message.transaction_id
        call._checks += 1
        call._next_check_at = now + (ICE_RETRY_S if nominate else CONSENT_INTERVAL_S)
        self._send_all(call, [bytes(message)])


def rtt_percentiles(samples: array[int], points: tuple[float, ...]) -> dict[str, float | None]:
    """``{"p50": ms, ...}`` of round trips in microseconds (None without samples)."""
    ordered = sorted(samples)
    result: dict[str, float | None] = {}
    for point in points:
        key = f"p{point:g}"
        if not ordered:
            result[key] = None
            continue
        rank = _nearest_rank(point, len(ordered))
        result[key] = ordered[rank] / 1000
    return result


def _nearest_rank(point: float, count: int) -> int:
    """The 0-based index of the ``point`` percentile among ``count`` sorted samples."""
    # The tolerance keeps binary rounding (99.9 / 100 * 1000 = 999.0000000000001) from
    # moving the rank up by one.
    return min(count - 1, max(0, math.ceil(point * count / 100 - 1e-9) - 1))
