"""The supervisor <-> worker protocol: typed messages in length-prefixed frames.

Each worker is connected to the supervisor by one socketpair (DESIGN.md section 1). Both
directions carry the same frames; which message kinds may travel which way is fixed by
each kind's ``DIRECTION``.

Frame layout (every integer is unsigned 32-bit big-endian)::

    +----------+----------+------------------------+--------------------------+
    | length N | length H | header: H bytes, JSON  | blob: N - 4 - H bytes    |
    +----------+----------+------------------------+--------------------------+
    |<- 4 ->|<-------------------------- N bytes ---------------------------->|

The header is a UTF-8 JSON object ``{"kind": ..., "v": 1, <fields>}``; the blob is the
message's one ``bytes`` field (raw SIP bytes, a pickled configuration snapshot) or empty.
Keeping bytes out of the JSON avoids base64 and a copy of every SIP message. A frame is at
most ``max_frame_bytes`` long, counting all of it (the first length word included).

Rules:

1. A message kind is a frozen dataclass with a ``KIND`` (its wire name) and a
   ``DIRECTION``, registered in ``MESSAGE_TYPES``. Its fields are ``str``, ``int``,
   ``float``, ``bool``, ``bytes`` or one of those ``| None``; at most one field is
   ``bytes`` (it becomes the blob). Field names ``kind`` and ``v`` are reserved.
2. Both ends check every field at the wire: the type exactly (``True`` is not an int,
   ``1.0`` is not an int, an int is accepted for a float), every number non-negative
   (they are all counts, indexes, ids, ports and durations; NaN is rejected too), ports
   within 0..65535 and every ``transport`` a ``rtcgw.sip.transport.Transport`` value.
   Constructing a message checks nothing (mypy does); ``encode`` checks on the way out.
3. The header must hold exactly the kind's fields: a missing or unknown field, an unknown
   kind or another protocol version ``v`` is an error. Both ends come from one
   installation, so a mismatch is a bug or a half-finished upgrade, never something to
   paper over.

The codec is sans-IO, in h11's calling convention: ``encode(message) -> bytes`` on the
sending side; on the receiving side ``IpcDecoder.feed(data)`` whatever the socket gave,
then ``next_message()`` until it returns None (or iterate ``messages()``). No sockets, no
clock, no logging here.

Error handling: ``IpcEncodeError`` means our caller built a message the protocol cannot
carry (a bug, or a payload above the frame limit). ``IpcProtocolError`` means the bytes
received are not a valid frame; the stream cannot be resynchronised, so the decoder raises
the same error on every later call and the runtime should close the socketpair (and, on
the supervisor side, restart the worker). Any other exception is a bug.

Security: the peer is our own process across a socketpair, never the network. The
``Configure`` blob is a pickle; it is unpickled by the worker only, and only from the
supervisor that spawned it.
"""

from __future__ import annotations

import enum
import json
import struct
import types
from collections.abc import Iterator
from dataclasses import dataclass, fields
from typing import Any, ClassVar, Final, Self, TypeAlias, get_args, get_type_hints

from rtcgw.registrations import Binding
from rtcgw.sip.transport import Peer, Transport

__all__ = [
    "DEFAULT_MAX_FRAME_BYTES",
    "MESSAGE_TYPES",
    "PROTOCOL_VERSION",
    "BindingChanged",
    "BindingReport",
    "Configure",
    "ConnectionClosed",
    "Direction",
    "Drain",
    "IpcDecoder",
    "IpcEncodeError",
    "IpcError",
    "IpcMessage",
    "IpcProtocolError",
    "Ping",
    "Pong",
    "Query",
    "QueryReply",
    "Ready",
    "SipIn",
    "SipOut",
    "Stop",
    "Stopped",
    "ToSupervisor",
    "ToWorker",
    "Undrain",
    "encode",
]

#: The protocol version every header carries as ``"v"``; bump it on any incompatible change.
PROTOCOL_VERSION: Final = 1

#: The default limit on one frame, all of it: 1 MiB. A SIP message is at most 64 KiB
#: (``rtcgw.sip.framing.DEFAULT_MAX_MESSAGE_BYTES``); a configuration snapshot is the
#: largest thing that crosses.
DEFAULT_MAX_FRAME_BYTES: Final = 1 << 20

