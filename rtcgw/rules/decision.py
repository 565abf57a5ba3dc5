"""What the rules engine decides about one request, as frozen values.

A ``Decision`` names the call agents and realms on both sides, whether the request is
answered at once (``reply``), whether its Request-URI is retargeted from the registration
cache, the effective settings of the other actions, and the ``trace`` of the rules that
made it, which ``reason()`` renders for logs and ctl.

Media settings are kept per leg: A-rules describe the leg toward the source call agent
(``source_media``: what is admitted from it and answered to it), C-rules the leg toward the
destination call agent (``destination_media``: what is offered to it). That is the
handbook's reading of force_rtp / force_srtp: in an A-rule they admit, in a C-rule they
convert. ``dialog_handling`` likewise applies per leg.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import final

from rtcgw.config import (
    Action,
    CallAgent,
    RegisterThrottling,
    Reply,
    RetargetFromCache,
    Route,
    SrtpKeying,
)

__all__ = ["Decision", "MediaPolicy", "RuleHit", "RuleKind", "describe_action"]


class RuleKind(enum.Enum):
    """Which list of its realm a rule comes from."""

    A = "a"  #: A-rules: requests coming from the realm's call agents
    C = "c"  #: C-rules: requests sent to the realm's call agents


@final
@dataclass(frozen=True, slots=True)
class MediaPolicy:
    """The media actions in effect for one leg; the defaults are "no action"."""

    #: rtp_anchoring given: relay media through the gateway
    anchoring: bool = False
    #: rtp_anchoring's offer_ice (answer ICE as an ICE-lite agent)
    offer_ice: bool = False
    #: rtp_anchoring's offer_rtcp_feedback (AVPF profile)
    offer_rtcp_feedback: bool = False
    #: force_rtp given (and not overridden by a later force_srtp)
    force_rtp: bool = False
    #: force_srtp's keying (None when force_srtp is not in effect)
    force_srtp: SrtpKeying | None = None
    #: codec_whitelist's codecs, None when not given
    codec_whitelist: tuple[str, ...] | None = None
    #: codec_blacklist's codecs, None when not given
    codec_blacklist: tuple[str, ...] | None = None
    strip_video: bool = False


@final
@dataclass(frozen=True, slots=True)
class RuleHit:
    """One matching rule and the actions it contributed, in the order they applied.

    ``actions`` ends early only when the rule ended evaluation: at a ``reply``, or at a
    ``retarget_from_cache`` whose user is not registered (``offline`` is then True).
    """

    realm: str
    kind: RuleKind
    rule: str
    actions: tuple[Action, ...]
    offline: bool = False

    def __str__(self) -> str:
        shown = [describe_action(action) for action in self.actions]
        if self.offline and isinstance(self.actions[-1], RetargetFromCache):
            last = self.actions[-1]
            shown[-1] += f" (not registered: {last.offline_code} {last.offline_reason})"
        return f"{self.realm}/{self.kind.value}:{self.rule} -> {', '.join(shown)}"


def describe_action(action: Action) -> str:
    """An action in a few words: its name, and its target or answer where it has one."""
    if isinstance(action, Route):
        return f"route {action.destination}"
    if isinstance(action, Reply):
        return f"reply {action.code} {action.reason}"
    return action.ACTION


@final
@dataclass(frozen=True, slots=True)
class Decision:
    """The rules' verdict on one request.

    - ``source_agent`` None: no call agent of the interface holds the source address; no
      rule ran. The runtime rejects the request (403 Forbidden).
    - ``reply`` set: answer the request with this code and reason, forward nothing;
      ``destination_agent`` is then None.
    - ``destination_agent`` set (and no reply): forward to it, applying the rest.
    - neither: no rule routed the request; the runtime answers 404 Not Found.
    """

    source_agent: CallAgent | None = None
    destination_agent: CallAgent | None = None
    reply: tuple[int, str] | None = None
    #: the Request-URI must become the cached binding of its user
    retarget: bool = False
    source_media: MediaPolicy = field(default_factory=MediaPolicy)
    destination_media: MediaPolicy = field(default_factory=MediaPolicy)
    source_dialog_handling: bool = False
    destination_dialog_handling: bool = False
    register_caching: bool = False
    register_throttling: RegisterThrottling | None = None
    mediate_183_to_180: bool = False
    #: dtmf_info_to_browser given: RFC 4733 digits from the SIP side also go to the
    #: browser as SIP INFO
    dtmf_info_to_browser: bool = False
    trace: tuple[RuleHit, ...] = ()

    @property
    def source_realm(self) -> str | None:
        """The realm of the source call agent."""
        return None if self.source_agent is None else self.source_agent.realm

    @property
    def destination_realm(self) -> str | None:
        """The realm of the destination call agent."""
        return None if self.destination_agent is None else self.destination_agent.realm

    @property
    def forwarded(self) -> bool:
        """True when the request goes on to ``destination_agent``."""
        return self.destination_agent is not None and self.reply is None

    def reason(self) -> str:
        """One line for logs: the rules that matched and what they did, in order."""
        if self.source_agent is None:
            return "no call agent holds the source address"
        parts = [str(hit) for hit in self.trace]
        if not parts:
            parts.append(f"{self.source_agent.realm}/a: no rule matched")
        if self.reply is None and self.destination_agent is None:
            parts.append("not routed")
        return "; ".join(parts)
