"""Kill-and-restart soak: the dispatcher as an OS process, SIGKILLed while demand flows.

Used by the ``chaos`` integration tests (a few cycles) and by ``drt bench chaos``
(a hundred). :func:`run_kill_cycles` starts ``drt serve`` with the given settings
in the environment, lets it run a random while, kills it with SIGKILL, and
starts it again, ``cycles`` times, while a producer sends ride requests at a
steady rate. Then one last instance runs until every request is answered, and
:func:`verify` reads the output topics with a read-committed consumer:

- every request has exactly one outcome (offer or rejection): ``lost`` counts
  requests without one, ``duplicate_outcomes`` those with more;
- no event id appears twice on any output topic;
- every offered ride sits in the latest plan of the vehicle it was offered on,
  and in no other vehicle's latest plan; no rejected ride is in any plan.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from pydantic import BaseModel, SecretStr

from dispatcher.config import Settings
from dispatcher.kafka import client_options, ensure_topics
from schemas.codec import decode, encode
from schemas.dispatch import DriverPlanV1, RideOfferedV1, RideRejectedV1
from schemas.envelope import Event, Place
from schemas.passenger import RideRequestedV1
from schemas.topics import key_of
from schemas.vehicle import ShiftStartedV1

#: Places of the Rendsburg region (Destatis reference points), as in the demo producer.
PLACES = [
    (54.306495, 9.663206),
    (54.315687, 9.677817),
    (54.30413, 9.601589),
    (54.280365, 9.646005),
    (54.292151, 9.697439),
    (54.313445, 9.717681),
    (54.234604, 9.668849),
    (54.33299, 9.710012),
    (54.359629, 9.645213),
]


#: Logged by the dispatcher once it owns its shards (state rebuilt, outbox resolved).
TAKEOVER_MARK = b"own shards"


def _count(path: Path, mark: bytes) -> int:
    try:
        return path.read_bytes().count(mark)
    except FileNotFoundError:
        return 0


def settings_env(settings: Settings) -> dict[str, str]:
    """``DRT_*`` environment variables that rebuild ``settings`` in another process."""
    env: dict[str, str] = {}

    def walk(model: BaseModel, prefix: str) -> None:
        for name in type(model).model_fields:
            value = getattr(model, name)
            key = f"{prefix}{name.upper()}"
            if isinstance(value, BaseModel):
                walk(value, key + "__")
            elif value is None:
                if type(model).model_fields[name].default is not None:
                    env[key] = "null"  # JSON, for the complex fields that may be None
                continue
            elif isinstance(value, SecretStr):
                env[key] = value.get_secret_value()
            elif isinstance(value, tuple | list | dict):
                env[key] = json.dumps(value)
            else:
                env[key] = str(value)

    walk(settings, "DRT_")
    return env


class DispatcherProcess:
    """``drt serve`` in a child process with its settings in the environment."""

    def __init__(self, settings: Settings, log: IO[bytes] | None = None) -> None:
        self.settings = settings
        self._log = log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("DRT_")}
        env.update(settings_env(self.settings))
        drt = Path(sys.executable).parent / "drt"
        self.proc = subprocess.Popen(  # noqa: S603 - our own entry point
            [str(drt), "serve"],
            env=env,
            stdout=self._log or subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # kill the solver workers with the group
        )

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL the dispatcher and its solver workers, as a power cut would."""
        if self.proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)

    def terminate(self, timeout: float = 30) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)


def shift_event(vehicle_id: str, now: datetime, zone: str = "rendsburg") -> ShiftStartedV1:
    depot = Place(lat=54.306495, lon=9.663206, name="depot")
    return ShiftStartedV1(
        occurred_at=now,
        source="chaos",
        vehicle_id=vehicle_id,
        zone=zone,
        seats=6,
        wheelchairs=1,
        depot=depot,
        shift_start=now - timedelta(minutes=5),
        shift_end=now + timedelta(hours=8),
    )


def request_event(
    request_id: str, rng: random.Random, now: datetime, zone: str = "rendsburg"
) -> RideRequestedV1:
    a, b = rng.sample(PLACES, 2)
    j = [rng.uniform(-0.004, 0.004) for _ in range(4)]
    prebooked = rng.random() < 0.5
    return RideRequestedV1(
        occurred_at=now,
        source="chaos",
        request_id=request_id,
        passenger_ref=f"passenger-{request_id}",
        zone=zone,
        origin=Place(lat=a[0] + j[0], lon=a[1] + j[1]),
        destination=Place(lat=b[0] + j[2], lon=b[1] + j[3]),
        seats=rng.choice([1, 1, 1, 2]),
        requested_time=now + timedelta(minutes=rng.randint(10, 90)) if prebooked else None,
    )


