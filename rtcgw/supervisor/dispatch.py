"""Which worker gets a SIP message (DESIGN.md section 1, "Sharding").

The supervisor reads only two things from a message's raw bytes: its Call-ID and, for a
response, the branch of its top Via. No full parse: the worker parses the message, and a
message the supervisor cannot route gets a 400 (if the runtime can form one) or is dropped.

The rule, for N workers (``Dispatcher.route``):

1. No Call-ID: not routable (``RouteReason.NO_CALL_ID``).
2. The Call-ID carries a shard tag ``r<k>`` (``rtcgw.sip.ids.shard_of``) with k < N:
   worker k.
3. The message is a response and its top Via branch carries a shard tag k < N: worker k.
4. Otherwise worker ``zlib.crc32(Call-ID) % N``.

Why this sends every message of a call to the worker that holds it:

- **A client's A-leg** (a browser's INVITE, a PBX's INVITE toward a browser): the Call-ID
  is the client's own, untagged, so rule 4 applies. Every later message of that leg, both
  requests and responses, carries the same Call-ID (RFC 3261 section 8.1.1.4: "all
  requests and responses sent by either UA in a dialog" share it), so all of them hash to
  the same worker.
- **CANCEL and ACK** carry the Call-ID of the INVITE they refer to (RFC 3261 sections
  9.1 and 17.1.1.3; the ACK for a 2xx too, section 13.2.2.4), so they follow it by
  rule 2 or rule 4, whichever routed the INVITE.
- **The B-leg a worker created**: the worker mints a new Call-ID with its shard tag
  (``new_call_id(shard=k)``), so the far end's responses and its in-dialog requests
  (re-INVITE, BYE) come back to k by rule 2, whatever N's crc32 would say.
- **Responses to requests a worker sent on a leg it did not create** (a BYE or re-INVITE
  toward the browser on the A-leg, an OPTIONS keep-alive): the Call-ID is foreign, but
  the top Via is the worker's own, with a branch minted as ``new_branch(shard=k)``; a
  response carries the request's Via unchanged (RFC 3261 section 8.2.6.2), so rule 3
  finds k. Rule 3 is for responses only: the top Via of a request is the sender's.
- **A foreign Call-ID that happens to look sharded** (``r7-<24 hex>`` with N = 4, or a
  worker count that shrank) fails the ``k < N`` test in rule 2 and 3 and falls through to
  rule 4, which is still the same answer for every message of that call.

What it does not cover: changing N remaps every untagged Call-ID (rule 4), so an A-leg
that outlives a change of the worker count loses its in-dialog requests from the client;
responses to requests the worker sent still find it through rule 3.

No I/O, no clock; every function here returns an answer for any bytes and never raises.
"""

from __future__ import annotations

import enum
import re
import zlib
from dataclasses import dataclass
from typing import Final

from rtcgw.sip.ids import shard_of

__all__ = ["Dispatcher", "Route", "RouteReason", "find_call_id", "find_top_via_branch"]

#: Identifiers we mint are short (ids.py); a longer token is foreign and is not handed to
#: ``shard_of``, whose ``int()`` would refuse a digit run above Python's 4300-digit limit.
_MAX_SHARDED_TOKEN_BYTES: Final = 1024

_LEADING_LINE_ENDS = re.compile(rb"[\r\n]*")
#: The empty line that ends the header section, searched from the start line's LF.
_BLANK_LINE = re.compile(rb"\n\r?\n")
#: A header's value runs to the end of its line, plus any continuation lines
#: (RFC 3261 section 7.3.1: a line starting with SP or HTAB continues the previous one).
_VALUE = rb"[ \t]*:((?:[^\r\n]|\r?\n[ \t])*)"
#: RFC 3261 section 7.3.3 compact forms: ``i`` is Call-ID, ``v`` is Via. Names are
#: case-insensitive (section 7.3.1).
_CALL_ID = re.compile(rb"^(?:call-id|i)" + _VALUE, re.IGNORECASE | re.MULTILINE)
_VIA = re.compile(rb"^(?:via|v)" + _VALUE, re.IGNORECASE | re.MULTILINE)
_FOLD = re.compile(rb"[ \t]*\r?\n[ \t]+")
#: The first via-parm of a Via value: up to the first comma outside a quoted string.
_FIRST_VIA_PARM = re.compile(rb'(?:[^,"]|"(?:[^"\\]|\\.)*")*')
_QUOTED = re.compile(rb'"(?:[^"\\]|\\.)*"')
_BRANCH = re.compile(rb';[ \t]*branch[ \t]*=[ \t]*([^ \t;,"]+)', re.IGNORECASE)


