"""TOML snippets shared by the configuration tests (a module, not a fixture: they are data)."""

from __future__ import annotations

__all__ = ["BASE", "MINIMAL", "PBX", "ROUTE_PBX", "WS_ONLY", "rule"]

# Two realms around one websocket and one sip interface, no rules: cases append to it.
BASE = """
[interfaces.ws]
type = "websocket"

[interfaces.sip]
type = "sip"

[realms.rtc.call_agents.browsers]
interface = "ws"
sources = "all"

[realms.pbx.call_agents.pbx]
interface = "sip"
destination = "192.0.2.10:5060"
"""

WS_ONLY = '[interfaces.ws]\ntype = "websocket"\n'
PBX = '[pbx]\naddress = "192.0.2.10:5060"\n'
MINIMAL = WS_ONLY + PBX


def rule(where: str, actions: str, *, name: str = "r", when: str = "") -> str:
    """One ``[[realms.<where>]]`` rule, e.g. rule("rtc.a_rules", '{ action = "force_rtp" }')."""
    when_line = f"when = {{ {when} }}\n" if when else ""
    return f'\n[[realms.{where}]]\nname = "{name}"\n{when_line}actions = [{actions}]\n'


ROUTE_PBX = '{ action = "route", destination = "pbx" }'
