"""Thin typed adapters over aiokafka: topic set-up, consuming, transactional publishing.

aiokafka ships no type information; everything untyped stays in this module.

Exactly-once building blocks (see ``dispatcher/service.py`` for the scheme):

- :class:`Consumer` reads with ``isolation_level="read_committed"``, never
  auto-commits, and reports partition (re)assignments through a listener that
  waits for the cycle in flight before partitions are given away.
- :class:`ShardProducer` is one transactional producer per owned shard
  (``transactional_id = f"{group_id}-shard-{p}"``): outputs and the input offsets
  of that shard commit in one Kafka transaction, and whoever starts the
  producer for a shard fences the previous owner (zombie fencing without KIP-447,
  which aiokafka lacks).
- :func:`committed` reads back committed offsets *with their metadata*: the
  dispatcher stores its outbox watermark there.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, ProducerFenced, TopicAlreadyExistsError
from aiokafka.helpers import create_ssl_context
from aiokafka.partitioner import murmur2

from dispatcher.config import KafkaSettings
from schemas.topics import TOPICS

log = logging.getLogger(__name__)


async def start_client(client: Any, settings: KafkaSettings, what: str) -> None:
    """Start an aiokafka client within the request timeout, or raise TransportError."""
    try:
        async with asyncio.timeout(settings.request_timeout_s):
            await client.start()
    except (KafkaError, OSError, TimeoutError) as exc:
        with contextlib.suppress(Exception):
            await client.stop()
        raise TransportError(f"{what} cannot start: {exc!r}") from exc


class TransportError(Exception):
    """Kafka is unreachable or refused a request; retry later."""

    retriable = True


class FencedError(TransportError):
    """Another instance took over this shard's transactional id; give the shard up."""


@dataclass(frozen=True, slots=True)
class Record:
    """One consumed message, free of aiokafka types."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None


def shard_of_key(key: bytes, partitions: int) -> int:
    """The partition Kafka's default partitioner (murmur2, as in Java) picks for ``key``."""
    return int(murmur2(key) & 0x7FFFFFFF) % partitions


def client_options(settings: KafkaSettings) -> dict[str, Any]:
    """Connection options shared by every client: servers, TLS, SASL."""
    options: dict[str, Any] = {
        "bootstrap_servers": settings.bootstrap_servers,
        "security_protocol": settings.security_protocol,
    }
    if settings.security_protocol in ("SSL", "SASL_SSL"):
        options["ssl_context"] = create_ssl_context(
            cafile=settings.ssl_cafile,
            certfile=settings.ssl_certfile,
            keyfile=settings.ssl_keyfile,
            password=(settings.ssl_password.get_secret_value() if settings.ssl_password else None),
        )
    if settings.sasl_mechanism:
        options["sasl_mechanism"] = settings.sasl_mechanism
        options["sasl_plain_username"] = settings.sasl_username
        password = settings.sasl_password_value()
        if password is not None:
            options["sasl_plain_password"] = password
    return options


