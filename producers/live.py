"""Simulated passengers and vehicles against the live dispatcher, over real Kafka.

``run_demo`` closes the loop in wall-clock time: vehicles start their shifts,
passengers send ride requests, the vehicles follow the driver plans the
dispatcher publishes and report positions, arrivals, boardings and alightings.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from datetime import timedelta
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from dispatcher.clock import to_datetime
from dispatcher.config import Settings
from dispatcher.kafka import client_options, ensure_topics
from producers.demand import generate_demand
from producers.fleet import FleetSimulator, VehicleConfig
from producers.scenario import load_scenario
from schemas.codec import DecodeError, decode, encode
from schemas.dispatch import DriverPlanV1, RideOfferedV1, RideRejectedV1
from schemas.envelope import Event
from schemas.passenger import RideRequestedV1
from schemas.topics import key_of


def restamp(event: RideRequestedV1, now: float, request_id: str) -> RideRequestedV1:
    """The request as if booked ``now``: same lead time, fresh ids."""
    update: dict[str, Any] = {
        "event_id": uuid.uuid4(),
        "occurred_at": to_datetime(now),
        "request_id": request_id,
    }
    if event.requested_time is not None:
        lead = event.requested_time - event.occurred_at
        update["requested_time"] = to_datetime(now) + min(lead, timedelta(minutes=90))
    return event.model_copy(update=update)


async def run_demo(
    settings: Settings,
    *,
    vehicles: int = 5,
    requests: int = 60,
    rate: float = 2.0,
    seed: int = 1,
    minutes: float = 3.0,
) -> dict[str, Any]:
    """Drive vehicles and passengers for ``minutes``; return a summary of what happened."""
    scenario = load_scenario("rendsburg")
    topics = settings.kafka.topic_names()
    await ensure_topics(settings.kafka)
    start = time.time()
    fleet = FleetSimulator(
        [
            VehicleConfig(
                vehicle_id=f"demo-{seed}-v{i}",
                depot=scenario.fleet.depot,
                shift_start=start,
                shift_end=start + max(minutes, 1.0) * 60 + 3600,
                seats=scenario.fleet.seats,
                wheelchairs=scenario.fleet.wheelchairs,
                zone=scenario.zone,
            )
            for i in range(vehicles)
        ],
        scenario.travel(),
        seed,
        position_every_s=10.0,
    )
    demand = [
        e
        for _, e in generate_demand(scenario, start, start + 86_400, seed)
        if isinstance(e, RideRequestedV1)
    ][:requests]
    run_id = uuid.uuid4().hex[:6]
    counts: Counter[str] = Counter()
    sent: set[str] = set()
    producer = AIOKafkaProducer(**client_options(settings.kafka))
    consumer = AIOKafkaConsumer(
        topics["driver_plans"],
        topics["notifications"],
        **client_options(settings.kafka),
        group_id=f"drt-demo-{run_id}",
        auto_offset_reset="latest",
        isolation_level="read_committed",
    )
    await producer.start()
    await consumer.start()
    try:
        while not consumer.assignment():
            await consumer.getmany(timeout_ms=200)
        await consumer.seek_to_end()

        async def publish(event: Event, role: str) -> None:
            await producer.send_and_wait(topics[role], encode(event), key=key_of(event))

        async def passengers() -> None:
            for i, event in enumerate(demand):
                request = restamp(event, time.time(), f"demo-{run_id}-{i:04d}")
                await publish(request, "requests")
                sent.add(request.request_id)
                counts["requests sent"] += 1
                await asyncio.sleep(1.0 / rate)

        async def drive(until: float) -> None:
            while time.time() < until:
                now = time.time()
                for _, event in fleet.advance(now):
                    await publish(event, "vehicle_events")
                    counts[f"vehicle {event.type}"] += 1
                batches = await consumer.getmany(timeout_ms=500)
                for messages in batches.values():
                    for m in messages:
                        role = (
                            "driver_plans" if m.topic == topics["driver_plans"] else "notifications"
                        )
                        try:
                            out = decode(role, m.value)
                        except DecodeError:
                            counts["undecodable outputs"] += 1
                            continue
                        if isinstance(out, DriverPlanV1):
                            fleet.on_plan(out, time.time())
                            counts["driver plans"] += 1
                        elif isinstance(out, RideOfferedV1) and out.request_id in sent:
                            fleet.on_offer(out)
                            counts["offers"] += 1
                        elif isinstance(out, RideRejectedV1) and out.request_id in sent:
                            counts[f"rejections ({out.reason.value})"] += 1

        async with asyncio.TaskGroup() as group:
            group.create_task(passengers())
            group.create_task(drive(start + minutes * 60))
    finally:
        await consumer.stop()
        await producer.stop()
    counts["seconds"] = round(time.time() - start)
    return dict(sorted(counts.items()))
