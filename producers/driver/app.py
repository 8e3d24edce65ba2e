"""The driver tablet app: static pages plus an API over the vehicle's topics.

The service reads the compacted driver-plans topic, the vehicle-events topic and the
dead-letters topic from the beginning (so a tablet that reconnects, or a restarted
service, gets the latest plan of its vehicle), pushes each change to the vehicle's
tablets as server-sent events, and publishes the driver's taps as vehicle events
(key: zone).

The break button publishes ``break.requested@1`` (``DRT_DRIVER__BREAK_MINUTES``, to
start within ``DRT_DRIVER__BREAK_WITHIN_MINUTES``); the dispatcher plans the break as
soon as the promises to passengers allow and sends it back in the vehicle's plan
(``break_start``/``break_end``), or dead-letters the request, which the tablet shows
as refused with the reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any

from fastapi import FastAPI, HTTPException, Request, status
from fastapi.responses import FileResponse, StreamingResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict, Field

from dispatcher.clock import SystemClock, to_datetime
from dispatcher.config import Settings
from dispatcher.kafka import Publisher
from producers.driver.plans import PlanBoard, VehicleBoard, no_show_from, view
from producers.gateway.auth import Caller, Principal, Role, TokenSigner
from producers.gateway.feed import Hub, KafkaFront, TopicReader, sse
from producers.scenario import load_scenario
from schemas.dispatch import StopAction
from schemas.envelope import Event, Identifier, Latitude, Longitude, Place
from schemas.vehicle import (
    ArrivedAtStopV1,
    BreakRequestedV1,
    NoShowV1,
    PassengerAlightedV1,
    PassengerBoardedV1,
    ShiftEndedV1,
    ShiftStartedV1,
)

log = logging.getLogger(__name__)

STATIC = Path(__file__).resolve().parent / "static"
READ_ROLES = ("driver_plans", "vehicle_events", "dead_letters")
KEEPALIVE_S = 15.0


class LoginIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    vehicle_id: Identifier
    driver_id: Identifier
    pin: Annotated[str, Field(min_length=1, max_length=64)]


class LoginOut(BaseModel):
    token: str
    vehicle_id: str
    driver_id: str
    expires_at: int


class ShiftIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    seats: Annotated[int, Field(ge=1, le=50)] = 6
    wheelchairs: Annotated[int, Field(ge=0, le=8)] = 1
    hours: Annotated[float, Field(gt=0, le=16)] | None = None
    lat: Latitude | None = None
    lon: Longitude | None = None


class RequestIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    request_id: Identifier


class BreakIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    minutes: Annotated[int, Field(ge=1, le=240)] | None = None
    within_minutes: Annotated[int, Field(ge=0, le=600)] | None = None


class ArrivedIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    request_ids: Annotated[list[Identifier], Field(min_length=1, max_length=50)]


class DriverService(KafkaFront):
    """Kafka in and out for the tablets of every vehicle."""

    def __init__(self, settings: Settings, clock: SystemClock | None = None) -> None:
        self.settings = settings
        self.clock = clock or SystemClock()
        kafka = settings.kafka.model_copy(update={"client_id": f"{settings.kafka.client_id}-tab"})
        self.kafka = kafka
        self.board = PlanBoard()
        self.hub = Hub()
        scenario = load_scenario(settings.gateway.scenario)
        self.names = {s.id: s.name for s in (*scenario.stops, *scenario.hubs)}
        fleet = scenario.fleet
        self.depot = Place(lat=fleet.depot_lat, lon=fleet.depot_lon, name=fleet.depot_name)
        self.default_seats, self.default_wheelchairs = fleet.seats, fleet.wheelchairs
        self.signer = TokenSigner(
            settings.auth.token_secret.get_secret_value().encode(), settings.auth.token_ttl_s
        )
        self._publisher = Publisher(kafka)
        self._reader = TopicReader(kafka, READ_ROLES, f"{kafka.client_id}-reader")
        self.stopping = asyncio.Event()

    def apply(self, _role: str, event: Event) -> None:
        vehicle_id = self.board.apply(event)
        if vehicle_id is not None:
            self.hub.notify(vehicle_id)

    async def publish(self, event: Event) -> None:
        await self.publish_to("vehicle_events", event)

    def view(self, vehicle_id: str) -> dict[str, Any]:
        return view(
            self.board.board(vehicle_id),
            self.settings.driver.no_show_wait_s,
            self.names,
            to_datetime(self.clock.now()),
        )


def own_vehicle(vehicle_id: str, caller: Principal) -> None:
    """A driver acts only on the vehicle they logged in to; operators on any."""
    if caller.role is Role.OPERATOR:
        return
    if caller.role is not Role.DRIVER or caller.vehicle_id != vehicle_id:
        raise HTTPException(status.HTTP_403_FORBIDDEN, f"not logged in to vehicle {vehicle_id!r}")


def create_app(settings: Settings, clock: SystemClock | None = None) -> FastAPI:
    """The driver app: ``/`` is the tablet page, ``/api`` its API."""
    svc = DriverService(settings, clock)

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        async with svc.running():
            yield

    app = FastAPI(
        title="drt-dispatch driver app",
        version="1",
        description="The driver tablet: plan, shift and stop reports of one vehicle.",
        lifespan=lifespan,
    )
    app.state.signer = svc.signer
    app.state.clock = svc.clock.now
    app.state.service = svc
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    def now_dt() -> Any:
        return to_datetime(svc.clock.now())

    def source(caller: Principal) -> str:
        return f"tablet:{caller.vehicle_id or caller.subject}"

    def vehicle(vehicle_id: str) -> VehicleBoard:
        return svc.board.board(vehicle_id)

    def envelope(vehicle_id: str, caller: Principal) -> dict[str, Any]:
        """The fields every event a tablet reports shares."""
        return {
            "occurred_at": now_dt(),
            "source": source(caller),
            "vehicle_id": vehicle_id,
            "zone": vehicle(vehicle_id).zone or settings.dispatch.zone,
        }

    @app.get("/", include_in_schema=False)
    async def index() -> FileResponse:
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})

    @app.get("/health", tags=["service"])
    async def health() -> dict[str, Any]:
        return {"status": "ok", "vehicles": len(svc.board.vehicles)}

    @app.post("/api/login", tags=["auth"])
    async def login(body: LoginIn) -> LoginOut:
        """A driver logs in to a vehicle with the depot PIN."""
        expected = settings.auth.driver_pin.get_secret_value()
        if not hmac.compare_digest(body.pin.encode(), expected.encode()):
            raise HTTPException(status.HTTP_401_UNAUTHORIZED, "wrong PIN")
        now = svc.clock.now()
        token = svc.signer.issue(Role.DRIVER, body.driver_id, now, vehicle_id=body.vehicle_id)
        return LoginOut(
            token=token,
            vehicle_id=body.vehicle_id,
            driver_id=body.driver_id,
            expires_at=svc.signer.verify(token, now).expires_at,
        )

    @app.get("/api/vehicles/{vehicle_id}/plan", tags=["plan"])
    async def plan(vehicle_id: str, caller: Caller) -> dict[str, Any]:
        """The vehicle's current plan as stop cards, next stop first."""
        own_vehicle(vehicle_id, caller)
        return svc.view(vehicle_id)

    @app.get(
        "/api/vehicles/{vehicle_id}/stream",
        tags=["plan"],
        response_class=StreamingResponse,
        responses={200: {"content": {"text/event-stream": {}}}},
    )
    async def stream(vehicle_id: str, caller: Caller, request: Request) -> StreamingResponse:
        """Server-sent ``plan`` events: the current plan at once, then on every change."""
        own_vehicle(vehicle_id, caller)

        async def events() -> AsyncIterator[str]:
            seq = 0
            while not svc.stopping.is_set():
                seq += 1
                yield sse(svc.view(vehicle_id), event="plan", event_id=seq)
                while not await svc.hub.wait(vehicle_id, KEEPALIVE_S):
                    if svc.stopping.is_set() or await request.is_disconnected():
                        return
                    yield ": keepalive\n\n"

        return StreamingResponse(
            events(),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        )

    @app.post("/api/vehicles/{vehicle_id}/shift/start", tags=["shift"])
    async def shift_start(vehicle_id: str, caller: Caller, body: ShiftIn) -> dict[str, Any]:
        """Start a shift: the dispatcher may plan the vehicle until the shift ends."""
        own_vehicle(vehicle_id, caller)
        now = now_dt()
        hours = body.hours or settings.driver.shift_hours
        position = (
            Place(lat=body.lat, lon=body.lon)
            if body.lat is not None and body.lon is not None
            else None
        )
        await svc.publish(
            ShiftStartedV1(
                occurred_at=now,
                source=source(caller),
                vehicle_id=vehicle_id,
                zone=settings.dispatch.zone,
                seats=body.seats,
                wheelchairs=body.wheelchairs,
                depot=svc.depot,
                position=position,
                shift_start=now,
                shift_end=now + timedelta(hours=hours),
            )
        )
        return svc.view(vehicle_id)

    @app.post("/api/vehicles/{vehicle_id}/shift/end", tags=["shift"])
    async def shift_end(vehicle_id: str, caller: Caller) -> dict[str, Any]:
        """End the shift; riders not yet on board are planned on other vehicles."""
        own_vehicle(vehicle_id, caller)
        await svc.publish(
            ShiftEndedV1(
                **envelope(vehicle_id, caller),
                reason="ended by the driver",
            )
        )
        return svc.view(vehicle_id)

    @app.post("/api/vehicles/{vehicle_id}/break", tags=["shift"])
    async def break_(
        vehicle_id: str, caller: Caller, body: BreakIn | None = None
    ) -> dict[str, Any]:
        """Ask for a break now, or as soon as the promises to passengers allow.

        Publishes ``break.requested@1``; the plan that comes back shows the break
        (``break.state`` planned, then running), or ``refused`` with the reason.
        """
        own_vehicle(vehicle_id, caller)
        if not vehicle(vehicle_id).on_shift:
            raise HTTPException(status.HTTP_409_CONFLICT, "start the shift first")
        if svc.view(vehicle_id)["break"]["state"] == "running":
            raise HTTPException(status.HTTP_409_CONFLICT, "the break is running")
        minutes = (body.minutes if body else None) or settings.driver.break_minutes
        within = settings.driver.break_within_minutes
        if body is not None and body.within_minutes is not None:
            within = body.within_minutes
        fields = envelope(vehicle_id, caller)
        await svc.publish(
            BreakRequestedV1(
                **fields,
                duration_s=minutes * 60,
                latest_start=fields["occurred_at"] + timedelta(minutes=within),
            )
        )
        return svc.view(vehicle_id)

    def planned(vehicle_id: str, request_id: str, action: StopAction) -> Any:
        stop = vehicle(vehicle_id).stop_of(request_id, action)
        if stop is None:
            raise HTTPException(
                status.HTTP_409_CONFLICT,
                f"{request_id!r} has no {action.value} in the plan of {vehicle_id!r}",
            )
        return stop

    @app.post("/api/vehicles/{vehicle_id}/arrived", tags=["stops"])
    async def arrived(vehicle_id: str, caller: Caller, body: ArrivedIn) -> dict[str, Any]:
        """The vehicle is at the stop of these requests."""
        own_vehicle(vehicle_id, caller)
        b = vehicle(vehicle_id)
        stops = [
            b.stop_of(rid, StopAction.PICKUP) or b.stop_of(rid, StopAction.DROPOFF)
            for rid in body.request_ids
        ]
        if any(s is None for s in stops):
            raise HTTPException(status.HTTP_409_CONFLICT, "a request is not in the plan")
        first = stops[0]
        assert first is not None
        await svc.publish(
            ArrivedAtStopV1(
                **envelope(vehicle_id, caller),
                position=first.location,
                request_ids=body.request_ids,
            )
        )
        return svc.view(vehicle_id)

    @app.post("/api/vehicles/{vehicle_id}/boarded", tags=["stops"])
    async def boarded(vehicle_id: str, caller: Caller, body: RequestIn) -> dict[str, Any]:
        """The passenger got on."""
        own_vehicle(vehicle_id, caller)
        planned(vehicle_id, body.request_id, StopAction.PICKUP)
        await svc.publish(
            PassengerBoardedV1(
                **envelope(vehicle_id, caller),
                request_id=body.request_id,
            )
        )
        return svc.view(vehicle_id)

    @app.post("/api/vehicles/{vehicle_id}/alighted", tags=["stops"])
    async def alighted(vehicle_id: str, caller: Caller, body: RequestIn) -> dict[str, Any]:
        """The passenger got off at the destination."""
        own_vehicle(vehicle_id, caller)
        planned(vehicle_id, body.request_id, StopAction.DROPOFF)
        b = vehicle(vehicle_id)
        if b.stop_of(body.request_id, StopAction.PICKUP) and body.request_id not in b.boarded:
            raise HTTPException(status.HTTP_409_CONFLICT, "the passenger is not on board")
        await svc.publish(
            PassengerAlightedV1(
                **envelope(vehicle_id, caller),
                request_id=body.request_id,
            )
        )
        return svc.view(vehicle_id)

    @app.post("/api/vehicles/{vehicle_id}/no-show", tags=["stops"])
    async def no_show(vehicle_id: str, caller: Caller, body: RequestIn) -> dict[str, Any]:
        """The passenger did not come; allowed only after the waiting time at the stop."""
        own_vehicle(vehicle_id, caller)
        stop = planned(vehicle_id, body.request_id, StopAction.PICKUP)
        allowed = no_show_from(vehicle(vehicle_id), stop, settings.driver.no_show_wait_s)
        if allowed is None or now_dt() < allowed:
            when = "after arriving" if allowed is None else f"from {allowed.isoformat()}"
            raise HTTPException(status.HTTP_409_CONFLICT, f"no-show can be reported {when}")
        await svc.publish(
            NoShowV1(
                **envelope(vehicle_id, caller),
                request_id=body.request_id,
            )
        )
        return svc.view(vehicle_id)

    return app
