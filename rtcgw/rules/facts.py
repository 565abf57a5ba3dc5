"""What the rules engine may look at: the frozen facts of one incoming request.

The SIP edge builds a ``RequestFacts`` for each out-of-dialog request it has parsed and
hands it to ``rtcgw.rules.engine.decide``. Facts are values: the engine never sees the
network, the clock or the registration cache itself (the cache is asked through a
callable, see ``decide``).

The Request-URI is reduced to the two parts conditions can test:

- ``sip:`` and ``sips:``: ``ruri_user`` is the user part (%-escapes decoded, None when the
  URI has none) and ``ruri_host`` the host, lower-cased (DNS names are case-insensitive,
  RFC 3261 section 19.1.4), IPv6 references keeping their brackets.
- ``tel:``: ``ruri_user`` is the number as written (``"+1-201-555-0123"``), so the same
  ``ruri_user`` regex tests the number of a sip and of a tel URI; ``ruri_host`` is None.
- any other scheme: both are None.

A condition on a part that is None does not hold.

Header names are stored in their lower-case long form (``"f"`` and ``"FROM"`` become
``"from"``), values as received (unfolded and trimmed by the parser); each header line is
one value: a comma-separated list on one line is not split.
"""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address
from typing import final

from rtcgw.sip import Request, SipUri, TelUri, Uri
from rtcgw.sip.message import canonical_name

__all__ = ["RequestFacts", "ruri_parts"]


def ruri_parts(uri: Uri) -> tuple[str | None, str | None]:
    """``(user, host)`` of a Request-URI as conditions see them (see the module docstring)."""
    if isinstance(uri, SipUri):
        return uri.user, uri.host.lower()
    if isinstance(uri, TelUri):
        return uri.number, None
    return None, None


@final
@dataclass(frozen=True, slots=True)
class RequestFacts:
    """One request as the rules see it: start line, headers, and where it came from."""

    method: str
    ruri_user: str | None
    ruri_host: str | None
    #: ``(name, value)`` per header line in message order, names in lower-case long form
    headers: tuple[tuple[str, str], ...]
    #: name of the signaling interface the request arrived on
    interface: str
    source_address: IPv4Address | IPv6Address
    source_port: int

    @classmethod
    def from_request(
        cls,
        request: Request,
        *,
        interface: str,
        source_address: IPv4Address | IPv6Address,
        source_port: int,
    ) -> RequestFacts:
        """The facts of a parsed request received on ``interface`` from the given source."""
        user, host = ruri_parts(request.uri)
        return cls(
            method=request.method,
            ruri_user=user,
            ruri_host=host,
            headers=tuple((h.key, h.value) for h in request.headers),
            interface=interface,
            source_address=source_address,
            source_port=source_port,
        )

    def header_values(self, name: str) -> tuple[str, ...]:
        """The values of every line of header ``name`` (compact or long, any case)."""
        key = canonical_name(name)
        return tuple(value for header, value in self.headers if header == key)
