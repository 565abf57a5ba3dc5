"""The call and leg of each log line a worker writes (``rtcgw.observability.logging``).

The B2BUA's notices name the Call-ID of the message they concern, which on the callee's
leg is that leg's own Call-ID, not the call's. ``CallLegs`` learns both Call-IDs of each
call from its ``CallStarted`` and tells, for any Call-ID, the call it belongs to and the
leg; ``notice_event`` turns a notice into its log event with those fields. No I/O, no
clock, no logging here: the runtime logs what these return.

A call's Call-IDs are kept for ``ENDED_KEPT`` calls after it ended, so the lines of its
last moments (a retransmitted BYE answered 481, a late answer dropped) still name it.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import fields, is_dataclass
from typing import final

from rtcgw.observability.logging import LEG_A, LEG_B, LEG_CALL
from rtcgw.sip.ids import shard_of
from rtcgw.worker.b2bua import (
    BindingReported,
    CallAnswered,
    CallEnded,
    CallStarted,
    MediaRefused,
    Notice,
    RouteDecided,
)

__all__ = ["ENDED_KEPT", "CallLegs", "notice_event"]

#: How many ended calls' Call-IDs are remembered (two entries each): a bounded memory.
ENDED_KEPT = 1024

#: Notices about the call (or out-of-dialog request) as a whole, logged with leg "call".
_WHOLE_CALL = (CallStarted, CallAnswered, CallEnded, RouteDecided, MediaRefused)


@final
class CallLegs:
    """Which call and leg each Call-ID names, for the calls of one worker."""

    def __init__(self, *, ended_kept: int = ENDED_KEPT) -> None:
        self._active: dict[str, tuple[str, str]] = {}
        self._b_leg: dict[str, str] = {}
        self._ended: OrderedDict[str, tuple[str, str]] = OrderedDict()
        self._ended_kept = ended_kept

    def started(self, call_id: str, b_call_id: str) -> None:
        """A call began: ``call_id`` is its caller's leg, ``b_call_id`` its callee's."""
        self._active[call_id] = (call_id, LEG_A)
        self._active[b_call_id] = (call_id, LEG_B)
        self._b_leg[call_id] = b_call_id

    def ended(self, call_id: str) -> None:
        """The call ended: keep its Call-IDs among the last ``ended_kept`` calls'."""
        b_call_id = self._b_leg.pop(call_id, None)
        for leg_call_id in (call_id, b_call_id):
            if leg_call_id is None or leg_call_id not in self._active:
                continue
            self._ended[leg_call_id] = self._active.pop(leg_call_id)
            self._ended.move_to_end(leg_call_id)
        while len(self._ended) > 2 * self._ended_kept:
            self._ended.popitem(last=False)

    def resolve(self, leg_call_id: str) -> tuple[str, str]:
        """The call's Call-ID and the leg that ``leg_call_id`` names.

        A Call-ID of no call known here is its own call's: the callee's leg when the
        gateway minted it (a request it sent, such as an upstream REGISTER), else the
        caller's (a request it received).
        """
        found = self._active.get(leg_call_id) or self._ended.get(leg_call_id)
        if found is not None:
            return found
        return leg_call_id, LEG_B if shard_of(leg_call_id) is not None else LEG_A

    def note(self, notice: Notice) -> None:
        """Learn a call's start or end from its notice (other notices change nothing)."""
        if isinstance(notice, CallStarted):
            self.started(notice.call_id, notice.b_call_id)
        elif isinstance(notice, CallEnded):
            self.ended(notice.call_id)

    def fields(self, leg_call_id: str) -> dict[str, object]:
        """``call_id`` and ``leg`` for a line about the leg named ``leg_call_id``, and
        ``leg_call_id`` when that is not the call's own."""
        call_id, leg = self.resolve(leg_call_id)
        found: dict[str, object] = {"call_id": call_id, "leg": leg}
        if call_id != leg_call_id:
            found["leg_call_id"] = leg_call_id
        return found

    def __len__(self) -> int:
        return len(self._active) + len(self._ended)


def notice_event(notice: Notice, legs: CallLegs) -> tuple[str, dict[str, object]]:
    """A B2BUA notice as ``b2bua.<snake_case_name>`` and its fields, with the call and
    leg it concerns; ``legs.note(notice)`` comes after, so a call's last lines still find
    it among the calls in progress."""
    name = type(notice).__name__
    event = "b2bua." + "".join("_" + c.lower() if c.isupper() else c for c in name).lstrip("_")
    values: dict[str, object] = {}
    if isinstance(notice, BindingReported):
        binding = notice.binding
        values = {
            "call_id": binding.call_id,
            "aor": binding.aor,
            "contact": binding.contact,
            "alias": binding.alias,
            "connection_id": binding.connection_id,
            "removed": notice.removed,
            "reason": notice.reason,
        }
    elif is_dataclass(notice):
        for f in fields(notice):
            value = getattr(notice, f.name)
            values[f.name] = value.value if hasattr(value, "value") else value
    call_id = values.get("call_id")
    if isinstance(notice, _WHOLE_CALL):
        values["leg"] = LEG_CALL
    elif isinstance(call_id, str):
        values.update(legs.fields(call_id))
    return event, values
