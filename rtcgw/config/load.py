"""Loading a configuration: TOML text -> checked, immutable ``GatewayConfig``.

The file has these top-level tables, all optional except as noted:

- ``[gateway]`` process settings; ``[http]`` the metrics/demo listener; ``[web]`` the web
  phone (HTTPS; its certificate defaults to the first wss interface's, ``_web.py``).
- ``[interfaces.<name>]`` signaling listeners; at least one must be a websocket interface.
- ``[media.<name>]`` media interfaces.
- ``[realms.<name>]`` realms with ``call_agents.<name>``, ``[[...a_rules]]``, ``[[...c_rules]]``,
  or instead ``[pbx]``, the shorthand for the handbook's two realms (``_handbook.py``).

Defaults, applied in this order (2, 3 and 5 are listed in ``GatewayConfig.generated``, which
check-config prints):

1. Every key left out takes the default declared in ``schema.py`` / ``actions.py``.
2. No sip interface declared: one named ``sip`` is added, udp on 0.0.0.0:5060.
3. No media interface declared: one named ``default`` is added (0.0.0.0, ports
   20000-29999, a generated ec-p256 DTLS certificate).
4. A realm without ``media`` uses the only media interface there is; a call agent without
   ``sources`` matches its destination's address when that is an IP literal.
5. No ``[realms]`` but a ``[pbx]``: the handbook's realms and rules are generated.

So the smallest valid file is one websocket interface and ``[pbx] address = "..."``
(``examples/minimal.toml``). Rejected alternative: treating a lone realm with a destination
as the shorthand. It makes the same keys mean different things depending on what else the
file holds; ``[pbx]`` says what it is, and cannot be mixed with ``[realms]``.

Error handling: every problem found is collected, then one ``ConfigError`` lists them all.
I/O: reading the file and checking that referenced TLS/DTLS files exist, nothing else.
"""

from __future__ import annotations

import dataclasses
import re
import tomllib
from collections.abc import Callable, Sequence
from ipaddress import ip_address
from pathlib import Path
from typing import Any, TypeVar

from rtcgw.config._handbook import pbx_realms
from rtcgw.config._reader import Absent, Context, Table, as_str, read_dataclass
from rtcgw.config._realms import RealmReader
from rtcgw.config._values import BadValue, check_name, check_node_name, parse_host_port
from rtcgw.config._web import read_web
from rtcgw.config.errors import ConfigError, ConfigProblem
from rtcgw.config.schema import (
    GatewayConfig,
    GatewaySettings,
    HostPort,
    HttpSettings,
    Interface,
    InterfaceKind,
    MediaInterface,
    Realm,
    WebSettings,
)
from rtcgw.sip.transport import Transport

__all__ = ["Overrides", "load_config", "load_config_text"]

T = TypeVar("T")

_TRANSPORTS: dict[InterfaceKind, dict[str, Transport]] = {
    InterfaceKind.WEBSOCKET: {"ws": Transport.WS, "wss": Transport.WSS},
    InterfaceKind.SIP: {"udp": Transport.UDP, "tcp": Transport.TCP, "tls": Transport.TLS},
}
# Nothing registers ports for SIP over WebSocket (RFC 7118 section 4); 8080/8443 are the
# customary unprivileged HTTP ports. SIP: RFC 3261 section 19.1.2.
_DEFAULT_PORTS = {
    Transport.WS: 8080,
    Transport.WSS: 8443,
    Transport.UDP: 5060,
    Transport.TCP: 5060,
    Transport.TLS: 5061,
}
_TLS_KEYS = ("tls_certificate", "tls_key", "tls_ca", "require_client_certificate")
_TOML_POSITION = re.compile(r"\s*\(at line (\d+), column (\d+)\)$")


Overrides = Callable[[dict[str, Any]], None]


