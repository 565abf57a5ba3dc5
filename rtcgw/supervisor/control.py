"""``rtcgw ctl``: the supervisor's Unix control socket, its codec, client and output.

Protocol: the client connects, writes one request as a JSON object on one line
(``{"command": "status", "args": {}}``), and reads JSON objects, one a line, until one
without ``"progress": true``: that one is the reply (``"ok"`` true or false, with
``"error"`` saying why when false). Only ``drain`` sends progress lines before its reply.

The socket is created with mode 0600: whoever can use it can drain and reload the node.
Its path is ``[gateway] control_socket`` or ``--control PATH``; by default
``$XDG_RUNTIME_DIR/rtcgw.sock``, or ``/tmp/rtcgw-UID.sock`` when XDG_RUNTIME_DIR is unset
(``default_control_path``).

The codec and the formatting functions are pure; ``serve_control`` and ``ctl_request``
are the I/O (trio).
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import socket
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import trio

from rtcgw.observability.logging import get_logger

__all__ = [
    "COMMANDS",
    "MAX_LINE_BYTES",
    "ControlError",
    "ControlRequest",
    "ControlUnavailable",
    "Reply",
    "control_path",
    "ctl_request",
    "decode_reply",
    "decode_request",
    "default_control_path",
    "encode_reply",
    "encode_request",
    "format_reply",
    "serve_control",
]

log = get_logger()

#: Every command of ``rtcgw ctl``.
COMMANDS: Final = frozenset(
    {
        "status",
        "calls",
        "call",
        "registrations",
        "drain",
        "undrain",
        "reload",
        "restart-worker",
    }
)
#: The longest line either side accepts; a call's timeline is the largest reply.
MAX_LINE_BYTES: Final = 4 << 20
_REQUEST_TIMEOUT_S: Final = 10.0

#: A reply or progress line: a JSON object.
Reply = dict[str, Any]
SendLine = Callable[[Mapping[str, object]], Awaitable[None]]


class ControlError(Exception):
    """A control request or reply that is not valid (says what and where)."""


class ControlUnavailable(ControlError):
    """No gateway answers on the control socket."""


@dataclass(frozen=True, slots=True)
class ControlRequest:
    """One ``rtcgw ctl`` command and its arguments."""

    command: str
    args: Mapping[str, object] = field(default_factory=dict)


# -- paths -------------------------------------------------------------------------------


def default_control_path() -> Path:
    """``$XDG_RUNTIME_DIR/rtcgw.sock``, or ``/tmp/rtcgw-UID.sock`` without it."""
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime:
        return Path(runtime) / "rtcgw.sock"
    return Path("/tmp") / f"rtcgw-{os.getuid()}.sock"


def control_path(configured: str | os.PathLike[str] | None) -> Path:
    """The socket path: ``configured`` unless empty, else ``default_control_path()``."""
    text = os.fspath(configured) if configured is not None else ""
    return Path(text) if text else default_control_path()


# -- codec -------------------------------------------------------------------------------


def encode_request(command: str, **args: object) -> bytes:
    """The request line for ``command`` with ``args`` (JSON values)."""
    if command not in COMMANDS:
        raise ControlError(
            f"unknown ctl command {command!r} (known: {', '.join(sorted(COMMANDS))})"
        )
    return json.dumps({"command": command, "args": args}, separators=(",", ":")).encode() + b"\n"


def decode_request(line: bytes) -> ControlRequest:
    """The request of one received line.

    Raises:
        ControlError: not a JSON object with a known ``command`` and an ``args`` object.
    """
    obj = _json_object(line, "request")
    command = obj.get("command")
    if not isinstance(command, str) or command not in COMMANDS:
        raise ControlError(f"request: unknown command {command!r}")
    args = obj.get("args", {})
    if not isinstance(args, dict):
        raise ControlError(f"request: 'args' must be an object, got {type(args).__name__}")
    extra = sorted(set(obj) - {"command", "args"})
    if extra:
        raise ControlError(f"request: unknown keys {extra}")
    return ControlRequest(command, args)


def encode_reply(reply: Mapping[str, object]) -> bytes:
    """One reply or progress line (values that are not JSON are written as text)."""
    return json.dumps(reply, separators=(",", ":"), default=str).encode() + b"\n"


def decode_reply(line: bytes) -> Reply:
    """The reply object of one line.

    Raises:
        ControlError: not a JSON object.
    """
    return _json_object(line, "reply")


def _json_object(line: bytes, what: str) -> Reply:
    try:
        obj = json.loads(line)
    except (ValueError, RecursionError) as exc:
        raise ControlError(f"{what}: not JSON ({exc})") from None
    if not isinstance(obj, dict):
        raise ControlError(f"{what}: a JSON {type(obj).__name__}, not an object")
    return obj


def arg_int(request: ControlRequest, name: str, default: int | None = None) -> int | None:
    """Argument ``name`` as a non-negative int (or ``default`` when absent).

    Raises:
        ControlError: present but not a non-negative int.
    """
    value = request.args.get(name, default)
    if value is None:
        return None
    if type(value) is not int or value < 0:
        raise ControlError(f"{request.command}: {name} must be a non-negative integer")
    return value


def arg_float(request: ControlRequest, name: str, default: float) -> float:
    """Argument ``name`` as a non-negative number (or ``default`` when absent).

    Raises:
        ControlError: present but not a non-negative number.
    """
    value = request.args.get(name, default)
    if type(value) not in (int, float) or not value >= 0:  # type: ignore[operator]
        raise ControlError(f"{request.command}: {name} must be a non-negative number")
    return float(value)  # type: ignore[arg-type]


# -- formatting (for people; --json prints the reply itself) ----------------------------


def format_reply(command: str, reply: Mapping[str, Any]) -> str:
    """The text ``rtcgw ctl COMMAND`` prints for ``reply`` (a progress line included)."""
    if not reply.get("ok", True) and not reply.get("progress"):
        text = f"error: {reply.get('error', 'unknown error')}"
        changes = reply.get("changes") or []
        if changes:
            text += "\n" + "\n".join(f"  {c}" for c in changes)
        return text
    formatter = _FORMATTERS.get(command, _format_plain)
    return formatter(reply)


def _format_plain(reply: Mapping[str, Any]) -> str:
    return str(reply.get("message", "ok"))


def _format_status(reply: Mapping[str, Any]) -> str:
    config = reply.get("config", {})
    node = (
        f"node {reply.get('node')}: {reply.get('state')} "
        f"(up {_duration(reply.get('uptime_s'))}, rtcgw {reply.get('version')})"
    )
    loaded = (
        f"config: {config.get('source')} version {config.get('version')} "
        f"(loaded {_duration(config.get('age_s'))} ago)"
    )
    lines = [
        node,
        loaded,
        f"registrations: {reply.get('registrations')}",
        f"calls: {reply.get('calls')}",
        "workers:",
    ]
    rows = [["WORKER", "PID", "STATE", "CALLS", "UPTIME", "RESTARTS"]]
    for w in reply.get("workers", []):
        rows.append(
            [
                str(w.get("index")),
                str(w.get("pid") or "-"),
                str(w.get("state")),
                _dash(w.get("calls")),
                _duration(w.get("uptime_s")),
                str(w.get("restarts")),
            ]
        )
    lines += ["  " + line for line in _table(rows)]
    return "\n".join(lines)


def _format_calls(reply: Mapping[str, Any]) -> str:
    calls = reply.get("calls", [])
    if not calls:
        return "no active calls"
    rows = [["CALL-ID", "WORKER", "AGE", "PATH", "ICE", "DTLS"]]
    for c in calls:
        rows.append(
            [
                str(c.get("call_id")),
                _dash(c.get("worker")),
                _duration(c.get("age_s")),
                _dash(c.get("path")),
                _dash(c.get("ice")),
                _dash(c.get("dtls")),
            ]
        )
    return "\n".join([*_table(rows), f"{len(calls)} call(s)"])


def _format_call(reply: Mapping[str, Any]) -> str:
    call = reply.get("call") or {}
    lines = [f"call {call.get('call_id', reply.get('call_id'))} on worker {reply.get('worker')}"]
    for key in ("path", "ice", "dtls", "age_s"):
        if key in call:
            value = _duration(call[key]) if key == "age_s" else call[key]
            lines.append(f"  {key.removesuffix('_s')}: {value}")
    events = call.get("events") or []
    if events:
        lines.append("timeline:")
        for e in events:
            if not isinstance(e, Mapping):
                lines.append(f"  {e}")
                continue
            rest = " ".join(f"{k}={v}" for k, v in e.items() if k not in ("t", "event"))
            t = e.get("t")
            stamp = f"{t:9.3f}s" if isinstance(t, int | float) else f"{'?':>10}"
            lines.append(f"  {stamp}  {e.get('event')}" + (f"  {rest}" if rest else ""))
    media = call.get("media")
    if isinstance(media, list) and media:
        lines.append("media:")
        for d in media:
            if isinstance(d, Mapping):
                lines.append(
                    f"  {d.get('from')} -> {d.get('to')}: {d.get('packets_in')} in, "
                    f"{d.get('packets_relayed')} relayed, "
                    f"{d.get('srtp_auth_failures')} SRTP auth failures"
                )
    for key in ("packets", "srtp_auth_failures"):
        counts = call.get(key)
        if isinstance(counts, Mapping):
            shown = ", ".join(f"{k} {v}" for k, v in counts.items())
            lines.append(f"{key.replace('_', ' ')}: {shown}")
    if "verdict" in call:
        verdict = call.get("verdict")
        lines.append(f"verdict: {verdict if verdict else 'media flows both ways'}")
    return "\n".join(lines)


def _format_registrations(reply: Mapping[str, Any]) -> str:
    bindings = reply.get("registrations", [])
    if not bindings:
        return "no registrations"
    rows = [["USER", "AOR", "CONTACT", "TRANSPORT", "SOURCE", "EXPIRES"]]
    for b in bindings:
        rows.append(
            [
                str(b.get("user")),
                str(b.get("aor")),
                str(b.get("contact")),
                str(b.get("transport")),
                f"{b.get('host')}:{b.get('port')}",
                _duration(b.get("expires_s")),
            ]
        )
    return "\n".join([*_table(rows), f"{len(bindings)} registration(s)"])


def _format_drain(reply: Mapping[str, Any]) -> str:
    target = "node" if reply.get("worker") is None else f"worker {reply.get('worker')}"
    remaining = reply.get("remaining", [])
    if reply.get("progress"):
        return f"draining {target}: {len(remaining)} call(s) in progress"
    if reply.get("drained"):
        return f"{target} drained: no calls in progress; new calls are refused (503)"
    lines = [f"{target} still has {len(remaining)} call(s) after {reply.get('timeout_s')} s:"]
    lines += [f"  {c.get('call_id')} (worker {c.get('worker')})" for c in remaining]
    return "\n".join(lines)


def _format_undrain(reply: Mapping[str, Any]) -> str:
    return "accepting new calls"


def _format_reload(reply: Mapping[str, Any]) -> str:
    changes = reply.get("changes", [])
    if reply.get("dry_run"):
        head = "dry run: nothing applied"
        if not changes:
            return f"{head}; no changes"
        lines = [f"{head}; {len(changes)} change(s) would apply:"]
    else:
        if not changes:
            version = reply.get("version")
            return f"reloaded {reply.get('source')}: no changes (config version {version})"
        lines = [
            (
                f"reloaded {reply.get('source')}: config version {reply.get('version')}; "
                "new calls use it, calls in progress keep their rules:"
            )
        ]
    lines += [f"  {c}" for c in changes]
    for item in reply.get("needs_restart", []):
        lines.append(f"  (needs a restart, refused: {item})")
    return "\n".join(lines)


def _format_restart(reply: Mapping[str, Any]) -> str:
    return (
        f"worker {reply.get('worker')} restarted: pid {reply.get('old_pid')} -> {reply.get('pid')}"
    )


_FORMATTERS: Final[dict[str, Callable[[Mapping[str, Any]], str]]] = {
    "status": _format_status,
    "calls": _format_calls,
    "call": _format_call,
    "registrations": _format_registrations,
    "drain": _format_drain,
    "undrain": _format_undrain,
    "reload": _format_reload,
    "restart-worker": _format_restart,
}


def _dash(value: object) -> str:
    return "-" if value is None or value == "" else str(value)


def _duration(value: object) -> str:
    if not isinstance(value, int | float) or isinstance(value, bool):
        return "-"
    seconds = int(value)
    if seconds < 60:
        return f"{value:.1f}s" if value < 10 else f"{seconds}s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m{seconds:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def _table(rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return [
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]


# -- I/O ---------------------------------------------------------------------------------

Handler = Callable[[ControlRequest, SendLine], Awaitable[Mapping[str, object]]]


async def _read_line(stream: trio.SocketStream, buffer: bytearray) -> bytes | None:
    """One line (without its newline), or None at the end of the stream."""
    while True:
        end = buffer.find(b"\n")
        if end >= 0:
            line = bytes(buffer[:end])
            del buffer[: end + 1]
            return line
        if len(buffer) > MAX_LINE_BYTES:
            raise ControlError(f"a line longer than {MAX_LINE_BYTES} bytes")
        data = await stream.receive_some(65536)
        if not data:
            return None
        buffer += data


def _bind_unix(path: Path) -> socket.socket:
    """A listening Unix socket at ``path`` with mode 0600; a stale socket file is replaced.

    Raises:
        ControlError: another process listens on ``path``, or it cannot be bound.
    """
    if path.exists() or path.is_symlink():
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            probe.connect(os.fspath(path))
        except OSError as exc:
            if exc.errno not in (errno.ECONNREFUSED, errno.ENOENT, errno.ENOTSOCK):
                raise ControlError(f"control socket {path}: {exc.strerror}") from None
            with contextlib.suppress(FileNotFoundError):
                path.unlink()  # stale: its gateway is gone
        else:
            raise ControlError(f"control socket {path}: another gateway listens on it")
        finally:
            probe.close()
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    # No moment at which the socket is open to others: bind under a umask that grants
    # nothing beyond the owner, then set the mode exactly.
    old_umask = os.umask(0o177)
    try:
        sock.bind(os.fspath(path))
        os.chmod(path, 0o600)
        sock.listen(16)
    except OSError as exc:
        sock.close()
        raise ControlError(f"control socket {path}: {exc.strerror or exc}") from None
    finally:
        os.umask(old_umask)
    sock.setblocking(False)
    return sock


async def serve_control(
    path: Path, handler: Handler, *, task_status: trio.TaskStatus[Path] = trio.TASK_STATUS_IGNORED
) -> None:
    """Serve ``rtcgw ctl`` on ``path`` until cancelled; the socket file is removed after.

    Raises:
        ControlError: the socket cannot be bound (before ``task_status.started``).
    """
    sock = _bind_unix(path)
    listener = trio.SocketListener(trio.socket.from_stdlib_socket(sock))
    try:

        async def connection(stream: trio.SocketStream) -> None:
            async with stream:
                await _serve_one(stream, handler)

        task_status.started(path)
        await trio.serve_listeners(connection, [listener])
    finally:
        # Before the await: in a cancelled scope, aclose raises Cancelled at once.
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        with trio.CancelScope(shield=True):
            await listener.aclose()


async def _serve_one(stream: trio.SocketStream, handler: Handler) -> None:
    async def send(obj: Mapping[str, object]) -> None:
        await stream.send_all(encode_reply(obj))

    try:
        with trio.fail_after(_REQUEST_TIMEOUT_S):
            line = await _read_line(stream, bytearray())
        if line is None:
            return
        request = decode_request(line)
    except (ControlError, trio.TooSlowError) as exc:
        with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
            await send({"ok": False, "error": f"bad request: {exc}"})
        return
    except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
        return
    try:
        reply = await handler(request, send)
    except ControlError as exc:
        reply = {"ok": False, "error": str(exc)}
    except (trio.BrokenResourceError, trio.ClosedResourceError):
        return  # the client went away (its drain keeps going)
    except Exception as exc:
        log.exception("ctl.failed", command=request.command)
        reply = {"ok": False, "error": f"{request.command} failed: {exc!r}"}
    with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
        await send(reply)


async def ctl_request(
    path: Path,
    command: str,
    *,
    on_progress: Callable[[Reply], None] | None = None,
    reply_timeout_s: float = 30.0,
    **args: object,
) -> Reply:
    """Send ``command`` to the gateway at ``path``; its progress lines go to
    ``on_progress``; returns its reply.

    Raises:
        ControlUnavailable: nothing listens on ``path``.
        ControlError: the gateway's answer is cut short or not valid, or none came within
            ``reply_timeout_s`` (between two lines).
    """
    data = encode_request(command, **args)
    try:
        stream = await trio.open_unix_socket(os.fspath(path))
    except FileNotFoundError:
        raise ControlUnavailable(
            f"no gateway control socket at {path} (is rtcgw running?)"
        ) from None
    except ConnectionRefusedError:
        raise ControlUnavailable(f"no gateway listens on {path} (connection refused)") from None
    except PermissionError:
        raise ControlUnavailable(f"no permission to use the control socket {path}") from None
    except OSError as exc:
        raise ControlUnavailable(f"cannot reach the control socket {path}: {exc}") from None
    buffer = bytearray()
    async with stream:
        await stream.send_all(data)
        while True:
            with trio.move_on_after(reply_timeout_s) as timer:
                line = await _read_line(stream, buffer)
            if timer.cancelled_caught:
                raise ControlError(f"{command}: no answer from the gateway in {reply_timeout_s} s")
            if line is None:
                raise ControlError(f"{command}: the gateway closed the connection without a reply")
            reply = decode_reply(line)
            if not reply.get("progress"):
                return reply
            if on_progress is not None:
                on_progress(reply)
