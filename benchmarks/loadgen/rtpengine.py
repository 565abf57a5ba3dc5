"""rtpengine as a child process on loopback, and a client of its ng control protocol.

``run_rtpengine`` starts Debian's ``rtpengine`` (package ``rtpengine-daemon``) in the
foreground with no configuration file (``--config-file=none``: the system's
``/etc/rtpengine/rtpengine.conf`` is never read), no kernel forwarding (``--table=-1``),
one interface on 127.0.0.1, a private port range and pid file, its log on standard error
(followed here, so the pipe never fills), and ends it by its PID when the block ends.

``NgClient`` speaks the ng protocol: a cookie, a space and a bencoded dictionary per UDP
datagram, the reply carrying the same cookie. rtpengine caches replies by cookie to
absorb retransmissions, so every request gets a fresh cookie and only a retransmission
of the same request reuses it.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
from collections import Counter
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final, TypeAlias

import trio

from benchmarks.loadgen.children import REPO_ROOT, stop

__all__ = [
    "DEBIAN_PACKAGE",
    "Bencoded",
    "NgClient",
    "NgError",
    "RtpengineFailed",
    "RunningRtpengine",
    "bdecode",
    "bencode",
    "run_rtpengine",
]

#: The Debian package that installs /usr/bin/rtpengine (userspace relay only).
DEBIAN_PACKAGE: Final = "rtpengine-daemon"
#: Where the package puts it, for a PATH without /usr/bin.
_DEBIAN_PATH: Final = "/usr/bin/rtpengine"
_READY_TIMEOUT_S: Final = 15.0
_NG_TIMEOUT_S: Final = 1.0
_NG_ATTEMPTS: Final = 5
_MAX_DATAGRAM: Final = 65535
#: rtpengine's log levels as it prints them (syslog names), mapped to the counted name.
_PROBLEM_LEVELS: Final = {
    "WARNING": "warning",
    "ERR": "error",
    "CRIT": "critical",
    "ALERT": "critical",
    "EMERG": "critical",
}

Bencoded: TypeAlias = int | str | bytes | list["Bencoded"] | dict[str, "Bencoded"]


class RtpengineFailed(Exception):
    """rtpengine is not installed, did not start, or exited."""


class NgError(Exception):
    """rtpengine answered an ng request with an error, or did not answer at all."""


# -- bencode ---------------------------------------------------------------------------------


def bencode(value: Bencoded) -> bytes:
    """The bencoding of ``value`` (strings are UTF-8; dictionary keys sorted)."""
    out: list[bytes] = []
    _encode(value, out)
    return b"".join(out)


def _encode(value: Bencoded, out: list[bytes]) -> None:
    if isinstance(value, bool):
        raise TypeError("bencode has no booleans")
    if isinstance(value, int):
        out.append(b"i%de" % value)
    elif isinstance(value, str):
        raw = value.encode()
        out.append(b"%d:%s" % (len(raw), raw))
    elif isinstance(value, bytes):
        out.append(b"%d:%s" % (len(value), value))
    elif isinstance(value, list):
        out.append(b"l")
        for item in value:
            _encode(item, out)
        out.append(b"e")
    else:
        out.append(b"d")
        for key in sorted(value):
            _encode(key, out)
            _encode(value[key], out)
        out.append(b"e")


def bdecode(data: bytes) -> Bencoded:
    """The value bencoded in ``data``; byte strings come back as ``str`` (UTF-8, lenient).

    Raises:
        ValueError: ``data`` is not exactly one bencoded value.
    """
    value, end = _decode(data, 0)
    if end != len(data):
        raise ValueError(f"bencode: {len(data) - end} bytes after the value")
    return value


def _decode(data: bytes, at: int) -> tuple[Bencoded, int]:
    if at >= len(data):
        raise ValueError("bencode: truncated")
    lead = data[at : at + 1]
    if lead == b"i":
        end = data.index(b"e", at)
        return int(data[at + 1 : end]), end + 1
    if lead == b"l":
        items: list[Bencoded] = []
        at += 1
        while data[at : at + 1] != b"e":
            item, at = _decode(data, at)
            items.append(item)
        return items, at + 1
    if lead == b"d":
        mapping: dict[str, Bencoded] = {}
        at += 1
        while data[at : at + 1] != b"e":
            key, at = _decode(data, at)
            if not isinstance(key, str):
                raise ValueError(f"bencode: dictionary key is not a string: {key!r}")
            mapping[key], at = _decode(data, at)
        return mapping, at + 1
    if lead.isdigit():
        colon = data.index(b":", at)
        start = colon + 1
        end = start + int(data[at:colon])
        if end > len(data):
            raise ValueError("bencode: string runs past the end")
        return data[start:end].decode(errors="replace"), end
    raise ValueError(f"bencode: unexpected byte {lead!r} at {at}")


# -- the ng client ---------------------------------------------------------------------------


class NgClient:
    """Requests to rtpengine's ng port, one UDP socket per request."""

    def __init__(self, address: tuple[str, int]) -> None:
        self.address = address
        self.requests = 0
        self.retransmissions = 0

    async def request(self, command: str, fields: Mapping[str, Bencoded]) -> dict[str, Bencoded]:
        """Send ``command`` with ``fields``; the reply dictionary (``result`` is ``ok``/``pong``).

        Each attempt waits ``_NG_TIMEOUT_S``; a retransmission reuses the request's cookie, so
        rtpengine answers it from its cache instead of running the command twice.

        Raises:
            NgError: an ``error`` result, a reply that is not a dictionary, or no reply.
        """
        cookie = secrets.token_hex(8).encode()
        datagram = cookie + b" " + bencode({"command": command, **fields})
        self.requests += 1
        with trio.socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            await sock.bind(("127.0.0.1", 0))
            for attempt in range(_NG_ATTEMPTS):
                if attempt:
                    self.retransmissions += 1
                with trio.move_on_after(_NG_TIMEOUT_S):
                    try:
                        await sock.sendto(datagram, self.address)
                        while True:
                            data, _source = await sock.recvfrom(_MAX_DATAGRAM)
                            answered, _, body = data.partition(b" ")
                            if answered == cookie:
                                return _checked(command, body)
                    except ConnectionRefusedError:
                        # Nothing listens there (yet): the ICMP error of an earlier send.
                        await trio.sleep(_NG_TIMEOUT_S / 10)
        raise NgError(f"rtpengine {self.address}: no reply to {command!r} in {_NG_ATTEMPTS} tries")

    async def ping(self) -> None:
        """``ping``; returns when rtpengine answered ``pong``."""
        await self.request("ping", {})

    async def offer(self, sdp: bytes, call_id: str, from_tag: str, **options: Bencoded) -> bytes:
        """``offer``: the SDP rewritten for the callee."""
        fields: dict[str, Bencoded] = {"sdp": sdp, "call-id": call_id, "from-tag": from_tag}
        reply = await self.request("offer", {**fields, **options})
        return _sdp(reply)

    async def answer(
        self, sdp: bytes, call_id: str, from_tag: str, to_tag: str, **options: Bencoded
    ) -> bytes:
        """``answer``: the SDP rewritten for the caller."""
        fields: dict[str, Bencoded] = {
            "sdp": sdp,
            "call-id": call_id,
            "from-tag": from_tag,
            "to-tag": to_tag,
        }
        reply = await self.request("answer", {**fields, **options})
        return _sdp(reply)

    async def delete(self, call_id: str, from_tag: str) -> dict[str, Bencoded]:
        """``delete`` the call; the reply carries its statistics."""
        return await self.request("delete", {"call-id": call_id, "from-tag": from_tag})


