"""Fixtures for tests against the real Kafka broker and PostgreSQL server.

Start both with ``bash deploy/test.sh`` (or ``deploy/kafka/start.sh`` and
``deploy/postgres/start.sh``). The session fixtures wait until a service answers;
when it does not, they fail under CI and skip otherwise, so a laptop without
the services still runs the unit tests.

Connection settings come from the same variables the dispatcher reads:
``DRT_KAFKA__BOOTSTRAP_SERVERS`` and ``DRT_DATABASE__DSN``.
"""

from __future__ import annotations

import asyncio
import os
import socket
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import NamedTuple, TypeVar
from urllib.parse import urlsplit

import asyncpg
import pytest
from aiokafka.admin import AIOKafkaAdminClient

DEFAULT_BOOTSTRAP = "127.0.0.1:9092"
DEFAULT_DSN = "postgresql://drt:drt@127.0.0.1:5433/drt"
# How long to wait for a service that is starting; one that refuses connections
# outright outside CI is skipped at once.
READY_TIMEOUT_S = float(os.environ.get("DRT_TEST_SERVICE_TIMEOUT", "60"))

T = TypeVar("T")


class PgSchema(NamedTuple):
    """A fresh schema for one test; unpacks as ``dsn, schema``."""

    dsn: str
    schema: str


def in_ci() -> bool:
    """Whether we run under CI, where a missing service must fail the run."""
    return os.environ.get("CI", "").lower() not in ("", "0", "false", "no")


def _run_async(probe: Callable[[], Awaitable[T]]) -> T:
    """Run ``probe`` on a private event loop in a worker thread.

    Session fixtures stay synchronous this way and never touch the loops that
    pytest-asyncio manages for the tests.
    """

    async def main() -> T:
        return await probe()

    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, main()).result()


def _first_address(bootstrap: str) -> tuple[str, int]:
    host, _, port = bootstrap.split(",", maxsplit=1)[0].strip().rpartition(":")
    return host.strip("[]") or "127.0.0.1", int(port)


def _tcp_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=2):
            return True
    except OSError:
        return False


def _wait_ready(name: str, address: tuple[str, int], probe: Callable[[], None]) -> None:
    """Call ``probe`` until it passes; fail under CI, skip otherwise."""
    hint = "start it with `bash deploy/test.sh` (or deploy/*/start.sh)"
    if not in_ci() and not _tcp_open(*address):
        pytest.skip(f"{name} not reachable at {address[0]}:{address[1]}; {hint}")
    deadline = time.monotonic() + READY_TIMEOUT_S
    while True:
        try:
            probe()
        except Exception as exc:  # noqa: BLE001 - any failure means "not ready yet"
            if time.monotonic() >= deadline:
                message = (
                    f"{name} at {address[0]}:{address[1]} not ready after "
                    f"{READY_TIMEOUT_S:.0f}s: {exc!r}; {hint}"
                )
                if in_ci():
                    pytest.fail(message)
                pytest.skip(message)
            time.sleep(1)
        else:
            return


@pytest.fixture(scope="session")
def kafka_bootstrap() -> str:
    """Bootstrap servers of a Kafka broker that answers metadata requests."""
    bootstrap = os.environ.get("DRT_KAFKA__BOOTSTRAP_SERVERS", DEFAULT_BOOTSTRAP)

    async def probe() -> None:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=5000)
        await admin.start()
        try:
            await admin.list_topics()
        finally:
            await admin.close()

    _wait_ready("Kafka", _first_address(bootstrap), lambda: _run_async(probe))
    return bootstrap


@pytest.fixture(scope="session")
def pg_dsn() -> str:
    """DSN of a PostgreSQL server that accepts the test role's connections."""
    dsn = os.environ.get("DRT_DATABASE__DSN", DEFAULT_DSN)

    async def probe() -> None:
        conn = await asyncpg.connect(dsn, timeout=5)
        try:
            await conn.fetchval("SELECT 1")
        finally:
            await conn.close()

    parts = urlsplit(dsn)
    address = (parts.hostname or "127.0.0.1", parts.port or 5432)
    _wait_ready("PostgreSQL", address, lambda: _run_async(probe))
    return dsn


@pytest.fixture
def topic_prefix() -> str:
    """A unique prefix for topic names and group ids: ``f"{topic_prefix}.requests"``."""
    return f"test-{uuid.uuid4().hex[:16]}"


@pytest.fixture
async def pg_schema(pg_dsn: str) -> AsyncIterator[PgSchema]:
    """A fresh, empty schema, dropped with its contents after the test.

    Connect with ``server_settings={"search_path": schema}`` to work inside it.
    """
    schema = f"test_{uuid.uuid4().hex[:16]}"
    conn = await asyncpg.connect(pg_dsn, timeout=10)
    try:
        await conn.execute(f'CREATE SCHEMA "{schema}"')
    finally:
        await conn.close()
    try:
        yield PgSchema(pg_dsn, schema)
    finally:
        conn = await asyncpg.connect(pg_dsn, timeout=10)
        try:
            await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        finally:
            await conn.close()
