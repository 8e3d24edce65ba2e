"""Smoke tests for the services started by ``deploy/``: the broker and the database
do what the dispatcher relies on (topics, transactions, idempotent inserts)."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

TIMEOUT_S = 30


async def create_topic(bootstrap: str, name: str, partitions: int = 1) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1)])
    finally:
        await admin.close()


async def consume(
    bootstrap: str, topic: str, group: str, count: int, **config: object
) -> list[tuple[bytes | None, bytes | None]]:
    """Read ``count`` messages from the start of ``topic``."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=group,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        **config,
    )
    await consumer.start()
    try:
        seen: list[tuple[bytes | None, bytes | None]] = []
        async with asyncio.timeout(TIMEOUT_S):
            async for message in consumer:
                seen.append((message.key, message.value))
                if len(seen) == count:
                    break
        return seen
    finally:
        await consumer.stop()


@pytest.mark.kafka
async def test_topic_produce_consume(kafka_bootstrap: str, topic_prefix: str) -> None:
    """A created topic takes a message from an idempotent producer and gives it back."""
    topic = f"{topic_prefix}.plain"
    await create_topic(kafka_bootstrap, topic, partitions=3)
    producer = AIOKafkaProducer(
        bootstrap_servers=kafka_bootstrap, enable_idempotence=True, acks="all"
    )
    await producer.start()
    try:
        await producer.send_and_wait(topic, b"ride-1", key=b"rider-1")
    finally:
        await producer.stop()

    seen = await consume(kafka_bootstrap, topic, f"{topic_prefix}.group", 1)
    assert seen == [(b"rider-1", b"ride-1")]


@pytest.mark.kafka
async def test_create_existing_topic_fails(kafka_bootstrap: str, topic_prefix: str) -> None:
    """Creating a topic twice is an error the dispatcher can tell apart."""
    topic = f"{topic_prefix}.twice"
    await create_topic(kafka_bootstrap, topic)
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:
        response = await admin.create_topics(
            [NewTopic(topic, num_partitions=1, replication_factor=1)]
        )
    except TopicAlreadyExistsError:
        return
    finally:
        await admin.close()
    # aiokafka versions differ: some raise, some return the error code.
    codes = [error[1] for error in response.topic_errors]
    assert codes == [TopicAlreadyExistsError.errno]


@pytest.mark.kafka
async def test_transactions_read_committed(kafka_bootstrap: str, topic_prefix: str) -> None:
    """A read_committed consumer sees committed messages and never aborted ones."""
    topic = f"{topic_prefix}.tx"
    await create_topic(kafka_bootstrap, topic)
    producer = AIOKafkaProducer(
        bootstrap_servers=kafka_bootstrap,
        transactional_id=f"{topic_prefix}.tx-producer",
        enable_idempotence=True,
    )
    await producer.start()
    try:
        async with producer.transaction():
            await producer.send_and_wait(topic, b"committed-1")

        await producer.begin_transaction()
        await producer.send_and_wait(topic, b"aborted")
        await producer.abort_transaction()

        async with producer.transaction():
            await producer.send_and_wait(topic, b"committed-2")
    finally:
        await producer.stop()

    committed = await consume(
        kafka_bootstrap,
        topic,
        f"{topic_prefix}.committed",
        2,
        isolation_level="read_committed",
    )
    assert [value for _, value in committed] == [b"committed-1", b"committed-2"]

    # read_uncommitted sees the aborted record too, so the abort really wrote it.
    everything = await consume(
        kafka_bootstrap,
        topic,
        f"{topic_prefix}.uncommitted",
        3,
        isolation_level="read_uncommitted",
    )
    assert [value for _, value in everything] == [
        b"committed-1",
        b"aborted",
        b"committed-2",
    ]


@pytest.mark.postgres
async def test_schema_is_fresh_and_isolated(pg_schema: tuple[str, str]) -> None:
    """The fixture's schema exists, is empty and is the connection's search path."""
    dsn, schema = pg_schema
    conn = await asyncpg.connect(dsn, server_settings={"search_path": schema})
    try:
        assert await conn.fetchval("SELECT current_schema()") == schema
        tables = await conn.fetchval(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = $1",
            schema,
        )
        assert tables == 0
    finally:
        await conn.close()


@pytest.mark.postgres
async def test_insert_on_conflict_is_idempotent(pg_schema: tuple[str, str]) -> None:
    """Writing the same event twice keeps one row, as store.py relies on."""
    dsn, schema = pg_schema
    conn = await asyncpg.connect(dsn, server_settings={"search_path": schema})
    try:
        await conn.execute(
            """
            CREATE TABLE events (
                event_id uuid PRIMARY KEY,
                type text NOT NULL,
                payload jsonb NOT NULL
            )
            """
        )
        event_id = uuid.uuid4()
        insert = """
            INSERT INTO events (event_id, type, payload) VALUES ($1, $2, $3::jsonb)
            ON CONFLICT (event_id) DO NOTHING
        """
        async with conn.transaction():
            first = await conn.execute(insert, event_id, "ride.requested", '{"n": 1}')
        async with conn.transaction():
            second = await conn.execute(insert, event_id, "ride.requested", '{"n": 2}')
        assert (first, second) == ("INSERT 0 1", "INSERT 0 0")
        rows = await conn.fetch("SELECT event_id, payload FROM events")
        assert [(row["event_id"], row["payload"]) for row in rows] == [(event_id, '{"n": 1}')]
    finally:
        await conn.close()
