"""Parsers for the scalar values of a configuration: names, hosts, ports, networks, URIs.

Each function takes the text found in the file and returns a typed value or raises
``BadValue`` whose message is the reason alone; the caller adds the file and key path.
Pure functions: no DNS, no sockets (a host name is checked for syntax only).
"""

from __future__ import annotations

import re
from ipaddress import IPv6Address, ip_address, ip_network

from rtcgw.config.schema import HostPort, IPAddress, IPNetwork, PortRange
from rtcgw.sip.parse import KNOWN_METHODS
from rtcgw.sip.transport import Transport

__all__ = [
    "BadItems",
    "BadValue",
    "check_codec",
    "check_name",
    "check_node_name",
    "check_reason_phrase",
    "compile_regex",
    "parse_destination",
    "parse_host_port",
    "parse_ip",
    "parse_method",
    "parse_network",
    "port_range",
]


class BadValue(Exception):
    """A value is not acceptable; ``str()`` is the reason, without file or key path."""


class BadItems(BadValue):
    """Some items of an array are not acceptable: ``items`` holds (index, reason) pairs."""

    def __init__(self, items: list[tuple[int, str]]) -> None:
        super().__init__(items[0][1])
        self.items = tuple(items)


# Names end up in key paths, log events and metric labels, so keep them plain.
_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,63}")
_NODE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
# RFC 1123 section 2.1 host name labels.
_LABEL = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)")
# RFC 3261 section 25.1: token = 1*(alphanum / "-" / "." / "!" / "%" / "*" / "_" / "+" / "`" /
# "'" / "~").
_TOKEN = re.compile(r"[A-Za-z0-9.!%*_+`'~-]+")
# RFC 4566 section 6 (rtpmap): encoding names are media subtype names (RFC 4288 section 4.2).
_CODEC = re.compile(r"[A-Za-z0-9][A-Za-z0-9!#$&.+^_-]{0,126}")
_DESTINATION_TRANSPORTS = {"udp": Transport.UDP, "tcp": Transport.TCP, "tls": Transport.TLS}


def check_name(name: str) -> None:
    """Accept a name of an interface, media interface, realm, call agent or rule."""
    if not _NAME.fullmatch(name):
        raise BadValue(
            f"bad name {name!r}: names start with a letter and use only letters, digits, "
            "'_' and '-' (at most 64)"
        )


def check_node_name(name: str) -> None:
    """Accept the gateway's node name (a host-like label: letters, digits, '.', '_', '-')."""
    if not _NODE_NAME.fullmatch(name):
        raise BadValue(
            f"bad node name {name!r}: use letters, digits, '.', '_' and '-' (at most 64)"
        )


def parse_ip(text: str) -> IPAddress:
    """An IPv4 or IPv6 address literal."""
    try:
        return ip_address(text)
    except ValueError:
        raise BadValue(f"{text!r} is not an IP address") from None


def parse_network(text: str) -> IPNetwork:
    """A network in CIDR notation; a bare address means that one host (/32 or /128)."""
    try:
        return ip_network(text, strict=True)
    except ValueError:
        pass
    try:
        loose = ip_network(text, strict=False)
    except ValueError:
        raise BadValue(f"{text!r} is not a network in CIDR notation (e.g. 10.0.0.0/8)") from None
    raise BadValue(f"{text!r} has host bits set: did you mean {str(loose)!r}?")


def _parse_host(text: str) -> str:
    """An IP literal (returned in canonical form) or a DNS host name (lower-cased)."""
    if not text:
        raise BadValue("the host is empty")
    try:
        return str(ip_address(text))
    except ValueError:
        pass
    name = text.removesuffix(".")
    labels = name.split(".")
    if len(name) > 253 or not all(_LABEL.fullmatch(label) for label in labels):
        raise BadValue(f"{text!r} is neither an IP address nor a host name")
    # RFC 1123 section 2.1: a name whose last label is numeric would read as an address.
    if labels[-1].isdigit():
        raise BadValue(f"{text!r} is not a valid IP address")
    return name.lower()


def _parse_port(text: str, lowest: int = 1) -> int:
    if not text.isdigit() or not lowest <= int(text) <= 65535:
        raise BadValue(f"port {text!r} is not a number from {lowest} to 65535")
    return int(text)


def _split_host_port(text: str, lowest_port: int = 1) -> tuple[str, int | None]:
    """Split "host", "host:port", "[v6]", "[v6]:port" or a bare IPv6 literal."""
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            raise BadValue(f"{text!r}: '[' without ']'")
        inner, rest = text[1:end], text[end + 1 :]
        try:
            host = str(IPv6Address(inner))
        except ValueError:
            raise BadValue(f"{text!r}: brackets hold IPv6 addresses only") from None
        if not rest:
            return host, None
        if not rest.startswith(":"):
            raise BadValue(f"{text!r}: expected ':port' after ']'")
        return host, _parse_port(rest[1:], lowest_port)
    if text.count(":") > 1:
        try:
            return str(IPv6Address(text)), None
        except ValueError:
            raise BadValue(
                f"{text!r} is not an address: write IPv6 with a port as [address]:port"
            ) from None
    if ":" in text:
        host, _, port = text.partition(":")
        return _parse_host(host), _parse_port(port, lowest_port)
    return _parse_host(text), None


