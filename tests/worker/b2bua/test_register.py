"""REGISTER from WebSocket clients: alias, challenge, cache, throttling, removal, bad input.

The harness rules cache REGISTERs from the browsers' realm and throttle them with a client
expiry of 60 s and an upstream expiry of 3600 s.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace

import pytest

from rtcgw.config import GatewayConfig, load_config_text
from rtcgw.registrations import Binding, BindingKey, alias_user_for, binding_key
from rtcgw.sip.events import Outgoing
from rtcgw.sip.ids import new_call_id, shard_of
from rtcgw.sip.message import Request, Response
from rtcgw.sip.parse import parse_message
from rtcgw.sip.transport import Peer, Transport
from rtcgw.worker.b2bua import (
    BindingReported,
    MessageDropped,
    RegisterHandled,
    RegisterOutcome,
    RequestRejected,
)
from tests.worker.b2bua.harness import (
    BROWSER,
    BROWSER_CONTACT,
    CONFIG_TEXT,
    GW_SIP,
    PBX,
    SHARD,
    Gateway,
    answer,
    browser_request,
    header,
    pbx_request,
)

AOR = "bob@pbx.example.org"
TO = f"Bob <sip:{AOR}>"
REGISTRAR_URI = "sip:pbx.example.org"
INSTANCE = '"<urn:uuid:1>"'
#: What JsSIP sends: its flow identity and a long expiry of its own.
CONTACT = f"<{BROWSER_CONTACT}>;reg-id=1;+sip.instance={INSTANCE};expires=600"
KEY: BindingKey = binding_key(AOR, BROWSER_CONTACT, INSTANCE, 1)
ALIAS = f"sip:{alias_user_for('bob', KEY)}@{GW_SIP.host}:{GW_SIP.port}"
CLIENT_EXPIRES_S = 60
UPSTREAM_EXPIRES_S = 3600
#: Another WebSocket connection (another tab, or the same browser after a reconnect).
OTHER_BROWSER = Peer(Transport.WSS, "203.0.113.6", 50001, connection_id=8)
CHALLENGE = ("WWW-Authenticate", 'Digest realm="pbx", nonce="n1"')
CREDENTIALS = 'Digest username="bob", realm="pbx", nonce="n1", response="abc"'


def register(
    *,
    call_id: str = "reg-1",
    cseq: int = 1,
    contacts: Iterable[str] = (CONTACT,),
    extra: Iterable[tuple[str, str]] = (),
) -> Request:
    """A REGISTER of ``bob@pbx.example.org`` as JsSIP sends it over its WebSocket."""
    request = browser_request(
        "REGISTER",
        uri=REGISTRAR_URI,
        contact=None,
        call_id=call_id,
        cseq=cseq,
        extra=[*(("Contact", c) for c in contacts), *extra],
    )
    return request.with_header_replaced("To", TO).with_header_replaced("From", f"{TO};tag=js-1")


def registrar_ok(
    upstream: Request, aliases: Iterable[str] = (ALIAS,), expires: int = UPSTREAM_EXPIRES_S
) -> Response:
    """The registrar's 200, listing the given aliases with ``expires``."""
    extra = tuple(("Contact", f"<{alias}>;expires={expires}") for alias in aliases)
    return answer(upstream, 200, contact=None, extra=extra)


def registered(gw: Gateway, source: Peer = BROWSER, request: Request | None = None) -> Request:
    """Register through the gateway (the registrar accepts at once); the upstream REGISTER."""
    upstream = gw.send(request or register(), source).one_request(PBX, "REGISTER")
    alias = str(upstream.contacts[0].uri)
    [ok] = gw.from_pbx(registrar_ok(upstream, (alias,))).responses_to(source)
    assert ok.status == 200
    return upstream


def outcomes(gw: Gateway) -> list[RegisterOutcome]:
    return [n.outcome for n in gw.of_type(RegisterHandled) if isinstance(n, RegisterHandled)]


