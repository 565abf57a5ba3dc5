"""A one-screen, human-readable summary of a configuration, for ``rtcgw check-config``.

It shows what an operator checks after editing: listeners, media ports, realms with their
call agents and rules, and what the loader filled in by default. It is for people, not for
parsing; its layout may change.
"""

from __future__ import annotations

from rtcgw.config.schema import (
    AllSources,
    CallAgent,
    GatewayConfig,
    GatewaySettings,
    Interface,
    MediaInterface,
    Realm,
    Rule,
    WebSettings,
)

__all__ = ["summarize"]

_WIDTH = 12


def summarize(config: GatewayConfig) -> str:
    """Describe ``config`` in a few lines: interfaces, media, realms, generated defaults."""
    gateway = config.gateway
    workers = "one per CPU core" if gateway.workers == 0 else str(gateway.workers)
    lines = [
        _row("config", config.source),
        _row(
            "gateway",
            f"{gateway.name}, workers {workers}, drain {gateway.drain_timeout_s:g} s, "
            f"log {gateway.log_format.value}, max message {gateway.max_message_bytes} bytes",
        ),
        _row("register", _register_limit(gateway)),
        _row("http", str(config.http.listen)),
        *([_row("web", _web(config.web))] if config.web is not None else []),
        "interfaces",
        *(_row(i.name, _interface(i), indent=2) for i in config.interfaces),
        "media",
        *(_row(m.name, _media(m), indent=2) for m in config.media),
        "realms",
    ]
    for realm in config.realms:
        lines.append(_row(realm.name, _realm(realm), indent=2))
        lines.extend(_row(a.name, _call_agent(a), indent=4) for a in realm.call_agents)
    if config.generated:
        lines.append("defaults applied")
        lines.extend(f"  - {note}" for note in config.generated)
    return "\n".join(lines)


def _row(label: str, text: str, *, indent: int = 0) -> str:
    return f"{' ' * indent}{label:<{_WIDTH - indent}} {text}"


def _register_limit(gateway: GatewaySettings) -> str:
    if gateway.register_rate_per_source == 0:
        return "no limit per source address"
    return (
        f"{gateway.register_rate_per_source:g}/s per source address, "
        f"burst {gateway.register_burst_per_source}"
    )


def _web(web: WebSettings) -> str:
    ice = f"{len(web.ice_servers)} ICE server(s)" if web.ice_servers else "host candidates only"
    return f"phone at https://{web.listen}{web.path}, {ice}"


def _interface(interface: Interface) -> str:
    text = f"{interface.type.value} {interface.transport.value.lower()} on {interface.listen}"
    if interface.tls_certificate is not None:
        text += f", certificate {interface.tls_certificate.name}"
    if interface.require_client_certificate:
        text += ", client certificate required"
    elif interface.tls_ca is not None:
        text += ", client certificate checked if sent"
    return text


def _media(media: MediaInterface) -> str:
    advertised = ", ".join(str(a) for a in media.advertised_addresses) or "local address"
    dtls = (
        f"generated {media.dtls_key_type.value}"
        if media.dtls_certificate is None
        else media.dtls_certificate.name
    )
    return (
        f"bind {media.bind_address}, advertise {advertised}, "
        f"ports {media.rtp_port_range}, DTLS {dtls}"
    )


def _realm(realm: Realm) -> str:
    a_rules, c_rules = _rules(realm.a_rules), _rules(realm.c_rules)
    return f"media {realm.media}; A-rules {a_rules}; C-rules {c_rules}"


def _rules(rules: tuple[Rule, ...]) -> str:
    if not rules:
        return "0"
    return f"{len(rules)} ({', '.join(rule.name for rule in rules)})"


def _call_agent(agent: CallAgent) -> str:
    if isinstance(agent.sources, AllSources):
        sources = "all sources"
    elif agent.sources:
        sources = ", ".join(str(network) for network in agent.sources)
    else:
        sources = "no sources (outbound only)"
    text = f"on {agent.interface} from {sources}"
    if agent.destination is not None:
        text += f", sends to {agent.destination}"
    return text
