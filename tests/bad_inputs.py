"""Hypothesis strategies for bad input on every input topic (decoder and dispatcher fuzzing).

Each strategy draws ``BadInput(role, value, key, kind)``: bytes that must end on
the dead-letter topic (``kind`` says why), for a dispatcher whose fleet has
vehicles with :data:`FLEET_SEATS` seats.
"""

from __future__ import annotations

import json
import math
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import strategies as st

from schemas.envelope import Place
from schemas.passenger import RideCancelledV1, RideRequestedV1
from schemas.topics import TOPICS
from schemas.vehicle import PositionUpdatedV1, ShiftStartedV1

FLEET_SEATS = 6
INPUT_ROLES = ("requests", "vehicle_events")
KNOWN_TAGS = {
    f"{m.model_fields['type'].default}@{m.model_fields['schema_version'].default}"
    for spec in TOPICS
    for m in spec.models
}


@dataclass(frozen=True)
class BadInput:
    role: str
    value: bytes
    key: bytes
    kind: str


def valid_request(request_id: str, now: datetime, **changes: Any) -> dict[str, Any]:
    event = RideRequestedV1(
        occurred_at=now,
        source="fuzz",
        request_id=request_id,
        passenger_ref="p-fuzz",
        zone="rendsburg",
        origin=Place(lat=54.3065, lon=9.6632),
        destination=Place(lat=54.3157, lon=9.6778),
    )
    raw: dict[str, Any] = json.loads(event.model_dump_json())
    raw.update(changes)
    return raw


def valid_shift(vehicle_id: str, now: datetime) -> dict[str, Any]:
    event = ShiftStartedV1(
        occurred_at=now,
        source="fuzz",
        vehicle_id=vehicle_id,
        zone="rendsburg",
        seats=FLEET_SEATS,
        wheelchairs=1,
        depot=Place(lat=54.3065, lon=9.6632),
        shift_start=now - timedelta(minutes=5),
        shift_end=now + timedelta(hours=8),
    )
    raw: dict[str, Any] = json.loads(event.model_dump_json())
    return raw


def _dump(raw: Any) -> bytes:
    return json.dumps(raw, allow_nan=True).encode()


ids = st.uuids().map(str)
request_ids = st.text("abcdefghijklmnopqrstuvwxyz0123456789-", min_size=4, max_size=20).map(
    lambda s: f"fz-{s}"
)


@st.composite
def garbage(draw: st.DrawFn) -> BadInput:
    """Bytes that are not a JSON object."""
    value = draw(
        st.one_of(
            st.binary(max_size=200),
            st.text(max_size=100).map(str.encode),
            st.sampled_from([b"", b"null", b"[]", b"42", b'"x"', b"{", b"\xff\xfe"]),
        )
    )
    try:
        if isinstance(json.loads(value), dict):
            value = b"[" + value + b"]"
    except (ValueError, UnicodeDecodeError):
        pass
    return BadInput(draw(st.sampled_from(INPUT_ROLES)), value, b"rendsburg", "decode")


@st.composite
def unknown_type(draw: st.DrawFn) -> BadInput:
    """A JSON object whose type/version no decoder knows."""
    kind = draw(st.text(max_size=30))
    version = draw(st.one_of(st.integers(-5, 50), st.text(max_size=3), st.none()))
    if f"{kind}@{version}" in KNOWN_TAGS:
        version = 99
    raw = {"type": kind, "schema_version": version, "event_id": str(uuid.uuid4())}
    return BadInput(draw(st.sampled_from(INPUT_ROLES)), _dump(raw), b"rendsburg", "unknown_type")


@st.composite
def broken_request(draw: st.DrawFn) -> BadInput:
    """A ride request with a missing field, a wrong type, or impossible coordinates."""
    now = datetime.now(UTC)
    raw = valid_request(draw(request_ids), now, event_id=draw(ids))
    how = draw(st.sampled_from(["missing", "nan", "range", "wrong_type", "seats", "bad_id"]))
    if how == "missing":
        field = draw(st.sampled_from(["zone", "origin", "destination", "request_id"]))
        del raw[field]
    elif how == "nan":
        end = draw(st.sampled_from(["origin", "destination"]))
        raw[end][draw(st.sampled_from(["lat", "lon"]))] = draw(
            st.sampled_from([math.nan, math.inf, -math.inf])
        )
    elif how == "range":
        end = draw(st.sampled_from(["origin", "destination"]))
        raw[end]["lat"] = draw(st.one_of(st.floats(90.001, 1e9), st.floats(-1e9, -90.001)))
    elif how == "wrong_type":
        field = draw(st.sampled_from(["seats", "origin", "requested_time"]))
        raw[field] = draw(st.sampled_from([[], {"x": 1}, "many"]))
    elif how == "bad_id":  # not even the request id is usable: no rejection possible
        raw["request_id"] = draw(st.text(min_size=1, max_size=20).map(lambda t: t + " \x00!"))
    else:
        raw["seats"] = draw(st.one_of(st.integers(max_value=0), st.integers(min_value=9)))
    return BadInput("requests", _dump(raw), b"rendsburg", "validation")


@st.composite
def semantic_request(draw: st.DrawFn) -> BadInput:
    """Well-formed, but impossible: more seats than any vehicle, or a time in the past."""
    now = datetime.now(UTC)
    how = draw(st.sampled_from(["seats", "past"]))
    if how == "seats":
        raw = valid_request(
            draw(request_ids), now, event_id=draw(ids), seats=draw(st.integers(FLEET_SEATS + 1, 8))
        )
    else:
        ago = timedelta(minutes=draw(st.integers(10, 60 * 24 * 30)))
        raw = valid_request(
            draw(request_ids), now, event_id=draw(ids), requested_time=(now - ago).isoformat()
        )
    return BadInput("requests", _dump(raw), b"rendsburg", "semantic")


@st.composite
def unknown_reference(draw: st.DrawFn) -> BadInput:
    """A cancellation of an unknown request, or an event of an unknown vehicle."""
    now = datetime.now(UTC)
    if draw(st.booleans()):
        event: Any = RideCancelledV1(
            occurred_at=now, source="fuzz", request_id=draw(request_ids), zone="rendsburg"
        )
        role = "requests"
    else:
        event = PositionUpdatedV1(
            occurred_at=now,
            source="fuzz",
            vehicle_id=f"ghost-{draw(st.integers(0, 10**6))}",
            zone="rendsburg",
            position=Place(lat=54.3, lon=9.66),
        )
        role = "vehicle_events"
    raw = json.loads(event.model_dump_json())
    raw["event_id"] = draw(ids)
    return BadInput(role, _dump(raw), b"rendsburg", "semantic")


def bad_input() -> st.SearchStrategy[BadInput]:
    """Any kind of bad input."""
    return st.one_of(
        garbage(), unknown_type(), broken_request(), semantic_request(), unknown_reference()
    )


def decode_failure() -> st.SearchStrategy[BadInput]:
    """Bad input the decoder itself must refuse."""
    return st.one_of(garbage(), unknown_type(), broken_request())
