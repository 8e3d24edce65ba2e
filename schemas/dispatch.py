"""Events the dispatcher publishes: outcomes for passengers, plans for drivers, dead letters."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from schemas.envelope import Event, Identifier, Place, ZoneId


class RejectionReason(StrEnum):
    """Why a ride cannot be served; stable codes for apps and dashboards."""

    NO_VEHICLE = "no_vehicle"  # no vehicle can reach the passenger in time
    OUTSIDE_AREA = "outside_area"
    OUTSIDE_HOURS = "outside_hours"
    CAPACITY = "capacity"  # more seats or wheelchair places than any vehicle has
    INVALID = "invalid"  # the request could be read but not accepted
    DUPLICATE = "duplicate"  # the request id is already known with other content


class RideOfferedV1(Event):
    """The ride is booked: a vehicle, a promised pickup window and ETAs."""

    type: Literal["ride.offered"] = "ride.offered"
    schema_version: Literal[1] = 1
    request_id: Identifier
    zone: ZoneId
    vehicle_id: Identifier
    pickup: Place = Field(description="Where to board (the snapped stop, if any).")
    dropoff: Place
    pickup_window_start: AwareDatetime
    pickup_window_end: AwareDatetime
    pickup_eta: AwareDatetime
    dropoff_eta: AwareDatetime
    latest_dropoff: AwareDatetime = Field(
        description="The promised latest arrival (max ride time)."
    )
    walk_m: Annotated[int, Field(ge=0)] = 0
    previous_vehicle_id: Identifier | None = Field(
        default=None,
        description="Set when the ride, already confirmed, moves to this vehicle from that"
        " one: a later plan serves it better, or that vehicle is out of service. The"
        " window and latest drop-off are the ones promised before, unless the vehicle"
        " went out of service. Absent: the first offer.",
    )


class RideRejectedV1(Event):
    """The ride cannot be served; ``reason`` is a stable code, ``message`` for people."""

    type: Literal["ride.rejected"] = "ride.rejected"
    schema_version: Literal[1] = 1
    request_id: Identifier
    zone: ZoneId | None = None
    reason: RejectionReason
    message: Annotated[str, Field(max_length=1000)] = ""
    alternative_pickup: AwareDatetime | None = Field(
        default=None,
        description="A later pickup the dispatcher could serve now (not reserved): "
        "book again with this requested_time to take it.",
    )


class StopAction(StrEnum):
    PICKUP = "pickup"
    DROPOFF = "dropoff"


class PlannedStop(BaseModel):
    """One stop of a driver's plan."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    action: StopAction
    request_id: Identifier
    location: Place
    eta: AwareDatetime
    window_start: AwareDatetime | None = None
    window_end: AwareDatetime | None = None
    seats: Annotated[int, Field(ge=0)] = 1
    wheelchairs: Annotated[int, Field(ge=0)] = 0
    latest_departure: AwareDatetime | None = Field(
        None,
        description=(
            "Leaving this stop later would break a promise to another passenger (a pickup"
            " window, a drop-off time, a ride time on board) or the return by the shift"
            " end: a driver waiting for a passenger who does not come may report the"
            " no-show at this time even before the usual waiting time is over."
        ),
    )


class DriverPlanV1(Event):
    """A vehicle's whole current plan; the latest version replaces all earlier ones."""

    type: Literal["driver.plan"] = "driver.plan"
    schema_version: Literal[1] = 1
    vehicle_id: Identifier
    zone: ZoneId
    plan_version: Annotated[int, Field(ge=1)]
    stops: list[PlannedStop]
    break_start: AwareDatetime | None = Field(
        default=None, description="The planned break (the vehicle is empty, at break_location)."
    )
    break_end: AwareDatetime | None = None
    break_location: Place | None = None
    standby_location: Place | None = Field(
        default=None,
        description="With no stops: drive to this standby point (where requests are"
        " expected) and wait there. A plan with stops never has one; a planned break"
        " comes first. Absent: wait where the last stop was.",
    )
    set_off_at: AwareDatetime | None = Field(
        default=None,
        description="The first stop is a pickup far ahead: stay where you are until then,"
        " then drive there (you arrive a few minutes before its ETA). Absent: drive to"
        " the first stop at once.",
    )


class DeadLetterV1(Event):
    """A message the dispatcher could not accept, with the reason and the original bytes."""

    type: Literal["dead.letter"] = "dead.letter"
    schema_version: Literal[1] = 1
    original_topic: str
    original_partition: int
    original_offset: int
    original_key: str | None = None
    payload: str = Field(description="The original value, decoded as UTF-8 with replacement.")
    reason: str
    error_type: Literal["decode", "validation", "unknown_type", "semantic"]
