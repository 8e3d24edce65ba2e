"""A service period simulated faster than real time, on the live dispatcher's core.

One discrete-event loop merges three time-ordered sources: passenger events from
the demand generator, vehicle events from the fleet simulator, and the batch due
times of :class:`~dispatcher.core.DispatchCore`. The :class:`VirtualClock` jumps to
the earliest of them (it never sleeps); events go to ``core.handle`` exactly as the
live service would feed them; a due batch is ``prepare``-d, solved inline and
``complete``-d; driver plans go back to the fleet, offers to the passengers.
Only the transport (an in-process list instead of Kafka) and the clock differ.

Solving is inline and takes no virtual time. Three policies (the core's modes):

* ``"batch"``: requests wait ``batch_window_s``; the given solver (default
  OR-Tools) solves every batch with all open rides, falling back to the insertion
  heuristic when it raises, finds no solution or breaks a rule (plan checker).
* ``"immediate"``: every request is answered at once by insertion inside
  ``core.handle``; every ``reopt_every_s`` (if anything changed) the core asks for
  an OR-Tools re-optimisation of all open rides, kept only if it keeps every promise.
* ``"insertion"``: plain cheapest insertion (no wait cost), never re-optimised:
  the baseline ``--compare`` measures the full policy against.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import date
from typing import Literal

import numpy as np

from dispatcher.anticipation import AnticipationConfig, DemandForecast
from dispatcher.clock import VirtualClock, to_datetime, to_timestamp
from dispatcher.core import CoreConfig, DispatchCore, VirtualStop
from dispatcher.geo import LatLon, TravelModel
from dispatcher.kpis import History, RequestRecord, Shift, compute_kpis
from dispatcher.planning import BatchJob, PlanningConfig, plan_problems
from dispatcher.rebalancing import RebalancingConfig, standby_points
from producers.demand import DemandModel, DemandOptions, generate_demand
from producers.fleet import FleetSimulator, VehicleConfig, seeded_uniform
from producers.scenario import Scenario
from schemas.dispatch import DriverPlanV1, RideOfferedV1, RideRejectedV1
from schemas.envelope import Event
from schemas.passenger import RideCancelledV1, RideRequestedV1, TimeType
from schemas.vehicle import NoShowV1, PassengerAlightedV1, PassengerBoardedV1
from solvers.base import Solver
from solvers.model import Plan, SolveLimits, SolveStats

log = logging.getLogger(__name__)

#: The full policy's insertion weighs each second a new passenger arrives later than
#: the earliest possible as this many metres (``CoreConfig.insertion_wait_cost``; the
#: live default is the same setting). Chosen on the simulated day, seeds 1-6, insertion
#: without re-optimisation, demand x1/x2/x3 (served / vehicle-km / mean of the median
#: waits): 0 m/s (plain cheapest insertion) 505/4808/696 s, 843/6862/772 s,
#: 1028/7816/759 s; 1 m/s 495/4580, 866/6944, 1047/7863; 2 m/s 501/4637, 846/7044,
#: 1074/7817; 3 m/s 506/4786/508 s, 868/6915/711 s, 1053/7723/714 s; 5 m/s
#: 505/4988, 843/7117, 1027/7610. Per seed these move by about +-2 %. (Measured before
#: a stale planned break was fixed; the comparison in README.md is after it.)
FULL_POLICY_WAIT_COST = 3.0

#: The full policy may move a confirmed ride to another vehicle while its promised
#: window opens more than this many seconds ahead (``PlanningConfig.reassign_lead_s``):
#: re-optimisation and the repair of a failed insertion may then use the whole fleet
#: for the rides already promised, not only to reorder each vehicle's own stops.
#: Measured at demand x3, seeds 1-8: 1569 rides served with it, 1491 without, 1406 by
#: insertion only (README.md has the whole comparison).
FULL_POLICY_REASSIGN_LEAD_S = 600

#: A passenger turned away takes this long to book the alternative offered.
ALTERNATIVE_THINK_S = 60.0

#: The day simulated unless told otherwise (a Thursday).
DEFAULT_DAY = date(2026, 11, 19)

Progress = Callable[[float, float, dict[str, int]], None]
Policy = Literal["batch", "immediate", "insertion"]
POLICIES: tuple[Policy, ...] = ("batch", "immediate", "insertion")


def ortools_solver() -> Solver:
    """OR-Tools (imported lazily: only ``solvers/ortools_pdp.py`` imports ortools)."""
    from solvers.ortools_pdp import ortools_solve  # noqa: PLC0415

    return ortools_solve


def insertion_solver() -> Solver:
    """The insertion heuristic."""
    from solvers.insertion import insertion_solve  # noqa: PLC0415

    return insertion_solve


def solver_by_name(name: str) -> Solver:
    """``"ortools"`` or ``"insertion"``."""
    if name == "ortools":
        return ortools_solver()
    if name == "insertion":
        return insertion_solver()
    raise ValueError(f"unknown solver {name!r}")


@dataclass(frozen=True, slots=True)
class SolveRecord:
    """One solver call: when, what, how long (wall seconds), and whether it fell back."""

    at: float
    kind: Literal["batch", "reopt"]
    solver: str
    requests: int
    runtime_s: float
    fallback: bool
    kept: bool = True


@dataclass(slots=True)
class SimulationResult:
    """What happened, the KPIs, and how long it took."""

    scenario: str
    seed: int
    start: float
    end: float
    history: History
    vehicles: list[VehicleConfig]
    events: list[tuple[float, Event]]
    outputs: list[tuple[float, Event]]
    dead_letters: list[tuple[float, str, str]]
    solves: list[SolveRecord]
    tracks: dict[str, list[tuple[float, LatLon]]]
    max_persons: dict[str, int]
    stop_points: list[LatLon]
    #: the dispatcher core's configuration and travel model in this run
    core_config: CoreConfig | None = None
    travel: TravelModel | None = None
    wall_s: float = 0.0
    kpis: dict[str, object] = field(default_factory=dict)

    @property
    def solve_wall_s(self) -> float:
        return sum(s.runtime_s for s in self.solves)


def fleet_for(
    scenario: Scenario,
    vehicles: int,
    start: float,
    end: float,
    seats: int | None = None,
    wheelchairs: int | None = None,
) -> list[VehicleConfig]:
    """``vehicles`` identical vehicles at the scenario depot, all on shift ``[start, end]``.

    Shifts longer than the scenario's ``break_after_h`` get a break of
    ``break_min`` minutes starting inside ``[start + break_after_h, + break_window_h]``.
    """
    f = scenario.fleet
    window: tuple[float, float] | None = None
    if f.break_min > 0 and end - start > f.break_after_h * 3600:
        w0 = start + f.break_after_h * 3600
        window = (w0, min(end - f.break_min * 60, w0 + f.break_window_h * 3600))
    return [
        VehicleConfig(
            vehicle_id=f"v{i + 1:02d}",
            depot=f.depot,
            shift_start=start,
            shift_end=end,
            seats=f.seats if seats is None else seats,
            wheelchairs=f.wheelchairs if wheelchairs is None else wheelchairs,
            zone=scenario.zone,
            break_window=window,
            break_s=round(f.break_min * 60) if window else 0,
        )
        for i in range(vehicles)
    ]


def _record(e: RideRequestedV1, t: float, core: DispatchCore) -> RequestRecord:
    pc = core.config.planning
    a, b = LatLon(e.origin.lat, e.origin.lon), LatLon(e.destination.lat, e.destination.lon)
    direct_s, direct_m = core.travel.leg(a, b)
    service = pc.pickup_service_s + (pc.wheelchair_service_s if e.wheelchairs else 0)
    desired: float | None = t
    if e.requested_time is not None:
        desired = (
            max(t, to_timestamp(e.requested_time)) if e.time_type is TimeType.DEPARTURE else None
        )
    return RequestRecord(
        request_id=e.request_id,
        requested_at=t,
        desired_pickup=desired,
        direct_s=float(direct_s),
        direct_m=float(direct_m),
        max_ride_s=float(round(pc.ride_alpha * direct_s + pc.ride_beta_s)),
        pickup_service_s=float(service),
        persons=e.seats + e.wheelchairs,
        prebooked=e.requested_time is not None,
    )


class Simulation:
    """The loop's state; use :func:`simulate`."""

    def __init__(
        self,
        scenario: Scenario,
        fleet: list[VehicleConfig],
        demand: list[tuple[float, Event]],
        start: float,
        end: float,
        seed: int,
        solver: Solver,
        solver_time_limit: float,
        *,
        fallback: Solver,
        reopt_solver: Solver,
        reopt_time_limit: float,
        core_config: CoreConfig,
        travel: TravelModel,
        no_show_prob: float,
        drain_s: float,
        progress: Progress | None,
        accept_alternatives: float = 0.0,
    ) -> None:
        self.scenario = scenario
        self.accept_alternatives = accept_alternatives
        #: passengers' requests by id, and the rebookings of an alternative offer
        self._requested: dict[str, RideRequestedV1] = {}
        self._alternative_of: dict[str, str] = {}
        self.start, self.end, self.seed = start, end, seed
        self.solver, self.fallback = solver, fallback
        self.limits = SolveLimits(time_limit=solver_time_limit)
        self.reopt_solver = reopt_solver
        self.reopt_limits = SolveLimits(time_limit=reopt_time_limit)
        self.drain_s = drain_s
        self.progress = progress
        self.clock = VirtualClock(start)
        self.core = DispatchCore(core_config, travel)
        pc = core_config.planning
        self.fleet = FleetSimulator(
            fleet,
            self.core.travel,
            seed,
            no_show_wait_s=core_config.no_show_wait_s,
            no_show_prob=no_show_prob,
            pickup_service_s=pc.pickup_service_s,
            dropoff_service_s=pc.dropoff_service_s,
            wheelchair_service_s=pc.wheelchair_service_s,
        )
        self.vehicles = fleet
        self.demand = deque(demand)
        self.history = History(
            start=start,
            end=end,
            shifts=[
                Shift(v.vehicle_id, v.shift_start, v.shift_end, v.seats + v.wheelchairs)
                for v in fleet
            ],
        )
        self.events: list[tuple[float, Event]] = []
        self.outputs: list[tuple[float, Event]] = []
        self.dead_letters: list[tuple[float, str, str]] = []
        self.solves: list[SolveRecord] = []
        self.stop_points: list[LatLon] = []

    # -- the loop -------------------------------------------------------------------------

    def run(self) -> SimulationResult:
        wall = time.perf_counter()
        hard_stop = self.end + self.drain_s
        total = hard_stop - self.start
        counts = {"requests": 0, "offers": 0, "rejections": 0}
        last_progress = self.start
        while True:
            candidates = [t for t in self._next_times() if t is not None]
            if not candidates:
                break
            t = max(min(candidates), self.clock.now())
            if t > hard_stop:
                break
            self.clock.set(t)
            for te, event in self.fleet.advance(t):
                self._feed(te, event)
            while self.demand and self.demand[0][0] <= t:
                te, event = self.demand.popleft()
                self._feed(max(te, t), event)
            while self.core.due(t):
                if not self._batch(t):
                    break
            self._route(t, self.core.rebalance(t))
            if self.progress is not None and t - last_progress >= 60:
                last_progress = t
                counts["requests"] = len(self.history.requests)
                counts["offers"] = len(self.history.offers)
                counts["rejections"] = len(self.history.rejections)
                self.progress(t - self.start, total, counts)
            if t >= self.end and self.fleet.finished and not self.demand:
                break
        if self.progress is not None:
            self.progress(total, total, counts)
        self.history.outcomes = {
            rid: (ride.status.value, ride.outcome_reason)
            for rid, ride in self.core.state.rides.items()
        }
        result = SimulationResult(
            scenario=self.scenario.name,
            seed=self.seed,
            start=self.start,
            end=self.end,
            history=self.history,
            vehicles=self.vehicles,
            events=self.events,
            outputs=self.outputs,
            dead_letters=self.dead_letters,
            solves=self.solves,
            tracks=self.fleet.tracks(),
            max_persons=self.fleet.max_persons(),
            stop_points=self.stop_points,
            core_config=self.core.config,
            travel=self.core.travel,
        )
        self.history.segments = list(self.fleet.segments)
        result.kpis = compute_kpis(self.history)
        result.wall_s = time.perf_counter() - wall
        return result

    def _next_times(self) -> list[float | None]:
        return [
            self.demand[0][0] if self.demand else None,
            self.fleet.next_event_at(),
            self.core.next_due_at(),
        ]

    # -- events ---------------------------------------------------------------------------

    def _feed(self, t: float, event: Event) -> None:
        self.events.append((t, event))
        h = self.history
        match event:
            case RideRequestedV1():
                record = _record(event, t, self.core)
                original = self._alternative_of.get(event.request_id)
                h.requests.append(replace(record, alternative_of=original))
                self._requested[event.request_id] = event
                self.stop_points.extend(
                    (
                        LatLon(event.origin.lat, event.origin.lon),
                        LatLon(event.destination.lat, event.destination.lon),
                    )
                )
            case RideCancelledV1():
                ride = self.core.state.rides.get(event.request_id)
                if ride is not None and not ride.status.final and ride.status.value != "onboard":
                    h.cancelled[event.request_id] = t
            case PassengerBoardedV1():
                h.boarded[event.request_id] = t
            case PassengerAlightedV1():
                h.alighted[event.request_id] = t
            case NoShowV1():
                h.no_shows[event.request_id] = t
        handled = self.core.handle(event, t)
        if handled.dead_letter is not None:
            self.dead_letters.append((t, event.type, handled.dead_letter))
            log.info("dead letter at %s: %s", t, handled.dead_letter)
        self._route(t, handled.outputs)

    def _route(self, t: float, outputs: list[Event]) -> None:
        # Offers first: a passenger knows the promised window before the driver arrives.
        for event in outputs:
            self.outputs.append((t, event))
            if isinstance(event, RideOfferedV1):
                if event.previous_vehicle_id is not None:
                    self.history.reassigned.add(event.request_id)
                self.history.offers[event.request_id] = (t, event)
                self.fleet.on_offer(event)
            elif isinstance(event, RideRejectedV1):
                self.history.rejections[event.request_id] = (t, event)
                self._maybe_take_alternative(t, event)
        for event in outputs:
            if isinstance(event, DriverPlanV1):
                self.fleet.on_plan(event, t)

    def _maybe_take_alternative(self, t: float, rejection: RideRejectedV1) -> None:
        """A passenger turned away with a later pickup on offer books it, with
        probability ``accept_alternatives`` (drawn per request from the seed), after
        ``ALTERNATIVE_THINK_S``: a new pre-booked request for that time. Nothing was
        reserved, so it may be turned away again; it is not offered another."""
        rid = rejection.request_id
        original = self._requested.get(rid)
        if (
            self.accept_alternatives <= 0
            or rejection.alternative_pickup is None
            or original is None
            or rid in self._alternative_of
        ):
            return
        if seeded_uniform(f"{self.seed}:alternative:{rid}") >= self.accept_alternatives:
            return
        at = t + ALTERNATIVE_THINK_S
        rebooked = original.model_copy(
            update={
                "event_id": uuid.uuid5(original.event_id, "alternative"),
                "occurred_at": to_datetime(at),
                "request_id": f"{rid}.alt",
                "requested_time": rejection.alternative_pickup,
                "time_type": TimeType.DEPARTURE,
            }
        )
        self._alternative_of[rebooked.request_id] = rid
        i = next((i for i, (te, _) in enumerate(self.demand) if te > at), len(self.demand))
        self.demand.insert(i, (at, rebooked))

    # -- solving --------------------------------------------------------------------------

    def _solve(self, job: BatchJob, solver: Solver, limits: SolveLimits) -> tuple[Plan, bool]:
        """Solve; the fallback plan when the solver fails. (plan, fell back)"""
        try:
            plan = solver(job.problem, limits, seed=self.seed)
            if plan.stats.first_solution_found and not plan_problems(job, plan):
                return plan, False
            log.warning("solver found no acceptable plan for %s; falling back", job.problem.name)
        except Exception:  # a solver bug must not stop the simulated service
            log.exception("solver failed on %s; falling back", job.problem.name)
        if solver is not self.fallback:
            try:
                return self.fallback(job.problem, limits, seed=self.seed), True
            except Exception:
                log.exception("fallback solver failed on %s", job.problem.name)
        # Nothing usable: an empty plan makes the core keep the committed routes and
        # reject the batch's new requests, as the live service would.
        return Plan(routes=(), unassigned=(), stats=SolveStats("none", 0, 0.0, fallback=True)), True

    def _batch(self, t: float) -> bool:
        """Solve what the core has due: a batch, or a re-optimisation. False: nothing."""
        job = self.core.prepare(t)
        if job is None:
            return False
        wall = time.perf_counter()
        if job.kind == "reopt":
            try:
                plan = self.reopt_solver(job.problem, self.reopt_limits, seed=self.seed)
                kept = plan.stats.first_solution_found and not plan_problems(job, plan)
            except Exception:  # a solver bug must not stop the simulated service
                log.exception("re-optimisation failed at %s", t)
                plan, kept = None, False
            self.solves.append(
                SolveRecord(
                    t,
                    "reopt",
                    plan.stats.solver if plan else "error",
                    len(job.problem.requests),
                    time.perf_counter() - wall,
                    False,
                    kept,
                )
            )
            if kept and plan is not None:
                self._route(t, self.core.complete(job, plan, t))
            return True
        plan, fell_back = self._solve(job, self.solver, self.limits)
        self.solves.append(
            SolveRecord(
                t,
                "batch",
                plan.stats.solver,
                len(job.problem.requests),
                time.perf_counter() - wall,
                fell_back,
            )
        )
        self._route(t, self.core.complete(job, plan, t))
        return True