def reports(gw: Gateway) -> list[BindingReported]:
    return [n for n in gw.of_type(BindingReported) if isinstance(n, BindingReported)]


def contact_list(response: Response) -> list[tuple[str, str | None]]:
    return [(str(c.uri), c.param("expires")) for c in response.contacts]


def parsed_request(outgoing: Outgoing) -> Request:
    message = parse_message(outgoing.data)
    assert isinstance(message, Request)
    return message


def cached(gw: Gateway, key: BindingKey = KEY) -> Binding:
    binding = gw.core.registrations.get(key)
    assert binding is not None, f"{key} not cached"
    return binding


# -- first registration --------------------------------------------------------------------


def test_register_is_relayed_with_an_alias_and_mapped_back() -> None:
    gw = Gateway()
    first = register(extra=[("Supported", "path, gruu, outbound"), ("Expires", "600")])
    sent = gw.from_browser(first)
    pbx_reg = sent.one_request(PBX, "REGISTER")
    assert sent.responses_to(BROWSER) == []
    assert b".invalid" not in sent.raw_to(PBX)
    assert str(pbx_reg.uri) == REGISTRAR_URI
    assert pbx_reg.values("Contact") == [f"<{ALIAS}>;expires={UPSTREAM_EXPIRES_S}"]
    assert "reg-id" not in header(pbx_reg, "Contact")
    assert "+sip.instance" not in header(pbx_reg, "Contact")
    assert not pbx_reg.has("Expires")
    assert pbx_reg.option_tags("Supported") & {"path", "gruu", "outbound"} == set()
    assert pbx_reg.call_id != "reg-1" and shard_of(pbx_reg.call_id) == SHARD
    assert pbx_reg.from_tag != "js-1"
    assert pbx_reg.to.sip_uri is not None and str(pbx_reg.to.sip_uri) == f"sip:{AOR}"
    assert [v.host for v in pbx_reg.vias] == [GW_SIP.host]
    assert outcomes(gw) == [RegisterOutcome.FORWARDED]

    challenged = gw.from_pbx(answer(pbx_reg, 401, contact=None, extra=(CHALLENGE,)))
    [r401] = challenged.responses_to(BROWSER)
    assert r401.status == 401 and header(r401, "WWW-Authenticate") == CHALLENGE[1]
    assert r401.call_id == "reg-1" and r401.cseq.seq == 1
    assert reports(gw) == [] and len(gw.core.registrations) == 0

    retry = register(cseq=2, extra=[("Authorization", CREDENTIALS)])
    pbx_retry = gw.from_browser(retry).one_request(PBX, "REGISTER")
    assert pbx_retry.call_id == pbx_reg.call_id and pbx_retry.from_tag == pbx_reg.from_tag
    assert pbx_retry.cseq.seq == pbx_reg.cseq.seq + 1
    assert header(pbx_retry, "Authorization") == CREDENTIALS
    assert pbx_retry.values("Contact") == [f"<{ALIAS}>;expires={UPSTREAM_EXPIRES_S}"]
    assert outcomes(gw) == [RegisterOutcome.FORWARDED] * 2

    gw.now = 5.0
    [r200] = gw.from_pbx(registrar_ok(pbx_retry)).responses_to(BROWSER)
    assert r200.status == 200 and r200.call_id == "reg-1" and r200.cseq.seq == 2
    assert contact_list(r200) == [(BROWSER_CONTACT, str(CLIENT_EXPIRES_S))]
    assert not r200.has("Expires")

    [report] = reports(gw)
    assert report.removed is False and report.reason == "registered"
    assert report.call_id == "reg-1"
    binding = report.binding
    assert binding.key == KEY
    assert (binding.aor, binding.user, binding.contact) == (AOR, "bob", BROWSER_CONTACT)
    assert (binding.instance, binding.reg_id, binding.call_id) == (INSTANCE, 1, "reg-1")
    assert binding.connection_id == 7 and binding.peer == BROWSER
    assert binding.alias == ALIAS and binding.alias_user == alias_user_for("bob", KEY)
    assert binding.client_expires_at == 5.0 + CLIENT_EXPIRES_S
    assert binding.upstream_expires_at == 5.0 + UPSTREAM_EXPIRES_S
    assert binding.upstream_call_id == pbx_reg.call_id
    assert binding.upstream_from_tag == pbx_reg.from_tag
    assert binding.upstream_cseq == pbx_retry.cseq.seq
    assert binding.registrar == PBX and binding.registrar_uri == REGISTRAR_URI
    assert cached(gw) == binding
    assert gw.core.registrations.lookup("bob") == binding
    assert gw.core.registrations.lookup(binding.alias_user) == binding


