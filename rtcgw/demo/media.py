"""What the demo extensions need of SDP, RTP, G.711 and RFC 4733; sans-IO."""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass, field

__all__ = [
    "DIGITS",
    "Offer",
    "answer_sdp",
    "dtmf_event",
    "encode_g711",
    "parse_offer",
    "rtp_packet",
    "rtp_payload",
    "tone_frames",
]

#: RFC 4733 event codes 0-15
DIGITS = "0123456789*#ABCD"
_STATIC = {0: ("PCMU", 8000), 8: ("PCMA", 8000), 9: ("G722", 8000)}


@dataclass(frozen=True, slots=True)
class Offer:
    """The first audio stream of an SDP offer: where to send and what it may carry."""

    address: str
    port: int
    payload_types: tuple[int, ...]
    #: payload type -> (encoding name, clock rate, rtpmap as written after the type)
    rtpmaps: dict[int, tuple[str, int, str]] = field(default_factory=dict)
    direction: str = "sendrecv"

    def find(self, name: str) -> int | None:
        """The first offered payload type of encoding ``name`` (case-insensitive)."""
        for pt in self.payload_types:
            if self.rtpmaps.get(pt, ("", 0, ""))[0].lower() == name.lower():
                return pt
        return None


def parse_offer(body: bytes) -> Offer | None:
    """The first audio m-line of ``body`` with a usable port, or None."""
    session_address = ""
    address = ""
    port: int | None = None
    pts: tuple[int, ...] = ()
    rtpmaps: dict[int, tuple[str, int, str]] = {}
    direction = "sendrecv"
    in_audio = False
    for line in body.decode("utf-8", errors="replace").splitlines():
        kind, _, value = line.partition("=")
        if kind == "m":
            if port is not None:
                break  # only the first audio stream
            fields = value.split()
            in_audio = len(fields) >= 4 and fields[0] == "audio" and fields[1].isdigit()
            if in_audio and int(fields[1]) != 0:
                port = int(fields[1])
                pts = tuple(int(p) for p in fields[3:] if p.isdigit())
        elif kind == "c":
            parts = value.split()
            if len(parts) == 3:
                if port is None and not in_audio:
                    session_address = parts[2].split("/")[0]
                elif in_audio:
                    address = parts[2].split("/")[0]
        elif in_audio and kind == "a":
            if value.startswith("rtpmap:"):
                pt_text, _, rest = value[7:].partition(" ")
                name, _, rate = rest.partition("/")
                if pt_text.isdigit():
                    rate_text = rate.split("/")[0]
                    rtpmaps[int(pt_text)] = (
                        name,
                        int(rate_text) if rate_text.isdigit() else 8000,
                        rest,
                    )
            elif value in ("sendrecv", "sendonly", "recvonly", "inactive"):
                direction = value
    if port is None:
        return None
    for pt, (static_name, static_rate) in _STATIC.items():
        rtpmaps.setdefault(pt, (static_name, static_rate, f"{static_name}/{static_rate}"))
    return Offer(address or session_address, port, pts, rtpmaps, direction)


_ANSWER_DIRECTION = {"sendonly": "recvonly", "recvonly": "sendonly", "inactive": "inactive"}


def answer_sdp(offer: Offer, *, address: str, port: int, codec: int, session_version: int) -> bytes:
    """An answer carrying ``codec`` (and telephone-event when offered), plain RTP/AVP."""
    pts = [codec]
    event = offer.find("telephone-event")
    if event is not None:
        pts.append(event)
    lines = [
        "v=0",
        f"o=rtcgw-demo 1 {session_version} IN IP4 {address}",
        "s=rtcgw demo",
        f"c=IN IP4 {address}",
        "t=0 0",
        f"m=audio {port} RTP/AVP {' '.join(map(str, pts))}",
    ]
    lines += [f"a=rtpmap:{pt} {offer.rtpmaps[pt][2]}" for pt in pts if pt in offer.rtpmaps]
    if event is not None:
        lines.append(f"a=fmtp:{event} 0-16")
    lines += ["a=ptime:20", f"a={_ANSWER_DIRECTION.get(offer.direction, 'sendrecv')}"]
    return ("\r\n".join(lines) + "\r\n").encode()


def rtp_packet(payload_type: int, seq: int, timestamp: int, ssrc: int, payload: bytes) -> bytes:
    """An RTP packet (RFC 3550): version 2, no padding, extension, CSRC or marker."""
    return struct.pack("!BBHII", 0x80, payload_type & 0x7F, seq & 0xFFFF, timestamp, ssrc) + payload


def rtp_payload(packet: bytes) -> tuple[int, int, bytes] | None:
    """(payload type, timestamp, payload) of an RTP packet, or None (RTCP, too short)."""
    if len(packet) < 12 or packet[0] >> 6 != 2:
        return None
    pt = packet[1] & 0x7F
    if 64 <= pt <= 95:
        return None  # RTCP sent to the RTP port (rtcp-mux range, RFC 5761)
    count = packet[0] & 0x0F
    start = 12 + 4 * count
    if packet[0] & 0x10:
        if len(packet) < start + 4:
            return None
        start += 4 + 4 * struct.unpack("!H", packet[start + 2 : start + 4])[0]
    end = len(packet)
    if packet[0] & 0x20 and end > start:
        end -= packet[-1]
    if end < start:
        return None
    return pt, struct.unpack("!I", packet[4:8])[0], packet[start:end]


def dtmf_event(payload: bytes) -> tuple[str, bool] | None:
    """(digit, end bit) of an RFC 4733 event payload, or None for another event."""
    if len(payload) < 4 or payload[0] >= len(DIGITS):
        return None
    return DIGITS[payload[0]], bool(payload[1] & 0x80)


def _ulaw(sample: int) -> int:
    sign = 0x80 if sample < 0 else 0
    magnitude = min(abs(sample), 32635) + 0x84
    exponent = max(0, magnitude.bit_length() - 8)
    mantissa = (magnitude >> (exponent + 3)) & 0x0F
    return ~(sign | (exponent << 4) | mantissa) & 0xFF


def _alaw(sample: int) -> int:
    sign = 0x80 if sample >= 0 else 0
    magnitude = min(abs(sample), 32767) >> 3
    if magnitude < 32:
        code = magnitude >> 1
    else:
        exponent = magnitude.bit_length() - 5
        code = (exponent << 4) | ((magnitude >> exponent) & 0x0F)
    return (sign | code) ^ 0x55


def encode_g711(samples: list[int], name: str) -> bytes:
    """16-bit samples as PCMU or PCMA (G.711 mu-law or A-law)."""
    encode = _ulaw if name.upper() == "PCMU" else _alaw
    return bytes(encode(s) for s in samples)


def tone_frames(hz: float, codec: str, *, amplitude: int = 8000, rate: int = 8000) -> list[bytes]:
    """20 ms G.711 frames of a sine at ``hz``, one second of them (a whole number of
    periods for an integer ``hz``, so they loop without a click)."""
    samples = [round(amplitude * math.sin(2 * math.pi * hz * n / rate)) for n in range(rate)]
    size = rate // 50
    return [encode_g711(samples[i : i + size], codec) for i in range(0, rate, size)]
