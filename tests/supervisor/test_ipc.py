"""The supervisor <-> worker codec: wire format, round trips, framing, every error."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import struct
import types
from typing import Any, get_args, get_type_hints

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rtcgw.registrations import Binding
from rtcgw.sip.transport import Peer, Transport
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
    Query,
    QueryReply,
    Ready,
    SipIn,
    SipOut,
    Stop,
    Stopped,
    Undrain,
    encode,
)

FAST = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])

INVITE = (
    b"INVITE sip:bob@example.com SIP/2.0\r\n"
    b"Via: SIP/2.0/WSS df7jal23ls0d.invalid;branch=z9hG4bK2342\r\n"
    b"Call-ID: a84b4c76e66710\r\nContent-Length: 0\r\n\r\n"
)

#: A registration as a worker reports it (times on the worker's clock, which reads 100).
BINDING = Binding(
    aor="alice@example.com",
    user="alice",
    contact="sip:a@df7j.invalid;transport=ws",
    instance='"<urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6>"',
    reg_id=1,
    call_id="jssip-reg-1",
    connection_id=17,
    transport=Transport.WSS,
    host="203.0.113.7",
    port=49152,
    alias="sip:alice-0123456789@192.0.2.1:5060",
    client_expires_at=160.0,
    upstream_expires_at=3700.0,
    upstream_call_id="r1-0123456789abcdef01234567",
    upstream_from_tag="0123456789abcdef-r1",
    upstream_cseq=4,
    registrar_transport=Transport.UDP,
    registrar_host="192.0.2.10",
    registrar_port=5060,
    registrar_uri="sip:example.com",
)

#: One example of every kind, with every optional field both set and unset somewhere.
EXAMPLES: list[IpcMessage] = [
    Configure(worker_index=1, worker_count=4, config=b"\x80\x05pickled\x00"),
    SipIn("WSS", "203.0.113.7", 49152, 17, "rtc", INVITE),
    SipIn("UDP", "2001:db8::1", 5060, None, "pbx", b""),
    ConnectionClosed(connection_id=17, reason="peer closed"),
    BindingChanged.of(BINDING, 100.0, removed=False, reason="registered"),
    BindingChanged.of(
        dataclasses.replace(BINDING, instance=None, reg_id=None),
        100.0,
        removed=True,
        reason="connection closed",
    ),
    Drain(deadline_s=30.5),
    Stop(),
    Ping(seq=0),
    Ready(worker_index=3, pid=4242),
    SipOut("UDP", "192.0.2.10", 5060, None, "pbx", INVITE),
    SipOut("WS", "198.51.100.1", 80, 9, "rtc", b"\x00\xff binary"),
    BindingReport.of(BINDING, 100.0, removed=False, reason="refreshed"),
    Pong(seq=2**40, active_calls=0),
    Stopped(worker_index=0),
    Undrain(),
    Query(request_id=7, what="call", call_id="abc@host"),
    Query(request_id=8, what="calls", call_id=None),
    QueryReply(request_id=7, worker_index=1, body=b'{"calls": []}'),
]


def decode_all(data: bytes, **kwargs: Any) -> list[IpcMessage]:
    decoder = IpcDecoder(**kwargs)
    decoder.feed(data)
    messages = list(decoder.messages())
    assert decoder.buffered_bytes == 0
    return messages


def frame(header: bytes, blob: bytes = b"", *, length: int | None = None) -> bytes:
    """A frame around a raw header; ``length`` overrides the first length word."""
    size = 4 + len(header) + len(blob) if length is None else length
    return struct.pack(">II", size, len(header)) + header + blob


def header(kind: str, **fields: object) -> bytes:
    return json.dumps({"kind": kind, "v": PROTOCOL_VERSION, **fields}).encode()


def decode_error(data: bytes, **kwargs: Any) -> str:
    decoder = IpcDecoder(**kwargs)
    decoder.feed(data)
    with pytest.raises(IpcProtocolError) as info:
        decoder.next_message()
    return str(info.value)


# -- the table of kinds ------------------------------------------------------------------


def test_every_kind_is_registered_once_and_exemplified() -> None:
    assert len(MESSAGE_TYPES) == 15
    assert {cls.KIND for cls in MESSAGE_TYPES.values()} == set(MESSAGE_TYPES)
    assert {type(m) for m in EXAMPLES} == set(MESSAGE_TYPES.values())


@pytest.mark.parametrize("cls", MESSAGE_TYPES.values(), ids=lambda c: c.__name__)
def test_kinds_are_frozen_slotted_with_at_most_one_bytes_field(cls: type[Any]) -> None:
    params = cls.__dataclass_params__
    assert params.frozen
    assert "__slots__" in cls.__dict__
    hints = get_type_hints(cls)
    assert sum(hints[f.name] is bytes for f in dataclasses.fields(cls)) <= 1
    assert isinstance(cls.DIRECTION, Direction)


def test_directions() -> None:
    to_worker = {c.__name__ for c in MESSAGE_TYPES.values() if c.DIRECTION is Direction.TO_WORKER}
    assert to_worker == {
        "Configure",
        "SipIn",
        "ConnectionClosed",
        "BindingChanged",
        "Drain",
        "Undrain",
        "Query",
        "Stop",
        "Ping",
    }


# -- wire format -------------------------------------------------------------------------


def test_wire_format_of_a_message_without_bytes() -> None:
    body = b'{"kind":"ping","v":1,"seq":7}'
    assert encode(Ping(seq=7)) == struct.pack(">II", 4 + len(body), len(body)) + body


def test_wire_format_puts_bytes_in_the_blob() -> None:
    data = encode(SipOut("UDP", "192.0.2.1", 5060, None, "pbx", b"OPTIONS x\xff"))
    size, header_length = struct.unpack_from(">II", data)
    assert size == len(data) - 4
    head = json.loads(data[8 : 8 + header_length])
    assert head == {
        "kind": "sip_out",
        "v": 1,
        "transport": "UDP",
        "host": "192.0.2.1",
        "port": 5060,
        "connection_id": None,
        "interface": "pbx",
    }
    assert data[8 + header_length :] == b"OPTIONS x\xff"


def test_default_limit_is_one_mebibyte() -> None:
    assert DEFAULT_MAX_FRAME_BYTES == 1024 * 1024
    assert IpcDecoder().max_frame_bytes == DEFAULT_MAX_FRAME_BYTES


# -- round trips -------------------------------------------------------------------------


@pytest.mark.parametrize("message", EXAMPLES, ids=lambda m: type(m).__name__)
def test_round_trip_examples(message: IpcMessage) -> None:
    assert decode_all(encode(message)) == [message]


def _strategy_for(name: str, hint: Any) -> st.SearchStrategy[Any]:
    if isinstance(hint, types.UnionType):
        (base,) = [a for a in get_args(hint) if a is not type(None)]
        return st.none() | _strategy_for(name, base)
    if name == "transport":
        return st.sampled_from([t.value for t in Transport])
    if name == "port":
        return st.integers(0, 65535)
    strategies: dict[Any, st.SearchStrategy[Any]] = {
        str: st.text(max_size=40),
        int: st.integers(min_value=0, max_value=2**64),
        float: st.floats(min_value=0, allow_nan=False),
        bytes: st.binary(max_size=600),
        bool: st.booleans(),
    }
    return strategies[hint]


def _messages_of(cls: type[Any]) -> st.SearchStrategy[IpcMessage]:
    hints = get_type_hints(cls)
    fields = {f.name: _strategy_for(f.name, hints[f.name]) for f in dataclasses.fields(cls)}
    return st.builds(cls, **fields)


any_message = st.one_of([_messages_of(cls) for cls in MESSAGE_TYPES.values()])


@FAST
@given(message=any_message)
def test_round_trip_any_message(message: IpcMessage) -> None:
    assert decode_all(encode(message)) == [message]


@FAST
@given(messages=st.lists(any_message, max_size=8), data=st.data())
def test_round_trip_any_split(messages: list[IpcMessage], data: st.DataObject) -> None:
    stream = b"".join(encode(m) for m in messages)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=10)))
    decoder = IpcDecoder()
    got: list[IpcMessage] = []
    for start, end in zip([0, *cuts], [*cuts, len(stream)], strict=True):
        decoder.feed(stream[start:end])
        got.extend(decoder.messages())
    assert got == messages
    assert decoder.buffered_bytes == 0
    decoder.check_eof()


def test_split_at_every_byte_boundary() -> None:
    stream = b"".join(encode(m) for m in EXAMPLES[:4])
    for cut in range(len(stream) + 1):
        decoder = IpcDecoder()
        decoder.feed(stream[:cut])
        got = list(decoder.messages())
        decoder.feed(stream[cut:])
        got.extend(decoder.messages())
        assert got == EXAMPLES[:4], f"cut at {cut}"


def test_fed_one_byte_at_a_time() -> None:
    stream = b"".join(encode(m) for m in EXAMPLES)
    decoder = IpcDecoder()
    got: list[IpcMessage] = []
    for i in range(len(stream)):
        decoder.feed(stream[i : i + 1])
        got.extend(decoder.messages())
    assert got == EXAMPLES


def test_many_frames_in_one_feed() -> None:
    pings = [Ping(seq=i) for i in range(5000)]
    assert decode_all(b"".join(encode(p) for p in pings)) == pings


def test_next_message_returns_none_until_complete() -> None:
    data = encode(EXAMPLES[1])
    decoder = IpcDecoder()
    assert decoder.next_message() is None
    decoder.feed(data[:-1])
    assert decoder.next_message() is None
    assert decoder.buffered_bytes == len(data) - 1
    decoder.feed(data[-1:])
    assert decoder.next_message() == EXAMPLES[1]
    assert decoder.next_message() is None


def test_large_stream_in_odd_chunks_keeps_the_buffer_small() -> None:
    # Frames larger than the compaction threshold, fed in chunks that never align.
    messages = [SipIn("UDP", "h", 1, None, "i", bytes([i]) * 40_000) for i in range(40)]
    stream = b"".join(encode(m) for m in messages)
    decoder = IpcDecoder()
    got: list[IpcMessage] = []
    for start in range(0, len(stream), 30_001):
        decoder.feed(stream[start : start + 30_001])
        got.extend(decoder.messages())
        assert decoder.buffered_bytes < 2 * 40_100
    assert got == messages


def test_integer_accepted_for_float_field() -> None:
    (message,) = decode_all(frame(header("drain", deadline_s=5)))
    assert message == Drain(deadline_s=5.0)
    assert isinstance(message, Drain)
    assert type(message.deadline_s) is float


def test_infinite_drain_deadline_round_trips() -> None:
    assert decode_all(encode(Drain(float("inf")))) == [Drain(float("inf"))]


def test_text_round_trips_unchanged() -> None:
    odd = 'ünïcode "quoted" \\ \x00 \ud800 \U0001f600'
    message = ConnectionClosed(1, odd)
    assert decode_all(encode(message)) == [message]


# -- helpers -----------------------------------------------------------------------------


def test_peer_helpers() -> None:
    peer = Peer(Transport.WSS, "2001:db8::7", 443, 12)
    inbound = SipIn.from_peer(peer, "rtc", b"x")
    assert inbound == SipIn("WSS", "2001:db8::7", 443, 12, "rtc", b"x")
    assert inbound.peer == peer
    outbound = SipOut.to(Peer(Transport.UDP, "192.0.2.1", 5060), "pbx", b"y")
    assert outbound == SipOut("UDP", "192.0.2.1", 5060, None, "pbx", b"y")
    assert outbound.peer == Peer(Transport.UDP, "192.0.2.1", 5060, None)


def test_binding_crosses_as_seconds_left_and_lands_on_the_receivers_clock() -> None:
    report = BindingReport.of(BINDING, 100.0, removed=False, reason="registered")
    assert (report.client_expires_s, report.upstream_expires_s) == (60.0, 3600.0)
    assert (report.transport, report.registrar_transport) == ("WSS", "UDP")
    (decoded,) = decode_all(encode(report))
    assert isinstance(decoded, BindingReport)
    # The supervisor's clock reads 5000 when the report arrives.
    assert decoded.binding(5000.0) == BINDING.shifted(4900.0)
    change = BindingChanged.of(decoded.binding(5000.0), 5000.0, removed=True, reason="expired")
    assert change.removed and change.reason == "expired"
    assert change.binding(7.0) == BINDING.shifted(-93.0)


def test_binding_with_an_unknown_transport_is_refused_at_the_wire() -> None:
    bad = dataclasses.replace(
        BindingReport.of(BINDING, 0.0, removed=False, reason="x"), transport="SCTP"
    )
    with pytest.raises(IpcEncodeError, match="transport"):
        encode(bad)


# -- encode errors -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        (SipIn("UDP", "h", "5060", None, "i", b""), "SipIn.port must be int, got str"),
        (SipIn("UDP", "h", True, None, "i", b""), "SipIn.port must be int, got bool"),
        (SipIn("UDP", "h", 70000, None, "i", b""), "port number"),
        (SipIn("udp", "h", 5060, None, "i", b""), "SipIn.transport must be one of"),
        (SipIn("UDP", "h", 5060, -1, "i", b""), "must not be negative"),
        (SipIn("UDP", "h", 5060, None, "i", "text"), "SipIn.data must be bytes, got str"),
        (SipIn("UDP", "h", 5060, None, "i", bytearray(b"x")), "must be bytes, got bytearray"),
        (SipIn("UDP", None, 5060, None, "i", b""), "SipIn.host must not be null"),
        (Drain(float("nan")), "Drain.deadline_s must not be negative"),
        (Drain("1"), "Drain.deadline_s must be float, got str"),
        (Ping(1.0), "Ping.seq must be int, got float"),
        (object(), "object is not an IPC message kind"),
    ],
)
def test_encode_refuses_what_the_protocol_cannot_carry(message: Any, expected: str) -> None:
    with pytest.raises(IpcEncodeError, match=expected.replace(".", r"\.")):
        encode(message)


def test_encode_refuses_oversize_frames() -> None:
    message = SipIn("UDP", "h", 1, None, "i", bytes(DEFAULT_MAX_FRAME_BYTES))
    with pytest.raises(IpcEncodeError, match=f"limit of {DEFAULT_MAX_FRAME_BYTES} bytes"):
        encode(message)
    small = Ping(seq=1)
    size = len(encode(small))
    assert encode(small, max_frame_bytes=size) == encode(small)
    with pytest.raises(IpcEncodeError, match=f"frame of {size} bytes, above the limit of 20"):
        encode(small, max_frame_bytes=20)


def test_errors_share_one_root() -> None:
    assert issubclass(IpcProtocolError, IpcError)
    assert issubclass(IpcEncodeError, IpcError)


# -- decode errors -----------------------------------------------------------------------


def test_oversize_frame_is_refused_from_its_length_word() -> None:
    decoder = IpcDecoder(max_frame_bytes=100)
    decoder.feed(struct.pack(">I", 1000))  # nothing else has arrived yet
    with pytest.raises(IpcProtocolError, match="frame of 1004 bytes exceeds the limit of 100"):
        decoder.next_message()


def test_frame_exactly_at_the_limit_is_accepted() -> None:
    data = encode(Ping(seq=1))
    assert decode_all(data, max_frame_bytes=len(data)) == [Ping(seq=1)]
    assert "exceeds the limit" in decode_error(data, max_frame_bytes=len(data) - 1)


def test_limit_too_small_for_any_frame_is_a_usage_error() -> None:
    with pytest.raises(ValueError, match="at least 8"):
        IpcDecoder(max_frame_bytes=7)


SIP_IN_FIELDS: dict[str, object] = {
    "transport": "UDP",
    "host": "h",
    "port": 5060,
    "connection_id": None,
    "interface": "pbx",
}


def sip_in(**changes: object) -> bytes:
    return frame(header("sip_in", **{**SIP_IN_FIELDS, **changes}), b"INVITE")


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (frame(b"{nope"), "frame header is not JSON"),
        (frame(header("ping", seq=1)[:-3]), "frame header is not JSON"),
        (frame(b"[" * 100_000), "frame header is not JSON"),
        (frame(b'{"kind":"ping","v":1,"seq":' + b"9" * 5000 + b"}"), "not JSON"),
        (frame(b"\xff\xfe{}"), "frame header is not UTF-8"),
        (frame(b"[1, 2]"), "frame header is a JSON list, not an object"),
        (frame(b'"ping"'), "frame header is a JSON str, not an object"),
        (frame(b'{"kind":"ping","seq":1}'), "no protocol version 'v'"),
        (frame(b'{"kind":"ping","v":"1","seq":1}'), "'v' must be an int, got '1'"),
        (frame(b'{"kind":"ping","v":true,"seq":1}'), "'v' must be an int, got True"),
        (frame(b'{"kind":"ping","v":2,"seq":1}'), "unsupported protocol version 2"),
        (frame(b'{"kind":"ping","v":0,"seq":1}'), "unsupported protocol version 0"),
        (frame(b'{"v":1,"seq":1}'), "'kind' must be a string, got None"),
        (frame(b'{"kind":7,"v":1}'), "'kind' must be a string, got 7"),
        (frame(header("pling", seq=1)), "unknown message kind 'pling'"),
        (frame(header("x" * 500)), "unknown message kind 'xxxx"),
        (frame(header("ping")), "missing fields ['seq'], unknown []"),
        (frame(header("ping", seq=1, extra=2)), "missing fields [], unknown ['extra']"),
        (frame(header("stop", data="x")), "unknown ['data']"),
        (frame(header("ping", seq="1")), "'seq' must be int, got str"),
        (frame(header("ping", seq=1.0)), "'seq' must be int, got float"),
        (frame(header("ping", seq=True)), "'seq' must be int, got bool"),
        (frame(header("ping", seq=None)), "'seq' must not be null"),
        (frame(header("ping", seq=-1)), "'seq' must not be negative"),
        (frame(header("ping", seq=[1])), "'seq' must be int, got list"),
        (frame(header("drain", deadline_s="1")), "'deadline_s' must be float, got str"),
        (frame(header("drain", deadline_s=False)), "'deadline_s' must be float, got bool"),
        (frame(b'{"kind":"drain","v":1,"deadline_s":NaN}'), "must not be negative, got nan"),
        (sip_in(port="5060"), "'port' must be int, got str"),
        (sip_in(port=65536), "must be a port number"),
        (sip_in(transport="udp"), "'transport' must be one of"),
        (sip_in(transport=None), "'transport' must not be null"),
        (sip_in(connection_id="7"), "'connection_id' must be int or null, got str"),
        (sip_in(data="INVITE"), "unknown ['data']"),
        (frame(header("ping", seq=1), b"blob"), "'ping' carries no bytes, but the frame has 4"),
        (frame(header("ping", seq=1), length=3), "frame of 7 bytes cannot hold its header"),
        (struct.pack(">II", 4, 5), "header of 5 bytes does not fit a frame"),
    ],
)
def test_bad_frames(data: bytes, expected: str) -> None:
    assert expected in decode_error(data)


def test_wrong_direction_is_refused() -> None:
    to_worker = encode(Configure(0, 1, b""))
    to_supervisor = encode(Ready(0, 1))
    assert decode_all(to_worker, direction=Direction.TO_WORKER) == [Configure(0, 1, b"")]
    assert decode_all(to_supervisor, direction=Direction.TO_SUPERVISOR) == [Ready(0, 1)]
    error = decode_error(to_worker, direction=Direction.TO_SUPERVISOR)
    assert error == "message kind 'configure' travels to_worker, not to_supervisor"
    assert "travels to_supervisor" in decode_error(to_supervisor, direction=Direction.TO_WORKER)


def test_an_error_is_final() -> None:
    decoder = IpcDecoder()
    decoder.feed(encode(Ping(1)) + frame(b"{bad") + encode(Ping(2)))
    assert decoder.next_message() == Ping(1)
    with pytest.raises(IpcProtocolError) as first:
        decoder.next_message()
    decoder.feed(encode(Ping(3)))
    with pytest.raises(IpcProtocolError) as again:
        decoder.next_message()
    assert again.value is first.value
    with pytest.raises(IpcProtocolError):
        decoder.check_eof()


def test_check_eof() -> None:
    decoder = IpcDecoder()
    decoder.check_eof()  # nothing buffered: a clean end
    partial = encode(Ping(1))[:-1]
    decoder.feed(partial)
    assert decoder.next_message() is None
    expected = rf"channel closed inside a frame \({len(partial)} bytes left over\)"
    with pytest.raises(IpcProtocolError, match=expected):
        decoder.check_eof()
    with pytest.raises(IpcProtocolError):
        decoder.next_message()


@FAST
@given(data=st.binary(max_size=300))
def test_random_bytes_decode_or_raise_protocol_error(data: bytes) -> None:
    decoder = IpcDecoder(max_frame_bytes=4096)
    decoder.feed(data)
    with contextlib.suppress(IpcProtocolError):
        list(decoder.messages())


@FAST
@given(message=any_message, data=st.data())
def test_corrupted_frames_decode_or_raise_protocol_error(
    message: IpcMessage, data: st.DataObject
) -> None:
    encoded = bytearray(encode(message))
    for _ in range(data.draw(st.integers(1, 4))):
        i = data.draw(st.integers(0, len(encoded) - 1))
        encoded[i] = data.draw(st.integers(0, 255))
    decoder = IpcDecoder(max_frame_bytes=1 << 16)
    decoder.feed(bytes(encoded))
    try:
        got = list(decoder.messages())
    except IpcProtocolError:
        return
    for item in got:
        assert type(item) in MESSAGE_TYPES.values()