_WORD = struct.Struct(">I")
_PREFIX = struct.Struct(">II")
_PREFIX_BYTES: Final = _PREFIX.size  # frame length + header length
_RESERVED: Final = frozenset({"kind", "v"})
_TRANSPORTS: Final = frozenset(t.value for t in Transport)
_MAX_PORT: Final = 65535
#: Compact the receive buffer once this many consumed bytes sit in front of unread ones.
_COMPACT_BYTES: Final = 64 * 1024


# -- errors ------------------------------------------------------------------------------


class IpcError(Exception):
    """Root of every error of the supervisor <-> worker protocol."""


class IpcProtocolError(IpcError):
    """The bytes received are not a valid frame; close the channel (see module docstring)."""


class IpcEncodeError(IpcError):
    """A message cannot be encoded: a field breaks rule 2, or the frame is too large."""


def _short(value: object) -> str:
    """``repr(value)``, cut so that a hostile or huge value cannot flood a log line."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


# -- message kinds -----------------------------------------------------------------------


class Direction(enum.Enum):
    """Which way a message kind travels."""

    TO_WORKER = "to_worker"  #: sent by the supervisor to one or all workers
    TO_SUPERVISOR = "to_supervisor"  #: sent by a worker to the supervisor


@dataclass(frozen=True, slots=True)
class Configure:
    """Supervisor -> worker: who you are, and the configuration to run with.

    Sent first after spawning, and again on every reload; a worker swaps the new snapshot
    in at a safe point (calls in progress keep their rules).
    """

    KIND: ClassVar[str] = "configure"
    DIRECTION: ClassVar[Direction] = Direction.TO_WORKER

    worker_index: int  #: this worker's shard number, 0..worker_count-1
    worker_count: int  #: how many workers share the Call-ID space
    config: bytes  #: the pickled configuration snapshot (pickling is the caller's job)


@dataclass(frozen=True, slots=True)
class SipIn:
    """Supervisor -> worker: a SIP message received on a listener or connection."""

    KIND: ClassVar[str] = "sip_in"
    DIRECTION: ClassVar[Direction] = Direction.TO_WORKER

    transport: str  #: a ``Transport`` value: "UDP", "TCP", "TLS", "WS" or "WSS"
    host: str  #: the source address
    port: int  #: the source port
    connection_id: int | None  #: the stream connection it came on; None for UDP
    interface: str  #: the name of the configured interface that received it
    data: bytes  #: the whole message, exactly as received

    @property
    def peer(self) -> Peer:
        """The sender, as the SIP core names it."""
        return Peer(Transport(self.transport), self.host, self.port, self.connection_id)

    @classmethod
    def from_peer(cls, peer: Peer, interface: str, data: bytes) -> SipIn:
        """The message ``data`` received from ``peer`` on ``interface``."""
        return cls(peer.transport.value, peer.host, peer.port, peer.connection_id, interface, data)


@dataclass(frozen=True, slots=True)
class ConnectionClosed:
    """Supervisor -> workers: a stream connection (TCP, TLS, WebSocket) is gone."""

    KIND: ClassVar[str] = "connection_closed"
    DIRECTION: ClassVar[Direction] = Direction.TO_WORKER

    connection_id: int
    reason: str  #: for logs: "peer closed", "idle timeout", "TLS error: ..."


@dataclass(frozen=True, slots=True)
class _BindingFields:
    """A registration on the wire: ``rtcgw.registrations.Binding`` field for field, with
    the expiries as seconds left (the two processes' clocks are not comparable), and
    whether the change adds/refreshes (``removed`` False) or removes it, and why."""

    aor: str
    user: str
    contact: str
    instance: str | None
    reg_id: int | None
    call_id: str
    connection_id: int
    transport: str  #: a ``Transport`` value: the client's connection
    host: str
    port: int
    alias: str
    client_expires_s: float  #: seconds left on the client's binding
    upstream_expires_s: float  #: seconds left on the registrar's binding of the alias
    upstream_call_id: str
    upstream_from_tag: str
    upstream_cseq: int
    registrar_transport: str
    registrar_host: str
    registrar_port: int
    registrar_uri: str
    removed: bool
    reason: str  #: "registered", "refreshed", "unregistered", "connection closed", ...

    @classmethod
    def of(cls, binding: Binding, now: float, *, removed: bool, reason: str) -> Self:
        """``binding`` (times on the sender's clock, which reads ``now``) for the wire."""
        client_left, upstream_left = binding.remaining(now)
        return cls(
            binding.aor,
            binding.user,
            binding.contact,
            binding.instance,
            binding.reg_id,
            binding.call_id,
            binding.connection_id,
            binding.transport.value,
            binding.host,
            binding.port,
            binding.alias,
            client_left,
            upstream_left,
            binding.upstream_call_id,
            binding.upstream_from_tag,
            binding.upstream_cseq,
            binding.registrar_transport.value,
            binding.registrar_host,
            binding.registrar_port,
            binding.registrar_uri,
            removed,
            reason,
        )

    def binding(self, now: float) -> Binding:
        """The binding, its times on the receiver's clock, which reads ``now``.

        Raises:
            ValueError: a transport field names no transport.
        """
        return Binding(
            aor=self.aor,
            user=self.user,
            contact=self.contact,
            instance=self.instance,
            reg_id=self.reg_id,
            call_id=self.call_id,
            connection_id=self.connection_id,
            transport=Transport(self.transport),
            host=self.host,
            port=self.port,
            alias=self.alias,
            client_expires_at=now + self.client_expires_s,
            upstream_expires_at=now + self.upstream_expires_s,
            upstream_call_id=self.upstream_call_id,
            upstream_from_tag=self.upstream_from_tag,
            upstream_cseq=self.upstream_cseq,
            registrar_transport=Transport(self.registrar_transport),
            registrar_host=self.registrar_host,
            registrar_port=self.registrar_port,
            registrar_uri=self.registrar_uri,
        )


@dataclass(frozen=True, slots=True)
class BindingChanged(_BindingFields):
    """Supervisor -> all workers: the registration cache changed (DESIGN.md section 1).

    Workers apply it to their mirror; on a removal for "connection closed" or "expired",
    the worker that registered the alias unregisters it upstream.
    """

    KIND: ClassVar[str] = "binding_changed"
    DIRECTION: ClassVar[Direction] = Direction.TO_WORKER


@dataclass(frozen=True, slots=True)
class Drain:
    """Supervisor -> worker: accept no new calls; end within ``deadline_s``.

    ``deadline_s`` is a duration counted from receipt, not a point in time: the two
    processes' clocks (trio's included) are not comparable.
    """

    KIND: ClassVar[str] = "drain"
    DIRECTION: ClassVar[Direction] = Direction.TO_WORKER

    deadline_s: float


@dataclass(frozen=True, slots=True)
class Undrain:
    """Supervisor -> worker: take new calls again (the end of a ``Drain``)."""

    KIND: ClassVar[str] = "undrain"
    DIRECTION: ClassVar[Direction] = Direction.TO_WORKER


@dataclass(frozen=True, slots=True)
class Query:
    """Supervisor -> worker: a question from ``rtcgw ctl``; the worker answers
    ``QueryReply`` with the same ``request_id``.

    ``what`` is "calls" (a row per active call, and the count) or "call" (the timeline of
    ``call_id``); a worker answers an unknown ``what`` with an error in the reply.
    """

    KIND: ClassVar[str] = "query"
    DIRECTION: ClassVar[Direction] = Direction.TO_WORKER

    request_id: int
    what: str
    call_id: str | None


@dataclass(frozen=True, slots=True)
class Stop:
    """Supervisor -> worker: stop now (calls are dropped); answer ``Stopped``."""

    KIND: ClassVar[str] = "stop"
    DIRECTION: ClassVar[Direction] = Direction.TO_WORKER


@dataclass(frozen=True, slots=True)
class Ping:
    """Supervisor -> worker: a heartbeat; the worker answers ``Pong`` with the same seq."""

    KIND: ClassVar[str] = "ping"
    DIRECTION: ClassVar[Direction] = Direction.TO_WORKER

    seq: int


@dataclass(frozen=True, slots=True)
class Ready:
    """Worker -> supervisor: configured and able to take traffic."""

    KIND: ClassVar[str] = "ready"
    DIRECTION: ClassVar[Direction] = Direction.TO_SUPERVISOR

    worker_index: int
    pid: int


@dataclass(frozen=True, slots=True)
class SipOut:
    """Worker -> supervisor: send this SIP message.

    On a stream transport it goes on connection ``connection_id``; on UDP it leaves from
    the socket of ``interface``, so the source address stays the listening address.
    """

    KIND: ClassVar[str] = "sip_out"
    DIRECTION: ClassVar[Direction] = Direction.TO_SUPERVISOR

    transport: str  #: a ``Transport`` value
    host: str  #: the destination address
    port: int  #: the destination port
    connection_id: int | None  #: the stream connection to send on; None for UDP
    interface: str  #: the configured interface to send from
    data: bytes  #: the whole message, serialised

    @property
    def peer(self) -> Peer:
        """The destination, as the SIP core names it."""
        return Peer(Transport(self.transport), self.host, self.port, self.connection_id)

    @classmethod
    def to(cls, peer: Peer, interface: str, data: bytes) -> SipOut:
        """Send ``data`` to ``peer`` from ``interface``."""
        return cls(peer.transport.value, peer.host, peer.port, peer.connection_id, interface, data)


@dataclass(frozen=True, slots=True)
class BindingReport(_BindingFields):
    """Worker -> supervisor: a REGISTER added, refreshed or removed a binding.

    The supervisor is the single writer of the cache and answers by pushing
    ``BindingChanged`` to every worker.
    """

    KIND: ClassVar[str] = "binding_report"
    DIRECTION: ClassVar[Direction] = Direction.TO_SUPERVISOR


@dataclass(frozen=True, slots=True)
class Pong:
    """Worker -> supervisor: the answer to ``Ping``, with the worker's load."""

    KIND: ClassVar[str] = "pong"
    DIRECTION: ClassVar[Direction] = Direction.TO_SUPERVISOR

    seq: int
    active_calls: int


@dataclass(frozen=True, slots=True)
class QueryReply:
    """Worker -> supervisor: the answer to ``Query`` ``request_id``, as a UTF-8 JSON object
    in ``body`` (rows of calls and timelines are nested, which header fields cannot be)."""

    KIND: ClassVar[str] = "query_reply"
    DIRECTION: ClassVar[Direction] = Direction.TO_SUPERVISOR

    request_id: int
    worker_index: int
    body: bytes


@dataclass(frozen=True, slots=True)
class Stopped:
    """Worker -> supervisor: the last message before the worker exits."""

    KIND: ClassVar[str] = "stopped"
    DIRECTION: ClassVar[Direction] = Direction.TO_SUPERVISOR

    worker_index: int


#: Every message the supervisor sends to a worker (for ``match`` + ``assert_never``).
ToWorker: TypeAlias = (
    Configure | SipIn | ConnectionClosed | BindingChanged | Drain | Undrain | Query | Stop | Ping
)
#: Every message a worker sends to the supervisor.
ToSupervisor: TypeAlias = Ready | SipOut | BindingReport | Pong | QueryReply | Stopped
#: Any message of the protocol.
IpcMessage: TypeAlias = ToWorker | ToSupervisor

_KINDS: tuple[type[IpcMessage], ...] = (
    Configure,
    SipIn,
    ConnectionClosed,
    BindingChanged,
    Drain,
    Stop,
    Ping,
    Ready,
    SipOut,
    BindingReport,
    Pong,
    Stopped,
    Undrain,
    Query,
    QueryReply,
)

#: Wire name (``KIND``) -> message class, for every kind of the protocol.
MESSAGE_TYPES: Final[dict[str, type[IpcMessage]]] = {cls.KIND: cls for cls in _KINDS}


# -- field schemas (rule 1 and 2), derived once from the annotations ---------------------

_SCALARS: Final = (str, int, float, bool, bytes)


@dataclass(frozen=True, slots=True)
class _Field:
    name: str
    type: type  # one of _SCALARS
    nullable: bool

    def problem(self, value: object) -> str | None:
        """Why ``value`` cannot be this field's value (rule 2), or None if it can."""
        if value is None:
            return None if self.nullable else "must not be null"
        kind = type(value)
        if kind is not self.type and not (self.type is float and kind is int):
            expected = self.type.__name__ + (" or null" if self.nullable else "")
            return f"must be {expected}, got {kind.__name__}"
        if kind is not bool and isinstance(value, int | float):
            if not value >= 0:  # also catches NaN
                return f"must not be negative, got {_short(value)}"
            if self.name == "port" and value > _MAX_PORT:
                return f"must be a port number (0..{_MAX_PORT}), got {value}"
        elif self.name == "transport" and value not in _TRANSPORTS:
            return f"must be one of {sorted(_TRANSPORTS)}, got {_short(value)}"
        return None


@dataclass(frozen=True, slots=True)
class _Schema:
    fields: tuple[_Field, ...]  # header fields, in declaration order
    names: frozenset[str]  # their names
    blob: str | None  # the bytes field, if any


def _schema_of(cls: type) -> _Schema:
    hints = get_type_hints(cls)
    header: list[_Field] = []
    blob: str | None = None
    for item in fields(cls):
        hint = hints[item.name]
        args = get_args(hint) if isinstance(hint, types.UnionType) else (hint,)
        nullable = type(None) in args
        bases = [a for a in args if a is not type(None)]
        if len(bases) != 1 or bases[0] not in _SCALARS or item.name in _RESERVED:
            raise TypeError(f"{cls.__name__}.{item.name}: {hint} breaks rule 1 of the IPC")
        if bases[0] is bytes:
            if blob is not None or nullable:
                raise TypeError(f"{cls.__name__}: one bytes field (not nullable) at most")
            blob = item.name
        else:
            header.append(_Field(item.name, bases[0], nullable))
    return _Schema(tuple(header), frozenset(f.name for f in header), blob)


_SCHEMAS: Final[dict[type, _Schema]] = {cls: _schema_of(cls) for cls in _KINDS}


# -- encoding ----------------------------------------------------------------------------


def encode(message: IpcMessage, *, max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES) -> bytes:
    """One frame carrying ``message``, ready to write to the socketpair.

    Args:
        message: any message of ``MESSAGE_TYPES``.
        max_frame_bytes: the receiver's limit; a larger frame is refused here rather than
            breaking the channel at the other end.

    Returns:
        The whole frame. The blob is copied once, into it.

    Raises:
        IpcEncodeError: ``message`` is not a protocol message, a field breaks rule 2, or
            the frame would exceed ``max_frame_bytes``.
    """
    cls = type(message)
    schema = _SCHEMAS.get(cls)
    if schema is None:
        raise IpcEncodeError(f"{cls.__name__} is not an IPC message kind")
    header: dict[str, object] = {"kind": message.KIND, "v": PROTOCOL_VERSION}
    for field in schema.fields:
        value = getattr(message, field.name)
        problem = field.problem(value)
        if problem is not None:
            raise IpcEncodeError(f"{cls.__name__}.{field.name} {problem}")
        header[field.name] = value
    blob = b""
    if schema.blob is not None:
        blob = getattr(message, schema.blob)
        if type(blob) is not bytes:
            raise IpcEncodeError(
                f"{cls.__name__}.{schema.blob} must be bytes, got {type(blob).__name__}"
            )
    # ensure_ascii (the default) keeps any str, lone surrogates included, encodable.
    head = json.dumps(header, separators=(",", ":")).encode("ascii")
    size = _PREFIX_BYTES + len(head) + len(blob)
    if size > max_frame_bytes:
        raise IpcEncodeError(
            f"{cls.__name__} needs a frame of {size} bytes, above the limit of "
            f"{max_frame_bytes} bytes"
        )
    return b"".join((_PREFIX.pack(size - _WORD.size, len(head)), head, blob))


# -- decoding ----------------------------------------------------------------------------


def _decode(header_text: str, blob: bytes, direction: Direction | None) -> IpcMessage:
    """The message of one frame whose boundaries are already checked."""
    try:
        header = json.loads(header_text)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError is a ValueError
        raise IpcProtocolError(f"frame header is not JSON: {_short(exc)}") from None
    if not isinstance(header, dict):
        raise IpcProtocolError(f"frame header is a JSON {type(header).__name__}, not an object")
    if "v" not in header:
        raise IpcProtocolError("frame header has no protocol version 'v'")
    version = header["v"]
    if type(version) is not int:
        raise IpcProtocolError(f"protocol version 'v' must be an int, got {_short(version)}")
    if version != PROTOCOL_VERSION:
        raise IpcProtocolError(
            f"unsupported protocol version {_short(version)} (this end speaks {PROTOCOL_VERSION})"
        )
    kind = header.get("kind")
    if type(kind) is not str:
        raise IpcProtocolError(f"frame header 'kind' must be a string, got {_short(kind)}")
    cls = MESSAGE_TYPES.get(kind)
    if cls is None:
        raise IpcProtocolError(f"unknown message kind {_short(kind)}")
    if direction is not None and cls.DIRECTION is not direction:
        raise IpcProtocolError(
            f"message kind {kind!r} travels {cls.DIRECTION.value}, not {direction.value}"
        )
    schema = _SCHEMAS[cls]
    given = header.keys() - _RESERVED
    if given != schema.names:
        missing, extra = sorted(schema.names - given), sorted(given - schema.names)
        raise IpcProtocolError(
            f"{kind!r} header: missing fields {missing}, unknown {_short(extra)}"
        )
    values: dict[str, Any] = {}
    for field in schema.fields:
        value = header[field.name]
        problem = field.problem(value)
        if problem is not None:
            raise IpcProtocolError(f"{kind!r} field {field.name!r} {problem}")
        values[field.name] = float(value) if field.type is float and value is not None else value
    if schema.blob is not None:
        values[schema.blob] = blob
    elif blob:
        raise IpcProtocolError(f"{kind!r} carries no bytes, but the frame has {len(blob)}")
    return cls(**values)


class IpcDecoder:
    """Turns the bytes read from a socketpair into messages.

    Args:
        max_frame_bytes: the largest frame accepted, all of it; a larger one raises
            ``IpcProtocolError`` as soon as its length word has arrived.
        direction: if given, only kinds travelling that way are accepted (a worker decodes
            ``Direction.TO_WORKER``, the supervisor ``Direction.TO_SUPERVISOR``).

    Raises:
        ValueError: for a ``max_frame_bytes`` too small to hold any frame.
    """

    __slots__ = ("_buffer", "_direction", "_error", "_offset", "max_frame_bytes")

    def __init__(
        self,
        max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES,
        *,
        direction: Direction | None = None,
    ) -> None:
        if max_frame_bytes < _PREFIX_BYTES:
            raise ValueError(f"max_frame_bytes must be at least {_PREFIX_BYTES}")
        self.max_frame_bytes = max_frame_bytes
        self._direction = direction
        self._buffer = bytearray()
        self._offset = 0  # bytes before it are consumed
        self._error: IpcProtocolError | None = None

    @property
    def buffered_bytes(self) -> int:
        """How many bytes were fed but not yet returned as a message."""
        return len(self._buffer) - self._offset

    def feed(self, data: bytes) -> None:
        """Append bytes read from the channel (ignored once the decoder has failed)."""
        if self._error is None:
            self._buffer += data

    def next_message(self) -> IpcMessage | None:
        """The next whole message, or None if more bytes are needed.

        Raises:
            IpcProtocolError: the channel carries something that is not a valid frame;
                close it. Raised again by every later call.
        """
        if self._error is not None:
            raise self._error
        try:
            return self._next_message()
        except IpcProtocolError as exc:
            self._error = exc
            raise

    def messages(self) -> Iterator[IpcMessage]:
        """Every whole message buffered so far (``next_message`` until None)."""
        while (message := self.next_message()) is not None:
            yield message

    def check_eof(self) -> None:
        """Call when the channel has closed: a frame cut short is an error.

        Raises:
            IpcProtocolError: bytes of an unfinished frame are left over.
        """
        if self._error is not None:
            raise self._error
        if self.buffered_bytes:
            self._error = IpcProtocolError(
                f"channel closed inside a frame ({self.buffered_bytes} bytes left over)"
            )
            raise self._error

    def _next_message(self) -> IpcMessage | None:
        buffer, start = self._buffer, self._offset
        available = len(buffer) - start
        if available < _WORD.size:
            return None
        (length,) = _WORD.unpack_from(buffer, start)
        size = _WORD.size + length
        if size > self.max_frame_bytes:
            raise IpcProtocolError(
                f"frame of {size} bytes exceeds the limit of {self.max_frame_bytes} bytes"
            )
        if size < _PREFIX_BYTES:
            raise IpcProtocolError(f"frame of {size} bytes cannot hold its header length")
        if available < size:
            return None
        (header_length,) = _WORD.unpack_from(buffer, start + _WORD.size)
        header_start = start + _PREFIX_BYTES
        blob_start = header_start + header_length
        end = start + size
        if blob_start > end:
            raise IpcProtocolError(
                f"header of {header_length} bytes does not fit a frame of {size} bytes"
            )
        with memoryview(buffer) as view:
            try:
                header_text = str(view[header_start:blob_start], "utf-8")
            except UnicodeDecodeError as exc:
                raise IpcProtocolError(f"frame header is not UTF-8: {exc.reason}") from None
            blob = bytes(view[blob_start:end])
        self._consume(end)
        return _decode(header_text, blob, self._direction)

    def _consume(self, end: int) -> None:
        buffer = self._buffer
        if end == len(buffer):
            buffer.clear()
            self._offset = 0
        elif end >= _COMPACT_BYTES and 2 * end >= len(buffer):
            del buffer[:end]  # move the unread tail (at most as large as the head) forward
            self._offset = 0
        else:
            self._offset = end
