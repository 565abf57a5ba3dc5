"""Small SIP peers for integration tests: a UDP endpoint and a SIP-over-WebSocket client.

They send hand-written requests and parse what comes back with rtcgw's own parser (the
gateway under test speaks to real sipp and browsers elsewhere; these exercise the
runtime's framing and dispatch).
"""

from __future__ import annotations

import secrets

import trio
from trio_websocket import WebSocketConnection

from rtcgw.sip import Request, Response, parse_message


def options(target: str, *, via: str, call_id: str | None = None, cseq: int = 1) -> bytes:
    """An out-of-dialog OPTIONS request, as a PBX's keep-alive ping sends it."""
    return request("OPTIONS", target, via=via, call_id=call_id, cseq=cseq)


def request(
    method: str,
    target: str,
    *,
    via: str,
    call_id: str | None = None,
    cseq: int = 1,
    max_forwards: int = 70,
    body: str = "",
) -> bytes:
    """An out-of-dialog request with a Contact (so an INVITE is well formed); a body is
    sent as text/plain."""
    call_id = call_id or secrets.token_hex(8)
    branch = "z9hG4bK" + secrets.token_hex(6)
    host = via.split(" ", 1)[1]
    content = "Content-Type: text/plain\r\n" if body else ""
    return (
        f"{method} sip:{target} SIP/2.0\r\n"
        f"Via: SIP/2.0/{via};branch={branch};rport\r\n"
        f"Max-Forwards: {max_forwards}\r\n"
        f"From: <sip:probe@test.invalid>;tag={secrets.token_hex(4)}\r\n"
        f"To: <sip:{target}>\r\n"
        f"Call-ID: {call_id}\r\n"
        f"CSeq: {cseq} {method}\r\n"
        f"Contact: <sip:probe@{host}>\r\n"
        f"{content}"
        f"Content-Length: {len(body.encode())}\r\n\r\n{body}"
    ).encode()


class UdpPeer:
    """A UDP socket on loopback that sends datagrams and reads parsed SIP back."""

    def __init__(self, sock: trio.socket.SocketType) -> None:
        self.sock = sock

    @classmethod
    async def open(cls) -> UdpPeer:
        sock = trio.socket.socket(trio.socket.AF_INET, trio.socket.SOCK_DGRAM)
        await sock.bind(("127.0.0.1", 0))
        return cls(sock)

    @property
    def via(self) -> str:
        host, port = self.sock.getsockname()
        return f"UDP {host}:{port}"

    async def send(self, data: bytes, address: tuple[str, int]) -> None:
        await self.sock.sendto(data, address)

    async def receive(self) -> Request | Response:
        return parse_message(await self.receive_raw())

    async def receive_raw(self) -> bytes:
        data, _ = await self.sock.recvfrom(65536)
        return data


class WsPeer:
    """A SIP-over-WebSocket client connection (the browser side)."""

    def __init__(self, ws: WebSocketConnection) -> None:
        self.ws = ws

    via = "WS df7jal23ls0d.invalid"

    async def send(self, data: bytes) -> None:
        await self.ws.send_message(data.decode())

    async def receive(self) -> Request | Response:
        message = await self.ws.get_message()
        raw = message.encode() if isinstance(message, str) else message
        return parse_message(raw)
