"""SIP dialogs (RFC 3261 section 12): state, identity, and in-dialog requests.

A ``Dialog`` is the peer-to-peer relationship one leg of a call keeps: its ID (Call-ID,
local tag, remote tag), the local and remote CSeq numbers, the local and remote party
(From/To with tags), the remote target (the peer's Contact), the route set and the
``secure`` flag. It builds requests inside the dialog (12.2.1.1) and checks and applies
the requests and responses the transaction user routes to it (12.2.1.2, 12.2.2).

Rules:

1. The state changes only through ``DIALOG_TRANSITIONS[state][trigger]``: Early --2xx-->
   Confirmed; Early --300-699 to the initial request--> Terminated (12.3); any --BYE, 481
   or 408, ``terminate()``--> Terminated. Terminated absorbs everything.
2. Local misuse (a request on a terminated dialog, a message of another dialog) raises
   ``LocalProtocolError``; a peer's fault raises ``RemoteProtocolError`` with the status
   to answer (500 for a CSeq out of order, 481 on a terminated dialog, 400 for a
   dialog-creating request without Contact).
3. No I/O, no clock, no transport knowledge: the dialog does not know our address, so the
   caller passes the ``Via`` of every request it builds (``Via.new(transport, host, port,
   ids.new_branch(shard))``). A new branch per request is the caller's job for the same
   reason the address is: it knows the shard and the transport chosen for the target.

Why a mutable object: a dialog is a long-lived state machine owned by one leg in one worker
(like h11's ``Connection``); building a request *is* a state change (the local CSeq
advances), and a frozen dialog would make every call return a ``(dialog, request)`` pair
that callers could easily drop half of. The messages it takes and returns stay immutable.

Not handled here: the INVITE session (offer/answer, 2xx retransmission and ACK timers,
RFC 3261 13.3.1.4), which belongs to the B2BUA leg; and forking, where one request creates
several early dialogs: the transaction user keeps one ``Dialog`` per remote tag.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import final

from rtcgw.sip.errors import LocalProtocolError, RemoteProtocolError
from rtcgw.sip.headers import NameAddr, Via
from rtcgw.sip.message import Header, Request, Response
from rtcgw.sip.transaction import Role
from rtcgw.sip.uri import SipUri, Uri

__all__ = [
    "DIALOG_TRANSITIONS",
    "TARGET_REFRESH_METHODS",
    "Dialog",
    "DialogId",
    "DialogState",
    "DialogTrigger",
    "Role",
]

#: Requests whose Contact replaces the remote target: re-INVITE (RFC 3261 12.2), UPDATE
#: (RFC 3311 section 5.1), SUBSCRIBE and NOTIFY (RFC 6665 section 4.1.2, 4.2.1).
TARGET_REFRESH_METHODS = frozenset({"INVITE", "UPDATE", "SUBSCRIBE", "NOTIFY"})

#: RFC 3261 8.1.1.6: Max-Forwards "SHOULD" be 70.
_MAX_FORWARDS = "70"

#: RFC 3261 8.1.1.5: the local sequence number chosen when the dialog has none yet (a UAS
#: dialog before its first request). Any value below 2**31 is allowed; 1 keeps traces
#: readable.
_INITIAL_LOCAL_SEQ = 1


class DialogState(enum.Enum):
    """RFC 3261 section 12: "early" after a provisional, "confirmed" after a 2xx."""

    EARLY = "early"  #: created by a 101-199 response with a To tag
    CONFIRMED = "confirmed"  #: a 2xx was sent or received
    TERMINATED = "terminated"  #: BYE, a non-2xx final on an early dialog, 481/408, or local


class DialogTrigger(enum.Enum):
    """What moves a dialog between states."""

    PROVISIONAL = "1xx to the initial request"
    SUCCESS = "2xx to the initial request"
    FAILURE = "300-699 to the initial request"  #: RFC 3261 12.3
    GONE = "481 or 408 to an in-dialog request"  #: RFC 3261 12.2.1.2
    BYE = "BYE received, or a final response to our BYE"  #: RFC 3261 15
    TERMINATE = "terminated by the transaction user"


_D = DialogState
_G = DialogTrigger

#: ``DIALOG_TRANSITIONS[state][trigger] -> new state`` (Rule 1). Rows that absorb a trigger
#: map to the same state.
DIALOG_TRANSITIONS: Mapping[DialogState, Mapping[DialogTrigger, DialogState]] = {
    _D.EARLY: {
        _G.PROVISIONAL: _D.EARLY,
        _G.SUCCESS: _D.CONFIRMED,
        _G.FAILURE: _D.TERMINATED,
        _G.GONE: _D.TERMINATED,
        _G.BYE: _D.TERMINATED,
        _G.TERMINATE: _D.TERMINATED,
    },
    _D.CONFIRMED: {
        _G.PROVISIONAL: _D.CONFIRMED,  # a late 1xx after the 2xx: absorbed
        _G.SUCCESS: _D.CONFIRMED,  # a 2xx retransmission
        _G.FAILURE: _D.CONFIRMED,  # cannot follow a 2xx on the same dialog: absorbed
        _G.GONE: _D.TERMINATED,
        _G.BYE: _D.TERMINATED,
        _G.TERMINATE: _D.TERMINATED,
    },
    _D.TERMINATED: dict.fromkeys(DialogTrigger, _D.TERMINATED),
}


@dataclass(frozen=True, slots=True)
class DialogId:
    """RFC 3261 12: "A dialog is identified ... by a Call-ID, a local tag and a remote tag".

    A tag is ``""`` when an RFC 2543 peer sent none (12.1.2: "considered to have a value
    of null").
    """

    call_id: str
    local_tag: str
    remote_tag: str

    @classmethod
    def of_received_request(cls, request: Request) -> DialogId:
        """The ID of the dialog a received request belongs to: local = To tag."""
        return cls(request.call_id, request.to_tag or "", request.from_tag or "")

    @classmethod
    def of_received_response(cls, response: Response) -> DialogId:
        """The ID of the dialog a response to our request belongs to: local = From tag."""
        return cls(response.call_id, response.from_tag or "", response.to_tag or "")

    def __str__(self) -> str:
        return f"{self.call_id};local={self.local_tag};remote={self.remote_tag}"


def _first_contact(message: Request | Response) -> Uri | None:
    contacts = message.contacts
    return contacts[0].uri if contacts else None


def _secure(request: Request, over_tls: bool) -> bool:
    # 12.1.1 / 12.1.2: TLS and a SIPS Request-URI.
    return over_tls and isinstance(request.uri, SipUri) and request.uri.scheme == "sips"


def _request_uri_form(uri: Uri) -> Uri:
    """A route URI made fit for the Request-URI (12.2.1.1 strict routing: "stripping any
    parameters that are not allowed in a Request-URI"; RFC 3261 19.1.1 table: ``method``
    and URI headers are not)."""
    if isinstance(uri, SipUri):
        return replace(uri.without_param("method"), headers=())
    return uri


@final
class Dialog:
    """One dialog, UAC or UAS side (RFC 3261 section 12). Build it with ``from_uac`` or
    ``from_uas``.

    Attributes (read them, never assign them):
        role: UAC if we sent the dialog-creating request, UAS if we received it.
        state: early, confirmed or terminated.
        id: Call-ID, local tag, remote tag.
        local_seq: our last CSeq number in the dialog, None until we send one (UAS).
        remote_seq: the peer's last CSeq number, None until it sends one (UAC).
        local_party: our From (as UAC) or To (as UAS) header, with our tag.
        remote_party: the peer's header, with its tag (absent for an RFC 2543 peer).
        remote_target: where requests go: the URI of the peer's last Contact.
        local_target: our Contact URI, added to target refresh requests we send.
        route_set: the Route entries for requests we send, in order.
        secure: the dialog was created over TLS with a SIPS Request-URI.
    """

    __slots__ = (
        "_initial_method",
        "_initial_seq",
        "id",
        "local_party",
        "local_seq",
        "local_target",
        "remote_party",
        "remote_seq",
        "remote_target",
        "role",
        "route_set",
        "secure",
        "state",
    )

    def __init__(
        self,
        *,
        role: Role,
        state: DialogState,
        dialog_id: DialogId,
        local_seq: int | None,
        remote_seq: int | None,
        local_party: NameAddr,
        remote_party: NameAddr,
        remote_target: Uri,
        local_target: Uri | None,
        route_set: tuple[NameAddr, ...],
        secure: bool,
        initial: Request,
    ) -> None:
        self.role = role
        self.state = state
        self.id = dialog_id
        self.local_seq = local_seq
        self.remote_seq = remote_seq
        self.local_party = local_party
        self.remote_party = remote_party
        self.remote_target = remote_target
        self.local_target = local_target
        self.route_set = route_set
        self.secure = secure
        self._initial_method = initial.method
        self._initial_seq = initial.cseq.seq

    def __repr__(self) -> str:
        return f"<Dialog {self.role.value} {self.state.value} {self.id}>"

    # -- creation -------------------------------------------------------------------------

    @classmethod
    def from_uac(cls, request: Request, response: Response, *, over_tls: bool = False) -> Dialog:
        """The dialog a 101-299 response to our ``request`` creates (RFC 3261 12.1.2).

        Route set: the response's Record-Route "in reverse order"; remote target: its
        Contact (the Request-URI when a lenient peer left it out); local CSeq: the
        request's; remote CSeq: empty. Early for 1xx, confirmed for 2xx.

        Raises:
            LocalProtocolError: the response cannot create a dialog (100, a final failure,
                a 1xx without To tag, another transaction's response) or our request has
                no From tag.
        """
        status = response.status
        if not 101 <= status <= 299:
            raise LocalProtocolError(f"a {status} response does not create a dialog")
        if response.cseq != request.cseq or response.call_id != request.call_id:
            raise LocalProtocolError(
                f"response CSeq {response.cseq} / Call-ID {response.call_id} does not answer "
                f"request CSeq {request.cseq} / Call-ID {request.call_id}"
            )
        local_tag = request.from_tag
        if local_tag is None:
            raise LocalProtocolError("our dialog-creating request has no From tag")
        remote_tag = response.to_tag
        if remote_tag is None and status < 200:
            raise LocalProtocolError(f"a {status} without To tag does not create a dialog")
        remote_target = _first_contact(response)
        return cls(
            role=Role.UAC,
            state=DialogState.EARLY if status < 200 else DialogState.CONFIRMED,
            dialog_id=DialogId(request.call_id, local_tag, remote_tag or ""),
            local_seq=request.cseq.seq,
            remote_seq=None,
            local_party=request.from_,
            remote_party=response.to,
            remote_target=remote_target if remote_target is not None else request.uri,
            local_target=_first_contact(request),
            route_set=tuple(reversed(response.record_routes)),
            secure=_secure(request, over_tls),
            initial=request,
        )

    @classmethod
    def from_uas(
        cls, request: Request, local_tag: str, local_contact: Uri, *, over_tls: bool = False
    ) -> Dialog:
        """The dialog we create by answering ``request`` with a tagged 101-299 (12.1.1).

        Route set: the request's Record-Route in order; remote target: its Contact; remote
        CSeq: the request's; local CSeq: empty. The dialog starts early; report the
        responses you send with ``response_sent`` (a 2xx confirms it).

        Args:
            request: the dialog-creating request (INVITE, SUBSCRIBE, ...).
            local_tag: the To tag of our responses (``ids.new_tag``).
            local_contact: the Contact URI of our responses, for later target refreshes.
            over_tls: whether the request arrived over TLS.

        Raises:
            RemoteProtocolError: the request has no Contact (status_hint 400, RFC 3261
                8.1.1.8: "The Contact header field MUST be present ... in any request that
                can result in the establishment of a dialog").
            LocalProtocolError: the request is already in a dialog (has a To tag), or the
                local tag is empty.
        """
        if request.to_tag is not None:
            raise LocalProtocolError("a request with a To tag belongs to an existing dialog")
        if not local_tag:
            raise LocalProtocolError("the local tag must not be empty")
        remote_target = _first_contact(request)
        if remote_target is None:
            raise RemoteProtocolError(
                f"{request.method} that can create a dialog has no Contact", status_hint=400
            )
        return cls(
            role=Role.UAS,
            state=DialogState.EARLY,
            dialog_id=DialogId(request.call_id, local_tag, request.from_tag or ""),
            local_seq=None,
            remote_seq=request.cseq.seq,
            local_party=request.to.with_tag(local_tag),
            remote_party=request.from_,
            remote_target=remote_target,
            local_target=local_contact,
            route_set=tuple(request.record_routes),
            secure=_secure(request, over_tls),
            initial=request,
        )

    # -- requests we send ---------------------------------------------------------------------

    def create_request(
        self,
        method: str,
        via: Via,
        *,
        headers: tuple[Header, ...] = (),
        body: bytes = b"",
        content_type: str | None = None,
    ) -> Request:
        """A new request inside the dialog (RFC 3261 12.2.1.1); advances the local CSeq.

        To, From, Call-ID come from the dialog; the CSeq number is the local one plus one
        (the first one is 1 when empty). With an empty route set or a loose first route
        (``;lr``) the Request-URI is the remote target and the Route headers are the route
        set; with a strict first route the Request-URI is that route and the remote target
        becomes the last Route. Target refresh requests get our Contact unless
        ``headers`` has one.

        Args:
            method: the method; ACK and CANCEL are refused (``create_ack``,
                ``transaction_client.make_cancel``).
            via: our Via with a fresh branch (Rule 3).
            headers: extra headers, appended in order (Supported, Authorization, ...).
            body: the body; Content-Length always matches it.
            content_type: its media type.

        Raises:
            LocalProtocolError: ACK or CANCEL, or the dialog is terminated.
        """
        if method in ("ACK", "CANCEL"):
            helper = "create_ack()" if method == "ACK" else "transaction_client.make_cancel()"
            raise LocalProtocolError(
                f"{method} reuses the CSeq of the request it belongs to: use {helper}"
            )
        self._require_live(method)
        seq = _INITIAL_LOCAL_SEQ if self.local_seq is None else self.local_seq + 1
        request = self._build(method, seq, via, extra=headers, body=body, content_type=content_type)
        self.local_seq = seq
        return request

    def create_ack(
        self,
        invite_cseq: int,
        via: Via,
        *,
        headers: tuple[Header, ...] = (),
        body: bytes = b"",
        content_type: str | None = None,
    ) -> Request:
        """The ACK for a 2xx to our INVITE with CSeq number ``invite_cseq`` (13.2.2.4).

        "The header fields of the ACK are constructed in the same way as for any request
        sent within a dialog ... with the exception of the CSeq and the header fields
        related to authentication": the CSeq number is the INVITE's, the method ACK. The
        local CSeq does not change. Pass credentials the INVITE carried in ``headers``.

        Raises:
            LocalProtocolError: the dialog is not confirmed, or we never sent an INVITE
                with that CSeq number.
        """
        if self.state is not DialogState.CONFIRMED:
            raise LocalProtocolError(
                f"ACK needs a confirmed dialog; {self.id} is {self.state.value}"
            )
        if self.local_seq is None or not 0 <= invite_cseq <= self.local_seq:
            raise LocalProtocolError(
                f"ACK for CSeq {invite_cseq}, but the last local CSeq is {self.local_seq}"
            )
        return self._build(
            "ACK", invite_cseq, via, extra=headers, body=body, content_type=content_type
        )

    def _build(
        self,
        method: str,
        seq: int,
        via: Via,
        *,
        extra: tuple[Header, ...],
        body: bytes,
        content_type: str | None,
    ) -> Request:
        uri, routes = self._route()
        lines = [
            Header("Via", str(via)),
            Header("Max-Forwards", _MAX_FORWARDS),
            Header("From", str(self.local_party)),
            Header("To", str(self.remote_party)),
            Header("Call-ID", self.id.call_id),
            Header("CSeq", f"{seq} {method}"),
        ]
        lines.extend(Header("Route", route) for route in routes)
        has_contact = any(h.key == "contact" for h in extra)
        if method in TARGET_REFRESH_METHODS and self.local_target is not None and not has_contact:
            lines.append(Header("Contact", f"<{self.local_target}>"))
        lines.extend(extra)
        request = Request(method=method, uri=uri, headers=tuple(lines))
        return request.with_body(body, content_type)

    def _route(self) -> tuple[Uri, list[str]]:
        """Request-URI and Route values (RFC 3261 12.2.1.1)."""
        if not self.route_set:
            return self.remote_target, []
        first = self.route_set[0].uri
        if isinstance(first, SipUri) and first.lr:
            return self.remote_target, [str(route) for route in self.route_set]
        # Strict routing: "the UAC MUST place the first URI from the route set into the
        # Request-URI ... the UAC MUST add a route header field containing the remainder
        # of the route set values in order ... [and] the remote target URI".
        routes = [str(route) for route in self.route_set[1:]]
        routes.append(str(NameAddr(None, self.remote_target)))
        return _request_uri_form(first), routes

    def _require_live(self, what: str) -> None:
        if self.state is DialogState.TERMINATED:
            raise LocalProtocolError(f"cannot send {what} in terminated dialog {self.id}")

    # -- messages from the peer -----------------------------------------------------------

    def receive_request(self, request: Request) -> None:
        """Apply a request the peer sent inside this dialog (RFC 3261 12.2.2).

        Checks the remote CSeq ("If the remote sequence number was not empty, but the
        sequence number of the request is lower than the remote sequence number, the
        request is out of order and MUST be rejected with a 500"), records it, and for a
        target refresh request takes the new remote target from its Contact. A BYE
        terminates the dialog (15.1.2). ACK and CANCEL reuse their INVITE's CSeq and
        change nothing.

        Raises:
            RemoteProtocolError: status_hint 500 for a CSeq out of order, 481 when the
                dialog is terminated. The dialog is unchanged.
            LocalProtocolError: the request does not carry this dialog's ID.
        """
        dialog_id = DialogId.of_received_request(request)
        if dialog_id != self.id:
            raise LocalProtocolError(f"request of dialog {dialog_id} routed to {self.id}")
        if self.state is DialogState.TERMINATED:
            raise RemoteProtocolError(f"dialog {self.id} is terminated", status_hint=481)
        if request.method in ("ACK", "CANCEL"):
            return
        seq = request.cseq.seq
        if self.remote_seq is not None and seq < self.remote_seq:
            raise RemoteProtocolError(
                f"CSeq {seq} is lower than the remote CSeq {self.remote_seq} of {self.id}",
                status_hint=500,
            )
        self.remote_seq = seq
        if request.method in TARGET_REFRESH_METHODS:
            self._refresh_target(request)
        if request.method == "BYE":
            self._fire(DialogTrigger.BYE)

    def receive_response(self, response: Response) -> None:
        """Apply a response to a request we sent inside (or to create) this dialog.

        - To the initial request (UAC): 1xx keeps it early, 2xx confirms it and
          recomputes the route set from the 2xx's Record-Route (13.2.2.4), 300-699 ends an
          early dialog (12.3). 1xx/2xx with a Contact refresh the remote target.
        - 481 or 408 to any request ends the dialog (12.2.1.2).
        - A 2xx to a target refresh request takes the remote target from its Contact
          (12.2.1.2); a final response to our BYE ends the dialog.

        Raises:
            LocalProtocolError: the response does not carry this dialog's ID.
        """
        dialog_id = DialogId.of_received_response(response)
        if dialog_id != self.id:
            raise LocalProtocolError(f"response of dialog {dialog_id} routed to {self.id}")
        status = response.status
        cseq = response.cseq
        if status == 100 or self.state is DialogState.TERMINATED:
            return
        if status in (408, 481):
            self._fire(DialogTrigger.GONE)
        elif self._is_initial(cseq.seq, cseq.method) and self.role is Role.UAC:
            if status >= 300:
                self._fire(DialogTrigger.FAILURE)
                return
            was_early = self.state is DialogState.EARLY
            self._fire(DialogTrigger.SUCCESS if status >= 200 else DialogTrigger.PROVISIONAL)
            if was_early and self.state is DialogState.CONFIRMED:
                self.route_set = tuple(reversed(response.record_routes))
            self._refresh_target(response)
        elif cseq.method == "BYE" and status >= 200:
            self._fire(DialogTrigger.BYE)
        elif 200 <= status < 300 and cseq.method in TARGET_REFRESH_METHODS:
            self._refresh_target(response)

    def response_sent(self, response: Response) -> None:
        """Apply a response we sent to the peer's initial request (UAS, RFC 3261 12.1.1):
        a 2xx confirms the dialog, 300-699 ends it while early (12.3).

        Responses to other requests change nothing (their effects were applied by
        ``receive_request``).

        Raises:
            LocalProtocolError: called on a UAC dialog.
        """
        if self.role is not Role.UAS:
            raise LocalProtocolError("response_sent is for dialogs we answered (UAS)")
        cseq = response.cseq
        if not self._is_initial(cseq.seq, cseq.method) or response.status == 100:
            return
        if response.status < 200:
            self._fire(DialogTrigger.PROVISIONAL)
        elif response.status < 300:
            self._fire(DialogTrigger.SUCCESS)
        else:
            self._fire(DialogTrigger.FAILURE)

    def terminate(self) -> None:
        """End the dialog locally (we sent BYE, gave up, or the call ended)."""
        self._fire(DialogTrigger.TERMINATE)

    # -- internals ------------------------------------------------------------------------

    def _is_initial(self, seq: int, method: str) -> bool:
        return seq == self._initial_seq and method == self._initial_method

    def _refresh_target(self, message: Request | Response) -> None:
        target = _first_contact(message)
        if target is not None:
            self.remote_target = target

    def _fire(self, trigger: DialogTrigger) -> None:
        self.state = DIALOG_TRANSITIONS[self.state][trigger]
