"""SIP over a secure WebSocket as a browser speaks it (RFC 7118), for the load generators.

What the browser-side programs share: an identity (user, a random ``.invalid`` host for Via
and Contact, as JsSIP writes them), the requests they send (INVITE with a WebRTC offer,
REGISTER), the offer itself, the parse of the gateway's answer, and the plumbing of one
WebSocket: open it with subprotocol ``sip``, send a message, read the next one.

No transaction layer: WebSocket is reliable (RFC 7118 section 5), so a client sends each
request once and waits for its answer with a deadline of its own.
"""

from __future__ import annotations

import secrets
import ssl
from dataclasses import dataclass, field
from typing import Final

import trio
from trio_websocket import WebSocketConnection, connect_websocket

from benchmarks.loadgen.webrtc_media import MediaCall, Remote
from rtcgw.sip import (
    Header,
    Request,
    Response,
    SipError,
    Via,
    new_branch,
    new_tag,
    parse_message,
    parse_uri,
)
from rtcgw.sip.transport import Transport

__all__ = [
    "CALLEE",
    "DOMAIN",
    "SipIdentity",
    "connect",
    "invite_request",
    "offer_sdp",
    "parse_answer",
    "receive",
    "register_request",
    "send",
]

DOMAIN: Final = "example.test"
#: The SIP side's user the browsers call.
CALLEE: Final = "echo"
USER_AGENT: Final = "rtcgw-benchmark"


@dataclass(frozen=True)
class SipIdentity:
    """Who one simulated browser is: its user name and the host it writes in Via/Contact."""

    user: str = field(default_factory=lambda: f"load{secrets.token_hex(3)}")
    host: str = field(default_factory=lambda: secrets.token_hex(6) + ".invalid")

    @property
    def contact(self) -> str:
        """The Contact of a WebSocket client (RFC 7118 section 5.2)."""
        return f"<sip:{self.user}@{self.host};transport=ws>"

    @property
    def aor(self) -> str:
        """The address of record it registers."""
        return f"sip:{self.user}@{DOMAIN}"

    def via(self) -> Via:
        """A fresh Via for one request."""
        return Via.new(Transport.WSS, self.host, None, new_branch())


async def connect(
    nursery: trio.Nursery, address: tuple[str, int], tls: ssl.SSLContext
) -> WebSocketConnection:
    """A WebSocket to the gateway with subprotocol ``sip``; its reader runs in ``nursery``.

    The caller bounds the wait and closes the connection (``aclose``).
    """
    host, port = address
    return await connect_websocket(nursery, host, port, "/", use_ssl=tls, subprotocols=["sip"])


async def send(ws: WebSocketConnection, message: Request | Response) -> None:
    """One SIP message as one text frame (RFC 7118 section 4.2)."""
    await ws.send_message(bytes(message).decode())


async def receive(ws: WebSocketConnection) -> Request | Response | None:
    """The next SIP message on the connection (None when it does not parse)."""
    raw = await ws.get_message()
    try:
        return parse_message(raw.encode() if isinstance(raw, str) else raw)
    except SipError:
        return None


def invite_request(identity: SipIdentity, sdp: bytes) -> Request:
    """An initial INVITE to the SIP side's echo user, carrying ``sdp``."""
    headers = (
        Header("Via", str(identity.via())),
        Header("Max-Forwards", "69"),
        Header("To", f"<sip:{CALLEE}@{DOMAIN}>"),
        Header("From", f"<sip:{identity.user}@{DOMAIN}>;tag={new_tag()}"),
        Header("Call-ID", secrets.token_hex(10)),
        Header("CSeq", "1 INVITE"),
        Header("Contact", identity.contact),
        Header("Supported", "ice, replaces, outbound"),
        Header("User-Agent", USER_AGENT),
    )
    return Request("INVITE", parse_uri(f"sip:{CALLEE}@{DOMAIN}"), headers).with_body(
        sdp, "application/sdp"
    )


def register_request(
    identity: SipIdentity, *, call_id: str, from_tag: str, cseq: int, expires_s: int
) -> Request:
    """A REGISTER of the identity's Contact; refreshes keep Call-ID and From tag (10.2.4)."""
    headers = (
        Header("Via", str(identity.via())),
        Header("Max-Forwards", "69"),
        Header("To", f"<{identity.aor}>"),
        Header("From", f"<{identity.aor}>;tag={from_tag}"),
        Header("Call-ID", call_id),
        Header("CSeq", f"{cseq} REGISTER"),
        Header("Contact", f"{identity.contact};expires={expires_s}"),
        Header("Expires", str(expires_s)),
        Header("User-Agent", USER_AGENT),
    )
    return Request("REGISTER", parse_uri(f"sip:{DOMAIN}"), headers).with_body(b"")


def offer_sdp(media: MediaCall, fingerprint: str) -> bytes:
    """A browser's audio-only WebRTC offer: one PCMU m-line, ICE, DTLS actpass, rtcp-mux."""
    host, port = media.sock.getsockname()
    session = secrets.randbelow(1 << 62)
    lines = [
        "v=0",
        f"o=- {session} 2 IN IP4 127.0.0.1",
        "s=-",
        "t=0 0",
        "a=group:BUNDLE 0",
        "a=msid-semantic: WMS",
        f"m=audio {port} UDP/TLS/RTP/SAVPF 0",
        f"c=IN IP4 {host}",
        "a=rtcp:9 IN IP4 0.0.0.0",
        f"a=candidate:1 1 udp 2130706431 {host} {port} typ host",
        "a=end-of-candidates",
        f"a=ice-ufrag:{media.ice_ufrag}",
        f"a=ice-pwd:{media.ice_pwd}",
        f"a=fingerprint:{fingerprint}",
        "a=setup:actpass",
        "a=mid:0",
        "a=sendrecv",
        "a=rtcp-mux",
        "a=rtpmap:0 PCMU/8000",
        f"a=ssrc:{media.ssrc} cname:load",
    ]
    return ("\r\n".join(lines) + "\r\n").encode()


def parse_answer(body: bytes) -> Remote:
    """The gateway's ICE credentials, first UDP host candidate and fingerprints.

    Raises:
        ValueError: the answer lacks one of them.
    """
    ufrag = pwd = None
    candidate: tuple[str, int] | None = None
    fingerprints: list[tuple[str, str]] = []
    for line in body.decode(errors="replace").splitlines():
        if line.startswith("a=ice-ufrag:"):
            ufrag = line.split(":", 1)[1].strip()
        elif line.startswith("a=ice-pwd:"):
            pwd = line.split(":", 1)[1].strip()
        elif line.startswith("a=fingerprint:"):
            algorithm, _, value = line.split(":", 1)[1].strip().partition(" ")
            fingerprints.append((algorithm.lower(), value.strip()))
        elif line.startswith("a=candidate:") and candidate is None:
            parts = line.split(":", 1)[1].split()
            if len(parts) >= 6 and parts[1] == "1" and parts[2].lower() == "udp":
                candidate = (parts[4], int(parts[5]))
    if ufrag is None or pwd is None or candidate is None or not fingerprints:
        raise ValueError(
            f"answer without ice-ufrag, ice-pwd, a candidate or a fingerprint: {body[:400]!r}"
        )
    return Remote(candidate, ufrag, pwd, tuple(fingerprints))
