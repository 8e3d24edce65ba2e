"""The gateway's state in PostgreSQL: Idempotency-Key memory and confirmations.

Shared by every gateway replica and kept over restarts, so a booking retried on
another replica or after a restart is still one booking, and a confirmation is
seen everywhere. The tables come with the dispatcher's migrations
(``dispatcher/migrations/003_gateway.sql``); the gateway applies them too.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any, Self

import asyncpg

from dispatcher.clock import to_datetime
from dispatcher.config import DatabaseSettings
from dispatcher.store import Store, StoreError, ssl_option


@dataclass(frozen=True, slots=True)
class Claim:
    """What an Idempotency-Key holds; ``mine`` if this call just took the key."""

    fingerprint: str
    request_id: str
    published: bool
    mine: bool


class GatewayStore:
    """asyncpg pool over the gateway tables."""

    def __init__(self, pool: asyncpg.Pool, timeout_s: float) -> None:
        self._pool = pool
        self._timeout = timeout_s

    @classmethod
    async def connect(cls, settings: DatabaseSettings) -> Self:
        """Connect (the DSN is never logged) and apply the migrations not yet applied."""
        extra: dict[str, Any] = {}
        if (password := settings.password_value()) is not None:
            extra["password"] = password
        if (ssl_arg := ssl_option(settings)) is not None:
            extra["ssl"] = ssl_arg
        try:
            pool = await asyncpg.create_pool(
                settings.dsn_value(),
                **extra,
                min_size=1,
                max_size=settings.pool_max,
                timeout=settings.timeout_s,
                command_timeout=settings.timeout_s,
                server_settings={
                    "search_path": settings.db_schema,
                    "application_name": "drt-gateway",
                },
            )
        except (OSError, TimeoutError, asyncpg.PostgresError) as exc:
            raise StoreError(f"cannot connect to PostgreSQL: {type(exc).__name__}") from exc
        try:
            await Store(pool, settings.db_schema, settings.timeout_s).migrate()
        except BaseException:
            await pool.close()
            raise
        return cls(pool, settings.timeout_s)

    async def close(self) -> None:
        await self._pool.close()

    async def _run(self, method: str, query: str, *args: object) -> Any:
        try:
            async with self._pool.acquire(timeout=self._timeout) as conn:
                return await getattr(conn, method)(query, *args)
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            raise StoreError(f"PostgreSQL failed: {type(exc).__name__}") from exc

    async def claim(
        self,
        caller: str,
        key: str,
        fingerprint: str,
        request_id: str,
        now: float,
        ttl_s: float,
    ) -> Claim:
        """Take ``key`` for this booking, or return what it already holds.

        Expired keys are forgotten first; of concurrent claims (any replica) one wins.
        """
        try:
            async with (
                self._pool.acquire(timeout=self._timeout) as conn,
                conn.transaction(),
            ):
                await conn.execute(
                    "DELETE FROM gateway_idempotency WHERE expires_at <= $1", to_datetime(now)
                )
                won = await conn.fetchval(
                    "INSERT INTO gateway_idempotency"
                    " (caller, key, fingerprint, request_id, expires_at)"
                    " VALUES ($1, $2, $3, $4, $5) ON CONFLICT (caller, key) DO NOTHING"
                    " RETURNING true",
                    caller,
                    key,
                    fingerprint,
                    request_id,
                    to_datetime(now + ttl_s),
                )
                if won:
                    return Claim(fingerprint, request_id, published=False, mine=True)
                row = await conn.fetchrow(
                    "SELECT fingerprint, request_id, published FROM gateway_idempotency"
                    " WHERE caller = $1 AND key = $2",
                    caller,
                    key,
                )
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            raise StoreError(f"PostgreSQL failed: {type(exc).__name__}") from exc
        assert row is not None  # the insert lost to a row that exists in this transaction
        return Claim(row["fingerprint"], row["request_id"], row["published"], mine=False)

    async def published(self, caller: str, key: str) -> None:
        """The booking of ``key`` is on the requests topic."""
        await self._run(
            "execute",
            "UPDATE gateway_idempotency SET published = true WHERE caller = $1 AND key = $2",
            caller,
            key,
        )

    async def release(self, caller: str, key: str) -> None:
        """Publishing failed: free ``key`` for the retry."""
        await self._run(
            "execute",
            "DELETE FROM gateway_idempotency WHERE caller = $1 AND key = $2 AND NOT published",
            caller,
            key,
        )

    async def confirm(self, request_id: str, at: dt.datetime) -> dt.datetime:
        """Record a confirmation; the time of the first one."""
        first: dt.datetime = await self._run(
            "fetchval",
            "INSERT INTO gateway_confirmations (request_id, confirmed_at) VALUES ($1, $2)"
            " ON CONFLICT (request_id) DO UPDATE SET request_id = EXCLUDED.request_id"
            " RETURNING confirmed_at",
            request_id,
            at,
        )
        return first

    async def confirmations(
        self, request_ids: Collection[str] | None = None, since: dt.datetime | None = None
    ) -> dict[str, dt.datetime]:
        """Confirmations of these requests (all when None), confirmed at or after ``since``."""
        rows = await self._run(
            "fetch",
            "SELECT request_id, confirmed_at FROM gateway_confirmations"
            " WHERE ($1::text[] IS NULL OR request_id = ANY($1::text[]))"
            " AND ($2::timestamptz IS NULL OR confirmed_at >= $2)",
            None if request_ids is None else list(request_ids),
            since,
        )
        return {r["request_id"]: r["confirmed_at"] for r in rows}
