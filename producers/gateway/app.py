"""The passenger gateway: book, see the offer, confirm/decline, cancel, follow live.

Bookings become ``RideRequestedV1`` on the requests topic (key: zone), cancellations
and declined offers ``RideCancelledV1``. The gateway reads the requests,
notifications, driver-plans and vehicle-events topics into a
:class:`~producers.gateway.tracking.RideBook`, at start-up from
``DRT_GATEWAY__REPLAY_HOURS`` ago (by record timestamp, not from the beginning), so any
replica can answer for any ride of that window. Rides still open but requested earlier
(pre-bookings) are loaded from the dispatcher's tables in PostgreSQL before the topics
are read, and a ride the book does not know is looked up there for its owner.
Idempotency-Keys and confirmations live in PostgreSQL (:mod:`producers.gateway.store`),
shared by the replicas and kept over restarts. Phone bookings by an operator use the
same endpoints with an operator token.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import logging
import time
import uuid
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Annotated, Any, Self

from fastapi import FastAPI, Header, HTTPException, Query, Request, Response, status
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError, model_validator

from dispatcher.clock import SystemClock, to_datetime
from dispatcher.config import Settings
from dispatcher.kafka import Publisher
from dispatcher.store import StoreError
from producers.gateway.auth import Caller, Principal, Role, TokenSigner
from producers.gateway.feed import Hub, KafkaFront, TopicReader, sse
from producers.gateway.stops import StopIndex
from producers.gateway.store import GatewayStore
from producers.gateway.tracking import DECLINE_REASON, RideBook, RideRecord
from schemas.envelope import Event, Identifier, Latitude, Longitude, Place
from schemas.passenger import RideCancelledV1, RideRequestedV1, TimeType

log = logging.getLogger(__name__)

READ_ROLES = ("requests", "notifications", "driver_plans", "vehicle_events")
KEEPALIVE_S = 15.0
#: A retry whose key another call (here or on another replica) holds waits this long
#: for that booking to be read before it publishes it again (same ids: a redelivery).
IN_FLIGHT_WAIT_S = 5.0
#: Start-up loads the open rides requested before the replay window plus this.
LOAD_MARGIN = timedelta(minutes=10)
_IDEMPOTENCY_NS = uuid.UUID("6f1c2a8e-4d0b-4c51-9a57-2b8f1e6d9c30")


# -- API models ------------------------------------------------------------------------


class PlaceIn(BaseModel):
    """A place given either as a virtual stop id or as coordinates."""

    model_config = ConfigDict(extra="forbid")

    stop_id: Identifier | None = Field(None, description="A virtual stop from /stops/nearby.")
    lat: Latitude | None = None
    lon: Longitude | None = None
    name: Annotated[str, Field(max_length=200)] | None = None

    @model_validator(mode="after")
    def _one_way(self) -> Self:
        coords = (self.lat is not None, self.lon is not None)
        if self.stop_id is None and coords != (True, True):
            raise ValueError("give either stop_id or both lat and lon")
        if self.stop_id is not None and any(coords):
            raise ValueError("give either stop_id or lat/lon, not both")
        return self


class BookingIn(BaseModel):
    """A ride booking; without ``requested_time`` the ride is wanted now."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "origin": {"stop_id": "vs-buedelsdorf-01"},
                    "destination": {"lat": 54.302262, "lon": 9.671134},
                    "seats": 1,
                }
            ]
        },
    )

    origin: PlaceIn
    destination: PlaceIn
    seats: Annotated[int, Field(ge=0, le=8)] = 1
    wheelchairs: Annotated[int, Field(ge=0, le=4)] = 0
    requested_time: AwareDatetime | None = Field(
        None, description="Pre-booking: desired pickup (departure) or latest arrival."
    )
    time_type: TimeType = TimeType.DEPARTURE
    passenger_ref: Identifier | None = Field(
        None, description="Operators only: the phone caller's passenger reference."
    )

    @model_validator(mode="after")
    def _check(self) -> Self:
        if self.seats + self.wheelchairs < 1:
            raise ValueError("a ride needs at least one seat or wheelchair place")
        if self.time_type is TimeType.ARRIVAL and self.requested_time is None:
            raise ValueError("an arrival-based booking needs requested_time")
        return self


class CancelIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: Annotated[str, Field(max_length=500)] | None = None


class UpdateOut(BaseModel):
    seq: int
    kind: str = Field(description="requested, offered, vehicle_assigned, eta, ...")
    at: datetime
    data: dict[str, Any]


class RideOut(BaseModel):
    request_id: str
    passenger_ref: str
    status: str = Field(
        description="requested, offered, confirmed, boarded, completed, rejected, "
        "cancelled, declined or no_show"
    )
    origin: Place
    destination: Place
    seats: int
    wheelchairs: int
    requested_time: datetime | None
    time_type: str
    vehicle_id: str | None
    offer: dict[str, Any] | None
    pickup_eta: datetime | None
    dropoff_eta: datetime | None
    reason: str | None
    updates: list[UpdateOut]

    @classmethod
    def of(cls, r: RideRecord) -> RideOut:
        return cls(
            request_id=r.request_id,
            passenger_ref=r.passenger_ref,
            status=r.status,
            origin=r.origin,
            destination=r.destination,
            seats=r.seats,
            wheelchairs=r.wheelchairs,
            requested_time=r.requested_time,
            time_type=r.time_type,
            vehicle_id=r.vehicle_id,
            offer=r.offer,
            pickup_eta=r.pickup_eta,
            dropoff_eta=r.dropoff_eta,
            reason=r.reason,
            updates=[UpdateOut(seq=u.seq, kind=u.kind, at=u.at, data=u.data) for u in r.updates],
        )


class TokenOut(BaseModel):
    token: str
    role: Role
    subject: str
    expires_at: int


class OperatorLoginIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    username: Identifier
    password: Annotated[str, Field(max_length=200)]


class StopOut(BaseModel):
    id: str
    name: str
    lat: float
    lon: float
    hub: bool
    distance_m: int


def _field_error(loc: list[str | int], msg: str, kind: str = "value_error") -> HTTPException:
    """A 422 shaped like FastAPI's own validation errors."""
    return HTTPException(
        status.HTTP_422_UNPROCESSABLE_CONTENT, [{"loc": loc, "msg": msg, "type": kind}]
    )


# -- the service ------------------------------------------------------------------------


