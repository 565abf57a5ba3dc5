"""The STUN facade: RFC 5769 vectors, responses read back by aioice, garbage never raises."""

from __future__ import annotations

import struct

import pytest
from aioice import stun
from hypothesis import given, settings
from hypothesis import strategies as st

from rtcgw.media.errors import LocalMediaError
from rtcgw.media.stun import (
    BindingRequest,
    binding_error,
    binding_success,
    parse_binding_request_untrusted,
    verify_integrity,
)

RFC5769_PASSWORD = b"VOkJxbRl1RmTxUk/WvJxBt"
RFC5769_TRANSACTION_ID = bytes.fromhex("b7e7a701bc34d686fa87dfae")

#: RFC 5769 section 2.1: "Sample Request" (SOFTWARE, PRIORITY, ICE-CONTROLLED, USERNAME
#: "evtj:h6vY" padded with spaces, MESSAGE-INTEGRITY, FINGERPRINT).
RFC5769_REQUEST = bytes.fromhex(
    "000100582112a442b7e7a701bc34d686fa87dfae"
    "802200105354554e207465737420636c69656e74"
    "002400046e0001ff"
    "80290008932ff9b151263b36"
    "000600096576746a3a68367659202020"
    "000800149aeaa70cbfd8cb56781ef2b5b2d3f249c1b571a2"
    "80280004e57a3bcf"
)

#: RFC 5769 section 2.2: "Sample IPv4 Response" (XOR-MAPPED-ADDRESS 192.0.2.1:32853).
RFC5769_RESPONSE = bytes.fromhex(
    "0101003c2112a442b7e7a701bc34d686fa87dfae"
    "8022000b7465737420766563746f7220"
    "002000080001a147e112a643"
    "000800142b91f599fd9e90c38c7489f92af9ba53f06be7d7"
    "80280004c07d4c96"
)

TID = bytes(range(12))
KEY = b"ourlocalpasswordof24char"


def request(attributes: dict[str, object], *, key: bytes | None = KEY) -> bytes:
    message = stun.Message(stun.Method.BINDING, stun.Class.REQUEST, TID, dict(attributes))
    if key is None:
        message.add_fingerprint()
    else:
        message.add_message_integrity(key)
    return bytes(message)


def refingerprint(data: bytes) -> bytes:
    """``data`` (ending with FINGERPRINT) with its FINGERPRINT recomputed."""
    body = data[:-8]
    return body + struct.pack("!HHI", 0x8028, 4, stun.message_fingerprint(body))


# -- RFC 5769 vectors --------------------------------------------------------------------


def test_rfc5769_sample_request_parses() -> None:
    assert parse_binding_request_untrusted(RFC5769_REQUEST) == BindingRequest(
        transaction_id=RFC5769_TRANSACTION_ID,
        username="evtj:h6vY",
        use_candidate=False,
        priority=0x6E0001FF,
        ice_controlling=None,
        ice_controlled=0x932FF9B151263B36,
        has_integrity=True,
        has_fingerprint=True,
    )


def test_rfc5769_sample_request_integrity() -> None:
    assert verify_integrity(RFC5769_REQUEST, RFC5769_PASSWORD)
    assert not verify_integrity(RFC5769_REQUEST, b"VOkJxbRl1RmTxUk/WvJxBT")
    assert not verify_integrity(RFC5769_REQUEST, b"")


def test_rfc5769_sample_response_is_not_a_request_but_verifies() -> None:
    assert parse_binding_request_untrusted(RFC5769_RESPONSE) is None
    assert verify_integrity(RFC5769_RESPONSE, RFC5769_PASSWORD)


def test_corrupted_fingerprint_is_not_stun() -> None:
    data = bytearray(RFC5769_REQUEST)
    data[-1] ^= 0x01
    assert parse_binding_request_untrusted(bytes(data)) is None


def test_corrupted_body_fails_the_fingerprint() -> None:
    data = bytearray(RFC5769_REQUEST)
    data[30] ^= 0x20  # inside SOFTWARE
    assert parse_binding_request_untrusted(bytes(data)) is None


def test_corrupted_body_with_a_fresh_fingerprint_fails_integrity() -> None:
    data = bytearray(RFC5769_REQUEST)
    data[30] ^= 0x20
    forged = refingerprint(bytes(data))
    assert parse_binding_request_untrusted(forged) is not None
    assert not verify_integrity(forged, RFC5769_PASSWORD)


# -- what is and is not a Binding request --------------------------------------------------


