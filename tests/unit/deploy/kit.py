"""Shared helpers for the deploy/ tests: paths, dashboards, PromQL and SQL of the files."""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[3]
DEPLOY = REPO / "deploy"
PROMETHEUS_DIR = DEPLOY / "prometheus"
GRAFANA_DIR = DEPLOY / "grafana"
DASHBOARD_DIR = GRAFANA_DIR / "dashboards" / "drt"
COMPOSE_FILE = DEPLOY / "compose" / "docker-compose.yml"
K8S_DIR = DEPLOY / "k8s"
README = DEPLOY / "README.md"

#: Metrics the dashboards and alerts may use before the dispatcher exports them
#: (none today). Queries on them must be valid, not non-empty.
PROPOSED_METRICS: frozenset[str] = frozenset()
#: Labelled counters that have no series until their first increment (a fallback,
#: a failed cycle); a healthy test run has none, so only validity is required.
SPARSE_METRICS = frozenset({"drt_solver_fallbacks_total", "drt_cycle_errors_total"})

_HISTOGRAM_SUFFIXES = ("_bucket", "_count", "_sum")
_SELECTOR = re.compile(r"\b(drt_[a-z0-9_]+|up)\b(\{[^{}]*\})?")


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() not in ("", "0", "false", "no")


def require_binary(name: str, hint: str) -> str:
    """Path of an executable; fail under CI and skip elsewhere when it is missing."""
    path = shutil.which(name)
    if path is None:
        message = f"{name} not found; {hint}"
        if in_ci():
            pytest.fail(message)
        pytest.skip(message)
    return path


def base_metric(name: str) -> str:
    """``drt_x_seconds_bucket`` -> ``drt_x_seconds`` (histograms), others unchanged."""
    for suffix in _HISTOGRAM_SUFFIXES:
        if name.endswith(suffix) and not name.endswith("_total"):
            return name.removesuffix(suffix)
    return name


def selectors(expr: str) -> list[tuple[str, str]]:
    """``(metric, selector)`` pairs of the drt_ and ``up`` series an expression reads."""
    return [(m.group(1), m.group(0)) for m in _SELECTOR.finditer(expr)]


def metrics_of(expr: str) -> set[str]:
    return {base_metric(name) for name, _ in selectors(expr)}


def is_proposed(expr: str) -> bool:
    return bool(metrics_of(expr) & PROPOSED_METRICS)


def is_sparse(expr: str) -> bool:
    return bool(metrics_of(expr) & SPARSE_METRICS)


# -- Grafana ---------------------------------------------------------------------------------


def dashboards() -> dict[str, dict[str, Any]]:
    """File name -> parsed dashboard JSON."""
    return {
        p.name: json.loads(p.read_text(encoding="utf-8"))
        for p in sorted(DASHBOARD_DIR.glob("*.json"))
    }


def panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel, rows' nested panels included; rows themselves are left out."""
    for panel in dashboard.get("panels", []):
        if panel.get("type") == "row":
            yield from panel.get("panels", [])
        else:
            yield panel


def promql_targets() -> list[tuple[str, str, str]]:
    """``(dashboard file, panel title, expr)`` of every Prometheus query."""
    return [
        (name, panel["title"], target["expr"])
        for name, board in dashboards().items()
        for panel in panels(board)
        for target in panel.get("targets", [])
        if "expr" in target
    ]


def sql_targets() -> list[tuple[str, str, str, str]]:
    """``(dashboard file, panel title, refId, rawSql)`` of every PostgreSQL query."""
    return [
        (name, panel["title"], target["refId"], target["rawSql"])
        for name, board in dashboards().items()
        for panel in panels(board)
        for target in panel.get("targets", [])
        if "rawSql" in target
    ]


#: Grafana's interval variables, as Grafana would fill them for a short time range.
GRAFANA_PROMQL_VARS = {"$__rate_interval": "1m", "$__interval": "15s", "$__range": "1h"}


def expand_promql(expr: str) -> str:
    for var, value in GRAFANA_PROMQL_VARS.items():
        expr = expr.replace(var, value)
    return expr


_TIME_FILTER = re.compile(r"\$__timeFilter\(([^()]+)\)")


def expand_sql(query: str, window: str = "6 hours") -> str:
    """Substitute the Grafana SQL macros the dashboards use (``$__timeFilter``)."""
    query = _TIME_FILTER.sub(
        lambda m: f"{m.group(1)} BETWEEN now() - interval '{window}' AND now()", query
    )
    assert "$" not in query, f"unexpanded Grafana macro or variable in {query!r}"
    return query


# -- Prometheus rules ------------------------------------------------------------------------


def alert_rules() -> list[dict[str, Any]]:
    import yaml  # noqa: PLC0415 - PyYAML is a dev dependency only

    doc = yaml.safe_load((PROMETHEUS_DIR / "alerts.yml").read_text(encoding="utf-8"))
    return [rule for group in doc["groups"] for rule in group["rules"]]


def exported_metrics() -> set[str]:
    """Names of every metric family the dispatcher's Metrics container registers."""
    from dispatcher.metrics import Metrics  # noqa: PLC0415

    names = set()
    for family in Metrics().registry.collect():
        name = family.name
        if family.type == "counter":
            name += "_total"
        names.add(name)
    return names