class Demand:
    """Sends ride requests at a steady rate; remembers what it sent and when."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.names = settings.kafka.topic_names()
        self.producer = AIOKafkaProducer(
            enable_idempotence=True, acks="all", **client_options(settings.kafka)
        )
        self.sent: dict[str, float] = {}

    async def __aenter__(self) -> Demand:
        await self.producer.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.producer.stop()

    async def send(self, role: str, event: Event) -> None:
        await self.producer.send_and_wait(self.names[role], encode(event), key=key_of(event))

    async def request(self, event: RideRequestedV1) -> None:
        self.sent[event.request_id] = time.monotonic()
        await self.send("requests", event)

    async def stream(
        self,
        rate: float,
        stop: asyncio.Event,
        rng: random.Random,
        prefix: str = "c",
        zones: tuple[str, ...] = ("rendsburg",),
    ) -> None:
        """Send ``rate`` requests per second until ``stop`` is set."""
        i = i0 = len(self.sent)
        started = time.monotonic()
        while not stop.is_set():
            zone = zones[i % len(zones)]
            await self.request(request_event(f"{prefix}{i:05d}", rng, datetime.now(UTC), zone))
            i += 1
            delay = started + (i - i0) / rate - time.monotonic()
            if delay > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), delay)


async def read_topic(settings: Settings, role: str) -> list[tuple[int, Any, Event]]:
    """Everything committed on a topic now: ``(timestamp_ms, headers, event)``."""
    name = settings.kafka.topic(role)
    consumer = AIOKafkaConsumer(
        enable_auto_commit=False,
        isolation_level="read_committed",
        **client_options(settings.kafka),
    )
    await consumer.start()
    out: list[tuple[int, Any, Event]] = []
    try:
        parts = consumer.partitions_for_topic(name)
        if not parts:
            await consumer._client.force_metadata_update()  # a fresh client knows no topics
            parts = consumer.partitions_for_topic(name) or set()
        tps = [TopicPartition(name, p) for p in sorted(parts)]
        if not tps:
            return out
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)  # the last stable offsets
        async with asyncio.timeout(60):
            while [tp for tp in tps if await consumer.position(tp) < ends[tp]]:
                batch = await consumer.getmany(*tps, timeout_ms=500)
                for messages in batch.values():
                    out.extend((m.timestamp, m.headers, decode(role, m.value)) for m in messages)
    finally:
        await consumer.stop()
    return out


@dataclass
class Verdict:
    """What the output topics say about a set of requests."""

    requests: int
    answered: int
    offered: int
    lost: list[str]
    duplicate_outcomes: list[str]
    duplicate_event_ids: int
    plan_contradictions: list[str]
    latency_s: dict[str, float] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not (
            self.lost
            or self.duplicate_outcomes
            or self.duplicate_event_ids
            or self.plan_contradictions
        )


async def verify(
    settings: Settings,
    sent: dict[str, float],
    *,
    wait_s: float = 120.0,
    epoch: tuple[float, float] | None = None,
) -> Verdict:
    """Wait until every sent request has an outcome (or ``wait_s``), then check.

    ``epoch`` maps monotonic send times to wall-clock milliseconds
    ``(monotonic, time.time())`` for the request-to-answer latencies.
    """
    wanted = set(sent)
    deadline = time.monotonic() + wait_s  # extended while answers keep coming
    progress = -1
    while True:
        notes = await read_topic(settings, "notifications")
        answered = {
            e.request_id for _, _, e in notes if isinstance(e, RideOfferedV1 | RideRejectedV1)
        }
        if len(answered) > progress:
            progress = len(answered)
            deadline = max(deadline, time.monotonic() + 60)
        if wanted <= answered or time.monotonic() > deadline:
            break
        await asyncio.sleep(1.0)
    plans = await read_topic(settings, "driver_plans")
    letters = await read_topic(settings, "dead_letters")
    outcomes: dict[str, list[Event]] = {}
    first_ms: dict[str, int] = {}
    for ts, _, e in notes:
        if isinstance(e, RideOfferedV1 | RideRejectedV1):
            outcomes.setdefault(e.request_id, []).append(e)
            first_ms.setdefault(e.request_id, ts)
    ids = Counter(e.event_id for _, _, e in (*notes, *plans, *letters))
    latest: dict[str, DriverPlanV1] = {}
    for _, _, e in plans:
        if isinstance(e, DriverPlanV1) and (
            e.vehicle_id not in latest or e.plan_version > latest[e.vehicle_id].plan_version
        ):
            latest[e.vehicle_id] = e
    in_plans: dict[str, set[str]] = {}
    for vehicle_id, plan in latest.items():
        for stop in plan.stops:
            in_plans.setdefault(stop.request_id, set()).add(vehicle_id)
    contradictions = []
    offered = 0
    for request_id, events in outcomes.items():
        final = events[-1]
        holders = in_plans.get(request_id, set())
        if isinstance(final, RideOfferedV1):
            offered += 1
            if holders != {final.vehicle_id}:
                contradictions.append(
                    f"{request_id} offered on {final.vehicle_id}, in plans of {sorted(holders)}"
                )
        elif holders:
            contradictions.append(f"{request_id} rejected but in plans of {sorted(holders)}")
    latency: dict[str, float] = {}
    if epoch is not None:
        mono0, wall0 = epoch
        for request_id, ts in first_ms.items():
            if request_id in sent:
                latency[request_id] = ts / 1000 - (wall0 + sent[request_id] - mono0)
    return Verdict(
        requests=len(wanted),
        answered=len(wanted & set(outcomes)),
        offered=offered,
        lost=sorted(wanted - set(outcomes)),
        duplicate_outcomes=sorted(r for r, ev in outcomes.items() if len(ev) > 1),
        duplicate_event_ids=sum(n - 1 for n in ids.values() if n > 1),
        plan_contradictions=contradictions,
        latency_s=latency,
    )


@dataclass
class ChaosReport:
    cycles: int
    kills: int
    seconds: float
    verdict: Verdict
    uptimes: list[float]


async def run_kill_cycles(
    settings: Settings,
    *,
    cycles: int = 10,
    rate: float = 4.0,
    vehicles: int = 6,
    min_up_s: float = 0.2,
    max_up_s: float = 4.0,
    early_kills: float = 0.2,
    seed: int = 0,
    log_path: Path | None = None,
) -> ChaosReport:
    """SIGKILL a ``drt serve`` process ``cycles`` times under load, then verify.

    A fraction ``early_kills`` of the kills hit during start-up; the others come
    ``min_up_s``..``max_up_s`` after the process took over its shards, so they
    land in cycles, solves, PostgreSQL commits and Kafka transactions.
    """
    rng = random.Random(seed)  # noqa: S311 - timing, not cryptography
    await ensure_topics(settings.kafka)
    started = time.monotonic()
    if log_path is None:
        log_path = Path(tempfile.mkstemp(prefix="drt-chaos-", suffix=".log")[1])
    log = log_path.open("ab")  # noqa: ASYNC230 - a local log file, opened once
    proc = DispatcherProcess(settings, log)
    uptimes: list[float] = []
    kills = 0
    try:
        async with Demand(settings) as demand:
            now = datetime.now(UTC)
            for i in range(vehicles):
                await demand.send("vehicle_events", shift_event(f"v{i}", now))
            stop = asyncio.Event()
            demand_rng = random.Random(seed + 1)  # noqa: S311
            sender = asyncio.create_task(demand.stream(rate, stop, demand_rng))
            try:
                for _ in range(cycles):
                    owned_before = _count(log_path, TAKEOVER_MARK)
                    spawned = time.monotonic()
                    proc.start()
                    if rng.random() < early_kills:
                        await asyncio.sleep(rng.uniform(0.0, 3.0))  # while starting up
                    else:
                        # Once it owns its shards, it is processing: kill it then.
                        async with asyncio.timeout(60):
                            while _count(log_path, TAKEOVER_MARK) <= owned_before:  # noqa: ASYNC110
                                await asyncio.sleep(0.1)  # a file to watch, no event
                        await asyncio.sleep(rng.uniform(min_up_s, max_up_s))
                    uptimes.append(time.monotonic() - spawned)
                    proc.kill()
                    kills += 1
                    if sender.done():
                        sender.result()
            finally:
                stop.set()
                await sender
            proc.start()
            verdict = await verify(settings, demand.sent, wait_s=180)
    finally:
        proc.terminate()
        log.close()
    return ChaosReport(cycles, kills, time.monotonic() - started, verdict, uptimes)
