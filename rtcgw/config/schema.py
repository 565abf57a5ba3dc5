"""The configuration model: frozen dataclasses that mirror the TOML file key by key.

Every field carries a one-line description in ``metadata["doc"]`` (and, where the loader
checks a range, ``metadata["minimum"]`` / ``metadata["maximum"]``), so reference docs and
CLI help can be generated from these declarations, as gunicorn does from its ``Setting``
list. A field's default here is the default of the TOML key of the same name.

Enums owned by other layers are reused rather than copied: ``Transport`` (rtcgw.sip) for
interface transports and ``LogFormat`` (rtcgw.observability) for ``log_format``.

The objects are values: immutable, comparable, picklable (a snapshot is sent to workers on
reload). Lists are tuples and keep the file's order; named tables (interfaces, media
interfaces, realms, call agents) are tuples in file order too, looked up with the
``GatewayConfig`` methods. Nothing here reads files or validates: ``load.py`` builds these
objects only from checked input. Rule actions live in ``actions.py``.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network
from pathlib import Path
from typing import final

from rtcgw.config._meta import doc
from rtcgw.config.actions import Action
from rtcgw.observability.logging import LogFormat
from rtcgw.sip.transport import Transport

__all__ = [
    "ARule",
    "AllSources",
    "CRule",
    "CallAgent",
    "Conditions",
    "Destination",
    "DtlsKeyType",
    "GatewayConfig",
    "GatewaySettings",
    "HostPort",
    "HttpSettings",
    "IPAddress",
    "IPNetwork",
    "IceServer",
    "Interface",
    "InterfaceKind",
    "MediaInterface",
    "PortRange",
    "Realm",
    "Rule",
    "WebSettings",
]

IPAddress = IPv4Address | IPv6Address
IPNetwork = IPv4Network | IPv6Network


class InterfaceKind(enum.Enum):
    """What speaks on a signaling interface."""

    WEBSOCKET = "websocket"  #: SIP over WebSocket (RFC 7118), the browsers' side
    SIP = "sip"  #: SIP over UDP/TCP/TLS (RFC 3261 section 18), the PBX's side


class DtlsKeyType(enum.Enum):
    """Key of the certificate generated for DTLS-SRTP when none is configured."""

    #: ECDSA P-256: small certificates keep every DTLS datagram under 1200 bytes
    EC_P256 = "ec-p256"
    RSA_2048 = "rsa-2048"  #: for peers that still cannot do ECDSA


class AllSources(enum.Enum):
    """``sources = "all"``: a call agent that matches every address on its interface."""

    ALL = "all"


@final
@dataclass(frozen=True, slots=True)
class HostPort:
    """A host (IP literal or DNS name) and a port; IPv6 prints in brackets."""

    host: str
    port: int

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


@final
@dataclass(frozen=True, slots=True)
class PortRange:
    """An inclusive range of UDP ports, ``rtp_port_range = [start, end]`` in the file."""

    start: int
    end: int

    @property
    def size(self) -> int:
        """How many ports the range holds."""
        return self.end - self.start + 1

    def __str__(self) -> str:
        return f"{self.start}-{self.end}"


@final
@dataclass(frozen=True, slots=True)
class Destination:
    """Where a call agent's requests are sent: the next hop, as written and as parsed.

    ``port`` is None when the file gave none: the sender then resolves the host as RFC 3263
    says (SRV records for a name, else the transport's default port).
    """

    uri: str
    host: str
    port: int | None
    transport: Transport

    def __str__(self) -> str:
        return self.uri

    @property
    def port_or_default(self) -> int:
        """The port to send to: the one given, else the transport's default (RFC 3261
        19.1.2; the SRV lookup of RFC 3263 is not done)."""
        if self.port is not None:
            return self.port
        return 5061 if self.transport is Transport.TLS else 5060


@final
@dataclass(frozen=True, slots=True)
class GatewaySettings:
    """``[gateway]``: process-wide settings."""

    name: str = field(default="rtcgw", metadata=doc("node name shown in logs, metrics and ctl"))
    workers: int = field(
        default=0, metadata=doc("worker processes; 0 = one per CPU core", minimum=0, maximum=1024)
    )
    drain_timeout_s: float = field(
        default=30.0,
        metadata=doc("how long a drain or stop waits for calls to end", minimum=0, maximum=86400),
    )
    log_format: LogFormat = field(
        default=LogFormat.AUTO, metadata=doc("log rendering: auto, json or console")
    )
    max_message_bytes: int = field(
        default=65535,
        metadata=doc(
            "largest SIP message accepted on any transport", minimum=1500, maximum=16777216
        ),
    )
    # REGISTER is the request anyone can send before proving who they are, and each one
    # costs a registration-cache update and maybe a request to the registrar: one source
    # must not be able to crowd out the rest. The limit is per IP address, and browsers
    # behind one NAT share theirs, so the defaults leave room for many of them.
    register_rate_per_source: float = field(
        default=20.0,
        metadata=doc(
            "REGISTER requests per second accepted from one source IP address (token "
            "bucket refill rate); 0 = no limit",
            minimum=0,
            maximum=100000,
        ),
    )
    media_timeout_s: float = field(
        default=60.0,
        metadata=doc(
            "seconds without a media packet in either direction before a relayed call is "
            "ended with BYE on both legs; 0 = never",
            minimum=0,
            maximum=86400,
        ),
    )
    register_burst_per_source: int = field(
        default=100,
        metadata=doc(
            "REGISTER requests one source IP address may send at once before the rate "
            "applies (token bucket size)",
            minimum=1,
            maximum=1000000,
        ),
    )
    control_socket: str = field(
        default="",
        metadata=doc(
            "Unix socket `rtcgw ctl` talks to (mode 0600); empty = $XDG_RUNTIME_DIR/rtcgw.sock, "
            "or /tmp/rtcgw-UID.sock when XDG_RUNTIME_DIR is unset"
        ),
    )


@final
@dataclass(frozen=True, slots=True)
class HttpSettings:
    """``[http]``: the HTTP listener for /metrics, /healthz and the demo page."""

    listen: HostPort = field(
        default=HostPort("127.0.0.1", 9464), metadata=doc("address the HTTP server listens on")
    )


@final
@dataclass(frozen=True, slots=True)
class IceServer:
    """One ``[[web.ice_servers]]`` entry: a STUN or TURN server given to the web phone."""

    urls: tuple[str, ...] = field(
        metadata=doc('stun:, turn: or turns: URLs, one string or an array ("stun:host:3478")')
    )
    username: str | None = field(default=None, metadata=doc("TURN user name"))
    credential: str | None = field(default=None, metadata=doc("TURN password"))


@final
@dataclass(frozen=True, slots=True)
class WebSettings:
    """``[web]``: the web phone, served over HTTPS by the supervisor.

    Left out, no phone is served. The loader fills in ``tls_certificate`` / ``tls_key``
    from the first wss interface when the table gives none, so they are always set here.
    """

    listen: HostPort = field(
        default=HostPort("0.0.0.0", 8444), metadata=doc("host:port the HTTPS server listens on")
    )
    path: str = field(
        default="/phone/", metadata=doc("URL path of the phone, starting and ending with /")
    )
    tls_certificate: Path | None = field(
        default=None, metadata=doc("PEM certificate chain; default: the first wss interface's")
    )
    tls_key: Path | None = field(
        default=None, metadata=doc("PEM private key of tls_certificate; default: the wss one's")
    )
    # Host candidates alone connect at once to a gateway with a public address; STUN and
    # TURN only add gathering time unless browsers sit behind NATs that need them.
    ice_servers: tuple[IceServer, ...] = field(
        default=(),
        metadata=doc("[[web.ice_servers]] STUN/TURN servers; empty = host candidates only"),
    )
    sip_domain: str | None = field(
        default=None,
        metadata=doc(
            "domain the phone registers in; default: the first sip interface's address, "
            "or the host the page was loaded from when that is a wildcard"
        ),
    )
    ws_url: str | None = field(
        default=None,
        metadata=doc(
            "WebSocket URL the phone connects to; default: wss:// (else ws://) on the page's "
            "host and the first websocket interface's port"
        ),
    )


@final
@dataclass(frozen=True, slots=True)
class Interface:
    """``[interfaces.<name>]``: one signaling listener.

    TLS paths are resolved against the configuration file's directory; they are set exactly
    when ``transport`` is wss or tls (the loader enforces it).
    """

    name: str = field(metadata=doc("the table's name, used by call agents"))
    type: InterfaceKind = field(metadata=doc("websocket or sip"))
    transport: Transport = field(
        metadata=doc("ws or wss for websocket (default ws); udp, tcp or tls for sip (default udp)")
    )
    listen: HostPort = field(
        metadata=doc(
            "host:port to listen on; default 0.0.0.0 and port 8080 (ws), 8443 (wss), "
            "5060 (udp, tcp), 5061 (tls)"
        )
    )
    tls_certificate: Path | None = field(
        default=None, metadata=doc("PEM certificate chain; required for wss and tls")
    )
    tls_key: Path | None = field(
        default=None, metadata=doc("PEM private key of tls_certificate; required for wss and tls")
    )
    tls_ca: Path | None = field(
        default=None, metadata=doc("PEM bundle of CAs trusted to sign client certificates")
    )
    require_client_certificate: bool = field(
        default=False,
        metadata=doc("refuse TLS clients without a certificate signed by tls_ca"),
    )


@final
@dataclass(frozen=True, slots=True)
class MediaInterface:
    """``[media.<name>]``: where media sockets are bound and what SDP advertises.

    Without ``dtls_certificate`` / ``dtls_key`` a self-signed certificate of
    ``dtls_key_type`` is generated at start-up (browsers only check its fingerprint,
    RFC 8122).
    """

    name: str = field(metadata=doc("the table's name, used by realms"))
    bind_address: IPAddress = field(
        default=IPv4Address("0.0.0.0"), metadata=doc("IP address media sockets bind to")
    )
    advertised_addresses: tuple[IPAddress, ...] = field(
        default=(),
        metadata=doc(
            "public IPs written into SDP and ICE candidates (one candidate each); "
            "empty = the bind address, or with a wildcard bind the local address of the "
            "route toward the peer"
        ),
    )
    rtp_port_range: PortRange = field(
        default=PortRange(20000, 29999),
        metadata=doc("[first, last] UDP ports for media, split evenly between workers"),
    )
    dtls_certificate: Path | None = field(
        default=None, metadata=doc("PEM certificate for DTLS-SRTP; omit to generate one")
    )
    dtls_key: Path | None = field(default=None, metadata=doc("PEM private key of dtls_certificate"))
    dtls_key_type: DtlsKeyType = field(
        default=DtlsKeyType.EC_P256,
        metadata=doc("key of the generated DTLS certificate: ec-p256 or rsa-2048"),
    )
    # Path MTUs below 1280 are common behind VPNs and some firewalls drop larger UDP
    # datagrams outright: DTLS fragments its handshake to stay under this size.
    dtls_mtu: int = field(
        default=1200,
        metadata=doc("largest DTLS datagram sent, in bytes", minimum=256, maximum=9000),
    )
    dtls_ca: Path | None = field(
        default=None,
        metadata=doc(
            "PEM bundle of CAs a DTLS peer's certificate must chain to; omit for browsers, "
            "whose self-signed certificates are checked by SDP fingerprint only"
        ),
    )
    dtls_require_peer_certificate: bool = field(
        default=True,
        metadata=doc("refuse a DTLS peer that presents no certificate (WebRTC peers always do)"),
    )


@final
@dataclass(frozen=True, slots=True)
class CallAgent:
    """``[realms.<realm>.call_agents.<name>]``: a peer (or population of peers) of a realm.

    A request belongs to the call agent whose ``interface`` it arrived on and whose
    ``sources`` hold its source address (the longest prefix wins). Requests routed to the
    call agent go to ``destination``, or, for browsers, to the connection found in the
    registration cache.
    """

    name: str = field(metadata=doc("the table's name, unique across realms"))
    realm: str = field(metadata=doc("the realm the call agent belongs to"))
    interface: str = field(metadata=doc("name of the interface it is reached on"))
    sources: tuple[IPNetwork, ...] | AllSources = field(
        default=(),
        metadata=doc(
            'source networks (CIDR) it matches, or "all"; default: the destination\'s '
            "address when that is an IP literal"
        ),
    )
    destination: Destination | None = field(
        default=None,
        metadata=doc(
            'next hop: "host:port" or a SIP URI such as "sip:pbx.example.com;transport=tcp"'
        ),
    )


@final
@dataclass(frozen=True, slots=True)
class Conditions:
    """``when = {...}`` of a rule: every condition given must hold; none given = always.

    Regular expressions are Python ``re`` syntax and must match the whole value
    (``re.fullmatch``), so ``ruri_user = "1000"`` never matches "91000". ``header`` keeps
    the file's order, each name stored as its lower-case long form (``"f"`` and ``"FROM"``
    become ``"from"``, as ``rtcgw.sip.message.canonical_name`` gives it).
    """

    method: tuple[str, ...] = field(
        default=(),
        metadata=doc("request method or methods (case-sensitive, RFC 3261 section 7.1)"),
    )
    ruri_user: re.Pattern[str] | None = field(
        default=None, metadata=doc("regular expression on the Request-URI's user part")
    )
    ruri_domain: re.Pattern[str] | None = field(
        default=None, metadata=doc("regular expression on the Request-URI's host part")
    )
    source_call_agent: str | None = field(
        default=None, metadata=doc("name of the call agent the request came from")
    )
    header: tuple[tuple[str, re.Pattern[str]], ...] = field(
        default=(),
        metadata=doc(
            "header name -> regular expression on any one value of that header; names are "
            "case-insensitive and compact forms equal long ones; an absent header never matches"
        ),
    )
    source: tuple[IPNetwork, ...] = field(
        default=(),
        metadata=doc("networks (CIDR) the request's source address must be in, any of them"),
    )


@dataclass(frozen=True, slots=True)
class Rule:
    """A named rule: conditions and the actions applied, in order, when they hold."""

    name: str = field(metadata=doc("unique within its realm; logs and ctl show it"))
    when: Conditions = field(default=Conditions(), metadata=doc("conditions; omit to match all"))
    actions: tuple[Action, ...] = field(
        default=(), metadata=doc('the actions, each {action = "<name>", ...}')
    )


@final
@dataclass(frozen=True, slots=True)
class ARule(Rule):
    """An A-rule: applied to requests coming FROM the realm's call agents."""


