"""The supervisor: listeners, dispatch to workers, registration cache, worker lifecycle.

The supervisor owns every listening socket and stream connection and hands each SIP
message to one worker (DESIGN.md section 1). Its sans-IO pieces are importable on their
own: ``rtcgw.supervisor.ipc`` (the supervisor <-> worker protocol, also used by workers)
and ``rtcgw.supervisor.dispatch`` (which worker gets a message).
"""

from __future__ import annotations

from rtcgw.supervisor.dispatch import (
    Dispatcher,
    Route,
    RouteReason,
    find_call_id,
    find_top_via_branch,
)
from rtcgw.supervisor.ipc import (
    DEFAULT_MAX_FRAME_BYTES,
    MESSAGE_TYPES,
    PROTOCOL_VERSION,
    BindingChanged,
    BindingReport,
    Configure,
    ConnectionClosed,
    Direction,
    Drain,
    IpcDecoder,
    IpcEncodeError,
    IpcError,
    IpcMessage,
    IpcProtocolError,
    Ping,
    Pong,
    Ready,
    SipIn,
    SipOut,
    Stop,
    Stopped,
    ToSupervisor,
    ToWorker,
    encode,
)

__all__ = [
    "DEFAULT_MAX_FRAME_BYTES",
    "MESSAGE_TYPES",
    "PROTOCOL_VERSION",
    "BindingChanged",
    "BindingReport",
    "Configure",
    "ConnectionClosed",
    "Direction",
    "Dispatcher",
    "Drain",
    "IpcDecoder",
    "IpcEncodeError",
    "IpcError",
    "IpcMessage",
    "IpcProtocolError",
    "Ping",
    "Pong",
    "Ready",
    "Route",
    "RouteReason",
    "SipIn",
    "SipOut",
    "Stop",
    "Stopped",
    "ToSupervisor",
    "ToWorker",
    "encode",
    "find_call_id",
    "find_top_via_branch",
]
