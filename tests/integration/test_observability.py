"""Dashboards and alerts against a real dispatcher, a real Prometheus and PostgreSQL.

A dispatcher runs on the real broker and database with a little demand (vehicles,
ride requests, one outside the service area, one unreadable message), serving its
metrics over HTTP. A Prometheus started here (Debian's ``prometheus`` binary) scrapes
it every second with the shipped prometheus.yml and alerts.yml. Then every PromQL
expression of the dashboards must be valid and return data (expressions on proposed
metrics need only be valid), every alert rule must load and evaluate without error
and read series that exist, and every SQL query of the dashboards must run against
the rows the dispatcher wrote.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import subprocess
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import yaml
from prometheus_client import start_http_server

from schemas.dispatch import RideOfferedV1, RideRejectedV1
from schemas.envelope import Place
from schemas.passenger import RideRequestedV1
from tests.integration.pipeline_kit import Bus, make_settings, requests, running, shift
from tests.unit.deploy.kit import (
    PROMETHEUS_DIR,
    alert_rules,
    expand_promql,
    expand_sql,
    is_proposed,
    is_sparse,
    promql_targets,
    require_binary,
    selectors,
    sql_targets,
)

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]

HINT = "install it with `bash deploy/prometheus/install.sh` (Debian package prometheus)"
#: Enough one-second scrapes that rate() over $__rate_interval has samples.
MIN_SCRAPES = 4
#: SQL queries that may rightly return nothing once every request is answered.
MAY_BE_EMPTY = {("drt-operations.json", "pending")}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def metrics_http(registry: Any) -> Iterator[int]:
    """The dispatcher's registry on a free port, as `drt serve` serves it."""
    port = free_port()
    server, thread = start_http_server(port, addr="127.0.0.1", registry=registry)
    try:
        yield port
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


