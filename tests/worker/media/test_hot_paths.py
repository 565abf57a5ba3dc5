"""The steady-state shortcuts of the packet paths count, route and drop as the general paths.

``BrowserTransport.datagram`` relays SRTP from the selected address to an already routed
stream inline, and ``PlainStream.send_rtp`` sends inline when no DTMF tap is set; every
other packet takes the general methods. These tests drive one call's endpoints directly
(no relay task) over loopback UDP sockets, with a sender and a receiver socket standing for
each peer, and look at what arrives and at the counters.
"""

from __future__ import annotations

import secrets
import socket
import struct
from collections.abc import Iterator

import pytest

from rtcgw.media.ice_lite import IceCredentials, IceLiteAgent
from rtcgw.media.rtp import RtpRewriter
from rtcgw.media.srtp import SrtpProfile, SrtpSession, new_master_key
from rtcgw.worker.media.streams import BrowserStream, BrowserTransport, Drop, PlainStream

PROFILE = SrtpProfile.AES_CM_128_HMAC_SHA1_80
OUR_SSRC = 0x0BADCAFE
NOW = 50.0


def _udp() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(5.0)  # a receive that finds nothing fails the test instead of hanging
    return sock


def _rtp(sequence: int, ssrc: int, *, payload_type: int = 0, first: int = 0x80) -> bytes:
    return struct.pack("!BBHII", first, payload_type, sequence, sequence * 160, ssrc) + bytes(160)


class Call:
    """A browser transport with one stream and a plain stream, peered, keyed and selected."""

    def __init__(self) -> None:
        self.sockets: list[socket.socket] = []
        self.browser = self._socket()  # the browser's own socket
        self.phone_rtp = self._socket()
        self.phone_rtcp = self._socket()
        browser_key, gateway_key = new_master_key(PROFILE), new_master_key(PROFILE)
        self.browser_srtp = SrtpSession(PROFILE, browser_key, gateway_key)
        self.transport = BrowserTransport(self._socket(), IceLiteAgent(IceCredentials.generate()))
        rewriter = RtpRewriter(OUR_SSRC, 8000, initial_sequence=100, initial_timestamp=1000)
        self.stream = BrowserStream(self.transport, 0, rewriter)
        self.stream.payload_types = frozenset({0, 8})
        self.transport.add_stream(self.stream)
        self.transport.srtp = SrtpSession(PROFILE, gateway_key, browser_key)
        self.transport.destination = self.browser.getsockname()
        self.plain = PlainStream(self._socket(), self._socket(), 0)
        self.plain.set_remote(self.phone_rtp.getsockname(), self.phone_rtcp.getsockname())
        self.stream.peer = self.plain
        self.plain.peer = self.stream

    def _socket(self) -> socket.socket:
        sock = _udp()
        self.sockets.append(sock)
        return sock

    def from_browser(self, packet: bytes, *, protect: bool = True) -> None:
        data = self.browser_srtp.protect(packet) if protect else packet
        self.transport.datagram(data, self.browser.getsockname(), NOW)

    def from_phone(self, packet: bytes) -> None:
        self.plain.rtp_datagram(packet, self.phone_rtp.getsockname(), NOW)

    def close(self) -> None:
        for sock in self.sockets:
            sock.close()


@pytest.fixture
def call() -> Iterator[Call]:
    made = Call()
    yield made
    made.close()


def test_srtp_from_the_selected_address_reaches_the_phone_and_is_counted(call: Call) -> None:
    packets = [_rtp(7 + i, 0x1111) for i in range(3)]
    for packet in packets:
        call.from_browser(packet)
    assert [call.phone_rtp.recv(2048) for _ in packets] == packets
    counters = call.stream.counters
    assert counters.packets_in == 3
    assert counters.bytes_in == 3 * (172 + 10)  # as on the wire: with the SRTP tag
    assert counters.first_in_at == NOW and counters.last_in_at == NOW
    assert call.plain.counters.packets_out == 3
    assert call.plain.counters.bytes_out == 3 * 172
    assert counters.dropped == {} and call.plain.counters.dropped == {}


def test_srtp_failures_on_the_fast_path_are_counted_by_reason(call: Call) -> None:
    good = call.browser_srtp.protect(_rtp(1, 0x1111))
    call.transport.datagram(good, call.browser.getsockname(), NOW)
    call.transport.datagram(good, call.browser.getsockname(), NOW)  # replayed
    tampered = bytearray(call.browser_srtp.protect(_rtp(2, 0x1111)))
    tampered[20] ^= 0xFF
    call.transport.datagram(bytes(tampered), call.browser.getsockname(), NOW)
    call.from_browser(_rtp(3, 0x1111), protect=False)  # plain RTP: no tag at all
    assert call.stream.counters.dropped == {
        Drop.SRTP_REPLAY: 1,
        Drop.SRTP_AUTH: 2,
    }
    assert call.stream.counters.packets_in == 1
    assert call.phone_rtp.recv(2048) == _rtp(1, 0x1111)


