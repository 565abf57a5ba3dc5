"""A minimal SIP user agent client over UDP: INVITE with an offer, ACK, BYE.

What a benchmark needs to get an answer and an echo port from ``pbx.py`` without a gateway
in between, and no more of RFC 3261: one UDP socket per call; a request is retransmitted
on Timer A's schedule (T1 = 500 ms, doubling, RFC 3261 section 17.1.1.2) until its final
response, for at most ``_ATTEMPTS`` sends; provisional responses are skipped; the 2xx to
the INVITE is ACKed from its dialog (section 13.2.2.4). No authentication, forking,
re-INVITE or CANCEL.
"""

from __future__ import annotations

import socket
from types import TracebackType
from typing import Final, Self

import trio

from rtcgw.sip import (
    Dialog,
    Header,
    Request,
    Response,
    SipError,
    Transport,
    Via,
    new_branch,
    new_call_id,
    new_tag,
    parse_message,
    parse_uri,
)
from rtcgw.sip.transaction_client import make_non2xx_ack

__all__ = ["SipCallFailed", "UdpSipCall"]

#: RFC 3261 section 17.1.1.1: T1, the round-trip estimate Timer A starts from.
_T1_S: Final = 0.5
#: Sends of one request at most: 0.5 + 1 + 2 + 4 + 8 s of waiting, within Timer B's 32 s.
_ATTEMPTS: Final = 5
_MAX_DATAGRAM: Final = 65535


class SipCallFailed(Exception):
    """The INVITE or BYE got no final response, or a failure response."""


class UdpSipCall:
    """One call from ``caller@domain`` to ``callee@domain`` at ``target``, over UDP.

    Use it as an async context manager: the socket is opened on entry, closed on exit.
    """

    def __init__(
        self,
        target: tuple[str, int],
        *,
        caller: str,
        callee: str,
        domain: str,
        host: str = "127.0.0.1",
    ) -> None:
        self.target = target
        self.caller = caller
        self.callee = callee
        self.domain = domain
        self.host = host
        self.call_id = new_call_id()
        self.from_tag = new_tag()
        self.dialog: Dialog | None = None
        self.retransmissions = 0
        self._sock = trio.socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._port = 0

    async def __aenter__(self) -> Self:
        await self._sock.bind((self.host, 0))
        self._port = self._sock.getsockname()[1]
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._sock.close()

    @property
    def to_tag(self) -> str | None:
        """The callee's tag, once a 2xx created the dialog."""
        return None if self.dialog is None else self.dialog.id.remote_tag

    def _via(self) -> Via:
        return Via.new(Transport.UDP, self.host, self._port, new_branch())

    async def invite(self, sdp: bytes) -> Response:
        """Send the INVITE with ``sdp``; ACK the 2xx and return it (the answer is its body).

        Raises:
            SipCallFailed: a failure response (ACKed), or none after every retransmission.
        """
        headers = (
            Header("Via", str(self._via())),
            Header("Max-Forwards", "70"),
            Header("To", f"<sip:{self.callee}@{self.domain}>"),
            Header("From", f"<sip:{self.caller}@{self.domain}>;tag={self.from_tag}"),
            Header("Call-ID", self.call_id),
            Header("CSeq", "1 INVITE"),
            Header("Contact", f"<sip:{self.caller}@{self.host}:{self._port};transport=udp>"),
            Header("User-Agent", "rtcgw-benchmark"),
        )
        uri = parse_uri(f"sip:{self.callee}@{self.domain}")
        invite = Request("INVITE", uri, headers).with_body(sdp, "application/sdp")
        final = await self._transact(invite)
        if not final.success:
            await self._send(make_non2xx_ack(invite, final))
            raise SipCallFailed(f"INVITE {self.call_id}: {final.status}")
        self.dialog = Dialog.from_uac(invite, final)
        await self._send(self.dialog.create_ack(invite.cseq.seq, self._via()))
        return final

    async def bye(self) -> int:
        """Send BYE in the dialog; the status of its final response.

        Raises:
            SipCallFailed: no dialog, or no final response after every retransmission.
        """
        if self.dialog is None:
            raise SipCallFailed(f"BYE {self.call_id}: the call has no dialog")
        final = await self._transact(self.dialog.create_request("BYE", self._via()))
        return final.status

    async def _send(self, request: Request) -> None:
        await self._sock.sendto(bytes(request), self.target)

    async def _transact(self, request: Request) -> Response:
        """Send ``request`` until its final response arrives (Timer A); that response."""
        wait_s = _T1_S
        for attempt in range(_ATTEMPTS):
            if attempt:
                self.retransmissions += 1
            await self._send(request)
            with trio.move_on_after(wait_s):
                while True:
                    response = await self._receive()
                    if (
                        response is not None
                        and response.final
                        and response.cseq == request.cseq
                        and response.call_id == request.call_id
                    ):
                        return response
            wait_s *= 2
        raise SipCallFailed(
            f"{request.method} {self.call_id}: no final response from {self.target} "
            f"after {_ATTEMPTS} sends"
        )

    async def _receive(self) -> Response | None:
        try:
            data, _source = await self._sock.recvfrom(_MAX_DATAGRAM)
        except ConnectionRefusedError:
            # The ICMP error of an earlier send: nobody listens there (yet). Wait for the
            # retransmission rather than spin on the error.
            await trio.sleep(_T1_S)
            return None
        try:
            message = parse_message(data)
        except SipError:
            return None
        return message if isinstance(message, Response) else None
