"""Sans-IO rules engine: realms, call agents, A-rules and C-rules applied to requests.

``decide(rules, facts, registrations=...)`` turns the facts of one request (``RequestFacts``)
into a ``Decision``: the source and destination call agents, an immediate reply if any, and
the settings of the matching rules' actions, with the trace of rules that made it. It reads
no clock, opens no socket and logs nothing: the runtime logs ``Decision.reason()``.
See ``rtcgw.rules.engine`` for the evaluation order.
"""

from rtcgw.rules.decision import Decision, MediaPolicy, RuleHit, RuleKind, describe_action
from rtcgw.rules.engine import CompiledRules, Registrations, classify, decide, matches
from rtcgw.rules.facts import RequestFacts, ruri_parts

__all__ = [
    "CompiledRules",
    "Decision",
    "MediaPolicy",
    "Registrations",
    "RequestFacts",
    "RuleHit",
    "RuleKind",
    "classify",
    "decide",
    "describe_action",
    "matches",
    "ruri_parts",
]
