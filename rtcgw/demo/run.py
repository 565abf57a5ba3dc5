"""``rtcgw demo``: the gateway on an embedded configuration next to the demo SIP service.

The configuration is the handbook's (the ``[pbx]`` shorthand, the same realms and rules as
``examples/gateway.toml``) with the PBX at the demo service's loopback port, a self-signed
certificate, media on loopback (or on every address with ``--advertise``), and the web
phone enabled when this build has it.
"""

from __future__ import annotations

import json
import secrets
import shutil
import sys
import tempfile
from dataclasses import dataclass, fields
from functools import partial
from pathlib import Path

import trio

from rtcgw.config import ConfigError, GatewayConfig, load_config_text
from rtcgw.demo.auth import DigestAuth
from rtcgw.demo.core import ECHO_EXTENSION, TONE_EXTENSION
from rtcgw.demo.registrar import Registrar
from rtcgw.demo.service import TONE_HZ, serve_demo
from rtcgw.observability.logging import get_logger
from rtcgw.observability.multiproc import metrics_directory
from rtcgw.supervisor.tls import make_self_signed

__all__ = ["DEMO_USERS", "DemoOptions", "demo_config_text", "run_demo", "web_supported"]

log = get_logger()

#: the users the banner suggests; any other user registers too (password = user name)
DEMO_USERS = ("1001", "1002")


@dataclass(frozen=True, slots=True)
class DemoOptions:
    """What ``rtcgw demo`` may change; the rest is the embedded configuration."""

    advertise: str | None = None
    wss_port: int = 8443
    web_port: int = 8444
    sip_port: int = 0
    metrics: str = "127.0.0.1:0"
    workers: int = 1

    @property
    def listen_host(self) -> str:
        """Loopback unless the demo is advertised to other machines."""
        return "127.0.0.1" if self.advertise is None else "0.0.0.0"

    @property
    def public_host(self) -> str:
        """The host browsers use in URLs and media addresses."""
        return self.advertise or "127.0.0.1"


def web_supported() -> bool:
    """Whether this build's configuration has the web phone's ``[web]`` section."""
    return "web" in {f.name for f in fields(GatewayConfig)}


def demo_config_text(options: DemoOptions, *, demo_port: int, cert: Path, key: Path) -> str:
    """The embedded configuration, with the PBX at the demo service on ``demo_port``."""

    def q(value: object) -> str:
        return json.dumps(str(value))  # a TOML basic string

    lines = [
        "[gateway]",
        'name = "rtcgw-demo"',
        f"workers = {options.workers}",
        "[http]",
        f"listen = {q(options.metrics)}",
        "[interfaces.wss]",
        'type = "websocket"',
        'transport = "wss"',
        f"listen = {q(f'{options.listen_host}:{options.wss_port}')}",
        f"tls_certificate = {q(cert)}",
        f"tls_key = {q(key)}",
        "[interfaces.sip]",
        'type = "sip"',
        'transport = "udp"',
        f"listen = {q(f'127.0.0.1:{options.sip_port}')}",
        "[media.demo]",
        f"bind_address = {q(options.listen_host)}",
        f"advertised_addresses = [{q(options.public_host)}]",
        "[pbx]",
        f"address = {q(f'127.0.0.1:{demo_port}')}",
    ]
    if web_supported():
        lines += ["[web]", f"listen = {q(f'{options.listen_host}:{options.web_port}')}"]
    return "\n".join(lines) + "\n"


def banner(options: DemoOptions, listeners: dict[str, int], demo_port: int) -> str:
    """What to tell the person who ran ``rtcgw demo``."""
    host = options.public_host
    out = ["", "rtcgw demo is running.", ""]
    if web_supported():
        port = listeners.get("web", options.web_port)
        out.append(f"  Web phone:   https://{host}:{port}/phone/")
        out.append("               (a self-signed certificate: accept it once per port)")
    else:
        out.append("  Web phone:   not in this build; use any SIP-over-WebSocket client")
    out += [
        f"  WebSocket:   wss://{host}:{listeners.get('wss', options.wss_port)}",
        "  Users:       "
        + ", ".join(f"{u}/{u}" for u in DEMO_USERS)
        + "  (user/password; any user whose password is its name)",
        "  Call:        a registered user by name (two tabs: 1001 calls 1002),",
        f"               {ECHO_EXTENSION} echo (hear yourself),",
        f"               {TONE_EXTENSION} a {TONE_HZ:g} Hz tone (keypad digits are logged)",
        f"  Demo PBX:    sip:127.0.0.1:{demo_port} (udp)",
        "",
        "Stop with Ctrl-C.",
        "",
    ]
    return "\n".join(out)


async def _demo(options: DemoOptions, worker_args: tuple[str, ...]) -> None:
    from rtcgw.supervisor.arbiter import run_gateway  # noqa: PLC0415 (after the metrics dir)

    made = make_self_signed(Path(tempfile.mkdtemp(prefix="rtcgw-demo-tls-")))
    registrar = Registrar(DigestAuth("rtcgw-demo", secrets.token_bytes(16)))
    async with trio.open_nursery() as nursery:
        demo_port: int = await nursery.start(serve_demo, "127.0.0.1", 0, registrar)
        text = demo_config_text(options, demo_port=demo_port, cert=made.certificate, key=made.key)
        config = load_config_text(text, source="rtcgw demo")

        async def gateway(*, task_status: trio.TaskStatus[object]) -> None:
            await run_gateway(
                config,
                worker_count=options.workers,
                worker_args=worker_args,
                task_status=task_status,
            )
            nursery.cancel_scope.cancel()  # the gateway stopped: so does the demo service

        bound = await nursery.start(gateway)
        listeners = {b.interface: b.port for b in bound}
        print(banner(options, listeners, demo_port), flush=True)
        log.info(
            "demo.ready",
            call_id="",
            demo_port=demo_port,
            certificate=str(made.certificate),
            fingerprint_sha256=made.fingerprint_sha256,
            users=list(DEMO_USERS),
            echo=ECHO_EXTENSION,
            tone=TONE_EXTENSION,
        )
    shutil.rmtree(made.certificate.parent, ignore_errors=True)


def run_demo(options: DemoOptions, worker_args: tuple[str, ...]) -> int:
    """Run the demo until SIGINT/SIGTERM; the exit code (0, 1 failure, 2 bad config)."""
    with metrics_directory():
        try:
            trio.run(partial(_demo, options, worker_args))
        except ConfigError as exc:
            print(exc, file=sys.stderr)
            return 2
        except OSError as exc:
            log.error("demo.failed", call_id="", error=str(exc))
            return 1
    return 0