def scenario_stops(scenario: Scenario) -> tuple[VirtualStop, ...]:
    """The scenario's virtual stops and hubs, for snapping requests."""
    return tuple(VirtualStop(s.id, s.lat, s.lon, s.name) for s in (*scenario.stops, *scenario.hubs))


def scenario_rebalancing(scenario: Scenario, points: int, **options: float) -> RebalancingConfig:
    """Rebalancing to ``points`` standby points of the scenario's expected pickups.

    The points are the weighted p-median of the demand model's pickup shares
    (:meth:`DemandModel.pickup_shares`) over the stops and hubs; ``options`` are
    the other :class:`RebalancingConfig` fields.
    """
    shares = DemandModel(scenario).pickup_shares()
    standby = standby_points(
        [(s.id, s.point, w) for s, w in shares], points, {s.id: s.name for s, _ in shares}
    )
    return RebalancingConfig(standby=standby, **options)


def scenario_forecast(scenario: Scenario) -> DemandForecast:
    """The scenario's expected immediate requests (its hourly profile less the
    pre-booked share) and its origin-destination model, for anticipation."""
    model = DemandModel(scenario)
    cfg = scenario.demand

    def draw_od(rng: np.random.Generator) -> tuple[LatLon, LatLon]:
        origin, destination = model.draw_od(rng)
        return origin.point, destination.point

    per_hour = tuple(r * (1 - cfg.prebooked_share) for r in cfg.requests_per_hour)
    return DemandForecast(per_hour, scenario.timezone, draw_od)


