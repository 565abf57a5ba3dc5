"""structlog setup: JSON lines in production, key=value on a console.

Everything rtcgw logs goes through structlog, and the standard library's ``logging`` (used by
libraries such as aioice) is routed through the same renderer, so a log pipeline sees one
format. Event names are stable snake_case (``sip.transaction.timeout``) and context such as
``call_id``, ``leg`` and ``worker`` is bound with ``bind_call`` / structlog's contextvars,
which trio copies into each task (so concurrent calls never see each other's Call-ID).

Sans-IO layers do not log: they return events, and the runtime logs them here.
"""

from __future__ import annotations

import enum
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TextIO

import structlog

__all__ = ["LogFormat", "bind_call", "configure_logging", "get_logger"]


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
