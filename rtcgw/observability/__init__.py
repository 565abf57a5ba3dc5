"""Observability: structured logging here, every Prometheus metric in ``.metrics``.

``rtcgw.observability.metrics`` is not re-exported: it imports prometheus-client, which
must not be imported before ``rtcgw run`` sets the multiprocess directory (see there).
"""

from rtcgw.observability.logging import LogFormat, bind_call, configure_logging, get_logger

__all__ = ["LogFormat", "bind_call", "configure_logging", "get_logger"]
