"""Configurations and request facts shared by the rules tests (data, not fixtures)."""

from __future__ import annotations

from ipaddress import ip_address

from rtcgw.config import GatewayConfig, load_config_text
from rtcgw.rules import CompiledRules, RequestFacts
from tests.config.config_snippets import BASE

__all__ = ["BROWSER", "PBX", "RULES_BASE", "compile_text", "facts", "rule"]

BROWSER = "203.0.113.7"  # any address on the websocket interface is a browser
PBX = "192.0.2.10"

# Browsers on ws ("all"), a PBX and a carrier on sip; cases append rules.
RULES_BASE = (
    BASE
    + """
[realms.pbx.call_agents.carrier]
interface = "sip"
sources = ["198.51.100.0/24"]
destination = "198.51.100.1:5060"
"""
)


def rule(where: str, actions: str, *, name: str = "r", when: str = "") -> str:
    """One ``[[realms.<where>]]`` rule in TOML."""
    when_line = f"when = {{ {when} }}\n" if when else ""
    return f'\n[[realms.{where}]]\nname = "{name}"\n{when_line}actions = [{actions}]\n'


def compile_text(*rules: str, base: str = RULES_BASE) -> CompiledRules:
    config: GatewayConfig = load_config_text(base + "".join(rules), source="test.toml")
    return CompiledRules.from_config(config)


def facts(
    method: str = "INVITE",
    *,
    user: str | None = "1000",
    host: str | None = "example.com",
    headers: tuple[tuple[str, str], ...] = (),
    interface: str = "ws",
    source: str = BROWSER,
    port: int = 50000,
) -> RequestFacts:
    """Facts of a request, by default an INVITE from a browser to sip:1000@example.com."""
    return RequestFacts(
        method=method,
        ruri_user=user,
        ruri_host=host,
        headers=headers,
        interface=interface,
        source_address=ip_address(source),
        source_port=port,
    )
