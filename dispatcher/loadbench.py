"""``drt bench dispatch``: sustained load against a ``drt serve`` process on the real broker.

A fleet of ``vehicles`` starts its shifts, then ride requests arrive at ``rate``
per second for ``seconds``. A read-committed consumer on the notifications
topic (in this process, on the same monotonic clock as the sender) records
when each answer became visible, so the latency is request-to-offer as a
passenger sees it: produce, dispatch, PostgreSQL commit, Kafka transaction commit.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import statistics
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aiokafka import AIOKafkaConsumer

from dispatcher.chaos import Demand, DispatcherProcess, request_event, shift_event
from dispatcher.config import Settings
from dispatcher.kafka import client_options, ensure_topics
from schemas.codec import decode
from schemas.dispatch import RideOfferedV1, RideRejectedV1


@dataclass
class LoadResult:
    mode: str
    vehicles: int
    rate: float
    seconds: float
    sent: int
    answered: int
    offered: int
    sustained_rps: float
    latencies: list[float]

    def percentile(self, q: float) -> float:
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))]


class _Answers:
    def __init__(self, settings: Settings) -> None:
        self.seen: dict[str, float] = {}
        self.offered: set[str] = set()
        self._consumer = AIOKafkaConsumer(
            settings.kafka.topic("notifications"),
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            isolation_level="read_committed",
            **client_options(settings.kafka),
        )

    async def run(self, stop: asyncio.Event) -> None:
        await self._consumer.start()
        try:
            while not stop.is_set():
                batch = await self._consumer.getmany(timeout_ms=100)
                now = time.monotonic()
                for messages in batch.values():
                    for m in messages:
                        e: Any = decode("notifications", m.value)
                        if isinstance(e, RideOfferedV1 | RideRejectedV1):
                            self.seen.setdefault(e.request_id, now)
                            if isinstance(e, RideOfferedV1):
                                self.offered.add(e.request_id)
        finally:
            await self._consumer.stop()


def with_mode(settings: Settings, mode: str) -> Settings:
    """A copy of ``settings`` whose dispatcher runs in ``mode`` (immediate or batch)."""
    if mode not in {"immediate", "batch"}:
        raise ValueError(f"dispatch mode {mode!r} not understood (immediate or batch)")
    dispatch = settings.dispatch.model_copy(update={"mode": mode})
    return settings.model_copy(update={"dispatch": dispatch})


async def run_load(
    settings: Settings,
    *,
    vehicles: int = 50,
    rate: float = 20.0,
    seconds: float = 60.0,
    seed: int = 0,
    drain_s: float = 60.0,
    mode: str | None = None,
) -> LoadResult:
    """Run the load; the dispatcher process is stopped afterwards.

    ``mode`` (``"immediate"`` or ``"batch"``) overrides the dispatch mode of the
    dispatcher under test (None: as ``settings`` say).
    """
    if mode is not None:
        settings = with_mode(settings, mode)
    await ensure_topics(settings.kafka)
    proc = DispatcherProcess(settings)
    answers = _Answers(settings)
    stop_reading = asyncio.Event()
    rng = random.Random(seed)  # noqa: S311 - demand, not cryptography
    proc.start()
    try:
        async with Demand(settings) as demand, asyncio.TaskGroup() as tasks:
            tasks.create_task(answers.run(stop_reading))
            now = datetime.now(UTC)
            for i in range(vehicles):
                await demand.send("vehicle_events", shift_event(f"v{i:03d}", now))
            # Warm up: the first answer shows the dispatcher is up.
            await demand.request(request_event("warmup", rng, now))
            async with asyncio.timeout(120):
                while "warmup" not in answers.seen:  # noqa: ASYNC110 - polled state
                    await asyncio.sleep(0.1)
            demand.sent.clear()
            stop = asyncio.Event()
            sender = tasks.create_task(demand.stream(rate, stop, rng, prefix="load"))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), seconds)
            stop.set()
            await sender
            deadline = time.monotonic() + drain_s
            while time.monotonic() < deadline and not set(demand.sent) <= set(answers.seen):  # noqa: ASYNC110
                await asyncio.sleep(0.2)
            stop_reading.set()
        sent = dict(demand.sent)
    finally:
        proc.terminate()
    latencies = [answers.seen[r] - t for r, t in sent.items() if r in answers.seen]
    answered = [r for r in sent if r in answers.seen]
    first = min(sent.values(), default=0.0)
    last = max((answers.seen[r] for r in answered), default=first)
    return LoadResult(
        mode=settings.dispatch.mode,
        vehicles=vehicles,
        rate=rate,
        seconds=seconds,
        sent=len(sent),
        answered=len(answered),
        offered=len(answers.offered & set(sent)),
        sustained_rps=len(answered) / max(1e-9, last - first),
        latencies=latencies,
    )


def table(result: LoadResult) -> list[tuple[str, str]]:
    """The result as (label, value) rows."""
    mean = statistics.fmean(result.latencies) if result.latencies else float("nan")
    return [
        ("dispatch mode", result.mode),
        ("vehicles", str(result.vehicles)),
        ("target rate, req/s", f"{result.rate:.1f}"),
        ("duration, s", f"{result.seconds:.0f}"),
        ("requests sent", str(result.sent)),
        ("answered", str(result.answered)),
        ("offered", str(result.offered)),
        ("sustained, req/s", f"{result.sustained_rps:.1f}"),
        ("latency mean, s", f"{mean:.3f}"),
        ("latency p50, s", f"{result.percentile(50):.3f}"),
        ("latency p95, s", f"{result.percentile(95):.3f}"),
        ("latency p99, s", f"{result.percentile(99):.3f}"),
        ("latency max, s", f"{max(result.latencies, default=float('nan')):.3f}"),
    ]


def print_table(result: LoadResult) -> None:
    from rich.console import Console  # noqa: PLC0415
    from rich.table import Table  # noqa: PLC0415

    t = Table(title="drt bench dispatch: request-to-offer on the real broker")
    t.add_column("measure")
    t.add_column("value", justify="right")
    for label, value in table(result):
        t.add_row(label, value)
    Console().print(t)