def _header_section(data: bytes) -> tuple[int, int]:
    """Where the header lines are: from after the start line to before the empty line.

    Line ends before the start line are skipped (RFC 3261 section 7.5). Without an empty
    line (a cut datagram) the section runs to the end of ``data``; without a start line
    it is empty.
    """
    first = _LEADING_LINE_ENDS.match(data)
    start = first.end() if first is not None else 0
    start_line_end = data.find(b"\n", start)
    if start_line_end < 0:
        return 0, 0
    blank = _BLANK_LINE.search(data, start_line_end)
    return start_line_end + 1, len(data) if blank is None else blank.start()


def _header_value(pattern: re.Pattern[bytes], data: bytes, section: tuple[int, int]) -> bytes:
    """The unfolded, trimmed value of the first header ``pattern`` matches, or b""."""
    match = pattern.search(data, *section)
    if match is None:
        return b""
    value = match.group(1)
    if b"\n" in value:
        value = _FOLD.sub(b" ", value)
    return value.strip(b" \t")


def _call_id(data: bytes, section: tuple[int, int]) -> bytes | None:
    return _header_value(_CALL_ID, data, section) or None


def _top_via_branch(data: bytes, section: tuple[int, int]) -> bytes | None:
    via = _header_value(_VIA, data, section)
    first = _FIRST_VIA_PARM.match(via)
    if first is None:
        return None
    parm = first.group()
    if b'"' in parm:
        parm = _QUOTED.sub(b'""', parm)  # a quoted value may hold ";branch=" itself
    branch = _BRANCH.search(parm)
    return None if branch is None else branch.group(1)


def find_call_id(data: bytes) -> bytes | None:
    """The value of the first Call-ID (or ``i``) header of a raw SIP message.

    Only the header section is searched; the value is unfolded and trimmed of blanks.

    Returns:
        The Call-ID bytes, or None if there is none (or it is empty). Never raises.
    """
    return _call_id(data, _header_section(data))


def find_top_via_branch(data: bytes) -> bytes | None:
    """The branch parameter of the first via-parm of the first Via (or ``v``) header.

    If the first Via line lists several via-parms, only the first counts; if it has no
    branch, later Vias are not consulted (they belong to other hops).

    Returns:
        The branch bytes, or None. Never raises.
    """
    return _top_via_branch(data, _header_section(data))


def _shard(token: bytes) -> int | None:
    if len(token) > _MAX_SHARDED_TOKEN_BYTES:
        return None
    # latin-1 maps every byte to one character, so this cannot fail; a non-ASCII token
    # simply does not match ids.py's forms.
    return shard_of(token.decode("latin-1"))


class RouteReason(enum.Enum):
    """Which rule of the module docstring chose the worker (a bounded metric label)."""

    NO_CALL_ID = "no_call_id"  #: rule 1: no Call-ID, cannot route
    CALL_ID_SHARD = "call_id_shard"  #: rule 2: a Call-ID a worker minted
    VIA_BRANCH_SHARD = "via_branch_shard"  #: rule 3: a response to a worker's request
    CALL_ID_HASH = "call_id_hash"  #: rule 4: crc32 of the Call-ID


@dataclass(frozen=True, slots=True)
class Route:
    """Where a message goes, why, and the Call-ID that decided it (for logs)."""

    worker: int | None  #: the worker index, or None for ``RouteReason.NO_CALL_ID``
    reason: RouteReason
    call_id: bytes | None


class Dispatcher:
    """Maps raw SIP messages to worker indexes for ``worker_count`` workers.

    Raises:
        ValueError: for a ``worker_count`` below 1.
    """

    __slots__ = ("worker_count",)

    def __init__(self, worker_count: int) -> None:
        if worker_count < 1:
            raise ValueError(f"worker_count must be at least 1, got {worker_count}")
        self.worker_count = worker_count

    def route(self, data: bytes) -> Route:
        """The worker for ``data`` and the rule that chose it. Never raises."""
        section = _header_section(data)
        call_id = _call_id(data, section)
        if call_id is None:
            return Route(None, RouteReason.NO_CALL_ID, None)
        shard = _shard(call_id)
        if shard is not None and shard < self.worker_count:
            return Route(shard, RouteReason.CALL_ID_SHARD, call_id)
        if _is_response(data):
            branch = _top_via_branch(data, section)
            shard = None if branch is None else _shard(branch)
            if shard is not None and shard < self.worker_count:
                return Route(shard, RouteReason.VIA_BRANCH_SHARD, call_id)
        return Route(zlib.crc32(call_id) % self.worker_count, RouteReason.CALL_ID_HASH, call_id)

    def worker_for(self, data: bytes) -> int | None:
        """The worker index for ``data``, or None if it has no Call-ID. Never raises."""
        return self.route(data).worker


def _is_response(data: bytes) -> bool:
    """True if the start line is a status line (RFC 3261 section 7.2).

    "The SIP-Version string is case-insensitive" (section 7.1), hence the ``upper()``.
    """
    first = _LEADING_LINE_ENDS.match(data)
    start = first.end() if first is not None else 0
    return data[start : start + 4].upper() == b"SIP/"
