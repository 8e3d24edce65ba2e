"""Crashes and faults against the real broker and database: nothing lost, nothing doubled."""

from __future__ import annotations

import asyncio
import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

from dispatcher.chaos import Demand, request_event, run_kill_cycles, shift_event, verify
from dispatcher.config import SolverSettings
from tests.integration.pipeline_kit import make_settings, running

pytestmark = [pytest.mark.chaos, pytest.mark.kafka, pytest.mark.postgres]

#: Kill cycles in the test suite; ``drt bench chaos --cycles 100`` runs the soak.
CYCLES = int(os.environ.get("DRT_CHAOS_CYCLES", "10"))


async def test_sigkill_at_random_moments_loses_and_doubles_nothing(
    kafka_bootstrap, topic_prefix, pg_schema, tmp_path: Path
):
    """A dispatcher process SIGKILLed CYCLES times while requests flow answers every
    request exactly once, and no driver plan contradicts an offer."""
    settings = make_settings(kafka_bootstrap, topic_prefix, *pg_schema)
    settings.solver.time_limit_s = 0.3
    settings.kafka.session_timeout_s = 6.0
    settings.kafka.heartbeat_interval_s = 1.0
    report = await run_kill_cycles(
        settings, cycles=CYCLES, rate=4.0, seed=1, log_path=tmp_path / "dispatcher.log"
    )
    v = report.verdict
    assert report.kills == CYCLES
    assert v.requests > 0
    assert not v.lost, v.lost[:10]
    assert not v.duplicate_outcomes, v.duplicate_outcomes[:10]
    assert v.duplicate_event_ids == 0
    assert not v.plan_contradictions, v.plan_contradictions[:5]


@pytest.mark.parametrize("stub", ["fail", "stall"])
async def test_failing_solver_falls_back_to_insertion(
    kafka_bootstrap, topic_prefix, pg_schema, stub: str
):
    """A solver that raises or overruns its limit: every batch falls back to insertion
    and every request is still answered once."""
    settings = make_settings(kafka_bootstrap, topic_prefix, *pg_schema)
    settings.solver = SolverSettings(
        name=f"tests.integration.stub_solvers:{stub}", time_limit_s=0.2
    )
    now = datetime.now(UTC)
    async with running(settings) as dispatcher, Demand(settings) as demand:
        for i in range(3):
            await demand.send("vehicle_events", shift_event(f"v{i}", now))
        import random  # noqa: PLC0415

        rng = random.Random(5)
        for i in range(12):
            await demand.request(request_event(f"s{i:03d}", rng, now))
            if i % 4 == 3:
                await asyncio.sleep(1.0)
        verdict = await verify(settings, demand.sent, wait_s=90)
        fallbacks = dispatcher.metrics.registry.get_sample_value(
            "drt_solver_fallbacks_total", {"cause": "timeout" if stub == "stall" else "error"}
        )
    assert verdict.ok, verdict
    assert verdict.answered == 12
    assert verdict.offered > 0
    assert fallbacks and fallbacks >= 1