class Gateway(KafkaFront):
    """Kafka in and out, the ride book, and PostgreSQL for keys and confirmations."""

    def __init__(self, settings: Settings, clock: SystemClock | None = None) -> None:
        self.settings = settings
        self.clock = clock or SystemClock()
        kafka = settings.kafka.model_copy(update={"client_id": f"{settings.kafka.client_id}-gw"})
        self.kafka = kafka
        self.ledger = RideBook()
        self.hub = Hub()
        self.stops = StopIndex.for_scenario(settings.gateway.scenario)
        self.signer = TokenSigner(
            settings.auth.token_secret.get_secret_value().encode(), settings.auth.token_ttl_s
        )
        self._publisher = Publisher(kafka)
        self._reader = TopicReader(
            kafka, READ_ROLES, f"{kafka.client_id}-reader", since=self.replay_from
        )
        self.db: GatewayStore | None = None
        self.stopping = asyncio.Event()

    def replay_from(self) -> float:
        """Start-up reads the topics from here (POSIX seconds)."""
        return self.clock.now() - self.settings.gateway.replay_hours * 3600

    @contextlib.asynccontextmanager
    async def database(self) -> AsyncIterator[GatewayStore]:
        """PostgreSQL for the block; the confirmations of the replay window and the open
        rides requested before it loaded (before the topics are read: whatever the
        tables do not show yet comes after the replay start)."""
        db = await GatewayStore.connect(self.settings.database)
        try:
            since = to_datetime(self.replay_from())
            for request_id, at in (await db.confirmations(since=since)).items():
                self.ledger.remember_confirmation(request_id, at)
            # Rides requested in the window are rebuilt from the topics, with their
            # whole history; the margin covers clocks of replicas that differ a little
            # (a ride both loaded and replayed is fine: replayed events it reflects
            # change nothing).
            stored = await db.open_rides(requested_before=since + LOAD_MARGIN)
            loaded = sum(self.ledger.restore(ride) for ride in stored)
            log.info("loaded %d open rides from the dispatcher's tables", loaded)
            self.db = db
            yield db
        finally:
            self.db = None
            await db.close()

    def store(self) -> GatewayStore:
        if self.db is None:
            raise StoreError("the gateway's database is not connected")
        return self.db

    async def sync_confirmations(self, rides: list[RideRecord]) -> None:
        """Take in confirmations other replicas recorded for these offered rides."""
        wanted = [
            r.request_id
            for r in rides
            if r.status == "offered" and r.request_id not in self.ledger.confirmations
        ]
        if not wanted:
            return
        for request_id, at in (await self.store().confirmations(wanted)).items():
            if self.ledger.remember_confirmation(request_id, at):
                self.hub.notify(request_id)

    async def _read_here(self, request_id: str, wait_s: float) -> bool:
        """Whether the book has ``request_id``, waiting up to ``wait_s`` for it."""
        deadline = time.monotonic() + wait_s
        while request_id not in self.ledger.rides:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            await self.hub.wait(request_id, left)
        return True

    def apply(self, _role: str, event: Event) -> None:
        for request_id in self.ledger.apply(event):
            self.hub.notify(request_id)

    async def publish(self, event: Event) -> None:
        await self.publish_to("requests", event)

    # -- bookings ---------------------------------------------------------------------

    def _place(self, p: PlaceIn, loc: str) -> Place:
        if p.stop_id is not None:
            stop = self.stops.get(p.stop_id)
            if stop is None:
                raise _field_error(["body", loc, "stop_id"], f"unknown stop {p.stop_id!r}")
            return Place(lat=stop.lat, lon=stop.lon, stop_id=stop.id, name=stop.name)
        assert p.lat is not None
        assert p.lon is not None
        area = self.settings.dispatch.service_area
        if area is not None:
            lat_min, lat_max, lon_min, lon_max = area
            if not (lat_min <= p.lat <= lat_max and lon_min <= p.lon <= lon_max):
                raise _field_error(["body", loc], "outside the service area")
        return Place(lat=p.lat, lon=p.lon, name=p.name)

    def _request_event(
        self, body: BookingIn, caller: Principal, request_id: str, event_id: uuid.UUID
    ) -> RideRequestedV1:
        if caller.role is Role.PASSENGER:
            if body.passenger_ref not in (None, caller.subject):
                raise HTTPException(status.HTTP_403_FORBIDDEN, "passengers book for themselves")
            passenger_ref = caller.subject
        else:
            passenger_ref = body.passenger_ref or f"phone-{uuid.uuid4().hex[:16]}"
        origin = self._place(body.origin, "origin")
        destination = self._place(body.destination, "destination")
        try:
            return RideRequestedV1(
                event_id=event_id,
                occurred_at=to_datetime(self.clock.now()),
                source=f"gateway:{caller.role.value}",
                request_id=request_id,
                passenger_ref=passenger_ref,
                zone=self.settings.dispatch.zone,
                origin=origin,
                destination=destination,
                seats=body.seats,
                wheelchairs=body.wheelchairs,
                time_type=body.time_type,
                requested_time=body.requested_time,
            )
        except ValidationError as exc:
            errors = exc.errors(include_url=False, include_input=False)
            raise _field_error(["body"], "; ".join(e["msg"] for e in errors)) from None

    async def place_booking(
        self, body: BookingIn, caller: Principal, key: str | None
    ) -> tuple[str, bool]:
        """Publish a booking; ``(request_id, replayed)``. Safe to retry with the same key,
        on any replica and after a restart: the key is claimed in PostgreSQL."""
        if key is None:
            request_id = f"g-{uuid.uuid4().hex[:24]}"
            await self.publish(self._request_event(body, caller, request_id, uuid.uuid4()))
            return request_id, False
        fingerprint = hashlib.sha256(body.model_dump_json().encode()).hexdigest()
        scope = f"{caller.role.value}:{caller.subject}:{key}"
        # Derived ids make a second publication of one booking a redelivery: the
        # dispatcher ignores an event id it has, and the book already has the request.
        request_id = f"g-{uuid.uuid5(_IDEMPOTENCY_NS, scope).hex[:24]}"
        event = self._request_event(body, caller, request_id, uuid.uuid5(_IDEMPOTENCY_NS, scope))
        db, who = self.store(), f"{caller.role.value}:{caller.subject}"
        claim = await db.claim(
            who,
            key,
            fingerprint,
            request_id,
            self.clock.now(),
            self.settings.gateway.idempotency_ttl_s,
        )
        if not hmac.compare_digest(claim.fingerprint, fingerprint):
            raise _field_error(
                ["header", "Idempotency-Key"],
                "this Idempotency-Key was used for a different booking",
            )
        if not claim.mine and (
            await self.load_ride(claim.request_id, caller)
            or await self._read_here(claim.request_id, IN_FLIGHT_WAIT_S)
        ):
            return claim.request_id, True
        try:
            await self.publish(event)
        except BaseException:
            if claim.mine:
                with contextlib.suppress(StoreError):
                    await db.release(who, key)
            raise
        try:
            await db.published(who, key)
        except StoreError as exc:  # the booking is out; the key still holds it
            log.warning("cannot mark key of %s published: %s", request_id, exc)
        return request_id, not claim.mine

    async def load_ride(self, request_id: str, caller: Principal) -> bool:
        """A ride the book does not know, from the dispatcher's tables if it is open and
        the caller's (operators: anyone's); whether the book has it now."""
        if request_id in self.ledger.rides:
            return True
        if caller.role not in (Role.PASSENGER, Role.OPERATOR) or len(request_id) > 200:
            return False
        owner = caller.subject if caller.role is Role.PASSENGER else None
        for stored in await self.store().open_rides(request_id, owner):
            if self.ledger.restore(stored):
                log.info("loaded ride %s from the dispatcher's tables", request_id)
                self.hub.notify(request_id)
        return request_id in self.ledger.rides

    async def ride_for(self, request_id: str, caller: Principal) -> RideRecord:
        """The ride, if the caller may see it; otherwise 404 (existence is not revealed)."""
        await self.load_ride(request_id, caller)
        ride = self.ledger.rides.get(request_id)
        allowed = ride is not None and (
            caller.role is Role.OPERATOR
            or (caller.role is Role.PASSENGER and ride.passenger_ref == caller.subject)
        )
        if ride is None or not allowed:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no ride {request_id!r}")
        return ride

    async def cancel(self, ride: RideRecord, reason: str | None) -> None:
        await self.publish(
            RideCancelledV1(
                occurred_at=to_datetime(self.clock.now()),
                source="gateway",
                request_id=ride.request_id,
                zone=ride.zone,
                reason=reason,
            )
        )