def load_config(path: Path, *, overrides: Overrides | None = None) -> GatewayConfig:
    """Read, check and snapshot the configuration file at ``path``.

    Relative file names inside (TLS and DTLS certificates) are resolved against the file's
    directory. Problems name the file by its name alone (``gateway.toml: gateway.workers:
    ...``), short enough to read; the snapshot's ``source`` is ``path`` as given.

    ``overrides`` edits the parsed TOML tables before they are checked (command-line
    options such as ``rtcgw run --pbx``), so overridden values get the same validation.

    Raises:
        ConfigError: the file cannot be read, is not TOML, or is not a valid configuration;
            it lists every problem found.
    """
    source = path.name
    try:
        data = path.read_bytes()
    except OSError as exc:
        reason = f"cannot read {path}: {exc.strerror or exc}"
        raise ConfigError([ConfigProblem(source, "", reason)]) from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        reason = f"not UTF-8 text (byte {exc.start}); TOML files are UTF-8"
        raise ConfigError([ConfigProblem(source, "", reason)]) from None
    config = load_config_text(
        text, source=source, base_dir=path.absolute().parent, overrides=overrides
    )
    return dataclasses.replace(config, source=str(path))


def load_config_text(
    text: str,
    *,
    source: str,
    base_dir: Path | None = None,
    overrides: Overrides | None = None,
) -> GatewayConfig:
    """Check and snapshot configuration ``text``; ``source`` names it in problems.

    Relative file names are resolved against ``base_dir`` (default: the current directory);
    ``overrides`` edits the parsed tables first, as in ``load_config``.

    Raises:
        ConfigError: the text is not TOML or not a valid configuration.
    """
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([_syntax_problem(source, str(exc))]) from None
    if overrides is not None:
        overrides(raw)
    context = Context(source, base_dir if base_dir is not None else Path.cwd())
    config = _build(Table(raw, "", context), context)
    if context.problems or config is None:
        raise ConfigError(context.problems)
    return config


def _syntax_problem(source: str, message: str) -> ConfigProblem:
    # Python 3.11's TOMLDecodeError carries the position only in its message.
    match = _TOML_POSITION.search(message)
    if match is None:
        return ConfigProblem(source, "", f"TOML syntax: {message}")
    reason = f"TOML syntax: {message[: match.start()]}"
    return ConfigProblem(source, "", reason, line=int(match[1]), column=int(match[2]))


def _build(root: Table, context: Context) -> GatewayConfig | None:
    gateway_table = root.table("gateway")
    gateway = GatewaySettings() if gateway_table is None else _gateway(gateway_table)
    http_table = root.table("http")
    http = (None if http_table is None else _finished(HttpSettings, http_table)) or HttpSettings()
    interfaces = [
        interface
        for name, table in root.named_tables("interfaces")
        if (interface := _interface(name, table)) is not None
    ]
    media = [
        medium
        for name, table in root.named_tables("media")
        if (medium := _media(name, table)) is not None
    ]
    realms_table, pbx_table = root.table("realms"), root.table("pbx")
    web_table = root.table("web")
    root.finish()
    generated: list[str] = []
    _add_default_interfaces(root, interfaces, media, generated)
    web = None if web_table is None else read_web(web_table, interfaces, generated)

    realms: Sequence[Realm] = ()
    if realms_table is not None and pbx_table is not None:
        root.problem("pbx", "[pbx] is a shorthand for [realms]: use one or the other")
    elif realms_table is not None:
        reader = RealmReader({i.name: i for i in interfaces}, [m.name for m in media])
        realms = reader.read(realms_table)
        reader.check_references(realms, context)
    elif pbx_table is not None:
        if len(media) > 1:
            pbx_table.problem(None, "the [pbx] shorthand needs exactly one media interface")
        # Interfaces that failed to load have said why; miscounting them would only add noise.
        interfaces_ok = not any(p.key_path.startswith("interfaces") for p in context.problems)
        shorthand = pbx_realms(
            pbx_table, interfaces, media[0].name if media else "", count=interfaces_ok
        )
        if shorthand is not None:
            realms = shorthand
            generated.append("realms: built from [pbx]; the handbook's realms rtc and pbx")
    else:
        root.problem("realms", "missing: declare [realms.<name>], or the PBX's address in [pbx]")

    _check_listeners(interfaces, http, web, context)
    _check_media(media, gateway, context)
    if context.problems:
        return None
    return GatewayConfig(
        source=context.source,
        gateway=gateway,
        http=http,
        interfaces=tuple(interfaces),
        media=tuple(media),
        realms=tuple(realms),
        generated=tuple(generated),
        web=web,
    )


