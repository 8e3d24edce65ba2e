"""The gateway's state in PostgreSQL: Idempotency-Key memory and confirmations.

Shared by every gateway replica and kept over restarts, so a booking retried on
another replica or after a restart is still one booking, and a confirmation is
seen everywhere. The tables come with the dispatcher's migrations
(``dispatcher/migrations/003_gateway.sql``); the gateway applies them too.

The gateway also reads (never writes) the dispatcher's own tables: :meth:`open_rides`
returns the rides not yet finished, cancelled or rejected (``rides``), with their
request (``requests``), the offers sent (``outcomes``) and any confirmation, so a ride
requested before the replay window is still known after a restart.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any, Self

import asyncpg

from dispatcher.clock import to_datetime
from dispatcher.config import DatabaseSettings
from dispatcher.store import Store, StoreError, ssl_option
from producers.gateway.tracking import StoredRide
from schemas.codec import DecodeError, decode
from schemas.dispatch import RideOfferedV1
from schemas.passenger import RideRequestedV1

log = logging.getLogger(__name__)

#: The dispatcher's ride statuses that are not final (``dispatcher.state.RideStatus``).
OPEN_STATUSES = ("pending", "offered", "onboard")

_OPEN_RIDES = (
    "SELECT q.payload::text AS request, r.status, r.vehicle_id, r.data::text AS state,"
    " r.updated_at, c.confirmed_at,"
    " (SELECT coalesce(json_agg(o.payload ORDER BY o.created_at, o.event_id), '[]')::text"
    "  FROM outcomes o WHERE o.request_id = r.request_id AND o.kind = 'offered') AS offers"
    " FROM rides r JOIN requests q ON q.request_id = r.request_id"
    " LEFT JOIN gateway_confirmations c ON c.request_id = r.request_id"
    " WHERE r.status = ANY($1::text[])"
    " AND ($2::text IS NULL OR r.request_id = $2)"
    " AND ($3::text IS NULL OR q.payload->>'passenger_ref' = $3)"
    " AND ($4::timestamptz IS NULL OR (q.payload->>'occurred_at')::timestamptz < $4)"
)


def _at(value: object) -> dt.datetime | None:
    return to_datetime(float(value)) if isinstance(value, int | float) else None


def stored_ride(row: Any) -> StoredRide | None:
    """A ride row of :data:`_OPEN_RIDES`; None (logged) if its request is unreadable."""
    try:
        request = decode("requests", row["request"].encode())
    except DecodeError as exc:
        log.warning("stored request cannot be read: %s", exc.reason)
        return None
    if not isinstance(request, RideRequestedV1):
        return None
    offers = []
    for payload in json.loads(row["offers"]):
        try:
            offer = decode("notifications", json.dumps(payload).encode())
        except DecodeError as exc:
            log.warning("stored offer of %s cannot be read: %s", request.request_id, exc.reason)
            continue
        if isinstance(offer, RideOfferedV1):
            offers.append(offer)
    state = json.loads(row["state"])
    return StoredRide(
        request=request,
        status=row["status"],
        offers=offers,
        vehicle_id=row["vehicle_id"],
        pickup_eta=_at(state.get("pickup_eta")),
        dropoff_eta=_at(state.get("dropoff_eta")),
        picked_up_at=_at(state.get("picked_up_at")),
        updated_at=row["updated_at"],
        confirmed_at=row["confirmed_at"],
    )


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

    async def open_rides(
        self,
        request_id: str | None = None,
        passenger_ref: str | None = None,
        requested_before: dt.datetime | None = None,
    ) -> list[StoredRide]:
        """The dispatcher's rides that are still open (pending, offered, on board): all,
        or only ``request_id``, only ``passenger_ref``'s (as in the ride's request, the
        identity the gateway checks ownership by), only those requested (the request
        event's ``occurred_at``) before ``requested_before``. Read-only."""
        rows = await self._run(
            "fetch",
            _OPEN_RIDES,
            list(OPEN_STATUSES),
            request_id,
            passenger_ref,
            requested_before,
        )
        return [ride for row in rows if (ride := stored_ride(row)) is not None]
