"""``rtcgw run`` as a child process on the handbook's configuration, on loopback.

``handbook_config`` writes ``examples/gateway.toml`` with only its deployment lines
changed: listeners on 127.0.0.1 port 0, the PBX at the benchmark's SIP side, media
advertised on 127.0.0.1 and the example's certificate pair by absolute path. ``run_gateway``
starts the gateway with JSON logs, follows them (the pipe must never fill, or the gateway
would block on its own logging) and keeps what a benchmark needs: the bound listeners,
the worker PIDs, the media figures of every closed stream and a count of warnings.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import trio

from benchmarks.loadgen.children import REPO_ROOT, stop

__all__ = [
    "EXAMPLE_CERTIFICATE",
    "GatewayFailed",
    "RunningGateway",
    "handbook_config",
    "run_gateway",
    "scrape_metrics",
]

EXAMPLES: Final = REPO_ROOT / "examples"
#: The example's wss certificate, issued to 127.0.0.1: what the browser side trusts.
EXAMPLE_CERTIFICATE: Final = EXAMPLES / "tls" / "example.crt"

#: The handbook's deployment lines and their loopback replacements.
_DEPLOYMENT: Final = (
    ('listen = "0.0.0.0:8443"', 'listen = "127.0.0.1:0"'),
    ('listen = "0.0.0.0:5060"', 'listen = "127.0.0.1:0"'),
    ('listen = "127.0.0.1:9464"', 'listen = "127.0.0.1:0"'),
    ('advertised_addresses = ["203.0.113.10"]', 'advertised_addresses = ["127.0.0.1"]'),
    ('tls_certificate = "tls/example.crt"', f'tls_certificate = "{EXAMPLE_CERTIFICATE}"'),
    ('tls_key = "tls/example.key"', f'tls_key = "{EXAMPLES / "tls" / "example.key"}"'),
    ('sources = ["192.0.2.10/32"]', 'sources = ["127.0.0.1/32"]'),
)
_PBX_DESTINATION: Final = 'destination = "sip:192.0.2.10:5060;transport=udp"'
_READY_TIMEOUT_S: Final = 30.0
_SUMMED_STREAM_FIELDS: Final = ("packets_in", "packets_out", "rtcp_in", "rtcp_out")


class GatewayFailed(Exception):
    """The gateway could not be configured or started, or it exited."""


def handbook_config(directory: Path, pbx_port: int) -> Path:
    """Write the loopback copy of the handbook example into ``directory``; returns its path.

    Raises:
        GatewayFailed: the example no longer has a line this function replaces.
    """
    text = (EXAMPLES / "gateway.toml").read_text(encoding="utf-8")
    for old, new in (
        *_DEPLOYMENT,
        (_PBX_DESTINATION, f'destination = "sip:127.0.0.1:{pbx_port};transport=udp"'),
    ):
        if text.count(old) != 1:
            raise GatewayFailed(f"examples/gateway.toml: expected one line {old!r}")
        text = text.replace(old, new)
    path = directory / "gateway.toml"
    path.write_text(text, encoding="utf-8")
    return path


@dataclass
class RunningGateway:
    """A gateway process and what its log said so far."""

    process: trio.Process
    listeners: dict[str, tuple[str, int]] = field(default_factory=dict)
    worker_pids: dict[int, int] = field(default_factory=dict)
    #: media.stream_closed figures summed by leg ("a" = browser side, "b" = SIP side)
    streams: dict[str, Counter[str]] = field(default_factory=dict)
    streams_closed: int = 0
    #: log lines by level (warning, error, ...) and by event name for those levels
    levels: Counter[str] = field(default_factory=Counter)
    problems: Counter[str] = field(default_factory=Counter)
    _ready: trio.Event = field(default_factory=trio.Event)
    _changed: trio.Event = field(default_factory=trio.Event)

    @property
    def pid(self) -> int:
        """The supervisor's process id."""
        return self.process.pid

    def address(self, transport: str) -> tuple[str, int]:
        """The bound address of the listener with this transport ("WSS", "UDP", "HTTP")."""
        return self.listeners[transport]

    async def wait_streams_closed(self, count: int) -> None:
        """Wait until ``count`` media streams were reported closed (the caller bounds it)."""
        while self.streams_closed < count:
            if self.process.returncode is not None:
                raise GatewayFailed(f"gateway exited ({self.process.returncode})")
            changed = self._changed
            await changed.wait()

    def _add(self, event: dict[str, Any]) -> None:
        name = event.get("event")
        level = str(event.get("level", "info"))
        self.levels[level] += 1
        if level in ("warning", "error", "critical"):
            self.problems[str(name)] += 1
        if name == "gateway.ready":
            for item in event.get("listeners", ()):
                self.listeners.setdefault(item["transport"], (item["host"], int(item["port"])))
            self._ready.set()
        elif name == "worker.ready":
            self.worker_pids[int(event["worker"])] = int(event["pid"])
        elif name == "media.stream_closed":
            leg = self.streams.setdefault(str(event.get("leg")), Counter())
            for key in _SUMMED_STREAM_FIELDS:
                leg[key] += int(event.get(key) or 0)
            for reason, count in (event.get("dropped") or {}).items():
                leg[f"dropped:{reason}"] += int(count)
            self.streams_closed += 1
        self._changed.set()
        self._changed = trio.Event()


