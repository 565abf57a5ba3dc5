"""The B2BUA's settings, derived from the configuration snapshot and the bound listeners.

Each transport's address is the first listener of that transport. A listener bound to a
wildcard address advertises the local address of the route toward the first call agent
with a destination on that transport (what that peer can send back to), or toward any
destination when none uses the transport.
"""

from __future__ import annotations

import ipaddress
import socket

from rtcgw.sip.transport import Transport
from rtcgw.worker.b2bua import B2buaSettings, LocalAddress
from rtcgw.worker.boot import WorkerBoot

__all__ = ["b2bua_settings", "facing_address"]


def facing_address(host: str, port: int, *, ipv6: bool) -> str:
    """The local IP the kernel would use toward ``host`` (no packet is sent)."""
    family = socket.AF_INET6 if ipv6 else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect((host, port))
        except OSError:
            return "::1" if ipv6 else "127.0.0.1"
        return str(probe.getsockname()[0])


def b2bua_settings(boot: WorkerBoot) -> B2buaSettings:
    """Settings for the worker's B2BUA.

    Raises:
        ValueError: the configuration binds no listener.
    """
    destinations = [
        agent.destination
        for realm in boot.config.realms
        for agent in realm.call_agents
        if agent.destination is not None
    ]
    local: dict[Transport, LocalAddress] = {}
    for listener in boot.listeners:
        if listener.transport in local:
            continue
        host = listener.host
        if ipaddress.ip_address(host).is_unspecified:
            toward = next(
                (d for d in destinations if d.transport is listener.transport),
                destinations[0] if destinations else None,
            )
            if toward is None:
                host = "::1" if ":" in host else "127.0.0.1"
            else:
                host = facing_address(toward.host, toward.port_or_default, ipv6=":" in host)
        local[listener.transport] = LocalAddress(host, listener.port)
    if not local:
        raise ValueError("the configuration binds no listener: the B2BUA has no address")
    return B2buaSettings(local=local)
