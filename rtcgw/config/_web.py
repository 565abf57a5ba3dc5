"""Reading ``[web]``, the web phone's table, into ``WebSettings``.

The phone's HTTPS server borrows the first wss interface's certificate unless the table
names its own, so a configuration that already serves wss needs only ``[web]`` to get a
phone. The choice is made here, once, and recorded in ``GatewayConfig.generated``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from urllib.parse import urlsplit

from rtcgw.config._reader import Absent, Table, as_str, as_str_list, read_dataclass
from rtcgw.config._values import BadValue
from rtcgw.config.schema import IceServer, Interface, WebSettings
from rtcgw.sip.transport import Transport

__all__ = ["read_web"]

_ICE_SCHEMES = ("stun:", "stuns:", "turn:", "turns:")
_WS_SCHEMES = ("ws", "wss")


def read_web(
    table: Table, interfaces: Sequence[Interface], generated: list[str]
) -> WebSettings | None:
    """``[web]`` checked, its certificate filled in; None after recording any problem."""
    settings = read_dataclass(
        WebSettings,
        table,
        preset={"ice_servers": (), "sip_domain": None, "ws_url": None},
        checks={"path": _check_path},
    )
    ice_servers = tuple(
        server
        for entry in table.array_of_tables("ice_servers")
        if (server := _ice_server(entry)) is not None
    )
    sip_domain = table.get("sip_domain", _as_domain)
    ws_url = table.get("ws_url", _as_ws_url)
    certificate, key = _certificate(table, settings, interfaces, generated)
    table.finish()
    if settings is None or Absent.INVALID in (sip_domain, ws_url):
        return None
    if certificate is None or key is None:
        return None
    return WebSettings(
        listen=settings.listen,
        path=settings.path,
        tls_certificate=certificate,
        tls_key=key,
        ice_servers=ice_servers,
        sip_domain=sip_domain if isinstance(sip_domain, str) else None,
        ws_url=ws_url if isinstance(ws_url, str) else None,
    )


def _certificate(
    table: Table,
    settings: WebSettings | None,
    interfaces: Sequence[Interface],
    generated: list[str],
) -> tuple[Path | None, Path | None]:
    given = [key for key in ("tls_certificate", "tls_key") if key in table]
    if len(given) == 1:
        (missing,) = {"tls_certificate", "tls_key"} - set(given)
        table.problem(missing, "missing: give tls_certificate and tls_key, or neither")
        return None, None
    if given:
        if settings is None:
            return None, None
        return settings.tls_certificate, settings.tls_key
    for interface in interfaces:
        if interface.transport is Transport.WSS and interface.tls_certificate is not None:
            generated.append(f"web.tls_certificate: that of interfaces.{interface.name}")
            return interface.tls_certificate, interface.tls_key
    table.problem(
        "tls_certificate",
        "missing: the phone is served over HTTPS and there is no wss interface to take a "
        "certificate from; give tls_certificate and tls_key",
    )
    return None, None


def _check_path(path: str) -> None:
    if not path.startswith("/") or not path.endswith("/"):
        raise BadValue(f"{path!r} must start and end with / (for example /phone/)")
    if any(part in (".", "..") for part in path.split("/")) or "//" in path:
        raise BadValue(f"{path!r} has an empty, . or .. segment")
    if any(char in path for char in "?#%\\") or any(ord(char) <= 0x20 for char in path):
        raise BadValue(f"{path!r}: use letters, digits and - _ . ~ between the slashes")


def _ice_server(table: Table) -> IceServer | None:
    urls = table.required("urls", _as_ice_urls, 'e.g. urls = "stun:stun.example.com:3478"')
    username = table.get("username", as_str)
    credential = table.get("credential", as_str)
    turn = isinstance(urls, tuple) and any(url.startswith("turn") for url in urls)
    if turn and (username is Absent.MISSING or credential is Absent.MISSING):
        table.problem(None, "a TURN server needs username and credential")
    table.finish()
    if not isinstance(urls, tuple):
        return None
    return IceServer(
        urls=urls,
        username=username if isinstance(username, str) else None,
        credential=credential if isinstance(credential, str) else None,
    )


def _as_ice_urls(value: object) -> tuple[str, ...]:
    urls = as_str_list(value, single_ok=True)
    if not urls:
        raise BadValue("needs at least 1 URL")
    for url in urls:
        if not url.startswith(_ICE_SCHEMES) or len(url) <= url.index(":") + 1:
            raise BadValue(f"{url!r} is not a stun:, stuns:, turn: or turns: URL")
    return urls


def _as_domain(value: object) -> str:
    text = as_str(value)
    # An IPv6 literal is written in brackets, as in a SIP URI.
    bare = text[1:-1] if text.startswith("[") and text.endswith("]") else text.replace(":", "/")
    if not bare or any(char in bare for char in "@/ ;<>[]\"'"):
        raise BadValue(f"{text!r} is not a domain: write a host name or IP address")
    return text


def _as_ws_url(value: object) -> str:
    text = as_str(value)
    parts = urlsplit(text)
    if parts.scheme not in _WS_SCHEMES or not parts.hostname:
        raise BadValue(f"{text!r} is not a ws:// or wss:// URL")
    return text
