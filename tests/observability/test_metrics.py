"""The metrics module: names, bounded labels, and multiprocess summing."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from prometheus_client import REGISTRY, generate_latest

from rtcgw.observability import metrics


def test_in_process_metrics_without_a_multiprocess_dir(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(metrics.MULTIPROC_ENV, raising=False)
    assert metrics.multiprocess_dir() is None
    assert metrics.registry() is REGISTRY
    metrics.worker_exited(12345)  # nothing to forget: no error


def test_every_metric_is_prefixed_and_the_fixed_labels_start_at_zero() -> None:
    text = generate_latest(REGISTRY).decode()
    for name in (
        "rtcgw_sip_messages_dropped_total",
        "rtcgw_sip_requests_rejected_total",
        "rtcgw_websocket_connections_closed_total",
        "rtcgw_sip_stream_errors_total",
        "rtcgw_worker_restarts_total",
        "rtcgw_workers_up",
        "rtcgw_calls_active",
        "rtcgw_calls_total",
    ):
        assert f"# TYPE {name.removesuffix('_total')}" in text
    for reason in metrics.DropReason:
        assert f'rtcgw_sip_messages_dropped_total{{reason="{reason.value}"}}' in text
    for close in metrics.WebSocketClose:
        assert f'rtcgw_websocket_connections_closed_total{{reason="{close.value}"}}' in text


@pytest.mark.parametrize(
    ("worker_reason", "label"),
    [
        ("unparseable", metrics.DropReason.UNPARSEABLE),
        ("unparseable_request", metrics.DropReason.UNPARSEABLE),
        ("invalid", metrics.DropReason.INVALID),
        ("stray_ack", metrics.DropReason.STRAY),
        ("stray_response", metrics.DropReason.STRAY),
        ("anything new", metrics.DropReason.OTHER),
    ],
)
def test_worker_drop_reasons_map_to_bounded_labels(
    worker_reason: str, label: metrics.DropReason
) -> None:
    assert metrics.drop_reason_of(worker_reason) is label


_CHILD = """
from rtcgw.observability import metrics
metrics.SIP_MESSAGES_DROPPED.labels("oversize").inc({n})
metrics.WORKERS_UP.inc()
"""


def test_multiprocess_values_are_summed_and_dead_gauges_dropped(tmp_path: Path) -> None:
    env = {**os.environ, metrics.MULTIPROC_ENV: str(tmp_path)}
    pids = []
    for n in (5, 7):
        child = subprocess.run(
            [sys.executable, "-c", _CHILD.format(n=n) + "import os; print(os.getpid())"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        pids.append(int(child.stdout))
    # The scrape runs in a process of its own, as the supervisor's does.
    scrape = (
        "from rtcgw.observability import metrics\n"
        "from prometheus_client import generate_latest\n"
        "import sys\n"
        "for pid in sys.argv[1:]: metrics.worker_exited(int(pid))\n"
        "print(generate_latest(metrics.registry()).decode())\n"
    )
    text = subprocess.run(
        [sys.executable, "-c", scrape, str(pids[0])],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    assert 'rtcgw_sip_messages_dropped_total{reason="oversize"} 12.0' in text
    # The first child's live gauge was dropped; the second's (1.0) was never marked dead.
    assert "rtcgw_workers_up 1.0" in text


def test_importing_the_cli_does_not_import_prometheus_client() -> None:
    # `rtcgw run` must set the multiprocess directory before prometheus-client's import.
    code = "import sys, rtcgw.cli; assert 'prometheus_client' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], timeout=60, check=True)


@pytest.mark.parametrize(
    ("data", "labels"),
    [
        (b"INVITE sip:bob@example.com SIP/2.0\r\nCSeq: 1 INVITE\r\n\r\n", ("INVITE", None)),
        (b"SIP/2.0 180 Ringing\r\nVia: x\r\ncseq:  7 invite\r\n\r\n", ("INVITE", 180)),
        (b"SIP/2.0 486 Busy Here\r\nCSeq: 2 BYE\r\n\r\n", ("BYE", 486)),
        (b"SIP/2.0 200 OK\r\nVia: x\r\n\r\n", None),  # no CSeq: not countable
        (b"\r\n\r\n", None),  # a keep-alive
        (b"GET / HTTP/1.1\r\n\r\n", None),
    ],
)
def test_sip_labels_are_read_from_raw_messages(
    data: bytes, labels: tuple[str, int | None] | None
) -> None:
    assert metrics.sip_labels_of(data) == labels


def test_sip_messages_are_counted_with_bounded_labels() -> None:
    def count(method: str, status_class: str) -> float:
        sample = REGISTRY.get_sample_value(
            "rtcgw_sip_messages_total",
            {"direction": "out", "method": method, "status_class": status_class},
        )
        return sample or 0.0

    before = count("other", "6xx"), count("INVITE", "request")
    metrics.observe_sip_message("out", "FROBNICATE", 699)  # an extension method
    metrics.observe_sip_message("out", "INVITE", None)
    assert (count("other", "6xx"), count("INVITE", "request")) == (before[0] + 1, before[1] + 1)