class Prometheus:
    """A Prometheus server on a free port, configured from deploy/prometheus."""

    def __init__(self, binary: str, workdir: Path, target_port: int) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = yaml.safe_load((PROMETHEUS_DIR / "prometheus.yml").read_text())
        config["global"]["scrape_interval"] = "1s"
        config["global"]["evaluation_interval"] = "1s"
        config["rule_files"] = [str(PROMETHEUS_DIR / f) for f in config["rule_files"]]
        for job in config["scrape_configs"]:
            own = f"127.0.0.1:{self.port}"
            target = f"127.0.0.1:{target_port}" if job["job_name"] == "drt-dispatcher" else own
            for static in job["static_configs"]:
                static["targets"] = [target]
        self.config_file = workdir / "prometheus.yml"
        self.config_file.write_text(yaml.safe_dump(config))
        self.data = workdir / "data"
        self.log = workdir / "prometheus.log"
        self.binary = binary
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("wb") as log:
            self.proc = subprocess.Popen(
                [
                    self.binary,
                    f"--config.file={self.config_file}",
                    f"--storage.tsdb.path={self.data}",
                    f"--web.listen-address=127.0.0.1:{self.port}",
                    "--storage.tsdb.retention.time=1h",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)

    def _get(self, path: str, params: dict[str, str] | None = None) -> dict[str, Any]:
        url = self.url + path + ("?" + urllib.parse.urlencode(params) if params else "")
        try:
            with urllib.request.urlopen(url, timeout=10) as response:
                return dict(json.load(response))
        except urllib.error.HTTPError as exc:  # 400 for a bad query: the body says why
            return dict(json.load(exc))

    async def get(self, path: str, params: dict[str, str] | None = None) -> dict[str, Any]:
        return await asyncio.to_thread(self._get, path, params)

    async def query(self, expr: str) -> dict[str, Any]:
        return await self.get("/api/v1/query", {"query": expr})

    async def wait_ready(self, limit_s: float = 60) -> None:
        async with asyncio.timeout(limit_s):
            while True:
                assert self.proc is not None
                if self.proc.poll() is not None:
                    pytest.fail(f"prometheus exited: {self.log.read_text()[-3000:]}")
                with contextlib.suppress(OSError, ValueError):
                    if (await self.get("/api/v1/status/buildinfo"))["status"] == "success":
                        return
                await asyncio.sleep(0.2)

    async def wait_for(self, expr: str, limit_s: float = 60) -> None:
        """Until ``expr`` returns data."""
        async with asyncio.timeout(limit_s):
            while True:
                if (await self.query(expr)).get("data", {}).get("result"):
                    return
                await asyncio.sleep(0.5)


@pytest.fixture
async def prometheus_factory(tmp_path: Path) -> AsyncIterator[Any]:
    binary = require_binary("prometheus", HINT)
    started: list[Prometheus] = []

    async def start(target_port: int) -> Prometheus:
        server = Prometheus(binary, tmp_path, target_port)
        started.append(server)
        server.start()
        await server.wait_ready()
        return server

    try:
        yield start
    finally:
        for server in started:
            await asyncio.to_thread(server.stop)


def outside_area(now: datetime) -> RideRequestedV1:
    """A request from Hamburg: rejected as outside_area."""
    return RideRequestedV1(
        occurred_at=now,
        source="test",
        request_id="far-away",
        passenger_ref="p-far",
        zone="rendsburg",
        origin=Place(lat=53.5511, lon=9.9937, name="Hamburg"),
        destination=Place(lat=54.306495, lon=9.663206, name="Rendsburg"),
    )


def answered(events: list[Any]) -> set[str]:
    return {e.request_id for _, e in events if isinstance(e, RideOfferedV1 | RideRejectedV1)}


async def check_promql(prom: Prometheus) -> list[str]:
    """Every dashboard query valid, and non-empty unless it reads a proposed metric."""
    problems = []
    for dashboard, title, raw in promql_targets():
        expr = expand_promql(raw)
        answer = await prom.query(expr)
        where = f"{dashboard} / {title}: {expr}"
        if answer.get("status") != "success":
            problems.append(f"{where}: {answer.get('error')}")
        elif not answer["data"]["result"] and not is_proposed(expr):
            problems.append(f"{where}: no data")
    return problems


async def check_alerts(prom: Prometheus) -> list[str]:
    """Every rule loaded and evaluates healthily; each series it reads exists, unless the
    metric is proposed or only appears on its first increment (SPARSE_METRICS)."""
    problems = []
    rules = alert_rules()
    loaded: dict[str, dict[str, Any]] = {}
    async with asyncio.timeout(30):
        while len(loaded) < len(rules) or any(r["health"] == "unknown" for r in loaded.values()):
            groups = (await prom.get("/api/v1/rules"))["data"]["groups"]
            loaded = {r["name"]: r for g in groups for r in g["rules"]}
            await asyncio.sleep(0.5)
    for rule in rules:
        name, expr = rule["alert"], rule["expr"]
        answer = await prom.query(expr)
        if answer.get("status") != "success":
            problems.append(f"{name}: {answer.get('error')}")
        state = loaded.get(name)
        if state is None or state["health"] != "ok":
            problems.append(f"{name}: not loaded or unhealthy: {state}")
        for metric, selector in selectors(expr):
            if is_proposed(metric) or is_sparse(metric):
                continue
            result = await prom.query(f"count({selector})")
            if not result.get("data", {}).get("result"):
                problems.append(f"{name}: {selector} has no series")
    return problems


async def check_sql(dsn: str, schema: str) -> list[str]:
    """Every dashboard SQL query runs in the dispatcher's schema and returns rows."""
    problems = []
    conn = await asyncpg.connect(dsn, server_settings={"search_path": schema}, timeout=10)
    try:
        for dashboard, title, ref, raw in sql_targets():
            where = f"{dashboard} / {title} / {ref}"
            try:
                rows = await conn.fetch(expand_sql(raw))
            except asyncpg.PostgresError as exc:
                problems.append(f"{where}: {exc}")
                continue
            if not rows and (dashboard, ref) not in MAY_BE_EMPTY:
                problems.append(f"{where}: no rows")
            elif rows and "lat" in rows[0]:
                problems.extend(
                    f"{where}: position {row['lat']}, {row['lon']}"
                    for row in rows
                    if not (54.0 < row["lat"] < 54.6 and 9.3 < row["lon"] < 10.0)
                )
    finally:
        await conn.close()
    return problems


async def test_dashboards_and_alerts_on_live_data(
    kafka_bootstrap: str, topic_prefix: str, pg_schema: Any, prometheus_factory: Any
) -> None:
    """Every dashboard query and alert rule works on a real Prometheus scraping a real
    dispatcher, and every dashboard SQL query runs on the rows it wrote."""
    settings = make_settings(kafka_bootstrap, topic_prefix, *pg_schema)
    now = datetime.now(UTC)
    rides = [*requests(8, seed=11, now=now), outside_area(now)]
    async with running(settings) as dispatcher, Bus(settings) as bus:
        with metrics_http(dispatcher.metrics.registry) as metrics_port:
            for i in range(3):
                await bus.send("vehicle_events", shift(f"v{i}", now))
            for ride in rides:
                await bus.send("requests", ride)
            await bus.send_raw("requests", b"this is not an event")
            wanted = {r.request_id for r in rides}
            notes = await bus.collect("notifications", lambda s: answered(s) >= wanted, 90)
            assert answered(notes) >= wanted, wanted - answered(notes)

            prom = await prometheus_factory(metrics_port)
            await prom.wait_for(f'count_over_time(up{{job="drt-dispatcher"}}[1m]) >= {MIN_SCRAPES}')
            # The dead letter and the lag gauge (refreshed every 5 s) are scraped too.
            await prom.wait_for("drt_dead_letters_total")
            await prom.wait_for("drt_kafka_consumer_lag_messages")

            problems = await check_promql(prom)
            problems += await check_alerts(prom)
            problems += await check_sql(*pg_schema)
    assert not problems, "\n".join(problems)