def test_a_registrar_that_grants_less_bounds_the_client_expiry() -> None:
    gw = Gateway()
    upstream = gw.from_browser(register()).one_request(PBX, "REGISTER")
    [r200] = gw.from_pbx(registrar_ok(upstream, expires=30)).responses_to(BROWSER)
    assert contact_list(r200) == [(BROWSER_CONTACT, "30")]
    binding = cached(gw)
    assert (binding.client_expires_at, binding.upstream_expires_at) == (30.0, 30.0)


def test_a_failure_other_than_a_challenge_passes_through_and_caches_nothing() -> None:
    gw = Gateway()
    upstream = gw.from_browser(register()).one_request(PBX, "REGISTER")
    relayed = gw.from_pbx(answer(upstream, 403, contact=None))
    assert relayed.statuses_to(BROWSER) == [403]
    assert reports(gw) == [] and len(gw.core.registrations) == 0


# -- throttling ----------------------------------------------------------------------------


def test_an_hour_of_client_refreshes_reaches_the_registrar_twice() -> None:
    gw = Gateway()
    first = registered(gw)
    upstream_cseqs = [first.cseq.seq]
    forwarded_at = [gw.now]
    absorbed = 0
    cseq = 1
    while gw.now < 3600:
        gw.advance(CLIENT_EXPIRES_S)
        cseq += 1
        previous = cached(gw)
        sent = gw.from_browser(register(cseq=cseq))
        upstream = sent.requests_to(PBX, "REGISTER")
        if upstream:
            [refresh] = upstream
            # The registrar's binding is refreshed before it lapses.
            assert previous.upstream_expires_at > gw.now
            assert refresh.call_id == first.call_id and refresh.from_tag == first.from_tag
            assert refresh.values("Contact") == [f"<{ALIAS}>;expires={UPSTREAM_EXPIRES_S}"]
            upstream_cseqs.append(refresh.cseq.seq)
            forwarded_at.append(gw.now)
            replies = gw.from_pbx(registrar_ok(refresh)).responses_to(BROWSER)
        else:
            absorbed += 1
            replies = sent.responses_to(BROWSER)
        [reply] = replies
        assert reply.status == 200 and reply.cseq.seq == cseq
        assert contact_list(reply) == [(BROWSER_CONTACT, str(CLIENT_EXPIRES_S))]
        binding = cached(gw)
        assert binding.client_expires_at == gw.now + CLIENT_EXPIRES_S
        assert binding.upstream_expires_at > gw.now + 2 * CLIENT_EXPIRES_S

    # A refresh is absorbed while more than 2 * 60 s of the 3600 s upstream binding are
    # left: of the 60 refreshes (at 60 s, 120 s, ..., 3600 s), the one at 3480 s (120 s
    # left) goes upstream and the 59 others are answered here. The registrar sees the
    # initial REGISTER and that one refresh: 2 REGISTERs in the hour.
    assert gw.now == 3600
    assert forwarded_at == [0.0, 3480.0]
    assert upstream_cseqs == [1, 2]
    assert absorbed == 59
    forwarded = RegisterOutcome.FORWARDED
    absorbed_outcome = RegisterOutcome.ABSORBED
    assert outcomes(gw) == [forwarded, *[absorbed_outcome] * 57, forwarded, *[absorbed_outcome] * 2]
    assert cached(gw).upstream_expires_at == 3480.0 + UPSTREAM_EXPIRES_S
    assert cached(gw).upstream_cseq == 2
    refreshed = [r for r in reports(gw) if r.reason == "refreshed"]
    assert len(refreshed) == 60 and not any(r.removed for r in refreshed)