def _checked(command: str, body: bytes) -> dict[str, Bencoded]:
    try:
        reply = bdecode(body)
    except ValueError as exc:
        raise NgError(f"rtpengine: unreadable reply to {command!r}: {exc}") from None
    if not isinstance(reply, dict):
        raise NgError(f"rtpengine: reply to {command!r} is not a dictionary: {reply!r}")
    if reply.get("result") == "error":
        raise NgError(f"rtpengine refused {command!r}: {reply.get('error-reason')!r}")
    return reply


def _sdp(reply: Mapping[str, Bencoded]) -> bytes:
    sdp = reply.get("sdp")
    if not isinstance(sdp, str):
        raise NgError(f"rtpengine: reply without SDP: {dict(reply)!r}")
    return sdp.encode()


# -- the daemon ------------------------------------------------------------------------------


@dataclass
class RunningRtpengine:
    """An rtpengine process and what its log said so far."""

    process: trio.Process
    ng_address: tuple[str, int]
    command: list[str]
    #: what ``rtpengine --version`` printed, e.g. "10.5.3.5-1+deb12u1"
    version: str
    #: log lines at warning level or worse, by level
    problems: Counter[str] = field(default_factory=Counter)
    #: the last few such lines, to say why something failed
    last_problems: list[str] = field(default_factory=list)

    @property
    def pid(self) -> int:
        """rtpengine's process id (its threads are counted under it in /proc)."""
        return self.process.pid

    def _add(self, line: str) -> None:
        level = line.split(":", 1)[0].strip()
        counted = _PROBLEM_LEVELS.get(level)
        if counted is not None:
            self.problems[counted] += 1
            self.last_problems = [*self.last_problems[-4:], line.strip()[:300]]


