"""The event pipeline end to end on the real Kafka broker and PostgreSQL server."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from schemas.dispatch import DeadLetterV1, DriverPlanV1, RideOfferedV1, RideRejectedV1
from schemas.envelope import Place
from schemas.passenger import RideRequestedV1
from tests.integration.pipeline_kit import Bus, make_settings, requests, running, shift

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]


def outcome_ids(events: list) -> Counter[str]:
    return Counter(e.request_id for _, e in events if isinstance(e, RideOfferedV1 | RideRejectedV1))


def latest_plans(events: list) -> dict[str, DriverPlanV1]:
    plans: dict[str, DriverPlanV1] = {}
    for _, e in events:
        if e.vehicle_id not in plans or e.plan_version > plans[e.vehicle_id].plan_version:
            plans[e.vehicle_id] = e
    return plans


async def test_sixty_requests_five_vehicles(kafka_bootstrap, topic_prefix, pg_schema):
    """Every request gets one answer, every offer sits in one plan in order and within
    capacity, and the PostgreSQL rows match the published events."""
    settings = make_settings(kafka_bootstrap, topic_prefix, *pg_schema)
    now = datetime.now(UTC)
    vehicles = [shift(f"v{i}", now) for i in range(5)]
    rides = requests(60, seed=7, now=now)
    async with running(settings), Bus(settings) as bus:
        for v in vehicles:
            await bus.send("vehicle_events", v)
        for i, r in enumerate(rides):
            await bus.send("requests", r)
            if i % 10 == 9:
                await asyncio.sleep(0.3)  # several batches, not one
        notes = await bus.collect("notifications", lambda s: len(outcome_ids(s)) >= 60, 90)
    counts = outcome_ids(notes)
    assert set(counts) == {r.request_id for r in rides}
    assert all(n == 1 for n in counts.values()), counts.most_common(3)
    offers = {e.request_id: e for _, e in notes if isinstance(e, RideOfferedV1)}
    assert offers, "no ride was offered at all"
    async with Bus(settings) as bus:
        plan_events = await bus.collect(
            "driver_plans",
            lambda s: (
                sum(len({st.request_id for st in p.stops}) for p in latest_plans(s).values())
                >= len(offers)
            ),
            30,
        )
    plans = latest_plans(plan_events)
    seats = {v.vehicle_id: v.seats for v in vehicles}
    by_request = {r.request_id: r for r in rides}
    placed: Counter[str] = Counter()
    for vehicle_id, plan in plans.items():
        load, picked = 0, set()
        for stop in plan.stops:
            if stop.action == "pickup":
                picked.add(stop.request_id)
                load += by_request[stop.request_id].seats
                placed[stop.request_id] += 1
            else:
                assert stop.request_id in picked, f"drop-off before pickup on {vehicle_id}"
                load -= by_request[stop.request_id].seats
            assert load <= seats[vehicle_id], f"{vehicle_id} over capacity"
        assert [s.eta for s in plan.stops] == sorted(s.eta for s in plan.stops)
    for request_id, offer in offers.items():
        assert placed[request_id] == 1, f"{request_id} in {placed[request_id]} plans"
        assert plans[offer.vehicle_id].stops, offer.vehicle_id
        assert request_id in {s.request_id for s in plans[offer.vehicle_id].stops}

    conn = await asyncpg.connect(pg_schema.dsn, server_settings={"search_path": pg_schema.schema})
    try:
        rows = await conn.fetch("SELECT event_id, request_id, kind, vehicle_id FROM outcomes")
        ride_rows = await conn.fetch("SELECT request_id, status, vehicle_id FROM rides")
        request_rows = await conn.fetchval("SELECT count(*) FROM requests")
        unpublished = await conn.fetchval("SELECT count(*) FROM outbox WHERE published_at IS NULL")
    finally:
        await conn.close()
    published = {e.event_id: e for _, e in notes if isinstance(e, RideOfferedV1 | RideRejectedV1)}
    assert {r["event_id"] for r in rows} == set(published)
    for row in rows:
        event = published[row["event_id"]]
        assert row["request_id"] == event.request_id
        assert row["kind"] == ("offered" if isinstance(event, RideOfferedV1) else "rejected")
        assert row["vehicle_id"] == getattr(event, "vehicle_id", None)
    status = {r["request_id"]: (r["status"], r["vehicle_id"]) for r in ride_rows}
    for request_id in counts:
        expected = ("offered", offers[request_id].vehicle_id) if request_id in offers else None
        if expected:
            assert status[request_id] == expected
        else:
            assert status[request_id][0] == "rejected"
    assert request_rows == 60
    assert unpublished == 0


async def test_restart_mid_stream_loses_nothing(kafka_bootstrap, topic_prefix, pg_schema):
    """Stopping and restarting the dispatcher while requests flow loses none of them
    and publishes no second outcome for a request already answered."""
    settings = make_settings(kafka_bootstrap, topic_prefix, *pg_schema)
    now = datetime.now(UTC)
    rides = requests(40, seed=11, now=now)
    async with Bus(settings) as bus:
        async with running(settings) as first:
            for i in range(3):
                await bus.send("vehicle_events", shift(f"v{i}", now))
            for r in rides[:15]:
                await bus.send("requests", r)
            # stop while the rest is still arriving
            await bus.collect("notifications", lambda s: len(outcome_ids(s)) >= 5, 30)
            sender = asyncio.create_task(_send_all(bus, rides[15:30]))
        first_cycles = first.cycles
        await sender
        for r in rides[30:]:
            await bus.send("requests", r)  # arrive while the dispatcher is down
        async with running(settings):
            notes = await bus.collect("notifications", lambda s: len(outcome_ids(s)) >= 40, 90)
            await asyncio.sleep(1.0)  # a late duplicate would show up now
            notes = await bus.collect("notifications", lambda s: False, 3)
    assert first_cycles > 0
    counts = outcome_ids(notes)
    assert set(counts) == {r.request_id for r in rides}
    assert max(counts.values()) == 1, counts.most_common(3)


async def _send_all(bus: Bus, rides: list) -> None:
    for r in rides:
        await bus.send("requests", r)
        await asyncio.sleep(0.02)


async def test_malformed_messages_go_to_dead_letters(kafka_bootstrap, topic_prefix, pg_schema):
    """Bad JSON, an unknown type and a failed validation each land on the dead-letter
    topic with a reason, and the dispatcher keeps answering good requests."""
    settings = make_settings(kafka_bootstrap, topic_prefix, *pg_schema)
    now = datetime.now(UTC)
    good = requests(1, seed=3, now=now, prefix="good")[0]
    bad_validation = json.loads(good.model_dump_json())
    bad_validation.update(request_id="bad1", seats=99)
    async with running(settings), Bus(settings) as bus:
        await bus.send("vehicle_events", shift("v0", now))
        await bus.send_raw("requests", b"{not json")
        await bus.send_raw("requests", b'{"type": "ride.teleported", "schema_version": 1}')
        await bus.send_raw("requests", json.dumps(bad_validation).encode())
        await bus.send_raw("vehicle_events", b'{"type": "shift.started", "schema_version": 7}')
        await bus.send("requests", good)
        letters = await bus.collect("dead_letters", lambda s: len(s) >= 4, 60)
        notes = await bus.collect(
            "notifications", lambda s: {"good000", "bad1"} <= set(outcome_ids(s)), 60
        )
    reasons = [e for _, e in letters if isinstance(e, DeadLetterV1)]
    assert len(reasons) == 4
    kinds = sorted(e.error_type for e in reasons)
    assert kinds == ["decode", "unknown_type", "unknown_type", "validation"]
    validation = next(e for e in reasons if e.error_type == "validation")
    assert "seats" in validation.reason
    assert any("ride.teleported" in e.reason for e in reasons)
    answered = {e.request_id: e for _, e in notes if isinstance(e, RideOfferedV1 | RideRejectedV1)}
    assert isinstance(answered["bad1"], RideRejectedV1)
    assert answered["bad1"].reason == "invalid"
    assert "good000" in answered


async def test_a_confirmed_ride_moved_to_another_vehicle_is_told_and_stored(
    kafka_bootstrap, topic_prefix, pg_schema
):
    """Immediate mode with re-optimisation and ``REASSIGN_LEAD_S``: a ride booked for
    an hour ahead on the only vehicle moves to a second one that starts its shift at
    the pickup. The passenger gets the offer again on the notifications topic (new
    vehicle, ``previous_vehicle_id``, the promised window unchanged); the drivers' plans,
    the rides table and the reassignment counter follow."""
    base = make_settings(kafka_bootstrap, topic_prefix, *pg_schema)
    dispatch = base.dispatch.model_copy(
        update={"mode": "immediate", "reopt_every_s": 1.0, "reassign_lead_s": 600}
    )
    settings = base.model_copy(update={"dispatch": dispatch})
    now = datetime.now(UTC)
    fockbek = Place(lat=54.30413, lon=9.601589, name="Fockbek")
    ride = RideRequestedV1(
        occurred_at=now,
        source="test",
        request_id="moved",
        passenger_ref="p-moved",
        zone="rendsburg",
        origin=fockbek,
        destination=Place(lat=54.315687, lon=9.677817, name="Büdelsdorf"),
        requested_time=now + timedelta(hours=1),
    )

    def offers(events: list) -> list[RideOfferedV1]:
        return [e for _, e in events if isinstance(e, RideOfferedV1)]

    async with running(settings) as dispatcher, Bus(settings) as bus:
        await bus.send("vehicle_events", shift("v1", now))
        async with asyncio.timeout(60):  # the vehicle is known before the booking
            while "v1" not in dispatcher.core.state.vehicles:  # noqa: ASYNC110
                await asyncio.sleep(0.1)
        await bus.send("requests", ride)
        first = await bus.collect("notifications", lambda s: len(offers(s)) >= 1, 30)
        second = shift("v2", now).model_copy(update={"position": fockbek})
        await bus.send("vehicle_events", second)
        notes = await bus.collect("notifications", lambda s: len(offers(s)) >= 2, 30)
        reassigned = dispatcher.metrics.rides_reassigned._value.get()
        plans = latest_plans(await bus.collect("driver_plans", lambda s: False, 3))
    (offered,) = offers(first)
    assert offered.vehicle_id == "v1" and offered.previous_vehicle_id is None
    told = offers(notes)[1:]
    assert [(o.vehicle_id, o.previous_vehicle_id) for o in told] == [("v2", "v1")]
    again = told[0]
    assert (again.pickup_window_start, again.pickup_window_end, again.latest_dropoff) == (
        offered.pickup_window_start,
        offered.pickup_window_end,
        offered.latest_dropoff,
    )
    assert not any(isinstance(e, RideRejectedV1) for _, e in notes)
    assert plans["v1"].stops == []
    assert [s.request_id for s in plans["v2"].stops] == ["moved", "moved"]
    assert reassigned == 1
    conn = await asyncpg.connect(pg_schema.dsn, server_settings={"search_path": pg_schema.schema})
    try:
        row = await conn.fetchrow("SELECT status, vehicle_id FROM rides WHERE request_id = $1",
                                  "moved")  # fmt: skip
        kinds = await conn.fetch(
            "SELECT kind, vehicle_id FROM outcomes WHERE request_id = $1 ORDER BY vehicle_id",
            "moved",
        )
    finally:
        await conn.close()
    assert (row["status"], row["vehicle_id"]) == ("offered", "v2")
    assert [(k["kind"], k["vehicle_id"]) for k in kinds] == [("offered", "v1"), ("offered", "v2")]
