"""Fresh SIP identifiers: Via branches, From/To tags and Call-IDs, with a shard tag.

RFC 3261 asks for identifiers that are unique in space and time: a branch "MUST be unique
across space and time for all requests sent by the UA" (8.1.1.7), a tag needs "at least 32
bits of randomness" (19.3), and a Call-ID should be "cryptographically random" (8.1.1.4).
Randomness comes from ``secrets`` (no clock, no counter shared between workers).

Sharding (DESIGN.md section 1): identifiers minted by a worker may carry that worker's
shard number, so the supervisor can route replies and in-dialog requests on a leg the
worker created back to it. The forms are fixed and checked in full by ``shard_of``, so a
foreign identifier matches only if it has exactly our shape:

=========  ==================================  ===========================
identifier  with shard 3                        without shard
=========  ==================================  ===========================
branch     ``z9hG4bK-r3-<24 hex>``              ``z9hG4bK<24 hex>``
tag        ``<16 hex>-r3``                      ``<16 hex>``
Call-ID    ``r3-<24 hex>[@host]``               ``<24 hex>[@host]``
=========  ==================================  ===========================

Every branch starts with the RFC 3261 magic cookie ``z9hG4bK`` (8.1.1.7). The hex parts
carry 96 bits (branch, Call-ID) and 64 bits (tag) of randomness.
"""

from __future__ import annotations

import re
import secrets

from rtcgw.sip.errors import LocalProtocolError
from rtcgw.sip.headers import MAGIC_COOKIE

__all__ = ["new_branch", "new_call_id", "new_tag", "shard_of"]

_BRANCH_HEX = 24  # 96 bits
_TAG_HEX = 16  # 64 bits
_CALL_ID_HEX = 24  # 96 bits

# A shard number has at most 6 digits: a longer run is no shard of ours (and int() of a
# run over 4300 digits would raise ValueError on attacker-controlled input).
_SHARDED_BRANCH = re.compile(rf"{MAGIC_COOKIE}-r(\d{{1,6}})-[0-9a-f]{{{_BRANCH_HEX}}}")
_SHARDED_TAG = re.compile(rf"[0-9a-f]{{{_TAG_HEX}}}-r(\d{{1,6}})")
_SHARDED_CALL_ID = re.compile(rf"r(\d{{1,6}})-[0-9a-f]{{{_CALL_ID_HEX}}}(?:@.+)?")


_MAX_SHARD = 999_999  # six digits, as the patterns above read them


def _check_shard(shard: int | None) -> None:
    if shard is not None and not 0 <= shard <= _MAX_SHARD:
        raise LocalProtocolError(f"shard must be in 0..{_MAX_SHARD}, got {shard}")


def new_branch(shard: int | None = None) -> str:
    """A fresh Via branch with the magic cookie (RFC 3261 8.1.1.7).

    Args:
        shard: the minting worker's shard number, embedded as ``-r<shard>-``, or None.

    Raises:
        LocalProtocolError: for a negative shard.
    """
    _check_shard(shard)
    random_part = secrets.token_hex(_BRANCH_HEX // 2)
    if shard is None:
        return MAGIC_COOKIE + random_part
    return f"{MAGIC_COOKIE}-r{shard}-{random_part}"


def new_tag(shard: int | None = None) -> str:
    """A fresh From/To tag (RFC 3261 19.3), with ``-r<shard>`` appended when given.

    Raises:
        LocalProtocolError: for a negative shard.
    """
    _check_shard(shard)
    random_part = secrets.token_hex(_TAG_HEX // 2)
    return random_part if shard is None else f"{random_part}-r{shard}"


def new_call_id(domain_hint: str | None = None, shard: int | None = None) -> str:
    """A fresh Call-ID (RFC 3261 8.1.1.4), ``r<shard>-`` prefixed when a shard is given.

    Args:
        domain_hint: appended as ``@domain_hint`` (the RFC's ``word@word`` form); leave it
            None to avoid leaking a host name.
        shard: the minting worker's shard number, or None.

    Raises:
        LocalProtocolError: for a negative shard or an empty domain hint.
    """
    _check_shard(shard)
    if domain_hint is not None and not domain_hint:
        raise LocalProtocolError("a Call-ID domain hint must not be empty")
    random_part = secrets.token_hex(_CALL_ID_HEX // 2)
    local = random_part if shard is None else f"r{shard}-{random_part}"
    return local if domain_hint is None else f"{local}@{domain_hint}"


def shard_of(token: str) -> int | None:
    """The shard number embedded in a branch, tag or Call-ID minted here, else None.

    Only the exact forms of the module table match; anything else, including identifiers
    from other implementations, gives None (route by Call-ID hash instead).
    """
    for pattern in (_SHARDED_BRANCH, _SHARDED_TAG, _SHARDED_CALL_ID):
        match = pattern.fullmatch(token)
        if match is not None:
            return int(match.group(1))
    return None
