"""Which vehicles could take a new ride by insertion: a cheap, exact necessary test.

Immediate insertion (``DispatchCore._insert_nearest``) builds a routing problem
per group of vehicles and asks ``solvers.insertion.insert_request`` for the
cheapest place. Building those problems dominates a request in a large fleet, and
a ride nobody can take builds one for every group. :func:`may_insert` rules out,
from the fleet state alone, the vehicles whose current routes have no place for
the ride, so their problems are never built.

It mirrors ``planning.build_problem`` (start, locked stop, breaks, windows) but
replaces every travel time by a lower bound (great-circle metres times the travel
model's least seconds per metre, less a second for rounding) and drops the
constraints it does not model (maximum ride times of others, breaks, wheelchair
service). Every time it computes is then no later than the solver's, and every
latest time no earlier, so a vehicle it rules out has no feasible insertion
position: the test never removes a vehicle ``insert_request`` could use, for any
travel model whose times are at least that bound.

* Earliest service ``b[k]`` of each stop in route order (travel lower bounds,
  waiting for window openings), from the vehicle's start.
* Latest service ``L[k]`` that still lets every later stop and the return to the
  depot meet their latest times (backwards, travel lower bounds).
* The pickup after position ``i``: reachable by its latest pickup, and the stop
  after it still reachable by its ``L``; the drop-off after position ``j >= i``
  likewise, with room for the seats and wheelchairs on every leg in between and
  the new ride's own maximum ride time.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from dispatcher.geo import EARTH_RADIUS_M, LatLon, TravelModel, haversine_m
from dispatcher.planning import (
    PlanningConfig,
    Whereabouts,
    _locked_stop,
    on_break,
    service_time,
)
from dispatcher.state import FleetState, Ride, RideStatus, VehicleState
from solvers.model import StopKind

#: straight-line speed no road travel time is assumed to beat, for travel models
#: that do not state their own bound (matrices, OSRM): 200 km/h
DEFAULT_SECONDS_PER_METRE = 3.6 / 200.0

_INF = float("inf")


def seconds_per_metre(travel: TravelModel) -> float:
    """A lower bound of the model's seconds per great-circle metre."""
    bound = getattr(travel, "min_seconds_per_metre", None)
    if callable(bound):
        return float(bound())
    return DEFAULT_SECONDS_PER_METRE


def _haversine_pairs(lat1: Any, lon1: Any, lat2: Any, lon2: Any) -> np.ndarray[Any, Any]:
    """Great-circle metres between corresponding points (radians)."""
    dlat, dlon = lat2 - lat1, lon2 - lon1
    h = np.sin(dlat / 2) ** 2 + np.cos(lat1) * np.cos(lat2) * np.sin(dlon / 2) ** 2
    result: np.ndarray[Any, Any] = 2 * EARTH_RADIUS_M * np.arcsin(np.minimum(1.0, np.sqrt(h)))
    return result


class _Route:
    """A vehicle's route as the problem would hold it: start, stops, depot."""

    __slots__ = (
        "early",
        "end_time",
        "late",
        "points",
        "seats",
        "start_time",
        "svc",
        "towards",
        "wheel",
    )

    def __init__(self) -> None:
        self.points: list[LatLon] = []
        self.svc: list[float] = []
        self.early: list[float] = []
        self.late: list[float] = []
        # seats and wheelchairs on board when leaving each position
        self.seats: list[int] = []
        self.wheel: list[int] = []
        self.start_time = 0.0
        self.end_time = 0.0
        #: the vehicle is somewhere on the way from ``points[0]`` to this point
        self.towards: LatLon | None = None


