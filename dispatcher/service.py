"""The imperative shell: Kafka in, the core in the middle, PostgreSQL and Kafka out.

One loop, one cycle at a time: poll input records (at most
``DRT_KAFKA__MAX_POLL_RECORDS``), decode them (bad ones become dead letters),
drop those already processed, let the core handle the rest, run a due batch
through the solver in a process pool, write everything the cycle produced to
PostgreSQL in one transaction (outbox included), then publish it to Kafka.

Exactly once: Kafka is the commit point, PostgreSQL is idempotent
-----------------------------------------------------------------------
*Shards.* Input topics are keyed by zone, so a zone lives in one partition
index ``p`` of both input topics; that index is the zone's *shard*. The
consumer group hands each instance a set of shards. Every outbox row carries
the shard of the zone it concerns (dead letters: the partition they came from).

*One cycle.* (1) PostgreSQL transaction: ride and vehicle state, the input event
ids (``processed_events``), outcomes and plans, and the outputs as outbox rows.
(2) Per owned shard, one Kafka transaction on that shard's producer
(``transactional_id = f"{group_id}-shard-{p}"``): send every unpublished outbox
row of the shard, and ``send_offsets_to_transaction`` for the shard's input
partitions with metadata ``drt-outbox:<W>``, where ``W`` is the highest outbox id
now in Kafka for that shard (the *watermark*). (3) ``published_at`` is set on the
rows, a cache only.

*Crashes.* Killed before (1) commits: nothing happened; the inputs are replayed.
Between (1) and (2): PostgreSQL holds the new state and unpublished rows, Kafka
neither the outputs nor the offsets; on restart the inputs are replayed, found
in ``processed_events`` (same topic, partition and offset) and skipped, and the
rows are published in the start-up transaction. The solver is not run again, so
a replay cannot produce a different answer. During (2): the broker aborts the
open transaction when the shard's producer is started again (``InitProducerId``
fences the old one; otherwise after ``DRT_KAFKA__TRANSACTION_TIMEOUT_S``), so
read-committed consumers never see its messages. Between (2) and (3): Kafka has
the outputs *and* the watermark; at start-up (and whenever a shard is gained)
the new owner starts the shard's producer (fencing any zombie), reads the
committed offsets' metadata, marks every row ``<= W`` of that shard published
and publishes only the rest. This removes the dual write between PostgreSQL and
Kafka without scanning output topics: the watermark travels in the same Kafka
transaction as the outputs it describes.

*Scale-out.* A rebalance waits for the cycle in flight (the cycle lock), then
the instance stops the producers of shards it lost, starts those it gained,
resolves their outbox watermark, and rebuilds its state from PostgreSQL for the
zones of the shards it owns (``Store.load_state(zones)``), dropping the rest.

*Failures.* PostgreSQL or Kafka errors flip ``drt_dispatcher_healthy`` to 0, back
off (capped exponential) and redo the take-over above, which rewinds the
consumer to the committed offsets; nothing accepted is lost because nothing is
acknowledged to Kafka before PostgreSQL has it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import time
import uuid
from concurrent.futures import ProcessPoolExecutor
from typing import Self

from pydantic import ValidationError

from dispatcher.anticipation import is_sample
from dispatcher.clock import Clock, SystemClock, to_datetime
from dispatcher.config import Settings
from dispatcher.core import DispatchCore
from dispatcher.geo import LatLon, haversine_m
from dispatcher.kafka import (
    Consumer,
    Record,
    ShardProducer,
    TransportError,
    committed,
    ensure_topics,
    shard_of_key,
)
from dispatcher.metrics import Metrics
from dispatcher.planning import BatchJob
from dispatcher.solving import solve, warm_up
from dispatcher.state import FleetState, RideStatus
from dispatcher.store import Outgoing, Processed, Store, StoreError
from schemas.codec import DecodeError, ErrorType, decode
from schemas.dispatch import DeadLetterV1, RejectionReason, RideOfferedV1, RideRejectedV1
from schemas.envelope import Event
from schemas.passenger import RideRequestedV1
from schemas.topics import key_of, role_of
from schemas.vehicle import (
    ArrivedAtStopV1,
    PassengerAlightedV1,
    PassengerBoardedV1,
    PositionUpdatedV1,
)
from solvers.model import Plan

log = logging.getLogger(__name__)

#: Namespace for dead-letter event ids, so a replayed bad message keeps its id.
DEAD_LETTER_NS = uuid.UUID("5f1d7d0e-6a57-4b0a-9d43-7f1f2b1c9e11")
#: Prefix of the outbox watermark in committed offsets' metadata.
WATERMARK_PREFIX = "drt-outbox:"
#: Rejections that mean the input itself was bad: they get a dead letter as well.
BAD_INPUT_REJECTIONS = frozenset({RejectionReason.INVALID, RejectionReason.CAPACITY})


def parse_watermark(metadata: str) -> int:
    """The outbox watermark in committed-offset metadata (0 when there is none)."""
    if metadata.startswith(WATERMARK_PREFIX):
        try:
            return int(metadata[len(WATERMARK_PREFIX) :])
        except ValueError:
            return 0
    return 0


class Dispatcher:
    """The live dispatcher: ``async with Dispatcher(settings) as d: await d.run(stop)``."""

    def __init__(
        self,
        settings: Settings,
        *,
        clock: Clock | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self.settings = settings
        self.clock = clock or SystemClock()
        self.metrics = metrics or Metrics()
        self.travel = settings.travel_model()
        self.topics = settings.kafka.topic_names()
        self._role_of_topic = {name: role for role, name in self.topics.items()}
        self.core = DispatchCore(settings.core_config(), self.travel)
        self._store: Store | None = None
        self._consumer: Consumer | None = None
        self._producers: dict[int, ShardProducer] = {}
        self._pool: ProcessPoolExecutor | None = None
        self._input_topics = [self.topics["requests"], self.topics["vehicle_events"]]
        self._lock = asyncio.Lock()  # held by a cycle; a rebalance waits for it
        self._reassigned = True  # take over the assignment before the next cycle
        self._owned: set[int] = set()
        self._partitions = settings.kafka.partitions
        self._watermark: dict[int, int] = {}
        self._positions: dict[tuple[str, int], int] = {}
        self._committed_positions: dict[tuple[str, int], int] = {}
        self.takeovers = 0
        self._broker_down = False
        self._step_started: float | None = None  # monotonic start of the step in flight
        self._stalled = False
        self._started = False
        self._closed = False
        self._received_at: dict[str, float] = {}
        self.cycles = 0
        self._lag_at = 0.0

    @classmethod
    def from_settings(cls, settings: Settings) -> Self:
        return cls(settings)

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # -- lifecycle -----------------------------------------------------------------------

    async def start(self) -> None:
        """Connect, migrate, create topics, join the group; state follows the assignment."""
        if self._started:
            return
        self._started = True
        self._store = await Store.connect(self.settings.database)
        created = await ensure_topics(self.settings.kafka)
        if created:
            log.info("created topics %s", created)
        self._pool = ProcessPoolExecutor(
            max_workers=self.settings.solver.workers,
            mp_context=multiprocessing.get_context("spawn"),
        )
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._pool, warm_up)
        self._consumer = Consumer(
            self.settings.kafka,
            self._input_topics,
            on_revoked=self._on_revoked,
            on_assigned=self._on_assigned,
        )
        await self._consumer.start()
        log.info("dispatcher started; topics %s", self.topics)

    async def _on_revoked(self, partitions: set[tuple[str, int]]) -> None:
        async with self._lock:  # let the cycle in flight commit first
            self._reassigned = True
        log.info("partitions revoked: %s", sorted(partitions))

    async def _on_assigned(self, partitions: set[tuple[str, int]]) -> None:
        self._reassigned = True
        log.info("partitions assigned: %s", sorted(partitions))

    def shard_of_zone(self, zone: str) -> int:
        """The input partition index the zone's events land in."""
        return shard_of_key(zone.encode(), self._partitions)

    async def _take_over(self) -> None:
        """Own exactly the assigned shards: producers, outbox watermark, state, positions."""
        assert self._consumer is not None and self._store is not None
        self._reassigned = False
        count = self._consumer.partition_count(self._input_topics[0])
        if count:
            self._partitions = count
        shards = {p for t, p in self._consumer.assignment() if t in self._input_topics}
        for p in sorted(set(self._producers) - shards):
            await self._producers.pop(p).stop()
        for p in sorted(shards - set(self._producers)):
            producer = ShardProducer(
                self.settings.kafka, f"{self.settings.kafka.group_id}-shard-{p}"
            )
            await producer.start()  # fences the shard's previous owner
            self._producers[p] = producer
        self._owned = shards
        tps = [(t, p) for p in sorted(shards) for t in self._input_topics]
        found = await committed(self.settings.kafka, tps) if tps else {}
        for p in shards:
            mark = max(
                (parse_watermark(found[(t, p)][1]) for t in self._input_topics if (t, p) in found),
                default=0,
            )
            self._watermark[p] = mark
            if mark:
                done = await self._store.mark_published_upto(p, mark)
                if done:
                    log.info("shard %d: %d outbox rows were already in Kafka", p, done)
        await self._recover_state()
        await self._consumer.rewind_to_committed()
        self._positions = {tp: found[tp][0] for tp in tps if tp in found}
        self._committed_positions = dict(self._positions)
        await self._flush_outbox(force=True)
        self.takeovers += 1
        self.metrics.healthy.set(1)
        log.info("own shards %s of %d", sorted(shards), self._partitions)

    async def _recover_state(self) -> None:
        assert self._store is not None
        zones = {z for z in await self._store.zones() if self.shard_of_zone(z) in self._owned}
        rides, vehicles = await self._store.load_state(zones)
        state = FleetState(
            vehicles={v.vehicle_id: v for v in vehicles},
            rides={r.request_id: r for r in rides},
        )
        self.core = DispatchCore(self.settings.core_config(), self.travel, state)
        now = self.clock.now()
        # Receive times of pending rides, on the monotonic clock the latency metric uses.
        self._received_at = {
            r.request_id: time.monotonic() - max(0.0, now - r.received_at)
            for r in rides
            if r.status is RideStatus.PENDING
        }
        log.info(
            "recovered %d open rides and %d vehicles in %d zones",
            len(rides),
            len(vehicles),
            len(zones),
        )

    async def stop(self) -> None:
        """Finish the pending batch, commit, close everything. Idempotent."""
        if self._closed or not self._started:
            return
        self._closed = True
        try:
            if (
                self._store is not None
                and self._consumer is not None
                and not self._reassigned
                and len(self.core.batch)
            ):
                async with asyncio.timeout(self.settings.dispatch.graceful_timeout_s):
                    async with self._lock:
                        await self._cycle([], force=True)
        except (TimeoutError, StoreError, TransportError):
            log.exception("could not finish the last batch; it will be replayed")
        finally:
            for closer in (
                self._consumer.stop if self._consumer else None,
                *(p.stop for p in self._producers.values()),
                self._store.close if self._store else None,
            ):
                if closer is not None:
                    with contextlib.suppress(Exception):
                        await closer()
            if self._pool is not None:
                self._pool.shutdown(wait=False, cancel_futures=True)
            self.metrics.healthy.set(0)
            log.info("dispatcher stopped")

    # -- main loop -----------------------------------------------------------------------

    async def run(self, until: asyncio.Event) -> None:
        """Cycle until ``until`` is set; retriable failures back off and recover."""
        async with asyncio.TaskGroup() as group:
            group.create_task(self._watchdog(until))
            await self._run(until)

    def _stall_limit_s(self) -> float:
        """How long one step may take before the dispatcher counts as unhealthy."""
        s = self.settings
        return max(10.0, s.solver.time_limit_s * 3 + 5, s.kafka.request_timeout_s / 2)

    async def _watchdog(self, until: asyncio.Event) -> None:
        """Flag a step that hangs (a broker or database that stopped answering mid-cycle):
        the probe in ``_observe`` only runs between steps."""
        while not until.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(until.wait(), 1.0)
            started = self._step_started
            if started is not None and time.monotonic() - started > self._stall_limit_s():
                if not self._stalled:
                    log.warning("a dispatcher step is stalled; unhealthy until it ends")
                self._stalled = True
                self.metrics.healthy.set(0)

    async def _run(self, until: asyncio.Event) -> None:
        backoff = 0.5
        while not until.is_set():
            try:
                self._step_started = time.monotonic()
                try:
                    await self._step()
                finally:
                    self._step_started = None
                if self._stalled:
                    self._stalled = False
                    if not self._broker_down:
                        self.metrics.healthy.set(1)
                backoff = 0.5
            except (StoreError, TransportError, OSError) as exc:
                self._stalled = False
                self.metrics.healthy.set(0)
                self.metrics.cycle_errors.labels(type(exc).__name__).inc()
                log.warning("cycle failed (%s); retrying in %.1fs", exc, backoff)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(until.wait(), backoff)
                backoff = min(backoff * 2, 30.0)
                await self._recover_after_failure()

    async def _recover_after_failure(self) -> None:
        """Forget in-memory progress; the next step resumes from what was committed."""
        for producer in self._producers.values():
            await producer.stop()  # its transaction state is unknown; start afresh
        self._producers.clear()
        self._reassigned = True

    async def _step(self) -> None:
        assert self._consumer is not None
        due_at = self.core.next_due_at()
        now = self.clock.now()
        timeout = 0.5 if due_at is None else min(0.5, max(0.0, due_at - now))
        records = await self._consumer.poll(timeout, self.settings.kafka.max_poll_records)
        async with self._lock:
            if self._reassigned:
                # Records polled around a rebalance are read again after the rewind.
                await self._take_over()
            elif records or self.core.due(self.clock.now()):
                await self._cycle(records)
        await self._observe()

    async def _cycle(self, records: list[Record], *, force: bool = False) -> None:
        assert self._store is not None and self._consumer is not None
        now = self.clock.now()
        decoded: list[tuple[Record, Event]] = []
        outputs: list[tuple[Event, int]] = []
        processed: list[Processed] = []
        for record in records:
            tp = (record.topic, record.partition)
            self._positions[tp] = max(self._positions.get(tp, 0), record.offset + 1)
            role = self._role_of_topic.get(record.topic, "")
            try:
                decoded.append((record, decode(role, record.value)))
            except DecodeError as exc:
                outputs.extend(self._dead_letter(record, exc.reason, exc.error_type, now))
                if exc.request_id is not None and role == "requests":
                    try:
                        rejection = self._invalid_rejection(exc.request_id, exc.reason, now)
                    except ValidationError:
                        log.info("the request id of a refused request is not valid either")
                    else:
                        outputs.append((rejection, record.partition))
        seen = await self._store.seen([e.event_id for _, e in decoded])
        requests: list[RideRequestedV1] = []
        for record, event in decoded:
            first = seen.get(event.event_id)
            if first is not None:
                self.metrics.duplicates.inc()
                if first != (record.topic, record.partition, record.offset):
                    reason = (
                        f"duplicate event id {event.event_id}: first seen at"
                        f" {first[0]}[{first[1]}]@{first[2]}"
                    )
                    outputs.extend(self._dead_letter(record, reason, "semantic", now))
                continue  # else a replay of a record already processed: skip silently
            seen[event.event_id] = (record.topic, record.partition, record.offset)
            self.metrics.events_received.labels(event.type).inc()
            before = self._vehicle_position(event)
            handled = self.core.handle(event, now)
            if handled.dead_letter is None:
                self._observe_event(event, before, now)
            if handled.dead_letter is not None:
                outputs.extend(self._dead_letter(record, handled.dead_letter, "semantic", now))
            elif isinstance(event, RideRequestedV1):
                requests.append(event)
                self._received_at.setdefault(event.request_id, time.monotonic())
                for out in handled.outputs:
                    if isinstance(out, RideRejectedV1) and out.reason in BAD_INPUT_REJECTIONS:
                        reason = f"request rejected as {out.reason.value}: {out.message}"
                        outputs.extend(self._dead_letter(record, reason, "semantic", now))
            outputs.extend((e, record.partition) for e in handled.outputs)
            processed.append(
                Processed(event.event_id, record.topic, record.partition, record.offset)
            )
        if force and len(self.core.batch):
            job = self.core.prepare(now + self.settings.dispatch.batch_window_s)
        else:
            job = self.core.prepare(now)
        if job is not None:
            plan = await self._solve(job)
            fallback = min(self._owned, default=0)
            # complete() may repair a rejected plan in pure Python for seconds; in a thread
            # the loop keeps heartbeating (the cycle lock keeps everyone else off the core).
            completed = await asyncio.to_thread(self.core.complete, job, plan, self.clock.now())
            outputs.extend((e, fallback) for e in completed)
        # idle vehicles sent to standby points (none unless DRT_DISPATCH__REBALANCE_POINTS)
        relocated = self.core.rebalance(self.clock.now())
        outputs.extend((e, min(self._owned, default=0)) for e in relocated)
        rides, vehicles = self.core.state.drain_dirty()
        outgoing = [
            Outgoing(self.topics[role_of(e)], key_of(e), e, self._shard_for(e, default))
            for e, default in outputs
        ]
        await self._store.commit_cycle(processed, requests, rides, vehicles, outgoing)
        await self._flush_outbox()
        self._count_outputs([e for e, _ in outputs])
        self.cycles += 1

    def _shard_for(self, event: Event, default: int) -> int:
        """The owned shard an output belongs to: its zone's, else where its cause came from."""
        if isinstance(event, DeadLetterV1):
            return event.original_partition
        zone = getattr(event, "zone", None)
        if isinstance(zone, str):
            shard = self.shard_of_zone(zone)
            if shard in self._owned:
                return shard
        return default

    def _dead_letter(
        self, record: Record, reason: str, error_type: ErrorType, now: float
    ) -> list[tuple[Event, int]]:
        self.metrics.dead_letters.labels(error_type).inc()
        # The reason may quote the payload (coordinates, passenger_ref): not in the log.
        log.warning(
            "dead letter from %s[%d]@%d (%s)",
            record.topic,
            record.partition,
            record.offset,
            error_type,
        )
        event_id = uuid.uuid5(DEAD_LETTER_NS, f"{record.topic}:{record.partition}:{record.offset}")
        payload = (record.value or b"").decode("utf-8", errors="replace")
        return [
            (
                DeadLetterV1(
                    event_id=event_id,
                    occurred_at=to_datetime(now),
                    source=self.settings.kafka.client_id,
                    original_topic=record.topic,
                    original_partition=record.partition,
                    original_offset=record.offset,
                    original_key=record.key.decode("utf-8", errors="replace")
                    if record.key
                    else None,
                    payload=payload[:100_000],
                    reason=reason[:5000],
                    error_type=error_type,
                ),
                record.partition,
            )
        ]

    def _invalid_rejection(self, request_id: str, reason: str, now: float) -> RideRejectedV1:
        known = self.core.state.rides.get(request_id)
        return RideRejectedV1(
            event_id=uuid.uuid5(DEAD_LETTER_NS, f"invalid:{request_id}:{reason[:200]}"),
            occurred_at=to_datetime(now),
            source=self.settings.kafka.client_id,
            request_id=request_id,
            zone=known.zone if known else None,
            reason=RejectionReason.INVALID,
            message=f"the request could not be accepted: {reason[:900]}",
        )

    async def _solve(self, job: BatchJob) -> Plan:
        s = self.settings.solver
        loop = asyncio.get_running_loop()
        assert self._pool is not None
        self.metrics.batch_size.observe(len(job.new_ids))
        started = time.monotonic()
        try:
            async with asyncio.timeout(s.time_limit_s * 3 + 5):
                plan = await loop.run_in_executor(
                    self._pool, solve, job.problem, s.name, s.time_limit_s, s.seed
                )
        except Exception as exc:  # noqa: BLE001 - any solver failure falls back
            cause = "timeout" if isinstance(exc, TimeoutError) else "error"
            if isinstance(exc, TimeoutError):
                self._replace_pool()  # the overrunning worker would block the next batch
            self.metrics.solver_fallbacks.labels(cause).inc()
            log.warning("solver failed (%r); falling back to insertion", exc)
            plan = solve(job.problem, "insertion", s.time_limit_s, s.seed)
        elapsed = time.monotonic() - started
        self.metrics.solver_duration.labels(plan.stats.solver).observe(elapsed)
        self.metrics.solver_objective.set(plan.stats.objective)
        if plan.stats.time_limit_hit:
            self.metrics.solver_time_limit_hits.inc()
        if plan.stats.fallback:
            self.metrics.solver_fallbacks.labels("no_solution").inc()
        log.info(
            "batch of %d solved by %s in %.2fs: objective %d, %d unassigned",
            len(job.new_ids),
            plan.stats.solver,
            elapsed,
            plan.stats.objective,
            sum(not is_sample(u.request_id) for u in plan.unassigned),
        )
        return plan

    def _replace_pool(self) -> None:
        old = self._pool
        self._pool = ProcessPoolExecutor(
            max_workers=self.settings.solver.workers,
            mp_context=multiprocessing.get_context("spawn"),
        )
        if old is not None:
            workers = list(getattr(old, "_processes", {}).values())  # no public handle
            old.shutdown(wait=False, cancel_futures=True)
            for worker in workers:
                with contextlib.suppress(Exception):
                    worker.kill()

    async def _flush_outbox(self, *, force: bool = False) -> None:
        """Per owned shard: one Kafka transaction with its unpublished rows and offsets."""
        assert self._store is not None and self._consumer is not None
        backlog = 0
        for shard in sorted(self._owned):
            tps = [(t, shard) for t in self._input_topics]
            while True:
                rows = await self._store.unpublished([shard], limit=1000)
                moved = any(
                    self._positions.get(tp) != self._committed_positions.get(tp) for tp in tps
                )
                if not rows and not moved and not force:
                    break
                mark = max([self._watermark.get(shard, 0), *(r.id for r in rows)])
                offsets = {}
                for tp in tps:
                    position = self._positions.get(tp)
                    if position is None:
                        position = await self._consumer.position(*tp)
                        self._positions[tp] = position
                    offsets[tp] = (position, f"{WATERMARK_PREFIX}{mark}")
                await self._producers[shard].transact(
                    [
                        (r.topic, r.key, r.value, [("event_id", str(r.event_id).encode())])
                        for r in rows
                    ],
                    offsets,
                )
                self._watermark[shard] = mark
                self._committed_positions.update({tp: o for tp, (o, _) in offsets.items()})
                await self._store.mark_published([r.id for r in rows])
                force = False
                if len(rows) < 1000:
                    break
                backlog += len(rows)
        self.metrics.outbox_unpublished.set(backlog)

    def _count_outputs(self, outputs: list[Event]) -> None:
        for e in outputs:
            if isinstance(e, RideOfferedV1) and e.previous_vehicle_id is not None:
                self.metrics.rides_reassigned.inc()  # answered before, on another vehicle
                continue
            if isinstance(e, RideOfferedV1 | RideRejectedV1):
                outcome = "offered" if isinstance(e, RideOfferedV1) else "rejected"
                reason = e.reason.value if isinstance(e, RideRejectedV1) else ""
                self.metrics.requests_answered.labels(outcome, reason).inc()
                started = self._received_at.pop(e.request_id, None)
                if started is not None:
                    self.metrics.request_to_offer.observe(time.monotonic() - started)

    def _vehicle_position(self, event: Event) -> tuple[LatLon, bool] | None:
        if not isinstance(event, PositionUpdatedV1 | ArrivedAtStopV1):
            return None
        vehicle = self.core.state.vehicles.get(event.vehicle_id)
        if vehicle is None:
            return None
        return vehicle.position, bool(vehicle.onboard)

    def _observe_event(self, event: Event, before: tuple[LatLon, bool] | None, now: float) -> None:
        """Service-quality metrics from a vehicle event the core accepted."""
        m = self.metrics
        if before is not None and isinstance(event, PositionUpdatedV1 | ArrivedAtStopV1):
            position, occupied = before
            metres = haversine_m(position, LatLon(event.position.lat, event.position.lon))
            m.vehicle_distance.labels("true" if occupied else "false").inc(metres)
            return
        if not isinstance(event, PassengerBoardedV1 | PassengerAlightedV1):
            return
        ride = self.core.state.rides.get(event.request_id)
        if ride is None:
            return
        if isinstance(event, PassengerBoardedV1) and ride.picked_up_at is not None:
            m.pickup_wait.observe(max(0.0, ride.picked_up_at - ride.earliest_pickup))
            if ride.promised_pickup is not None:
                deviation = ride.picked_up_at - ride.promised_pickup[1]
                m.promise_deviation.observe(deviation)
                m.promises.labels("kept" if deviation <= 0 else "broken").inc()
        elif isinstance(event, PassengerAlightedV1) and ride.picked_up_at and ride.dropped_at:
            m.detour.observe((ride.dropped_at - ride.picked_up_at) / max(1, ride.direct_s))
            m.rides_completed.labels("true" if ride.shared else "false").inc()

    async def _observe(self) -> None:
        state = self.core.state
        counts = {s.value: 0 for s in (RideStatus.PENDING, RideStatus.OFFERED, RideStatus.ONBOARD)}
        for ride in state.rides.values():
            if ride.status.value in counts:
                counts[ride.status.value] += 1
        for status, n in counts.items():
            self.metrics.open_requests.labels(status).set(n)
        now = self.clock.now()
        active = state.active_vehicles(now)
        busy = sum(1 for v in active if v.stops or v.onboard)
        self.metrics.seats_on_shift.set(sum(v.seats for v in active))
        self.metrics.passengers_onboard.set(
            sum(
                state.rides[r].seats + state.rides[r].wheelchairs
                for v in state.vehicles.values()
                for r in v.onboard
                if r in state.rides
            )
        )
        self.metrics.last_cycle.set(now)
        self.metrics.vehicles.labels("busy").set(busy)
        self.metrics.vehicles.labels("idle").set(len(active) - busy)
        self.metrics.vehicles.labels("off_shift").set(len(state.vehicles) - len(active))
        if self._store is not None:
            self.metrics.pg_pool_in_use.set(self._store.pool_in_use)
        if self._consumer is not None and time.monotonic() - self._lag_at > 2.0:
            # Doubles as the broker health probe: an idle consumer would not notice.
            self._lag_at = time.monotonic()
            try:
                async with asyncio.timeout(2.0):
                    lags = await self._consumer.lag()
                    if self._store is not None:
                        await self._store.ping()
            except Exception as exc:  # noqa: BLE001 - any failure means "not there"
                if not self._broker_down:
                    log.warning("Kafka or PostgreSQL does not answer (%r); unhealthy", exc)
                self._broker_down = True
                self.metrics.healthy.set(0)
            else:
                if self._broker_down:
                    log.info("Kafka and PostgreSQL answer again; resynchronising")
                    self._broker_down = False
                    await self._recover_after_failure()
                for (topic, partition), lag in lags.items():
                    self.metrics.consumer_lag.labels(topic, str(partition)).set(lag)


async def serve(settings: Settings, stop: asyncio.Event | None = None) -> None:
    """Run the dispatcher until SIGINT/SIGTERM (or ``stop``), then shut down gracefully."""
    import signal  # noqa: PLC0415

    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with Dispatcher.from_settings(settings) as dispatcher:
        await dispatcher.run(until=stop)
