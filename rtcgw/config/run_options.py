"""``rtcgw run`` options as edits of the configuration tables.

``rtcgw run --pbx HOST:PORT`` runs with no file at all, as an operator trying rtcgw first
would; the same options also work on top of a file. Each option edits the parsed TOML
tables (``load_config(..., overrides=options.apply)``), so an option's value is checked
exactly as the same value in a file, and an error names the option's key path.

Without a file (or with a file that declares none of them), the options give:

- a wss interface on ``--wss`` (default 0.0.0.0:8443), or a plain ws interface with
  ``--ws``; both options give both;
- SIP on udp and tcp at ``--sip`` (default 0.0.0.0:5060);
- media on ``--media-ip`` (bind) advertising ``--advertised-ip``;
- the HTTP listener (``/metrics``, ``/healthz``) on ``--metrics`` (``[http] listen``);
- the web phone on ``--web`` (``[web] listen``; left out, no phone is served).

A wss interface without a certificate gets ``--cert``/``--key``, or the ad-hoc
self-signed pair that ``certificate`` (a callable, so nothing is generated unless needed)
returns.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["DEFAULT_SIP", "DEFAULT_WSS", "RunOptions"]

DEFAULT_WSS = "0.0.0.0:8443"
DEFAULT_SIP = "0.0.0.0:5060"

Tables = dict[str, Any]


@dataclass(frozen=True, slots=True)
class RunOptions:
    """The configuration options of ``rtcgw run``; None means "as the file says"."""

    workers: int | None = None
    pbx: str | None = None
    wss: str | None = None
    ws: str | None = None
    sip: str | None = None
    cert: Path | None = None
    key: Path | None = None
    media_ip: str | None = None
    advertised_ip: str | None = None
    max_message_bytes: int | None = None
    metrics: str | None = None
    web: str | None = None

    def overrides(self, certificate: Callable[[], tuple[Path, Path]]) -> Callable[[Tables], None]:
        """The edit to pass to ``load_config``; ``certificate`` makes an ad-hoc pair."""

        def apply(raw: Tables) -> None:
            self._apply(raw, certificate)

        return apply

    def _apply(self, raw: Tables, certificate: Callable[[], tuple[Path, Path]]) -> None:
        gateway = _table(raw, "gateway")
        if self.workers is not None:
            gateway["workers"] = self.workers
        if self.max_message_bytes is not None:
            gateway["max_message_bytes"] = self.max_message_bytes
        if self.pbx is not None:
            _table(raw, "pbx")["address"] = self.pbx
        if self.metrics is not None:
            _table(raw, "http")["listen"] = self.metrics
        if self.web is not None:
            _table(raw, "web")["listen"] = self.web
        interfaces = _table(raw, "interfaces")
        self._websockets(interfaces)
        self._sip(interfaces)
        self._tls(interfaces, certificate)
        self._media(raw)

    def _websockets(self, interfaces: Tables) -> None:
        wanted = {"wss": self.wss, "ws": self.ws}
        if not _of_type(interfaces, "websocket") and self.wss is None and self.ws is None:
            wanted["wss"] = DEFAULT_WSS
        for transport, listen in wanted.items():
            if listen is None:
                continue
            existing = [
                t
                for t in _of_type(interfaces, "websocket")
                if t.get("transport", "ws") == transport
            ]
            for table in existing:
                table["listen"] = listen
            if not existing:
                interfaces[_free_name(interfaces, transport)] = {
                    "type": "websocket",
                    "transport": transport,
                    "listen": listen,
                }

    def _sip(self, interfaces: Tables) -> None:
        existing = _of_type(interfaces, "sip")
        if existing:
            for table in existing:
                if self.sip is not None:
                    table["listen"] = self.sip
            return
        listen = self.sip if self.sip is not None else DEFAULT_SIP
        for transport in ("udp", "tcp"):
            interfaces[_free_name(interfaces, f"sip_{transport}")] = {
                "type": "sip",
                "transport": transport,
                "listen": listen,
            }

    def _tls(self, interfaces: Tables, certificate: Callable[[], tuple[Path, Path]]) -> None:
        secured = [
            t
            for t in interfaces.values()
            if isinstance(t, dict) and t.get("transport") in ("wss", "tls")
        ]
        for table in secured:
            if self.cert is not None:
                table["tls_certificate"] = str(self.cert)
            if self.key is not None:
                table["tls_key"] = str(self.key)
            if "tls_certificate" not in table and "tls_key" not in table:
                cert, key = certificate()
                table["tls_certificate"], table["tls_key"] = str(cert), str(key)

    def _media(self, raw: Tables) -> None:
        if self.media_ip is None and self.advertised_ip is None:
            return
        media = _table(raw, "media")
        tables = [t for t in media.values() if isinstance(t, dict)]
        if not tables:
            tables = [media.setdefault("default", {})]
        for table in tables:
            if self.media_ip is not None:
                table["bind_address"] = self.media_ip
            if self.advertised_ip is not None:
                table["advertised_addresses"] = [self.advertised_ip]


def _table(raw: Tables, key: str) -> Tables:
    value = raw.setdefault(key, {})
    if not isinstance(value, dict):
        # Leave it: the loader reports the key as not a table, naming it.
        return {}
    return value


def _of_type(interfaces: Tables, kind: str) -> list[Tables]:
    return [t for t in interfaces.values() if isinstance(t, dict) and t.get("type") == kind]


def _free_name(tables: Tables, name: str) -> str:
    candidate, index = name, 2
    while candidate in tables:
        candidate, index = f"{name}{index}", index + 1
    return candidate