def _route(
    state: FleetState, v: VehicleState, now: float, cfg: PlanningConfig, horizon: float
) -> _Route:
    epoch = int(now)

    def rel(t: float) -> int:
        return max(0, round(t - epoch))

    # Where the vehicle is: where it was last known to be, or somewhere on the way from
    # there to its heading (``planning`` interpolates); ``towards`` then holds that.
    free_at = rel(v.busy_until)
    where = Whereabouts.of(v, now)
    moving = where.target is not None and now > where.since
    start, start_time = where.point, float(free_at)
    lock = _locked_stop(v, now, cfg)
    if on_break(v, now) and not (lock is not None and lock.arrived):
        assert v.break_planned is not None
        start, start_time, lock, moving = v.depot, float(rel(v.break_planned[1])), None, False
    elif lock is not None:
        # served at its ETA or later, once the vehicle is there (>= free_at: the locked
        # stop is the first, the one it may be on its way to)
        locked = state.rides[lock.request_id]
        start, moving = lock.location, False
        start_time = max(rel(lock.eta), free_at) + service_time(locked, cfg, StopKind(lock.kind))
    route = _Route()
    route.start_time = max(start_time, float(rel(v.shift_start)))
    route.end_time = max(float(rel(v.shift_end)), route.start_time)
    route.towards = where.target if moving else None
    route.points.append(start)
    route.svc.append(0.0)
    route.early.append(route.start_time)
    route.late.append(_INF)
    # Stops in order (those the problem holds). Window bounds without the problem's
    # rounding to whole seconds: earliest times 0.5 s earlier, latest 0.5 s later.
    # After a stop that cannot be served before ``horizon`` the route is cut short:
    # the ride cannot go after it, and the later stops' limits are only dropped.
    off_early, off_late = epoch + 0.5, epoch - 0.5
    wheel_s, pick_s, drop_s = cfg.wheelchair_service_s, cfg.pickup_service_s, cfg.dropoff_service_s
    buffer = cfg.promise_buffer_s  # as build_problem keeps in reserve
    offered, onboard, vid = RideStatus.OFFERED, RideStatus.ONBOARD, v.vehicle_id
    rides = state.rides
    points, svcs, earlies, lates = route.points, route.svc, route.early, route.late
    picked: set[str] = set()
    kinds: list[tuple[Ride, bool]] = []
    cut = False
    for s in v.stops[1:] if lock is not None else v.stops:
        ride = rides.get(s.request_id)
        if ride is None or ride.vehicle_id != vid:
            continue  # not in the problem (or not as this vehicle's): fewer constraints
        status = ride.status
        if s.kind == "pickup":
            if status is not offered or ride.promised_pickup is None:
                continue
            picked.add(ride.request_id)
            early = ride.promised_pickup[0] - off_early
            late = max(ride.promised_pickup[1] - buffer, ride.promised_pickup[0])
            if ride.pickup_eta is not None and ride.pickup_eta > late:
                late = ride.pickup_eta
            late -= off_late
            svc = pick_s + (wheel_s if ride.wheelchairs else 0)
            kinds.append((ride, True))
        else:
            if status is not offered and status is not onboard:
                continue
            early, late = 0.0, _INF
            if ride.promised_dropoff is not None:
                late = ride.promised_dropoff - buffer
                if ride.dropoff_eta is not None and ride.dropoff_eta > late:
                    late = ride.dropoff_eta
                late -= off_late
            svc = drop_s + (wheel_s if ride.wheelchairs else 0)
            kinds.append((ride, False))
        points.append(s.location)
        svcs.append(float(svc))
        earlies.append(early)
        lates.append(late if late > 0 else 0.0)
        if early > horizon:
            cut = True
            break
    # load: riders whose drop-off comes without a pickup before it are on board at the start
    seats = sum(r.seats for r, p in kinds if not p and r.request_id not in picked)
    wheel = sum(r.wheelchairs for r, p in kinds if not p and r.request_id not in picked)
    route.seats.append(seats)
    route.wheel.append(wheel)
    for r, p in kinds:
        sign = 1 if p else -1
        seats += sign * r.seats
        wheel += sign * r.wheelchairs
        route.seats.append(seats)
        route.wheel.append(wheel)
    if cut:
        return route  # its last stop stands in for the depot: nothing goes after it
    route.points.append(v.depot)
    route.svc.append(0.0)
    route.early.append(route.start_time)
    route.late.append(route.end_time)
    route.seats.append(0)
    route.wheel.append(0)
    return route


