"""Times for a fixed stop sequence of one vehicle: ride-time-aware scheduling.

Given the order in which a vehicle serves its stops, :func:`schedule_route`
decides when it serves them. It follows Cordeau & Laporte's (2003) eight-step
forward-slack procedure: serve as early as possible, then delay the departure
from the start and every pickup as far as the waiting further down the route
and the time windows and ride times of the passengers already on board allow.
Delaying a pickup shortens its passenger's ride without hurting anyone else.

The eight steps are a heuristic: when they end with a violated ride time or
route duration although a feasible schedule exists, the sequence is solved
exactly as a simple temporal network (all constraints are differences of two
service start times; Bellman-Ford finds the earliest feasible schedule or
proves there is none).

Conventions (those of the model and of Cordeau's DARP):

* ``service_start`` is ``max(arrival, earliest)`` or later; waiting happens
  before service; ``departure = service_start + service``.
* Ride time of a request = drop-off ``service_start`` minus pickup
  ``departure``; for a passenger on board, minus ``picked_up_at``.
* ``Route.start_time`` is the departure from the vehicle's start (it may be
  later than ``Vehicle.start_time``), ``Route.end_time`` the arrival at the end
  depot. ``Vehicle.max_duration`` bounds ``end_time - start_time`` of the
  route (the DARP route duration), ``Vehicle.end_time`` bounds ``end_time``.
* Seats and wheelchair places are separate capacities; passengers on board at
  the start occupy theirs until their drop-off.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final

from solvers.model import Problem, Request, Route, Stop, StopKind, StopRef, Vehicle

_INF: Final = 1 << 62

#: Reasons :class:`Infeasible` may carry.
REASONS: Final = (
    "unknown_stop",
    "precedence",
    "vehicle",
    "capacity",
    "time_window",
    "ride_time",
    "shift_end",
    "max_duration",
)


@dataclass(frozen=True, slots=True)
class Infeasible:
    """Why a stop sequence cannot be served by a vehicle (one of :data:`REASONS`)."""

    reason: str
    detail: str = ""

    def __bool__(self) -> bool:
        return False


Sequenced = tuple[Request, StopKind]


@dataclass(slots=True)
class Times:
    """Service start times ``B`` for positions 0 (start) .. m (end depot)."""

    locations: list[int]
    service: list[int]
    start: list[int]


class Scheduler:
    """Schedules stop sequences on one problem; holds the lookups the calls share."""

    __slots__ = ("distance", "duration", "problem", "requests", "vehicles")

    def __init__(self, problem: Problem) -> None:
        self.problem = problem
        self.duration = problem.duration
        self.distance = problem.distance
        self.requests = {r.id: r for r in problem.requests}
        self.vehicles = {v.id: v for v in problem.vehicles}

    # -- public -----------------------------------------------------------------

    def route(self, vehicle: Vehicle, stops: Sequence[Sequenced]) -> Route | Infeasible:
        """The scheduled route of ``vehicle`` over ``stops``, or why it is infeasible."""
        times = self.times(vehicle, stops)
        if isinstance(times, Infeasible):
            return times
        return self.build(vehicle, stops, times)

    def resolve(self, stops: Sequence[StopRef]) -> list[Sequenced] | Infeasible:
        """Stop references to (request, kind) pairs."""
        out: list[Sequenced] = []
        for s in stops:
            r = self.requests.get(s.request_id)
            if r is None:
                return Infeasible("unknown_stop", s.request_id)
            out.append((r, StopKind(s.kind)))
        return out

    def build(self, vehicle: Vehicle, stops: Sequence[Sequenced], times: Times) -> Route:
        """A :class:`Route` from scheduled ``times``."""
        loc, svc, b = times.locations, times.service, times.start
        dur, dist = self.duration, self.distance
        out: list[Stop] = []
        distance = 0
        for k in range(1, len(loc)):
            distance += dist[loc[k - 1]][loc[k]]
        for k, (r, kind) in enumerate(stops, start=1):
            arrival = b[k - 1] + svc[k - 1] + dur[loc[k - 1]][loc[k]]
            out.append(Stop(r.id, kind, loc[k], arrival, b[k], b[k] + svc[k]))
        m = len(loc) - 1
        end = b[m - 1] + svc[m - 1] + dur[loc[m - 1]][loc[m]]
        return Route(vehicle.id, tuple(out), b[0], end, distance)

    def times(
        self, vehicle: Vehicle, stops: Sequence[Sequenced], *, fast: bool = False
    ) -> Times | Infeasible:
        """Service start times for the sequence, or why there are none.

        ``fast`` answers feasibility only: it skips step 7 (shortening rides)
        when the schedule after step 5 already meets every limit.
        """
        structure = self._structure(vehicle, stops)
        if isinstance(structure, Infeasible):
            return structure
        origin, limit, fixed = structure
        if fast:
            return self.earliest(vehicle, stops)
        dur = self.duration
        n = len(stops)
        m = n + 1
        loc = [vehicle.start] * (m + 1)
        svc = [0] * (m + 1)
        e = [vehicle.start_time] * (m + 1)
        lat = [vehicle.end_time] * (m + 1)
        for k, (r, kind) in enumerate(stops, start=1):
            if kind is StopKind.PICKUP:
                loc[k], svc[k] = r.pickup, r.pickup_service
                e[k], lat[k] = r.pickup_window.earliest, r.pickup_window.latest
            else:
                loc[k], svc[k] = r.dropoff, r.dropoff_service
                e[k], lat[k] = r.dropoff_window.earliest, r.dropoff_window.latest
        loc[m] = vehicle.end
        travel = [0] * (m + 1)
        for k in range(1, m + 1):
            travel[k] = dur[loc[k - 1]][loc[k]]

        a = [0] * (m + 1)
        b = [0] * (m + 1)

        def forward(k0: int) -> None:
            for k in range(k0 + 1, m + 1):
                ak = b[k - 1] + svc[k - 1] + travel[k]
                a[k] = ak
                b[k] = ak if ak > e[k] else e[k]

        # Steps 1-2: as early as possible. These are lower bounds on every
        # feasible schedule, so a window missed here is missed everywhere.
        a[0] = b[0] = vehicle.start_time
        for k in range(1, m + 1):
            ak = b[k - 1] + svc[k - 1] + travel[k]
            a[k] = ak
            bk = b[k] = ak if ak > e[k] else e[k]
            if bk > lat[k]:
                if k == m:
                    return Infeasible("shift_end", f"back at {bk} > {lat[k]}")
                r, kind = stops[k - 1]
                return Infeasible("time_window", f"{r.id} {kind.value} at {bk} > {lat[k]}")

        earliest = list(b)

        def ride(d: int) -> int:
            p = origin[d]
            return b[d] - (fixed[d] if p < 0 else b[p] + svc[p])

        if self.problem.early_service:
            early_lat = list(lat)
            if vehicle.max_duration is not None:
                early_lat[m] = min(early_lat[m], b[0] + vehicle.max_duration)
            if self._violation(vehicle, stops, b, early_lat, limit, ride) is None:
                return Times(loc, svc, b)

        def slack(i: int) -> int:
            """Cordeau's forward slack at position ``i``."""
            best = _INF
            wsum = 0
            for j in range(i, m + 1):
                if j > i:
                    wsum += b[j] - a[j]
                    if wsum >= best:
                        break  # waiting only adds up from here
                room = lat[j] - b[j]
                lim = limit[j]
                if lim is not None and origin[j] < i:
                    room = min(room, lim - ride(j))
                best = min(best, wsum + (room if room > 0 else 0))
                if best == 0:
                    break
            return best

        # Steps 3-5: delay the departure from the start by what waiting allows.
        waiting = sum(b[k] - a[k] for k in range(1, m + 1))
        if waiting > 0:
            b[0] += min(slack(0), waiting)
            forward(0)
        if vehicle.max_duration is not None:
            lat[m] = min(lat[m], b[0] + vehicle.max_duration)
        last = m - 1
        if fast:
            # Feasibility only: delaying a pickup never lengthens a later
            # passenger's ride, so pickups after the last violated ride's
            # origin need not move.
            last = 0
            for d in range(1, m):
                lim = limit[d]
                if lim is not None and origin[d] > 0 and ride(d) > lim:
                    last = max(last, origin[d])
            if last == 0 and self._violation(vehicle, stops, b, lat, limit, ride) is None:
                return Times(loc, svc, b)
        # Steps 6-7: delay each pickup to shorten the rides of its passengers.
        for j in range(1, last + 1):
            if stops[j - 1][1] is not StopKind.PICKUP:
                continue
            after = sum(b[k] - a[k] for k in range(j + 1, m + 1))
            if after <= 0:
                continue
            delay = min(slack(j), after)
            if delay > 0:
                b[j] += delay
                forward(j)
        # Step 8: anything left violated?
        violated = self._violation(vehicle, stops, b, lat, limit, ride)
        if violated is None:
            return Times(loc, svc, b)
        if not self._maybe(vehicle, earliest, lat, svc, travel, origin, limit, fixed):
            return violated
        exact = self._exact(vehicle, e, lat, svc, travel, origin, limit, fixed)
        if exact is None:
            return violated
        return Times(loc, svc, exact)

    # -- internals ----------------------------------------------------------------

    def _structure(
        self, vehicle: Vehicle, stops: Sequence[Sequenced]
    ) -> tuple[list[int], list[int | None], list[int]] | Infeasible:
        """Pairing, precedence, vehicle and capacity; ride-time bookkeeping per position."""
        m = len(stops) + 1
        origin = [-1] * (m + 1)
        limit: list[int | None] = [None] * (m + 1)
        fixed = [0] * (m + 1)
        picked: dict[str, int] = {}
        open_pickups = 0
        seats = wheelchairs = 0
        vid = vehicle.id
        for r, kind in stops:
            if r.onboard_vehicle is not None:
                if kind is StopKind.PICKUP:
                    return Infeasible("precedence", f"{r.id}: on board, no pickup")
                if r.onboard_vehicle != vid:
                    return Infeasible("vehicle", f"{r.id} is on board {r.onboard_vehicle}")
                seats += r.seats
                wheelchairs += r.wheelchairs
            if r.allowed_vehicles is not None and vid not in r.allowed_vehicles:
                return Infeasible("vehicle", f"{r.id} not allowed on {vid}")
        if seats > vehicle.seats or wheelchairs > vehicle.wheelchairs:
            return Infeasible("capacity", "on board at the start")
        dropped: set[str] = set()
        for k, (r, kind) in enumerate(stops, start=1):
            if kind is StopKind.PICKUP:
                if r.id in picked:
                    return Infeasible("precedence", f"{r.id}: pickup twice")
                picked[r.id] = k
                open_pickups += 1
                seats += r.seats
                wheelchairs += r.wheelchairs
                if seats > vehicle.seats or wheelchairs > vehicle.wheelchairs:
                    return Infeasible("capacity", f"at pickup of {r.id}")
                continue
            if r.id in dropped:
                return Infeasible("precedence", f"{r.id}: drop-off twice")
            dropped.add(r.id)
            if r.onboard_vehicle is None:
                p = picked.get(r.id)
                if p is None:
                    return Infeasible("precedence", f"{r.id}: drop-off before pickup")
                origin[k] = p
                open_pickups -= 1
            else:
                fixed[k] = r.picked_up_at  # type: ignore[assignment]
            limit[k] = r.max_ride_time
            seats -= r.seats
            wheelchairs -= r.wheelchairs
        if open_pickups:
            return Infeasible("precedence", "a pickup without its drop-off")
        return origin, limit, fixed

    def earliest(self, vehicle: Vehicle, stops: Sequence[Sequenced]) -> Times | Infeasible:
        """The earliest feasible schedule, or why there is none (exact).

        The sequence must be well formed (pairing, precedence, capacity and
        vehicle checked by the caller, as :meth:`times` does): this checks
        times only, for the insertion heuristics' inner loop.

        Every constraint but the latest starts is a lower bound ``x_v >= x_u + w``
        (ride times and the route duration bound the pickup and the departure
        from below: ``x_p >= x_d - L - s_p``, ``x_0 >= x_m - T``), so the least
        solution is found by raising one start at a time to the bound it
        violates and propagating forward until waiting absorbs the shift. It
        is feasible iff it meets every latest start. After a push that still
        leaves its ride (or duration) violated, no waiting is left in between:
        the bound is the bare chain of travel and service, so no schedule exists.
        """
        dur = self.duration
        m = len(stops) + 1
        loc = [vehicle.start] * (m + 1)
        svc = [0] * (m + 1)
        e = [vehicle.start_time] * (m + 1)
        lat = [vehicle.end_time] * (m + 1)
        pick = StopKind.PICKUP
        picked: dict[str, int] = {}
        # (drop-off position, pickup position or -1 on board, limit, picked_up_at)
        rides: list[tuple[int, int, int, int]] = []
        for k, (r, kind) in enumerate(stops, start=1):
            if kind is pick:
                loc[k], svc[k] = r.pickup, r.pickup_service
                w = r.pickup_window
                picked[r.id] = k
            else:
                loc[k], svc[k] = r.dropoff, r.dropoff_service
                w = r.dropoff_window
                if r.max_ride_time is not None:
                    p = picked.get(r.id, -1)
                    rides.append((k, p, r.max_ride_time, r.picked_up_at or 0))
            e[k], lat[k] = w.earliest, w.latest
        loc[m] = vehicle.end
        b = [0] * (m + 1)
        step = [0] * (m + 1)
        t = b[0] = vehicle.start_time
        prev = vehicle.start
        for k in range(1, m + 1):
            here = loc[k]
            st = step[k] = svc[k - 1] + dur[prev][here]
            t += st
            if t < e[k]:  # noqa: PLR1730 (hot loop: no call)
                t = e[k]
            if t > lat[k]:
                if k == m:
                    return Infeasible("shift_end", f"back at {t} > {lat[k]}")
                r, kind = stops[k - 1]
                return Infeasible("time_window", f"{r.id} {kind.value} at {t} > {lat[k]}")
            b[k] = t
            prev = here
        max_duration = vehicle.max_duration
        n_rides = len(rides)
        first = 0  # rides before this one hold (a push at src moves only what follows)
        for _ in range(4 * m + 8):
            src = -1
            target = drop = lim = 0
            reason = ""
            for ri in range(first, n_rides):
                d, p, x, start = rides[ri]
                if p < 0:
                    if b[d] - start > x:  # b is a lower bound: nothing helps
                        r, _kind = stops[d - 1]
                        return Infeasible("ride_time", f"{r.id} rides {b[d] - start} > {x}")
                    continue
                need = b[d] - x - svc[p]
                if need > b[p]:
                    src, target, reason, drop, lim = p, need, "ride_time", d, x
                    break
            if src < 0:
                if max_duration is None or b[m] - b[0] <= max_duration:
                    return Times(loc, svc, b)
                src, target, reason = 0, b[m] - max_duration, "max_duration"
            if target > lat[src]:
                return self._infeasible(reason, stops, b, svc, src, lim, max_duration, m)
            b[src] = t = target
            for k in range(src + 1, m + 1):
                t += step[k]
                if t <= b[k]:
                    break
                if t > lat[k]:
                    return self._infeasible(reason, stops, b, svc, src, lim, max_duration, m)
                b[k] = t
            first = 0
            while first < n_rides and rides[first][0] <= src:
                first += 1
            if reason == "max_duration":
                if max_duration is not None and b[m] - b[0] > max_duration:
                    return Infeasible("max_duration", f"{b[m] - b[0]} > {max_duration}")
            elif b[drop] - b[src] - svc[src] > lim:
                r, _kind = stops[drop - 1]
                rt = b[drop] - b[src] - svc[src]
                return Infeasible("ride_time", f"{r.id} rides {rt} > {lim}")
        # not settled within the cap (never seen): the exact network decides
        origin, fixed = [-1] * (m + 1), [0] * (m + 1)
        limit: list[int | None] = [None] * (m + 1)
        for d, p, x, start in rides:
            origin[d], limit[d], fixed[d] = p, x, start
        travel = [0] * (m + 1)
        for k in range(1, m + 1):
            travel[k] = dur[loc[k - 1]][loc[k]]
        exact = self._exact(vehicle, e, lat, svc, travel, origin, limit, fixed)
        if exact is None:
            return Infeasible("ride_time", "no schedule meets every ride time")
        return Times(loc, svc, exact)

    def latest(self, vehicle: Vehicle, stops: Sequence[Sequenced]) -> list[int] | None:
        """The latest feasible service starts (positions 0 .. m), or None if none exist.

        The mirror of :meth:`earliest`: every constraint but the earliest starts is
        an upper bound (``x_{k-1} <= x_k - s - t``, ``x_d <= x_p + s_p + L``,
        ``x_m <= x_0 + T``), so lowering one start at a time to the bound it
        violates and propagating backward gives the greatest solution. Any
        schedule of a longer sequence containing these stops in this order
        (triangle inequality assumed) starts each of them no later.
        """
        dur = self.duration
        m = len(stops) + 1
        loc = [vehicle.start] * (m + 1)
        svc = [0] * (m + 1)
        e = [vehicle.start_time] * (m + 1)
        lat = [vehicle.end_time] * (m + 1)
        picked: dict[str, int] = {}
        rides: list[tuple[int, int, int]] = []
        for k, (r, kind) in enumerate(stops, start=1):
            if kind is StopKind.PICKUP:
                loc[k], svc[k] = r.pickup, r.pickup_service
                w = r.pickup_window
                picked[r.id] = k
                e[k], lat[k] = w.earliest, w.latest
            else:
                loc[k], svc[k] = r.dropoff, r.dropoff_service
                w = r.dropoff_window
                e[k], lat[k] = w.earliest, w.latest
                if r.max_ride_time is not None:
                    p = picked.get(r.id, -1)
                    if p < 0:
                        lat[k] = min(lat[k], (r.picked_up_at or 0) + r.max_ride_time)
                    else:
                        rides.append((k, p, r.max_ride_time + r.pickup_service))
        loc[m] = vehicle.end
        step = [0] * (m + 1)
        for k in range(1, m + 1):
            step[k] = svc[k - 1] + dur[loc[k - 1]][loc[k]]
        x = list(lat)
        for k in range(m - 1, -1, -1):
            bound = x[k + 1] - step[k + 1]
            x[k] = min(x[k], bound)
        for k in range(m + 1):
            if x[k] < e[k]:
                return None
        max_duration = vehicle.max_duration
        for _ in range(4 * m + 8):
            dst = -1
            target = 0
            for d, p, room in rides:
                if x[d] > x[p] + room:
                    dst, target = d, x[p] + room
                    break
            if dst < 0:
                if max_duration is None or x[m] - x[0] <= max_duration:
                    return x
                dst, target = m, x[0] + max_duration
            if target < e[dst]:
                return None
            x[dst] = t = target
            for k in range(dst - 1, -1, -1):
                t -= step[k + 1]
                if t >= x[k]:
                    break
                if t < e[k]:
                    return None
                x[k] = t
        return None

    @staticmethod
    def _infeasible(
        reason: str,
        stops: Sequence[Sequenced],
        b: list[int],
        svc: list[int],
        src: int,
        lim: int,
        max_duration: int | None,
        m: int,
    ) -> Infeasible:
        if reason == "max_duration":
            return Infeasible("max_duration", f"{b[m] - b[0]} > {max_duration}")
        return Infeasible("ride_time", f"pickup at position {src} cannot wait long enough")

    def _violation(
        self,
        vehicle: Vehicle,
        stops: Sequence[Sequenced],
        b: list[int],
        lat: list[int],
        limit: list[int | None],
        ride: Callable[[int], int],
    ) -> Infeasible | None:
        m = len(stops) + 1
        for k in range(1, m):
            r, kind = stops[k - 1]
            if b[k] > lat[k]:
                return Infeasible("time_window", f"{r.id} {kind.value} at {b[k]} > {lat[k]}")
            lim = limit[k]
            if lim is not None:
                rt = ride(k)
                if rt > lim:
                    return Infeasible("ride_time", f"{r.id} rides {rt} > {lim}")
        if b[m] > vehicle.end_time:
            return Infeasible("shift_end", f"back at {b[m]} > {vehicle.end_time}")
        if vehicle.max_duration is not None and b[m] - b[0] > vehicle.max_duration:
            return Infeasible("max_duration", f"{b[m] - b[0]} > {vehicle.max_duration}")
        return None

    @staticmethod
    def _maybe(
        vehicle: Vehicle,
        earliest: list[int],
        lat: list[int],
        svc: list[int],
        travel: list[int],
        origin: list[int],
        limit: list[int | None],
        fixed: list[int],
    ) -> bool:
        """False when earliest/latest bounds alone prove a ride or the duration too long."""
        m = len(earliest) - 1
        latest = list(lat)
        latest[m] = vehicle.end_time
        for k in range(m - 1, -1, -1):
            latest[k] = min(latest[k], latest[k + 1] - svc[k] - travel[k + 1])
        for d in range(1, m):
            lim = limit[d]
            if lim is None:
                continue
            p = origin[d]
            start = fixed[d] if p < 0 else latest[p] + svc[p]
            if earliest[d] - start > lim:
                return False
        return not (
            vehicle.max_duration is not None and earliest[m] - latest[0] > vehicle.max_duration
        )

    @staticmethod
    def _exact(
        vehicle: Vehicle,
        e: list[int],
        lat: list[int],
        svc: list[int],
        travel: list[int],
        origin: list[int],
        limit: list[int | None],
        fixed: list[int],
    ) -> list[int] | None:
        """Earliest schedule of the simple temporal network, or None if there is none.

        Every constraint reads ``x_v - x_u <= w``; with ``y = -x`` it is the edge
        ``v -> u`` of weight ``w`` and the shortest distances from the zero node
        give the earliest feasible start times.
        """
        m = len(e) - 1
        z = m + 1
        lat = list(lat)
        lat[m] = vehicle.end_time
        # (from, to, weight) in the y-graph, in an order that makes every pass
        # sweep the chain once: z - x_k <= -e_k, then x_{k-1} - x_k <= -(s + t),
        # then the backward edges (ride times, duration), then x_k - z <= l_k
        edges = [(z, k, -e[k]) for k in range(m + 1)]
        edges.extend((k - 1, k, -(svc[k - 1] + travel[k])) for k in range(1, m + 1))
        for d in range(1, m):
            lim = limit[d]
            if lim is None:
                continue
            p = origin[d]
            if p < 0:
                edges.append((d, z, fixed[d] + lim))
            else:
                edges.append((d, p, lim + svc[p]))  # x_d - x_p <= L + s_p
        if vehicle.max_duration is not None:
            edges.append((m, 0, vehicle.max_duration))
        backward = len(edges) - (2 * m + 1)
        edges.extend((k, z, lat[k]) for k in range(m + 1))
        dist = [_INF] * (m + 2)
        dist[z] = 0
        # A simple path from z uses each backward edge at most once and every
        # pass relaxes one forward sweep, so without a negative cycle the
        # distances settle within backward + 2 passes.
        for _ in range(backward + 3):
            changed = False
            for u, v, w in edges:
                du = dist[u]
                if du != _INF and du + w < dist[v]:
                    dist[v] = du + w
                    changed = True
            if not changed:
                return [-dist[k] for k in range(m + 1)]
        return None


def schedule_route(
    problem: Problem, vehicle_id: str, stops: Sequence[StopRef]
) -> Route | Infeasible:
    """Schedule ``stops`` (in this order) on vehicle ``vehicle_id`` of ``problem``.

    Returns the :class:`~solvers.model.Route` with arrival, service start and
    departure of every stop (ride times shortened where windows allow), or an
    :class:`Infeasible` saying why no schedule exists: ``"capacity"``,
    ``"time_window"``, ``"ride_time"``, ``"shift_end"``, ``"max_duration"``,
    ``"precedence"``, ``"vehicle"`` or ``"unknown_stop"``.
    """
    scheduler = Scheduler(problem)
    vehicle = scheduler.vehicles[vehicle_id]
    resolved = scheduler.resolve(stops)
    if isinstance(resolved, Infeasible):
        return resolved
    return scheduler.route(vehicle, resolved)
