"""The codec: round trips, and a clear DecodeError for every kind of bad input."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.codec import DecodeError, decode, encode
from schemas.dispatch import DriverPlanV1, PlannedStop, RideOfferedV1, StopAction
from schemas.envelope import Place
from schemas.passenger import RideCancelledV1, RideRequestedV1, TimeType
from schemas.topics import TOPICS, key_of, role_of
from schemas.vehicle import PositionUpdatedV1, ShiftStartedV1

NOW = datetime(2026, 11, 25, 20, 0, tzinfo=UTC)
A = Place(lat=54.3065, lon=9.6632, stop_id="rd-1")
B = Place(lat=54.3157, lon=9.6778)


def ride(**kw: object) -> RideRequestedV1:
    base: dict[str, object] = {
        "occurred_at": NOW,
        "source": "app",
        "request_id": "r1",
        "passenger_ref": "p1",
        "zone": "rendsburg",
        "origin": A,
        "destination": B,
    }
    base.update(kw)
    return RideRequestedV1.model_validate(base)


def test_round_trip_every_input_event():
    """Every input event survives encode/decode unchanged and lands on its topic."""
    events = [
        ride(),
        RideCancelledV1(occurred_at=NOW, source="app", request_id="r1", zone="rendsburg"),
        ShiftStartedV1(
            occurred_at=NOW,
            source="tablet",
            vehicle_id="v1",
            zone="rendsburg",
            seats=6,
            depot=A,
            shift_start=NOW,
            shift_end=NOW + timedelta(hours=8),
        ),
        PositionUpdatedV1(
            occurred_at=NOW, source="tablet", vehicle_id="v1", zone="rendsburg", position=B
        ),
    ]
    for event in events:
        role = role_of(event)
        assert decode(role, encode(event)) == event
        assert key_of(event) == (b"rendsburg")


def test_output_keys():
    """Driver plans are keyed by vehicle, notifications by request id."""
    plan = DriverPlanV1(
        occurred_at=NOW,
        source="d",
        vehicle_id="v9",
        zone="rendsburg",
        plan_version=1,
        stops=[PlannedStop(action=StopAction.PICKUP, request_id="r1", location=A, eta=NOW)],
    )
    offer = RideOfferedV1(
        occurred_at=NOW,
        source="d",
        request_id="r7",
        zone="rendsburg",
        vehicle_id="v9",
        pickup=A,
        dropoff=B,
        pickup_window_start=NOW,
        pickup_window_end=NOW,
        pickup_eta=NOW,
        dropoff_eta=NOW,
        latest_dropoff=NOW,
    )
    assert key_of(plan) == b"v9"
    assert key_of(offer) == b"r7"
    assert next(t for t in TOPICS if t.role == "driver_plans").compacted


@pytest.mark.parametrize(
    ("payload", "error_type", "fragment"),
    [
        (b"\xff\xfe", "decode", "not valid JSON"),
        (b"[1, 2]", "decode", "JSON object"),
        (b'{"type": "ride.requested", "schema_version": 2}', "unknown_type", "@2"),
        (b'{"schema_version": 1}', "unknown_type", "None"),
        (b'{"type": "shift.started", "schema_version": 1}', "unknown_type", "shift.started"),
    ],
)
def test_bad_bytes_are_decode_errors(payload, error_type, fragment):
    """Malformed bytes, unknown types or versions become a DecodeError with a reason."""
    with pytest.raises(DecodeError) as info:
        decode("requests", payload)
    assert info.value.error_type == error_type
    assert fragment in info.value.reason


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        ({"seats": 9}, "seats"),
        ({"seats": 0, "wheelchairs": 0}, "at least one seat"),
        ({"origin": {"lat": 91, "lon": 9.6}}, "origin.lat"),
        ({"origin": {"lat": "NaN", "lon": 9.6}}, "origin.lat"),
        ({"occurred_at": "2026-11-25T20:00:00"}, "occurred_at"),
        ({"time_type": "arrival"}, "requested_time"),
        ({"destination": {"lat": 54.3065, "lon": 9.6632}}, "same place"),
        ({"request_id": ""}, "request_id"),
        ({"surprise": 1}, "surprise"),
    ],
)
def test_validation_failures_name_the_field(change, fragment):
    """A request that fails validation says which field is wrong and keeps its request id."""
    raw = json.loads(ride().model_dump_json())
    raw.update(change)
    with pytest.raises(DecodeError) as info:
        decode("requests", json.dumps(raw).encode())
    assert info.value.error_type == "validation"
    assert fragment in info.value.reason
    if change.get("request_id") != "":
        assert info.value.request_id == "r1"


def test_arrival_booking_is_valid_with_time():
    """An arrival-based booking with a time decodes and is not immediate."""
    event = ride(time_type=TimeType.ARRIVAL, requested_time=NOW + timedelta(hours=1))
    assert not decode("requests", encode(event)).immediate  # type: ignore[attr-defined]


json_values = st.recursive(
    st.none() | st.booleans() | st.floats() | st.integers() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=5)
    ),
    max_leaves=20,
)


@pytest.mark.fuzz
@settings(max_examples=300, deadline=None)
@given(value=json_values, role=st.sampled_from([t.role for t in TOPICS]))
def test_any_json_decodes_or_fails_cleanly(value, role):
    """Any JSON value either decodes or raises DecodeError: nothing else escapes."""
    try:
        decode(role, json.dumps(value).encode())
    except DecodeError as exc:
        assert exc.reason


@pytest.mark.fuzz
@settings(max_examples=200, deadline=None)
@given(
    blob=st.binary(max_size=200),
)
def test_any_bytes_decode_or_fail_cleanly(blob):
    """Arbitrary bytes never crash the decoder."""
    try:
        decode("vehicle_events", blob)
    except DecodeError as exc:
        assert exc.error_type in {"decode", "validation", "unknown_type"}


@pytest.mark.fuzz
@settings(max_examples=200, deadline=None)
@given(
    mutation=st.dictionaries(
        st.sampled_from(
            ["seats", "wheelchairs", "origin", "destination", "requested_time", "event_id", "zone"]
        ),
        json_values,
        min_size=1,
        max_size=3,
    )
)
def test_mutated_requests_decode_or_fail_cleanly(mutation):
    """A valid request with random fields replaced decodes or fails with a reason."""
    raw = json.loads(ride(event_id=uuid4()).model_dump_json())
    raw.update(mutation)
    try:
        decode("requests", json.dumps(raw).encode())
    except DecodeError as exc:
        assert exc.reason
