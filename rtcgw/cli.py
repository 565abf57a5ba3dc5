"""The ``rtcgw`` command.

Sub-commands are added as the product grows; each is a function taking the parsed
arguments and returning the process exit code. Exit codes: 0 success, 1 runtime failure,
2 bad usage or an invalid configuration (so a service manager does not restart-loop on a
configuration mistake).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from rtcgw import __version__
from rtcgw.config import ConfigError, load_config, summarize
from rtcgw.observability.logging import LogFormat, configure_logging

__all__ = ["EXIT_CONFIG_INVALID", "EXIT_OK", "EXIT_USAGE", "build_parser", "main"]

EXIT_OK = 0
EXIT_USAGE = 2  # as argparse itself exits on bad arguments
EXIT_CONFIG_INVALID = 2


def _check_config(args: argparse.Namespace) -> int:
    try:
        config = load_config(Path(args.file))
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return EXIT_CONFIG_INVALID
    print("OK")
    print(summarize(config))
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
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``rtcgw`` command line; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Callable[[argparse.Namespace], int] | None = getattr(args, "handler", None)
    if handler is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    configure_logging(LogFormat(args.log_format), level=args.log_level)
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