@pytest.mark.parametrize(
    ("source", "call_id", "contact"),
    [
        pytest.param(OTHER_BROWSER, "reg-1", CONTACT, id="another connection"),
        pytest.param(BROWSER, "reg-2", CONTACT, id="another Call-ID"),
        pytest.param(
            BROWSER,
            "reg-1",
            f"<sip:alice@other.invalid;transport=ws>;reg-id=1;+sip.instance={INSTANCE}",
            id="another Contact",
        ),
    ],
)
def test_a_refresh_that_does_not_match_the_cache_goes_upstream(
    source: Peer, call_id: str, contact: str
) -> None:
    gw = Gateway()
    first = registered(gw)
    gw.advance(CLIENT_EXPIRES_S)
    sent = gw.send(register(call_id=call_id, cseq=2, contacts=(contact,)), source)
    refresh = sent.one_request(PBX, "REGISTER")
    assert sent.responses_to(source) == []
    assert outcomes(gw) == [RegisterOutcome.FORWARDED] * 2
    # Same device, so the same alias and the registrar's binding keeps being updated.
    assert refresh.values("Contact") == [f"<{ALIAS}>;expires={UPSTREAM_EXPIRES_S}"]
    assert refresh.call_id == first.call_id and refresh.cseq.seq > first.cseq.seq
    [r200] = gw.from_pbx(registrar_ok(refresh)).responses_to(source)
    assert r200.status == 200
    binding = cached(gw)
    assert (binding.connection_id, binding.call_id) == (source.connection_id, call_id)
    assert binding.contact == str(register(contacts=(contact,)).contacts[0].uri)
    assert reports(gw)[-1].reason == "refreshed"


def test_a_refresh_without_a_cached_binding_goes_upstream() -> None:
    gw = Gateway()
    registered(gw)
    gw.core.registrations.remove(KEY, "expired")
    gw.advance(CLIENT_EXPIRES_S)
    sent = gw.from_browser(register(cseq=2))
    assert len(sent.requests_to(PBX, "REGISTER")) == 1
    assert outcomes(gw) == [RegisterOutcome.FORWARDED] * 2


# -- removal -------------------------------------------------------------------------------


def test_expires_zero_unregisters_the_alias_and_clears_the_binding() -> None:
    gw = Gateway()
    first = registered(gw)
    gw.advance(10)
    gone = f"<{BROWSER_CONTACT}>;reg-id=1;+sip.instance={INSTANCE};expires=0"
    sent = gw.from_browser(register(cseq=2, contacts=(gone,)))
    upstream = sent.one_request(PBX, "REGISTER")
    assert upstream.values("Contact") == [f"<{ALIAS}>;expires=0"]
    assert upstream.call_id == first.call_id and upstream.cseq.seq == first.cseq.seq + 1
    assert outcomes(gw) == [RegisterOutcome.FORWARDED] * 2
    assert cached(gw)  # still there until the registrar agrees
    [r200] = gw.from_pbx(answer(upstream, 200, contact=None)).responses_to(BROWSER)
    assert r200.status == 200 and r200.contacts == []
    report = reports(gw)[-1]
    assert (report.removed, report.reason, report.binding.key) == (True, "unregistered", KEY)
    assert KEY not in gw.core.registrations
    assert gw.core.registrations.lookup("bob") is None