def parse_host_port(
    text: str, *, default_port: int | None = None, listen: bool = False
) -> HostPort:
    """A "host:port" (or "[v6]:port") address; the port may be left out if there's a default.

    With ``listen``, port 0 is allowed: the kernel picks a free port (tests, ad-hoc runs;
    the bound port is logged).
    """
    host, port = _split_host_port(text, 0 if listen else 1)
    if port is None:
        if default_port is None:
            raise BadValue(f"{text!r} has no port: write host:port")
        port = default_port
    return HostPort(host, port)


def parse_destination(text: str) -> tuple[str, int | None, Transport | None]:
    """A next hop: "host[:port]" or a SIP URI "sip:host[:port][;transport=udp|tcp|tls]".

    Returns host, port (None if not given) and the transport the text asks for (None if it
    does not say; "sips:" means TLS, RFC 3261 section 19.1).
    """
    scheme, colon, rest = text.partition(":")
    scheme = scheme.lower()
    if not colon or scheme not in ("sip", "sips"):
        looks_like_uri = colon and text.count(":") == 1 and not rest.isdigit()
        if looks_like_uri or "/" in text or "@" in text or ";" in text:
            raise BadValue(f"{text!r}: write host:port or a sip:/sips: URI")
        host, port = _split_host_port(text)
        return host, port, None
    if "@" in rest:
        raise BadValue(f"{text!r}: a destination names a host, not a user; drop the 'user@'")
    if "?" in rest:
        raise BadValue(f"{text!r}: a destination cannot carry URI headers ('?...')")
    hostport, *params = rest.split(";")
    host, port = _split_host_port(hostport)
    transport = Transport.TLS if scheme == "sips" else None
    for param in params:
        name, _, value = param.partition("=")
        name, value = name.lower(), value.lower()
        if name == "lr":
            continue
        if name != "transport":
            raise BadValue(f"{text!r}: unsupported URI parameter {name!r} (only transport, lr)")
        if value not in _DESTINATION_TRANSPORTS:
            raise BadValue(f"{text!r}: transport must be udp, tcp or tls, not {value!r}")
        if scheme == "sips" and value == "udp":
            raise BadValue(f"{text!r}: a sips: URI cannot use UDP (RFC 3261 section 26.2.2)")
        if scheme != "sips":
            transport = _DESTINATION_TRANSPORTS[value]
    return host, port, transport


def port_range(start: int, end: int) -> PortRange:
    """An RTP port range: ports 1..65535, start <= end, even start, at least two ports."""
    for port in (start, end):
        if not 1 <= port <= 65535:
            raise BadValue(f"port {port} is not from 1 to 65535")
    if start > end:
        raise BadValue(f"start {start} > end {end}")
    # RFC 3550 section 11: "RTP data SHOULD be carried on an even UDP port number and the
    # corresponding RTCP packets SHOULD be carried on the next higher (odd) port number".
    if start % 2:
        raise BadValue(f"start {start} is odd: RTP ports start even (RFC 3550 section 11)")
    if end == start:
        raise BadValue("a range needs at least an RTP/RTCP pair of ports")
    return PortRange(start, end)


def parse_method(text: str) -> str:
    """A SIP method token; known methods must be written in capitals."""
    if not _TOKEN.fullmatch(text):
        raise BadValue(f"{text!r} is not a SIP method (RFC 3261 section 25.1 token)")
    upper = text.upper()
    if upper in KNOWN_METHODS and text != upper:
        raise BadValue(f"methods are case-sensitive (RFC 3261 section 7.1): write {upper!r}")
    return text


def compile_regex(text: str) -> re.Pattern[str]:
    """A compiled Python regular expression."""
    try:
        return re.compile(text)
    except re.error as exc:
        where = f" at position {exc.pos}" if exc.pos is not None else ""
        raise BadValue(f"bad regular expression {text!r}: {exc.msg}{where}") from None


def check_codec(name: str) -> None:
    """Accept an encoding name as written in a=rtpmap (no clock rate)."""
    if "/" in name:
        raise BadValue(f"codec {name!r}: give the encoding name only, without '/clock rate'")
    if not _CODEC.fullmatch(name):
        raise BadValue(f"codec {name!r} is not an encoding name (e.g. opus, PCMU, telephone-event)")


def check_reason_phrase(text: str) -> None:
    """Accept a Reason-Phrase (RFC 3261 section 25.1): printable text, no CR or LF."""
    if not text.strip():
        raise BadValue("the reason phrase is empty")
    if any((ord(char) < 0x20 and char != "\t") or ord(char) == 0x7F for char in text):
        raise BadValue("the reason phrase contains control characters")
