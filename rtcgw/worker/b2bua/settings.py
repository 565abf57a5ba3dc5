"""What a B2BUA needs to know about its surroundings: our addresses and protocol values.

Where requests go is not a setting: the rules decide it (``routing``). All values are
frozen (STYLE E4); the runtime builds them from the configuration snapshot. No I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from rtcgw import __version__
from rtcgw.sip.errors import LocalProtocolError
from rtcgw.sip.transport import Transport

__all__ = ["B2buaSettings", "LocalAddress"]


@dataclass(frozen=True, slots=True)
class LocalAddress:
    """Our sent-by and Contact address on one transport.

    For WS/WSS: the gateway's WebSocket host and port (what browsers connect to); for
    UDP/TCP/TLS: the SIP interface address the PBX sends to.
    """

    host: str
    port: int


@dataclass(frozen=True, slots=True)
class B2buaSettings:
    """The B2BUA's configuration.

    Attributes:
        local: our address per transport: one for each transport of the SIP side and
            one for every WebSocket transport clients use (WS and WSS fall back on each
            other).
        max_forwards_default: Max-Forwards of requests we originate, and of relayed
            requests that came without one.
        session_expires_s: the session interval we ask the PBX for (RFC 4028).
        min_se_s: our Min-SE (RFC 4028 section 5).
        user_agent: our User-Agent and Server header value.
    """

    local: Mapping[Transport, LocalAddress]
    max_forwards_default: int = 70
    session_expires_s: int = 1800
    min_se_s: int = 90
    user_agent: str = field(default=f"rtcgw/{__version__}")

    def __post_init__(self) -> None:
        if not self.local:
            raise LocalProtocolError("the B2BUA needs at least one local address")
        if not 0 < self.max_forwards_default <= 255:
            raise LocalProtocolError("max_forwards_default must be in 1..255")
        if self.min_se_s < 90 or self.session_expires_s < self.min_se_s:
            # RFC 4028 section 4: Min-SE "MUST NOT be less than 90 seconds".
            raise LocalProtocolError("need 90 <= min_se_s <= session_expires_s")

    def address_for(self, transport: Transport) -> LocalAddress:
        """Our address on ``transport``; WS and WSS stand in for each other.

        Raises:
            LocalProtocolError: no address is configured for that transport.
        """
        found = self.local.get(transport)
        if found is None and transport in (Transport.WS, Transport.WSS):
            other = Transport.WSS if transport is Transport.WS else Transport.WS
            found = self.local.get(other)
        if found is None:
            raise LocalProtocolError(f"no local address for transport {transport.value}")
        return found

    def is_local_host(self, host: str) -> bool:
        """True if ``host`` names the gateway itself (one of our addresses)."""
        low = host.lower()
        return any(address.host.lower() == low for address in self.local.values())
