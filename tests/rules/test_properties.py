"""Hypothesis properties of the engine over arbitrary facts."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv6Address

from hypothesis import given
from hypothesis import strategies as st

from rtcgw.rules import RequestFacts, classify, decide
from tests.rules.helpers import compile_text, rule

# Every condition kind appears, every action kind that a rules file may combine here too.
RULES = compile_text(
    rule(
        "rtc.a_rules",
        '{ action = "register_caching" }, { action = "route", destination = "pbx" }',
        name="reg",
        when='method = "REGISTER", header = { "User-Agent" = "JsSIP.*" }',
    ),
    rule(
        "rtc.a_rules",
        '{ action = "reply", code = 403, reason = "Forbidden" }',
        name="deny",
        when='ruri_user = "9.*", source = ["10.0.0.0/8", "2001:db8::/32"]',
    ),
    rule(
        "rtc.a_rules",
        '{ action = "rtp_anchoring" }, { action = "route", destination = "pbx" }',
        name="call",
        when='method = "INVITE", ruri_domain = "example\\\\.com", source_call_agent = "browsers"',
    ),
    rule(
        "pbx.a_rules",
        '{ action = "retarget_from_cache" }, { action = "route", destination = "browsers" }',
        name="in",
        when='method = "INVITE"',
    ),
    rule("pbx.c_rules", '{ action = "force_rtp" }, { action = "strip_video" }', name="c"),
    rule("rtc.c_rules", '{ action = "force_srtp" }, { action = "mediate_183_to_180" }', name="w"),
)

NO_MATCH = compile_text(
    rule("rtc.a_rules", '{ action = "route", destination = "pbx" }', when='method = "INVITE"')
)

text = st.text(max_size=20)
addresses = st.one_of(
    st.ip_addresses(v=4), st.ip_addresses(v=6), st.sampled_from([IPv4Address("192.0.2.10")])
)
request_facts = st.builds(
    RequestFacts,
    method=st.one_of(st.sampled_from(["INVITE", "REGISTER", "MESSAGE", "BYE"]), text),
    ruri_user=st.one_of(st.none(), text, st.sampled_from(["1000", "9123"])),
    ruri_host=st.one_of(st.none(), text, st.just("example.com")),
    headers=st.lists(
        st.tuples(st.one_of(text, st.just("user-agent")), st.one_of(text, st.just("JsSIP 3")))
    ).map(tuple),
    interface=st.one_of(st.sampled_from(["ws", "sip"]), text),
    source_address=addresses,
    source_port=st.integers(0, 65535),
)


@given(request_facts, st.one_of(st.none(), st.frozensets(text)))
def test_evaluation_never_raises_and_is_consistent(
    facts: RequestFacts, registered: frozenset[str] | None
) -> None:
    view = None if registered is None else registered.__contains__
    decision = decide(RULES, facts, registrations=view)
    assert isinstance(decision.reason(), str)
    if decision.source_agent is None:
        assert decision.trace == () and decision.reply is None
    if decision.reply is not None:
        assert decision.destination_agent is None and not decision.forwarded
    if decision.forwarded:
        assert decision.destination_agent is not None
    assert decide(RULES, facts, registrations=view) == decision  # a pure function


@given(request_facts.filter(lambda f: f.method != "INVITE"))
def test_a_request_matching_no_a_rule_has_no_destination_and_no_reply(
    facts: RequestFacts,
) -> None:
    decision = decide(NO_MATCH, facts)
    assert decision.trace == ()
    assert decision.destination_agent is None and decision.reply is None
    assert not decision.forwarded


@given(addresses)
def test_every_address_on_the_websocket_interface_is_a_browser(
    address: IPv4Address | IPv6Address,
) -> None:
    agent = classify(RULES, "ws", address)
    assert agent is not None and agent.name == "browsers"
