"""The per-run directory of prometheus-client's multiprocess mode, set before its import.

prometheus-client chooses file-backed (multiprocess) values when it is first imported, so
``rtcgw run`` and ``rtcgw demo`` set ``PROMETHEUS_MULTIPROC_DIR`` before anything imports
``rtcgw.observability.metrics`` (their runtimes are imported afterwards; the workers inherit
the variable). A fresh directory per run: no stale counters from an earlier run or from
another gateway. This module must not import prometheus-client itself.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["MULTIPROC_ENV", "metrics_directory"]

#: the variable prometheus-client reads (``rtcgw.observability.metrics`` names it too)
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


@contextmanager
def metrics_directory() -> Iterator[str]:
    """A fresh multiprocess directory in the environment for the body; removed after it,
    and the variable restored to what it was."""
    path = tempfile.mkdtemp(prefix="rtcgw-metrics-")
    previous = os.environ.get(MULTIPROC_ENV)
    os.environ[MULTIPROC_ENV] = path
    try:
        yield path
    finally:
        if previous is None:
            os.environ.pop(MULTIPROC_ENV, None)
        else:
            os.environ[MULTIPROC_ENV] = previous
        shutil.rmtree(path, ignore_errors=True)
