"""Reading topics into an in-memory view, and pushing changes to live streams.

The gateway and the driver app rebuild their view by reading their topics, then
follow them. ``TopicReader`` is a consumer without a group (every replica reads
everything, nothing is committed) over every partition of its topics, from the
beginning (the driver app: the driver-plans topic is compacted, so that is each
vehicle's latest plan) or from a point in time (the gateway: ``since``, found with
``offsets_for_times``, so a start-up reads only the last hours, not the whole
retention). ``Hub`` wakes the server-sent-event streams waiting on a key.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from dispatcher.config import KafkaSettings
from dispatcher.kafka import (
    Publisher,
    TransportError,
    client_options,
    ensure_topics,
    start_client,
)
from schemas.codec import DecodeError, decode, encode
from schemas.envelope import Event
from schemas.topics import key_of

log = logging.getLogger(__name__)


async def partitions_of(settings: KafkaSettings, topics: Sequence[str]) -> list[TopicPartition]:
    """Every partition of ``topics`` (they exist: ``ensure_topics`` ran)."""
    admin = AIOKafkaAdminClient(
        client_id=f"{settings.client_id}-admin",
        request_timeout_ms=int(settings.request_timeout_s * 1000),
        **client_options(settings),
    )
    try:
        async with asyncio.timeout(settings.request_timeout_s):
            await admin.start()
            described = await admin.describe_topics(list(topics))
    except (KafkaError, OSError, TimeoutError) as exc:
        raise TransportError(f"cannot describe topics: {exc!r}") from exc
    finally:
        await admin.close()
    return sorted(
        TopicPartition(t["topic"], p["partition"]) for t in described for p in t["partitions"]
    )


class TopicReader:
    """Reads the topics of some roles; yields ``(role, event)``.

    From the beginning, or with ``since`` (POSIX seconds) from the first record of
    each partition whose timestamp is at or after it (none: from the end).
    """

    def __init__(
        self,
        settings: KafkaSettings,
        roles: Sequence[str],
        client_id: str,
        since: Callable[[], float] | None = None,
    ) -> None:
        self._settings = settings
        self._role_of = {settings.topic(role): role for role in roles}
        self._since = since
        #: records skipped at start-up, per partition: the offset reading began at
        self.start_offsets: dict[tuple[str, int], int] = {}
        self._consumer = AIOKafkaConsumer(
            group_id=None,
            client_id=client_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            isolation_level="read_committed",
            metadata_max_age_ms=5000,
            request_timeout_ms=int(settings.request_timeout_s * 1000),
            **client_options(settings),
        )

    async def start(self) -> None:
        partitions = await partitions_of(self._settings, list(self._role_of))
        await start_client(self._consumer, self._settings, "reader")
        try:
            async with asyncio.timeout(self._settings.request_timeout_s):
                await self._seek(partitions)
        except (KafkaError, OSError, TimeoutError) as exc:
            await self._consumer.stop()
            raise TransportError(f"reader cannot seek: {exc!r}") from exc

    async def _seek(self, partitions: list[TopicPartition]) -> None:
        consumer = self._consumer
        consumer.assign(partitions)
        if self._since is None:
            await consumer.seek_to_beginning(*partitions)
        else:
            at_ms = int(self._since() * 1000)
            found = await consumer.offsets_for_times(dict.fromkeys(partitions, at_ms))
            ends = await consumer.end_offsets(partitions)
            for tp in partitions:
                hit = found.get(tp)
                consumer.seek(tp, hit.offset if hit is not None else ends[tp])
        for tp in partitions:
            self.start_offsets[(tp.topic, tp.partition)] = await consumer.position(tp)

    async def stop(self) -> None:
        await self._consumer.stop()

    async def poll(self, timeout_s: float) -> list[tuple[str, Event]]:
        batches = await self._consumer.getmany(timeout_ms=int(timeout_s * 1000))
        out: list[tuple[str, Event]] = []
        for messages in batches.values():
            for m in messages:
                role = self._role_of[m.topic]
                try:
                    out.append((role, decode(role, m.value)))
                except DecodeError as exc:
                    # The dispatcher dead-letters bad input; a view just skips it.
                    log.warning("skipping %s@%s: %s", m.topic, m.offset, exc.reason)
        out.sort(key=lambda pair: pair[1].occurred_at)
        return out


async def follow(
    reader: TopicReader,
    apply: Callable[[str, Event], None],
    stop: asyncio.Event,
    poll_s: float = 0.2,
) -> None:
    """Feed every event to ``apply`` until ``stop`` is set; transport errors are retried."""
    backoff = 0.5
    while not stop.is_set():
        try:
            batch = await reader.poll(poll_s)
        except KafkaError as exc:
            log.warning("reading topics failed, retrying in %.1fs: %r", backoff, exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), backoff)
            backoff = min(backoff * 2, 10.0)
            continue
        backoff = 0.5
        for role, event in batch:
            apply(role, event)


class Hub:
    """Wakes coroutines waiting for a change of a key (a ride or a vehicle)."""

    def __init__(self) -> None:
        self._waiting: dict[str, asyncio.Event] = {}

    def notify(self, key: str) -> None:
        event = self._waiting.pop(key, None)
        if event is not None:
            event.set()

    def notify_all(self) -> None:
        for key in list(self._waiting):
            self.notify(key)

    async def wait(self, key: str, timeout_s: float) -> bool:
        """Wait until ``key`` changes; False after ``timeout_s`` without a change."""
        event = self._waiting.setdefault(key, asyncio.Event())
        try:
            await asyncio.wait_for(event.wait(), timeout_s)
        except TimeoutError:
            return False
        return True


def sse(data: Any, event: str | None = None, event_id: int | None = None) -> str:
    """One server-sent event in the ``text/event-stream`` format."""
    lines = []
    if event_id is not None:
        lines.append(f"id: {event_id}")
    if event is not None:
        lines.append(f"event: {event}")
    lines.append(f"data: {json.dumps(data, separators=(',', ':'), default=str)}")
    return "\n".join(lines) + "\n\n"


class KafkaFront:
    """The Kafka side of a web service: a publisher, and a reader that follows topics.

    Subclasses set ``self.kafka``, ``self.hub``, ``self._publisher`` and
    ``self._reader`` and implement :meth:`apply` (fold one consumed event into their
    view). ``running()`` starts both, follows the topics in a task, and on exit sets
    ``stopping`` and wakes every waiting stream.
    """

    kafka: KafkaSettings
    hub: Hub
    _publisher: Publisher
    _reader: TopicReader
    stopping: asyncio.Event

    def apply(self, role: str, event: Event) -> None:
        raise NotImplementedError

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        await ensure_topics(self.kafka)
        await self._publisher.start()
        try:
            await self._reader.start()
            try:
                async with asyncio.TaskGroup() as tasks:
                    tasks.create_task(follow(self._reader, self.apply, self.stopping))
                    try:
                        yield
                    finally:
                        self.stopping.set()
                        self.hub.notify_all()
            finally:
                await self._reader.stop()
        finally:
            await self._publisher.stop()

    async def publish_to(self, role: str, event: Event) -> None:
        """Publish ``event`` on the topic of ``role`` and fold it in at once
        (read-your-writes before the topic echoes it)."""
        await self._publisher.publish([(self.kafka.topic(role), key_of(event), encode(event))])
        self.apply(role, event)
