"""The Grafana provisioning files and dashboards: parse, reference what exists, query."""

from __future__ import annotations

import importlib.util
import re
from typing import Any

import pytest
import yaml

from tests.unit.deploy.kit import (
    COMPOSE_FILE,
    DASHBOARD_DIR,
    GRAFANA_DIR,
    PROPOSED_METRICS,
    dashboards,
    expand_sql,
    exported_metrics,
    metrics_of,
    panels,
    promql_targets,
    sql_targets,
)


def datasources() -> dict[str, dict[str, Any]]:
    doc = yaml.safe_load((GRAFANA_DIR / "provisioning/datasources/drt.yml").read_text())
    return {ds["uid"]: ds for ds in doc["datasources"]}


def test_datasources_provisioned() -> None:
    """Prometheus and PostgreSQL are provisioned with fixed uids the dashboards use."""
    sources = datasources()
    assert sources["drt-prometheus"]["type"] == "prometheus"
    assert sources["drt-postgres"]["type"] == "grafana-postgresql-datasource"
    assert "password" in sources["drt-postgres"]["secureJsonData"]


def test_dashboards_parse_with_unique_ids() -> None:
    """Both dashboards load, with unique uids and unique panel ids within each."""
    boards = dashboards()
    assert set(boards) == {"drt-operations.json", "drt-system.json"}
    assert len({b["uid"] for b in boards.values()}) == len(boards)
    for name, board in boards.items():
        ids = [p["id"] for p in board["panels"]]
        assert len(ids) == len(set(ids)), name


def test_every_panel_has_datasource_and_targets() -> None:
    """Each panel names a provisioned data source and has queries for it."""
    sources = datasources()
    count = 0
    for name, board in dashboards().items():
        for panel in panels(board):
            count += 1
            where = f"{name}: {panel['title']}"
            assert panel["datasource"]["uid"] in sources, where
            assert panel["targets"], where
            for target in panel["targets"]:
                uid = target["datasource"]["uid"]
                assert uid in sources, where
                kind = sources[uid]["type"]
                assert target["datasource"]["type"] == kind, where
                field = "expr" if kind == "prometheus" else "rawSql"
                assert target.get(field, "").strip(), f"{where}: no {field}"
            refs = [t["refId"] for t in panel["targets"]]
            assert len(refs) == len(set(refs)), where
    assert count >= 20


def test_panels_do_not_overlap() -> None:
    """No two panels share a grid cell."""
    for name, board in dashboards().items():
        cells: set[tuple[int, int]] = set()
        for panel in board["panels"]:
            g = panel["gridPos"]
            assert g["x"] + g["w"] <= 24, (name, panel["title"])
            mine = {
                (x, y)
                for x in range(g["x"], g["x"] + g["w"])
                for y in range(g["y"], g["y"] + g["h"])
            }
            assert not cells & mine, (name, panel["title"])
            cells |= mine


def test_operations_dashboard_covers_the_issue() -> None:
    """The operator overview shows service, rejections, waits, occupancy, pooling, fleet
    and a Geomap of vehicles and open requests from PostgreSQL."""
    board = dashboards()["drt-operations.json"]
    titles = " | ".join(p["title"].lower() for p in panels(board))
    for word in ("service rate", "rejections", "wait", "occupancy", "pooling", "fleet"):
        assert word in titles, word
    geomap = next(p for p in panels(board) if p["type"] == "geomap")
    assert geomap["datasource"]["uid"] == "drt-postgres"
    layers = {layer["filterData"]["options"] for layer in geomap["options"]["layers"]}
    assert layers == {t["refId"] for t in geomap["targets"]}
    for target in geomap["targets"]:
        assert re.search(r"\blat\b", target["rawSql"]), target["refId"]
        assert re.search(r"\blon\b", target["rawSql"]), target["refId"]


def test_system_dashboard_covers_the_issue() -> None:
    """The system dashboard reads latency, solver, lag, errors, dead letters and the pool."""
    used = set().union(*(metrics_of(e) for n, _, e in promql_targets() if n == "drt-system.json"))
    assert {
        "drt_request_to_answer_seconds",
        "drt_solver_duration_seconds",
        "drt_solver_time_limit_hits_total",
        "drt_solver_fallbacks_total",
        "drt_solver_objective",
        "drt_kafka_consumer_lag_messages",
        "drt_cycle_errors_total",
        "drt_dead_letters_total",
        "drt_postgres_pool_connections_in_use",
    } <= used


def test_queries_use_known_metrics() -> None:
    """Every PromQL query reads exported metrics, or proposed ones in a '(proposed)' panel."""
    exported = exported_metrics() | {"up"}
    for name, title, expr in promql_targets():
        used = metrics_of(expr)
        assert used, f"{name}: {title}: no metric in {expr!r}"
        unknown = used - exported - PROPOSED_METRICS
        assert not unknown, f"{name}: {title}: unknown metrics {unknown}"
        if used & PROPOSED_METRICS:
            assert title.endswith("(proposed)"), f"{name}: {title} needs '(proposed)'"


def test_sql_macros_expand() -> None:
    """Every SQL query is left without Grafana macros after expand_sql."""
    queries = sql_targets()
    assert len(queries) >= 5
    for _, _, _, query in queries:
        expand_sql(query)


@pytest.fixture(scope="module")
def generator() -> Any:
    spec = importlib.util.spec_from_file_location(
        "drt_grafana_generate", GRAFANA_DIR / "generate.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_dashboards_match_generator(generator: Any) -> None:
    """The committed JSON is what generate.py writes (run it after editing it)."""
    for name, text in generator.render().items():
        assert (DASHBOARD_DIR / name).read_text(encoding="utf-8") == text, (
            f"{name} is stale: run `python deploy/grafana/generate.py`"
        )


def test_dashboard_provider_path_matches_compose_mount() -> None:
    """Grafana's file provider reads the folder Compose mounts the dashboards into."""
    provider = yaml.safe_load((GRAFANA_DIR / "provisioning/dashboards/drt.yml").read_text())
    path = provider["providers"][0]["options"]["path"]
    compose = yaml.safe_load(COMPOSE_FILE.read_text())
    mounts = [v.split(":")[1] for v in compose["services"]["grafana"]["volumes"]]
    assert path in mounts