def test_browser_style_check() -> None:
    data = request(
        {
            "USERNAME": "gwufrag1:brws",
            "PRIORITY": 1853817087,
            "ICE-CONTROLLING": 0x1122334455667788,
            "USE-CANDIDATE": None,
        }
    )
    parsed = parse_binding_request_untrusted(data)
    assert parsed == BindingRequest(
        transaction_id=TID,
        username="gwufrag1:brws",
        use_candidate=True,
        priority=1853817087,
        ice_controlling=0x1122334455667788,
        ice_controlled=None,
        has_integrity=True,
        has_fingerprint=True,
    )
    assert verify_integrity(data, KEY)
    assert not verify_integrity(data, KEY + b"x")


def test_missing_integrity_and_fingerprint_still_parse() -> None:
    without_mi = parse_binding_request_untrusted(request({"USERNAME": "a:b"}, key=None))
    assert without_mi is not None
    assert not without_mi.has_integrity
    assert without_mi.has_fingerprint
    bare = stun.Message(stun.Method.BINDING, stun.Class.REQUEST, TID, {"USERNAME": "a:b"})
    parsed = parse_binding_request_untrusted(bytes(bare))
    assert parsed is not None
    assert not parsed.has_integrity
    assert not parsed.has_fingerprint
    assert not verify_integrity(bytes(bare), KEY)


def test_integrity_without_fingerprint() -> None:
    data = request({"USERNAME": "a:b"})[:-8]
    data = data[:2] + struct.pack("!H", len(data) - 20) + data[4:]
    parsed = parse_binding_request_untrusted(data)
    assert parsed is not None
    assert parsed.has_integrity
    assert not parsed.has_fingerprint
    assert verify_integrity(data, KEY)


@pytest.mark.parametrize(
    ("method", "message_class"),
    [
        (stun.Method.BINDING, stun.Class.INDICATION),
        (stun.Method.BINDING, stun.Class.RESPONSE),
        (stun.Method.BINDING, stun.Class.ERROR),
        (stun.Method.ALLOCATE, stun.Class.REQUEST),
        (stun.Method.REFRESH, stun.Class.REQUEST),
    ],
)
def test_other_messages_are_not_binding_requests(
    method: stun.Method, message_class: stun.Class
) -> None:
    message = stun.Message(method, message_class, TID, {"USERNAME": "a:b"})
    message.add_message_integrity(KEY)
    assert parse_binding_request_untrusted(bytes(message)) is None


def test_classic_stun_without_magic_cookie_is_refused() -> None:
    data = bytearray(request({"USERNAME": "a:b"}, key=None))
    data[4:8] = b"\x00\x00\x00\x00"
    assert parse_binding_request_untrusted(bytes(data)) is None


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x00\x01",
        bytes(19),
        # Header whose length says 4 but no body follows.
        b"\x00\x01\x00\x04\x21\x12\xa4\x42" + TID,
        # Length not a multiple of 4.
        b"\x00\x01\x00\x02\x21\x12\xa4\x42" + TID + b"\x00\x00",
        # PRIORITY cut to 2 bytes: aioice raises struct.error.
        b"\x00\x01\x00\x08\x21\x12\xa4\x42" + TID + b"\x00\x24\x00\x02\x00\x01\x00\x00",
        # ICE-CONTROLLING cut to 4 bytes: struct.error as well.
        b"\x00\x01\x00\x08\x21\x12\xa4\x42" + TID + b"\x80\x2a\x00\x04\x00\x00\x00\x01",
        # USERNAME that is not UTF-8: UnicodeDecodeError.
        b"\x00\x01\x00\x08\x21\x12\xa4\x42" + TID + b"\x00\x06\x00\x02\xff\xfe\x00\x00",
        # XOR-MAPPED-ADDRESS of an unknown family.
        b"\x00\x01\x00\x0c\x21\x12\xa4\x42" + TID + b"\x00\x20\x00\x08" + bytes(8),
    ],
    ids=[
        "empty",
        "two-bytes",
        "short-header",
        "length-overrun",
        "unaligned",
        "short-priority",
        "short-controlling",
        "bad-utf8",
        "bad-address",
    ],
)
def test_malformed_input_is_not_a_request(data: bytes) -> None:
    assert parse_binding_request_untrusted(data) is None
    assert verify_integrity(data, KEY) is False


def test_verify_integrity_refuses_a_short_integrity_attribute() -> None:
    body = b"\x00\x08\x00\x04" + bytes(4)
    data = b"\x00\x01" + struct.pack("!H", len(body)) + b"\x21\x12\xa4\x42" + TID + body
    assert not verify_integrity(data, KEY)


# -- responses we build, read back by aioice ----------------------------------------------


