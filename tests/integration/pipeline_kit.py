"""Helpers for pipeline tests: settings, a running dispatcher, producing and collecting."""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from pydantic import SecretStr

from dispatcher.config import (
    DatabaseSettings,
    DispatchSettings,
    KafkaSettings,
    Settings,
    SolverSettings,
)
from dispatcher.metrics import Metrics
from dispatcher.service import Dispatcher
from schemas.codec import decode, encode
from schemas.envelope import Event, Place
from schemas.passenger import RideRequestedV1
from schemas.topics import key_of
from schemas.vehicle import ShiftStartedV1

#: Places of the Rendsburg region (from ../shared/geo: Destatis reference points).
PLACES = [
    ("Rendsburg", 54.306495, 9.663206),
    ("Büdelsdorf", 54.315687, 9.677817),
    ("Fockbek", 54.30413, 9.601589),
    ("Westerrönfeld", 54.280365, 9.646005),
    ("Osterrönfeld", 54.292151, 9.697439),
    ("Schacht-Audorf", 54.313445, 9.717681),
    ("Jevenstedt", 54.234604, 9.668849),
    ("Borgstedt", 54.33299, 9.710012),
    ("Alt Duvenstedt", 54.359629, 9.645213),
]
DEPOT = Place(lat=54.306495, lon=9.663206, name="Rendsburg depot")


def make_settings(bootstrap: str, prefix: str, dsn: str, schema: str) -> Settings:
    return Settings(
        kafka=KafkaSettings(
            bootstrap_servers=bootstrap,
            topic_prefix=f"{prefix}.",
            group_id=f"{prefix}-dispatcher",
            client_id=f"{prefix}-dispatcher",
            partitions=2,
        ),
        database=DatabaseSettings(dsn=SecretStr(dsn), db_schema=schema),
        solver=SolverSettings(name="ortools", time_limit_s=0.5),
        dispatch=DispatchSettings(batch_window_s=0.5),
        metrics_port=0,
    )


@contextlib.asynccontextmanager
async def running(settings: Settings) -> AsyncIterator[Dispatcher]:
    """A dispatcher running its loop in a task; stopped gracefully on exit."""
    stop = asyncio.Event()
    dispatcher = Dispatcher(settings, metrics=Metrics())
    await dispatcher.start()
    task = asyncio.create_task(dispatcher.run(until=stop))
    try:
        yield dispatcher
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)
        await dispatcher.stop()


def shift(vehicle_id: str, now: datetime, seats: int = 6) -> ShiftStartedV1:
    return ShiftStartedV1(
        occurred_at=now,
        source="test",
        vehicle_id=vehicle_id,
        zone="rendsburg",
        seats=seats,
        wheelchairs=1,
        depot=DEPOT,
        shift_start=now - timedelta(minutes=5),
        shift_end=now + timedelta(hours=8),
    )


def requests(n: int, seed: int, now: datetime, prefix: str = "r") -> list[RideRequestedV1]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        a, b = rng.sample(PLACES, 2)
        jitter = [rng.uniform(-0.004, 0.004) for _ in range(4)]
        prebooked = rng.random() < 0.5
        out.append(
            RideRequestedV1(
                occurred_at=now,
                source="test",
                request_id=f"{prefix}{i:03d}",
                passenger_ref=f"p{i:03d}",
                zone="rendsburg",
                origin=Place(lat=a[1] + jitter[0], lon=a[2] + jitter[1], name=a[0]),
                destination=Place(lat=b[1] + jitter[2], lon=b[2] + jitter[3], name=b[0]),
                seats=rng.choice([1, 1, 1, 2]),
                requested_time=now + timedelta(minutes=rng.randint(10, 90)) if prebooked else None,
            )
        )
    return out


class Bus:
    """A plain producer and a read-committed consumer on the test's topics."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.names = settings.kafka.topic_names()
        self.producer = AIOKafkaProducer(bootstrap_servers=settings.kafka.bootstrap_servers)

    async def __aenter__(self) -> Bus:
        await self.producer.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.producer.stop()

    async def send(self, role: str, event: Event) -> None:
        await self.producer.send_and_wait(self.names[role], encode(event), key=key_of(event))

    async def send_raw(self, role: str, value: bytes, key: bytes = b"rendsburg") -> None:
        await self.producer.send_and_wait(self.names[role], value, key=key)

    async def collect(
        self,
        role: str,
        until: Any,
        timeout: float = 60.0,  # noqa: ASYNC109 - a read budget
    ) -> list[tuple[bytes | None, Event]]:
        """Read the topic from the start until ``until(events)`` holds (or time out)."""
        consumer = AIOKafkaConsumer(
            self.names[role],
            bootstrap_servers=self.settings.kafka.bootstrap_servers,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            isolation_level="read_committed",
        )
        await consumer.start()
        seen: list[tuple[bytes | None, Event]] = []
        try:
            async with asyncio.timeout(timeout):
                while not until(seen):
                    batch = await consumer.getmany(timeout_ms=200)
                    for messages in batch.values():
                        seen.extend((m.key, decode(role, m.value)) for m in messages)
        except TimeoutError:
            pass
        finally:
            await consumer.stop()
        return seen
