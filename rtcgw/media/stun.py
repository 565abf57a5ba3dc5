"""The STUN messages an ICE-lite agent reads and writes, over aioice's codec (RFC 8489).

An ICE-lite agent (RFC 8445 section 2.5) never sends requests: it reads Binding requests
(connectivity checks) and answers them with a Binding success or error response. This
module is that much of STUN and no more:

- ``parse_binding_request_untrusted``: the fields of a Binding request the responder needs,
  or None for anything else (responses, indications, other methods, garbage). It never
  raises on input.
- ``verify_integrity``: MESSAGE-INTEGRITY (HMAC-SHA1, RFC 8489 section 14.5) with a
  short-term key.
- ``binding_success`` / ``binding_error``: responses, fingerprinted (RFC 8445 section 7:
  connectivity checks and their responses carry FINGERPRINT).

It is the only module of rtcgw that imports aioice, so the codec can be replaced here alone.
aioice's ``parse_message`` has traps this facade closes: it raises ``struct.error`` (not a
ValueError) on a truncated attribute, it checks neither the magic cookie nor the 4-byte
alignment of the length, and it parses a message without MESSAGE-INTEGRITY or FINGERPRINT
(the caller must require them: ``has_integrity`` / ``has_fingerprint``). It skips unknown
attributes, comprehension-required ones included, where RFC 8489 section 6.3.1 asks for a
420 answer; ICE checks from browsers carry none, so the responder ignores them too.

Cost: one aioice parse per datagram that looks like a Binding request; anything else is
rejected from its first eight bytes. ``verify_integrity`` walks the attribute headers itself
rather than parsing again. MESSAGE-INTEGRITY-SHA256 (RFC 8489 section 14.6) is not
supported: ICE agents do not use it.

No I/O, no clock.
"""

from __future__ import annotations

import hmac
import ipaddress
import struct
from dataclasses import dataclass
from typing import Final

from aioice import stun

from rtcgw.media.errors import LocalMediaError

__all__ = [
    "BindingRequest",
    "binding_error",
    "binding_success",
    "parse_binding_request_untrusted",
    "verify_integrity",
]

_HEADER_BYTES: Final = 20
_TRANSACTION_ID_BYTES: Final = 12
#: RFC 8489 section 5: "The Magic Cookie field MUST contain the fixed value 0x2112A442".
_MAGIC_COOKIE: Final = b"\x21\x12\xa4\x42"
_MESSAGE_INTEGRITY: Final = 0x0008
_MESSAGE_INTEGRITY_BYTES: Final = 20  # an HMAC-SHA1 (RFC 8489 section 14.5)
_ATTRIBUTE_HEADER: Final = struct.Struct("!HH")


@dataclass(frozen=True, slots=True)
class BindingRequest:
    """The attributes of a Binding request (a connectivity check) that ICE-lite looks at.

    Nothing here is authenticated until ``verify_integrity`` has passed on the same bytes.
    """

    transaction_id: bytes
    #: USERNAME, "<receiver's ufrag>:<sender's ufrag>" in ICE (RFC 8445 section 7.2.2).
    username: str | None
    #: USE-CANDIDATE: the controlling agent nominates this pair (RFC 8445 section 7.1.2).
    use_candidate: bool
    priority: int | None
    #: The tie-breaker of an agent that claims the controlling role.
    ice_controlling: int | None
    #: The tie-breaker of an agent that claims the controlled role.
    ice_controlled: int | None
    has_integrity: bool
    #: FINGERPRINT is present; a wrong one never gets this far (the parse fails).
    has_fingerprint: bool


def _optional_int(value: object) -> int | None:
    return value if isinstance(value, int) else None


def parse_binding_request_untrusted(data: bytes) -> BindingRequest | None:
    """The Binding request in ``data``, or None when it is not one (never raises)."""
    # The message type 0x0001 is a Binding request (RFC 8489 section 5); checking it and the
    # cookie here keeps responses, indications and stray datagrams away from the full parse.
    # The message length is a multiple of 4 (RFC 8489 section 5: "all STUN attributes are
    # padded to a multiple of 4 bytes").
    if (
        len(data) < _HEADER_BYTES
        or data[0] != 0x00
        or data[1] != 0x01
        or not data.startswith(_MAGIC_COOKIE, 4)
        or len(data) & 3
    ):
        return None
    try:
        message = stun.parse_message(data)
    except (ValueError, struct.error):
        # ValueError covers a bad FINGERPRINT, a length mismatch, bad UTF-8 in USERNAME and
        # malformed addresses; struct.error a known attribute cut short.
        return None
    attributes = message.attributes
    username = attributes.get("USERNAME")
    return BindingRequest(
        transaction_id=message.transaction_id,
        username=username if isinstance(username, str) else None,
        use_candidate="USE-CANDIDATE" in attributes,
        priority=_optional_int(attributes.get("PRIORITY")),
        ice_controlling=_optional_int(attributes.get("ICE-CONTROLLING")),
        ice_controlled=_optional_int(attributes.get("ICE-CONTROLLED")),
        has_integrity="MESSAGE-INTEGRITY" in attributes,
        has_fingerprint="FINGERPRINT" in attributes,
    )