def _add_default_interfaces(
    root: Table, interfaces: list[Interface], media: list[MediaInterface], generated: list[str]
) -> None:
    """Defaults 2 and 3 of the module docstring, and the one interface that has no default."""
    declared = root.data.get("interfaces")
    entries = declared.values() if isinstance(declared, dict) else ()
    # The declared types, even of interfaces that failed to load: a broken websocket
    # interface has its own problems and should not also read as a missing one.
    types = [entry.get("type") for entry in entries if isinstance(entry, dict)]
    if declared is None:
        root.problem("interfaces", "missing: declare at least one websocket interface")
    elif isinstance(declared, dict) and InterfaceKind.WEBSOCKET.value not in types:
        root.problem("interfaces", "no websocket interface: browsers need one to connect to")
    if InterfaceKind.SIP.value not in types:
        default_sip = Interface(
            name="sip",
            type=InterfaceKind.SIP,
            transport=Transport.UDP,
            listen=HostPort("0.0.0.0", _DEFAULT_PORTS[Transport.UDP]),
        )
        if any(interface.name == default_sip.name for interface in interfaces):
            root.problem("interfaces", "no sip interface declared, and 'sip' is taken: add one")
        interfaces.append(default_sip)
        generated.append("interfaces.sip: none declared; SIP on udp 0.0.0.0:5060")
    if "media" not in root.data:
        media.append(MediaInterface(name="default"))
        generated.append(
            "media.default: none declared; 0.0.0.0, ports 20000-29999, generated DTLS certificate"
        )
    elif root.data["media"] == {}:
        root.problem("media", "empty: declare [media.<name>] or leave media out")


def _finished(cls: type[T], table: Table) -> T | None:
    value = read_dataclass(cls, table)
    table.finish()
    return value


def _gateway(table: Table) -> GatewaySettings:
    settings = read_dataclass(GatewaySettings, table) or GatewaySettings()
    if "name" in table:
        try:
            check_node_name(settings.name)
        except BadValue as exc:
            table.problem("name", str(exc))
    table.finish()
    return settings


def _interface(name: str, table: Table) -> Interface | None:
    _check_name(table, name)
    kind_value = table.required("type", _as_kind, "websocket or sip")
    kind = kind_value if isinstance(kind_value, InterfaceKind) else None
    transport_text = table.get("transport", as_str)
    transport: Transport | None = None
    if kind is not None:
        transports = _TRANSPORTS[kind]
        if transport_text is Absent.MISSING:
            transport = next(iter(transports.values()))
        elif isinstance(transport_text, str):
            transport = transports.get(transport_text)
            if transport is None:
                choices = " or ".join(transports)
                reason = f"{transport_text!r} is not a {kind.value} transport: use {choices}"
                table.problem("transport", reason)
    default_port = None if transport is None else _DEFAULT_PORTS[transport]
    listen = table.get(
        "listen",
        lambda raw: parse_host_port(as_str(raw), default_port=default_port, listen=True),
    )
    files = {key: table.file(key) for key in ("tls_certificate", "tls_key", "tls_ca")}
    require_client_certificate = table.boolean("require_client_certificate", False)
    if transport is Transport.WSS or transport is Transport.TLS:
        for key in ("tls_certificate", "tls_key"):
            if key not in table:
                table.problem(key, f"missing: {_name(transport)} needs a certificate and key")
        if require_client_certificate and "tls_ca" not in table:
            reason = "needs tls_ca, the CAs that sign client certificates"
            table.problem("require_client_certificate", reason)
    elif transport is not None:
        for key in _TLS_KEYS:
            if key in table:
                table.problem(key, f"only for wss or tls; this interface is {_name(transport)}")
    table.finish()
    if kind is None or transport is None or default_port is None or listen is Absent.INVALID:
        return None
    return Interface(
        name=name,
        type=kind,
        transport=transport,
        listen=HostPort("0.0.0.0", default_port) if isinstance(listen, Absent) else listen,
        tls_certificate=files["tls_certificate"],
        tls_key=files["tls_key"],
        tls_ca=files["tls_ca"],
        require_client_certificate=require_client_certificate,
    )


