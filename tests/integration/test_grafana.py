"""The monitoring files in grafana/: promtool accepts the alert rules (and their unit tests)
and the scrape example, and the dashboard is a well-formed Grafana import.

``assert_dashboard_and_alerts_are_served`` checks that every metric (and label) the
dashboard and the alerts query is in a live /metrics; test_metrics_live.py calls it on its
scrape after a real WebRTC call through the gateway.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import trio
from prometheus_client.parser import text_string_to_metric_families

PROMTOOL = shutil.which("promtool")
GRAFANA = Path(__file__).resolve().parents[2] / "grafana"
DASHBOARD = GRAFANA / "rtcgw-dashboard.json"
ALERTS = GRAFANA / "alerts.yml"
ROWS = ["Calls", "Media", "ICE / DTLS", "Registrations", "Workers"]


_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'')
_METRIC = re.compile(r"\b(rtcgw_[A-Za-z0-9_:]*)")
_BY = re.compile(r"\b(?:by|without|on|ignoring)\s*\(([^)]*)\)")
_MATCHERS = re.compile(r"\b(rtcgw_[A-Za-z0-9_:]*)\s*\{([^}]*)\}")
_MATCHER_LABEL = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)\s*(?:=~|!~|!=|=)")


async def _promtool(*arguments: str) -> str:
    """Run promtool in grafana/ (the rule file is named relative to it); fail on non-zero."""
    # make test installs Debian's prometheus: a missing promtool is a failure.
    assert PROMTOOL is not None, "promtool (Debian package prometheus) is not installed"
    with trio.fail_after(60):
        done = await trio.run_process(
            [PROMTOOL, *arguments], cwd=GRAFANA, capture_stdout=True, capture_stderr=True,
            check=False,
        )  # fmt: skip
    output = (done.stdout + done.stderr).decode()
    print(f"promtool {' '.join(arguments)}: exit {done.returncode}\n{output.strip()}")
    assert done.returncode == 0, output
    return output


def _panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel of a dashboard, those inside collapsed rows too."""
    for panel in dashboard["panels"]:
        yield panel
        yield from panel.get("panels", [])


def _dashboard_expressions(dashboard: dict[str, Any]) -> list[str]:
    """The PromQL of every panel target and every query variable."""
    found = [t["expr"] for p in _panels(dashboard) for t in p.get("targets", [])]
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            query = variable["query"]
            found.append(query["query"] if isinstance(query, dict) else query)
    return found


def _alert_expressions(text: str) -> list[str]:
    """The ``expr`` of every rule in a rule file, inline or as an indented block scalar
    (a reader of the one YAML layout alerts.yml uses, so no YAML library is needed)."""
    lines = text.splitlines()
    found = []
    for number, line in enumerate(lines):
        key, _, rest = line.strip().partition(":")
        if key != "expr":
            continue
        rest = rest.strip()
        if rest not in (">", ">-", "|", "|-"):
            found.append(rest.strip("'\""))
            continue
        indent = len(line) - len(line.lstrip())
        block = []
        for following in lines[number + 1 :]:
            if following.strip() and len(following) - len(following.lstrip()) <= indent:
                break
            block.append(following.strip())
        found.append(" ".join(block).strip())
    return found


def _metrics_of(expression: str) -> set[str]:
    """The rtcgw_ series names an expression selects (string literals left out)."""
    return set(_METRIC.findall(_STRING.sub('""', expression)))


def _family(name: str) -> str:
    """The metric family a queried series belongs to."""
    for suffix in ("_bucket", "_sum", "_count"):
        if name.endswith(suffix):
            return name.removesuffix(suffix)
    return name


def _queried() -> dict[str, list[str]]:
    """Every expression of the dashboard and the alerts, by where it is."""
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    return {
        "dashboard": _dashboard_expressions(dashboard),
        "alerts": _alert_expressions(ALERTS.read_text(encoding="utf-8")),
    }


async def test_promtool_accepts_the_alert_rules_and_their_unit_tests() -> None:
    checked = await _promtool("check", "rules", "alerts.yml")
    assert "SUCCESS: 5 rules found" in checked
    # alerts_test.yml makes each alert fire on its own series and stay quiet on harmless ones.
    tested = await _promtool("test", "rules", "alerts_test.yml")
    assert "SUCCESS" in tested


async def test_promtool_accepts_the_scrape_example_with_its_rule_file() -> None:
    checked = await _promtool("check", "config", "prometheus.yml")
    assert "SUCCESS: 1 rule files found" in checked
    text = (GRAFANA / "prometheus.yml").read_text(encoding="utf-8")
    assert '"127.0.0.1:9464"' in text and "alerts.yml" in text


def test_the_alert_rules_carry_severity_and_annotations() -> None:
    text = ALERTS.read_text(encoding="utf-8")
    alerts = re.findall(r"^\s*- alert: (\w+)$", text, re.MULTILINE)
    assert alerts == [
        "RtcgwGatewayDown",
        "RtcgwWorkerDown",
        "RtcgwDtlsFailureRatio",
        "RtcgwMediaDropRatio",
        "RtcgwNoRegistrations",
    ]
    # One expression, severity, summary and description per alert, in its own block.
    for block in re.split(r"^\s*- alert: ", text, flags=re.MULTILINE)[1:]:
        name = block.split()[0]
        for key in ("expr:", "severity:", "summary:", "description:"):
            assert block.count(key) == 1, (name, key)
    assert len(_alert_expressions(text)) == len(alerts)