def test_expires_header_zero_unregisters_too() -> None:
    gw = Gateway()
    registered(gw)
    plain = f"<{BROWSER_CONTACT}>;reg-id=1;+sip.instance={INSTANCE}"
    sent = gw.from_browser(register(cseq=2, contacts=(plain,), extra=[("Expires", "0")]))
    upstream = sent.one_request(PBX, "REGISTER")
    assert upstream.values("Contact") == [f"<{ALIAS}>;expires=0"]
    gw.from_pbx(answer(upstream, 200, contact=None))
    assert len(gw.core.registrations) == 0


def test_star_unregisters_every_alias_of_the_aor_on_that_connection() -> None:
    gw = Gateway()
    phone = "<sip:bob@phone.invalid;transport=ws>;expires=600"
    registered(gw)
    registered(gw, request=register(call_id="reg-2", contacts=(phone,)))
    phone_key = binding_key(AOR, "sip:bob@phone.invalid;transport=ws", None, None)
    elsewhere = "<sip:bob@tablet.invalid;transport=ws>"
    registered(gw, OTHER_BROWSER, register(call_id="reg-3", contacts=(elsewhere,)))
    tablet_key = binding_key(AOR, "sip:bob@tablet.invalid;transport=ws", None, None)
    aliases = [cached(gw).alias, cached(gw, phone_key).alias]
    assert len(set(aliases)) == 2

    star = register(call_id="reg-1", cseq=2, contacts=("*",), extra=[("Expires", "0")])
    sent = gw.from_browser(star)
    upstream = sent.one_request(PBX, "REGISTER")
    assert upstream.values("Contact") == [f"<{alias}>;expires=0" for alias in aliases]
    assert not upstream.has("Expires")
    assert sent.responses_to(BROWSER) == []
    [r200] = gw.from_pbx(answer(upstream, 200, contact=None)).responses_to(BROWSER)
    assert r200.status == 200
    # What is left of the AOR is listed: the binding over the other connection.
    assert [str(c.uri) for c in r200.contacts] == ["sip:bob@tablet.invalid;transport=ws"]
    removed = [(r.binding.key, r.reason) for r in reports(gw) if r.removed]
    assert removed == [(KEY, "unregistered"), (phone_key, "unregistered")]
    assert list(gw.core.registrations) == [cached(gw, tablet_key)]


def test_star_without_a_binding_is_answered_here() -> None:
    gw = Gateway()
    sent = gw.from_browser(register(contacts=("*",), extra=[("Expires", "0")]))
    assert sent.requests_to(PBX) == []
    [r200] = sent.responses_to(BROWSER)
    assert r200.status == 200 and r200.contacts == []
    assert reports(gw) == []


# -- bad input -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("contacts", "extra"),
    [
        pytest.param((CONTACT,), [("Expires", "abc")], id="Expires not a number"),
        pytest.param((f"<{BROWSER_CONTACT}>;expires=soon",), [], id="expires param"),
        pytest.param((f"<{BROWSER_CONTACT}>;expires=-1",), [], id="negative expires"),
        pytest.param(("*",), [("Expires", "60")], id="star with expiry"),
        pytest.param(("*",), [], id="star without Expires"),
        pytest.param(("*", f"<{BROWSER_CONTACT}>"), [("Expires", "0")], id="star and more"),
        pytest.param((CONTACT, "<sip:bob@phone.invalid>"), [], id="two contacts"),
        pytest.param(("<sip:",), [], id="malformed Contact"),
        pytest.param((f"<{BROWSER_CONTACT}>;reg-id=x",), [], id="reg-id not a number"),
    ],
)
def test_bad_register_gets_400_and_nothing_goes_upstream(
    contacts: tuple[str, ...], extra: list[tuple[str, str]]
) -> None:
    gw = Gateway()
    sent = gw.from_browser(register(contacts=contacts, extra=extra))
    assert sent.statuses_to(BROWSER) == [400]
    assert sent.to(PBX) == []
    rejected = [n for n in gw.of_type(RequestRejected) if isinstance(n, RequestRejected)]
    assert [(n.call_id, n.status) for n in rejected] == [("reg-1", 400)]
    # A Contact that does not parse is refused before the REGISTER logic counts anything.
    counted = [] if contacts == ("<sip:",) else [RegisterOutcome.REJECTED]
    assert outcomes(gw) == counted and reports(gw) == []