def find_rtpengine() -> str:
    """The path of the rtpengine binary.

    Raises:
        RtpengineFailed: it is not installed.
    """
    found = shutil.which("rtpengine")
    if found is None and os.access(_DEBIAN_PATH, os.X_OK):
        found = _DEBIAN_PATH
    if found is None:
        raise RtpengineFailed(
            f"rtpengine is not installed (Debian: apt-get install {DEBIAN_PACKAGE})"
        )
    return found


def _free_udp_port(host: str) -> int:
    # rtpengine cannot report a port the kernel chose, so one is picked here; the window in
    # which another program could take it is the few milliseconds before rtpengine binds.
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


async def _follow(engine: RunningRtpengine, stream: trio.abc.ReceiveStream) -> None:
    buffer = b""
    async for chunk in stream:
        buffer += chunk
        *lines, buffer = buffer.split(b"\n")
        for line in lines:
            engine._add(line.decode("utf-8", errors="replace"))


@asynccontextmanager
async def run_rtpengine(
    directory: Path,
    *,
    threads: int | None,
    port_range: tuple[int, int],
    extra_args: Sequence[str] = (),
) -> AsyncIterator[RunningRtpengine]:
    """Start rtpengine on 127.0.0.1; yield it once its ng port answers a ping.

    Args:
        directory: a private directory for its pid file.
        threads: ``--num-threads`` (None: rtpengine's default, one per CPU).
        port_range: the media ports it may use, first and last.
        extra_args: more command-line options.

    Resource handling: rtpengine is stopped by its PID when the block ends (SIGTERM, then
    SIGKILL), on errors and cancellation too.

    Raises:
        RtpengineFailed: not installed, exited, or not answering within 15 s.
    """
    host = "127.0.0.1"
    binary = find_rtpengine()
    version = await _version(binary)
    ng_address = (host, _free_udp_port(host))
    command = [
        binary,
        "--config-file=none",
        "--foreground",
        "--log-stderr",
        "--no-log-timestamps",
        "--log-level=5",
        "--table=-1",
        f"--interface={host}",
        f"--listen-ng={host}:{ng_address[1]}",
        f"--port-min={port_range[0]}",
        f"--port-max={port_range[1]}",
        f"--pidfile={directory / 'rtpengine.pid'}",
        "--delete-delay=0",
        *([f"--num-threads={threads}"] if threads is not None else []),
        *extra_args,
    ]
    process = await trio.lowlevel.open_process(
        command,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        cwd=REPO_ROOT,
    )
    engine = RunningRtpengine(process, ng_address, command, version)
    async with trio.open_nursery() as nursery:
        assert process.stderr is not None
        nursery.start_soon(_follow, engine, process.stderr)
        try:
            await _wait_ready(engine)
            yield engine
        finally:
            with trio.CancelScope(shield=True):
                await stop(engine.process)
            nursery.cancel_scope.cancel()


async def _version(binary: str) -> str:
    with trio.fail_after(_READY_TIMEOUT_S):
        done = await trio.run_process(
            [binary, "--version"], capture_stdout=True, capture_stderr=True, check=False
        )
    text = (done.stdout + done.stderr).decode(errors="replace").strip()
    return text.removeprefix("Version:").strip() or "unknown"


async def _wait_ready(engine: RunningRtpengine) -> None:
    client = NgClient(engine.ng_address)
    with trio.move_on_after(_READY_TIMEOUT_S):
        while engine.process.returncode is None:
            try:
                await client.ping()
            except NgError:
                continue
            return
    raise RtpengineFailed(
        f"rtpengine (pid {engine.pid}) not answering on {engine.ng_address} "
        f"(exit {engine.process.returncode}): {engine.last_problems}"
    )
