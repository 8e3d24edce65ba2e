"""Reading topics into an in-memory view, and pushing changes to live streams.

The gateway and the driver app keep no database: they rebuild their view by
reading their topics from the beginning (the driver-plans topic is compacted, so
that is each vehicle's latest plan), then follow them. ``TopicReader`` is a
consumer without a group (every replica reads everything, nothing is committed);
``Hub`` wakes the server-sent-event streams waiting on a key.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

from aiokafka import AIOKafkaConsumer
from aiokafka.errors import KafkaError

from dispatcher.config import KafkaSettings
from dispatcher.kafka import (
    Publisher,
    client_options,
    ensure_topics,
    start_client,
)
from schemas.codec import DecodeError, decode, encode
from schemas.envelope import Event
from schemas.topics import key_of

log = logging.getLogger(__name__)


class TopicReader:
    """Reads the topics of some roles from their beginning; yields ``(role, event)``."""

    def __init__(self, settings: KafkaSettings, roles: Sequence[str], client_id: str) -> None:
        self._settings = settings
        self._role_of = {settings.topic(role): role for role in roles}
        self._consumer = AIOKafkaConsumer(
            *self._role_of,
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
        await start_client(self._consumer, self._settings, "reader")

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
