"""The web phone's HTTP endpoints: its static files and ``config.json``.

``web_endpoints`` is a ``Responder`` for ``serve_http`` (over TLS, from the supervisor).
Under ``[web] path`` it answers ``GET <path>`` with index.html, ``GET <path>config.json``
with the phone's settings (``phone_settings``), and ``GET <path><file>`` with a file of
the package's ``rtcgw/web/static`` folder; everything else is 404. The files are read
once, when the responder is made, into a table keyed by their relative names: a request
can only ever name one of those, so no path it sends can reach another file.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from importlib import resources
from importlib.resources.abc import Traversable
from ipaddress import ip_address
from typing import Any
from urllib.parse import unquote

from rtcgw.config import GatewayConfig, InterfaceKind, WebSettings
from rtcgw.observability.logging import get_logger
from rtcgw.sip.transport import Transport
from rtcgw.supervisor.http import HttpResponse, Responder

__all__ = [
    "CONTENT_TYPES",
    "JSSIP_FILE",
    "WebError",
    "load_static",
    "phone_settings",
    "static_folder",
    "web_endpoints",
]

log = get_logger()

#: The vendored JsSIP, relative to the static folder; `make web` puts it there.
JSSIP_FILE = "vendor/jssip.min.js"

CONTENT_TYPES: Mapping[str, str] = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".txt": "text/plain; charset=utf-8",
}
_INDEX = "index.html"
_CONFIG = "config.json"
_MAX_FILES = 256
# The page and its script change with every upgrade and are small: revalidate each time.
# JsSIP changes only with a new pin, so a browser may keep it for an hour.
_FRESH = ("Cache-Control", "no-cache")
_VENDOR = ("Cache-Control", "public, max-age=3600")
_SETTINGS = ("Cache-Control", "no-store")
# The page loads only its own files; the WebSocket lives on another port, so any ws/wss.
_SECURITY = (
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "no-referrer"),
    (
        "Content-Security-Policy",
        (
            "default-src 'self'; connect-src 'self' wss: ws:; img-src 'self' data:; "
            "media-src 'self' blob: mediastream:; object-src 'none'; base-uri 'none'; "
            "frame-ancestors 'none'"
        ),
    ),
)


class WebError(Exception):
    """The web phone's files cannot be served as configured."""


def static_folder() -> Traversable:
    """The phone's files inside the installed package."""
    return resources.files("rtcgw.web") / "static"


def load_static(folder: Traversable) -> dict[str, bytes]:
    """Every file under ``folder`` by its relative name ("vendor/jssip.min.js").

    Raises:
        WebError: there is no index.html (the package was installed without its files).
    """
    files: dict[str, bytes] = {}
    pending: list[tuple[str, Traversable]] = [("", folder)]
    while pending and len(files) < _MAX_FILES:
        prefix, directory = pending.pop()
        for entry in directory.iterdir():
            name = prefix + entry.name
            if entry.name.startswith("."):
                continue
            if entry.is_dir():
                pending.append((name + "/", entry))
            elif entry.name.endswith(tuple(CONTENT_TYPES)):
                files[name] = entry.read_bytes()
    if _INDEX not in files:
        raise WebError(f"the web phone's {_INDEX} is missing from {folder}")
    return files


def phone_settings(
    config: GatewayConfig, ws_ports: Mapping[str, int] | None = None
) -> dict[str, Any]:
    """What ``config.json`` tells the phone: where to connect, its domain, ICE servers.

    ``ws_url`` and ``sip_domain`` are None when the page must fill them in from its own
    host (``ws_scheme`` and ``ws_port`` then say which WebSocket interface to use).
    ``ws_ports`` gives interfaces' bound ports by name, for those configured with port 0.
    """
    ports = ws_ports or {}
    web = _web(config)
    websockets = [i for i in config.interfaces if i.type is InterfaceKind.WEBSOCKET]
    # Browsers refuse ws:// from an https:// page, so a wss interface comes first.
    websockets.sort(key=lambda i: i.transport is not Transport.WSS)
    chosen = websockets[0] if websockets else None
    return {
        "ws_url": web.ws_url,
        "ws_scheme": None if chosen is None else chosen.transport.value.lower(),
        "ws_port": None if chosen is None else ports.get(chosen.name, chosen.listen.port),
        "sip_domain": web.sip_domain if web.sip_domain is not None else _sip_domain(config),
        "ice_servers": [
            {
                "urls": list(server.urls),
                **({"username": server.username} if server.username is not None else {}),
                **({"credential": server.credential} if server.credential is not None else {}),
            }
            for server in web.ice_servers
        ],
    }


def _web(config: GatewayConfig) -> WebSettings:
    if config.web is None:
        raise WebError(f"{config.source}: no [web] table, so there is no web phone to serve")
    return config.web


def _sip_domain(config: GatewayConfig) -> str | None:
    """The first sip interface's address, unless it is a wildcard (then: the page's host)."""
    for interface in config.interfaces:
        if interface.type is InterfaceKind.SIP:
            host = interface.listen.host
            try:
                if ip_address(host).is_unspecified:
                    return None
            except ValueError:
                return host  # a name
            return f"[{host}]" if ":" in host else host
    return None


def web_endpoints(
    config: GatewayConfig,
    *,
    files: Mapping[str, bytes] | None = None,
    ws_ports: Mapping[str, int] | None = None,
) -> Responder:
    """The phone's endpoints under ``[web] path``; ``files`` defaults to the package's.

    ``ws_ports`` is passed on to ``phone_settings``.

    Raises:
        WebError: the configuration has no ``[web]``, or the package has no phone.
    """
    web = _web(config)
    table = dict(files) if files is not None else load_static(static_folder())
    if JSSIP_FILE not in table:
        log.warning("web.jssip.missing", file=JSSIP_FILE, hint="run `make web`")
    settings = json.dumps(phone_settings(config, ws_ports), indent=2).encode("utf-8") + b"\n"
    prefix = web.path

    async def respond(method: str, target: str) -> HttpResponse:
        path = target.partition("?")[0]
        if path == prefix.rstrip("/") and prefix != "/":
            # Relative links in the page need the trailing slash.
            return HttpResponse(308, b"moved\n", headers=(("Location", prefix),))
        if not path.startswith(prefix):
            return HttpResponse(404, b"not found\n")
        name = unquote(path[len(prefix) :], errors="replace") or _INDEX
        if method != "GET":
            return HttpResponse(405, b"method not allowed\n", headers=(("Allow", "GET"),))
        if name == _CONFIG:
            return HttpResponse(200, settings, CONTENT_TYPES[".json"], (_SETTINGS, *_SECURITY))
        body = table.get(name)
        if body is None:
            return HttpResponse(404, b"not found\n")
        cache = _VENDOR if name.startswith("vendor/") else _FRESH
        content_type = CONTENT_TYPES["." + name.rpartition(".")[2]]
        return HttpResponse(200, body, content_type, (cache, *_SECURITY))

    return respond