def test_register_from_the_sip_side_is_not_routed() -> None:
    gw = Gateway()
    request = pbx_request("REGISTER", uri=f"sip:{GW_SIP.host}", call_id="pbx-reg")
    sent = gw.from_pbx(request)
    assert sent.statuses_to(PBX) == [404]
    # Refused all the same: a flood of REGISTERs from the SIP side shows in the metric.
    assert sent.to(BROWSER) == [] and outcomes(gw) == [RegisterOutcome.REJECTED]


def _config_without_caching() -> GatewayConfig:
    """The harness rules with REGISTER routed to the PBX but not cached (and so nothing
    to retarget calls from the PBX to)."""
    return _config_with_register_actions(
        '{ action = "route", destination = "pbx" }', "no-caching.toml"
    )


def _config_with_register_actions(actions: str, source: str) -> GatewayConfig:
    """The harness rules with the browsers' REGISTER rule doing ``actions`` instead."""
    head, _, rest = CONFIG_TEXT.partition("[[realms.rtc.a_rules]]")
    _, _, tail = rest.partition("[[realms.rtc.a_rules]]")
    text = f"""{head}
[[realms.rtc.a_rules]]
name = "register_upstream"
when = {{ method = "REGISTER" }}
actions = [{actions}]

[[realms.rtc.a_rules]]{tail.partition("[[realms.pbx.a_rules]]")[0]}"""
    assert "register_caching" not in text and "retarget_from_cache" not in text
    return load_config_text(text, source=source)


def test_register_routed_without_caching_gets_403() -> None:
    gw = Gateway(config=_config_without_caching())
    sent = gw.from_browser(register())
    [r403] = sent.responses_to(BROWSER)
    assert r403.status == 403
    assert sent.to(PBX) == [] and outcomes(gw) == [RegisterOutcome.REJECTED]


def test_register_refused_by_a_rule_is_counted_as_rejected() -> None:
    actions = '{ action = "reply", code = 403, reason = "Not Here" }'
    gw = Gateway(config=_config_with_register_actions(actions, "reply.toml"))
    sent = gw.from_browser(register())
    assert sent.statuses_to(BROWSER) == [403]
    assert sent.to(PBX) == [] and outcomes(gw) == [RegisterOutcome.REJECTED]


def test_register_with_max_forwards_zero_gets_483() -> None:
    gw = Gateway()
    sent = gw.from_browser(register().with_header_replaced("Max-Forwards", "0"))
    assert sent.statuses_to(BROWSER) == [483]
    assert sent.to(PBX) == [] and outcomes(gw) == [RegisterOutcome.REJECTED]


# -- query ---------------------------------------------------------------------------------


def test_register_without_contact_lists_the_cached_bindings() -> None:
    gw = Gateway()
    registered(gw)
    gw.advance(20)
    sent = gw.from_browser(register(call_id="reg-q", contacts=()))
    assert sent.to(PBX) == []
    [r200] = sent.responses_to(BROWSER)
    assert r200.status == 200 and r200.call_id == "reg-q"
    assert contact_list(r200) == [(BROWSER_CONTACT, str(CLIENT_EXPIRES_S - 20))]
    assert outcomes(gw) == [RegisterOutcome.FORWARDED, RegisterOutcome.ABSORBED]
    assert cached(gw).client_expires_at == CLIENT_EXPIRES_S  # a query refreshes nothing


def test_query_of_an_aor_without_bindings_lists_none() -> None:
    gw = Gateway()
    [r200] = gw.from_browser(register(contacts=())).responses_to(BROWSER)
    assert r200.status == 200 and r200.contacts == []


# -- removal by the cache --------------------------------------------------------------------


