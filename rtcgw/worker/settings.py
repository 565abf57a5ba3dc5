"""The B2BUA's settings, derived from the configuration snapshot and the bound listeners.

Until the rules engine decides routes, calls from WebSocket clients go to the first call
agent that has a destination (the PBX of the ``[pbx]`` shorthand). A listener bound to a
wildcard address advertises the local address of the route toward that PBX, which is what
the PBX can send back to.
"""

from __future__ import annotations

import ipaddress
import socket

from rtcgw.sip.transport import Peer, Transport
from rtcgw.worker.b2bua import B2buaSettings, LocalAddress
from rtcgw.worker.boot import WorkerBoot

__all__ = ["b2bua_settings", "facing_address"]

_DEFAULT_PORTS = {Transport.UDP: 5060, Transport.TCP: 5060, Transport.TLS: 5061}


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
        ValueError: no call agent has a destination, so calls would have nowhere to go.
    """
    config = boot.config
    agent = next(
        (a for realm in config.realms for a in realm.call_agents if a.destination is not None),
        None,
    )
    if agent is None or agent.destination is None:
        raise ValueError("no call agent has a destination: calls from clients cannot be routed")
    destination = agent.destination
    port = destination.port or _DEFAULT_PORTS.get(destination.transport, 5060)
    pbx = Peer(destination.transport, destination.host, port)
    local: dict[Transport, LocalAddress] = {}
    for listener in boot.listeners:
        if listener.transport in local:
            continue
        host = listener.host
        if ipaddress.ip_address(host).is_unspecified:
            host = facing_address(destination.host, port, ipv6=":" in host)
        local[listener.transport] = LocalAddress(host, listener.port)
    return B2buaSettings(local=local, pbx=pbx, pbx_domain=destination.host)
