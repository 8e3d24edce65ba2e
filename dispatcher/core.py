"""The dispatcher's functional core: events in, events out, time passed in.

``DispatchCore`` owns the fleet state and the batching policy. The shell (live
service or simulator) feeds it decoded events with ``handle``, asks it for a
``prepare``-d batch when ``due``, solves the problem wherever it likes (a process
pool, or inline), and hands the plan back to ``complete``. Nothing here awaits,
reads a clock or touches Kafka or PostgreSQL.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np

from dispatcher.anticipation import (
    AnticipationConfig,
    RateEstimate,
    sample_requests,
    with_samples,
    without_samples,
)
from dispatcher.batching import BatchPolicy
from dispatcher.clock import to_datetime, to_timestamp
from dispatcher.geo import LatLon, TravelModel, haversine_m, haversine_many
from dispatcher.planning import (
    BREAK_PREFIX,
    BatchJob,
    PlanningConfig,
    Whereabouts,
    break_id,
    break_pending,
    build_problem,
    estimated_position,
    heading,
    last_known,
    latest_departures,
    on_break,
    plan_break_soonest,
    plan_problems,
    service_time,
    set_off_time,
    untimeable,
)
from dispatcher.prefilter import may_insert
from dispatcher.rebalancing import RebalancingConfig, assign
from dispatcher.state import FleetState, Ride, RideStatus, VehicleState, VehicleStop
from schemas.dispatch import (
    DriverPlanV1,
    PlannedStop,
    RejectionReason,
    RideOfferedV1,
    RideRejectedV1,
    StopAction,
)
from schemas.envelope import Event, Place
from schemas.passenger import RideCancelledV1, RideRequestedV1, TimeType
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
from solvers.base import SolverError
from solvers.insertion import InsertionState, insert_request, insertion_solve
from solvers.model import Plan, SolveLimits, SolveStats, StopKind, StopRef, TimeWindow

log = logging.getLogger(__name__)

#: a no-show cut short to keep other promises may come this much before the
#: latest departure (clocks and reports are not to the second)
NO_SHOW_TOLERANCE_S = 5.0


@dataclass(frozen=True, slots=True)
class Area:
    """A service area as a bounding box (WGS84)."""

    lat_min: float
    lat_max: float
    lon_min: float
    lon_max: float

    def contains(self, p: LatLon) -> bool:
        return self.lat_min <= p.lat <= self.lat_max and self.lon_min <= p.lon <= self.lon_max


@dataclass(frozen=True, slots=True)
class VirtualStop:
    """A stop passengers are picked up at and dropped off at (requests snap to it)."""

    id: str
    lat: float
    lon: float
    name: str | None = None

    @property
    def point(self) -> LatLon:
        return LatLon(self.lat, self.lon)


@dataclass(frozen=True, slots=True)
class CoreConfig:
    """Everything the core needs to decide; built by the shell from ``Settings``.

    ``mode`` is ``"batch"`` (requests wait ``batch_window_s`` and are solved
    together by the shell's solver) or ``"immediate"`` (each request is answered
    inside ``handle`` by cheapest insertion into the current routes). With
    ``reopt_every_s > 0`` the core also asks the shell (``due``/``prepare``) to
    re-optimise every open ride that often, if anything changed since the last time.
    """

    planning: PlanningConfig = field(default_factory=PlanningConfig)
    batch_window_s: float = 2.0
    batch_max_size: int = 50
    areas: dict[str, Area] = field(default_factory=dict)  # empty: any zone, anywhere
    max_prebook_s: int = 7 * 24 * 3600
    past_tolerance_s: int = 300
    forget_after_s: int = 6 * 3600
    source: str = "dispatcher"
    mode: str = "batch"
    reopt_every_s: float = 0.0
    #: a no-show is accepted only this long after arriving (and the window opening)
    no_show_wait_s: float = 300.0
    #: virtual stops requests snap to (empty: door to door)
    stops: tuple[VirtualStop, ...] = ()
    walk_max_m: float = 500.0
    #: local service hours (start, end); the end may exceed 24 (after midnight)
    service_hours: tuple[float, float] | None = None
    timezone: str = "Europe/Berlin"
    #: rejected for lack of a vehicle: try later pickups in these steps, this many times
    alternative_step_s: int = 1800
    alternative_tries: int = 4
    #: immediate insertion tries the vehicles nearest the pickup in groups of this many
    #: (the first group that can take the ride wins), at most ``insertion_groups``
    #: groups (0: all); ``insertion_candidates`` 0: every vehicle at once
    insertion_candidates: int = 5
    insertion_groups: int = 0
    #: immediate insertion: each second a new passenger would arrive later than the
    #: earliest possible costs this many metres (0: the cheapest place by distance
    #: alone); rides done sooner free the vehicles sooner for the next requests
    insertion_wait_cost: float = 0.0
    #: idle vehicles sent to standby points of the expected demand (off: no points)
    rebalancing: RebalancingConfig = field(default_factory=RebalancingConfig)
    #: requests sampled from the expected demand in every batch problem (off: no forecast)
    anticipation: AnticipationConfig = field(default_factory=AnticipationConfig)

    def __post_init__(self) -> None:
        if self.mode not in {"batch", "immediate"}:
            raise ValueError(f"CoreConfig mode {self.mode!r} not understood")


@dataclass(slots=True)
class Handled:
    """What handling one input event produced; ``dead_letter`` is a reason to reject it."""

    outputs: list[Event] = field(default_factory=list)
    dead_letter: str | None = None


def _place(p: LatLon, stop_id: str | None = None) -> Place:
    return Place(lat=p.lat, lon=p.lon, stop_id=stop_id)


class DispatchCore:
    """Fleet state + batching + turning plans into promises and driver plans."""

    def __init__(
        self, config: CoreConfig, travel: TravelModel, state: FleetState | None = None
    ) -> None:
        self.config = config
        self.travel = travel
        self.state = state or FleetState()
        self.batch = BatchPolicy(config.batch_window_s, config.batch_max_size)
        for ride in sorted(self.state.rides.values(), key=lambda r: r.received_at):
            if ride.status is RideStatus.PENDING:
                self.batch.offer(ride.request_id, ride.received_at)
        #: routes changed this many times; re-optimise when it moved since the last time
        self.changes = 0
        self._reopt_changes = 0
        self._next_reopt: float | None = None
        #: when each idle vehicle was last considered for a relocation
        self._idle_checked: dict[str, float] = {}
        #: the immediate requests seen lately: the level of the demand to anticipate
        self.demand_rate = RateEstimate(config.anticipation)
        for ride in sorted(self.state.rides.values(), key=lambda r: r.received_at):
            if _immediate(ride):
                self.demand_rate.observe(ride.received_at)

    # -- input -------------------------------------------------------------------------

    def handle(self, event: Event, now: float) -> Handled:
        """Apply one decoded input event."""
        self.demand_rate.begin(now)  # requests are seen from the first event on
        match event:
            case RideRequestedV1():
                return self._requested(event, now)
            case RideCancelledV1():
                return self._cancelled(event, now)
            case ShiftStartedV1():
                return self._shift_started(event, now)
        vehicle_id = getattr(event, "vehicle_id", None)
        vehicle = self.state.vehicles.get(vehicle_id) if vehicle_id else None
        if vehicle is None:
            return Handled(dead_letter=f"unknown vehicle {vehicle_id!r}")
        match event:
            case ShiftEndedV1():
                return self._shift_ended(vehicle, now)
            case PositionUpdatedV1():
                vehicle.position = LatLon(event.position.lat, event.position.lon)
                vehicle.position_at = now
                self.state.touch_vehicle(vehicle)
                return Handled()
            case ArrivedAtStopV1():
                return self._arrived(vehicle, event, now)
            case BreakRequestedV1():
                return self._break_requested(vehicle, event, now)
            case PassengerBoardedV1() | PassengerAlightedV1() | NoShowV1():
                return self._at_stop(vehicle, event, now)
        return Handled(dead_letter=f"the dispatcher does not handle {type(event).__name__}")

    def _reject(
        self,
        ride: Ride,
        reason: RejectionReason,
        message: str,
        now: float,
        alternative: float | None = None,
    ) -> RideRejectedV1:
        ride.status = RideStatus.REJECTED
        ride.outcome_reason = reason.value
        if ride.replanned_from is not None:
            ride.outcome_reason = f"re-plan off {ride.replanned_from}: {reason.value}"
        self.state.touch_ride(ride)
        return RideRejectedV1(
            occurred_at=to_datetime(now),
            source=self.config.source,
            request_id=ride.request_id,
            zone=ride.zone,
            reason=reason,
            message=message,
            alternative_pickup=to_datetime(alternative) if alternative is not None else None,
        )

    def _reject_no_vehicle(
        self, ride: Ride, now: float, nearest: BatchJob | None = None
    ) -> RideRejectedV1:
        message = "no vehicle can serve this ride within the time window"
        if ride.replanned_from is not None:
            message = f"vehicle {ride.replanned_from} is out of service and no other can take it"
        alternative = self.alternative_pickup(ride, now, nearest)
        return self._reject(ride, RejectionReason.NO_VEHICLE, message, now, alternative)

    def alternative_pickup(
        self, ride: Ride, now: float, nearest: BatchJob | None = None
    ) -> float | None:
        """A later pickup time the current routes could take (by insertion), or None.

        Tries the pickup window shifted by ``alternative_step_s``, up to
        ``alternative_tries`` times, with the vehicles nearest the pickup (a
        suggestion, not a search of the whole fleet); nothing is reserved.
        ``nearest`` is the insertion problem of the ride with those vehicles, if
        already built.
        """
        cfg = self.config
        if ride.latest_dropoff is not None or cfg.alternative_tries <= 0:
            return None  # an arrival booking: a later pickup misses the arrival
        if nearest is None:
            saved = ride.status
            ride.status = RideStatus.PENDING  # as a new request in the problem
            try:
                group = next(self._candidate_groups(ride, now))
                nearest = build_problem(
                    self.state, [ride.request_id], now, self.travel, cfg.planning, group
                )
            finally:
                ride.status = saved
        problem = nearest.problem
        request = next((r for r in problem.requests if r.id == ride.request_id), None)
        if request is None:
            return None
        for k in range(1, cfg.alternative_tries + 1):
            shift = k * cfg.alternative_step_s
            if not self.in_service_hours(ride.earliest_pickup + shift):
                continue
            window = request.pickup_window
            later = replace(
                request, pickup_window=TimeWindow(window.earliest + shift, window.latest + shift)
            )
            requests = tuple(later if r is request else r for r in problem.requests)
            job = replace(nearest, problem=replace(problem, requests=requests))
            plan = self._insertion(job, ride.request_id, repair=False)
            if plan is None or plan_problems(job, plan):
                continue
            for route in plan.routes:
                for stop in route.stops:
                    if stop.request_id == ride.request_id and stop.kind.value == "pickup":
                        return float(job.epoch + stop.service_start)
        return None

    # -- immediate mode ------------------------------------------------------------------

    def _insertion(self, job: BatchJob, request_id: str, repair: bool = True) -> Plan | None:
        """The current routes with ``request_id`` inserted cheaply (None: impossible).

        When no place fits and ``repair``, a short insertion search may rebuild the
        routes around it, but never drops anything they already hold.
        """
        problem = job.problem
        if all(r.id != request_id for r in problem.requests):
            return None  # no vehicle on shift takes new rides
        routes: dict[str, list[StopRef]] = {h.vehicle_id: list(h.stops) for h in problem.hint}
        current: Plan | dict[str, list[StopRef]] = routes
        hinted = {s.request_id for stops in routes.values() for s in stops}
        for r in problem.requests:
            if r.id.startswith(BREAK_PREFIX) and r.id not in hinted:
                with_break = insert_request(problem, current, r.id)
                if with_break is not None:
                    current = with_break
        plan = insert_request(
            problem, current, request_id, wait_cost=self.config.insertion_wait_cost
        )
        if plan is None and repair:
            # The routes as they stand may be infeasible (delays): repair them all, but
            # never at the cost of what they already hold (a break included).
            before = {s.request_id for r in problem.hint for s in r.stops}
            if isinstance(current, Plan):
                before |= current.served
            try:
                plan = insertion_solve(problem, SolveLimits(0.05))
            except SolverError:  # a route it cannot time at all (late for the shift end)
                return None
            if request_id not in plan.served or not before <= plan.served:
                return None
        return plan

    def _candidate_groups(
        self, ride: Ride, now: float, possible_only: bool = False
    ) -> Iterator[list[str]]:
        """Vehicles on shift, nearest to the pickup first, in groups for insertion.

        A vehicle's distance is the shortest straight line from where it is or any
        stop it will visit to the pickup: cheap, and the vehicles that can take a
        ride cheaply are almost always among the nearest. Problem size (its matrix
        is quadratic in the stops) then grows with the group, not with the fleet,
        and the vehicles beyond ``insertion_groups`` groups, too far to pick the
        ride up in time or at a sensible cost, are not tried (as in MATSim's DRT
        insertion search, which also limits the vehicles it considers).

        With ``possible_only``, the groups after the nearest hold only vehicles
        ``prefilter.may_insert`` cannot rule out (their routes have no place for the
        ride), judged lazily as the groups are asked for: a ride no vehicle can take
        builds no problem beyond the first group.
        """
        on_shift = [v for v in self.state.vehicles.values() if v.active and v.shift_end > now]
        size = self.config.insertion_candidates
        if size <= 0 or len(on_shift) <= size:
            yield sorted(v.vehicle_id for v in on_shift)
            return

        owner: list[int] = []
        points: list[LatLon] = []
        for i, v in enumerate(on_shift):
            points.append(v.position)
            points.extend(s.location for s in v.stops)
            owner.extend([i] * (1 + len(v.stops)))
        metres = haversine_many(points, ride.origin)
        nearest = np.full(len(on_shift), np.inf)
        np.minimum.at(nearest, np.asarray(owner), metres)
        order = sorted(range(len(on_shift)), key=lambda i: (nearest[i], on_shift[i].vehicle_id))
        ranked = [on_shift[i] for i in order]
        groups = self.config.insertion_groups or len(ranked)
        # the nearest group as it is: its routes may be repaired around the ride
        yield [v.vehicle_id for v in ranked[:size]]
        kept: list[VehicleState] = []
        for i in range(size, len(ranked), size):
            chunk = ranked[i : i + size]
            if possible_only:
                ok = may_insert(self.state, ride, chunk, now, self.config.planning, self.travel)
                chunk = [v for v, possible in zip(chunk, ok, strict=True) if possible]
            kept.extend(chunk)
            last = i + size >= len(ranked)
            while kept and (len(kept) >= size or last):
                groups -= 1
                if groups <= 0:
                    return
                yield [v.vehicle_id for v in kept[:size]]
                kept = kept[size:]

    def _insert_nearest(self, ride: Ride, now: float) -> tuple[BatchJob, Plan] | BatchJob:
        """``ride`` inserted into the routes of the nearest vehicle group that can take it.

        Only the nearest group may have its routes rebuilt around the ride (the
        costly part of a rejection). Returns the job and plan, or, when no group
        can take the ride, the nearest group's job (for an alternative offer).
        """
        nearest: BatchJob | None = None
        for group in self._candidate_groups(ride, now, possible_only=True):
            job = build_problem(
                self.state, [ride.request_id], now, self.travel, self.config.planning, group
            )
            job = replace(job, kind="insert")
            plan = self._insertion(job, ride.request_id, repair=nearest is None)
            if plan is None:
                # insertion keeps every route of the group: one that cannot be kept (a
                # vehicle running late, for minutes) would turn every ride away
                fewer = self._without_untimeable(job, group, now)
                if fewer is not job:
                    job = fewer
                    plan = self._insertion(job, ride.request_id, repair=nearest is None)
            if plan is not None and not plan_problems(job, plan):
                return job, plan
            nearest = nearest or job
        assert nearest is not None  # there is always one group, if an empty one
        return nearest

    def _insert_now(self, request_ids: list[str], now: float) -> list[Event]:
        """Answer requests at once: insert each into the routes, offer or reject."""
        outputs: list[Event] = []
        for rid in request_ids:
            ride = self.state.rides[rid]
            found = self._insert_nearest(ride, now)
            if isinstance(found, BatchJob):
                outputs.append(self._reject_no_vehicle(ride, now, found))
                continue
            outputs.extend(self.complete(*found, now))
        return _dedupe_plans(outputs)

    def _requested(self, e: RideRequestedV1, now: float) -> Handled:
        known = self.state.rides.get(e.request_id)
        if known is not None:
            if known.event_id == str(e.event_id):
                return Handled()  # a redelivery of what we already have
            return Handled(dead_letter=f"request id {e.request_id!r} is already in use")
        pc = self.config.planning
        origin, origin_stop, walk_o = self._snap(e.origin)
        destination, destination_stop, walk_d = self._snap(e.destination)
        direct_s, _ = self.travel.leg(origin, destination)
        max_ride = round(pc.ride_alpha * direct_s + pc.ride_beta_s)
        ride = Ride(
            request_id=e.request_id,
            zone=e.zone,
            passenger_ref=e.passenger_ref,
            origin=origin,
            destination=destination,
            seats=e.seats,
            wheelchairs=e.wheelchairs,
            received_at=now,
            earliest_pickup=now,
            latest_pickup=now + pc.max_wait_s,
            latest_dropoff=None,
            direct_s=direct_s,
            max_ride_s=max_ride,
            origin_stop_id=origin_stop,
            destination_stop_id=destination_stop,
            event_id=str(e.event_id),
            walk_m=round((walk_o or 0) + (walk_d or 0)),
        )
        self.state.rides[ride.request_id] = ride
        if walk_o is None or walk_d is None:
            where = "origin" if walk_o is None else "destination"
            message = f"no stop within {self.config.walk_max_m:.0f} m of the {where}"
            return Handled([self._reject(ride, RejectionReason.OUTSIDE_AREA, message, now)])
        problem = self._admission_problem(e, ride, now)
        if problem is not None:
            reason, message, alternative = problem
            return Handled([self._reject(ride, reason, message, now, alternative)])
        self.state.touch_ride(ride)
        if _immediate(ride):
            self.demand_rate.observe(now)
        if self.config.mode == "immediate":
            return Handled(self._insert_now([ride.request_id], now))
        self.batch.offer(ride.request_id, now)
        return Handled()

    def _snap(self, place: Place) -> tuple[LatLon, str | None, float | None]:
        """The stop a passenger walks to: (point, stop id, walk metres; None: too far)."""
        p = LatLon(place.lat, place.lon)
        stops = self.config.stops
        if not stops:
            return p, place.stop_id, 0.0
        for s in stops:
            if place.stop_id is not None and s.id == place.stop_id:
                return s.point, s.id, 0.0
        best = min(stops, key=lambda s: haversine_m(p, s.point))
        walk = haversine_m(p, best.point)
        if walk > self.config.walk_max_m:
            return p, None, None
        return best.point, best.id, walk

    def in_service_hours(self, t: float) -> bool:
        """Whether ``t`` falls inside the configured service hours (always, if none)."""
        hours = self.config.service_hours
        if hours is None:
            return True
        start, end = hours
        local = datetime.fromtimestamp(t, ZoneInfo(self.config.timezone))
        h = local.hour + local.minute / 60 + local.second / 3600
        return (h - start) % 24 < (end - start) or end - start >= 24

    def next_service_start(self, t: float) -> float | None:
        """The next opening of the service after ``t`` (None without service hours)."""
        hours = self.config.service_hours
        if hours is None:
            return None
        tz = ZoneInfo(self.config.timezone)
        day = datetime.fromtimestamp(t, tz).date()
        for offset in (-1, 0, 1):
            opening = datetime(day.year, day.month, day.day, tzinfo=tz) + timedelta(
                days=offset, hours=hours[0]
            )
            if opening.timestamp() >= t:
                return opening.timestamp()
        return None

    def _admission_problem(
        self, e: RideRequestedV1, ride: Ride, now: float
    ) -> tuple[RejectionReason, str, float | None] | None:
        problem = self._admission_checks(e, ride, now)
        if problem is not None:
            return (*problem, None)
        desired = ride.earliest_pickup if ride.latest_dropoff is None else ride.latest_pickup
        if not self.in_service_hours(desired):
            alternative = self.next_service_start(desired)
            if alternative is not None and alternative > now + self.config.max_prebook_s:
                alternative = None
            return RejectionReason.OUTSIDE_HOURS, "outside the service hours", alternative
        return None

    def _admission_checks(
        self, e: RideRequestedV1, ride: Ride, now: float
    ) -> tuple[RejectionReason, str] | None:
        cfg, pc = self.config, self.config.planning
        if cfg.areas:
            area = cfg.areas.get(e.zone)
            if area is None:
                return RejectionReason.OUTSIDE_AREA, f"zone {e.zone!r} is not served"
            if not (area.contains(ride.origin) and area.contains(ride.destination)):
                return RejectionReason.OUTSIDE_AREA, "origin or destination outside the area"
        fleet = list(self.state.vehicles.values())
        if fleet and not any(v.seats >= e.seats and v.wheelchairs >= e.wheelchairs for v in fleet):
            return RejectionReason.CAPACITY, "no vehicle has that many seats/wheelchair places"
        if e.requested_time is not None:
            t = to_timestamp(e.requested_time)
            if t < now - cfg.past_tolerance_s:
                return RejectionReason.INVALID, "requested time is in the past"
            if t > now + cfg.max_prebook_s:
                return RejectionReason.INVALID, "requested time is too far ahead"
            if e.time_type is TimeType.DEPARTURE:
                ride.earliest_pickup = max(now, t)
                ride.latest_pickup = ride.earliest_pickup + pc.prebook_late_s
            else:
                ride.latest_dropoff = t
                service = pc.pickup_service_s + (pc.wheelchair_service_s if e.wheelchairs else 0)
                ride.latest_pickup = t - ride.direct_s - service
                ride.earliest_pickup = max(now, t - pc.arrival_early_s - ride.max_ride_s)
                if ride.latest_pickup < now:
                    return RejectionReason.NO_VEHICLE, "the arrival time cannot be reached"
        return None

    def _cancelled(self, e: RideCancelledV1, now: float) -> Handled:
        ride = self.state.rides.get(e.request_id)
        if ride is None:
            return Handled(dead_letter=f"cancellation of unknown request {e.request_id!r}")
        if ride.status.final:
            return Handled()
        if ride.status is RideStatus.ONBOARD:
            return Handled(dead_letter=f"request {e.request_id!r} is on board, too late to cancel")
        self.batch.withdraw(ride.request_id)
        ride.status = RideStatus.CANCELLED
        ride.outcome_reason = e.reason or "cancelled by passenger"
        self.state.touch_ride(ride)
        return Handled(self._drop_stops(ride, now))

    def _drop_stops(self, ride: Ride, now: float) -> list[Event]:
        vehicle = self.state.vehicles.get(ride.vehicle_id or "")
        if vehicle is None:
            return []
        was = Whereabouts.of(vehicle, now)
        changed = vehicle.remove_stop(ride.request_id, "pickup")
        changed = vehicle.remove_stop(ride.request_id, "dropoff") or changed
        if not changed:
            return []
        self._redirected(vehicle, was, now)
        self._changed(now)
        return [self._new_plan_version(vehicle, now)]

    def _shift_started(self, e: ShiftStartedV1, now: float) -> Handled:
        position = e.position or e.depot
        old = self.state.vehicles.get(e.vehicle_id)
        vehicle = VehicleState(
            vehicle_id=e.vehicle_id,
            zone=e.zone,
            seats=e.seats,
            wheelchairs=e.wheelchairs,
            depot=LatLon(e.depot.lat, e.depot.lon),
            shift_start=to_timestamp(e.shift_start),
            shift_end=to_timestamp(e.shift_end),
            position=LatLon(position.lat, position.lon),
            position_at=now,
            break_s=e.break_duration_s,
        )
        if e.break_window_start is not None and e.break_window_end is not None:
            vehicle.break_window = (
                to_timestamp(e.break_window_start),
                to_timestamp(e.break_window_end),
            )
        if old is not None:  # a new shift keeps what the vehicle still has to do
            vehicle.stops, vehicle.onboard = old.stops, old.onboard
            vehicle.plan_version = old.plan_version
        self.state.vehicles[e.vehicle_id] = vehicle
        self.state.touch_vehicle(vehicle)
        return Handled()

    def _shift_ended(self, vehicle: VehicleState, now: float) -> Handled:
        """A shift end or breakdown: passengers not yet on board move to other vehicles.

        Each of them is told again: a new ``RideOfferedV1`` (new vehicle and window)
        or a ``RideRejectedV1`` (``no_vehicle``, with an alternative where one exists).
        Their pickup may now be as late as ``max_wait_s`` from now.
        """
        vehicle.active = False
        vehicle.standby = vehicle.standby_id = None
        self.state.touch_vehicle(vehicle)
        outputs: list[Event] = []
        moved: list[str] = []
        pc = self.config.planning
        was = Whereabouts.of(vehicle, now)
        for stop in list(vehicle.stops):
            ride = self.state.rides.get(stop.request_id)
            if ride is not None and ride.status is RideStatus.OFFERED:
                vehicle.remove_stop(ride.request_id, "pickup")
                vehicle.remove_stop(ride.request_id, "dropoff")
                promised_end = ride.promised_pickup[1] if ride.promised_pickup else 0.0
                ride.earliest_pickup = max(now, ride.earliest_pickup)
                ride.latest_pickup = max(
                    ride.latest_pickup, promised_end, ride.earliest_pickup + pc.max_wait_s
                )
                ride.status, ride.vehicle_id = RideStatus.PENDING, None
                ride.replanned_from = vehicle.vehicle_id
                self.state.touch_ride(ride)
                moved.append(ride.request_id)
        if moved:
            self._redirected(vehicle, was, now)
            self._changed(now)
            outputs.append(self._new_plan_version(vehicle, now))
            if self.config.mode == "immediate":
                moved.sort(key=lambda rid: self.state.rides[rid].earliest_pickup)
                outputs.extend(self._insert_now(moved, now))
            else:
                for rid in moved:
                    self.batch.offer(rid, now)
        return Handled(outputs)

    def _arrived(self, vehicle: VehicleState, e: ArrivedAtStopV1, now: float) -> Handled:
        vehicle.position = LatLon(e.position.lat, e.position.lon)
        vehicle.position_at = now
        # the next stop of each ride named: its pickup, not also its drop-off further on
        ids = set(e.request_ids)
        for stop in vehicle.stops:
            if stop.request_id in ids:
                ids.discard(stop.request_id)
                if not stop.arrived:
                    stop.arrived, stop.arrived_at = True, now
        self.state.touch_vehicle(vehicle)
        return Handled()

    def _break_requested(self, vehicle: VehicleState, e: BreakRequestedV1, now: float) -> Handled:
        """A break from now, as soon as the promises allow, starting by ``latest_start``.

        It replaces a break planned but not begun; the vehicle is re-planned at once.
        """
        vid = vehicle.vehicle_id
        if not vehicle.active or vehicle.shift_end <= now:
            return Handled(dead_letter=f"vehicle {vid!r} is not on shift")
        if on_break(vehicle, now):
            return Handled(dead_letter=f"vehicle {vid!r} is on a break already")
        saved = (vehicle.break_window, vehicle.break_s, vehicle.break_planned)
        latest = max(now, min(to_timestamp(e.latest_start), vehicle.shift_end))
        vehicle.break_window, vehicle.break_s, vehicle.break_planned = (
            (now, latest),
            e.duration_s,
            None,
        )
        found = plan_break_soonest(self.state, vid, now, self.travel, self.config.planning)
        if found is None:
            vehicle.break_window, vehicle.break_s, vehicle.break_planned = saved
            return Handled(
                dead_letter=f"no break of {e.duration_s} s for {vid!r} can start by "
                f"{to_datetime(latest).isoformat()} without breaking a promise"
            )
        return Handled(self.complete(*found, now))

    def _at_stop(
        self,
        vehicle: VehicleState,
        e: PassengerBoardedV1 | PassengerAlightedV1 | NoShowV1,
        now: float,
    ) -> Handled:
        ride = self.state.rides.get(e.request_id)
        if ride is None or ride.vehicle_id != vehicle.vehicle_id:
            return Handled(
                dead_letter=f"request {e.request_id!r} is not planned on {vehicle.vehicle_id!r}"
            )
        expected = RideStatus.ONBOARD if isinstance(e, PassengerAlightedV1) else RideStatus.OFFERED
        if ride.status is not expected:
            if ride.status.final or (
                ride.status is RideStatus.ONBOARD and isinstance(e, PassengerBoardedV1)
            ):
                return Handled()  # already done: a repeated report
            return Handled(dead_letter=f"request {e.request_id!r} is {ride.status.value}")
        if isinstance(e, NoShowV1):
            early = self._early_no_show(vehicle, ride, now)
            if early is not None:
                return Handled(dead_letter=early)
        if isinstance(e, PassengerBoardedV1):
            ride.status, ride.picked_up_at = RideStatus.ONBOARD, now
            vehicle.busy_until = max(vehicle.busy_until, now) + service_time(
                ride, self.config.planning, StopKind.PICKUP
            )
            vehicle.remove_stop(ride.request_id, "pickup")
            for other_id in vehicle.onboard:
                other = self.state.rides.get(other_id)
                if other is not None:
                    other.shared = ride.shared = True
                    self.state.touch_ride(other)
            vehicle.onboard.append(ride.request_id)
        elif isinstance(e, PassengerAlightedV1):
            ride.status, ride.dropped_at = RideStatus.COMPLETED, now
            vehicle.busy_until = max(vehicle.busy_until, now) + service_time(
                ride, self.config.planning, StopKind.DROPOFF
            )
            vehicle.remove_stop(ride.request_id, "dropoff")
            vehicle.onboard.remove(ride.request_id)
        else:
            ride.status, ride.outcome_reason = RideStatus.NO_SHOW, "no-show"
            ride.dropped_at = now
            vehicle.remove_stop(ride.request_id, "pickup")
            vehicle.remove_stop(ride.request_id, "dropoff")
        # the next leg starts here, once the service is over
        vehicle.leg_from, vehicle.leg_since = vehicle.position, max(vehicle.busy_until, now)
        self.state.touch_ride(ride)
        self._changed(now)
        outputs = self._retime(vehicle, now)
        if not any(isinstance(o, DriverPlanV1) for o in outputs):
            outputs.append(self._new_plan_version(vehicle, now))
        return Handled(outputs)

    def _retime(self, vehicle: VehicleState, now: float) -> list[Event]:
        """The vehicle's remaining stops, same order, timed again from where it is now.

        ETAs planned earlier go stale as the vehicle runs early or late; the next
        insertion must start from the truth. Nothing is re-timed when the route as
        it stands can no longer keep a promise, nor when it cannot be timed at all
        (a vehicle too late to be back at the depot by its shift end): the old times
        stay; the insertion and re-optimisation see the delay through the vehicle's
        position.
        """
        job = build_problem(
            self.state, [], now, self.travel, self.config.planning, [vehicle.vehicle_id]
        )
        job = replace(job, kind="retime")
        timed = InsertionState(job.problem)
        timed.load_hint((h.vehicle_id, h.stops) for h in job.problem.hint)
        try:
            plan = timed.plan(SolveStats("retime", 0, 0.0))
        except SolverError:
            return []
        if plan_problems(job, plan):
            return []
        return self.complete(job, plan, now)

    def _early_no_show(self, vehicle: VehicleState, ride: Ride, now: float) -> str | None:
        """Why a no-show report comes too early (None: accepted).

        The driver must have arrived at the pickup and waited ``no_show_wait_s``,
        counted from the arrival or the promised window's start, whichever is later;
        or less, up to the latest departure from the stop that keeps every other
        promise (waiting longer would make the riders on board or later pickups late).
        """
        stop = next((s for s in vehicle.stops if s.ref == (ride.request_id, "pickup")), None)
        if stop is None or stop.arrived_at is None:
            return f"no-show for {ride.request_id!r} before the vehicle arrived at the pickup"
        since = stop.arrived_at
        if ride.promised_pickup is not None:
            since = max(since, ride.promised_pickup[0])
        waited = now - since
        index = vehicle.stops.index(stop)
        depart_by = latest_departures(self.state, vehicle, self.travel, self.config.planning)
        if waited >= 0 and now >= depart_by[index] - NO_SHOW_TOLERANCE_S:
            return None  # waiting longer would break another promise
        if waited < self.config.no_show_wait_s:
            return (
                f"no-show for {ride.request_id!r} after {max(0.0, waited):.0f} s at the stop; "
                f"the driver must wait {self.config.no_show_wait_s:.0f} s"
            )
        return None

    # -- batches -------------------------------------------------------------------------

    def due(self, now: float) -> bool:
        """A batch, a re-optimisation or a relocation (:meth:`rebalance`) is due."""
        return self.batch.due(now) or self._reopt_due(now) or self._rebalance_due(now)

    def next_due_at(self) -> float | None:
        times = [self.batch.next_due_at(), self._reopt_at(), self._rebalance_at()]
        return min((t for t in times if t is not None), default=None)

    # -- rebalancing ---------------------------------------------------------------------

    def _may_relocate(self, v: VehicleState, now: float) -> bool:
        """Idle (no stops, nobody on board, not sent anywhere), on shift long enough
        to drive somewhere and back to the depot, and no break planned or soon due
        (the break is held at the depot)."""
        rb = self.config.rebalancing
        if not v.active or v.stops or v.onboard or v.standby is not None:
            return False
        if now < v.shift_start or v.shift_end - now < rb.shift_left_s:
            return False
        brk = v.break_planned
        if brk is not None and now < brk[1]:
            return brk[0] - now >= rb.break_margin_s
        if break_pending(v, now):  # not planned yet: not within its window's margin
            assert v.break_window is not None
            return v.break_window[0] - now >= rb.break_margin_s
        return True

    def _recall_at(self, v: VehicleState) -> float | None:
        """When a vehicle waiting at a standby point must leave for its planned break.

        The break is held at the depot: the vehicle sets off the way from the
        standby point (or from where it was sent there, if longer) plus
        ``recall_margin_s`` before the planned start.
        """
        brk = v.break_planned
        if v.standby is None or v.stops or brk is None or brk[1] <= v.leg_since:
            return None
        way = self.travel.leg(v.standby, v.depot)[0]
        if v.leg_from is not None:
            way = max(way, self.travel.leg(v.leg_from, v.depot)[0])
        return brk[0] - way - self.config.rebalancing.recall_margin_s

    def _idle_due(self, v: VehicleState) -> float:
        """When the vehicle has waited ``idle_s`` (and was not considered meanwhile)."""
        idle_s = self.config.rebalancing.idle_s
        since = max(v.leg_since, v.busy_until, v.shift_start)
        since = max(since, self._idle_checked.get(v.vehicle_id, -math.inf))
        brk = v.break_planned
        if brk is not None and brk[0] <= since + idle_s:
            since = max(since, brk[1])  # idle again from the break's end
        return since + idle_s

    def _rebalance_at(self) -> float | None:
        """The next time an idle vehicle is due to be considered (judged at that time)."""
        if not self.config.rebalancing.enabled:
            return None
        due = ((self._idle_due(v), v) for v in self.state.vehicles.values())
        times = [t for t, v in due if self._may_relocate(v, t)]
        times += [t for v in self.state.vehicles.values() if (t := self._recall_at(v)) is not None]
        return min(times, default=None)

    def _rebalance_due(self, now: float) -> bool:
        at = self._rebalance_at()
        return at is not None and now >= at

    def rebalance(self, now: float) -> list[Event]:
        """Send the vehicles idle for ``idle_s`` to standby points; their driver plans.

        Each is considered once per ``idle_s``: the points no other vehicle covers
        (sent there, or waiting within ``cover_m``) go by expected demand to the
        nearest of them within ``max_distance_m`` (:func:`rebalancing.assign`); the
        others stay where they are. Nothing is promised by a relocation: the next
        insertion starts from where the vehicle is on its way and replaces it.
        """
        rb = self.config.rebalancing
        if not rb.enabled:
            return []
        outputs: list[Event] = []
        for v in self.state.vehicles.values():
            recall = self._recall_at(v)
            if recall is not None and recall <= now:  # off to the depot for the break
                was = Whereabouts.of(v, now)
                v.standby = v.standby_id = None
                outputs.append(self._sent_elsewhere(v, was, now))
        considered = []
        for v in self.state.active_vehicles(now):
            due = self._idle_due(v)
            if due <= now and self._may_relocate(v, due):
                considered.append(v)
                # judged now, whatever comes of it: next in ``idle_s`` at the earliest
                self._idle_checked[v.vehicle_id] = now
        ready = {v.vehicle_id: v for v in considered if self._may_relocate(v, now)}
        if not ready:
            return outputs
        on_shift = self.state.active_vehicles(now)
        sent = [v.standby_id for v in on_shift if v.standby_id]
        waiting = [
            estimated_position(v, now, self.travel)
            for v in on_shift
            if v.vehicle_id not in ready and not (v.stops or v.onboard or v.standby)
        ]
        where = {vid: estimated_position(v, now, self.travel) for vid, v in ready.items()}
        for vid, point in assign(where, sent, waiting, len(on_shift), rb).items():
            v = ready[vid]
            was = Whereabouts.of(v, now)
            v.standby, v.standby_id = point.point, point.id
            recall = self._recall_at(v)
            if recall is not None and recall <= now + rb.idle_s:
                v.standby = v.standby_id = None  # too little time there before the break
                continue
            outputs.append(self._sent_elsewhere(v, was, now))
        return outputs

    def _sent_elsewhere(self, v: VehicleState, was: Whereabouts, now: float) -> Event:
        """A vehicle without stops now heads elsewhere (a standby point, or the depot for
        its break): its new leg starts where it was (``was``); its new driver plan."""
        self._redirected(v, was, now)
        self.state.touch_vehicle(v)
        return self._new_plan_version(v, now)

    def _reopt_at(self) -> float | None:
        if self.config.reopt_every_s <= 0 or self.changes == self._reopt_changes:
            return None
        return self._next_reopt

    def _changed(self, now: float) -> None:
        """Routes changed: a re-optimisation becomes due ``reopt_every_s`` after the last."""
        self.changes += 1
        if self._next_reopt is None:
            self._next_reopt = now + self.config.reopt_every_s

    def _reopt_due(self, now: float) -> bool:
        if self.config.reopt_every_s <= 0:
            return False
        at = self._reopt_at()
        return at is not None and now >= at

    def prepare(self, now: float) -> BatchJob | None:
        """Build the due routing problem (None if nothing is due).

        A due batch of new requests comes first; otherwise, when a re-optimisation
        is due, a problem of every open ride (no new requests; ``job.kind ==
        "reopt"``) whose plan ``complete`` takes only if it keeps every promise and
        the routes did not change meanwhile.
        """
        if self.batch.due(now):
            return self._anticipated(self._whole_fleet_job(self.batch.take(), now), now)
        if not self._reopt_due(now):
            return None
        self._next_reopt = now + self.config.reopt_every_s
        self._reopt_changes = self.changes
        job = self._whole_fleet_job([], now)
        if self.config.insertion_wait_cost > 0:  # weighed as when the rides were inserted
            cost = self.config.insertion_wait_cost
            job = replace(job, problem=replace(job.problem, dropoff_wait_cost=cost))
        return job if job.problem.requests else None

    def _whole_fleet_job(self, new_ids: list[str], now: float) -> BatchJob:
        """The problem of every vehicle, less those whose routes cannot be kept as they
        stand: a plan must keep every promise, so one such route would make every plan
        refused (and every new ride rejected) while it stays that way."""
        job = build_problem(self.state, new_ids, now, self.travel, self.config.planning)
        return self._without_untimeable(job, list(self.state.vehicles), now)

    def _anticipated(self, job: BatchJob, now: float) -> BatchJob:
        """``job`` with requests sampled from the expected demand (if configured);
        ``complete`` takes them out of the plan again."""
        cfg = self.config.anticipation
        if not cfg.enabled or not job.problem.requests:
            return job
        samples = sample_requests(cfg, now, self.demand_rate.scale(now))
        return with_samples(job, samples, self.travel, self.config.planning, cfg.prize_m)

    def _without_untimeable(self, job: BatchJob, vehicles: list[str], now: float) -> BatchJob:
        """``job`` built again without the vehicles whose routes cannot be kept as they
        stand (:func:`~dispatcher.planning.untimeable`); ``job`` itself if there are none.
        Their rides stay where they are."""
        broken = untimeable(job)
        if not broken:
            return job
        log.info("routes of %s cannot be kept as they stand; planning without them", broken)
        others = [vid for vid in vehicles if vid not in broken]
        fewer = build_problem(self.state, list(job.new_ids), now, self.travel,
                              self.config.planning, others)  # fmt: skip
        return replace(fewer, kind=job.kind)

    def complete(self, job: BatchJob, plan: Plan, now: float) -> list[Event]:
        """Turn a plan into promises, rejections and driver plans; update the state."""
        problems = plan_problems(job, plan)
        plan = without_samples(plan)  # sampled requests never reach a driver
        if not problems and job.kind == "reopt" and self._stale(job):
            problems = ["the routes changed while it was solved"]
        if problems:
            log.warning(
                "not taking the plan of %s (%s); keeping the committed routes",
                job.problem.name,
                "; ".join(problems[:3]),
            )
            plan = Plan(routes=(), unassigned=(), stats=SolveStats("keep", 0, 0.0, fallback=True))
        outputs: list[Event] = []
        new = set(job.new_ids)
        offered: dict[str, Ride] = {}
        moved: dict[str, str] = {}  # confirmed ride -> the other vehicle the plan gives it
        replanned: list[VehicleState] = []
        breaks = {r.id for r in job.problem.requests if r.id.startswith(BREAK_PREFIX)}
        for route in plan.routes:
            vehicle = self.state.vehicles[route.vehicle_id]
            was = Whereabouts.of(vehicle, now)
            stops: list[VehicleStop] = []
            old_break = vehicle.break_planned
            if break_id(vehicle.vehicle_id) in breaks:
                # the break was up for planning: planned where this route has it, or not
                # at all (a stale time would send the driver off to the depot)
                vehicle.break_planned = None
            lock = job.locked.get(route.vehicle_id)
            if lock is not None and lock.ref in vehicle.stop_refs():
                stops.append(lock)
            for s in route.stops:
                if s.request_id == break_id(vehicle.vehicle_id):
                    if s.kind.value == "pickup":
                        start = float(job.epoch + s.service_start)
                        vehicle.break_planned = (start, start + vehicle.break_s)
                    continue
                current = self.state.rides.get(s.request_id)
                if current is None or current.status.final:
                    continue  # cancelled or finished while the solver ran
                if s.kind.value == "pickup" and current.status is RideStatus.ONBOARD:
                    continue
                eta = job.epoch + s.service_start
                stops.append(VehicleStop(s.request_id, s.kind.value, job.points[s.location], eta))
                ride = self.state.rides[s.request_id]
                if s.kind.value == "pickup":
                    ride.pickup_eta = eta
                else:
                    ride.dropoff_eta = eta
                if s.request_id in new:
                    offered[s.request_id] = ride
                elif ride.vehicle_id != vehicle.vehicle_id and ride.status is RideStatus.OFFERED:
                    moved[s.request_id] = vehicle.vehicle_id
                self.state.touch_ride(ride)
            _keep_arrivals(stops, vehicle.stops)
            # Any new time is news for the driver: the core plans from the times it sent.
            changed = [(s.ref, round(s.eta)) for s in stops] != [
                (s.ref, round(s.eta)) for s in vehicle.stops
            ] or vehicle.break_planned != old_break
            vehicle.stops = stops
            recall = self._recall_at(vehicle)
            if stops or (recall is not None and recall <= now):
                # work, or a break due now at the depot, replaces the wait at a standby point
                vehicle.standby = vehicle.standby_id = None
            self._redirected(vehicle, was, now)
            self.state.touch_vehicle(vehicle)
            for ride_id in {s.request_id for s in route.stops} & new:
                self.state.rides[ride_id].vehicle_id = vehicle.vehicle_id
            if changed:
                replanned.append(vehicle)
        replanned.extend(self._hand_over(moved, plan, replanned, now))
        for ride_id in job.new_ids:
            pending = self.state.rides.get(ride_id)
            if pending is None or pending.status is not RideStatus.PENDING:
                continue  # cancelled while the solver ran
            if ride_id in offered:
                outputs.append(self._offer(pending, now))
            else:
                outputs.append(self._reject_no_vehicle(pending, now))
        # a moved ride's passenger is told the new vehicle (the promise stays as it was)
        outputs.extend(self._reoffer(self.state.rides[r], v, now) for r, v in sorted(moved.items()))
        if replanned:
            self._changed(now)
        # Driver plans last: they carry the pickup windows just promised.
        outputs.extend(self._new_plan_version(v, now) for v in replanned)
        self.state.forget_final(now - self.config.forget_after_s)
        return outputs

    def _hand_over(
        self, moved: dict[str, str], plan: Plan, replanned: list[VehicleState], now: float
    ) -> list[VehicleState]:
        """Vehicles outside ``plan`` that still hold a ride it moved give it up.

        A plan has a route for each vehicle of its problem, so the vehicle a ride
        moved from normally got its new stops already; this is the guard that no
        ride is ever on two vehicles' plans. Returns those vehicles, replanned.
        """
        if not moved:
            return []
        in_plan = {r.vehicle_id for r in plan.routes}
        out: list[VehicleState] = []
        for v in self.state.vehicles.values():
            if v.vehicle_id in in_plan or v in replanned:
                continue
            held = [s for s in v.stops if s.request_id in moved]
            if not held:
                continue
            was = Whereabouts.of(v, now)
            for s in held:
                v.remove_stop(s.request_id, s.kind)
            self._redirected(v, was, now)
            self.state.touch_vehicle(v)
            out.append(v)
        return out

    def _reoffer(self, ride: Ride, vehicle_id: str, now: float) -> RideOfferedV1:
        """The offer again, with the vehicle the ride moved to and its new ETAs; the
        promised window and latest drop-off are the ones the passenger already has."""
        previous = ride.vehicle_id
        ride.vehicle_id = vehicle_id
        ride.reassigned += 1
        self.state.touch_ride(ride)
        return self._offer_event(ride, now, previous)

    def _redirected(self, vehicle: VehicleState, was: Whereabouts, now: float) -> None:
        """The vehicle's stops changed: when it now heads elsewhere, a new leg begins.

        The driver turns (or sets off, or stops) where the vehicle is now, as soon as
        the boarding or alighting in progress is over; the leg it was on says nothing
        about its arrival any more (the detour from where it was sent elsewhere takes
        longer than the way from the last stop would have, and a vehicle that waited
        somewhere did not drive meanwhile).
        """
        target = heading(vehicle, now)
        if _key(target) != _key(was.target):
            vehicle.leg_from = was.at(now, self.travel)
            vehicle.leg_since = max(now, vehicle.busy_until)

    def _stale(self, job: BatchJob) -> bool:
        """A vehicle got a stop the job did not know (inserted while it was solved)."""
        for vid, refs in job.snapshot.items():
            vehicle = self.state.vehicles.get(vid)
            known = set(refs)
            if vehicle is not None and any(ref not in known for ref in vehicle.stop_refs()):
                return True
        return False

    def _offer(self, ride: Ride, now: float) -> RideOfferedV1:
        pc = self.config.planning
        assert ride.pickup_eta is not None and ride.dropoff_eta is not None
        start = max(ride.earliest_pickup, ride.pickup_eta - pc.promise_before_s)
        end = max(start + pc.promise_window_s, ride.pickup_eta)
        service = pc.pickup_service_s + (pc.wheelchair_service_s if ride.wheelchairs else 0)
        latest = ride.latest_dropoff or end + service + ride.max_ride_s
        ride.status = RideStatus.OFFERED
        ride.promised_pickup = (start, end)
        ride.promised_dropoff = max(latest, ride.dropoff_eta)
        ride.offered_at = now
        self.state.touch_ride(ride)
        return self._offer_event(ride, now, ride.replanned_from)

    def _offer_event(self, ride: Ride, now: float, previous: str | None) -> RideOfferedV1:
        """The ride as offered: its vehicle, promised window, ETAs and latest drop-off
        (``previous``: the vehicle it was confirmed on before, if it moved)."""
        assert ride.promised_pickup is not None and ride.promised_dropoff is not None
        assert ride.pickup_eta is not None and ride.dropoff_eta is not None
        assert ride.vehicle_id is not None
        start, end = ride.promised_pickup
        return RideOfferedV1(
            occurred_at=to_datetime(now),
            source=self.config.source,
            request_id=ride.request_id,
            zone=ride.zone,
            vehicle_id=ride.vehicle_id,
            pickup=_place(ride.origin, ride.origin_stop_id),
            dropoff=_place(ride.destination, ride.destination_stop_id),
            pickup_window_start=to_datetime(start),
            pickup_window_end=to_datetime(end),
            pickup_eta=to_datetime(ride.pickup_eta),
            dropoff_eta=to_datetime(ride.dropoff_eta),
            latest_dropoff=to_datetime(ride.promised_dropoff),
            walk_m=ride.walk_m,
            previous_vehicle_id=previous,
        )

    def _new_plan_version(self, vehicle: VehicleState, now: float) -> DriverPlanV1:
        vehicle.plan_version += 1
        self._plan_set_off(vehicle, now)
        self.state.touch_vehicle(vehicle)
        return self.driver_plan(vehicle, now)

    def _plan_set_off(self, v: VehicleState, now: float) -> None:
        """When the vehicle leaves for its first stop, told in the new plan.

        A vehicle already on its way goes on (a new plan never stops it mid-road for
        a stop it drives to anyway); one that waited to set off and may go now sets
        off from where it stood, now.
        """
        old, v.set_off_at = v.set_off_at, None
        waiting = old is not None and now < old
        if old is not None and not waiting and v.leg_from is not None:
            v.leg_since = max(v.leg_since, old)  # it left when it was told to
        # standing: waiting to set off, or its leg starts only now (sent elsewhere or
        # just served a stop); not a vehicle on its way, nor one a position report
        # placed somewhere on it
        standing = waiting or (v.leg_from is not None and v.leg_since >= now)
        point = last_known(v, now)[0]
        v.set_off_at = set_off_time(v, now, self.travel, self.config.planning, standing)
        if waiting and v.set_off_at is None:
            v.leg_from, v.leg_since = point, max(now, v.busy_until)

    def driver_plan(self, vehicle: VehicleState, now: float) -> DriverPlanV1:
        """The vehicle's current plan as the event its tablet reads."""
        stops = []
        departures = latest_departures(self.state, vehicle, self.travel, self.config.planning)
        for s, depart_by in zip(vehicle.stops, departures, strict=True):
            ride = self.state.rides.get(s.request_id)
            window: tuple[datetime | None, datetime | None] = (None, None)
            if s.kind == "pickup" and ride is not None and ride.promised_pickup is not None:
                window = (
                    to_datetime(ride.promised_pickup[0]),
                    to_datetime(ride.promised_pickup[1]),
                )
            stop_id = None
            if ride is not None:
                stop_id = ride.origin_stop_id if s.kind == "pickup" else ride.destination_stop_id
            stops.append(
                PlannedStop(
                    action=StopAction(s.kind),
                    request_id=s.request_id,
                    location=_place(s.location, stop_id),
                    eta=to_datetime(s.eta),
                    window_start=window[0],
                    window_end=window[1],
                    seats=ride.seats if ride else 0,
                    wheelchairs=ride.wheelchairs if ride else 0,
                    latest_departure=(to_datetime(depart_by) if math.isfinite(depart_by) else None),
                )
            )
        brk = vehicle.break_planned
        if brk is not None and brk[1] <= now:
            brk = None
        return DriverPlanV1(
            occurred_at=to_datetime(now),
            source=self.config.source,
            vehicle_id=vehicle.vehicle_id,
            zone=vehicle.zone,
            plan_version=max(1, vehicle.plan_version),
            stops=stops,
            break_start=to_datetime(brk[0]) if brk else None,
            break_end=to_datetime(brk[1]) if brk else None,
            break_location=_place(vehicle.depot) if brk else None,
            standby_location=(
                _place(vehicle.standby, vehicle.standby_id)
                if vehicle.standby is not None and not vehicle.stops
                else None
            ),
            set_off_at=(
                to_datetime(vehicle.set_off_at)
                if vehicle.set_off_at is not None and vehicle.set_off_at > now
                else None
            ),
        )


