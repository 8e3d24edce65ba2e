"""PostgreSQL persistence through asyncpg: state, outcomes, plans, an outbox.

One transaction per dispatcher cycle writes everything the cycle produced,
each row keyed by an event or request id (``ON CONFLICT DO NOTHING``), so a
replayed input never writes twice. Outgoing messages go to the ``outbox`` in the
same transaction, tagged with their shard; ``published_at`` is only a cache of
what Kafka committed (see ``dispatcher/service.py``): the truth is the outbox
watermark in the committed offsets' metadata, applied by :meth:`Store.mark_published_upto`.
"""

from __future__ import annotations

import contextlib
import json
import logging
import ssl
from collections.abc import AsyncIterator, Collection
from dataclasses import dataclass
from importlib import resources
from typing import Any, Self
from urllib.parse import urlsplit
from uuid import UUID

import asyncpg

from dispatcher.config import DatabaseSettings
from dispatcher.state import Ride, VehicleState
from schemas.codec import encode
from schemas.dispatch import DeadLetterV1, DriverPlanV1, RideOfferedV1, RideRejectedV1
from schemas.envelope import Event
from schemas.passenger import RideRequestedV1

log = logging.getLogger(__name__)


class StoreError(Exception):
    """The database is unreachable or failed; retry later."""

    retriable = True


@dataclass(frozen=True, slots=True)
class Processed:
    """An input message handled in this cycle (for deduplication on replay)."""

    event_id: UUID
    topic: str
    partition: int
    offset: int


@dataclass(frozen=True, slots=True)
class Outgoing:
    """A message to publish: topic, key and event."""

    topic: str
    key: bytes
    event: Event
    shard: int = 0


@dataclass(frozen=True, slots=True)
class OutboxRow:
    id: int
    topic: str
    key: bytes | None
    value: bytes
    shard: int = 0
    event_id: UUID | None = None


@dataclass(frozen=True, slots=True)
class RetentionReport:
    """Rows the retention job anonymised or deleted, per table."""

    anonymised: dict[str, int]
    deleted: dict[str, int]


def ssl_option(settings: DatabaseSettings) -> ssl.SSLContext | str | None:
    """asyncpg's ``ssl`` argument from ``sslmode`` and ``sslrootcert``, as libpq reads them.

    With a root certificate, ``require`` and ``verify-ca`` check the chain and
    ``verify-full`` (the default) also the host name; ``disable``, ``allow`` and
    ``prefer`` stay what they say (asyncpg cannot take a root file with a mode).
    """
    mode = settings.sslmode
    if settings.sslrootcert and mode not in ("disable", "allow", "prefer"):
        context = ssl.create_default_context(cafile=settings.sslrootcert)
        if mode in ("require", "verify-ca"):
            context.check_hostname = False
        return context
    return mode


def _reason(exc: BaseException, settings: DatabaseSettings) -> str:
    """Why a connect failed: the server's or the TLS layer's message (e.g. a rejected
    password or certificate), never the DSN or a password; else only the type."""
    name = type(exc).__name__
    if not isinstance(exc, asyncpg.PostgresError | ssl.SSLError):
        return name
    message = str(exc)
    secrets = [settings.dsn_value(), settings.password_value() or ""]
    with contextlib.suppress(ValueError):
        secrets.append(urlsplit(settings.dsn_value()).password or "")
    if any(s and s in message for s in secrets):
        return name
    return f"{name}: {message}"


def _text(value: str) -> str:
    """PostgreSQL text cannot hold NUL; bad input may carry one."""
    return value.replace("\x00", "\ufffd")


def _json(text: str) -> str:
    """jsonb cannot hold \\u0000 either."""
    return text.replace("\\u0000", "\\ufffd")


def _migrations() -> list[tuple[str, str]]:
    folder = resources.files("dispatcher") / "migrations"
    files = sorted((p.name, p.read_text()) for p in folder.iterdir() if p.name.endswith(".sql"))
    return files


