"""The broker and the database restarted under load, on a private Kafka and PostgreSQL.

The module starts its own broker and cluster (``DRT_VAR_DIR``, ``DRT_KAFKA_PORT``,
``DRT_PG_PORT`` for the deploy scripts), so stopping them disturbs no other test,
and stops them again afterwards, whatever happens.
"""

from __future__ import annotations

import asyncio
import os
import random
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from dispatcher.chaos import Demand, shift_event, verify
from dispatcher.config import Settings
from tests.integration.pipeline_kit import make_settings, running

pytestmark = [pytest.mark.chaos, pytest.mark.kafka, pytest.mark.postgres]

REPO = Path(__file__).parents[2]
KAFKA_PORT = int(os.environ.get("DRT_TEST_PRIVATE_KAFKA_PORT", "19092"))
PG_PORT = int(os.environ.get("DRT_TEST_PRIVATE_PG_PORT", "15433"))


def deploy(script: str, env: dict[str, str]) -> None:
    subprocess.run(["bash", str(REPO / "deploy" / script)], env=env, check=True, timeout=180)


@pytest.fixture(scope="module")
def private_services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """A private broker and PostgreSQL cluster: ``{"bootstrap": ..., "dsn": ..., env}``."""
    var = tmp_path_factory.mktemp("services")
    env = dict(
        os.environ,
        DRT_VAR_DIR=str(var),
        DRT_KAFKA_PORT=str(KAFKA_PORT),
        DRT_KAFKA_CONTROLLER_PORT=str(KAFKA_PORT + 1),
        DRT_PG_PORT=str(PG_PORT),
        DRT_PG_DIR=f"/tmp/drt-test-pg-{PG_PORT}",
    )
    try:
        deploy("kafka/start.sh", env)
        deploy("postgres/start.sh", env)
        yield {
            "bootstrap": f"127.0.0.1:{KAFKA_PORT}",
            "dsn": f"postgresql://drt:drt@127.0.0.1:{PG_PORT}/drt",
            **{k: v for k, v in env.items() if k.startswith("DRT_")},
        }
    finally:
        for script in ("kafka/stop.sh", "postgres/stop.sh"):
            try:
                deploy(script, env)
            except (subprocess.SubprocessError, OSError) as exc:
                print(f"could not stop {script}: {exc}")


def healthy(settings_metrics: object) -> float | None:
    registry = settings_metrics.registry  # type: ignore[attr-defined]
    value: float | None = registry.get_sample_value("drt_dispatcher_healthy")
    return value


async def until(condition, limit_s: float) -> None:
    async with asyncio.timeout(limit_s):
        while not condition():  # noqa: ASYNC110 - a gauge, no event to wait on
            await asyncio.sleep(0.2)


async def outage(service: str, private_services: dict[str, str], topic_prefix: str) -> None:
    env = dict(os.environ, **private_services)
    settings: Settings = make_settings(
        private_services["bootstrap"], topic_prefix, private_services["dsn"], "public"
    )
    settings.database.db_schema = topic_prefix.replace("-", "_")
    settings.solver.time_limit_s = 0.3
    settings.kafka.request_timeout_s = 15.0
    now = datetime.now(UTC)
    async with running(settings) as dispatcher, Demand(settings) as demand:
        for i in range(4):
            await demand.send("vehicle_events", shift_event(f"v{i}", now))
        stop = asyncio.Event()
        sender = asyncio.create_task(demand.stream(2.0, stop, random.Random(4), prefix="o"))
        await until(lambda: dispatcher.takeovers > 0, 90)
        # A fresh broker sets up its transaction log on first use; wait for a first answer.
        await until(
            lambda: (
                (
                    dispatcher.metrics.registry.get_sample_value(
                        "drt_requests_answered_total", {"outcome": "offered", "reason": ""}
                    )
                    or 0
                )
                > 0
            ),
            90,
        )
        await asyncio.sleep(2.0)
        try:
            if service == "kafka":
                stop.set()  # the producer cannot send without a broker either
                await sender
            await asyncio.to_thread(deploy, f"{service}/stop.sh", env)
            await until(lambda: healthy(dispatcher.metrics) == 0, 90)
            await asyncio.sleep(3.0)
        finally:
            await asyncio.to_thread(deploy, f"{service}/start.sh", env)
        await until(lambda: healthy(dispatcher.metrics) == 1, 120)
        if service == "kafka":
            stop.clear()
            sender = asyncio.create_task(demand.stream(2.0, stop, random.Random(5), prefix="p"))
        await asyncio.sleep(3.0)
        stop.set()
        await sender
        verdict = await verify(settings, demand.sent, wait_s=90)
    assert verdict.ok, (verdict.lost[:5], verdict.duplicate_outcomes[:5])
    assert verdict.answered == verdict.requests > 0


async def test_broker_restart_under_load(private_services, topic_prefix):
    """Kafka stops: the dispatcher reports itself unhealthy, retries, and once the broker
    is back answers every request exactly once."""
    await outage("kafka", private_services, topic_prefix)


async def test_postgres_restart_under_load(private_services, topic_prefix):
    """PostgreSQL stops while requests flow: unhealthy, retries with backoff, then every
    request accepted before, during and after the outage is answered exactly once."""
    await outage("postgres", private_services, topic_prefix)