def test_the_dashboard_is_an_importable_grafana_model() -> None:
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    [source] = dashboard["__inputs"]
    assert source["name"] == "DS_PROMETHEUS" and source["pluginId"] == "prometheus"
    assert source["type"] == "datasource"
    required = {(r["type"], r["id"]) for r in dashboard["__requires"]}
    assert {("grafana", "grafana"), ("datasource", "prometheus")} <= required
    assert dashboard["uid"] and dashboard["title"] and dashboard["schemaVersion"] >= 36

    panels = list(_panels(dashboard))
    rows = [p["title"] for p in panels if p["type"] == "row"]
    assert rows == ROWS
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids))
    used_types = {p["type"] for p in panels if p["type"] != "row"}
    assert used_types <= {r["id"] for r in dashboard["__requires"] if r["type"] == "panel"}
    for panel in panels:
        assert panel["title"], panel
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == {"type": "prometheus", "uid": "${DS_PROMETHEUS}"}
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["expr"] and target["refId"], panel["title"]
            assert target["datasource"]["uid"] == "${DS_PROMETHEUS}", panel["title"]
            # A series legend names its labels, never the raw series text.
            assert target["legendFormat"], (panel["title"], target["expr"])
            for window in re.findall(r"\[([^\]]+)\]", target["expr"]):
                assert window in ("$__rate_interval", "$__range"), (panel["title"], window)
    for variable in dashboard["templating"]["list"]:
        assert variable["datasource"]["uid"] == "${DS_PROMETHEUS}"

    expressions = " ".join(_dashboard_expressions(dashboard))
    for histogram in ("rtcgw_call_setup_seconds", "rtcgw_post_pickup_delay_seconds"):
        for quantile in ("0.5", "0.95", "0.99"):
            assert f"histogram_quantile({quantile}, sum by (le, " in expressions
            assert f"{histogram}_bucket" in expressions


def test_the_expression_reader_finds_series_not_label_values() -> None:
    metrics = _metrics_of('sum by (x) (rate(rtcgw_a_total{x="rtcgw_b"}[5m])) / rtcgw_c_count')
    assert metrics == {"rtcgw_a_total", "rtcgw_c_count"}
    assert _family("rtcgw_c_count") == "rtcgw_c" and _family("rtcgw_a_total") == "rtcgw_a_total"
    block = "  - alert: A\n    expr: >-\n      rtcgw_x\n      > 1\n    for: 1m\n"
    inline = "  - alert: B\n    expr: rtcgw_y == 0\n"
    assert _alert_expressions(block + inline) == ["rtcgw_x > 1", "rtcgw_y == 0"]


def assert_dashboard_and_alerts_are_served(text: str) -> None:
    """Every metric (and label) the dashboard and the alerts query is in ``text``, a live
    /metrics exposition after a call (``test_metrics_live`` scrapes it)."""
    queried = _queried()
    families = {f.name: f for f in text_string_to_metric_families(text)}
    served = {s.name for f in families.values() for s in f.samples}
    labels: dict[str, set[str]] = {}
    for family in families.values():
        for sample in family.samples:
            labels.setdefault(sample.name, set()).update(sample.labels)
    # The parser names a counter's family without _total; a query names the sample.
    counters = {f"{name}_total" for name, f in families.items() if f.type == "counter"}
    served_families = set(families) | counters

    report: dict[str, list[str]] = {}
    missing: list[tuple[str, str]] = []
    unknown_labels: list[tuple[str, str]] = []
    for where, expressions in queried.items():
        names: set[str] = set()
        for expression in expressions:
            plain = _STRING.sub('""', expression)
            metrics = _metrics_of(expression)
            names |= metrics
            for metric in metrics:
                if _family(metric) not in served_families or metric not in served:
                    missing.append((where, metric))
            # A label the query selects on or groups by is a label of a series it reads
            # (Prometheus adds instance and job; le is every bucket's).
            known = {"instance", "job", "le"}.union(*(labels.get(m, set()) for m in metrics))
            for metric, matchers in _MATCHERS.findall(plain):
                for label in _MATCHER_LABEL.findall(matchers):
                    if label not in labels.get(metric, set()) | {"instance", "job"}:
                        unknown_labels.append((metric, label))
            for grouping in _BY.findall(plain):
                for label in filter(None, (g.strip() for g in grouping.split(","))):
                    if label not in known:
                        unknown_labels.append((expression, label))
        report[where] = sorted({_family(n) for n in names})
    for where, names in report.items():
        print(f"{where}: {len(queried[where])} expressions, {len(names)} metrics: {names}")
    assert missing == []
    assert unknown_labels == []
    # Each file reads the parts of the gateway it is meant to watch.
    assert len(report["dashboard"]) >= 20
    assert {
        "rtcgw_workers_up",
        "rtcgw_dtls_handshakes_total",
        "rtcgw_media_dropped_total",
        "rtcgw_media_packets_total",
        "rtcgw_registrations_active",
    } <= set(report["alerts"])
