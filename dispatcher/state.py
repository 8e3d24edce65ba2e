"""The fleet state: vehicles, their committed stops, passengers on board, open rides.

Plain Python, no I/O; every method takes ``now`` (float POSIX seconds) as a
value. The state serialises to JSON-able dicts (``to_dict``/``from_dict``) so
the shell can persist and recover it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any

from dispatcher.geo import LatLon


class RideStatus(StrEnum):
    PENDING = "pending"  # accepted, waiting for the next batch
    OFFERED = "offered"  # confirmed to the passenger: a promise to keep
    ONBOARD = "onboard"
    COMPLETED = "completed"
    REJECTED = "rejected"
    CANCELLED = "cancelled"
    NO_SHOW = "no_show"

    @property
    def final(self) -> bool:
        return self in _FINAL


_FINAL = {RideStatus.COMPLETED, RideStatus.REJECTED, RideStatus.CANCELLED, RideStatus.NO_SHOW}


@dataclass(slots=True)
class Ride:
    """One ride request and what became of it."""

    request_id: str
    zone: str
    passenger_ref: str
    origin: LatLon
    destination: LatLon
    seats: int
    wheelchairs: int
    received_at: float
    earliest_pickup: float
    latest_pickup: float
    latest_dropoff: float | None
    direct_s: int
    max_ride_s: int
    origin_stop_id: str | None = None
    destination_stop_id: str | None = None
    status: RideStatus = RideStatus.PENDING
    vehicle_id: str | None = None
    promised_pickup: tuple[float, float] | None = None
    promised_dropoff: float | None = None
    pickup_eta: float | None = None
    dropoff_eta: float | None = None
    offered_at: float | None = None
    picked_up_at: float | None = None
    dropped_at: float | None = None
    outcome_reason: str | None = None
    event_id: str = ""
    shared: bool = False  # was on board together with another ride at some point
    walk_m: int = 0  # to the snapped pickup stop plus from the snapped drop-off stop
    replanned_from: str | None = None  # the vehicle it was promised on before a re-plan
    reassigned: int = 0  # times a later plan moved it to another vehicle (each one told)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["status"] = self.status.value
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Ride:
        d = dict(d)
        d["origin"] = LatLon(**d["origin"])
        d["destination"] = LatLon(**d["destination"])
        d["status"] = RideStatus(d["status"])
        if d.get("promised_pickup") is not None:
            d["promised_pickup"] = tuple(d["promised_pickup"])
        return cls(**d)


@dataclass(slots=True)
class VehicleStop:
    """A committed stop of a vehicle."""

    request_id: str
    kind: str  # "pickup" | "dropoff"
    location: LatLon
    eta: float
    arrived: bool = False
    arrived_at: float | None = None  # when the vehicle reported arriving here

    @property
    def ref(self) -> tuple[str, str]:
        return (self.request_id, self.kind)


@dataclass(slots=True)
class VehicleState:
    """A vehicle on shift, where it is and what it has been told to do."""

    vehicle_id: str
    zone: str
    seats: int
    wheelchairs: int
    depot: LatLon
    shift_start: float
    shift_end: float
    position: LatLon
    position_at: float
    active: bool = True
    stops: list[VehicleStop] = field(default_factory=list)
    onboard: list[str] = field(default_factory=list)
    plan_version: int = 0
    #: a break of ``break_s`` seconds that must start inside ``break_window``
    break_window: tuple[float, float] | None = None
    break_s: int = 0
    #: the planned break (start, end), once planned; kept until it is over
    break_planned: tuple[float, float] | None = None
    #: when the boarding or alighting in progress ends (the vehicle cannot leave before)
    busy_until: float = 0.0
    #: the stop the vehicle last served and when it could leave it: the start of the
    #: leg it is driving (its arrival is not expected before the leg's travel time)
    leg_from: LatLon | None = None
    leg_since: float = 0.0
    #: with no stops: the standby point the vehicle was sent to wait at (rebalancing)
    #: and its id; a new stop replaces it
    standby: LatLon | None = None
    standby_id: str | None = None
    #: the vehicle stays where it is until then, then drives to its first stop (a
    #: pickup far ahead; the driver plan says so); None: it drives there at once
    set_off_at: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> VehicleState:
        d = dict(d)
        d["depot"] = LatLon(**d["depot"])
        d["position"] = LatLon(**d["position"])
        for key in ("leg_from", "standby"):
            if d.get(key) is not None:
                d[key] = LatLon(**d[key])
        d["stops"] = [VehicleStop(**{**s, "location": LatLon(**s["location"])}) for s in d["stops"]]
        for key in ("break_window", "break_planned"):
            if d.get(key) is not None:
                d[key] = tuple(d[key])
        return cls(**d)

    def stop_refs(self) -> tuple[tuple[str, str], ...]:
        return tuple(s.ref for s in self.stops)

    def remove_stop(self, request_id: str, kind: str) -> bool:
        before = len(self.stops)
        self.stops = [s for s in self.stops if s.ref != (request_id, kind)]
        return len(self.stops) != before


@dataclass(slots=True)
class FleetState:
    """All vehicles and all rides not yet forgotten, plus what changed since the last drain."""

    vehicles: dict[str, VehicleState] = field(default_factory=dict)
    rides: dict[str, Ride] = field(default_factory=dict)
    dirty_rides: set[str] = field(default_factory=set)
    dirty_vehicles: set[str] = field(default_factory=set)

    def touch_ride(self, ride: Ride) -> None:
        self.dirty_rides.add(ride.request_id)

    def touch_vehicle(self, vehicle: VehicleState) -> None:
        self.dirty_vehicles.add(vehicle.vehicle_id)

    def drain_dirty(self) -> tuple[list[Ride], list[VehicleState]]:
        """The rides and vehicles changed since the last call (for persistence)."""
        rides = [self.rides[r] for r in sorted(self.dirty_rides) if r in self.rides]
        vehicles = [self.vehicles[v] for v in sorted(self.dirty_vehicles) if v in self.vehicles]
        self.dirty_rides.clear()
        self.dirty_vehicles.clear()
        return rides, vehicles

    def active_vehicles(self, now: float) -> list[VehicleState]:
        return [
            v
            for v in sorted(self.vehicles.values(), key=lambda v: v.vehicle_id)
            if v.active and v.shift_end > now
        ]

    def open_rides(self) -> list[Ride]:
        return [r for r in self.rides.values() if not r.status.final]

    def forget_final(self, before: float) -> list[str]:
        """Drop final rides whose last change is older than ``before`` (bounded memory)."""
        gone = [
            rid
            for rid, r in self.rides.items()
            if r.status.final and max(r.received_at, r.dropped_at or 0.0) < before
        ]
        for rid in gone:
            del self.rides[rid]
        return gone
