"""The registration cache: changes, indexes, lookups, expiry, listeners and replicas."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rtcgw.registrations import (
    Binding,
    BindingEvent,
    BindingKey,
    MemoryCache,
    RegistrationCache,
    alias_user_for,
    binding_key,
)
from tests.registrations.test_binding import make_binding


def device(n: int, *, aor: str = "alice@example.com", **changes: object) -> Binding:
    """Device ``n`` of ``aor``, with its own instance and the alias the gateway derives."""
    user = aor.partition("@")[0]
    instance = f'"<urn:uuid:00000000-0000-0000-0000-{n:012d}>"'
    key = binding_key(aor, "sip:x@y.invalid", instance, 1)
    fields: dict[str, object] = {
        "aor": aor,
        "user": user,
        "instance": instance,
        "reg_id": 1,
        "connection_id": n,
        "alias": f"sip:{alias_user_for(user, key)}@192.0.2.1:5060",
    }
    fields.update(changes)
    return make_binding(**fields)


def recorder(cache: MemoryCache) -> list[BindingEvent]:
    events: list[BindingEvent] = []
    cache.subscribe(events.append)
    return events


# -- put, get, replace ------------------------------------------------------------------------


def test_put_stores_and_notifies() -> None:
    cache = MemoryCache()
    events = recorder(cache)
    binding = device(1)
    event = cache.put(binding, "registered")
    assert event == BindingEvent(binding, removed=False, reason="registered")
    assert events == [event]
    assert cache.get(binding.key) == binding
    assert binding.key in cache
    assert ("alice@example.com", "nobody") not in cache
    assert len(cache) == 1
    assert list(cache) == [binding]


def test_put_with_an_existing_key_replaces_and_moves_every_index() -> None:
    cache = MemoryCache()
    old = device(1, connection_id=10)
    cache.put(old, "registered")
    moved = replace(
        old,
        connection_id=11,
        contact="sip:new@other.invalid;transport=ws",
        alias="sip:alice-ffffffffff@192.0.2.1:5060",
        client_expires_at=900.0,
    )
    assert moved.key == old.key
    events = recorder(cache)
    cache.put(moved, "refreshed")
    assert events == [BindingEvent(moved, removed=False, reason="refreshed")]
    assert len(cache) == 1
    assert cache.get(old.key) == moved
    assert cache.of_connection(10) == ()
    assert cache.of_connection(11) == (moved,)
    assert cache.lookup(old.alias_user) is None
    assert cache.lookup("alice-ffffffffff") == moved
    assert cache.lookup("alice") == moved
    assert cache.of_aor("alice@example.com") == (moved,)
    assert cache.next_expiry() == 900.0


def test_memory_cache_is_a_registration_cache() -> None:
    def register(cache: RegistrationCache, binding: Binding) -> Binding | None:
        cache.put(binding, "registered")
        return cache.lookup(binding.user)

    assert register(MemoryCache(), device(1)) == device(1)


# -- lookup -----------------------------------------------------------------------------------


def test_lookup_by_aor_user_picks_the_latest_refreshed_device() -> None:
    cache = MemoryCache()
    phone = device(1, client_expires_at=500.0)
    laptop = device(2, client_expires_at=800.0)
    cache.put(laptop, "registered")
    cache.put(phone, "registered")
    assert cache.lookup("alice") == laptop
    refreshed = replace(phone, client_expires_at=900.0)
    cache.put(refreshed, "refreshed")
    assert cache.lookup("alice") == refreshed


def test_lookup_by_alias_user_finds_that_exact_device() -> None:
    cache = MemoryCache()
    phone = device(1, client_expires_at=500.0)
    laptop = device(2, client_expires_at=800.0)
    cache.put(phone, "registered")
    cache.put(laptop, "registered")
    assert phone.alias_user != laptop.alias_user
    assert cache.lookup(phone.alias_user) == phone
    assert cache.lookup(laptop.alias_user) == laptop


def test_lookup_tie_goes_to_the_latest_put() -> None:
    cache = MemoryCache()
    first, second = device(1), device(2)
    cache.put(first, "registered")
    cache.put(second, "registered")
    assert cache.lookup("alice") == second
    cache.put(first, "refreshed")
    assert cache.lookup("alice") == first


def test_lookup_prefers_an_alias_user_over_an_aor_user() -> None:
    cache = MemoryCache()
    aliased = device(1, alias="sip:carol@192.0.2.1")
    carol = device(2, aor="carol@example.com", client_expires_at=9999.0)
    cache.put(carol, "registered")
    cache.put(aliased, "registered")
    assert cache.lookup("carol") == aliased


def test_lookup_unknown_user() -> None:
    cache = MemoryCache()
    cache.put(device(1), "registered")
    assert cache.lookup("bob") is None
    assert not cache.is_registered("bob")
    assert cache.is_registered("alice")
    assert cache.is_registered(device(1).alias_user)


def test_binding_without_alias_user_is_found_by_aor_user_only() -> None:
    cache = MemoryCache()
    binding = device(1, alias="sip:192.0.2.1:5060")
    cache.put(binding, "registered")
    assert cache.lookup("alice") == binding
    assert cache.lookup("") is None


# -- remove -----------------------------------------------------------------------------------


def test_remove() -> None:
    cache = MemoryCache()
    binding = device(1)
    cache.put(binding, "registered")
    events = recorder(cache)
    assert cache.remove(binding.key, "unregistered") == binding
    assert events == [BindingEvent(binding, removed=True, reason="unregistered")]
    assert len(cache) == 0
    assert cache.lookup("alice") is None
    assert cache.lookup(binding.alias_user) is None
    assert cache.of_connection(1) == ()
    assert cache.of_aor("alice@example.com") == ()
    assert cache.next_expiry() is None


def test_remove_unknown_key_is_silent() -> None:
    cache = MemoryCache()
    events = recorder(cache)
    assert cache.remove(("alice@example.com", "nothing"), "unregistered") is None
    assert events == []


def test_remove_connection_removes_only_its_bindings() -> None:
    cache = MemoryCache()
    a1 = device(1, connection_id=5)
    a2 = device(2, connection_id=5)
    b = device(3, aor="bob@example.com", connection_id=6)
    for binding in (a1, a2, b):
        cache.put(binding, "registered")
    assert cache.of_connection(5) == (a1, a2)
    events = recorder(cache)
    assert cache.remove_connection(5) == (a1, a2)
    assert events == [
        BindingEvent(a1, removed=True, reason="connection closed"),
        BindingEvent(a2, removed=True, reason="connection closed"),
    ]
    assert list(cache) == [b]
    assert cache.of_connection(5) == ()
    assert cache.remove_connection(5) == ()
    assert cache.lookup("alice") is None
    assert cache.lookup("bob") == b


def test_of_aor() -> None:
    cache = MemoryCache()
    a1, a2, b = device(1), device(2), device(3, aor="bob@example.com")
    for binding in (a1, b, a2):
        cache.put(binding, "registered")
    assert cache.of_aor("alice@example.com") == (a1, a2)
    assert cache.of_aor("bob@example.com") == (b,)
    assert cache.of_aor("carol@example.com") == ()


# -- expiry -----------------------------------------------------------------------------------


def test_expire_and_next_expiry() -> None:
    cache = MemoryCache()
    assert cache.next_expiry() is None
    early = device(1, client_expires_at=100.0)
    late = device(2, client_expires_at=300.0)
    middle = device(3, client_expires_at=200.0)
    for binding in (early, late, middle):
        cache.put(binding, "registered")
    assert cache.next_expiry() == 100.0
    events = recorder(cache)
    assert cache.expire(99.9) == ()
    assert cache.expire(200.0) == (early, middle)
    assert events == [
        BindingEvent(early, removed=True, reason="expired"),
        BindingEvent(middle, removed=True, reason="expired"),
    ]
    assert cache.next_expiry() == 300.0
    assert cache.expire(1000.0, reason="gone") == (late,)
    assert events[-1].reason == "gone"
    assert cache.next_expiry() is None
    assert len(cache) == 0


def test_refresh_outlives_its_old_expiry() -> None:
    cache = MemoryCache()
    binding = device(1, client_expires_at=100.0)
    cache.put(binding, "registered")
    refreshed = replace(binding, client_expires_at=200.0)
    cache.put(refreshed, "refreshed")
    assert cache.next_expiry() == 200.0
    assert cache.expire(150.0) == ()
    assert cache.get(binding.key) == refreshed


def test_removed_binding_does_not_expire_later() -> None:
    cache = MemoryCache()
    binding = device(1, client_expires_at=100.0)
    cache.put(binding, "registered")
    cache.remove(binding.key, "unregistered")
    cache.put(device(2, client_expires_at=500.0), "registered")
    assert cache.next_expiry() == 500.0
    assert cache.expire(200.0) == ()


def test_many_refreshes_keep_the_expiry_heap_bounded() -> None:
    cache = MemoryCache()
    binding = device(1)
    for n in range(1000):
        cache.put(replace(binding, client_expires_at=float(n)), "refreshed")
    # The memory bound the class promises: at most twice the cache plus the slack.
    assert len(cache._expiries) <= 2 * len(cache) + 64
    assert cache.next_expiry() == 999.0
    assert cache.expire(998.0) == ()
    assert cache.expire(999.0) == (replace(binding, client_expires_at=999.0),)


# -- listeners --------------------------------------------------------------------------------


def test_listeners_run_in_subscription_order_after_the_change() -> None:
    cache = MemoryCache()
    binding = device(1)
    calls: list[tuple[str, bool]] = []
    cache.subscribe(lambda e: calls.append(("first", binding.key in cache)))
    cache.subscribe(lambda e: calls.append(("second", binding.key in cache)))
    cache.put(binding, "registered")
    cache.remove(binding.key, "unregistered")
    assert calls == [("first", True), ("second", True), ("first", False), ("second", False)]


def test_unsubscribe() -> None:
    cache = MemoryCache()
    first: list[BindingEvent] = []
    second: list[BindingEvent] = []
    stop_first = cache.subscribe(first.append)
    cache.subscribe(second.append)
    cache.put(device(1), "registered")
    stop_first()
    stop_first()  # harmless twice
    cache.put(device(2), "registered")
    assert [e.binding for e in first] == [device(1)]
    assert [e.binding for e in second] == [device(1), device(2)]


def test_same_listener_twice_is_called_twice_and_stopped_separately() -> None:
    cache = MemoryCache()
    events: list[BindingEvent] = []
    stop = cache.subscribe(events.append)
    cache.subscribe(events.append)
    cache.put(device(1), "registered")
    assert len(events) == 2
    stop()
    cache.put(device(2), "registered")
    assert len(events) == 3


def test_a_failing_listener_leaves_the_change_done_and_the_others_called() -> None:
    cache = MemoryCache()
    after: list[BindingEvent] = []

    def broken(event: BindingEvent) -> None:
        raise RuntimeError("listener bug")

    cache.subscribe(broken)
    cache.subscribe(after.append)
    a1, a2 = device(1, connection_id=5), device(2, connection_id=5)
    with pytest.raises(RuntimeError, match="listener bug"):
        cache.put(a1, "registered")
    assert cache.get(a1.key) == a1
    assert cache.lookup("alice") == a1
    with pytest.raises(RuntimeError):
        cache.put(a2, "registered")
    # Removing a connection's bindings is done for all of them before the errors surface,
    # one per event here.
    with pytest.raises(ExceptionGroup) as caught:
        cache.remove_connection(5)
    assert len(caught.value.exceptions) == 2
    assert len(cache) == 0
    assert cache.lookup("alice") is None
    assert [(e.binding, e.removed) for e in after] == [
        (a1, False),
        (a2, False),
        (a1, True),
        (a2, True),
    ]


def test_several_failing_listeners_raise_an_exception_group() -> None:
    cache = MemoryCache()

    def broken(event: BindingEvent) -> None:
        raise ValueError(event.reason)

    cache.subscribe(broken)
    cache.subscribe(broken)
    with pytest.raises(ExceptionGroup) as caught:
        cache.put(device(1), "registered")
    assert [str(e) for e in caught.value.exceptions] == ["registered", "registered"]
    assert len(cache) == 1


# -- replicas ---------------------------------------------------------------------------------


def test_apply_mirrors_the_owner_and_passes_the_same_events_on() -> None:
    owner, replica = MemoryCache(), MemoryCache()
    owner.subscribe(replica.apply)
    seen = recorder(replica)
    a1 = device(1, client_expires_at=100.0)
    a2 = device(2, connection_id=9)
    put = owner.put(a1, "registered")
    owner.put(a2, "registered")
    owner.remove_connection(9)
    owner.expire(100.0)
    assert len(replica) == 0
    assert seen[0] is put
    assert [(e.binding, e.removed, e.reason) for e in seen] == [
        (a1, False, "registered"),
        (a2, False, "registered"),
        (a2, True, "connection closed"),
        (a1, True, "expired"),
    ]


def test_apply_of_an_unknown_removal_still_reaches_the_listeners() -> None:
    replica = MemoryCache()
    seen = recorder(replica)
    event = BindingEvent(device(1), removed=True, reason="connection closed")
    replica.apply(event)
    assert seen == [event]
    assert len(replica) == 0


def test_apply_put_indexes_like_put() -> None:
    replica = MemoryCache()
    binding = device(1)
    replica.apply(BindingEvent(binding, removed=False, reason="registered"))
    assert replica.lookup("alice") == binding
    assert replica.lookup(binding.alias_user) == binding
    assert replica.of_connection(1) == (binding,)
    assert replica.next_expiry() == binding.client_expires_at


# -- property: the indexes agree with a plain dict --------------------------------------------

AORS = ("alice@example.com", "bob@example.com", "alice@example.org")
CONTACTS = ("sip:c1@a.invalid;transport=ws", "sip:c2@b.invalid;transport=ws")
INSTANCES = (None, '"<urn:uuid:1>"', '"<urn:uuid:2>"')
FIXED_ALIASES = ("sip:shared@192.0.2.1", "sip:bob@192.0.2.1", "sip:192.0.2.1")


@st.composite
def bindings(draw: st.DrawFn) -> Binding:
    aor = draw(st.sampled_from(AORS))
    user = aor.partition("@")[0]
    contact = draw(st.sampled_from(CONTACTS))
    instance = draw(st.sampled_from(INSTANCES))
    reg_id = draw(st.sampled_from((None, 1)))
    key = binding_key(aor, contact, instance, reg_id)
    derived = f"sip:{alias_user_for(user, key)}@192.0.2.1"
    return make_binding(
        aor=aor,
        user=user,
        contact=contact,
        instance=instance,
        reg_id=reg_id,
        connection_id=draw(st.integers(1, 3)),
        alias=draw(st.sampled_from((derived, *FIXED_ALIASES))),
        client_expires_at=float(draw(st.integers(0, 20))),
    )


keys = st.builds(
    binding_key,
    st.sampled_from(AORS),
    st.sampled_from(CONTACTS),
    st.sampled_from(INSTANCES),
    st.sampled_from((None, 1)),
)
operations = st.one_of(
    st.tuples(st.just("put"), bindings()),
    st.tuples(st.just("remove"), keys),
    st.tuples(st.just("remove_connection"), st.integers(1, 3)),
    st.tuples(st.just("expire"), st.integers(0, 20).map(float)),
)


def _expected_lookup(model: dict[BindingKey, Binding], user: str) -> Binding | None:
    candidates = [b for b in model.values() if user and b.alias_user == user] or [
        b for b in model.values() if b.user == user
    ]
    latest: Binding | None = None
    for binding in candidates:  # model order is the order of the latest puts
        if latest is None or binding.client_expires_at >= latest.client_expires_at:
            latest = binding
    return latest


def _check(cache: MemoryCache, model: dict[BindingKey, Binding], users: set[str]) -> None:
    assert len(cache) == len(model)
    assert list(cache) == list(model.values())
    for key, binding in model.items():
        assert key in cache
        assert cache.get(key) == binding
    for user in users:
        expected = _expected_lookup(model, user)
        assert cache.lookup(user) == expected
        assert cache.is_registered(user) == (expected is not None)
    for connection_id in (1, 2, 3):
        assert cache.of_connection(connection_id) == tuple(
            b for b in model.values() if b.connection_id == connection_id
        )
    for aor in AORS:
        assert cache.of_aor(aor) == tuple(b for b in model.values() if b.aor == aor)
    expiries = [b.client_expires_at for b in model.values()]
    assert cache.next_expiry() == (min(expiries) if expiries else None)


@settings(max_examples=300)
@given(st.lists(operations, max_size=60))
def test_indexes_agree_with_a_plain_dict(ops: list[tuple[str, object]]) -> None:
    cache, replica = MemoryCache(), MemoryCache()
    cache.subscribe(replica.apply)
    events = recorder(cache)
    model: dict[BindingKey, Binding] = {}
    users = {"alice", "bob", "shared", "", "nobody"}
    for op, arg in ops:
        events.clear()
        if op == "put":
            assert isinstance(arg, Binding)
            model.pop(arg.key, None)
            model[arg.key] = arg
            users.add(arg.alias_user)
            cache.put(arg, "registered")
            expected = [BindingEvent(arg, removed=False, reason="registered")]
        elif op == "remove":
            assert isinstance(arg, tuple)
            gone = model.pop(arg, None)
            assert cache.remove(arg, "unregistered") == gone
            expected = [] if gone is None else [BindingEvent(gone, True, "unregistered")]
        elif op == "remove_connection":
            assert isinstance(arg, int)
            doomed = [b for b in model.values() if b.connection_id == arg]
            for binding in doomed:
                del model[binding.key]
            assert cache.remove_connection(arg) == tuple(doomed)
            expected = [BindingEvent(b, True, "connection closed") for b in doomed]
        else:
            assert isinstance(arg, float)
            doomed = sorted(
                (b for b in model.values() if b.client_expires_at <= arg),
                key=lambda b: b.client_expires_at,
            )
            for binding in doomed:
                del model[binding.key]
            assert cache.expire(arg) == tuple(doomed)
            expected = [BindingEvent(b, True, "expired") for b in doomed]
        assert events == expected
        _check(cache, model, users)
        _check(replica, model, users)
