"""A hypothesis-generated corpus of bad input through the real dispatcher."""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, Phase, given, settings

from dispatcher.chaos import Demand, read_topic, request_event, shift_event
from schemas.dispatch import DeadLetterV1, RideOfferedV1, RideRejectedV1
from tests.bad_inputs import BadInput, bad_input
from tests.integration.pipeline_kit import make_settings, running

pytestmark = [pytest.mark.fuzz, pytest.mark.kafka, pytest.mark.postgres]


def corpus(size: int) -> list[BadInput]:
    """``size`` hypothesis-generated bad inputs (one per example, so they vary)."""
    found: list[BadInput] = []

    def unique(item: BadInput, i: int) -> BadInput:
        # Examples may share ids by chance; a second mention of the same request is
        # then a legitimate follow-up (e.g. cancelling a rejected request), not bad input.
        try:
            raw = json.loads(item.value)
        except (ValueError, UnicodeDecodeError):
            return item
        if not isinstance(raw, dict):
            return item
        if isinstance(raw.get("request_id"), str):
            raw["request_id"] = f"{raw['request_id']}-{i}"
        if "event_id" in raw:
            raw["event_id"] = str(uuid.uuid5(uuid.NAMESPACE_URL, f"fuzz-{i}"))
        value = json.dumps(raw).encode()
        return BadInput(item.role, value, item.key, item.kind)

    @settings(
        max_examples=size,
        database=None,
        derandomize=True,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(bad_input())
    def draw(item: BadInput) -> None:
        found.append(item)

    draw()
    return [unique(item, i) for i, item in enumerate(found[:size])]


async def test_every_bad_input_becomes_one_dead_letter(kafka_bootstrap, topic_prefix, pg_schema):
    """Malformed, unknown, invalid, impossible and duplicate inputs each produce exactly
    one dead letter with a reason; the dispatcher keeps running and answers good requests."""
    import random  # noqa: PLC0415

    settings = make_settings(kafka_bootstrap, topic_prefix, *pg_schema)
    settings.solver.name = "insertion"
    bad = corpus(60)
    now = datetime.now(UTC)
    rng = random.Random(3)
    duplicates = [request_event(f"dup{i}", rng, now) for i in range(5)]
    async with running(settings) as dispatcher, Demand(settings) as demand:
        for i in range(2):
            await demand.send("vehicle_events", shift_event(f"v{i}", now))
        async with asyncio.timeout(60):  # the fleet is known before the capacity checks
            while len(dispatcher.core.state.vehicles) < 2:  # noqa: ASYNC110
                await asyncio.sleep(0.1)
        where = {}
        for item in bad:
            meta = await demand.producer.send_and_wait(
                demand.names[item.role], item.value, key=item.key
            )
            where[(meta.topic, meta.partition, meta.offset)] = item
        for event in duplicates:
            await demand.request(event)
            await demand.request(event)  # same event id, a new offset
        good = request_event("good-after-fuzz", rng, now)
        await demand.request(good)
        expected = len(bad) + len(duplicates)
        deadline = asyncio.get_running_loop().time() + 90
        while True:
            if True:
                letters = [e for _, _, e in await read_topic(settings, "dead_letters")]
                notes = [e for _, _, e in await read_topic(settings, "notifications")]
                answered = {
                    e.request_id for e in notes if isinstance(e, RideOfferedV1 | RideRejectedV1)
                }
                done = len(letters) >= expected and "good-after-fuzz" in answered
                if done or asyncio.get_running_loop().time() > deadline:
                    break
                await asyncio.sleep(0.5)
        assert "good-after-fuzz" in answered
        await asyncio.sleep(2.0)  # anything extra would show up now
        letters = [e for _, _, e in await read_topic(settings, "dead_letters")]
        crashed = dispatcher.metrics.registry.get_sample_value("drt_dispatcher_healthy")
    assert all(isinstance(e, DeadLetterV1) and e.reason for e in letters)
    lettered = {(e.original_topic, e.original_partition, e.original_offset) for e in letters}
    missed = [item for at, item in where.items() if at not in lettered]
    assert not missed, missed[:5]
    assert len(letters) == expected, (len(letters), expected)
    by_kind: dict[str, int] = {}
    for item in bad:
        by_kind[item.kind] = by_kind.get(item.kind, 0) + 1
    assert sum(1 for e in letters if "duplicate event id" in e.reason) >= len(duplicates)
    assert set(answered) >= {d.request_id for d in duplicates}
    assert crashed == 1
    # Every refused request whose id could be read was told so.
    readable = set()
    for item in bad:
        try:
            raw = json.loads(item.value)
        except (ValueError, UnicodeDecodeError):
            continue
        if (
            item.role == "requests"
            and isinstance(raw, dict)
            and raw.get("type") == "ride.requested"
            and isinstance(raw.get("request_id"), str)
            and re.fullmatch(r"[A-Za-z0-9_.:\-]{1,128}", raw["request_id"])
        ):
            readable.add(raw["request_id"])
    rejected = {e.request_id for e in notes if isinstance(e, RideRejectedV1)}
    assert readable <= rejected, sorted(readable - rejected)[:5]
    print(f"fuzz corpus: {by_kind}, dead letters {len(letters)}")
