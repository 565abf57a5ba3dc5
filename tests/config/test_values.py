"""Scalar parsers (addresses, destinations, networks, ports) and the schema's declarations."""

from __future__ import annotations

import dataclasses
import inspect
from ipaddress import IPv4Address, IPv6Address

import pytest
from hypothesis import given
from hypothesis import strategies as st

import rtcgw.config
from rtcgw.config import actions, schema
from rtcgw.config._values import (
    BadValue,
    parse_destination,
    parse_host_port,
    parse_network,
    port_range,
)
from rtcgw.config.schema import HostPort, PortRange
from rtcgw.sip.transport import Transport


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0.0.0.0:5060", HostPort("0.0.0.0", 5060)),
        ("[::]:8443", HostPort("::", 8443)),
        ("[2001:DB8::1]:5061", HostPort("2001:db8::1", 5061)),  # canonical form
        ("2001:db8::1", HostPort("2001:db8::1", 9)),  # bare IPv6 takes the default port
        ("[::1]", HostPort("::1", 9)),
        ("PBX.Example.com:5080", HostPort("pbx.example.com", 5080)),
        ("pbx.example.com.", HostPort("pbx.example.com", 9)),
        ("localhost", HostPort("localhost", 9)),
    ],
)
def test_host_port_forms(text: str, expected: HostPort) -> None:
    assert parse_host_port(text, default_port=9) == expected


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "the host is empty"),
        (":5060", "the host is empty"),
        ("host:", "port '' is not a number"),
        ("host:http", "port 'http' is not a number"),
        ("[::1]5060", "expected ':port' after ']'"),
        ("-bad-.example:1", "neither an IP address nor a host name"),
        ("10.0.0.256:1", "not a valid IP address"),
    ],
)
def test_host_port_rejects(text: str, reason: str) -> None:
    with pytest.raises(BadValue, match=reason):
        parse_host_port(text, default_port=9)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("192.0.2.10", ("192.0.2.10", None, None)),
        ("192.0.2.10:5080", ("192.0.2.10", 5080, None)),
        ("pbx.example.com", ("pbx.example.com", None, None)),
        ("sip:pbx.example.com", ("pbx.example.com", None, None)),
        ("SIP:192.0.2.1:5062;transport=TCP", ("192.0.2.1", 5062, Transport.TCP)),
        ("sip:[2001:db8::9]:5060;lr;transport=udp", ("2001:db8::9", 5060, Transport.UDP)),
        ("sips:pbx.example.com", ("pbx.example.com", None, Transport.TLS)),
        ("sips:pbx.example.com;transport=tcp", ("pbx.example.com", None, Transport.TLS)),
    ],
)
def test_destination_forms(text: str, expected: tuple[object, ...]) -> None:
    assert parse_destination(text) == expected


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("sip:bob@pbx.example.com", "names a host, not a user"),
        ("sip:pbx.example.com?Subject=x", "cannot carry URI headers"),
        ("sip:pbx.example.com;maddr=10.0.0.1", "unsupported URI parameter 'maddr'"),
        ("sips:pbx.example.com;transport=udp", "a sips: URI cannot use UDP"),
        ("tel:+4930123", "write host:port or a sip:/sips: URI"),
    ],
)
def test_destination_rejects(text: str, reason: str) -> None:
    with pytest.raises(BadValue, match=reason):
        parse_destination(text)


def test_network_accepts_bare_hosts_and_rejects_host_bits() -> None:
    assert str(parse_network("192.0.2.7")) == "192.0.2.7/32"
    assert str(parse_network("2001:db8::/32")) == "2001:db8::/32"
    with pytest.raises(BadValue, match="did you mean '2001:db8::/32'"):
        parse_network("2001:db8::1/32")


def test_port_range_bounds() -> None:
    assert port_range(10000, 10001) == PortRange(10000, 10001)
    assert PortRange(20000, 29999).size == 10000
    assert str(PortRange(20000, 29999)) == "20000-29999"
    with pytest.raises(BadValue, match="port 0 is not from 1 to 65535"):
        port_range(0, 10)


@given(
    host=st.one_of(st.ip_addresses(v=4), st.ip_addresses(v=6)),
    port=st.integers(min_value=1, max_value=65535),
)
def test_host_port_text_round_trips(host: IPv4Address | IPv6Address, port: int) -> None:
    address = HostPort(str(host), port)
    assert parse_host_port(str(address)) == address


def _schema_classes() -> list[type]:
    classes = [
        obj
        for module in (schema, actions)
        for _, obj in inspect.getmembers(module, inspect.isclass)
        if dataclasses.is_dataclass(obj) and obj.__module__ == module.__name__
    ]
    assert len(classes) > 20  # guard against the walk finding nothing
    return classes


@pytest.mark.parametrize("cls", _schema_classes(), ids=lambda cls: cls.__name__)
def test_every_schema_field_has_a_one_line_description(cls: type) -> None:
    for spec in dataclasses.fields(cls):
        if cls in (HostPort, PortRange, schema.Destination):
            continue  # value types, documented by the fields that hold them
        text = spec.metadata.get("doc")
        assert isinstance(text, str) and text and "\n" not in text, f"{cls.__name__}.{spec.name}"


def test_every_action_has_a_distinct_name_and_is_exported() -> None:
    names = [cls.ACTION for cls in actions.ACTION_TYPES]
    assert len(set(names)) == len(names) == 14
    for cls in actions.ACTION_TYPES:
        assert cls.__name__ in rtcgw.config.__all__


def test_public_schema_names_are_exported() -> None:
    for module in (schema, actions):
        missing = sorted(set(module.__all__) - set(rtcgw.config.__all__))
        assert missing == [], f"{module.__name__} names not exported: {missing}"
    for name in ("load_config", "load_config_text", "ConfigError", "GatewayConfig", "summarize"):
        assert name in rtcgw.config.__all__