def _immediate(ride: Ride) -> bool:
    """Booked for now (not for a later time): what anticipation counts and samples."""
    return ride.earliest_pickup == ride.received_at and ride.latest_dropoff is None


def _keep_arrivals(stops: list[VehicleStop], before: list[VehicleStop]) -> None:
    """Stops at the head of a new route that the vehicle had arrived at stay arrived.

    A vehicle arrives at every stop at one place at once (two pickups at one
    virtual stop, say), but only the first is locked and kept as it was; the
    plan rebuilds the others. Without this, a passenger the driver is already
    waiting for would look not yet reached, and the no-show the driver reports
    after waiting would be refused as too early.
    """
    arrived = {s.ref: s for s in before if s.arrived}
    for stop in stops:
        old = arrived.get(stop.ref)
        if old is None:
            return
        stop.arrived, stop.arrived_at = True, old.arrived_at


def _key(point: LatLon | None) -> tuple[float, float] | None:
    return point.key() if point is not None else None


def _dedupe_plans(outputs: list[Event]) -> list[Event]:
    """Keep only each vehicle's newest driver plan, after all passenger answers."""
    answers = [e for e in outputs if not isinstance(e, DriverPlanV1)]
    newest: dict[str, DriverPlanV1] = {}
    for e in outputs:
        if isinstance(e, DriverPlanV1):
            newest[e.vehicle_id] = e
    return [*answers, *newest.values()]