async def ensure_topics(settings: KafkaSettings) -> list[str]:
    """Create the topics that do not exist yet; return the names created."""
    admin = AIOKafkaAdminClient(
        client_id=f"{settings.client_id}-admin",
        request_timeout_ms=int(settings.request_timeout_s * 1000),
        **client_options(settings),
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


async def committed(
    settings: KafkaSettings, partitions: Sequence[tuple[str, int]]
) -> dict[tuple[str, int], tuple[int, str]]:
    """Committed ``(offset, metadata)`` of the consumer group, per partition that has one."""
    admin = AIOKafkaAdminClient(
        client_id=f"{settings.client_id}-admin",
        request_timeout_ms=int(settings.request_timeout_s * 1000),
        **client_options(settings),
    )
    try:
        async with asyncio.timeout(settings.request_timeout_s):
            await admin.start()
            found = await admin.list_consumer_group_offsets(
                settings.group_id, partitions=[TopicPartition(t, p) for t, p in partitions]
            )
    except (KafkaError, OSError, TimeoutError) as exc:
        raise TransportError(f"cannot read committed offsets: {exc!r}") from exc
    finally:
        with contextlib.suppress(Exception):
            await admin.close()
    return {
        (tp.topic, tp.partition): (om.offset, om.metadata or "")
        for tp, om in found.items()
        if om.offset is not None and om.offset >= 0
    }


class _Listener(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(
        self,
        revoked: Callable[[set[tuple[str, int]]], Awaitable[None]],
        assigned: Callable[[set[tuple[str, int]]], Awaitable[None]],
    ) -> None:
        self._revoked = revoked
        self._assigned = assigned

    async def on_partitions_revoked(self, revoked: Any) -> None:
        await self._revoked({(tp.topic, tp.partition) for tp in revoked})

    async def on_partitions_assigned(self, assigned: Any) -> None:
        await self._assigned({(tp.topic, tp.partition) for tp in assigned})


async def _nothing(_: set[tuple[str, int]]) -> None:
    return None


class Consumer:
    """A consumer-group member over the input topics; offsets go into transactions."""

    def __init__(
        self,
        settings: KafkaSettings,
        topics: Sequence[str],
        *,
        on_revoked: Callable[[set[tuple[str, int]]], Awaitable[None]] = _nothing,
        on_assigned: Callable[[set[tuple[str, int]]], Awaitable[None]] = _nothing,
    ) -> None:
        self._settings = settings
        self._topics = list(topics)
        self._listener = _Listener(on_revoked, on_assigned)
        self._consumer = AIOKafkaConsumer(
            group_id=settings.group_id,
            client_id=settings.client_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            isolation_level="read_committed",
            request_timeout_ms=int(settings.request_timeout_s * 1000),
            session_timeout_ms=int(settings.session_timeout_s * 1000),
            heartbeat_interval_ms=int(settings.heartbeat_interval_s * 1000),
            max_partition_fetch_bytes=settings.max_partition_fetch_bytes,
            **client_options(settings),
        )

    async def start(self) -> None:
        await start_client(self._consumer, self._settings, "consumer")
        self._consumer.subscribe(self._topics, listener=self._listener)

    async def stop(self) -> None:
        await self._consumer.stop()

    def assignment(self) -> set[tuple[str, int]]:
        return {(tp.topic, tp.partition) for tp in self._consumer.assignment()}

    def partition_count(self, topic: str) -> int | None:
        parts = self._consumer.partitions_for_topic(topic)
        return len(parts) if parts else None

    async def poll(self, timeout_s: float, max_records: int = 500) -> list[Record]:
        try:
            batches = await self._consumer.getmany(
                timeout_ms=int(timeout_s * 1000), max_records=max_records
            )
        except KafkaError as exc:
            raise TransportError(f"poll failed: {exc!r}") from exc
        records = [
            Record(m.topic, m.partition, m.offset, m.key, m.value)
            for msgs in batches.values()
            for m in msgs
        ]
        records.sort(key=lambda r: (r.topic, r.partition, r.offset))
        return records

    async def position(self, topic: str, partition: int) -> int:
        """The offset of the next record to consume from a partition."""
        try:
            async with asyncio.timeout(self._settings.request_timeout_s):
                return int(await self._consumer.position(TopicPartition(topic, partition)))
        except (KafkaError, TimeoutError) as exc:
            raise TransportError(f"position of {topic}[{partition}]: {exc!r}") from exc

    async def commit(self, records: Sequence[Record]) -> None:
        """Commit the offsets just past the given records (outside a transaction)."""
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

    async def rewind_to_committed(self, only: set[tuple[str, int]] | None = None) -> None:
        """Seek assigned partitions back to their committed offsets (after a failure)."""
        try:
            for tp in self._consumer.assignment():
                if only is not None and (tp.topic, tp.partition) not in only:
                    continue
                offset = await self._consumer.committed(tp)
                if offset is None:
                    await self._consumer.seek_to_beginning(tp)
                else:
                    self._consumer.seek(tp, offset)
        except KafkaError as exc:
            raise TransportError(f"rewind failed: {exc!r}") from exc

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


class ShardProducer:
    """A transactional, idempotent producer owning one shard's transactional id.

    ``start`` runs ``InitProducerId``: the broker aborts a transaction the previous
    holder of the id left open and fences that holder from now on.
    """

    def __init__(self, settings: KafkaSettings, transactional_id: str) -> None:
        self._settings = settings
        self.transactional_id = transactional_id
        self._producer = AIOKafkaProducer(
            client_id=settings.client_id,
            transactional_id=transactional_id,
            transaction_timeout_ms=int(settings.transaction_timeout_s * 1000),
            enable_idempotence=True,
            acks="all",
            request_timeout_ms=int(settings.request_timeout_s * 1000),
            **client_options(settings),
        )

    async def start(self) -> None:
        await start_client(self._producer, self._settings, f"producer {self.transactional_id}")

    async def stop(self) -> None:
        with contextlib.suppress(Exception):
            await self._producer.stop()

    async def transact(
        self,
        messages: Sequence[tuple[str, bytes | None, bytes, list[tuple[str, bytes]]]],
        offsets: dict[tuple[str, int], tuple[int, str]],
    ) -> None:
        """Send ``(topic, key, value, headers)`` messages and commit ``offsets`` atomically."""
        p = self._producer
        try:
            async with asyncio.timeout(self._settings.request_timeout_s):
                await p.begin_transaction()
                try:
                    futures = [
                        await p.send(topic, value=value, key=key, headers=headers)
                        for topic, key, value, headers in messages
                    ]
                    if futures:
                        await asyncio.gather(*futures)
                    if offsets:
                        await p.send_offsets_to_transaction(
                            {TopicPartition(t, n): om for (t, n), om in offsets.items()},
                            self._settings.group_id,
                        )
                    await p.commit_transaction()
                except BaseException:
                    with contextlib.suppress(Exception):
                        await p.abort_transaction()
                    raise
        except ProducerFenced as exc:
            raise FencedError(f"{self.transactional_id} fenced: {exc!r}") from exc
        except (KafkaError, OSError, TimeoutError) as exc:
            raise TransportError(f"transaction {self.transactional_id} failed: {exc!r}") from exc


class Publisher:
    """A plain idempotent producer (tools and tests); ``publish`` waits for acks."""

    def __init__(self, settings: KafkaSettings) -> None:
        self._settings = settings
        self._producer = AIOKafkaProducer(
            client_id=settings.client_id,
            enable_idempotence=True,
            acks="all",
            request_timeout_ms=int(settings.request_timeout_s * 1000),
            **client_options(settings),
        )

    async def start(self) -> None:
        await start_client(self._producer, self._settings, "producer")

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
