"""Binding keys, aliases, peers and clock shifts."""

from __future__ import annotations

import hashlib
from dataclasses import replace
from typing import Any

import pytest

from rtcgw.registrations import Binding, alias_user_for, binding_key
from rtcgw.sip.transport import Peer, Transport
from rtcgw.sip.uri import SipUri, parse_uri

INSTANCE = '"<urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6>"'


def make_binding(**changes: Any) -> Binding:
    """A browser's binding of alice@example.com; ``changes`` override fields by name."""
    fields: dict[str, Any] = {
        "aor": "alice@example.com",
        "user": "alice",
        "contact": "sip:k3j4h5@df7jal23ls0d.invalid;transport=ws",
        "instance": INSTANCE,
        "reg_id": 1,
        "call_id": "reg-call-1",
        "connection_id": 7,
        "transport": Transport.WSS,
        "host": "198.51.100.20",
        "port": 51234,
        "alias": "sip:alice-1a2b3c4d5e@192.0.2.1:5060",
        "client_expires_at": 700.0,
        "upstream_expires_at": 3700.0,
        "upstream_call_id": "up-call-1",
        "upstream_from_tag": "up-tag-1",
        "upstream_cseq": 1,
        "registrar_transport": Transport.UDP,
        "registrar_host": "192.0.2.10",
        "registrar_port": 5060,
        "registrar_uri": "sip:example.com",
    }
    fields.update(changes)
    return Binding(**fields)


def test_key_with_instance_and_reg_id() -> None:
    binding = make_binding()
    assert binding.key == ("alice@example.com", f"{INSTANCE};reg-id=1")


def test_key_with_instance_without_reg_id() -> None:
    assert make_binding(reg_id=None).key == ("alice@example.com", INSTANCE)


@pytest.mark.parametrize("instance", [None, ""])
def test_key_without_instance_is_the_contact(instance: str | None) -> None:
    binding = make_binding(instance=instance, reg_id=None)
    assert binding.key == ("alice@example.com", "sip:k3j4h5@df7jal23ls0d.invalid;transport=ws")


def test_key_ignores_the_connection_and_the_contact_when_an_instance_is_given() -> None:
    # A browser reconnecting gets a new Contact and connection but stays the same binding.
    moved = make_binding(contact="sip:zz@other.invalid;transport=ws", connection_id=8)
    assert moved.key == make_binding().key


def test_binding_key_function_matches_the_property() -> None:
    binding = make_binding()
    assert binding_key(binding.aor, binding.contact, INSTANCE, 1) == binding.key


def test_alias_user_is_stable() -> None:
    key = make_binding().key
    assert alias_user_for("alice", key) == alias_user_for("alice", key)
    # A fixed value: a restart with another hash seed must give the same alias.
    digest = hashlib.sha256(b"alice@example.com\0sip:a@b.invalid").hexdigest()
    assert alias_user_for("alice", ("alice@example.com", "sip:a@b.invalid")) == (
        f"alice-{digest[:10]}"
    )


def test_alias_user_is_distinct_per_device_and_per_aor() -> None:
    phone = ("alice@example.com", f"{INSTANCE};reg-id=1")
    second_flow = ("alice@example.com", f"{INSTANCE};reg-id=2")
    laptop = ("alice@example.com", '"<urn:uuid:00000000-0000-0000-0000-000000000001>"')
    other_domain = ("alice@example.org", f"{INSTANCE};reg-id=1")
    aliases = {alias_user_for("alice", key) for key in (phone, second_flow, laptop, other_domain)}
    assert len(aliases) == 4


def test_alias_user_shape() -> None:
    alias = alias_user_for("alice", make_binding().key)
    user, _, digest = alias.rpartition("-")
    assert user == "alice"
    assert len(digest) == 10
    assert all(c in "0123456789abcdef" for c in digest)


@pytest.mark.parametrize("user", ["alice", "+4930123456", "alice.smith", "a_b!~*'()", "1001"])
def test_alias_user_is_a_valid_sip_uri_user(user: str) -> None:
    alias = alias_user_for(user, ("x@example.com", "sip:x@y.invalid"))
    uri = parse_uri(f"sip:{alias}@192.0.2.1:5060")
    assert isinstance(uri, SipUri)
    assert uri.user == alias


def test_alias_user_of_an_escaped_user_round_trips_through_a_uri() -> None:
    alias = alias_user_for("al ice", ("x@example.com", "sip:x@y.invalid"))
    uri = parse_uri(str(SipUri(user=alias, host="192.0.2.1")))
    assert isinstance(uri, SipUri)
    assert uri.user == alias


def test_alias_user_property() -> None:
    assert make_binding().alias_user == "alice-1a2b3c4d5e"


@pytest.mark.parametrize("alias", ["sip:192.0.2.1:5060", "not a uri", "tel:+4930123", ""])
def test_alias_user_property_without_a_user(alias: str) -> None:
    assert make_binding(alias=alias).alias_user == ""


def test_peer_is_the_connection() -> None:
    assert make_binding().peer == Peer(Transport.WSS, "198.51.100.20", 51234, 7)


def test_registrar_is_the_upstream_destination() -> None:
    assert make_binding().registrar == Peer(Transport.UDP, "192.0.2.10", 5060)


def test_shifted_moves_both_expiry_times_only() -> None:
    binding = make_binding()
    shifted = binding.shifted(-500.0)
    assert shifted.client_expires_at == 200.0
    assert shifted.upstream_expires_at == 3200.0
    assert shifted == replace(binding, client_expires_at=200.0, upstream_expires_at=3200.0)
    assert shifted.shifted(500.0) == binding


def test_remaining() -> None:
    binding = make_binding(client_expires_at=700.0, upstream_expires_at=3700.0)
    assert binding.remaining(100.0) == (600.0, 3600.0)
    assert binding.remaining(700.0) == (0.0, 3000.0)
    assert binding.remaining(5000.0) == (0.0, 0.0)


def test_binding_is_frozen() -> None:
    binding = make_binding()
    with pytest.raises(AttributeError):
        binding.user = "bob"  # type: ignore[misc]