def _json_objects(line: str) -> list[dict[str, Any]]:
    """The JSON objects on one log line (two processes' lines may run together)."""
    decoder = json.JSONDecoder()
    found: list[dict[str, Any]] = []
    text, at = line.strip(), 0
    while at < len(text):
        try:
            item, at = decoder.raw_decode(text, at)
        except json.JSONDecodeError:
            return [*found, {"event": "stderr", "level": "error", "text": text[at:]}]
        if isinstance(item, dict):
            found.append(item)
        while at < len(text) and text[at].isspace():
            at += 1
    return found


async def _follow(gateway: RunningGateway, stream: trio.abc.ReceiveStream) -> None:
    buffer = b""
    async for chunk in stream:
        buffer += chunk
        *lines, buffer = buffer.split(b"\n")
        for line in lines:
            for event in _json_objects(line.decode("utf-8", errors="replace")):
                gateway._add(event)
    gateway._changed.set()


@asynccontextmanager
async def run_gateway(config: Path, *, workers: int) -> AsyncIterator[RunningGateway]:
    """Start ``rtcgw run -c config --workers N``; yield it once it is ready.

    Resource handling: the gateway is stopped by its PID when the block ends (SIGTERM,
    then SIGKILL), on errors and cancellation too.

    Raises:
        GatewayFailed: it exited or was not ready within 30 s.
    """
    command = [
        sys.executable, "-m", "rtcgw", "--log-format", "json", "run",
        "--workers", str(workers), "--metrics", "127.0.0.1:0", "-c", str(config),
    ]  # fmt: skip
    process = await trio.lowlevel.open_process(
        command,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        cwd=REPO_ROOT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    gateway = RunningGateway(process)
    async with trio.open_nursery() as nursery:
        assert process.stderr is not None
        nursery.start_soon(_follow, gateway, process.stderr)
        try:
            with trio.move_on_after(_READY_TIMEOUT_S):
                while not gateway._ready.is_set() and process.returncode is None:
                    changed = gateway._changed
                    await changed.wait()
            if not gateway._ready.is_set() or len(gateway.worker_pids) < workers:
                raise GatewayFailed(
                    f"gateway (pid {process.pid}) not ready within {_READY_TIMEOUT_S:.0f} s "
                    f"(exit {process.returncode}, problems {dict(gateway.problems)})"
                )
            yield gateway
        finally:
            with trio.CancelScope(shield=True):
                await stop(process)
            nursery.cancel_scope.cancel()


async def scrape_metrics(address: tuple[str, int]) -> dict[str, float]:
    """``GET /metrics``: every sample as ``{"name{labels}": value}`` (empty on failure)."""
    host, port = address
    try:
        with trio.move_on_after(5):
            stream = await trio.open_tcp_stream(host, port)
            async with stream:
                await stream.send_all(
                    f"GET /metrics HTTP/1.0\r\nHost: {host}:{port}\r\n\r\n".encode()
                )
                body = b""
                async for chunk in stream:
                    body += chunk
            return _samples(body.partition(b"\r\n\r\n")[2].decode(errors="replace"))
    except OSError:
        return {}
    return {}


def _samples(text: str) -> dict[str, float]:
    samples: dict[str, float] = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        name, _, value = line.rpartition(" ")
        try:
            samples[name] = float(value)
        except ValueError:
            continue
    return samples
