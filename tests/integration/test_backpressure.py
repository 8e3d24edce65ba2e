"""A burst of ten times the normal request rate is absorbed in bounded batches."""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime

import pytest

from dispatcher.chaos import Demand, shift_event, verify
from tests.integration.pipeline_kit import make_settings, running

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]


async def test_burst_of_ten_times_the_rate_is_answered(kafka_bootstrap, topic_prefix, pg_schema):
    """2 req/s for a while, then 20 req/s: every request is answered exactly once, no
    batch exceeds its cap and no poll takes more than its record cap."""
    settings = make_settings(kafka_bootstrap, topic_prefix, *pg_schema)
    settings.kafka.max_poll_records = 40
    settings.dispatch.batch_max_size = 20
    settings.solver.time_limit_s = 0.3
    now = datetime.now(UTC)
    async with running(settings) as dispatcher, Demand(settings) as demand:
        for i in range(10):
            await demand.send("vehicle_events", shift_event(f"v{i}", now))
        polls: list[int] = []
        original = dispatcher._consumer.poll  # type: ignore[union-attr]

        async def counted(timeout_s: float, max_records: int = 500) -> list:
            records = await original(timeout_s, max_records)
            polls.append(len(records))
            return records

        dispatcher._consumer.poll = counted  # type: ignore[union-attr,method-assign]
        stop = asyncio.Event()
        rng = random.Random(2)
        normal = asyncio.create_task(demand.stream(2.0, stop, rng, prefix="n"))
        await asyncio.sleep(4.0)
        stop.set()
        await normal
        stop.clear()
        burst = asyncio.create_task(demand.stream(20.0, stop, rng, prefix="b"))
        await asyncio.sleep(8.0)
        stop.set()
        await burst
        verdict = await verify(settings, demand.sent, wait_s=120)
        registry = dispatcher.metrics.registry
        batches = registry.get_sample_value("drt_batch_size_requests_count") or 0
        within = registry.get_sample_value("drt_batch_size_requests_bucket", {"le": "20.0"}) or 0
    assert verdict.ok, (verdict.lost[:5], verdict.duplicate_outcomes[:5])
    assert verdict.answered == verdict.requests >= 150
    assert batches > 0 and within == batches
    assert max(polls) <= 40