def may_insert(
    state: FleetState,
    ride: Ride,
    vehicles: Sequence[VehicleState],
    now: float,
    cfg: PlanningConfig,
    travel: TravelModel,
) -> list[bool]:
    """For each vehicle: False only if its current routes cannot take ``ride``.

    ``ride`` is a new request (pending); the vehicles are on shift. A vehicle
    marked True may still turn out unable to take it.
    """
    if not vehicles:
        return []
    spm = seconds_per_metre(travel) * (1 - 1e-6)
    epoch = int(now)

    def rel(t: float) -> int:
        return max(0, round(t - epoch))

    svc_p = float(service_time(ride, cfg, StopKind.PICKUP))
    svc_d = float(service_time(ride, cfg, StopKind.DROPOFF))
    early_p = float(rel(ride.earliest_pickup))
    late_p = float(max(rel(ride.latest_pickup), 0))
    late_d = _INF
    if ride.latest_dropoff is not None:
        late_d = float(max(rel(ride.latest_dropoff), int(early_p)))
    max_ride = float(ride.max_ride_s)
    # no stop served later than this can come before the drop-off
    horizon = min(late_p + svc_p + max_ride, late_d)
    routes = [_route(state, v, now, cfg, horizon) for v in vehicles]
    points = [p for r in routes for p in r.points]
    lat = np.radians(np.fromiter((p.lat for p in points), float, len(points)))
    lon = np.radians(np.fromiter((p.lon for p in points), float, len(points)))
    o, d = ride.origin, ride.destination
    olat, olon = math.radians(o.lat), math.radians(o.lon)
    dlat, dlon = math.radians(d.lat), math.radians(d.lon)
    # travel lower bounds (seconds): to/from the pickup, the drop-off, the next point
    to_p = np.maximum(0.0, _haversine_pairs(lat, lon, olat, olon) * spm - 1.0).tolist()
    to_d = np.maximum(0.0, _haversine_pairs(lat, lon, dlat, dlon) * spm - 1.0).tolist()
    nxt = np.maximum(0.0, _haversine_pairs(lat[:-1], lon[:-1], lat[1:], lon[1:]) * spm - 1.0)
    nxt_l: list[float] = nxt.tolist()
    p_to_d = max(0.0, haversine_m(o, d) * spm - 1.0)

    result: list[bool] = []
    base = 0
    for v, r in zip(vehicles, routes, strict=True):
        n = len(r.points)  # start, stops, depot
        if r.towards is not None:
            # On the way from A to B, at E: |EX| >= (|AX| + |BX| - |AB|) / 2 for any X
            # (triangle inequality on both sides of E; a little slack for the straight
            # line in degrees that ``interpolate`` follows).
            a_, b_ = r.points[0], r.towards
            ab = haversine_m(a_, b_) * 1.001
            for x, row in ((o, to_p), (d, to_d), (r.points[1], nxt_l)):
                metres = (haversine_m(a_, x) + haversine_m(b_, x) - ab) / 2
                row[base] = max(0.0, metres * spm - 1.0)
        if ride.seats > v.seats or ride.wheelchairs > v.wheelchairs:
            result.append(False)
            base += n
            continue
        tp = to_p[base : base + n]
        td = to_d[base : base + n]
        leg = nxt_l[base : base + n - 1]
        svc, early, late = r.svc, r.early, r.late
        # earliest service at each position
        b = [r.start_time] * n
        for k in range(1, n):
            a = b[k - 1] + svc[k - 1] + leg[k - 1]
            b[k] = a if a > early[k] else early[k]
        # latest service at each position that lets the rest of the route be on time
        big_l = [_INF] * n
        big_l[n - 1] = late[n - 1]
        for k in range(n - 2, -1, -1):
            lk = big_l[k + 1] - svc[k] - leg[k]
            big_l[k] = lk if lk < late[k] else late[k]
        if any(b[k] > big_l[k] for k in range(n)):
            result.append(False)  # the route is late already: no insertion is feasible
            base += n
            continue
        free_seats = v.seats - ride.seats
        free_wheel = v.wheelchairs - ride.wheelchairs
        found = False
        for i in range(n - 1):
            a = b[i] + svc[i] + tp[i]
            bp = a if a > early_p else early_p
            if bp > late_p or r.seats[i] > free_seats or r.wheel[i] > free_wheel:
                continue
            # the drop-off right after the pickup
            a = bp + svc_p + p_to_d
            bd = a if a > 0 else 0.0
            if bd <= late_d and bd + svc_d + td[i + 1] <= big_l[i + 1]:
                found = True
                break
            # stops in between: the stop after the pickup must stay on time
            if bp + svc_p + tp[i + 1] > big_l[i + 1]:
                continue
            latest_p = min(late_p, big_l[i + 1] - svc_p - tp[i + 1])
            for j in range(i + 1, n - 1):
                if r.seats[j] > free_seats or r.wheel[j] > free_wheel:
                    break
                if b[j] + svc[j] - latest_p - svc_p > max_ride:
                    break  # the ride is too long already, and b[j] + svc[j] grows with j
                bd = b[j] + svc[j] + td[j]
                if (
                    bd - latest_p - svc_p <= max_ride
                    and bd <= late_d
                    and bd + svc_d + td[j + 1] <= big_l[j + 1]
                ):
                    found = True
                    break
            if found:
                break
        result.append(found)
        base += n
    return result
