"""Events from passengers (the booking app or an operator taking a phone call)."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Literal, Self

from pydantic import AwareDatetime, Field, model_validator

from schemas.envelope import Event, Identifier, Place, ZoneId


class TimeType(StrEnum):
    """Whether ``requested_time`` is the desired pickup or the latest arrival."""

    DEPARTURE = "departure"
    ARRIVAL = "arrival"


class RideRequestedV1(Event):
    """A passenger asks for a ride, now (no ``requested_time``) or pre-booked."""

    type: Literal["ride.requested"] = "ride.requested"
    schema_version: Literal[1] = 1
    request_id: Identifier
    passenger_ref: Identifier = Field(description="Pseudonymous passenger reference, never a name.")
    zone: ZoneId = Field(description="Service zone; the partition key of the requests topic.")
    origin: Place
    destination: Place
    seats: Annotated[int, Field(ge=0, le=8)] = 1
    wheelchairs: Annotated[int, Field(ge=0, le=4)] = 0
    time_type: TimeType = TimeType.DEPARTURE
    requested_time: AwareDatetime | None = Field(
        default=None,
        description="Desired pickup (departure) or latest arrival; None means as soon as possible.",
    )

    @model_validator(mode="after")
    def _check(self) -> Self:
        if self.seats + self.wheelchairs < 1:
            raise ValueError("a ride needs at least one seat or wheelchair place")
        if self.time_type is TimeType.ARRIVAL and self.requested_time is None:
            raise ValueError("an arrival-based booking needs requested_time")
        if (self.origin.lat, self.origin.lon) == (self.destination.lat, self.destination.lon):
            raise ValueError("origin and destination are the same place")
        return self

    @property
    def immediate(self) -> bool:
        return self.requested_time is None


class RideCancelledV1(Event):
    """The passenger cancels a ride before pickup."""

    type: Literal["ride.cancelled"] = "ride.cancelled"
    schema_version: Literal[1] = 1
    request_id: Identifier
    zone: ZoneId
    reason: Annotated[str, Field(max_length=500)] | None = None
