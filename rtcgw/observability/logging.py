"""structlog setup: JSON lines in production, key=value on a console.

Everything rtcgw logs goes through structlog, and the standard library's ``logging`` (used by
libraries such as aioice) is routed through the same renderer, so a log pipeline sees one
format. Event names are stable snake_case (``sip.transaction.timeout``) and context such as
``call_id``, ``leg`` and ``worker`` is bound with ``bind_call`` / structlog's contextvars,
which trio copies into each task (so concurrent calls never see each other's Call-ID).

Sans-IO layers do not log: they return events, and the runtime logs them here.

Every line a worker logs about a call carries three fields, so that one call's lines can
be found and read across both legs:

- ``worker``: the worker's index, bound for the whole worker process.
- ``call_id``: the call's Call-ID, which is its caller's leg's (the A-leg's). A line about
  the callee's leg names the call by that same Call-ID and gives the leg's own as
  ``leg_call_id``. A Call-ID of no call the worker knows (a REGISTER, a stray message) is
  logged as it is, with leg ``"b"`` when the gateway minted it and ``"a"`` otherwise.
- ``leg``, one of ``LEGS`` (the B2BUA's ``Call.a``/``Call.b`` and the media legs' names):

  - ``"a"``: the caller's leg: the dialog (or out-of-dialog transaction, such as a
    REGISTER) with the peer whose request opened it, and in media lines its media. That
    is the browser's leg when a browser calls and the SIP side's when the PBX calls.
  - ``"b"``: the callee's leg: the dialog (or transaction) the gateway opened toward the
    destination, with a Call-ID of the gateway's own.
  - ``"call"``: the line is about the call (or out-of-dialog request) as a whole rather
    than one of its legs: its start, answer and end, each rule decision, an SDP the
    gateway would not convert, the conversion path and the media timeout.

A call's lines, in the order they come:

- ``b2bua.route_decided``: each rule decision (``realm``, the deciding ``rule``, ``outcome``
  and the whole trace as ``rules``); ``b2bua.call_started`` (the INVITE was accepted and
  sent on), ``b2bua.call_answered``, ``b2bua.call_ended`` (``reason``, ``status``);
  ``b2bua.request_rejected`` and ``b2bua.message_dropped`` for what the B2BUA refused.
- ``media.path``, once per call: the conversion path, ``wss dtls-srtp opus <-> udp rtp
  pcmu``.
- ``media.ice_first_check``, ``media.ice_nominated``, ``media.consent_lost``;
  ``media.dtls_started`` (``role``), then ``media.dtls_connected`` (``role``, ``cipher``,
  ``srtp_profile``, ``duration_ms``) or ``media.dtls_failed`` (``role``, ``reason``).
- ``media.first_packet_out`` per leg, ``media.dropped`` (at most every 10 s per stream:
  the packet path never logs), ``media.timeout``, and ``media.stream_closed`` with each
  stream's counters when the call's media is released.

The supervisor runs no call logic and has no worker: the few lines it logs about a call,
``SUPERVISOR_CALL_EVENTS``, carry ``call_id`` where the message had one, and no ``leg``
(``worker``, when present, is the worker the message was meant for).
"""

from __future__ import annotations

import enum
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TextIO

import structlog

__all__ = [
    "LEGS",
    "LEG_A",
    "LEG_B",
    "LEG_CALL",
    "SUPERVISOR_CALL_EVENTS",
    "LogFormat",
    "bind_call",
    "configure_logging",
    "get_logger",
]

#: The caller's leg (module docstring).
LEG_A = "a"
#: The callee's leg, opened by the gateway.
LEG_B = "b"
#: The call as a whole.
LEG_CALL = "call"
#: Every value a ``leg`` field takes.
LEGS = frozenset({LEG_A, LEG_B, LEG_CALL})

#: The supervisor's events that name a Call-ID: they have no ``leg`` (module docstring).
SUPERVISOR_CALL_EVENTS = frozenset(
    {
        "binding.changed",
        "binding.invalid",
        "call.refused_overload",
        "register.rate_limited",
        "sip.dropped",
    }
)


class LogFormat(enum.Enum):
    """How log lines are rendered."""

    AUTO = "auto"  #: JSON unless the stream is a terminal
    JSON = "json"  #: one JSON object per line, for log shippers
    CONSOLE = "console"  #: human-readable key=value lines

    def resolve(self, stream: TextIO) -> LogFormat:
        """JSON or CONSOLE: AUTO picks CONSOLE on a terminal and JSON elsewhere."""
        if self is not LogFormat.AUTO:
            return self
        isatty = getattr(stream, "isatty", None)
        return LogFormat.CONSOLE if callable(isatty) and isatty() else LogFormat.JSON


_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
    "critical": logging.CRITICAL,
}


def configure_logging(
    fmt: LogFormat = LogFormat.AUTO,
    *,
    level: str = "info",
    stream: TextIO | None = None,
) -> LogFormat:
    """Configure structlog and stdlib logging for this process; returns the format in use.

    Raises:
        ValueError: ``level`` is not one of debug, info, warning, error, critical.
    """
    out = stream if stream is not None else sys.stderr
    if level.lower() not in _LEVELS:
        raise ValueError(f"log level {level!r} is not one of {', '.join(_LEVELS)}")
    numeric_level = _LEVELS[level.lower()]
    resolved = fmt.resolve(out)

    shared: list[structlog.typing.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: structlog.typing.Processor
    if resolved is LogFormat.JSON:
        renderer = structlog.processors.JSONRenderer()
        shared.append(structlog.processors.format_exc_info)
    else:
        renderer = structlog.dev.ConsoleRenderer(colors=bool(out.isatty()))

    structlog.configure(
        processors=[*shared, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(numeric_level),
        # One write per line (message and newline together): the supervisor and its
        # workers share standard error, and under PYTHONUNBUFFERED=1 (common in
        # containers) print() writes the newline separately, so lines could interleave.
        logger_factory=structlog.WriteLoggerFactory(file=out),
        # Tests and `rtcgw ctl reload` reconfigure logging: cached loggers would keep the
        # old renderer.
        cache_logger_on_first_use=False,
    )

    # Library records (aioice, trio-websocket) come out in the same format.
    handler = logging.StreamHandler(out)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(max(numeric_level, logging.WARNING))
    return resolved


def get_logger(**initial: Any) -> structlog.typing.FilteringBoundLogger:
    """A structlog logger with ``initial`` key-values bound (``worker=3``)."""
    logger: structlog.typing.FilteringBoundLogger = structlog.get_logger(**initial)
    return logger


@contextmanager
def bind_call(call_id: str, **more: Any) -> Iterator[None]:
    """Bind ``call_id`` (and e.g. ``leg``) to every log line emitted inside the block."""
    with structlog.contextvars.bound_contextvars(call_id=call_id, **more):
        yield
