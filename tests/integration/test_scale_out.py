"""Two dispatcher processes in one consumer group: zones fail over without loss or doubling."""

from __future__ import annotations

import asyncio
import random
import re
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from dispatcher.chaos import Demand, DispatcherProcess, shift_event, verify
from dispatcher.kafka import ensure_topics, shard_of_key
from tests.integration.pipeline_kit import make_settings

pytestmark = [pytest.mark.chaos, pytest.mark.kafka, pytest.mark.postgres]

ZONES = ("fockbek", "rendsburg")  # shards 0 and 1 of two partitions


def owned(log: Path) -> list[set[int]]:
    """Every shard set the process logged it owns, in order."""
    text = log.read_text(errors="replace") if log.exists() else ""
    return [
        {int(x) for x in m.group(1).split(",") if x.strip()}
        for m in re.finditer(r"own shards \[([0-9, ]*)\]", text)
    ]


async def wait_for(condition, limit_s: float) -> None:
    async with asyncio.timeout(limit_s):
        while not condition():  # noqa: ASYNC110 - polling log files of other processes
            await asyncio.sleep(0.1)


async def test_a_dead_instance_zones_move_to_the_survivor(
    kafka_bootstrap, topic_prefix, pg_schema, tmp_path: Path
):
    """Each instance owns one zone; SIGKILL one, the other takes its zone over within the
    session timeout and every request of both zones is answered exactly once."""
    assert {shard_of_key(z.encode(), 2) for z in ZONES} == {0, 1}
    settings = make_settings(kafka_bootstrap, topic_prefix, *pg_schema)
    settings.dispatch.service_area = None  # any zone
    settings.solver.time_limit_s = 0.3
    settings.kafka.session_timeout_s = 6.0
    settings.kafka.heartbeat_interval_s = 1.0
    await ensure_topics(settings.kafka)
    logs = [tmp_path / "a.log", tmp_path / "b.log"]
    handles = [log.open("ab") for log in logs]
    procs = [DispatcherProcess(settings, h) for h in handles]
    try:
        async with Demand(settings) as demand:
            now = datetime.now(UTC)
            for i in range(6):
                await demand.send("vehicle_events", shift_event(f"v{i}", now, ZONES[i % 2]))
            procs[0].start()
            await wait_for(lambda: owned(logs[0]) and owned(logs[0])[-1] == {0, 1}, 90)
            procs[1].start()
            await wait_for(
                lambda: (
                    bool(owned(logs[1]))
                    and len(owned(logs[1])[-1]) == 1
                    and len(owned(logs[0])[-1]) == 1
                ),
                90,
            )
            victim_shards = owned(logs[1])[-1]
            stop = asyncio.Event()
            sender = asyncio.create_task(
                demand.stream(3.0, stop, random.Random(9), prefix="so", zones=ZONES)
            )
            await asyncio.sleep(4.0)
            killed_at = time.monotonic()
            procs[1].kill()
            await wait_for(lambda: owned(logs[0])[-1] == {0, 1}, 60)
            takeover_s = time.monotonic() - killed_at
            await asyncio.sleep(6.0)
            stop.set()
            await sender
            verdict = await verify(
                settings, demand.sent, wait_s=90, epoch=(time.monotonic(), time.time())
            )
            victim_zone = next(z for z in ZONES if shard_of_key(z.encode(), 2) in victim_shards)
            after_kill = {
                r: t for r, t in demand.sent.items() if t > killed_at and r in verdict.latency_s
            }
    finally:
        for proc in procs:
            proc.terminate()
        for h in handles:
            h.close()
    assert verdict.ok, (verdict.lost[:5], verdict.duplicate_outcomes[:5])
    assert verdict.answered == verdict.requests
    assert takeover_s < 30, takeover_s
    assert after_kill, "no request was sent after the kill"
    print(
        f"failover: zone {victim_zone} taken over {takeover_s:.1f}s after SIGKILL; "
        f"{verdict.requests} requests answered once each"
    )
