"""Fleet state + batch -> routing problem; plan -> state changes and outgoing events.

Pure. Times in the problem are integer seconds relative to ``epoch`` (the
batch's "now"). A vehicle's next stop is *locked* when it is about to be
served (within the late-diversion guard, or the vehicle is already there):
the problem then starts the vehicle at that stop after its service, and the
plan that comes back is prefixed with it again.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection
from dataclasses import dataclass, field, replace
from typing import Any

from dispatcher.geo import LatLon, TravelModel, interpolate
from dispatcher.state import FleetState, Ride, RideStatus, VehicleState, VehicleStop
from solvers.check import check_plan
from solvers.insertion import insert_request
from solvers.model import (
    HORIZON,
    Plan,
    Problem,
    Request,
    RouteHint,
    StopKind,
    StopRef,
    TimeWindow,
    Vehicle,
)
from solvers.schedule import Infeasible, Scheduler


@dataclass(frozen=True, slots=True)
class PlanningConfig:
    """Service rules the planner applies. Seconds unless named otherwise."""

    max_wait_s: int = 1800
    prebook_late_s: int = 900
    arrival_early_s: int = 1800
    promise_before_s: int = 300
    promise_window_s: int = 900
    ride_alpha: float = 1.5
    ride_beta_s: int = 600
    pickup_service_s: int = 60
    dropoff_service_s: int = 30
    wheelchair_service_s: int = 180
    late_diversion_guard_s: int = 120
    #: new plans keep this much of a promised pickup window's end, and of a promised
    #: latest drop-off, in reserve against delays on the way (a stop already planned
    #: later keeps its time); 0: plans may use a promise to the last second
    promise_buffer_s: int = 120
    unserved_penalty: int = 10_000_000
    #: a break that cannot be planned costs this much (never more than a promise)
    break_penalty: int = 100_000_000
    #: an empty vehicle whose first stop is a pickup further ahead than the drive
    #: there waits where it is and sets off to arrive this many seconds before the
    #: stop's ETA (the driver plan's ``set_off_at``); None: it drives there at once
    set_off_margin_s: int | None = None
    #: a confirmed ride may move to another vehicle while its promised pickup window
    #: opens more than this many seconds from now (the passenger is told the new
    #: vehicle; window and latest drop-off stay as promised); None: it stays on the
    #: vehicle it was offered with
    reassign_lead_s: int | None = None


#: Request ids of the break pseudo-requests (``BREAK_PREFIX + vehicle_id``).
BREAK_PREFIX = "break:"


def break_id(vehicle_id: str) -> str:
    return BREAK_PREFIX + vehicle_id


def on_break(v: VehicleState, now: float) -> bool:
    """The vehicle is inside its planned break now."""
    return v.break_planned is not None and v.break_planned[0] <= now < v.break_planned[1]


def break_pending(v: VehicleState, now: float) -> bool:
    """The vehicle has a break still to plan or to start."""
    if v.break_window is None or v.break_s <= 0:
        return False
    if v.break_planned is not None:
        return now < v.break_planned[0]
    return now < min(v.shift_end, v.break_window[1])


@dataclass(frozen=True, slots=True)
class BatchJob:
    """A problem to solve and what is needed to read its plan back."""

    problem: Problem
    epoch: int
    new_ids: tuple[str, ...]
    locked: dict[str, VehicleStop] = field(default_factory=dict)
    points: tuple[LatLon, ...] = ()
    #: each vehicle's stops when the job was built (a plan for older routes is stale)
    snapshot: dict[str, tuple[tuple[str, str], ...]] = field(default_factory=dict)
    kind: str = "batch"  # "batch" (new requests), "reopt" or "insert"


class _Locations:
    def __init__(self) -> None:
        self.points: list[LatLon] = []
        self._index: dict[tuple[float, float], int] = {}

    def __call__(self, p: LatLon) -> int:
        key = p.key()
        if key not in self._index:
            self._index[key] = len(self.points)
            self.points.append(p)
        return self._index[key]


def service_time(ride: Ride, cfg: PlanningConfig, kind: StopKind) -> int:
    """Seconds a pickup or drop-off of this ride takes at the stop."""
    base = cfg.pickup_service_s if kind is StopKind.PICKUP else cfg.dropoff_service_s
    return base + (cfg.wheelchair_service_s if ride.wheelchairs else 0)


def heading(v: VehicleState, now: float) -> LatLon | None:
    """Where the vehicle is driving to now (None: it stays where it is).

    Its next stop, unless it is there already; the depot when its planned break
    comes first (an empty vehicle drives there and waits for the break's end, as
    the driver plan's break says); without stops the standby point it was sent to
    (rebalancing; it waits there once arrived, until the core calls it back for its
    break), else None.
    """
    if v.stops and v.stops[0].arrived:
        return None
    if v.stops and v.set_off_at is not None and now < v.set_off_at:
        return None  # waits where it is until it sets off (the driver plan says when)
    if not v.stops and v.standby is not None:
        return v.standby
    brk = v.break_planned
    if (
        brk is not None
        and now < brk[1]
        and not v.onboard
        and (not v.stops or v.stops[0].eta >= brk[1] - 1)
    ):
        return v.depot
    return v.stops[0].location if v.stops else None


def leg_start(v: VehicleState, now: float) -> tuple[LatLon, float] | None:
    """Where and when the vehicle set off on the way it is on (None: not known).

    The stop it served last, once the service was over (``leg_from`` at
    ``leg_since``); where it was when the core sent it elsewhere or gave a waiting
    vehicle somewhere to go (the core moves ``leg_from`` then); or the depot at the
    end of a planned break held since: the vehicle stood there until then.
    """
    start = (v.leg_from, v.leg_since) if v.leg_from is not None else None
    if start is not None and v.set_off_at is not None:
        start = (start[0], max(start[1], v.set_off_at))  # it stood there until then
    brk = v.break_planned
    if brk is not None and brk[1] <= now and (start is None or start[1] < brk[1]):
        start = (v.depot, brk[1])
    return start


def last_known(v: VehicleState, now: float) -> tuple[LatLon, float]:
    """The vehicle's last known place and the time it may move on from there.

    The later of its last position report and the start of its current leg (a
    vehicle that stood still sent no report meanwhile: the time since its last
    report is not all driving), never before its boarding or alighting is over.
    """
    point, since = v.position, v.position_at
    start = leg_start(v, now)
    if start is not None and start[1] >= since:
        point, since = start
    return point, max(since, v.busy_until)


def set_off_time(
    v: VehicleState, now: float, travel: TravelModel, cfg: PlanningConfig, standing: bool
) -> float | None:
    """When the vehicle should leave for its first stop, if later than now (else None).

    Only an empty vehicle standing somewhere (``standing``: not on its way), with no
    break or standby point pending, whose first stop is a pickup not yet reached:
    it leaves to arrive ``cfg.set_off_margin_s`` before the stop's ETA, from where it
    stands (:func:`last_known`), rather than drive out now and wait there.
    """
    margin = cfg.set_off_margin_s
    if margin is None or not standing or v.onboard or not v.stops or v.standby is not None:
        return None
    first = v.stops[0]
    if first.kind != StopKind.PICKUP.value or first.arrived:
        return None
    brk = v.break_planned
    if brk is not None and now < brk[1] and (brk[0] <= now or first.eta >= brk[1] - 1):
        return None  # on its break, or it comes first (the vehicle heads for the depot)
    point, since = last_known(v, now)
    leave = first.eta - travel.leg(point, first.location)[0] - margin
    return leave if leave > max(now, since) else None


@dataclass(frozen=True, slots=True)
class Whereabouts:
    """Where a vehicle was last known to be (``point``, until ``since``) and is heading."""

    point: LatLon
    since: float
    target: LatLon | None

    @classmethod
    def of(cls, v: VehicleState, now: float) -> Whereabouts:
        point, since = last_known(v, now)
        return cls(point, since, heading(v, now))

    def at(self, now: float, travel: TravelModel) -> LatLon:
        """Where the vehicle is at ``now``: on its way from ``point`` to ``target``.

        The share of the way is the time since ``since`` over the travel time of the
        leg, not over the time left to the stop's ETA: an ETA goes stale when the
        vehicle runs late, and a position read from it would make the next stops look
        reachable sooner than they are.
        """
        if self.target is None or now <= self.since:
            return self.point
        leg_s = travel.leg(self.point, self.target)[0]
        if leg_s <= 0:
            return self.point
        return interpolate(self.point, self.target, (now - self.since) / leg_s)


def estimated_position(v: VehicleState, now: float, travel: TravelModel) -> LatLon:
    """Where the vehicle is now: on its way from where it was last known to its heading."""
    return Whereabouts.of(v, now).at(now, travel)


def _lag(
    v: VehicleState, now: float, position: LatLon, free_at: float, travel: TravelModel
) -> float:
    """How much later than a start at ``position`` at ``free_at`` the heading is reached.

    The arrival is not expected before the leg the vehicle is on (``leg_start``:
    from the last stop served, the place it was sent elsewhere from, or the depot
    after a break) has taken its travel time: a position report halfway along the
    leg says how far the vehicle got, but the travel time from there need not be
    the rest of the leg's (speeds differ along the way), and an estimate that is
    too early would make later stops look reachable when they are not.
    """
    target = heading(v, now)
    start = leg_start(v, now)
    if target is None or start is None:
        return 0.0
    by_leg = start[1] + travel.leg(start[0], target)[0]
    by_position = max(now, free_at) + travel.leg(position, target)[0]
    return max(0.0, by_leg - by_position)


def _locked_stop(v: VehicleState, now: float, cfg: PlanningConfig) -> VehicleStop | None:
    """The next stop when it may no longer change: due within the late-diversion guard.

    A vehicle already waiting at its next stop is held there only from then on too.
    Before, it is free: a vehicle that drove to a pre-booked pickup hours early (the
    driver sets off for the next stop at once) can serve other rides meanwhile and
    come back by the promised window, rather than stand idle out in a village while
    requests are turned away.
    """
    if not v.stops:
        return None
    first = v.stops[0]
    if first.eta - now <= cfg.late_diversion_guard_s:
        return first
    return None


def build_problem(
    state: FleetState,
    new_ids: list[str],
    now: float,
    travel: TravelModel,
    cfg: PlanningConfig,
    only: Collection[str] | None = None,
) -> BatchJob:
    """The routing problem for all open rides plus the new batch, from ``now``.

    With ``only``, just those vehicles and the rides they hold (the new batch may
    go to any of them): the immediate mode's small problem of one request and its
    nearest vehicles.
    """
    epoch = int(now)

    def rel(t: float) -> int:
        return max(0, round(t - epoch))

    loc = _Locations()
    vehicles: list[Vehicle] = []
    hints: list[RouteHint] = []
    locked: dict[str, VehicleStop] = {}
    planned: set[str] = set()
    accepting: list[str] = []
    requests: list[Request] = []
    lock_pickup_time: dict[str, int] = {}

    for v in sorted(state.vehicles.values(), key=lambda v: v.vehicle_id):
        if only is not None and v.vehicle_id not in only:
            continue
        has_work = bool(v.stops or v.onboard)
        on_shift = v.active and v.shift_end > now
        if not (on_shift or has_work):
            continue
        # Still boarding or alighting someone: free only when that service ends; and
        # never before now, rounded up (the epoch is now rounded down: a second too
        # early on each re-plan added up to boardings after the promised window).
        position = estimated_position(v, now, travel)
        free_at = math.ceil(max(now, v.busy_until) - epoch)
        # a vehicle running behind its leg's travel time starts that much later
        free_at += math.ceil(_lag(v, now, position, epoch + free_at, travel))
        start, start_time = loc(position), free_at
        lock = _locked_stop(v, now, cfg)
        if on_break(v, now) and not (lock is not None and lock.arrived):
            # On its break at the depot: free again at the break's end.
            assert v.break_planned is not None
            start, start_time, lock = loc(v.depot), rel(v.break_planned[1]), None
        elif lock is not None:
            ride = state.rides[lock.request_id]
            kind = StopKind(lock.kind)
            start = loc(lock.location)
            # Served at its ETA, or later if the vehicle cannot be there by then (a stale
            # ETA of a vehicle running late must not make the next stops look reachable).
            arrive = free_at if lock.arrived else free_at + travel.leg(position, lock.location)[0]
            service = service_time(ride, cfg, kind)
            start_time = max(rel(lock.eta), arrive) + service
            locked[v.vehicle_id] = lock
            if kind is StopKind.PICKUP:
                # The ride time runs from the boarding, which may come before that
                # estimate: the driver boards at the ETA it was given (the window's end
                # if earlier), once there, and the vehicle may be there sooner than
                # estimated. Counted from the earliest boarding, the planned drop-off
                # keeps the maximum ride time however early the vehicle turns out to be.
                board = lock.eta
                if ride.promised_pickup is not None:
                    window = ride.promised_pickup
                    board = max(window[0], min(board, window[1]))
                picked = rel(max(board, now)) + service
                lock_pickup_time[ride.request_id] = min(picked, start_time)
        start_time = max(start_time, rel(v.shift_start))  # never planned before its shift
        end_time = rel(v.shift_end) if on_shift else HORIZON
        vehicles.append(
            Vehicle(
                id=v.vehicle_id,
                start=start,
                end=loc(v.depot),
                start_time=start_time,
                end_time=max(end_time, start_time),
                seats=v.seats,
                wheelchairs=v.wheelchairs,
            )
        )
        if on_shift:
            accepting.append(v.vehicle_id)
        rest = v.stops[1:] if lock is not None else v.stops
        refs = [StopRef(s.request_id, StopKind(s.kind)) for s in rest]
        if on_shift and break_pending(v, now):
            assert v.break_window is not None
            bid = break_id(v.vehicle_id)
            depot = loc(v.depot)
            latest = rel(v.break_window[1])
            requests.append(
                Request(
                    id=bid,
                    pickup=depot,
                    dropoff=depot,
                    pickup_window=TimeWindow(min(rel(v.break_window[0]), latest), latest),
                    seats=v.seats,  # a full vehicle: nobody on board during the break
                    wheelchairs=v.wheelchairs,
                    pickup_service=v.break_s,
                    penalty=cfg.break_penalty,
                    allowed_vehicles=(v.vehicle_id,),
                )
            )
            planned.add(bid)
            if v.break_planned is not None:
                at = next(
                    (i for i, s in enumerate(rest) if s.eta >= v.break_planned[1] - 1), len(rest)
                )
                # a break sits between a drop-off and the next pickup (the vehicle is empty)
                refs[at:at] = [StopRef(bid, StopKind.PICKUP), StopRef(bid, StopKind.DROPOFF)]
        hints.append(RouteHint(v.vehicle_id, tuple(refs)))

    vehicle_ids = {v.id for v in vehicles}
    if only is None:
        rides = state.open_rides()
    else:  # the rides the chosen vehicles hold, found without a scan of every ride
        held = [state.vehicles[vid] for vid in vehicle_ids]
        wanted = {*new_ids, *(s.request_id for v in held for s in v.stops)}
        wanted.update(rid for v in held for rid in v.onboard)
        rides = [r for rid in wanted if (r := state.rides.get(rid)) and not r.status.final]
    for ride in sorted(rides, key=lambda r: r.request_id):
        if ride.status is RideStatus.PENDING and ride.request_id not in new_ids:
            continue
        if ride.status is not RideStatus.PENDING and ride.vehicle_id not in vehicle_ids:
            continue  # another vehicle's (``only``), or its vehicle is gone: re-planned apart
        pickup_svc = service_time(ride, cfg, StopKind.PICKUP)
        dropoff_svc = service_time(ride, cfg, StopKind.DROPOFF)
        common: dict[str, Any] = {
            "id": ride.request_id,
            "pickup": loc(ride.origin),
            "dropoff": loc(ride.destination),
            "seats": ride.seats,
            "wheelchairs": ride.wheelchairs,
            "pickup_service": pickup_svc,
            "dropoff_service": dropoff_svc,
        }
        vehicle = ride.vehicle_id
        if ride.status is RideStatus.ONBOARD or ride.request_id in lock_pickup_time:
            if vehicle not in vehicle_ids:
                continue
            assert vehicle is not None
            if locked.get(vehicle) and locked[vehicle].ref == (ride.request_id, "dropoff"):
                continue  # the drop-off is the locked stop itself
            if ride.status is RideStatus.ONBOARD:
                # Times before the epoch clip to 0, so give the ride time that is left
                # instead; never less than the drop-off already planned (a delay that
                # happened must not make the problem infeasible).
                service_end = (ride.picked_up_at or now) + pickup_svc
                left = ride.max_ride_s - (epoch - service_end)
                if ride.dropoff_eta is not None:
                    left = max(left, rel(ride.dropoff_eta))
                picked, max_ride = 0, max(0, round(left))
            else:
                picked, max_ride = lock_pickup_time[ride.request_id], ride.max_ride_s
            requests.append(
                Request(
                    **common,
                    dropoff_window=_relaxed(ride.promised_dropoff, ride.dropoff_eta, rel, cfg),
                    onboard_vehicle=vehicle,
                    picked_up_at=picked,
                    max_ride_time=max_ride,
                )
            )
        elif ride.status is RideStatus.OFFERED:
            if vehicle not in vehicle_ids or vehicle not in accepting:
                continue  # re-planned separately (vehicle gone)
            assert ride.promised_pickup is not None
            movable = (
                cfg.reassign_lead_s is not None
                and ride.promised_pickup[0] > now + cfg.reassign_lead_s
            )
            opens, closes = (rel(t) for t in ride.promised_pickup)
            closes = max(closes - cfg.promise_buffer_s, opens, rel(ride.pickup_eta or 0))
            requests.append(
                Request(
                    **common,
                    max_ride_time=ride.max_ride_s,
                    pickup_window=TimeWindow(opens, closes),
                    dropoff_window=_relaxed(ride.promised_dropoff, ride.dropoff_eta, rel, cfg),
                    allowed_vehicles=tuple(accepting) if movable else (vehicle,),
                )
            )
        else:  # a new request of this batch
            if not accepting:
                continue  # answered as unserved by apply_plan
            pickup = TimeWindow(rel(ride.earliest_pickup), max(rel(ride.latest_pickup), 0))
            dropoff = (
                TimeWindow(0, max(rel(ride.latest_dropoff), pickup.earliest))
                if ride.latest_dropoff is not None
                else TimeWindow()
            )
            requests.append(
                Request(
                    **common,
                    max_ride_time=ride.max_ride_s,
                    pickup_window=pickup,
                    dropoff_window=dropoff,
                    penalty=cfg.unserved_penalty,
                    allowed_vehicles=tuple(accepting),
                )
            )
        planned.add(ride.request_id)

    hints = [
        RouteHint(h.vehicle_id, tuple(s for s in h.stops if s.request_id in planned)) for h in hints
    ]
    duration, distance = travel.matrix(loc.points)
    problem = Problem(
        duration=duration,
        distance=distance,
        vehicles=tuple(vehicles),
        requests=tuple(requests),
        hint=tuple(hints),
        name=f"batch@{epoch}",
        early_service=True,
    )
    snapshot = {
        v.vehicle_id: v.stop_refs()
        for v in state.vehicles.values()
        if only is None or v.vehicle_id in only
    }
    return BatchJob(
        problem,
        epoch,
        tuple(new_ids),
        locked,
        tuple(loc.points),
        snapshot,
        "batch" if new_ids else "reopt",
    )


def _relaxed(
    promised: float | None, eta: float | None, rel: Callable[[float], int], cfg: PlanningConfig
) -> TimeWindow:
    """A drop-off window that keeps a promise, with ``promise_buffer_s`` in reserve, but
    never makes a delay infeasible (a drop-off planned later keeps its time)."""
    if promised is None:
        return TimeWindow()
    latest = max(0, rel(promised) - cfg.promise_buffer_s)
    if eta is not None:
        latest = max(latest, rel(eta))
    return TimeWindow(0, latest)


def mandatory_missing(job: BatchJob, plan: Plan) -> list[str]:
    """Requests the plan must serve (promises, passengers on board) but does not."""
    served = plan.served
    return [r.id for r in job.problem.requests if r.penalty is None and r.id not in served]


def plan_problems(job: BatchJob, plan: Plan) -> list[str]:
    """Why ``plan`` must not be taken: promises it drops, or rules it breaks.

    Checked with the independent plan checker (``solvers/check.py``), so a solver
    bug cannot break a promised window or ride time.
    """
    missing = mandatory_missing(job, plan)
    if missing:
        return [f"mandatory request {rid} not served" for rid in missing]
    return check_plan(job.problem, plan)


def untimeable(job: BatchJob) -> list[str]:
    """Vehicles whose routes, as they stand, have no feasible schedule.

    Promised windows grow with the ETAs last sent, but a vehicle estimated to run
    later than those (its position and leg say so) can miss a drop-off window or
    a passenger's maximum ride time by some seconds until it is there; or a
    vehicle fell silent long ago and holds a ride it can no longer serve.
    """
    scheduler = Scheduler(job.problem)
    out = []
    for h in job.problem.hint:
        seq = scheduler.resolve(h.stops)
        vehicle = scheduler.vehicles[h.vehicle_id]
        if isinstance(seq, Infeasible) or isinstance(scheduler.times(vehicle, seq), Infeasible):
            out.append(h.vehicle_id)
    return out


def plan_break_soonest(
    state: FleetState,
    vehicle_id: str,
    now: float,
    travel: TravelModel,
    cfg: PlanningConfig,
    step_s: int = 60,
) -> tuple[BatchJob, Plan] | None:
    """The vehicle's route with its pending break inserted as early as it fits.

    Every other stop of the vehicle keeps its order (its promises are checked by
    ``plan_problems``); the break goes where it can start soonest inside its
    window (to ``step_s``): feasibility only grows with a later latest start, so
    the least one that fits is found by bisection. The job and plan cover this
    vehicle alone. None if no break fits.
    """
    job = build_problem(state, [], now, travel, cfg)
    bid = break_id(vehicle_id)
    brk = next((r for r in job.problem.requests if r.id == bid), None)
    hint = next((h for h in job.problem.hint if h.vehicle_id == vehicle_id), None)
    if brk is None or hint is None:
        return None
    held = {s.request_id for s in hint.stops} | {bid}
    mine = tuple(
        # a confirmed ride that may move to another vehicle stays here in this problem
        replace(r, allowed_vehicles=(vehicle_id,)) if r.allowed_vehicles else r
        for r in job.problem.requests
        if r.onboard_vehicle == vehicle_id or r.id in held
    )
    routes = {vehicle_id: [s for s in hint.stops if s.request_id != bid]}
    base = replace(
        job.problem,
        vehicles=tuple(v for v in job.problem.vehicles if v.id == vehicle_id),
        requests=mine,
        hint=(RouteHint(vehicle_id, tuple(routes[vehicle_id])),),
        name=f"break:{vehicle_id}@{job.epoch}",
    )

    def attempt(latest: int) -> tuple[BatchJob, Plan] | None:
        window = TimeWindow(brk.pickup_window.earliest, latest)
        problem = replace(
            base,
            requests=tuple(replace(r, pickup_window=window) if r.id == bid else r for r in mine),
        )
        plan = insert_request(problem, routes, bid)
        if plan is None or bid not in plan.served:
            return None
        sub = replace(job, problem=problem, kind="break")
        return None if plan_problems(sub, plan) else (sub, plan)

    low, high = brk.pickup_window.earliest, brk.pickup_window.latest
    best = attempt(high)
    if best is None:
        return None
    while high - low > step_s:
        middle = (low + high) // 2
        found = attempt(middle)
        if found is None:
            low = middle
        else:
            high, best = middle, found
    return best


def latest_departures(
    state: FleetState, v: VehicleState, travel: TravelModel, cfg: PlanningConfig
) -> list[float]:
    """For each of the vehicle's stops, the latest time it may leave that stop.

    Leaving stop ``i`` later than ``result[i]`` would break a promise further on:
    a later pickup's promised window, a promised latest drop-off, the maximum ride
    time of a passenger on board, a planned break or the return to the depot by the
    shift end. It bounds how long a driver may wait for a passenger who does not
    come (``no_show_wait_s`` must not make the riders on board late). Computed
    backwards from the end of the route: ``L[j] = min(latest[j], L[j+1] - service[j]
    - travel(j, j+1))``; waiting can only absorb delays, so this is safe.

    At a pickup it holds both ways the vehicle may leave: with the passenger, by
    the planned route, and without (a no-show), by the route without the
    passenger's drop-off. Travel times need not obey the triangle inequality (the
    area model drives around a town faster than through it), so the shorter route
    can take longer.
    """
    inf = math.inf
    # (location, latest start of service, service seconds, stop ref or None) of every
    # stop, in order, then the planned break (at the depot) and the depot by the
    # shift end.
    items: list[tuple[LatLon, float, float, tuple[str, str] | None]] = []
    brk = v.break_planned
    brk_latest = brk[0] if brk is not None else inf
    if brk is not None and v.break_window is not None:
        brk_latest = max(brk[0], v.break_window[1])
    brk_at = len(v.stops)
    if brk is not None:
        brk_at = next((i for i, s in enumerate(v.stops) if s.eta >= brk[1] - 1), len(v.stops))
    no_show_routes: dict[int, tuple[str, str]] = {}  # stop index -> drop-off it skips
    for i, s in enumerate(v.stops):
        if i == brk_at and brk is not None:
            items.append((v.depot, brk_latest, brk[1] - brk[0], None))
        ride = state.rides.get(s.request_id)
        latest, svc = inf, 0.0
        if ride is not None:
            kind = StopKind(s.kind)
            svc = service_time(ride, cfg, kind)
            if kind is StopKind.PICKUP and ride.promised_pickup is not None:
                latest = ride.promised_pickup[1]
            elif kind is StopKind.DROPOFF:
                if ride.promised_dropoff is not None:
                    latest = ride.promised_dropoff
                if ride.status is RideStatus.ONBOARD and ride.picked_up_at is not None:
                    picked = ride.picked_up_at + service_time(ride, cfg, StopKind.PICKUP)
                    latest = min(latest, picked + ride.max_ride_s)
            if kind is StopKind.PICKUP and ride.status is not RideStatus.ONBOARD:
                no_show_routes[i] = (s.request_id, StopKind.DROPOFF.value)
        items.append((s.location, latest, svc, s.ref))
    if brk_at == len(v.stops) and brk is not None:
        items.append((v.depot, brk_latest, brk[1] - brk[0], None))
    items.append((v.depot, v.shift_end if v.active else inf, 0.0, None))

    # latest start of service at each item, backwards
    legs = [travel.leg(items[j][0], items[j + 1][0])[0] for j in range(len(items) - 1)]
    latest_start = [0.0] * len(items)
    latest_start[-1] = items[-1][1]
    for j in range(len(items) - 2, -1, -1):
        latest_start[j] = min(items[j][1], latest_start[j + 1] - items[j][2] - legs[j])
    index = {ref: j for j, (_, _, _, ref) in enumerate(items) if ref is not None}
    result = [latest_start[index[s.ref] + 1] - legs[index[s.ref]] for s in v.stops]
    for i, skipped in no_show_routes.items():
        k, d = index[v.stops[i].ref], index.get(skipped)
        if d is None:
            continue
        # the way without the drop-off differs only up to it: from the item after it
        # (whose latest start stands) back to the pickup
        here, ls = items[d + 1][0], latest_start[d + 1]
        for j in range(d - 1, k, -1):
            loc, latest, svc, _ = items[j]
            ls = min(latest, ls - svc - travel.leg(loc, here)[0])
            here = loc
        result[i] = min(result[i], ls - travel.leg(items[k][0], here)[0])
    return result