def _challenged_registration(gw: Gateway) -> Request:
    """Register through a 401 and an authorized retry; the registrar's accepted REGISTER."""
    upstream = gw.from_browser(register()).one_request(PBX, "REGISTER")
    gw.from_pbx(answer(upstream, 401, contact=None, extra=(CHALLENGE,)))
    retry = register(cseq=2, extra=[("Authorization", CREDENTIALS)])
    accepted = gw.from_browser(retry).one_request(PBX, "REGISTER")
    gw.from_pbx(registrar_ok(accepted))
    return accepted


@pytest.mark.parametrize("reason", ["connection closed", "expired"])
def test_a_dropped_binding_is_unregistered_upstream(reason: str) -> None:
    gw = Gateway()
    accepted = _challenged_registration(gw)
    binding = cached(gw)
    gw.advance(30)
    gw.core.registrations.remove(binding.key, reason)
    out = gw.core.binding_removed(binding, reason, gw.now)
    [sent] = out.outgoing
    assert sent.destination == PBX
    unregister = parsed_request(sent)
    assert unregister.method == "REGISTER" and str(unregister.uri) == REGISTRAR_URI
    assert unregister.values("Contact") == [f"<{ALIAS}>;expires=0"]
    assert unregister.call_id == accepted.call_id
    assert unregister.from_tag == accepted.from_tag
    assert unregister.cseq.seq > accepted.cseq.seq
    assert header(unregister, "Authorization") == CREDENTIALS
    assert unregister.to.sip_uri is not None and str(unregister.to.sip_uri) == f"sip:{AOR}"
    assert b".invalid" not in sent.data

    accepted_again = gw.from_pbx(answer(unregister, 200, contact=None))
    assert accepted_again.outgoing == []
    assert gw.of_type(MessageDropped) == []


def test_a_refused_unregister_is_reported() -> None:
    gw = Gateway()
    registered(gw)
    binding = cached(gw)
    gw.core.registrations.remove(binding.key, "connection closed")
    out = gw.core.binding_removed(binding, "connection closed", gw.now)
    [sent] = out.outgoing
    unregister = parsed_request(sent)
    assert not unregister.has("Authorization")  # the client never sent any
    gw.from_pbx(answer(unregister, 401, contact=None, extra=(CHALLENGE,)))
    dropped = [n for n in gw.of_type(MessageDropped) if isinstance(n, MessageDropped)]
    assert [(n.reason, n.call_id) for n in dropped] == [("unregister_refused", unregister.call_id)]
    assert dropped[0].detail.startswith("401")


def test_a_binding_the_client_unregistered_is_not_unregistered_again() -> None:
    gw = Gateway()
    registered(gw)
    binding = cached(gw)
    out = gw.core.binding_removed(binding, "unregistered", gw.now)
    assert out.outgoing == ()


def test_a_binding_another_worker_registered_is_left_to_it() -> None:
    gw = Gateway()
    registered(gw)
    binding = cached(gw)
    other = replace(binding, upstream_call_id=new_call_id(shard=SHARD + 1))
    assert shard_of(other.upstream_call_id) == SHARD + 1
    out = gw.core.binding_removed(other, "connection closed", gw.now)
    assert out.outgoing == ()
    unsharded = replace(binding, upstream_call_id="someone-else@example.org")
    assert gw.core.binding_removed(unsharded, "expired", gw.now).outgoing == ()


def test_upstream_cseq_keeps_growing_when_the_client_goes_back_to_a_call_id() -> None:
    gw = Gateway()
    first = registered(gw)
    second = registered(gw, request=register(call_id="reg-2", cseq=1))
    third = registered(gw, request=register(call_id="reg-1", cseq=2))
    assert {first.call_id, second.call_id, third.call_id} == {first.call_id}
    assert [first.cseq.seq, second.cseq.seq, third.cseq.seq] == [1, 2, 3]
    assert cached(gw).upstream_cseq == 3
