"""`drt serve` as an operator runs it: a process that drains its batch on SIGTERM."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from datetime import UTC, datetime

import pytest

from tests.integration.pipeline_kit import Bus, make_settings, requests, shift
from tests.integration.test_pipeline import outcome_ids

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]


def serve_env(settings, batch_window_s: float) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "DRT_KAFKA__BOOTSTRAP_SERVERS": settings.kafka.bootstrap_servers,
            "DRT_KAFKA__TOPIC_PREFIX": settings.kafka.topic_prefix,
            "DRT_KAFKA__GROUP_ID": settings.kafka.group_id,
            "DRT_KAFKA__PARTITIONS": "2",
            "DRT_DATABASE__DSN": settings.database.dsn.get_secret_value(),
            "DRT_DATABASE__DB_SCHEMA": settings.database.db_schema,
            "DRT_SOLVER__TIME_LIMIT_S": "0.5",
            "DRT_DISPATCH__BATCH_WINDOW_S": str(batch_window_s),
            "DRT_METRICS_PORT": "0",
        }
    )
    return env


async def start_serve(env: dict[str, str]) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "dispatcher",
        "serve",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )


async def wait_started(process: asyncio.subprocess.Process) -> None:
    assert process.stdout is not None
    async with asyncio.timeout(60):
        while True:
            line = await process.stdout.readline()
            assert line, "drt serve exited before it started"
            if b"dispatcher started" in line:
                break
    asyncio.get_running_loop().create_task(_drain(process))


async def _drain(process: asyncio.subprocess.Process) -> None:
    assert process.stdout is not None
    while await process.stdout.readline():
        pass


async def test_sigterm_finishes_the_batch_then_exits(kafka_bootstrap, topic_prefix, pg_schema):
    """On SIGTERM the process answers the requests of its open batch, commits and exits 0;
    what it never read is answered after a restart, nothing twice."""
    settings = make_settings(kafka_bootstrap, topic_prefix, *pg_schema)
    # A long window: the batch is still open when SIGTERM arrives.
    env = serve_env(settings, batch_window_s=120.0)
    now = datetime.now(UTC)
    rides = requests(12, seed=5, now=now)
    process = await start_serve(env)
    await wait_started(process)
    async with Bus(settings) as bus:
        await bus.send("vehicle_events", shift("v0", now))
        await bus.send("vehicle_events", shift("v1", now))
        for r in rides[:8]:
            await bus.send("requests", r)
        await asyncio.sleep(2.0)  # consumed, pending in the 120 s batch
        before = await bus.collect("notifications", lambda s: False, 1.0)
        assert not outcome_ids(before), "the batch was solved before its window"
        process.send_signal(signal.SIGTERM)
        async with asyncio.timeout(60):
            code = await process.wait()
        assert code == 0
        drained = await bus.collect("notifications", lambda s: len(outcome_ids(s)) >= 8, 30)
        assert set(outcome_ids(drained)) == {r.request_id for r in rides[:8]}
        for r in rides[8:]:
            await bus.send("requests", r)
        process = await start_serve(serve_env(settings, batch_window_s=0.5))
        await wait_started(process)
        try:
            notes = await bus.collect("notifications", lambda s: len(outcome_ids(s)) >= 12, 60)
        finally:
            process.send_signal(signal.SIGTERM)
            async with asyncio.timeout(60):
                await process.wait()
    counts = outcome_ids(notes)
    assert set(counts) == {r.request_id for r in rides}
    assert max(counts.values()) == 1