class Store:
    """The dispatcher's repository."""

    def __init__(self, pool: asyncpg.Pool, schema: str, timeout: float = 10.0) -> None:
        self._pool = pool
        self.schema = schema
        self._timeout = timeout

    @classmethod
    async def connect(cls, settings: DatabaseSettings) -> Self:
        schema = settings.db_schema
        extra: dict[str, Any] = {}
        if (password := settings.password_value()) is not None:
            extra["password"] = password
        if (ssl_arg := ssl_option(settings)) is not None:
            extra["ssl"] = ssl_arg
        try:
            pool = await asyncpg.create_pool(
                settings.dsn_value(),
                **extra,
                min_size=settings.pool_min,
                max_size=settings.pool_max,
                timeout=settings.timeout_s,
                command_timeout=settings.timeout_s,
                server_settings={"search_path": schema, "application_name": "drt-dispatcher"},
            )
        except (OSError, TimeoutError, asyncpg.PostgresError) as exc:
            raise StoreError(f"cannot connect to PostgreSQL: {_reason(exc, settings)}") from exc
        store = cls(pool, schema, settings.timeout_s)
        try:
            await store.migrate()
        except BaseException:
            await pool.close()
            raise
        return store

    async def close(self) -> None:
        await self._pool.close()

    @contextlib.asynccontextmanager
    async def _acquire(self) -> AsyncIterator[Any]:
        """A pooled connection; database and network failures become :class:`StoreError`."""
        try:
            async with self._pool.acquire(timeout=self._timeout) as conn:
                yield conn
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            raise StoreError(f"PostgreSQL failed: {type(exc).__name__}: {exc}") from exc

    @property
    def pool_in_use(self) -> int:
        return self._pool.get_size() - self._pool.get_idle_size()

    async def ping(self) -> None:
        """Raise :class:`StoreError` unless the database answers."""
        async with self._acquire() as conn:
            await conn.fetchval("SELECT 1")

    async def migrate(self) -> list[str]:
        """Apply the SQL migrations not yet applied; return their names."""
        applied: list[str] = []
        async with self._acquire() as conn, conn.transaction():
            await conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{self.schema}"')
            # One dispatcher at a time migrates.
            await conn.execute("SELECT pg_advisory_xact_lock(804215)")
            await conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                " name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
            )
            done = {r["name"] for r in await conn.fetch("SELECT name FROM schema_migrations")}
            for name, sql in _migrations():
                if name in done:
                    continue
                await conn.execute(sql)
                await conn.execute("INSERT INTO schema_migrations (name) VALUES ($1)", name)
                applied.append(name)
        if applied:
            log.info("applied migrations %s", applied)
        return applied

    async def zones(self) -> set[str]:
        """Every zone that has a ride or a vehicle."""
        async with self._acquire() as conn:
            rows = await conn.fetch("SELECT zone FROM rides UNION SELECT zone FROM vehicles")
        return {r["zone"] for r in rows}

    async def load_state(
        self, zones: Collection[str] | None = None
    ) -> tuple[list[Ride], list[VehicleState]]:
        """Rides not final and vehicles, of ``zones`` (all when None), to rebuild state."""
        wanted = None if zones is None else list(zones)
        async with self._acquire() as conn:
            ride_rows = await conn.fetch(
                "SELECT data FROM rides WHERE status IN ('pending', 'offered', 'onboard')"
                " AND ($1::text[] IS NULL OR zone = ANY($1::text[]))",
                wanted,
            )
            vehicle_rows = await conn.fetch(
                "SELECT data FROM vehicles WHERE ($1::text[] IS NULL OR zone = ANY($1::text[]))",
                wanted,
            )
        rides = [Ride.from_dict(json.loads(r["data"])) for r in ride_rows]
        vehicles = [VehicleState.from_dict(json.loads(r["data"])) for r in vehicle_rows]
        return rides, vehicles

    async def seen(self, event_ids: list[UUID]) -> dict[UUID, tuple[str, int, int]]:
        """Which of these input events were already processed, and from where."""
        if not event_ids:
            return {}
        async with self._acquire() as conn:
            rows = await conn.fetch(
                'SELECT event_id, topic, partition, "offset" FROM processed_events'
                " WHERE event_id = ANY($1::uuid[])",
                event_ids,
            )
        return {r["event_id"]: (r["topic"], r["partition"], r["offset"]) for r in rows}

    async def commit_cycle(
        self,
        processed: list[Processed],
        requests: list[RideRequestedV1],
        rides: list[Ride],
        vehicles: list[VehicleState],
        outgoing: list[Outgoing],
    ) -> None:
        """Write one cycle's effects atomically, outbox included."""
        async with self._acquire() as conn, conn.transaction():
            if processed:
                await conn.executemany(
                    'INSERT INTO processed_events (event_id, topic, partition, "offset")'
                    " VALUES ($1, $2, $3, $4) ON CONFLICT (event_id) DO NOTHING",
                    [(p.event_id, p.topic, p.partition, p.offset) for p in processed],
                )
            if requests:
                await conn.executemany(
                    "INSERT INTO requests (request_id, event_id, zone, payload)"
                    " VALUES ($1, $2, $3, $4::jsonb) ON CONFLICT DO NOTHING",
                    [
                        (r.request_id, r.event_id, r.zone, _json(r.model_dump_json()))
                        for r in requests
                    ],
                )
            if rides:
                await conn.executemany(
                    "INSERT INTO rides (request_id, zone, status, vehicle_id, data, updated_at)"
                    " VALUES ($1, $2, $3, $4, $5::jsonb, now())"
                    " ON CONFLICT (request_id) DO UPDATE SET status = EXCLUDED.status,"
                    " vehicle_id = EXCLUDED.vehicle_id, data = EXCLUDED.data, updated_at = now()",
                    [
                        (
                            r.request_id,
                            r.zone,
                            r.status.value,
                            r.vehicle_id,
                            _json(json.dumps(r.to_dict())),
                        )
                        for r in rides
                    ],
                )
            if vehicles:
                await conn.executemany(
                    "INSERT INTO vehicles (vehicle_id, zone, active, lat, lon, data, updated_at)"
                    " VALUES ($1, $2, $3, $4, $5, $6::jsonb, now())"
                    " ON CONFLICT (vehicle_id) DO UPDATE SET zone = EXCLUDED.zone,"
                    " active = EXCLUDED.active, lat = EXCLUDED.lat, lon = EXCLUDED.lon,"
                    " data = EXCLUDED.data, updated_at = now()",
                    [
                        (
                            v.vehicle_id,
                            v.zone,
                            v.active,
                            v.position.lat,
                            v.position.lon,
                            _json(json.dumps(v.to_dict())),
                        )
                        for v in vehicles
                    ],
                )
            await self._write_outputs(conn, outgoing)

    async def _write_outputs(self, conn: Any, outgoing: list[Outgoing]) -> None:
        outcomes, plans, letters = [], [], []
        for o in outgoing:
            e = o.event
            if isinstance(e, RideOfferedV1 | RideRejectedV1):
                kind = "offered" if isinstance(e, RideOfferedV1) else "rejected"
                reason = e.reason.value if isinstance(e, RideRejectedV1) else None
                vehicle = e.vehicle_id if isinstance(e, RideOfferedV1) else None
                outcomes.append(
                    (e.event_id, e.request_id, kind, reason, vehicle, _json(encode(e).decode()))
                )
            elif isinstance(e, DriverPlanV1):
                plans.append((e.vehicle_id, e.plan_version, e.event_id, _json(encode(e).decode())))
            elif isinstance(e, DeadLetterV1):
                letters.append(
                    (
                        e.event_id,
                        _text(e.original_topic),
                        e.original_partition,
                        e.original_offset,
                        e.error_type,
                        _text(e.reason),
                    )
                )
        if outcomes:
            await conn.executemany(
                "INSERT INTO outcomes (event_id, request_id, kind, reason, vehicle_id, payload)"
                " VALUES ($1, $2, $3, $4, $5, $6::jsonb) ON CONFLICT DO NOTHING",
                outcomes,
            )
        if plans:
            await conn.executemany(
                "INSERT INTO driver_plans (vehicle_id, plan_version, event_id, payload)"
                " VALUES ($1, $2, $3, $4::jsonb) ON CONFLICT DO NOTHING",
                plans,
            )
        if letters:
            await conn.executemany(
                "INSERT INTO dead_letters (event_id, original_topic, original_partition,"
                " original_offset, error_type, reason) VALUES ($1, $2, $3, $4, $5, $6)"
                " ON CONFLICT DO NOTHING",
                letters,
            )
        if outgoing:
            await conn.executemany(
                "INSERT INTO outbox (event_id, topic, key, value, shard)"
                " VALUES ($1, $2, $3, $4, $5) ON CONFLICT (event_id) DO NOTHING",
                [(o.event.event_id, o.topic, o.key, encode(o.event), o.shard) for o in outgoing],
            )

    async def unpublished(
        self, shards: Collection[int] | None = None, limit: int = 1000
    ) -> list[OutboxRow]:
        """Outbox rows not yet known to be in Kafka, oldest first, of ``shards``."""
        wanted = None if shards is None else list(shards)
        async with self._acquire() as conn:
            rows = await conn.fetch(
                "SELECT id, topic, key, value, shard, event_id FROM outbox"
                " WHERE published_at IS NULL AND ($2::int[] IS NULL OR shard = ANY($2::int[]))"
                " ORDER BY id LIMIT $1",
                limit,
                wanted,
            )
        return [
            OutboxRow(r["id"], r["topic"], r["key"], r["value"], r["shard"], r["event_id"])
            for r in rows
        ]

    async def mark_published(self, ids: list[int]) -> None:
        if not ids:
            return
        async with self._acquire() as conn:
            await conn.execute(
                "UPDATE outbox SET published_at = now() WHERE id = ANY($1::bigint[])", ids
            )

    async def mark_published_upto(self, shard: int, watermark: int) -> int:
        """Mark a shard's rows up to ``watermark`` published (Kafka committed them)."""
        async with self._acquire() as conn:
            status = await conn.execute(
                "UPDATE outbox SET published_at = now()"
                " WHERE shard = $1 AND id <= $2 AND published_at IS NULL",
                shard,
                watermark,
            )
        return int(status.split()[-1])

    async def apply_retention(self, days: int) -> RetentionReport:
        """Anonymise or delete personal data older than ``days`` (see dispatcher.retention)."""
        from dispatcher.retention import anonymise  # noqa: PLC0415

        final = "status IN ('completed', 'rejected', 'cancelled', 'no_show')"
        cutoff = "now() - make_interval(days => $1::int)"
        anonymised: dict[str, int] = {}
        deleted: dict[str, int] = {}
        targets = {
            "rides": (
                "request_id",
                "data",
                "SELECT request_id AS k, data AS doc FROM rides WHERE "  # noqa: S608 - constant identifiers
                + final
                + " AND updated_at < "
                + cutoff
                + " AND anonymised_at IS NULL",
            ),
            "requests": (
                "request_id",
                "payload",
                "SELECT q.request_id AS k, q.payload AS doc FROM requests q"  # noqa: S608 - constant identifiers
                " JOIN rides r USING (request_id) WHERE r."
                + final
                + " AND q.received_at < "
                + cutoff
                + " AND q.anonymised_at IS NULL",
            ),
            "outcomes": (
                "event_id",
                "payload",
                "SELECT event_id AS k, payload AS doc FROM outcomes WHERE created_at < "  # noqa: S608 - constant identifiers
                + cutoff
                + " AND anonymised_at IS NULL",
            ),
        }
        async with self._acquire() as conn, conn.transaction():
            for table, (key, column, select) in targets.items():
                rows = await conn.fetch(select, days)
                await conn.executemany(
                    "UPDATE " + table + " SET " + column + " = $2::jsonb,"  # noqa: S608 - constant identifiers
                    " anonymised_at = now() WHERE " + key + " = $1",
                    [(r["k"], json.dumps(anonymise(json.loads(r["doc"])))) for r in rows],
                )
                anonymised[table] = len(rows)
            for table, where in (
                ("driver_plans", "created_at < " + cutoff),
                ("dead_letters", "created_at < " + cutoff),
                ("outbox", "published_at IS NOT NULL AND created_at < " + cutoff),
                ("gateway_confirmations", "confirmed_at < " + cutoff),
            ):
                status = await conn.execute("DELETE FROM " + table + " WHERE " + where, days)  # noqa: S608 - constant identifiers
                deleted[table] = int(status.split()[-1])
        return RetentionReport(anonymised, deleted)

    async def fetch(self, query: str, *args: object) -> list[dict[str, Any]]:
        """Read-only helper for tools and tests."""
        async with self._acquire() as conn:
            return [dict(r) for r in await conn.fetch(query, *args)]