def simulate(
    scenario: Scenario,
    vehicles: int | None = None,
    hours: float | None = None,
    seed: int = 1,
    solver: Solver | None = None,
    solver_time_limit: float = 0.2,
    *,
    start_hour: float | None = None,
    day: date = DEFAULT_DAY,
    policy: Policy = "batch",
    fallback: Solver | None = None,
    reopt_solver: Solver | None = None,
    reopt_every_s: float = 900.0,
    reopt_time_limit: float = 1.0,
    demand: list[tuple[float, Event]] | None = None,
    fleet: list[VehicleConfig] | None = None,
    travel: TravelModel | None = None,
    walk_max_m: float = 500.0,
    demand_options: DemandOptions | None = None,
    planning: PlanningConfig | None = None,
    batch_window_s: float = 2.0,
    no_show_prob: float = 0.02,
    drain_s: float = 3 * 3600.0,
    seats: int | None = None,
    wheelchairs: int | None = None,
    rebalancing: RebalancingConfig | None = None,
    anticipation: AnticipationConfig | None = None,
    insertion_wait_cost: float = FULL_POLICY_WAIT_COST,
    reassign_lead_s: int | None = FULL_POLICY_REASSIGN_LEAD_S,
    accept_alternatives: float = 0.0,
    progress: Progress | None = None,
) -> SimulationResult:
    """Simulate ``hours`` of service from ``start_hour`` (local) on ``day``.

    Parameters
    ----------
    scenario
        The region (``load_scenario("rendsburg")``).
    vehicles, hours, start_hour
        Fleet size and service period; default to the scenario's fleet and hours.
    solver, solver_time_limit
        The per-batch solver (default OR-Tools) and its time limit in wall seconds.
    policy
        ``"batch"`` solves every batch with ``solver``; ``"immediate"`` inserts each
        request at once and re-optimises with ``reopt_solver`` (default OR-Tools)
        every ``reopt_every_s`` virtual seconds for ``reopt_time_limit``;
        ``"insertion"`` inserts and never re-optimises. ``reopt_every_s`` also
        re-optimises between batches in ``"batch"`` (0: never).
    demand
        Pre-generated ``(time, event)`` passenger events; generated from the scenario
        and ``seed`` when None.
    fleet
        The vehicles (default: ``vehicles`` from the scenario's fleet defaults).
    travel
        The travel model (default: the scenario's).
    no_show_prob
        Probability that a passenger does not come to the pickup.
    drain_s
        How long after the service end the loop may run to finish rides.
    rebalancing
        Idle vehicles to standby points (:func:`scenario_rebalancing`); off when
        None. Off by default because it did not pay here: demand x1/x2/x3, seeds
        1-4, the full policy with one point per vehicle served 316/542/706 rides
        against 318/537/704 without, for 0.7-1.7 % more vehicle-km.
    insertion_wait_cost
        Immediate insertion weighs each second a new passenger arrives later than the
        earliest possible as this many metres (:class:`~dispatcher.core.CoreConfig`);
        the ``"insertion"`` baseline always uses 0, plain cheapest insertion.
    reassign_lead_s
        Confirmed rides may move to another vehicle while their promised window opens
        more than this many seconds ahead (``PlanningConfig.reassign_lead_s``; None:
        never). Replaces the value in ``planning``; the ``"insertion"`` baseline never
        moves a ride.
    accept_alternatives
        Share of the passengers turned away with a later pickup on offer
        (``alternative_pickup``) who book it (0: none do). Their requests count once;
        a rebooking served counts as served (KPIs ``alternatives_taken``,
        ``served_by_alternative``, ``alternative_delay_mean_s``).
    progress
        Called as ``progress(simulated_s, total_s, counts)`` about every simulated minute.
    """
    hours = hours if hours is not None else scenario.service_end_hour - scenario.service_start_hour
    start_h = start_hour if start_hour is not None else scenario.service_start_hour
    start = scenario.local_time(day, start_h)
    end = start + hours * 3600
    if fleet is None:
        fleet = fleet_for(
            scenario, vehicles or scenario.fleet.vehicles, start, end, seats, wheelchairs
        )
    if demand is None:
        demand = generate_demand(scenario, start, end, seed, demand_options)
    fallback = fallback or insertion_solver()
    planning = replace(
        planning or PlanningConfig(),
        reassign_lead_s=None if policy == "insertion" else reassign_lead_s,
    )
    core_config = CoreConfig(
        planning=planning,
        batch_window_s=batch_window_s,
        areas={scenario.zone: scenario.area},
        source="dispatcher",
        mode="batch" if policy == "batch" else "immediate",
        reopt_every_s=0.0 if policy == "insertion" else reopt_every_s,
        stops=scenario_stops(scenario),
        walk_max_m=walk_max_m,
        service_hours=(start_h, start_h + hours),
        timezone=scenario.timezone,
        rebalancing=rebalancing or RebalancingConfig(),
        anticipation=anticipation or AnticipationConfig(),
        # the baseline is plain cheapest insertion: no wait cost
        insertion_wait_cost=0.0 if policy == "insertion" else insertion_wait_cost,
    )
    sim = Simulation(
        scenario,
        fleet,
        demand,
        start,
        end,
        seed,
        solver or ortools_solver(),
        solver_time_limit,
        fallback=fallback,
        reopt_solver=reopt_solver or solver or ortools_solver(),
        reopt_time_limit=reopt_time_limit,
        core_config=core_config,
        travel=travel or scenario.travel(),
        no_show_prob=no_show_prob,
        drain_s=drain_s,
        progress=progress,
        accept_alternatives=accept_alternatives,
    )
    return sim.run()
