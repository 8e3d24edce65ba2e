"""Thin typed adapters over aiokafka: topic set-up, consuming, publishing.

aiokafka ships no type information; everything untyped stays in this module.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError

from dispatcher.config import KafkaSettings
from schemas.topics import TOPICS

log = logging.getLogger(__name__)


class TransportError(Exception):
    """Kafka is unreachable or refused a request; retry later."""

    retriable = True


@dataclass(frozen=True, slots=True)
class Record:
    """One consumed message, free of aiokafka types."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None


def _common(settings: KafkaSettings) -> dict[str, Any]:
    options: dict[str, Any] = {
        "bootstrap_servers": settings.bootstrap_servers,
        "security_protocol": settings.security_protocol,
    }
    if settings.sasl_mechanism:
        options["sasl_mechanism"] = settings.sasl_mechanism
        options["sasl_plain_username"] = settings.sasl_username
        if settings.sasl_password is not None:
            options["sasl_plain_password"] = settings.sasl_password.get_secret_value()
    return options


async def ensure_topics(settings: KafkaSettings) -> list[str]:
    """Create the topics that do not exist yet; return the names created."""
    admin = AIOKafkaAdminClient(
        client_id=f"{settings.client_id}-admin",
        request_timeout_ms=int(settings.request_timeout_s * 1000),
        **_common(settings),
    )
    try:
        async with asyncio.timeout(settings.request_timeout_s):
            await admin.start()
            existing = set(await admin.list_topics())
            wanted = []
            for spec in TOPICS:
                name = settings.topic(spec.role)
                if name in existing:
                    continue
                config = {"cleanup.policy": "compact"} if spec.compacted else {}
                wanted.append(
                    NewTopic(
                        name=name,
                        num_partitions=settings.partitions,
                        replication_factor=settings.replication_factor,
                        topic_configs=config,
                    )
                )
            if wanted:
                with contextlib.suppress(TopicAlreadyExistsError):  # another instance won
                    await admin.create_topics(wanted)
            return [t.name for t in wanted]
    except (KafkaError, OSError, TimeoutError) as exc:
        raise TransportError(f"cannot set up topics: {exc!r}") from exc
    finally:
        await admin.close()


class Consumer:
    """A consumer-group member over the input topics; offsets committed by hand."""

    def __init__(self, settings: KafkaSettings, topics: Sequence[str]) -> None:
        self._settings = settings
        self._topics = list(topics)
        self._consumer = AIOKafkaConsumer(
            *self._topics,
            group_id=settings.group_id,
            client_id=settings.client_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            isolation_level="read_committed",
            request_timeout_ms=int(settings.request_timeout_s * 1000),
            **_common(settings),
        )

    async def start(self) -> None:
        try:
            async with asyncio.timeout(self._settings.request_timeout_s):
                await self._consumer.start()
        except (KafkaError, OSError, TimeoutError) as exc:
            raise TransportError(f"consumer cannot start: {exc!r}") from exc

    async def stop(self) -> None:
        await self._consumer.stop()

    async def poll(self, timeout_s: float, max_records: int = 500) -> list[Record]:
        batches = await self._consumer.getmany(
            timeout_ms=int(timeout_s * 1000), max_records=max_records
        )
        records = [
            Record(m.topic, m.partition, m.offset, m.key, m.value)
            for msgs in batches.values()
            for m in msgs
        ]
        records.sort(key=lambda r: (r.topic, r.partition, r.offset))
        return records

    async def commit(self, records: Sequence[Record]) -> None:
        """Commit the offsets just past the given records."""
        offsets: dict[TopicPartition, int] = {}
        for r in records:
            tp = TopicPartition(r.topic, r.partition)
            offsets[tp] = max(offsets.get(tp, 0), r.offset + 1)
        if not offsets:
            return
        try:
            async with asyncio.timeout(self._settings.request_timeout_s):
                await self._consumer.commit(offsets)
        except (KafkaError, TimeoutError) as exc:
            raise TransportError(f"offset commit failed: {exc!r}") from exc

    async def rewind_to_committed(self) -> None:
        """Seek every assigned partition back to its committed offset (after a failure)."""
        for tp in self._consumer.assignment():
            committed = await self._consumer.committed(tp)
            if committed is None:
                await self._consumer.seek_to_beginning(tp)
            else:
                self._consumer.seek(tp, committed)

    async def lag(self) -> dict[tuple[str, int], int]:
        """Messages not yet consumed, per assigned partition."""
        assigned = list(self._consumer.assignment())
        if not assigned:
            return {}
        ends = await self._consumer.end_offsets(assigned)
        out = {}
        for tp in assigned:
            try:
                position = await self._consumer.position(tp)
            except KafkaError:
                continue
            out[(tp.topic, tp.partition)] = max(0, ends[tp] - position)
        return out


class Publisher:
    """An idempotent producer; ``publish`` returns once every message is acknowledged."""

    def __init__(self, settings: KafkaSettings) -> None:
        self._settings = settings
        self._producer = AIOKafkaProducer(
            client_id=settings.client_id,
            enable_idempotence=True,
            acks="all",
            request_timeout_ms=int(settings.request_timeout_s * 1000),
            **_common(settings),
        )

    async def start(self) -> None:
        try:
            async with asyncio.timeout(self._settings.request_timeout_s):
                await self._producer.start()
        except (KafkaError, OSError, TimeoutError) as exc:
            raise TransportError(f"producer cannot start: {exc!r}") from exc

    async def stop(self) -> None:
        await self._producer.stop()

    async def publish(self, messages: Sequence[tuple[str, bytes | None, bytes]]) -> None:
        try:
            async with asyncio.timeout(self._settings.request_timeout_s):
                futures = [
                    await self._producer.send(topic, value=value, key=key)
                    for topic, key, value in messages
                ]
                if futures:
                    await asyncio.gather(*futures)
        except (KafkaError, TimeoutError) as exc:
            raise TransportError(f"publish failed: {exc!r}") from exc
