"""Topic names, message keys and the event union each topic carries.

The partition key of the input topics is the service zone, so that one zone
lives in one partition and is owned by one dispatcher instance. Driver plans
are keyed by vehicle on a compacted topic (a reconnecting tablet reads its
latest plan); passenger notifications are keyed by request id.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Final

from pydantic import Discriminator, Field, Tag, TypeAdapter

from schemas.dispatch import DeadLetterV1, DriverPlanV1, RideOfferedV1, RideRejectedV1
from schemas.envelope import Event, event_tag
from schemas.passenger import RideCancelledV1, RideRequestedV1
from schemas.vehicle import (
    ArrivedAtStopV1,
    BreakRequestedV1,
    NoShowV1,
    PassengerAlightedV1,
    PassengerBoardedV1,
    PositionUpdatedV1,
    ShiftEndedV1,
    ShiftStartedV1,
)


def _tagged(*models: type[Event]) -> Any:
    """``Annotated[A | B | ..., Discriminator(event_tag)]`` with each member tagged."""
    members = tuple(
        Annotated[
            m, Tag(f"{m.model_fields['type'].default}@{m.model_fields['schema_version'].default}")
        ]
        for m in models
    )
    union = members[0]
    for member in members[1:]:
        union = union | member
    return Annotated[union, Discriminator(event_tag)]


PASSENGER_EVENTS: Final = (RideRequestedV1, RideCancelledV1)
VEHICLE_EVENTS: Final = (
    ShiftStartedV1,
    ShiftEndedV1,
    PositionUpdatedV1,
    ArrivedAtStopV1,
    PassengerBoardedV1,
    PassengerAlightedV1,
    NoShowV1,
    BreakRequestedV1,
)
NOTIFICATION_EVENTS: Final = (RideOfferedV1, RideRejectedV1)
PLAN_EVENTS: Final = (DriverPlanV1,)
DEAD_LETTER_EVENTS: Final = (DeadLetterV1,)

PassengerEvent = _tagged(*PASSENGER_EVENTS)
VehicleEventUnion = _tagged(*VEHICLE_EVENTS)
NotificationEvent = _tagged(*NOTIFICATION_EVENTS)
PlanEvent = _tagged(*PLAN_EVENTS)
DeadLetterEvent = _tagged(*DEAD_LETTER_EVENTS)


@dataclass(frozen=True, slots=True)
class TopicSpec:
    """What a topic carries: its logical role, default name, key and messages."""

    role: str
    default_name: str
    key: str
    description: str
    models: tuple[type[Event], ...]
    adapter: TypeAdapter[Any]
    compacted: bool = False


TOPICS: Final = (
    TopicSpec(
        "requests",
        "drt.ride-requests.v1",
        "zone",
        "Ride requests and cancellations from passengers, keyed by service zone.",
        PASSENGER_EVENTS,
        TypeAdapter(PassengerEvent),
    ),
    TopicSpec(
        "vehicle_events",
        "drt.vehicle-events.v1",
        "zone",
        "Shift, break, position, stop and boarding events from vehicles, keyed by service zone.",
        VEHICLE_EVENTS,
        TypeAdapter(VehicleEventUnion),
    ),
    TopicSpec(
        "driver_plans",
        "drt.driver-plans.v1",
        "vehicle_id",
        "Each vehicle's latest plan, keyed by vehicle id; compacted.",
        PLAN_EVENTS,
        TypeAdapter(PlanEvent),
        compacted=True,
    ),
    TopicSpec(
        "notifications",
        "drt.passenger-notifications.v1",
        "request_id",
        "Offers and rejections for passengers, keyed by request id.",
        NOTIFICATION_EVENTS,
        TypeAdapter(NotificationEvent),
    ),
    TopicSpec(
        "dead_letters",
        "drt.dead-letters.v1",
        "original_topic",
        "Messages the dispatcher could not accept, with the reason.",
        DEAD_LETTER_EVENTS,
        TypeAdapter(DeadLetterEvent),
    ),
)
TOPIC_BY_ROLE: Final = {t.role: t for t in TOPICS}


def role_of(event: Event) -> str:
    """The role of the topic an event belongs on."""
    for spec in TOPICS:
        if isinstance(event, spec.models):
            return spec.role
    raise LookupError(f"no topic carries {type(event).__name__}")


def key_of(event: Event) -> bytes:
    """The message key of an event on its topic."""
    spec = TOPIC_BY_ROLE[role_of(event)]
    value = getattr(event, spec.key)
    return str(value if value is not None else "").encode()


ZoneField = Annotated[str, Field(pattern=r"^[a-z0-9_\-]+$")]