def verify_integrity(data: bytes, key: bytes) -> bool:
    """Whether the first MESSAGE-INTEGRITY of the STUN message ``data`` verifies with ``key``.

    With short-term credentials the key is the password itself (RFC 8489 section 9.1.1; ICE
    passwords are ASCII, so OpaqueString changes nothing). False for a message without the
    attribute or too short to hold it; never raises on input.
    """
    end = len(data)
    position = _HEADER_BYTES
    while position + 4 <= end:
        attribute_type, length = _ATTRIBUTE_HEADER.unpack_from(data, position)
        if attribute_type == _MESSAGE_INTEGRITY:
            value_end = position + 4 + _MESSAGE_INTEGRITY_BYTES
            if length != _MESSAGE_INTEGRITY_BYTES or value_end > end:
                return False
            # RFC 8489 section 14.5: the HMAC covers the message up to the attribute, with the
            # header's length field set as if MESSAGE-INTEGRITY were the last attribute.
            covered = data[:2] + (value_end - _HEADER_BYTES).to_bytes(2, "big") + data[4:position]
            expected = hmac.digest(key, covered, "sha1")
            return hmac.compare_digest(expected, data[position + 4 : value_end])
        position += 4 + length + (-length & 3)  # values are padded to 4 bytes
    return False


def _check_transaction_id(transaction_id: bytes) -> None:
    # aioice would silently put a random transaction ID in place of an empty one.
    if len(transaction_id) != _TRANSACTION_ID_BYTES:
        raise LocalMediaError(
            f"STUN transaction ID must be {_TRANSACTION_ID_BYTES} bytes, got {len(transaction_id)}"
        )


def binding_success(transaction_id: bytes, mapped: tuple[str, int], key: bytes) -> bytes:
    """A Binding success response: XOR-MAPPED-ADDRESS ``mapped``, MESSAGE-INTEGRITY, FINGERPRINT.

    Raises:
        LocalMediaError: ``transaction_id`` is not 12 bytes or ``mapped`` is not an IP
            address literal and a port.
    """
    _check_transaction_id(transaction_id)
    host, port = mapped
    try:
        ipaddress.ip_address(host)
    except ValueError:
        raise LocalMediaError(f"XOR-MAPPED-ADDRESS: not an IP address: {host!r}") from None
    if not 0 <= port <= 0xFFFF:
        raise LocalMediaError(f"XOR-MAPPED-ADDRESS: port out of range: {port}")
    message = stun.Message(
        message_method=stun.Method.BINDING,
        message_class=stun.Class.RESPONSE,
        transaction_id=transaction_id,
        attributes={"XOR-MAPPED-ADDRESS": (host, port)},
    )
    message.add_message_integrity(key)  # adds FINGERPRINT after it
    return bytes(message)


def binding_error(transaction_id: bytes, code: int, reason: str, key: bytes | None) -> bytes:
    """A Binding error response: ERROR-CODE, then MESSAGE-INTEGRITY if ``key``, then FINGERPRINT.

    RFC 8489 section 9.1.3: when the credential checks fail (400, 401), "a server MUST NOT
    include a MESSAGE-INTEGRITY-SHA256, MESSAGE-INTEGRITY, or USERNAME attribute in the
    error response": pass no key then. An error to an authenticated request (487 Role
    Conflict) is signed with the key that authenticated it.

    Raises:
        LocalMediaError: ``transaction_id`` is not 12 bytes or ``code`` is not 300..699
            (RFC 8489 section 14.8).
    """
    _check_transaction_id(transaction_id)
    if not 300 <= code <= 699:
        raise LocalMediaError(f"STUN ERROR-CODE must be 300..699, got {code}")
    message = stun.Message(
        message_method=stun.Method.BINDING,
        message_class=stun.Class.ERROR,
        transaction_id=transaction_id,
        attributes={"ERROR-CODE": (code, reason)},
    )
    if key is None:
        message.add_fingerprint()
    else:
        message.add_message_integrity(key)
    return bytes(message)
