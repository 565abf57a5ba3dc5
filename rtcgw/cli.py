"""The ``rtcgw`` command.

Sub-commands are added as the product grows; each is a function taking the parsed
arguments and returning the process exit code. Exit codes: 0 success, 1 runtime failure,
2 bad usage or an invalid configuration (so a service manager does not restart-loop on a
configuration mistake).
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import os
import sys
import tempfile
from collections.abc import Callable, Sequence
from copy import deepcopy
from functools import partial
from pathlib import Path
from typing import Any

import trio

from rtcgw import __version__
from rtcgw.config import ConfigError, GatewayConfig, load_config, load_config_text, summarize
from rtcgw.config.render import realm_tables, render_toml
from rtcgw.config.run_options import DEFAULT_SIP, DEFAULT_WSS, RunOptions
from rtcgw.observability.logging import LogFormat, configure_logging, get_logger
from rtcgw.observability.multiproc import metrics_directory
from rtcgw.supervisor.tls import make_self_signed

__all__ = [
    "EXIT_CONFIG_INVALID",
    "EXIT_OK",
    "EXIT_RUNTIME_FAILED",
    "EXIT_USAGE",
    "build_parser",
    "main",
]

EXIT_OK = 0
EXIT_RUNTIME_FAILED = 1
EXIT_USAGE = 2  # as argparse itself exits on bad arguments
EXIT_CONFIG_INVALID = 2
# rtcgw.observability.metrics.MULTIPROC_ENV; that module imports prometheus-client.


def _check_config(args: argparse.Namespace) -> int:
    try:
        config = load_config(Path(args.file))
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return EXIT_CONFIG_INVALID
    print("OK")
    print(summarize(config))
    return EXIT_OK


def _run(args: argparse.Namespace) -> int:
    # The runtime imports prometheus-client: only inside the metrics directory's scope.
    with metrics_directory():
        return _run_gateway(args)


def _run_gateway(args: argparse.Namespace) -> int:
    from rtcgw.supervisor.arbiter import run_gateway  # noqa: PLC0415 (after the metrics dir)

    log = get_logger()
    options = _run_options(args)

    def adhoc_certificate() -> tuple[Path, Path]:
        made = make_self_signed(Path(tempfile.mkdtemp(prefix="rtcgw-tls-")))
        log.warning(
            "tls.adhoc_certificate",
            certificate=str(made.certificate),
            fingerprint_sha256=made.fingerprint_sha256,
            note="self-signed for a trial; give --cert/--key in production",
        )
        return made.certificate, made.key

    # A reload re-reads the file with the same options: the ad-hoc certificate is made once.
    overrides = options.overrides(functools.cache(adhoc_certificate))

    def load() -> GatewayConfig:
        if args.config is not None:
            config = load_config(Path(args.config), overrides=overrides)
        else:
            config = load_config_text("", source="command line", overrides=overrides)
        if args.control is not None:
            gateway = dataclasses.replace(config.gateway, control_socket=str(args.control))
            config = dataclasses.replace(config, gateway=gateway)
        return config

    try:
        config = load()
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return EXIT_CONFIG_INVALID
    workers = config.gateway.workers or os.cpu_count() or 1
    worker_args = ("--log-format", args.resolved_log_format, "--log-level", args.log_level)
    log.info("gateway.starting", config=config.source or "command line", workers=workers)
    try:
        trio.run(
            partial(run_gateway, config, worker_count=workers, worker_args=worker_args, loader=load)
        )
    except OSError as exc:
        log.error("gateway.failed", error=str(exc))
        return EXIT_RUNTIME_FAILED
    return EXIT_OK


def _run_options(args: argparse.Namespace, *, absolute_files: bool = False) -> RunOptions:
    cert, key = args.cert, args.key
    if absolute_files:
        # A generated file may be kept anywhere: name the files it refers to in full.
        cert = None if cert is None else cert.absolute()
        key = None if key is None else key.absolute()
    return RunOptions(
        workers=args.workers,
        pbx=args.pbx,
        wss=args.wss,
        ws=args.ws,
        sip=args.sip,
        cert=cert,
        key=key,
        media_ip=args.media_ip,
        advertised_ip=args.advertised_ip,
        max_message_bytes=args.max_message_bytes,
        metrics=args.metrics,
        web=args.web,
    )


class _NoCertificate(Exception):
    """``rtcgw config`` was asked for wss without --cert/--key."""


def _config(args: argparse.Namespace) -> int:
    if (args.cert is None) != (args.key is None):
        print("rtcgw config: give both --cert and --key", file=sys.stderr)
        return EXIT_USAGE

    def no_certificate() -> tuple[Path, Path]:
        # `rtcgw run` makes an ad-hoc pair; a file to keep must not name a temporary one.
        raise _NoCertificate

    raw: dict[str, Any] = {}
    try:
        _run_options(args, absolute_files=True).overrides(no_certificate)(raw)
    except _NoCertificate:
        print(
            "rtcgw config: a wss interface needs --cert and --key (or use --ws for plain "
            "WebSocket)",
            file=sys.stderr,
        )
        return EXIT_USAGE
    try:
        # The realms the [pbx] shorthand gives, as the loader builds them.
        config = load_config_text(
            "", source="command line", overrides=lambda tables: tables.update(deepcopy(raw))
        )
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return EXIT_CONFIG_INVALID
    tables = {name: table for name, table in raw.items() if name != "pbx" and table != {}}
    tables["realms"] = realm_tables(config.realms)
    if "media" not in tables:
        # The realms use the generated default media interface: leave it to the loader.
        for realm in tables["realms"].values():
            del realm["media"]
    print(render_toml(tables), end="")
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``rtcgw`` command and its sub-commands."""
    parser = argparse.ArgumentParser(
        prog="rtcgw",
        description="rtcgw, a SIP-WebRTC gateway: browsers on SIP over WebSocket with "
        "ICE/DTLS-SRTP meet SIP and RTP phones behind an unchanged PBX.",
    )
    parser.add_argument("--version", action="version", version=f"rtcgw {__version__}")
    parser.add_argument(
        "--log-format",
        choices=[f.value for f in LogFormat],
        default=LogFormat.AUTO.value,
        help="JSON lines, key=value console lines, or auto (console on a terminal, "
        "JSON otherwise; default)",
    )
    parser.add_argument(
        "--log-level",
        choices=["debug", "info", "warning", "error"],
        default="info",
        help="lowest level logged (default: info)",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    check = commands.add_parser(
        "check-config",
        help="validate a configuration file and print a summary",
        description="Validate a configuration file. Prints OK and a summary, or every "
        "problem found (file, key path, reason) and exits with code 2.",
    )
    check.add_argument("file", metavar="FILE", help="the TOML configuration file")
    check.set_defaults(handler=_check_config)

    run = commands.add_parser(
        "run",
        help="run the gateway",
        description="Run the gateway: a supervisor and its workers. With no -c FILE, the "
        "options alone make a working gateway (rtcgw run --pbx HOST:PORT); with a file, "
        "they override it.",
    )
    run.add_argument("-c", "--config", metavar="FILE", help="TOML configuration file")
    _add_gateway_options(run)
    run.add_argument("--control", type=Path, metavar="PATH", help=_CONTROL_HELP)
    run.set_defaults(handler=_run)

    config = commands.add_parser(
        "config",
        help="print the configuration of `rtcgw run --pbx ...` as TOML",
        description="Print, as a TOML file to start from, the configuration that "
        "`rtcgw run` with the same options and no file would run: the handbook's realms "
        "and rules written out, with the PBX and listeners given. wss needs --cert and "
        "--key (or use --ws).",
    )
    _add_gateway_options(config, pbx_required=True)
    config.set_defaults(handler=_config)
    _add_ctl(commands)

    demo = commands.add_parser(
        "demo",
        help="run the gateway with its web phone and a demo PBX on loopback",
        description="Run the gateway on an embedded configuration (the handbook's, "
        "self-signed certificate) next to a demo SIP service standing in for the PBX: a "
        "registrar (password = user name), a proxy between registered users, an echo "
        "(600) and a 440 Hz tone (601). Prints the URL to open. Ctrl-C stops both.",
    )
    demo.add_argument(
        "--advertise",
        metavar="ADDR",
        help="serve browsers on other machines: listen on every address and put ADDR in "
        "URLs and SDP (default: loopback only)",
    )
    demo.add_argument("--wss-port", type=int, default=8443, help="wss port (default 8443)")
    demo.add_argument("--web-port", type=int, default=8444, help="web phone port (default 8444)")
    demo.add_argument("--workers", type=int, default=1, metavar="N", help="workers (default 1)")
    demo.set_defaults(handler=_demo)
    return parser


def _demo(args: argparse.Namespace) -> int:
    # Imported here: `rtcgw run` never loads the demo service.
    from rtcgw.demo.run import DemoOptions, run_demo  # noqa: PLC0415

    options = DemoOptions(
        advertise=args.advertise,
        wss_port=args.wss_port,
        web_port=args.web_port,
        workers=args.workers,
    )
    worker_args = ("--log-format", args.resolved_log_format, "--log-level", args.log_level)
    return run_demo(options, worker_args)


_CONTROL_HELP = (
    "the control socket (default: [gateway] control_socket, else "
    "$XDG_RUNTIME_DIR/rtcgw.sock or /tmp/rtcgw-UID.sock)"
)


def _add_ctl(commands: Any) -> None:
    ctl = commands.add_parser(
        "ctl",
        help="operate a running gateway: status, calls, drain, reload, ...",
        description="Talk to a running gateway over its control socket. Output is for "
        "people; --json prints each reply as one JSON object a line. Exit codes: 0 done, "
        "1 refused or failed (or a drain that timed out with calls left), 2 bad usage.",
    )
    ctl.add_argument("--control", type=Path, metavar="PATH", help=_CONTROL_HELP)
    ctl.add_argument(
        "-c", "--config", metavar="FILE", help="take the control socket path from this file"
    )
    ctl.add_argument("--json", action="store_true", help="print the replies as JSON lines")
    sub = ctl.add_subparsers(dest="ctl_command", metavar="COMMAND", required=True)
    sub.add_parser("status", help="node state, workers, registrations, config version")
    sub.add_parser("calls", help="active calls: Call-ID, worker, age, path, ICE/DTLS state")
    call = sub.add_parser("call", help="one call's timeline and verdict")
    call.add_argument("call_id", metavar="CALL-ID")
    sub.add_parser("registrations", help="the registration cache")
    drain = sub.add_parser(
        "drain",
        help="refuse new calls (503) and wait for the calls in progress to end",
        description="New INVITEs get 503 with Retry-After; a whole-node drain also refuses "
        "new WebSocket connections. Calls in progress finish normally. Returns when no call "
        "is left or at the timeout, printing what remains.",
    )
    drain.add_argument("--timeout", type=float, metavar="S", help="default: drain_timeout_s")
    drain.add_argument("--worker", type=int, metavar="N", help="drain this worker only")
    sub.add_parser("undrain", help="take new calls again")
    reload = sub.add_parser("reload", help="re-read the configuration file and apply it")
    reload.add_argument(
        "--dry-run", action="store_true", help="print what would change and apply nothing"
    )
    restart = sub.add_parser("restart-worker", help="restart one worker (its calls end)")
    restart.add_argument("worker", type=int, metavar="N")
    ctl.set_defaults(handler=_ctl)


def _ctl_arguments(args: argparse.Namespace) -> tuple[dict[str, object], float] | str:
    """The request's arguments and how long to wait for a reply, or a usage error."""
    command: str = args.ctl_command
    request: dict[str, object] = {}
    reply_timeout = 30.0
    if command == "call":
        request["call_id"] = args.call_id
    elif command == "drain":
        if args.timeout is not None:
            if args.timeout < 0:
                return "rtcgw ctl drain: --timeout must not be negative"
            request["timeout_s"] = args.timeout
            reply_timeout += args.timeout
        else:
            reply_timeout += 86400.0  # bounded by the gateway's own drain timeout
        if args.worker is not None:
            if args.worker < 0:
                return "rtcgw ctl drain: --worker must not be negative"
            request["worker"] = args.worker
    elif command == "reload":
        request["dry_run"] = args.dry_run
    elif command == "restart-worker":
        if args.worker < 0:
            return "rtcgw ctl restart-worker: N must not be negative"
        request["worker"] = args.worker
        reply_timeout += 60.0
    return request, reply_timeout


def _ctl(args: argparse.Namespace) -> int:
    from rtcgw.supervisor.control import (  # noqa: PLC0415 (trio only for this command)
        ControlError,
        control_path,
        ctl_request,
        format_reply,
    )

    path = args.control
    if path is None and args.config is not None:
        try:
            path = load_config(Path(args.config)).gateway.control_socket
        except ConfigError as exc:
            print(exc, file=sys.stderr)
            return EXIT_CONFIG_INVALID
    parsed = _ctl_arguments(args)
    if isinstance(parsed, str):
        print(parsed, file=sys.stderr)
        return EXIT_USAGE
    request, reply_timeout = parsed
    command: str = args.ctl_command

    def show(reply: dict[str, Any]) -> None:
        if args.json:
            print(json.dumps(reply, sort_keys=True), flush=True)
        else:
            print(format_reply(command, reply), flush=True)

    run = partial(
        ctl_request,
        control_path(path),
        command,
        on_progress=show,
        reply_timeout_s=reply_timeout,
        **request,
    )
    try:
        reply = trio.run(run)
    except ControlError as exc:
        print(f"rtcgw ctl: {exc}", file=sys.stderr)
        return EXIT_RUNTIME_FAILED
    show(reply)
    if not reply.get("ok"):
        return EXIT_RUNTIME_FAILED
    if command == "drain" and not reply.get("drained"):
        return EXIT_RUNTIME_FAILED
    return EXIT_OK


def _add_gateway_options(parser: argparse.ArgumentParser, *, pbx_required: bool = False) -> None:
    """The gateway options that ``run`` and ``config`` share (``RunOptions``)."""
    parser.add_argument("--workers", type=int, metavar="N", help="worker processes (default: CPUs)")
    parser.add_argument(
        "--pbx",
        metavar="HOST:PORT",
        required=pbx_required,
        help="the PBX: host:port or a SIP URI",
    )
    parser.add_argument(
        "--wss", metavar="ADDR:PORT", help=f"secure WebSocket listener (default {DEFAULT_WSS})"
    )
    parser.add_argument("--ws", metavar="ADDR:PORT", help="plain WebSocket listener")
    parser.add_argument(
        "--sip", metavar="ADDR:PORT", help=f"SIP listener, UDP and TCP (default {DEFAULT_SIP})"
    )
    parser.add_argument("--cert", type=Path, help="TLS certificate (PEM) for wss")
    parser.add_argument("--key", type=Path, help="TLS private key (PEM) for wss")
    parser.add_argument("--media-ip", metavar="ADDR", help="address media sockets bind to")
    parser.add_argument("--advertised-ip", metavar="ADDR", help="address written into SDP")
    parser.add_argument(
        "--max-message-bytes", type=int, metavar="N", help="largest SIP message (default 65535)"
    )
    parser.add_argument(
        "--metrics",
        metavar="ADDR:PORT",
        help="HTTP listener for /metrics and /healthz (default 127.0.0.1:9464; [http] listen)",
    )
    parser.add_argument(
        "--web",
        metavar="ADDR:PORT",
        help="serve the web phone over HTTPS here ([web] listen; default: no phone)",
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``rtcgw`` command line; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Callable[[argparse.Namespace], int] | None = getattr(args, "handler", None)
    if handler is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    args.resolved_log_format = configure_logging(
        LogFormat(args.log_format), level=args.log_level
    ).value
    try:
        code = handler(args)
        sys.stdout.flush()
    except BrokenPipeError:
        # The reader went away (`rtcgw check-config FILE | head -1`); Python would print a
        # traceback when it flushes stdout at exit, so point stdout at /dev/null first.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_USAGE
    return code