@final
@dataclass(frozen=True, slots=True)
class CRule(Rule):
    """A C-rule: applied to requests sent TO the realm's call agents."""


@final
@dataclass(frozen=True, slots=True)
class Realm:
    """``[realms.<name>]``: call agents that share rules and a media interface."""

    name: str = field(metadata=doc("the table's name"))
    media: str = field(metadata=doc("name of the media interface; default: the only one declared"))
    call_agents: tuple[CallAgent, ...] = field(
        default=(), metadata=doc("the realm's call agents, in file order")
    )
    a_rules: tuple[ARule, ...] = field(
        default=(), metadata=doc("rules for requests from the call agents, in evaluation order")
    )
    c_rules: tuple[CRule, ...] = field(
        default=(), metadata=doc("rules for requests to the call agents, in evaluation order")
    )


@final
@dataclass(frozen=True, slots=True)
class GatewayConfig:
    """One validated, immutable snapshot of the whole configuration."""

    source: str = field(metadata=doc("the file (or label) the snapshot was read from"))
    gateway: GatewaySettings = field(metadata=doc("[gateway]"))
    http: HttpSettings = field(metadata=doc("[http]"))
    interfaces: tuple[Interface, ...] = field(metadata=doc("[interfaces.*], in file order"))
    media: tuple[MediaInterface, ...] = field(metadata=doc("[media.*], in file order"))
    realms: tuple[Realm, ...] = field(metadata=doc("[realms.*], in file order"))
    generated: tuple[str, ...] = field(
        default=(), metadata=doc("what the loader filled in because the file left it out")
    )
    web: WebSettings | None = field(
        default=None, metadata=doc("[web], the web phone; None when the file has no [web]")
    )

    def interface(self, name: str) -> Interface:
        """The interface called ``name``; KeyError if there is none."""
        for interface in self.interfaces:
            if interface.name == name:
                return interface
        raise KeyError(name)

    def media_interface(self, name: str) -> MediaInterface:
        """The media interface called ``name``; KeyError if there is none."""
        for media in self.media:
            if media.name == name:
                return media
        raise KeyError(name)

    def realm(self, name: str) -> Realm:
        """The realm called ``name``; KeyError if there is none."""
        for realm in self.realms:
            if realm.name == name:
                return realm
        raise KeyError(name)

    def call_agent(self, name: str) -> CallAgent:
        """The call agent called ``name``, in whichever realm; KeyError if there is none."""
        for realm in self.realms:
            for agent in realm.call_agents:
                if agent.name == name:
                    return agent
        raise KeyError(name)
