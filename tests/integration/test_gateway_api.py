"""The passenger gateway and driver app over HTTP against the real Kafka broker and
the real PostgreSQL server (the gateway keeps Idempotency-Keys and confirmations there).

These prove validation, idempotency (across replicas and a restart), authentication
and authorization, what the services publish, and that a gateway starting up reads
only its replay window of the topics. Only the last test runs a dispatcher: a ride
requested before the replay window is loaded from the dispatcher's tables.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta

import asyncpg
import httpx
import pytest
from pydantic import SecretStr

from dispatcher.config import DatabaseSettings, GatewaySettings, KafkaSettings, Settings
from dispatcher.kafka import ensure_topics
from producers.gateway.app import create_app as gateway_app
from producers.gateway.web import serving
from schemas.codec import encode
from schemas.dispatch import DriverPlanV1, PlannedStop, RideOfferedV1, StopAction
from schemas.envelope import Place
from schemas.passenger import RideCancelledV1, RideRequestedV1
from schemas.vehicle import ArrivedAtStopV1, PassengerBoardedV1
from tests.integration.conftest import PgSchema
from tests.integration.gateway_kit import PIN, Stream, bearer, services
from tests.integration.pipeline_kit import Bus, make_settings, running, shift

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]

BOOKING = {"origin": {"stop_id": "vs-buedelsdorf-01"}, "destination": {"stop_id": "rail-ar"}}


def settings_for(bootstrap: str, prefix: str, pg: PgSchema, **gateway: object) -> Settings:
    return Settings(
        kafka=KafkaSettings(
            bootstrap_servers=bootstrap, topic_prefix=f"{prefix}.", client_id=prefix, partitions=1
        ),
        database=DatabaseSettings(dsn=SecretStr(pg.dsn), db_schema=pg.schema),
        gateway=GatewaySettings.model_validate(gateway),
        metrics_port=0,
    )


async def passenger(client: httpx.AsyncClient) -> str:
    response = await client.post("/auth/passenger")
    assert response.status_code == 201
    token: str = response.json()["token"]
    return token


async def test_booking_validation_idempotency_and_privacy(
    kafka_bootstrap: str, topic_prefix: str, pg_schema: PgSchema
) -> None:
    """422 with field errors; a retried key books once; other passengers see nothing."""
    settings = settings_for(kafka_bootstrap, topic_prefix, pg_schema)
    async with services(settings) as (gw, _), httpx.AsyncClient(base_url=gw, timeout=30) as c:
        alice, bob = await passenger(c), await passenger(c)

        assert (await c.post("/rides", json=BOOKING)).status_code == 401
        bad = await c.post("/rides", json=BOOKING, headers=bearer(alice + "x"))
        assert bad.status_code == 401

        invalid = await c.post(
            "/rides",
            json={"origin": {"lat": 54.3}, "destination": {"stop_id": "rail-ar"}, "seats": 9},
            headers=bearer(alice),
        )
        assert invalid.status_code == 422
        locs = {tuple(e["loc"]) for e in invalid.json()["detail"]}
        assert ("body", "origin") in locs
        assert ("body", "seats") in locs
        unknown = await c.post(
            "/rides",
            json={**BOOKING, "origin": {"stop_id": "no-such-stop"}},
            headers=bearer(alice),
        )
        assert unknown.status_code == 422
        assert unknown.json()["detail"][0]["loc"] == ["body", "origin", "stop_id"]
        far = await c.post(
            "/rides", json={**BOOKING, "origin": {"lat": 53.55, "lon": 9.99}}, headers=bearer(alice)
        )
        assert far.status_code == 422

        key = {**bearer(alice), "Idempotency-Key": "k-1"}
        first = await c.post("/rides", json=BOOKING, headers=key)
        again = await c.post("/rides", json=BOOKING, headers=key)
        assert first.status_code == again.status_code == 202
        rid = first.json()["request_id"]
        assert again.json()["request_id"] == rid
        assert again.headers["Idempotent-Replayed"] == "true"
        other = await c.post("/rides", json={**BOOKING, "seats": 2}, headers=key)
        assert other.status_code == 422

        mine = await c.get(f"/rides/{rid}", headers=bearer(alice))
        assert mine.status_code == 200
        assert mine.json()["status"] == "requested"
        assert (await c.get(f"/rides/{rid}", headers=bearer(bob))).status_code == 404
        assert (await c.get(f"/rides/{rid}/events", headers=bearer(bob))).status_code == 404
        assert (await c.post(f"/rides/{rid}/cancel", headers=bearer(bob))).status_code == 404
        assert (await c.get("/rides", headers=bearer(bob))).json() == []
        assert (await c.post(f"/rides/{rid}/confirm", headers=bearer(alice))).status_code == 409

        stream = Stream(c, f"/rides/{rid}/events", alice)
        try:
            await stream.until("requested")
            cancelled = await c.post(
                f"/rides/{rid}/cancel", json={"reason": "plans changed"}, headers=bearer(alice)
            )
            assert cancelled.status_code == 200
            assert (await stream.until("cancelled"))["reason"] == "plans changed"
        finally:
            await stream.close()

        operator = await c.post("/auth/operator", json={"username": "desk", "password": "nope"})
        assert operator.status_code == 401
        operator = await c.post("/auth/operator", json={"username": "desk", "password": "operator"})
        desk = operator.json()["token"]
        phone = await c.post(
            "/rides", json={**BOOKING, "passenger_ref": "caller-42"}, headers=bearer(desk)
        )
        assert phone.status_code == 202
        assert phone.json()["passenger_ref"] == "caller-42"
        assert (await c.get(f"/rides/{rid}", headers=bearer(desk))).status_code == 200

        spec = (await c.get("/openapi.json")).json()
        assert {"/rides", "/rides/{request_id}/events", "/stops/nearby"} <= set(spec["paths"])

    async with Bus(settings) as bus:
        seen = await bus.collect("requests", lambda s: len(s) >= 3, timeout=20)
    events = [e for _, e in seen]
    assert [type(e) for e in events] == [RideRequestedV1, RideCancelledV1, RideRequestedV1]
    assert sum(isinstance(e, RideRequestedV1) and e.request_id == rid for e in events) == 1
    assert all(key == b"rendsburg" for key, _ in seen)


async def test_driver_acts_only_on_own_vehicle(
    kafka_bootstrap: str, topic_prefix: str, pg_schema: PgSchema
) -> None:
    """A driver token for one vehicle is refused on another; a wrong PIN gets no token."""
    settings = settings_for(kafka_bootstrap, topic_prefix, pg_schema)
    async with services(settings) as (gw, drv), httpx.AsyncClient(base_url=drv, timeout=30) as c:
        wrong = await c.post(
            "/api/login", json={"vehicle_id": "bus-1", "driver_id": "d", "pin": "0"}
        )
        assert wrong.status_code == 401
        login = await c.post(
            "/api/login", json={"vehicle_id": "bus-1", "driver_id": "d1", "pin": PIN}
        )
        token = login.json()["token"]
        assert (await c.get("/api/vehicles/bus-1/plan", headers=bearer(token))).status_code == 200
        for method, path, body in [
            ("GET", "/api/vehicles/bus-2/plan", None),
            ("GET", "/api/vehicles/bus-2/stream", None),
            ("POST", "/api/vehicles/bus-2/shift/start", {}),
            ("POST", "/api/vehicles/bus-2/shift/end", None),
            ("POST", "/api/vehicles/bus-2/arrived", {"request_ids": ["r1"]}),
            ("POST", "/api/vehicles/bus-2/boarded", {"request_id": "r1"}),
            ("POST", "/api/vehicles/bus-2/no-show", {"request_id": "r1"}),
        ]:
            response = await c.request(method, path, json=body, headers=bearer(token))
            assert response.status_code == 403, (path, response.text)
        no_show = await c.post(
            "/api/vehicles/bus-1/no-show", json={"request_id": "r1"}, headers=bearer(token)
        )
        assert no_show.status_code == 409
        started = await c.post("/api/vehicles/bus-1/shift/start", json={}, headers=bearer(token))
        assert started.json()["on_shift"] is True
        async with httpx.AsyncClient(base_url=gw, timeout=30) as g:
            booking = await g.post("/rides", json=BOOKING, headers=bearer(token))
            assert booking.status_code == 403
    async with Bus(settings) as bus:
        seen = await bus.collect("vehicle_events", lambda s: len(s) >= 1, timeout=20)
    assert [(k, e.type, e.vehicle_id) for k, e in seen] == [  # type: ignore[attr-defined]
        (b"rendsburg", "shift.started", "bus-1")
    ]


async def test_reconnecting_tablet_gets_latest_plan_from_topic(
    kafka_bootstrap: str, topic_prefix: str, pg_schema: PgSchema
) -> None:
    """A driver service started after the plans were published serves the newest one."""
    settings = settings_for(kafka_bootstrap, topic_prefix, pg_schema)
    now = datetime.now(UTC)
    async with services(settings):  # creates the topics
        pass
    async with Bus(settings) as bus:
        for version in (1, 2):
            stops = [
                PlannedStop(
                    action=StopAction.PICKUP,
                    request_id=f"r{version}",
                    location=Place(lat=54.3157, lon=9.6778, stop_id="vs-buedelsdorf-01"),
                    eta=now + timedelta(minutes=5),
                )
            ]
            await bus.send(
                "driver_plans",
                DriverPlanV1(
                    occurred_at=now,
                    source="test",
                    vehicle_id="bus-1",
                    zone="rendsburg",
                    plan_version=version,
                    stops=stops,
                ),
            )
    async with services(settings) as (_, drv), httpx.AsyncClient(base_url=drv, timeout=30) as c:
        login = await c.post(
            "/api/login", json={"vehicle_id": "bus-1", "driver_id": "d1", "pin": PIN}
        )
        token = login.json()["token"]
        async with c.stream(
            "GET", "/api/vehicles/bus-1/stream", headers=bearer(token), timeout=None
        ) as response:
            async with asyncio.timeout(20):
                async for line in response.aiter_lines():
                    if line.startswith("data: ") and json.loads(line[6:])["plan_version"] == 2:
                        view = json.loads(line[6:])
                        break
    assert view["stops"][0]["name"] == "Büdelsdorf Haltepunkt 1"
    assert view["stops"][0]["pickups"][0]["request_id"] == "r2"


def offer_for(rid: str, now: datetime) -> RideOfferedV1:
    here = Place(lat=54.3157, lon=9.6778, stop_id="vs-buedelsdorf-01")
    return RideOfferedV1(
        occurred_at=now,
        source="test",
        request_id=rid,
        zone="rendsburg",
        vehicle_id="bus-1",
        pickup=here,
        dropoff=here,
        pickup_window_start=now,
        pickup_window_end=now + timedelta(minutes=15),
        pickup_eta=now + timedelta(minutes=5),
        dropoff_eta=now + timedelta(minutes=20),
        latest_dropoff=now + timedelta(minutes=40),
    )


async def status_becomes(c: httpx.AsyncClient, url: str, token: str, wanted: str) -> None:
    async with asyncio.timeout(20):
        while True:
            if (await c.get(url, headers=bearer(token))).json().get("status") == wanted:
                return
            await asyncio.sleep(0.1)


async def test_idempotency_key_holds_across_replicas_and_a_restart(
    kafka_bootstrap: str, topic_prefix: str, pg_schema: PgSchema
) -> None:
    """Keys and confirmations are in PostgreSQL: a retry on another replica, at the
    same moment on both, or after a restart books once; another body with the key is
    the documented 422; a confirmation on one replica is seen on the others."""
    settings = settings_for(kafka_bootstrap, topic_prefix, pg_schema)
    async with (
        serving(gateway_app(settings)) as gw1,
        serving(gateway_app(settings)) as gw2,
        httpx.AsyncClient(timeout=30) as c,
    ):
        alice = (await c.post(f"{gw1}/auth/passenger")).json()["token"]
        key = {**bearer(alice), "Idempotency-Key": "retry-1"}
        first = await c.post(f"{gw1}/rides", json=BOOKING, headers=key)
        again = await c.post(f"{gw2}/rides", json=BOOKING, headers=key)
        assert first.status_code == again.status_code == 202, again.text
        rid = first.json()["request_id"]
        assert again.json()["request_id"] == rid
        assert "Idempotent-Replayed" not in first.headers
        assert again.headers["Idempotent-Replayed"] == "true"
        other = await c.post(f"{gw2}/rides", json={**BOOKING, "seats": 2}, headers=key)
        assert other.status_code == 422
        assert other.json()["detail"][0]["loc"] == ["header", "Idempotency-Key"]

        both = {**bearer(alice), "Idempotency-Key": "retry-2"}
        r1, r2 = await asyncio.gather(
            c.post(f"{gw1}/rides", json=BOOKING, headers=both),
            c.post(f"{gw2}/rides", json=BOOKING, headers=both),
        )
        assert r1.status_code == r2.status_code == 202
        rid2 = r1.json()["request_id"]
        assert r2.json()["request_id"] == rid2 != rid
        assert sorted("Idempotent-Replayed" in r.headers for r in (r1, r2)) == [False, True]

        async with Bus(settings) as bus:
            await bus.send("notifications", offer_for(rid, datetime.now(UTC)))
        await status_becomes(c, f"{gw1}/rides/{rid}", alice, "offered")
        confirmed = await c.post(f"{gw1}/rides/{rid}/confirm", headers=bearer(alice))
        assert confirmed.json()["status"] == "confirmed"
        await status_becomes(c, f"{gw2}/rides/{rid}", alice, "confirmed")

    async with serving(gateway_app(settings)) as gw3, httpx.AsyncClient(timeout=30) as c:
        after = await c.post(f"{gw3}/rides", json=BOOKING, headers=key)
        assert after.status_code == 202 and after.json()["request_id"] == rid
        assert after.headers["Idempotent-Replayed"] == "true"
        changed = await c.post(f"{gw3}/rides", json={**BOOKING, "seats": 3}, headers=key)
        assert changed.status_code == 422
        await status_becomes(c, f"{gw3}/rides/{rid}", alice, "confirmed")
        kinds = [
            u["kind"]
            for u in (await c.get(f"{gw3}/rides/{rid}", headers=bearer(alice))).json()["updates"]
        ]
        assert kinds.count("confirmed") == 1

    async with Bus(settings) as bus:
        seen = await bus.collect("requests", lambda s: False, timeout=5)
    booked = [e.request_id for _, e in seen if isinstance(e, RideRequestedV1)]
    assert sorted(booked) == sorted([rid, rid2])


async def test_start_up_reads_only_the_replay_window(
    kafka_bootstrap: str, topic_prefix: str, pg_schema: PgSchema
) -> None:
    """A ride older than DRT_GATEWAY__REPLAY_HOURS is not read at start-up (its records
    are skipped by timestamp, not read and dropped); a recent one and live ones are."""
    settings = settings_for(kafka_bootstrap, topic_prefix, pg_schema, replay_hours=1.0)
    await ensure_topics(settings.kafka)
    now = datetime.now(UTC)

    def ride(rid: str, at: datetime) -> RideRequestedV1:
        return RideRequestedV1(
            occurred_at=at,
            source="test",
            request_id=rid,
            passenger_ref="caller-7",
            zone="rendsburg",
            origin=Place(lat=54.3157, lon=9.6778),
            destination=Place(lat=54.3023, lon=9.6711),
        )

    async with Bus(settings) as bus:
        for event, role, at in [
            (ride("old-1", now - timedelta(hours=3)), "requests", now - timedelta(hours=3)),
            (
                offer_for("old-1", now - timedelta(hours=3)),
                "notifications",
                now - timedelta(hours=3),
            ),
            (ride("new-1", now - timedelta(minutes=10)), "requests", now - timedelta(minutes=10)),
        ]:
            await bus.producer.send_and_wait(
                bus.names[role],
                encode(event),
                key=b"rendsburg",
                timestamp_ms=int(at.timestamp() * 1000),
            )
    app = gateway_app(settings)
    async with serving(app) as gw, httpx.AsyncClient(base_url=gw, timeout=30) as c:
        desk = (
            await c.post("/auth/operator", json={"username": "desk", "password": "operator"})
        ).json()["token"]
        await status_becomes(c, "/rides/new-1", desk, "requested")
        assert (await c.get("/rides/old-1", headers=bearer(desk))).status_code == 404
        assert [r["request_id"] for r in (await c.get("/rides", headers=bearer(desk))).json()] == [
            "new-1"
        ]
        reader = app.state.gateway._reader
        requests_topic = settings.kafka.topic("requests")
        assert reader.start_offsets[(requests_topic, 0)] == 1  # old-1 was never fetched
        async with Bus(settings) as bus:
            await bus.send("requests", ride("live-1", datetime.now(UTC)))
        await status_becomes(c, "/rides/live-1", desk, "requested")


async def test_open_rides_older_than_the_replay_window_come_from_the_database(
    kafka_bootstrap: str, topic_prefix: str, pg_schema: PgSchema
) -> None:
    """A pre-booking whose request and offer are older than the replay window is loaded
    from the dispatcher's tables at start-up (offer, vehicle, confirmation; later "on
    board") and follows live events; one the dispatcher answers only after the start is
    looked up for its owner. Other passengers still get 404."""
    settings = make_settings(kafka_bootstrap, topic_prefix, *pg_schema)
    short = settings.model_copy(update={"gateway": GatewaySettings(replay_hours=2 / 3600)})
    pickup_at = datetime.now(UTC) + timedelta(hours=2)
    prebooking = {**BOOKING, "requested_time": pickup_at.isoformat()}

    async with serving(gateway_app(settings)) as gw, httpx.AsyncClient(timeout=30) as c:
        alice = (await c.post(f"{gw}/auth/passenger")).json()["token"]
        bob = (await c.post(f"{gw}/auth/passenger")).json()["token"]
        async with running(settings):
            async with Bus(settings) as bus:
                await bus.send("vehicle_events", shift("bus-1", datetime.now(UTC)))
            booked = await c.post(f"{gw}/rides", json=prebooking, headers=bearer(alice))
            assert booked.status_code == 202, booked.text
            rid = booked.json()["request_id"]
            await status_becomes(c, f"{gw}/rides/{rid}", alice, "offered")
            confirmed = await c.post(f"{gw}/rides/{rid}/confirm", headers=bearer(alice))
            assert confirmed.json()["status"] == "confirmed"
        # The dispatcher is down: this booking is on the topic, not in its tables yet.
        late = await c.post(f"{gw}/rides", json=prebooking, headers=bearer(alice))
        assert late.status_code == 202
        late_id = late.json()["request_id"]
    await asyncio.sleep(3)  # both requests and the offer are now outside the window

    app = gateway_app(short)
    async with serving(app) as gw, httpx.AsyncClient(base_url=gw, timeout=30) as c:
        reader = app.state.gateway._reader
        requests_topic = short.kafka.topic("requests")
        skipped = sum(n for (t, _), n in reader.start_offsets.items() if t == requests_topic)
        assert skipped == 2  # neither request was read from the topic

        ride = (await c.get(f"/rides/{rid}", headers=bearer(alice))).json()
        assert ride["status"] == "confirmed"
        assert ride["vehicle_id"] == "bus-1"
        assert ride["offer"]["vehicle_id"] == "bus-1"
        assert ride["pickup_eta"] is not None
        assert datetime.fromisoformat(ride["requested_time"]) == pickup_at
        kinds = [u["kind"] for u in ride["updates"]]
        assert kinds[:4] == ["requested", "offered", "vehicle_assigned", "confirmed"]
        assert [r["request_id"] for r in (await c.get("/rides", headers=bearer(alice))).json()] == [
            rid
        ]
        assert (await c.get(f"/rides/{rid}", headers=bearer(bob))).status_code == 404
        assert (await c.get(f"/rides/{rid}/events", headers=bearer(bob))).status_code == 404
        assert (await c.post(f"/rides/{rid}/cancel", headers=bearer(bob))).status_code == 404
        assert (await c.get("/rides", headers=bearer(bob))).json() == []

        stream = Stream(c, f"/rides/{rid}/events", alice)
        try:
            await stream.until("confirmed")
            async with running(settings):
                # The dispatcher answers the late booking now; its offer passes the
                # gateway, which does not know the ride: the owner's request loads it.
                assert (await c.get(f"/rides/{late_id}", headers=bearer(bob))).status_code == 404
                await status_becomes(c, f"/rides/{late_id}", alice, "offered")
                assert (await c.get(f"/rides/{late_id}", headers=bearer(bob))).status_code == 404

                here = Place(lat=54.3157, lon=9.6778, stop_id="vs-buedelsdorf-01")
                vehicle = {"source": "test", "vehicle_id": "bus-1", "zone": "rendsburg"}
                async with Bus(short) as bus:
                    await bus.send(
                        "vehicle_events",
                        ArrivedAtStopV1(
                            **vehicle,
                            occurred_at=datetime.now(UTC),
                            position=here,
                            request_ids=[rid],
                        ),
                    )
                    await stream.until("vehicle_at_pickup")
                    await bus.send(
                        "vehicle_events",
                        PassengerBoardedV1(
                            **vehicle, occurred_at=datetime.now(UTC), request_id=rid
                        ),
                    )
                    await stream.until("boarded")
                await dispatcher_status_becomes(pg_schema, rid, "onboard")
        finally:
            await stream.close()
        assert "vehicle_at_destination" not in stream.kinds()
    await asyncio.sleep(3)

    async with serving(gateway_app(short)) as gw, httpx.AsyncClient(base_url=gw, timeout=30) as c:
        ride = (await c.get(f"/rides/{rid}", headers=bearer(alice))).json()
        assert ride["status"] == "boarded"
        assert "boarded" in [u["kind"] for u in ride["updates"]]
        mine = {r["request_id"] for r in (await c.get("/rides", headers=bearer(alice))).json()}
        assert mine == {rid, late_id}
        assert (await c.get(f"/rides/{rid}", headers=bearer(bob))).status_code == 404


async def dispatcher_status_becomes(pg: PgSchema, request_id: str, wanted: str) -> None:
    """Wait until the dispatcher's ``rides`` row has ``wanted`` as its status."""
    conn = await asyncpg.connect(pg.dsn, server_settings={"search_path": pg.schema})
    try:
        async with asyncio.timeout(20):
            while True:
                query = "SELECT status FROM rides WHERE request_id = $1"
                if await conn.fetchval(query, request_id) == wanted:
                    return
                await asyncio.sleep(0.1)
    finally:
        await conn.close()
