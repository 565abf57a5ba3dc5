"""Log rendering: JSON lines for machines, key=value for people, Call-ID on every call line."""

from __future__ import annotations

import io
import json
import logging

import pytest

from rtcgw.observability.logging import LogFormat, bind_call, configure_logging, get_logger


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_auto_is_json_off_a_terminal() -> None:
    assert configure_logging(LogFormat.AUTO, stream=io.StringIO()) is LogFormat.JSON


def test_auto_is_console_on_a_terminal() -> None:
    assert configure_logging(LogFormat.AUTO, stream=_Tty()) is LogFormat.CONSOLE


def test_json_lines_carry_event_level_and_bound_call_id() -> None:
    out = io.StringIO()
    configure_logging(LogFormat.JSON, stream=out)
    log = get_logger(worker=2)
    with bind_call("a84b4c76e66710@pc33", leg="a"):
        log.info("sip.dialog.confirmed", status=200)
    log.info("worker.idle")
    first, second = (json.loads(line) for line in out.getvalue().splitlines())
    assert first["event"] == "sip.dialog.confirmed"
    assert first["level"] == "info"
    assert first["call_id"] == "a84b4c76e66710@pc33"
    assert first["leg"] == "a"
    assert first["worker"] == 2
    assert first["status"] == 200
    assert "timestamp" in first
    # The binding ends with the block: no Call-ID bleeds into later lines.
    assert "call_id" not in second


def test_console_renders_key_value_pairs() -> None:
    out = io.StringIO()
    configure_logging(LogFormat.CONSOLE, stream=out)
    with bind_call("cid-1"):
        get_logger().warning("media.drop", reason="unknown_source")
    line = out.getvalue()
    assert "media.drop" in line
    assert "call_id=cid-1" in line
    assert "reason=unknown_source" in line


def test_level_filters_lower_levels() -> None:
    out = io.StringIO()
    configure_logging(LogFormat.JSON, level="warning", stream=out)
    get_logger().info("dropped")
    get_logger().error("kept")
    events = [json.loads(line)["event"] for line in out.getvalue().splitlines()]
    assert events == ["kept"]


def test_stdlib_library_records_use_the_same_format() -> None:
    out = io.StringIO()
    configure_logging(LogFormat.JSON, stream=out)
    logging.getLogger("aioice.ice").warning("consent lost")
    record = json.loads(out.getvalue().splitlines()[-1])
    assert record["event"] == "consent lost"
    assert record["level"] == "warning"


def test_unknown_level_is_refused() -> None:
    with pytest.raises(ValueError, match="verbose"):
        configure_logging(LogFormat.JSON, level="verbose", stream=io.StringIO())
