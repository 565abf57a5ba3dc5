"""Sans-IO SIP: messages, URIs, typed headers, stream framing, transactions, dialogs.

Bytes and the current time go in; messages, events and deadlines come out. Nothing in this
package opens a socket, reads a clock, logs or imports trio (see ``rtcgw/__init__.py``).

The public names are listed below; modules are imported from here, e.g.
``from rtcgw.sip import parse_message, SipParseError``.
"""

from rtcgw.sip.dialog import Dialog, DialogId, DialogState
from rtcgw.sip.errors import LocalProtocolError, RemoteProtocolError, SipError, SipParseError
from rtcgw.sip.events import (
    AckReceived,
    CancelReceived,
    ClientTransactionKey,
    Event,
    Outgoing,
    Output,
    RequestReceived,
    ResponseReceived,
    ServerTransactionKey,
    StrayResponseReceived,
    TransactionKey,
    TransactionTerminated,
    TransactionTimedOut,
    TransportFailed,
)
from rtcgw.sip.framing import PONG, KeepAlivePing, StreamFramer
from rtcgw.sip.headers import (
    MAGIC_COOKIE,
    CSeq,
    NameAddr,
    Via,
    is_list_header,
    split_header_values,
)
from rtcgw.sip.ids import new_branch, new_call_id, new_tag, shard_of
from rtcgw.sip.message import Header, Message, Request, Response, make_response
from rtcgw.sip.parse import parse_message
from rtcgw.sip.status import StatusCode, reason_phrase
from rtcgw.sip.timers import TimerConfig, TimerName
from rtcgw.sip.transaction import Role, TransactionState
from rtcgw.sip.transaction_layer import TransactionLayer
from rtcgw.sip.transport import Peer, Transport
from rtcgw.sip.uri import AbsoluteUri, SipUri, TelUri, Uri, parse_uri

__all__ = [
    "MAGIC_COOKIE",
    "PONG",
    "AbsoluteUri",
    "AckReceived",
    "CSeq",
    "CancelReceived",
    "ClientTransactionKey",
    "Dialog",
    "DialogId",
    "DialogState",
    "Event",
    "Header",
    "KeepAlivePing",
    "LocalProtocolError",
    "Message",
    "NameAddr",
    "Outgoing",
    "Output",
    "Peer",
    "RemoteProtocolError",
    "Request",
    "RequestReceived",
    "Response",
    "ResponseReceived",
    "Role",
    "ServerTransactionKey",
    "SipError",
    "SipParseError",
    "SipUri",
    "StatusCode",
    "StrayResponseReceived",
    "StreamFramer",
    "TelUri",
    "TimerConfig",
    "TimerName",
    "TransactionKey",
    "TransactionLayer",
    "TransactionState",
    "TransactionTerminated",
    "TransactionTimedOut",
    "Transport",
    "TransportFailed",
    "Uri",
    "Via",
    "is_list_header",
    "make_response",
    "new_branch",
    "new_call_id",
    "new_tag",
    "parse_message",
    "parse_uri",
    "reason_phrase",
    "shard_of",
    "split_header_values",
]