def _media(name: str, table: Table) -> MediaInterface | None:
    _check_name(table, name)
    media = read_dataclass(MediaInterface, table, preset={"name": name})
    given = {key for key in ("dtls_certificate", "dtls_key") if key in table}
    if len(given) == 1:
        (missing,) = {"dtls_certificate", "dtls_key"} - given
        table.problem(missing, "missing: give dtls_certificate and dtls_key, or neither")
    if given and "dtls_key_type" in table:
        reason = "only for generated certificates; the key of dtls_key is used as it is"
        table.problem("dtls_key_type", reason)
    if media is not None:
        seen: set[str] = set()
        for index, address in enumerate(media.advertised_addresses):
            path = f"{table.path_of('advertised_addresses')}[{index}]"
            if address.is_unspecified or address.is_multicast:
                table.context.add(path, f"{address} cannot be advertised to peers")
            elif str(address) in seen:
                table.context.add(path, f"{address} is listed twice")
            seen.add(str(address))
        if media.bind_address.is_multicast:
            table.problem("bind_address", f"{media.bind_address} is a multicast address")
    table.finish()
    return media


def _check_listeners(
    interfaces: Sequence[Interface],
    http: HttpSettings,
    web: WebSettings | None,
    context: Context,
) -> None:
    """Two listeners may not bind the same port with the same protocol (TCP or UDP)."""
    bound: list[tuple[str, str, HostPort]] = [("tcp", "http.listen", http.listen)]
    for interface in interfaces:
        protocol = "udp" if interface.transport is Transport.UDP else "tcp"
        bound.append((protocol, f"interfaces.{interface.name}.listen", interface.listen))
    if web is not None:
        bound.append(("tcp", "web.listen", web.listen))
    for index, (protocol, path, address) in enumerate(bound):
        for other_protocol, other_path, other in bound[:index]:
            if protocol == other_protocol and _overlap(address, other):
                reason = f"{address} ({protocol}) overlaps {other_path} = {other}"
                context.add(path, reason)
                break


def _check_media(
    media: Sequence[MediaInterface], gateway: GatewaySettings, context: Context
) -> None:
    for index, medium in enumerate(media):
        path = f"media.{medium.name}.rtp_port_range"
        ports = medium.rtp_port_range
        # Each worker gets its own slice of the range; a call needs at least a browser-side
        # port and an RTP/RTCP pair toward SIP.
        if gateway.workers and ports.size < 4 * gateway.workers:
            reason = (
                f"{ports.size} ports cannot be split between {gateway.workers} workers "
                "(at least 4 each)"
            )
            context.add(path, reason)
        for other in media[:index]:
            same_address = _hosts_overlap(str(medium.bind_address), str(other.bind_address))
            theirs = other.rtp_port_range
            if same_address and ports.start <= theirs.end and theirs.start <= ports.end:
                reason = f"{ports} overlaps media.{other.name}.rtp_port_range = {theirs}"
                context.add(path, reason)


def _overlap(one: HostPort, two: HostPort) -> bool:
    """Would binding both addresses clash? Same port, and hosts that overlap."""
    if one.port != two.port or one.port == 0:
        return False  # port 0: each socket gets its own free port
    return _hosts_overlap(one.host, two.host)


def _hosts_overlap(one: str, two: str) -> bool:
    """Same host, or one is a wildcard that also covers the other."""
    if one == two:
        return True
    # "::" binds IPv4 too on a dual-stack host; "0.0.0.0" only IPv4.
    for wildcard, host in ((one, two), (two, one)):
        if wildcard == "::" or (wildcard == "0.0.0.0" and _is_ipv4(host)):
            return True
    return False


def _is_ipv4(host: str) -> bool:
    try:
        return ip_address(host).version == 4
    except ValueError:
        return False  # a host name: resolved only when bound


def _as_kind(value: object) -> InterfaceKind:
    text = as_str(value)
    for kind in InterfaceKind:
        if kind.value == text:
            return kind
    raise BadValue(f"{text!r} is not an interface type: use websocket or sip")


def _check_name(table: Table, name: str) -> None:
    try:
        check_name(name)
    except BadValue as exc:
        table.problem(None, str(exc))


def _name(transport: Transport) -> str:
    return transport.value.lower()