def test_a_second_ssrc_is_routed_by_payload_type_then_by_ssrc(call: Call) -> None:
    # The first packet of each SSRC takes the general routing, the next ones the shortcut.
    for sequence, ssrc in ((1, 0x1111), (2, 0x1111), (1, 0x2222), (2, 0x2222)):
        call.from_browser(_rtp(sequence, ssrc, payload_type=8))
    assert [call.phone_rtp.recv(2048)[8:12] for _ in range(4)] == [
        b"\x00\x00\x11\x11",
        b"\x00\x00\x11\x11",
        b"\x00\x00\x22\x22",
        b"\x00\x00\x22\x22",
    ]
    assert call.stream.counters.packets_in == 4


def test_unknown_payload_type_in_a_bundle_is_no_stream(call: Call) -> None:
    second = BrowserStream(
        call.transport, 1, RtpRewriter(1, 90000, initial_sequence=0, initial_timestamp=0)
    )
    second.payload_types = frozenset({96})
    call.transport.add_stream(second)
    call.from_browser(_rtp(1, 0x3333, payload_type=111))
    call.from_browser(_rtp(1, 0x4444, payload_type=96))
    assert call.stream.counters.dropped == {Drop.NO_STREAM: 1}
    assert second.counters.packets_in == 1
    assert second.counters.dropped == {Drop.NO_SESSION: 1}  # it has no peer


def test_srtp_from_another_address_takes_the_checked_path(call: Call) -> None:
    stranger = call._socket()
    data = call.browser_srtp.protect(_rtp(1, 0x1111))
    call.transport.datagram(data, stranger.getsockname(), NOW)
    assert call.stream.counters.dropped == {Drop.UNVALIDATED_SOURCE: 1}
    call.transport.srtp = None
    call.from_browser(_rtp(2, 0x1111))
    assert call.stream.counters.dropped == {Drop.UNVALIDATED_SOURCE: 1, Drop.NOT_READY: 1}
    assert call.stream.counters.packets_in == 0


def test_rtp_from_the_phone_reaches_the_browser_rewritten_and_protected(call: Call) -> None:
    call.from_phone(_rtp(500, 0x5555))
    call.from_phone(_rtp(501, 0x5555, first=0x90)[:12] + b"\x00\x01\x00\x00" + bytes(160))
    call.from_phone(b"\x80\x00\x00")  # shorter than a header
    call.from_phone(b"\x90" + _rtp(502, 0x5555)[1:12])  # extension announced, not there
    received = [call.browser_srtp.unprotect(call.browser.recv(2048)) for _ in range(2)]
    fields = [struct.unpack_from("!BBHII", packet) for packet in received]
    assert [f[2] for f in fields] == [100, 101]
    assert {f[4] for f in fields} == {OUR_SSRC}
    assert call.plain.counters.packets_in == 2
    assert call.plain.counters.dropped == {Drop.MALFORMED: 2}
    assert call.stream.counters.packets_out == 2


def test_payload_type_map_and_tap_toward_the_phone(call: Call) -> None:
    call.plain.payload_type_map = {8: 108}
    call.from_browser(_rtp(1, 0x1111, payload_type=8))
    call.from_browser(_rtp(2, 0x1111, payload_type=0))
    assert [call.phone_rtp.recv(2048)[1] for _ in range(2)] == [108, 0]

    class HoldEveryOther:
        def __init__(self) -> None:
            self.seen = 0

        def outgoing(self, packet: bytes, now: float) -> bytes | None:
            self.seen += 1
            return packet if self.seen % 2 else None

        def incoming(self, packet: bytes, now: float) -> None:
            pass

    call.plain.tap = HoldEveryOther()
    for sequence in range(3, 7):
        call.from_browser(_rtp(sequence, 0x1111, payload_type=8))
    arrived = [call.phone_rtp.recv(2048) for _ in range(2)]
    assert [struct.unpack_from("!H", p, 2)[0] for p in arrived] == [3, 5]
    assert {p[1] for p in arrived} == {108}
    assert call.plain.counters.dropped == {Drop.REPLACED_BY_DTMF: 2}
    assert call.plain.counters.packets_out == 4


def test_nothing_goes_to_a_phone_whose_address_is_unknown(call: Call) -> None:
    call.plain.set_remote(None, None)
    call.from_browser(_rtp(1, secrets.randbits(32)))
    assert call.plain.counters.dropped == {Drop.NOT_READY: 1}
    assert call.stream.counters.packets_in == 1