def _not_driver(caller: Principal) -> None:
    if caller.role is Role.DRIVER:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "drivers use the driver app")


def create_app(settings: Settings, clock: SystemClock | None = None) -> FastAPI:
    """The gateway's FastAPI app; Kafka starts and stops with the app's lifespan."""
    gateway = Gateway(settings, clock)

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        async with gateway.database(), gateway.running():
            yield

    app = FastAPI(
        title="drt-dispatch passenger gateway",
        version="1",
        description="Book demand-responsive rides in the Rendsburg region and follow them live. "
        "Authenticate with a bearer token from /auth/passenger or /auth/operator.",
        lifespan=lifespan,
    )
    app.state.signer = gateway.signer
    app.state.clock = gateway.clock.now
    app.state.gateway = gateway

    @app.exception_handler(StoreError)
    async def database_down(_: Request, exc: StoreError) -> JSONResponse:
        log.warning("gateway database: %s", exc)
        return JSONResponse(
            {"detail": "the booking database is unavailable; retry with the same key"},
            status_code=status.HTTP_503_SERVICE_UNAVAILABLE,
            headers={"Retry-After": "5"},
        )

    @app.get("/health", tags=["service"])
    async def health() -> dict[str, Any]:
        return {"status": "ok", "rides": len(gateway.ledger.rides)}

    @app.post("/auth/passenger", tags=["auth"], status_code=status.HTTP_201_CREATED)
    async def passenger_login() -> TokenOut:
        """A new pseudonymous passenger and its token (the app keeps the token)."""
        ref = f"p-{uuid.uuid4().hex[:16]}"
        token = gateway.signer.issue(Role.PASSENGER, ref, gateway.clock.now())
        principal = gateway.signer.verify(token, gateway.clock.now())
        return TokenOut(
            token=token, role=Role.PASSENGER, subject=ref, expires_at=principal.expires_at
        )

    @app.post("/auth/operator", tags=["auth"])
    async def operator_login(body: OperatorLoginIn) -> TokenOut:
        """A phone-desk operator's token."""
        expected = settings.auth.operator_password.get_secret_value()
        if not hmac.compare_digest(body.password.encode(), expected.encode()):
            raise HTTPException(status.HTTP_401_UNAUTHORIZED, "wrong user name or password")
        token = gateway.signer.issue(Role.OPERATOR, body.username, gateway.clock.now())
        principal = gateway.signer.verify(token, gateway.clock.now())
        return TokenOut(
            token=token, role=Role.OPERATOR, subject=body.username, expires_at=principal.expires_at
        )

    @app.get("/stops/nearby", tags=["stops"])
    async def nearby_stops(
        lat: Annotated[float, Query(ge=-90, le=90)],
        lon: Annotated[float, Query(ge=-180, le=180)],
        radius_m: Annotated[int | None, Query(ge=1, le=50_000)] = None,
        limit: Annotated[int, Query(ge=1, le=100)] = 10,
    ) -> list[StopOut]:
        """Virtual stops (and railway hubs) near a point, nearest first, for the map."""
        radius = radius_m or settings.gateway.nearby_radius_m
        return [
            StopOut(id=s.id, name=s.name, lat=s.lat, lon=s.lon, hub=s.hub, distance_m=d)
            for s, d in gateway.stops.nearby(lat, lon, radius, limit)
        ]

    @app.post(
        "/rides",
        tags=["rides"],
        status_code=status.HTTP_202_ACCEPTED,
        responses={403: {"description": "drivers cannot book"}, 422: {"description": "invalid"}},
    )
    async def book(
        body: BookingIn,
        caller: Caller,
        response: Response,
        idempotency_key: Annotated[
            str | None,
            Header(
                max_length=128,
                description="Retrying with the same key and body returns the same ride.",
            ),
        ] = None,
    ) -> RideOut:
        """Book a ride. The offer (or rejection) follows on the ride's live stream."""
        _not_driver(caller)
        request_id, replayed = await gateway.place_booking(body, caller, idempotency_key)
        response.headers["Location"] = f"/rides/{request_id}"
        if replayed:
            response.headers["Idempotent-Replayed"] = "true"
        return RideOut.of(gateway.ledger.rides[request_id])

    @app.get("/rides", tags=["rides"])
    async def my_rides(caller: Caller) -> list[RideOut]:
        """The caller's rides (operators: every ride)."""
        _not_driver(caller)
        if caller.role is Role.OPERATOR:
            rides = list(gateway.ledger.rides.values())
        else:
            rides = gateway.ledger.rides_of(caller.subject)
        await gateway.sync_confirmations(rides)
        return [RideOut.of(r) for r in rides]

    @app.get("/rides/{request_id}", tags=["rides"], responses={404: {"description": "not yours"}})
    async def ride(request_id: str, caller: Caller) -> RideOut:
        """A ride: status, offer, ETAs and every update so far."""
        ride = await gateway.ride_for(request_id, caller)
        await gateway.sync_confirmations([ride])
        return RideOut.of(ride)

    @app.post("/rides/{request_id}/confirm", tags=["rides"])
    async def confirm(request_id: str, caller: Caller) -> RideOut:
        """Accept the offer (the dispatcher already holds the seat; this is the receipt)."""
        ride = await gateway.ride_for(request_id, caller)
        if ride.status not in ("offered", "confirmed"):
            raise HTTPException(status.HTTP_409_CONFLICT, f"the ride is {ride.status}")
        at = await gateway.store().confirm(request_id, to_datetime(gateway.clock.now()))
        gateway.ledger.confirm(ride, at)
        gateway.hub.notify(request_id)
        return RideOut.of(ride)

    @app.post("/rides/{request_id}/decline", tags=["rides"])
    async def decline(request_id: str, caller: Caller) -> RideOut:
        """Decline the offer: the ride is cancelled and the seat freed."""
        ride = await gateway.ride_for(request_id, caller)
        await gateway.sync_confirmations([ride])
        if ride.status != "offered":
            raise HTTPException(status.HTTP_409_CONFLICT, f"the ride is {ride.status}")
        await gateway.cancel(ride, DECLINE_REASON)
        return RideOut.of(ride)

    @app.post("/rides/{request_id}/cancel", tags=["rides"])
    async def cancel(request_id: str, caller: Caller, body: CancelIn | None = None) -> RideOut:
        """Cancel a ride before boarding."""
        ride = await gateway.ride_for(request_id, caller)
        if ride.final or ride.status == "boarded":
            raise HTTPException(status.HTTP_409_CONFLICT, f"the ride is {ride.status}")
        await gateway.cancel(ride, (body.reason if body else None) or "cancelled by passenger")
        return RideOut.of(ride)

    @app.get(
        "/rides/{request_id}/events",
        tags=["rides"],
        response_class=StreamingResponse,
        responses={200: {"content": {"text/event-stream": {}}}},
    )
    async def ride_events(
        request_id: str,
        caller: Caller,
        request: Request,
        last_event_id: Annotated[int | None, Header()] = None,
    ) -> StreamingResponse:
        """Server-sent events: every update of the ride (``id`` = seq), then live ones.

        Reconnecting with ``Last-Event-ID`` resumes after that update. The stream ends
        after a final update (arrived, rejected, cancelled, declined, no_show).
        """
        ride = await gateway.ride_for(request_id, caller)
        await gateway.sync_confirmations([ride])

        async def stream() -> AsyncIterator[str]:
            sent = last_event_id or 0
            while True:
                for u in ride.updates[sent:]:
                    data = {"seq": u.seq, "kind": u.kind, "at": u.at, **u.data}
                    yield sse(data, event=u.kind, event_id=u.seq)
                sent = len(ride.updates)
                if ride.final or gateway.stopping.is_set():
                    return
                if not await gateway.hub.wait(request_id, KEEPALIVE_S):
                    if await request.is_disconnected():
                        return
                    with contextlib.suppress(StoreError):  # a confirmation elsewhere
                        await gateway.sync_confirmations([ride])
                    yield ": keepalive\n\n"

        return StreamingResponse(
            stream(),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        )

    return app
