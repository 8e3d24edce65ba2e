"""What a passenger sees of a ride, derived from the events on the topics. No I/O.

``RideBook.apply(event)`` folds requests, cancellations, offers, rejections,
driver plans and vehicle events into one record per ride with a numbered list of
updates, the list a live stream replays and then follows:

``requested`` -> ``offered`` + ``vehicle_assigned`` -> ``eta`` (whenever a new driver
plan moves the pickup or drop-off by a minute or more) -> ``vehicle_arriving`` (the
pickup is the vehicle's next stop) -> ``vehicle_at_pickup`` -> ``boarded`` ->
``vehicle_at_destination`` -> ``arrived``; or ``rejected``, ``cancelled``,
``declined``, ``no_show``. ``confirmed`` is the passenger's acknowledgement of the
offer: the dispatcher already treats an offer as a booking, so it is kept by the
gateway only (in PostgreSQL, see ``producers/gateway/store.py``); a confirmation known
before its ride or offer is read is applied when the offer arrives.
Events from different topics may arrive in any order; a late event never moves
a ride backwards.

``RideBook.restore(stored)`` seeds a ride from the dispatcher's PostgreSQL tables
(:class:`StoredRide`, read by ``producers/gateway/store.py``): a ride still open but
requested before the gateway's replay window. Its stored request and offers are the
events themselves (their event ids are remembered, so a replay of them changes
nothing); the current ETAs, the vehicle and "on board" come from the dispatcher's ride
state. Topic events then continue from there.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from schemas.dispatch import DriverPlanV1, RideOfferedV1, RideRejectedV1, StopAction
from schemas.envelope import Event, Place
from schemas.passenger import RideCancelledV1, RideRequestedV1
from schemas.vehicle import (
    ArrivedAtStopV1,
    NoShowV1,
    PassengerAlightedV1,
    PassengerBoardedV1,
)

#: The reason of the cancellation the gateway publishes when an offer is declined.
DECLINE_REASON = "offer declined by the passenger"

#: Status order; a ride never goes back to an earlier one.
STATUSES = ("requested", "offered", "confirmed", "boarded")
FINAL = frozenset({"completed", "rejected", "cancelled", "declined", "no_show"})


@dataclass(frozen=True, slots=True)
class Update:
    """One step a live stream reports; ``seq`` counts from 1 per ride."""

    seq: int
    kind: str
    at: datetime
    data: dict[str, Any]


@dataclass(slots=True)
class RideRecord:
    request_id: str
    passenger_ref: str
    zone: str
    origin: Place
    destination: Place
    seats: int
    wheelchairs: int
    requested_time: datetime | None
    time_type: str
    requested_at: datetime
    status: str = "requested"
    vehicle_id: str | None = None
    offer: dict[str, Any] | None = None
    pickup_eta: datetime | None = None
    dropoff_eta: datetime | None = None
    reason: str | None = None
    arriving_reported: bool = False
    boarded_at: datetime | None = None
    updates: list[Update] = field(default_factory=list)
    seen: set[str] = field(default_factory=set)

    @property
    def final(self) -> bool:
        return self.status in FINAL

    def add(self, kind: str, at: datetime, **data: Any) -> None:
        self.updates.append(Update(len(self.updates) + 1, kind, at, data))


@dataclass(frozen=True, slots=True)
class StoredRide:
    """An open ride as the dispatcher keeps it in PostgreSQL.

    ``status`` is the dispatcher's (pending, offered, onboard); ``offers`` are the
    offers it sent, oldest first; times are the dispatcher's current estimates.
    """

    request: RideRequestedV1
    status: str
    offers: list[RideOfferedV1]
    vehicle_id: str | None = None
    pickup_eta: datetime | None = None
    dropoff_eta: datetime | None = None
    picked_up_at: datetime | None = None
    updated_at: datetime | None = None
    confirmed_at: datetime | None = None


def _minute(t: datetime | None) -> int | None:
    return None if t is None else int(t.timestamp() // 60)


class RideBook:
    """Every ride the topics mention, by request id and by passenger."""

    def __init__(self) -> None:
        self.rides: dict[str, RideRecord] = {}
        self.by_passenger: dict[str, list[str]] = {}
        #: confirmations by request id, also of rides or offers not read yet
        self.confirmations: dict[str, datetime] = {}

    def rides_of(self, passenger_ref: str) -> list[RideRecord]:
        return [self.rides[r] for r in self.by_passenger.get(passenger_ref, [])]

    def apply(self, event: Event) -> set[str]:
        """Fold one event in; the request ids whose record changed."""
        match event:
            case RideRequestedV1():
                return self._requested(event)
            case DriverPlanV1():
                return self._plan(event)
        request_ids: list[str] = []
        if isinstance(event, ArrivedAtStopV1):
            request_ids = list(event.request_ids)
        else:
            rid = getattr(event, "request_id", None)
            if isinstance(rid, str):
                request_ids = [rid]
        changed = set()
        for rid in request_ids:
            ride = self.rides.get(rid)
            if ride is None or str(event.event_id) in ride.seen:
                continue
            ride.seen.add(str(event.event_id))
            before = len(ride.updates), ride.status
            self._ride_event(ride, event)
            if (len(ride.updates), ride.status) != before:
                changed.add(rid)
        return changed

    def confirm(self, ride: RideRecord, at: datetime) -> None:
        self.confirmations.setdefault(ride.request_id, at)
        if ride.status == "offered":
            ride.status = "confirmed"
            ride.add("confirmed", self.confirmations[ride.request_id])

    def remember_confirmation(self, request_id: str, at: datetime) -> bool:
        """A confirmation from elsewhere (another replica, before a restart); whether
        the ride changed."""
        self.confirmations.setdefault(request_id, at)
        ride = self.rides.get(request_id)
        if ride is None or ride.status != "offered":
            return False
        self.confirm(ride, at)
        return True

    def restore(self, stored: StoredRide) -> bool:
        """Seed a ride from the dispatcher's tables; False if the book has it already."""
        request = stored.request
        if request.request_id in self.rides:
            return False
        self._requested(request)
        ride = self.rides[request.request_id]
        at = stored.updated_at or request.occurred_at
        if stored.confirmed_at is not None:
            self.confirmations.setdefault(ride.request_id, stored.confirmed_at)
        for offer in sorted(stored.offers, key=lambda o: o.occurred_at):
            if offer.request_id == ride.request_id:
                ride.seen.add(str(offer.event_id))
                self._ride_event(ride, offer)
        if stored.vehicle_id is not None:
            self._assign(ride, stored.vehicle_id, at)
        pickup = stored.pickup_eta or ride.pickup_eta
        dropoff = stored.dropoff_eta or ride.dropoff_eta
        if (_minute(pickup), _minute(dropoff)) != (
            _minute(ride.pickup_eta),
            _minute(ride.dropoff_eta),
        ):
            ride.pickup_eta, ride.dropoff_eta = pickup, dropoff
            ride.add("eta", at, pickup_eta=pickup, dropoff_eta=dropoff)
        if stored.status == "onboard" and self._advance(ride, "boarded"):
            ride.boarded_at = stored.picked_up_at or at
            ride.add("boarded", ride.boarded_at, vehicle_id=ride.vehicle_id)
        return True

    def _requested(self, e: RideRequestedV1) -> set[str]:
        if e.request_id in self.rides:
            return set()
        ride = RideRecord(
            request_id=e.request_id,
            passenger_ref=e.passenger_ref,
            zone=e.zone,
            origin=e.origin,
            destination=e.destination,
            seats=e.seats,
            wheelchairs=e.wheelchairs,
            requested_time=e.requested_time,
            time_type=e.time_type.value,
            requested_at=e.occurred_at,
        )
        ride.seen.add(str(e.event_id))
        ride.add("requested", e.occurred_at)
        self.rides[e.request_id] = ride
        self.by_passenger.setdefault(e.passenger_ref, []).append(e.request_id)
        return {e.request_id}

    def _assign(self, ride: RideRecord, vehicle_id: str, at: datetime) -> None:
        if ride.vehicle_id != vehicle_id:
            ride.vehicle_id = vehicle_id
            ride.add("vehicle_assigned", at, vehicle_id=vehicle_id)

    def _advance(self, ride: RideRecord, status: str) -> bool:
        """Move to ``status`` unless the ride is final or already further along."""
        if ride.final:
            return False
        if status in STATUSES and STATUSES.index(status) <= STATUSES.index(ride.status):
            return False
        ride.status = status
        return True

    def _ride_event(self, ride: RideRecord, e: Event) -> None:
        at = e.occurred_at
        match e:
            case RideOfferedV1():
                if ride.final or ride.status == "boarded":
                    return
                if ride.status == "requested":
                    ride.status = "offered"
                ride.offer = {
                    "vehicle_id": e.vehicle_id,
                    "pickup": e.pickup.model_dump(mode="json"),
                    "dropoff": e.dropoff.model_dump(mode="json"),
                    "pickup_window_start": e.pickup_window_start,
                    "pickup_window_end": e.pickup_window_end,
                    "pickup_eta": e.pickup_eta,
                    "dropoff_eta": e.dropoff_eta,
                    "latest_dropoff": e.latest_dropoff,
                    "walk_m": e.walk_m,
                }
                ride.pickup_eta, ride.dropoff_eta = e.pickup_eta, e.dropoff_eta
                ride.add("offered", at, **ride.offer)
                self._assign(ride, e.vehicle_id, at)
                if ride.status == "offered" and ride.request_id in self.confirmations:
                    self.confirm(ride, at)
            case RideRejectedV1():
                if self._advance(ride, "rejected"):
                    ride.reason = e.message or e.reason.value
                    ride.add("rejected", at, reason=e.reason.value, message=e.message)
            case RideCancelledV1():
                kind = "declined" if e.reason == DECLINE_REASON else "cancelled"
                if self._advance(ride, kind):
                    ride.reason = e.reason
                    ride.add(kind, at, reason=e.reason)
            case ArrivedAtStopV1():
                if ride.final:
                    return
                if ride.boarded_at is not None and at < ride.boarded_at:
                    return  # the pickup arrival, read after the boarding
                if ride.status == "boarded":
                    ride.add("vehicle_at_destination", at, vehicle_id=e.vehicle_id)
                else:
                    ride.add("vehicle_at_pickup", at, vehicle_id=e.vehicle_id)
            case PassengerBoardedV1():
                if self._advance(ride, "boarded"):
                    ride.boarded_at = at
                    ride.add("boarded", at, vehicle_id=e.vehicle_id)
            case PassengerAlightedV1():
                if self._advance(ride, "completed"):
                    ride.add("arrived", at, vehicle_id=e.vehicle_id)
            case NoShowV1():
                if self._advance(ride, "no_show"):
                    ride.add("no_show", at, vehicle_id=e.vehicle_id)

    def _plan(self, plan: DriverPlanV1) -> set[str]:
        changed = set()
        etas: dict[str, dict[StopAction, datetime]] = {}
        for stop in plan.stops:
            etas.setdefault(stop.request_id, {})[stop.action] = stop.eta
        first = plan.stops[0] if plan.stops else None
        for rid, by_action in etas.items():
            ride = self.rides.get(rid)
            if ride is None or ride.final:
                continue
            before = len(ride.updates)
            at = plan.occurred_at
            self._assign(ride, plan.vehicle_id, at)
            pickup = by_action.get(StopAction.PICKUP)
            dropoff = by_action.get(StopAction.DROPOFF)
            if (_minute(pickup), _minute(dropoff)) != (
                _minute(ride.pickup_eta if pickup else None),
                _minute(ride.dropoff_eta if dropoff else None),
            ):
                ride.pickup_eta = pickup or ride.pickup_eta
                ride.dropoff_eta = dropoff or ride.dropoff_eta
                ride.add("eta", at, pickup_eta=pickup, dropoff_eta=dropoff)
            if (
                first is not None
                and first.request_id == rid
                and first.action is StopAction.PICKUP
                and ride.status != "boarded"
                and not ride.arriving_reported
            ):
                ride.arriving_reported = True
                ride.add("vehicle_arriving", at, vehicle_id=plan.vehicle_id, eta=first.eta)
            if len(ride.updates) != before:
                changed.add(rid)
        return changed
