"""Observability: structured logging (and, later, every Prometheus metric) in one place."""

from rtcgw.observability.logging import LogFormat, bind_call, configure_logging, get_logger

__all__ = ["LogFormat", "bind_call", "configure_logging", "get_logger"]
