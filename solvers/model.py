"""The routing problem and plan: frozen, picklable value objects.

Everything is in integer seconds (times) and integer metres (distances) so that
a problem crosses a process boundary cheaply and every solver sees the same
numbers. Times are relative to an epoch chosen by whoever builds the problem
(the dispatcher uses "now"; benchmark readers use the instance's time zero).

A problem holds

* a travel-time matrix ``duration`` and a distance matrix ``distance`` over
  location indices ``0 .. n_locations - 1``;
* vehicles, each starting at a location at a time (where it will be free next)
  and ending at a depot before its shift ends, with seat and wheelchair
  capacity and the passengers already on board;
* requests, each a pickup and a drop-off with time windows, service times, a
  maximum ride time, and a penalty for leaving it unserved (``None`` means it
  must be served: a confirmed ride or a passenger on board).

The objective every solver minimises is the summed ``distance`` of all arcs
driven, plus ``fixed_cost`` for each vehicle that is used, plus the penalty of
every unserved request.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Final

#: A time far in the future, used as "no limit" (about 31 years in seconds).
HORIZON: Final = 1_000_000_000


class StopKind(StrEnum):
    """What a vehicle does at a stop."""

    PICKUP = "pickup"
    DROPOFF = "dropoff"


@dataclass(frozen=True, slots=True)
class TimeWindow:
    """Earliest and latest start of service, inclusive."""

    earliest: int = 0
    latest: int = HORIZON

    def __post_init__(self) -> None:
        if self.earliest > self.latest:
            msg = f"TimeWindow earliest {self.earliest} > latest {self.latest}: not understood."
            raise ValueError(msg)

    def contains(self, t: int) -> bool:
        return self.earliest <= t <= self.latest


@dataclass(frozen=True, slots=True)
class Request:
    """A passenger trip from ``pickup`` to ``dropoff`` (location indices).

    ``max_ride_time`` bounds the time from the end of service at the pickup to
    the start of service at the drop-off (Cordeau's definition). When
    ``onboard_vehicle`` is set the passenger is already on that vehicle: only the
    drop-off is planned, and ``picked_up_at`` (the time service at the pickup
    ended) counts against the ride time. ``allowed_vehicles`` restricts which
    vehicles may serve the request (``None``: any).
    """

    id: str
    pickup: int
    dropoff: int
    pickup_window: TimeWindow = TimeWindow()
    dropoff_window: TimeWindow = TimeWindow()
    seats: int = 1
    wheelchairs: int = 0
    pickup_service: int = 0
    dropoff_service: int = 0
    max_ride_time: int | None = None
    penalty: int | None = None
    onboard_vehicle: str | None = None
    picked_up_at: int | None = None
    allowed_vehicles: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        if self.seats < 0 or self.wheelchairs < 0 or self.seats + self.wheelchairs < 1:
            msg = (
                f"Request {self.id}: seats={self.seats}, wheelchairs={self.wheelchairs}"
                " not understood."
            )
            raise ValueError(msg)
        if self.pickup_service < 0 or self.dropoff_service < 0:
            msg = f"Request {self.id}: negative service time not understood."
            raise ValueError(msg)
        if self.max_ride_time is not None and self.max_ride_time < 0:
            msg = f"Request {self.id}: negative max_ride_time not understood."
            raise ValueError(msg)
        if self.penalty is not None and self.penalty < 0:
            msg = f"Request {self.id}: negative penalty not understood."
            raise ValueError(msg)
        if (self.onboard_vehicle is None) != (self.picked_up_at is None):
            msg = f"Request {self.id}: onboard_vehicle and picked_up_at go together."
            raise ValueError(msg)
        if self.onboard_vehicle is not None and self.penalty is not None:
            msg = f"Request {self.id}: a passenger on board must be served (penalty=None)."
            raise ValueError(msg)

    @property
    def onboard(self) -> bool:
        return self.onboard_vehicle is not None


@dataclass(frozen=True, slots=True)
class Vehicle:
    """A vehicle free at ``start`` from ``start_time``; it must reach ``end`` by ``end_time``.

    ``max_duration`` bounds ``end arrival - start_time`` (the route duration of
    the benchmarks). ``fixed_cost`` is charged once if the vehicle serves any
    stop (Li & Lim rank solutions by vehicles first).
    """

    id: str
    start: int
    end: int
    start_time: int = 0
    end_time: int = HORIZON
    seats: int = 8
    wheelchairs: int = 0
    max_duration: int | None = None
    fixed_cost: int = 0

    def __post_init__(self) -> None:
        if self.start_time > self.end_time:
            msg = (
                f"Vehicle {self.id}: start_time {self.start_time} > end_time {self.end_time}"
                " not understood."
            )
            raise ValueError(msg)
        if self.seats < 0 or self.wheelchairs < 0:
            msg = f"Vehicle {self.id}: negative capacity not understood."
            raise ValueError(msg)


@dataclass(frozen=True, slots=True)
class StopRef:
    """A stop named by request and kind, used in route hints (warm starts)."""

    request_id: str
    kind: StopKind


@dataclass(frozen=True, slots=True)
class RouteHint:
    """A previous or constructed route for one vehicle, to start the search from."""

    vehicle_id: str
    stops: tuple[StopRef, ...]


@dataclass(frozen=True, slots=True)
class Problem:
    """A static pickup-and-delivery problem with time windows and ride times."""

    duration: tuple[tuple[int, ...], ...]
    distance: tuple[tuple[int, ...], ...]
    vehicles: tuple[Vehicle, ...]
    requests: tuple[Request, ...]
    hint: tuple[RouteHint, ...] = ()
    name: str = ""
    #: serve every stop as early as possible whenever that keeps every limit, instead
    #: of Cordeau's delays that trade waiting at a pickup for shorter rides (a live
    #: service: passengers want the earliest pickup; the benchmarks keep the delays)
    early_service: bool = False
    #: each second a drop-off comes after the earliest it could, in distance units,
    #: in the ruin-and-recreate search (:mod:`solvers.lns`, the OR-Tools warm start):
    #: among routes of similar length, the one that gets passengers there sooner, and
    #: frees the vehicles sooner, wins; 0: distance alone
    dropoff_wait_cost: float = 0.0

    def __post_init__(self) -> None:
        n = len(self.duration)
        if len(self.distance) != n or any(
            len(row) != n for row in (*self.duration, *self.distance)
        ):
            msg = "Problem: duration and distance must be square matrices of one size."
            raise ValueError(msg)
        vehicle_ids = {v.id for v in self.vehicles}
        if len(vehicle_ids) != len(self.vehicles):
            msg = "Problem: duplicate vehicle ids not understood."
            raise ValueError(msg)
        request_ids = {r.id for r in self.requests}
        if len(request_ids) != len(self.requests):
            msg = "Problem: duplicate request ids not understood."
            raise ValueError(msg)
        for v in self.vehicles:
            if not (0 <= v.start < n and 0 <= v.end < n):
                msg = f"Problem: vehicle {v.id} location out of range."
                raise ValueError(msg)
        for r in self.requests:
            if not (0 <= r.pickup < n and 0 <= r.dropoff < n):
                msg = f"Problem: request {r.id} location out of range."
                raise ValueError(msg)
            if r.onboard_vehicle is not None and r.onboard_vehicle not in vehicle_ids:
                msg = f"Problem: request {r.id} on board unknown vehicle {r.onboard_vehicle}."
                raise ValueError(msg)
            if r.allowed_vehicles is not None and not set(r.allowed_vehicles) <= vehicle_ids:
                msg = f"Problem: request {r.id} allows unknown vehicles."
                raise ValueError(msg)

    @property
    def n_locations(self) -> int:
        return len(self.duration)

    def request(self, request_id: str) -> Request:
        for r in self.requests:
            if r.id == request_id:
                return r
        raise KeyError(request_id)


@dataclass(frozen=True, slots=True)
class SolveLimits:
    """How long a solver may run. ``time_limit`` in seconds of wall time."""

    time_limit: float = 2.0

    def __post_init__(self) -> None:
        if self.time_limit <= 0:
            msg = f"SolveLimits: time_limit {self.time_limit} not understood."
            raise ValueError(msg)


@dataclass(frozen=True, slots=True)
class Stop:
    """One planned stop: arrival, start of service (after any wait) and departure."""

    request_id: str
    kind: StopKind
    location: int
    arrival: int
    service_start: int
    departure: int


@dataclass(frozen=True, slots=True)
class Route:
    """The stops one vehicle serves, in order, and when it is back at its end depot."""

    vehicle_id: str
    stops: tuple[Stop, ...]
    start_time: int
    end_time: int
    distance: int


@dataclass(frozen=True, slots=True)
class Unassigned:
    """A request the plan does not serve, with a machine-readable reason."""

    request_id: str
    reason: str


@dataclass(frozen=True, slots=True)
class SolveStats:
    """What the shell records about a solve; the solver never reads a clock itself
    for anything but its own time limit."""

    solver: str
    objective: int
    runtime: float
    time_limit_hit: bool = False
    first_solution_found: bool = True
    fallback: bool = False


@dataclass(frozen=True, slots=True)
class Plan:
    """A solver's answer: one route per vehicle (possibly empty) and the unserved."""

    routes: tuple[Route, ...]
    unassigned: tuple[Unassigned, ...]
    stats: SolveStats = field(default_factory=lambda: SolveStats("none", 0, 0.0))

    def route(self, vehicle_id: str) -> Route | None:
        for r in self.routes:
            if r.vehicle_id == vehicle_id:
                return r
        return None

    @property
    def served(self) -> frozenset[str]:
        return frozenset(s.request_id for r in self.routes for s in r.stops)

    def hints(self) -> tuple[RouteHint, ...]:
        """This plan as route hints for a warm start."""
        return tuple(
            RouteHint(r.vehicle_id, tuple(StopRef(s.request_id, s.kind) for s in r.stops))
            for r in self.routes
        )