@pytest.mark.parametrize(
    "mapped", [("192.0.2.1", 32853), ("203.0.113.7", 1), ("2001:db8::1", 65535)]
)
def test_binding_success_reads_back(mapped: tuple[str, int]) -> None:
    data = binding_success(TID, mapped, KEY)
    message = stun.parse_message(data)
    assert message.message_method is stun.Method.BINDING
    assert message.message_class is stun.Class.RESPONSE
    assert message.transaction_id == TID
    assert message.attributes["XOR-MAPPED-ADDRESS"] == mapped
    assert list(message.attributes) == ["XOR-MAPPED-ADDRESS", "MESSAGE-INTEGRITY", "FINGERPRINT"]
    assert message.check_message_integrity(KEY)
    assert not message.check_message_integrity(b"another key")
    assert verify_integrity(data, KEY)


def test_binding_error_signed_reads_back() -> None:
    data = binding_error(TID, 487, "Role Conflict", KEY)
    message = stun.parse_message(data)
    assert message.message_class is stun.Class.ERROR
    assert message.transaction_id == TID
    assert message.attributes["ERROR-CODE"] == (487, "Role Conflict")
    assert list(message.attributes) == ["ERROR-CODE", "MESSAGE-INTEGRITY", "FINGERPRINT"]
    assert message.check_message_integrity(KEY)


def test_binding_error_unsigned_reads_back() -> None:
    data = binding_error(TID, 401, "Unauthorized", None)
    message = stun.parse_message(data)
    assert message.message_class is stun.Class.ERROR
    assert message.error_code == 401
    assert list(message.attributes) == ["ERROR-CODE", "FINGERPRINT"]
    assert not verify_integrity(data, KEY)


@pytest.mark.parametrize("transaction_id", [b"", bytes(11), bytes(13)])
def test_transaction_id_must_be_12_bytes(transaction_id: bytes) -> None:
    with pytest.raises(LocalMediaError, match="transaction ID"):
        binding_success(transaction_id, ("192.0.2.1", 1), KEY)
    with pytest.raises(LocalMediaError, match="transaction ID"):
        binding_error(transaction_id, 400, "Bad Request", None)


@pytest.mark.parametrize("code", [0, 200, 299, 700])
def test_error_code_must_be_an_error_class(code: int) -> None:
    with pytest.raises(LocalMediaError, match="ERROR-CODE"):
        binding_error(TID, code, "x", None)


@pytest.mark.parametrize(
    "mapped", [("example.com", 5000), ("", 5000), ("192.0.2.1", -1), ("192.0.2.1", 65536)]
)
def test_mapped_address_must_be_an_ip_and_port(mapped: tuple[str, int]) -> None:
    with pytest.raises(LocalMediaError, match="XOR-MAPPED-ADDRESS"):
        binding_success(TID, mapped, KEY)


# -- garbage never raises -----------------------------------------------------------------


@given(st.binary(max_size=200))
def test_arbitrary_bytes_never_raise(data: bytes) -> None:
    result = parse_binding_request_untrusted(data)
    assert result is None or isinstance(result, BindingRequest)
    assert isinstance(verify_integrity(data, KEY), bool)


ATTRIBUTE_TYPES = [0x0006, 0x0008, 0x0009, 0x0020, 0x0024, 0x0025, 0x8028, 0x8029, 0x802A, 0x7777]


@st.composite
def binding_requests_with_random_attributes(draw: st.DrawFn) -> bytes:
    """A well-formed header over attributes with known types and arbitrary values."""
    body = b""
    for _ in range(draw(st.integers(0, 6))):
        attribute_type = draw(st.sampled_from(ATTRIBUTE_TYPES))
        value = draw(st.binary(max_size=24))
        body += struct.pack("!HH", attribute_type, len(value)) + value + bytes(-len(value) % 4)
    if draw(st.booleans()):
        body += b"\x00\x06\x00\x20"  # an attribute header whose value is missing
    return b"\x00\x01" + struct.pack("!H", len(body)) + b"\x21\x12\xa4\x42" + TID + body


@settings(max_examples=300)
@given(binding_requests_with_random_attributes())
def test_random_attributes_never_raise(data: bytes) -> None:
    result = parse_binding_request_untrusted(data)
    assert result is None or isinstance(result, BindingRequest)
    assert isinstance(verify_integrity(data, KEY), bool)


@given(st.integers(0, len(RFC5769_REQUEST)), st.integers(0, 255), st.integers(0, 200))
def test_mutated_and_truncated_sample_never_raises(position: int, byte: int, cut: int) -> None:
    data = bytearray(RFC5769_REQUEST)
    if position < len(data):
        data[position] = byte
    mutated = bytes(data[: len(data) - cut])
    result = parse_binding_request_untrusted(mutated)
    assert result is None or isinstance(result, BindingRequest)
    assert isinstance(verify_integrity(mutated, RFC5769_PASSWORD), bool)
