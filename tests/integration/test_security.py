"""Secrets and passenger data stay out of logs and metrics; retention anonymises."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import pytest
from prometheus_client import generate_latest
from pydantic import SecretStr

from dispatcher.chaos import Demand, shift_event, verify
from dispatcher.config import DatabaseSettings, KafkaSettings, Settings
from dispatcher.store import Store, StoreError
from schemas.envelope import Place
from schemas.passenger import RideRequestedV1
from tests.integration.pipeline_kit import make_settings, running

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]

SECRET = "Very-Secret-Pa55word-4711"


def passenger_request(i: int, now: datetime, lat: float) -> RideRequestedV1:
    return RideRequestedV1(
        occurred_at=now,
        source="test",
        request_id=f"sec{i}",
        passenger_ref=f"PASSENGER-REF-{i}-PRIVATE",
        zone="rendsburg",
        origin=Place(lat=lat, lon=9.6632101234, name=f"Home of passenger {i}"),
        destination=Place(lat=54.3156871234, lon=9.6778171234),
    )


async def test_logs_and_metrics_hold_no_secrets_or_personal_data(
    kafka_bootstrap, topic_prefix, pg_schema, caplog: pytest.LogCaptureFixture
):
    """A run with requests (good and bad) and a failed login logs neither the password
    nor passenger refs, place names or exact coordinates; the metrics neither."""
    caplog.set_level(logging.DEBUG)
    settings = make_settings(kafka_bootstrap, topic_prefix, *pg_schema)
    now = datetime.now(UTC)
    rides = [passenger_request(i, now, 54.3064951234 + i * 0.001) for i in range(4)]
    outside = passenger_request(9, now, 53.5511001234)  # Hamburg: rejected, outside the area
    bad = json.loads(rides[0].model_dump_json()) | {"request_id": "sec-bad", "seats": 99}
    async with running(settings) as dispatcher, Demand(settings) as demand:
        await demand.send("vehicle_events", shift_event("v0", now))
        for r in [*rides, outside]:
            await demand.request(r)
        await demand.producer.send_and_wait(
            demand.names["requests"], json.dumps(bad).encode(), key=b"rendsburg"
        )
        demand.sent["sec-bad"] = 0.0
        verdict = await verify(settings, demand.sent, wait_s=60)
        exposition = generate_latest(dispatcher.metrics.registry).decode()
    wrong = DatabaseSettings(
        dsn=SecretStr(pg_schema.dsn.replace("drt:drt@", f"drt:{SECRET}@")),
        db_schema=pg_schema.schema,
        timeout_s=5,
    )
    with pytest.raises(StoreError) as info:
        await Store.connect(wrong)
    logging.getLogger("test").error("connect failed: %s; settings %r", info.value, wrong)
    assert verdict.answered == len(demand.sent)
    # aiokafka's own DEBUG records quote message values; `drt` pins aiokafka to WARNING.
    logged = [
        caplog.handler.format(r)
        for r in caplog.records
        if not (r.name.startswith("aiokafka") and r.levelno < logging.WARNING)
    ]
    text = "\n".join(logged) + "\n" + exposition
    assert SECRET not in text and SECRET not in str(info.value)
    assert pg_schema.dsn not in text
    for r in [*rides, outside]:
        assert r.passenger_ref not in text
        assert str(r.origin.lat) not in text and str(r.origin.lon) not in text
        assert r.origin.name and r.origin.name not in text


def test_secrets_from_files_and_never_in_reprs(tmp_path: Path):
    """DSN, database password and SASL password can come from files; reprs hide them."""
    (tmp_path / "dsn").write_text(f"postgresql://drt:{SECRET}@db:5432/drt\n")
    (tmp_path / "pw").write_text(SECRET + "\n")
    db = DatabaseSettings(dsn_file=tmp_path / "dsn", password_file=tmp_path / "pw")
    kafka = KafkaSettings(
        security_protocol="SASL_SSL",
        sasl_mechanism="SCRAM-SHA-512",
        sasl_username="drt",
        sasl_password_file=tmp_path / "pw",
    )
    assert db.dsn_value().endswith("@db:5432/drt")
    assert db.password_value() == SECRET
    assert kafka.sasl_password_value() == SECRET
    assert SECRET not in repr(Settings(database=db, kafka=kafka))


async def test_dsn_file_connects(pg_schema, tmp_path: Path):
    """A DSN read from a file (a mounted secret) connects."""
    (tmp_path / "dsn").write_text(pg_schema.dsn)
    store = await Store.connect(
        DatabaseSettings(dsn_file=tmp_path / "dsn", db_schema=pg_schema.schema)
    )
    try:
        await store.ping()
    finally:
        await store.close()


async def test_retention_anonymises_finished_rides_only(kafka_bootstrap, topic_prefix, pg_schema):
    """After N days, finished rides lose passenger ref, names and exact coordinates;
    plans and dead letters go; open rides and recent data are untouched."""
    settings = make_settings(kafka_bootstrap, topic_prefix, *pg_schema)
    now = datetime.now(UTC)
    rides = [passenger_request(i, now, 54.3064951234 + i * 0.001) for i in range(3)]
    outside = passenger_request(9, now, 53.5511001234)
    async with running(settings), Demand(settings) as demand:
        await demand.send("vehicle_events", shift_event("v0", now))
        for r in [*rides, outside]:
            await demand.request(r)
        await verify(settings, demand.sent, wait_s=60)
    conn = await asyncpg.connect(pg_schema.dsn, server_settings={"search_path": pg_schema.schema})
    try:
        for table, column in (
            ("rides", "updated_at"),
            ("requests", "received_at"),
            ("outcomes", "created_at"),
            ("driver_plans", "created_at"),
        ):
            await conn.execute(f"UPDATE {table} SET {column} = now() - interval '40 days'")
        store = await Store.connect(settings.database)
        try:
            recent = await store.apply_retention(60)
            report = await store.apply_retention(30)
        finally:
            await store.close()
        ride = json.loads(await conn.fetchval("SELECT data FROM rides WHERE request_id = 'sec9'"))
        request = json.loads(
            await conn.fetchval("SELECT payload FROM requests WHERE request_id = 'sec9'")
        )
        open_ride = await conn.fetchrow(
            "SELECT data, anonymised_at FROM rides WHERE status <> 'rejected' LIMIT 1"
        )
        plans = await conn.fetchval("SELECT count(*) FROM driver_plans")
    finally:
        await conn.close()
    assert sum(recent.anonymised.values()) == 0
    assert report.anonymised["rides"] >= 1 and report.anonymised["requests"] >= 1
    assert ride["passenger_ref"] is None and request["passenger_ref"] is None
    assert request["origin"]["name"] is None
    assert request["origin"]["lat"] == round(outside.origin.lat, 2)
    assert ride["origin"]["lon"] == round(outside.origin.lon, 2)
    if open_ride is not None:
        assert open_ride["anonymised_at"] is None
        assert json.loads(open_ride["data"])["passenger_ref"].startswith("PASSENGER-REF-")
    assert plans == 0
