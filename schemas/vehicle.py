"""Events from vehicles (the driver tablet or the vehicle simulator)."""

from __future__ import annotations

from typing import Annotated, Literal, Self

from pydantic import AwareDatetime, Field, model_validator

from schemas.envelope import Event, Identifier, Place, ZoneId


class VehicleEvent(Event):
    """Common fields of every vehicle event."""

    vehicle_id: Identifier
    zone: ZoneId


class ShiftStartedV1(VehicleEvent):
    """A driver starts a shift: the vehicle can be planned from now until ``shift_end``."""

    type: Literal["shift.started"] = "shift.started"
    schema_version: Literal[1] = 1
    seats: Annotated[int, Field(ge=1, le=50)]
    wheelchairs: Annotated[int, Field(ge=0, le=8)] = 0
    depot: Place
    position: Place | None = None
    shift_start: AwareDatetime
    shift_end: AwareDatetime
    break_window_start: AwareDatetime | None = Field(
        default=None, description="The break must start at or after this time."
    )
    break_window_end: AwareDatetime | None = Field(
        default=None, description="The break must start at or before this time."
    )
    break_duration_s: Annotated[int, Field(ge=0, le=4 * 3600)] = 0

    @model_validator(mode="after")
    def _check(self) -> Self:
        if self.shift_end <= self.shift_start:
            raise ValueError("shift_end must be after shift_start")
        if (self.break_window_start is None) != (self.break_window_end is None):
            raise ValueError("break_window_start and break_window_end go together")
        start, end = self.break_window_start, self.break_window_end
        if start is not None and end is not None and end < start:
            raise ValueError("break_window_end must not be before break_window_start")
        return self


class ShiftEndedV1(VehicleEvent):
    """The shift ends early or as planned (e.g. a breakdown): plan nothing more on it."""

    type: Literal["shift.ended"] = "shift.ended"
    schema_version: Literal[1] = 1
    reason: Annotated[str, Field(max_length=500)] | None = None


class PositionUpdatedV1(VehicleEvent):
    """Where the vehicle is now."""

    type: Literal["vehicle.position"] = "vehicle.position"
    schema_version: Literal[1] = 1
    position: Place
    speed_kmh: Annotated[float, Field(ge=0, le=250, allow_inf_nan=False)] | None = None


class ArrivedAtStopV1(VehicleEvent):
    """The vehicle reached a planned stop."""

    type: Literal["vehicle.arrived"] = "vehicle.arrived"
    schema_version: Literal[1] = 1
    position: Place
    request_ids: Annotated[list[Identifier], Field(min_length=1, max_length=50)]


class PassengerBoardedV1(VehicleEvent):
    """A passenger got on."""

    type: Literal["passenger.boarded"] = "passenger.boarded"
    schema_version: Literal[1] = 1
    request_id: Identifier


class PassengerAlightedV1(VehicleEvent):
    """A passenger got off at the destination."""

    type: Literal["passenger.alighted"] = "passenger.alighted"
    schema_version: Literal[1] = 1
    request_id: Identifier


class NoShowV1(VehicleEvent):
    """The passenger did not come to the pickup (reported after the waiting time)."""

    type: Literal["passenger.no_show"] = "passenger.no_show"
    schema_version: Literal[1] = 1
    request_id: Identifier


class BreakRequestedV1(VehicleEvent):
    """The driver wants a break now, or as soon as the promises to passengers allow.

    The dispatcher plans the break (``duration_s`` at the depot, nobody on board) to
    start as early as every promise to passengers on board or confirmed allows, and
    no later than ``latest_start``; the vehicle's next ``driver.plan`` carries it as
    ``break_start``/``break_end``. It replaces a break planned but not yet begun; a
    request during a running break, or one no break can meet, is dead-lettered.
    """

    type: Literal["break.requested"] = "break.requested"
    schema_version: Literal[1] = 1
    duration_s: Annotated[int, Field(ge=60, le=4 * 3600)] = Field(
        description="Length of the break, seconds."
    )
    latest_start: AwareDatetime = Field(description="The break must start at or before this.")

    @model_validator(mode="after")
    def _check(self) -> Self:
        if self.latest_start < self.occurred_at:
            raise ValueError("latest_start must not be before occurred_at")
        return self
