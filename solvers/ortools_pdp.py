"""OR-Tools pickup-and-delivery model: the main solver. The only module importing ortools.

The model follows the OR-Tools pickup-and-delivery sample and adds what a
dial-a-ride service needs:

* one start node per vehicle at its current location (cumul in
  ``[start_time, end_time]``) and one end node per vehicle (cumul up to
  ``end_time``); ``max_duration`` is a span bound on the time dimension;
* a time dimension whose transit is service time + travel time, with the time
  windows as cumul ranges; the time cumul of a node is its service start;
* ride times as ``cumul(drop-off) - cumul(pickup) - pickup_service <= L``;
  a passenger on board has only a drop-off node, bound to their vehicle, with
  ``cumul(drop-off) <= picked_up_at + L``;
* seat and wheelchair capacity dimensions (passengers on board load the
  vehicle's start node); ``allowed_vehicles``; vehicle fixed costs;
* every request is a disjunction: optional ones with their penalty, mandatory
  ones (and passengers on board) with a penalty larger than any routing cost,
  so the model never becomes infeasible and an unserved mandatory request is
  reported as ``Unassigned(id, "infeasible")``.

The search starts from the insertion heuristic's plan (itself built from
``problem.hint``), improved by ruin-and-recreate (:mod:`solvers.lns`, exact
ride-time scheduling) for ``LNS_SHARE`` of the time limit (all of it when
requests have ride times, ``RIDE_TIME_LNS_SHARE``: OR-Tools is then skipped),
and hands that to OR-Tools via ``ReadAssignmentFromRoutes``; OR-Tools falls back to its
parallel cheapest insertion if that assignment is rejected, and improves with
guided local search until ``limits.time_limit``. (Plain OR-Tools with
cumul-difference ride-time constraints finds no first solution on tight
Cordeau instances and its local search is slow under those constraints;
the LNS start is what makes it competitive.) The final routes are
re-scheduled by :mod:`solvers.schedule` (OR-Tools' cumuls are feasible but not
ride-time optimal). Without any OR-Tools solution the insertion plan is
returned with ``stats.fallback=True``.

``SetAllowedVehiclesForIndex`` rejects Python lists in the 9.15 wheel, so
allowed vehicles restrict ``VehicleVar`` directly.

Determinism: with a ``solution_limit`` (and ``lns_iterations``) the search is
deterministic; with only a time limit, the LNS and guided local search stop
wherever the clock says, so the plan may differ between runs on a loaded
machine.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace

from ortools.constraint_solver import pywrapcp, routing_enums_pb2

from solvers.insertion import InsertionState, insertion_solve
from solvers.lns import LnsParams, lns_improve
from solvers.model import (
    HORIZON,
    Plan,
    Problem,
    Request,
    Route,
    SolveLimits,
    SolveStats,
    StopKind,
    Unassigned,
    Vehicle,
)
from solvers.schedule import Infeasible, Scheduler, Sequenced, Times

#: Share of the time limit the insertion warm start may use.
WARM_START_SHARE = 0.1
#: Share of the time limit for the ruin-and-recreate search before OR-Tools.
LNS_SHARE = 0.6
#: The same with ride times (DARP): OR-Tools' search is slow under the cumul-difference
#: constraints, and the LNS with tail exchanges did better with the whole budget
#: (a5-60, a6-48, a7-84, a8-96 at 10 s: mean gap 1.26 % at 0.6, 0.74 % at 0.9, 0.56 %
#: at 0.97), so OR-Tools is skipped there.
RIDE_TIME_LNS_SHARE = 1.0
#: The LNS without ride times (PDPTW, vehicles first): smaller ruins, greedy
#: recreate only, no tail exchanges -- as tuned on Li & Lim before the DARP work.
PDPTW_LNS = LnsParams(
    max_remove=12,
    max_remove_share=0.25,
    random_share=0.3,
    worst_share=0.0,
    regret_share=0.0,
    tails=False,
)
#: Start temperature of the search (share of the start cost) when the problem carries a
#: hint: a re-solve starts next to a local optimum, and the default start temperature
#: (0.005) spends a short budget walking away from it. Measured as ``drt bench warm``
#: does (+5 requests, 1 s from the previous plan against a 10 s cold solve), with the
#: same 6 previous plans and cold solves per instance and 3 search seeds each: mean gap on a8-96
#: 0.79 % at 0.005, 0.65 % at 0.002, 0.53 % at 0.001, 0.57 % at 0.0005, 0.65 % at
#: 0.0001; a8-80 0.63 % -> 0.32 %, a7-70 0.65 % -> 0.57 % (0.005 -> 0.001). Only with
#: ride times: on six Li & Lim instances (2 seeds each) both gave a mean warm gap of
#: about 3.5 %, dominated by re-solves that keep an extra vehicle.
WARM_START_TEMPERATURE = 0.001


@dataclass(slots=True)
class _Node:
    location: int
    service: int = 0
    earliest: int = 0
    latest: int = HORIZON
    seats: int = 0
    wheelchairs: int = 0
    request: Request | None = None
    kind: StopKind | None = None


@dataclass(slots=True)
class _Model:
    manager: pywrapcp.RoutingIndexManager
    routing: pywrapcp.RoutingModel
    time: pywrapcp.RoutingDimension
    nodes: list[_Node]
    node_of: dict[tuple[str, StopKind], int]


def _lns_params(problem: Problem, ride_times: bool) -> LnsParams:
    if not ride_times:
        return PDPTW_LNS
    if problem.hint:
        return LnsParams(start_temperature=WARM_START_TEMPERATURE)
    return LnsParams()


def _allow(routing: pywrapcp.RoutingModel, index: int, vehicles: list[int]) -> None:
    """Restrict a node to ``vehicles`` (-1 kept: it may stay unperformed).

    ``SetAllowedVehiclesForIndex`` rejects Python lists in the 9.15 wheel
    (``absl::Span``), so the vehicle variable's domain is set directly.
    """
    routing.VehicleVar(index).SetValues([-1, *vehicles])


def _big_penalty(problem: Problem) -> int:
    """More than any set of routes can cost: the penalty of a mandatory request."""
    dist = problem.distance
    longest = max((max(row) for row in dist), default=0)
    stops = 2 * len(problem.requests) + 2 * len(problem.vehicles)
    fixed = sum(v.fixed_cost for v in problem.vehicles)
    return max(1_000_000, 2 * (longest * stops + fixed) + 1)


def _build(problem: Problem) -> _Model:
    vehicles = problem.vehicles
    nv = len(vehicles)
    vindex = {v.id: k for k, v in enumerate(vehicles)}
    nodes: list[_Node] = []
    for v in vehicles:
        onboard = [r for r in problem.requests if r.onboard_vehicle == v.id]
        nodes.append(
            _Node(
                v.start,
                0,
                v.start_time,
                v.end_time,
                sum(r.seats for r in onboard),
                sum(r.wheelchairs for r in onboard),
            )
        )
    nodes.extend(_Node(v.end, 0, v.start_time, v.end_time) for v in vehicles)
    node_of: dict[tuple[str, StopKind], int] = {}
    for r in problem.requests:
        if r.onboard_vehicle is None:
            node_of[r.id, StopKind.PICKUP] = len(nodes)
            w = r.pickup_window
            nodes.append(
                _Node(
                    r.pickup,
                    r.pickup_service,
                    w.earliest,
                    w.latest,
                    r.seats,
                    r.wheelchairs,
                    r,
                    StopKind.PICKUP,
                )
            )
        node_of[r.id, StopKind.DROPOFF] = len(nodes)
        w = r.dropoff_window
        nodes.append(
            _Node(
                r.dropoff,
                r.dropoff_service,
                w.earliest,
                w.latest,
                -r.seats,
                -r.wheelchairs,
                r,
                StopKind.DROPOFF,
            )
        )
    manager = pywrapcp.RoutingIndexManager(len(nodes), nv, list(range(nv)), list(range(nv, 2 * nv)))
    routing = pywrapcp.RoutingModel(manager)
    solver = routing.solver()
    dur, dist = problem.duration, problem.distance
    locs = [n.location for n in nodes]
    dist_cb = routing.RegisterTransitMatrix([[dist[a][b] for b in locs] for a in locs])
    routing.SetArcCostEvaluatorOfAllVehicles(dist_cb)
    time_cb = routing.RegisterTransitMatrix(
        [[n.service + dur[n.location][b] for b in locs] for n in nodes]
    )
    horizon = max([HORIZON, *(v.end_time for v in vehicles), *(n.latest for n in nodes)])
    routing.AddDimension(time_cb, horizon, horizon, False, "time")
    tdim = routing.GetDimensionOrDie("time")
    for k, v in enumerate(vehicles):
        tdim.CumulVar(routing.Start(k)).SetRange(v.start_time, v.end_time)
        tdim.CumulVar(routing.End(k)).SetRange(v.start_time, v.end_time)
        if v.max_duration is not None:
            tdim.SetSpanUpperBoundForVehicle(v.max_duration, k)
        if v.fixed_cost:
            routing.SetFixedCostOfVehicle(v.fixed_cost, k)
        routing.AddVariableMinimizedByFinalizer(tdim.CumulVar(routing.End(k)))
    seat_cb = routing.RegisterUnaryTransitVector([n.seats for n in nodes])
    routing.AddDimensionWithVehicleCapacity(seat_cb, 0, [v.seats for v in vehicles], True, "seats")
    if any(n.wheelchairs for n in nodes):
        chair_cb = routing.RegisterUnaryTransitVector([n.wheelchairs for n in nodes])
        routing.AddDimensionWithVehicleCapacity(
            chair_cb, 0, [v.wheelchairs for v in vehicles], True, "wheelchairs"
        )
    big = _big_penalty(problem)
    for r in problem.requests:
        d_node = node_of[r.id, StopKind.DROPOFF]
        di = manager.NodeToIndex(d_node)
        dn = nodes[d_node]
        if r.onboard_vehicle is not None:
            assert r.picked_up_at is not None
            latest = dn.latest
            if r.max_ride_time is not None:
                latest = min(latest, r.picked_up_at + r.max_ride_time)
            tdim.CumulVar(di).SetRange(min(dn.earliest, latest), latest)
            if dn.earliest > latest:
                tdim.CumulVar(di).SetRange(latest, latest)
            _allow(routing, di, [vindex[r.onboard_vehicle]])
            routing.AddDisjunction([di], big)
            continue
        p_node = node_of[r.id, StopKind.PICKUP]
        pi = manager.NodeToIndex(p_node)
        pn = nodes[p_node]
        tdim.CumulVar(pi).SetRange(pn.earliest, pn.latest)
        tdim.CumulVar(di).SetRange(dn.earliest, dn.latest)
        routing.AddPickupAndDelivery(pi, di)
        solver.Add(routing.VehicleVar(pi) == routing.VehicleVar(di))
        solver.Add(routing.ActiveVar(pi) == routing.ActiveVar(di))
        solver.Add(tdim.CumulVar(pi) + r.pickup_service <= tdim.CumulVar(di))
        if r.max_ride_time is not None:
            solver.Add(tdim.CumulVar(di) - tdim.CumulVar(pi) <= r.max_ride_time + r.pickup_service)
        if r.allowed_vehicles is not None:
            allowed = [vindex[x] for x in r.allowed_vehicles]
            _allow(routing, pi, allowed)
            _allow(routing, di, allowed)
        routing.AddDisjunction([pi], big if r.penalty is None else r.penalty)
        routing.AddDisjunction([di], 0)
        routing.AddVariableMinimizedByFinalizer(tdim.CumulVar(di))
        routing.AddVariableMaximizedByFinalizer(tdim.CumulVar(pi))
    return _Model(manager, routing, tdim, nodes, node_of)


def _params(time_limit: float, solution_limit: int | None) -> pywrapcp.RoutingSearchParameters:
    params = pywrapcp.DefaultRoutingSearchParameters()
    params.first_solution_strategy = (
        routing_enums_pb2.FirstSolutionStrategy.PARALLEL_CHEAPEST_INSERTION
    )
    params.local_search_metaheuristic = (
        routing_enums_pb2.LocalSearchMetaheuristic.GUIDED_LOCAL_SEARCH
    )
    params.time_limit.FromMilliseconds(max(1, int(time_limit * 1000)))
    if solution_limit is not None:
        params.solution_limit = solution_limit
    params.log_search = False
    return params


def _routes_of(model: _Model, problem: Problem, plan: Plan) -> list[list[int]]:
    """A plan as OR-Tools indices per vehicle (for ReadAssignmentFromRoutes)."""
    out: list[list[int]] = []
    for v in problem.vehicles:
        route = plan.route(v.id)
        stops = route.stops if route is not None else ()
        out.append([model.manager.NodeToIndex(model.node_of[s.request_id, s.kind]) for s in stops])
    return out


def _read_solution(
    model: _Model, problem: Problem, solution: pywrapcp.Assignment
) -> tuple[list[list[Sequenced]], list[list[int]]]:
    """Stop sequences and time cumuls (start, stops, end) per vehicle."""
    routing, manager = model.routing, model.manager
    seqs: list[list[Sequenced]] = []
    cumuls: list[list[int]] = []
    for k in range(len(problem.vehicles)):
        index = routing.Start(k)
        seq: list[Sequenced] = []
        cum = [solution.Min(model.time.CumulVar(index))]
        index = solution.Value(routing.NextVar(index))
        while not routing.IsEnd(index):
            node = model.nodes[manager.IndexToNode(index)]
            assert node.request is not None and node.kind is not None
            seq.append((node.request, node.kind))
            cum.append(solution.Min(model.time.CumulVar(index)))
            index = solution.Value(routing.NextVar(index))
        cum.append(solution.Min(model.time.CumulVar(index)))
        seqs.append(seq)
        cumuls.append(cum)
    return seqs, cumuls


def _plan_from(
    problem: Problem,
    seqs: list[list[Sequenced]],
    cumuls: list[list[int]] | None,
    reasons: dict[str, str],
    stats: SolveStats,
) -> Plan | None:
    scheduler = Scheduler(problem)
    routes: list[Route] = []
    for k, v in enumerate(problem.vehicles):
        seq = seqs[k]
        result = scheduler.route(v, seq)
        if isinstance(result, Infeasible):
            if cumuls is None:
                return None
            times = _cumul_times(v, seq, cumuls[k])
            result = scheduler.build(v, seq, times)
        routes.append(result)
    served = {r.id for seq in seqs for r, _ in seq}
    unassigned = tuple(
        Unassigned(
            r.id,
            "infeasible" if r.penalty is None else reasons.get(r.id, "penalty_cheaper"),
        )
        for r in problem.requests
        if r.id not in served
    )
    return Plan(tuple(routes), unassigned, stats)


def _cumul_times(v: Vehicle, seq: list[Sequenced], cumul: list[int]) -> Times:
    loc = [v.start] + [r.pickup if k is StopKind.PICKUP else r.dropoff for r, k in seq] + [v.end]
    svc = [0] + [r.pickup_service if k is StopKind.PICKUP else r.dropoff_service for r, k in seq]
    return Times(loc, [*svc, 0], list(cumul))


def _mandatory_infeasible(
    problem: Problem, unassigned: tuple[Unassigned, ...]
) -> tuple[Unassigned, ...]:
    """Unserved mandatory requests are reported with reason ``"infeasible"``."""
    return tuple(
        Unassigned(u.request_id, "infeasible")
        if problem.request(u.request_id).penalty is None
        else u
        for u in unassigned
    )


def _cost(problem: Problem, plan: Plan) -> int:
    fixed = {v.id: v.fixed_cost for v in problem.vehicles}
    cost = sum(r.distance + (fixed[r.vehicle_id] if r.stops else 0) for r in plan.routes)
    big = _big_penalty(problem)
    for u in plan.unassigned:
        r = problem.request(u.request_id)
        cost += big if r.penalty is None else r.penalty
    return cost


def ortools_solve(
    problem: Problem,
    limits: SolveLimits,
    *,
    seed: int = 0,
    solution_limit: int | None = None,
    lns_share: float | None = None,
    lns_iterations: int | None = None,
) -> Plan:
    """Solve with OR-Tools (guided local search from the insertion warm start).

    Implements :class:`~solvers.base.Solver`. ``seed`` is passed to the
    insertion warm start. ``solution_limit`` (not part of the protocol) stops
    the search after that many improving solutions: deterministic, for tests.
    ``stats.objective`` is distance + fixed costs + penalties, an unserved
    mandatory request counting as the big penalty the model uses.

    The warm start is the insertion heuristic followed by ruin-and-recreate
    (:mod:`solvers.lns`) for ``lns_share`` of the time limit; OR-Tools' guided
    local search gets the rest. By default ``lns_share`` is
    :data:`RIDE_TIME_LNS_SHARE` when a request has a maximum ride time (the
    LNS plan is returned without OR-Tools when that is 1) and
    :data:`LNS_SHARE` otherwise; with ride times and a ``problem.hint`` it
    starts at :data:`WARM_START_TEMPERATURE`. With a ``solution_limit`` the LNS runs only
    ``lns_iterations`` iterations (none by default) and OR-Tools always runs,
    so the whole solve is deterministic.
    """
    t0 = time.monotonic()
    ride_times = any(r.max_ride_time is not None for r in problem.requests)
    if lns_share is None:
        lns_share = RIDE_TIME_LNS_SHARE if ride_times else LNS_SHARE
    warm = insertion_solve(
        problem, SolveLimits(max(0.01, limits.time_limit * WARM_START_SHARE)), seed=seed
    )
    if solution_limit is not None and lns_iterations is None:
        lns_iterations = 0
    if lns_share > 0 and lns_iterations != 0 and problem.requests:
        state = InsertionState(problem, problem.dropoff_wait_cost)
        state.restore(
            {
                r.vehicle_id: [(problem.request(s.request_id), s.kind) for s in r.stops]
                for r in warm.routes
            },
            {u.request_id: u.reason for u in warm.unassigned},
        )
        lns_improve(
            state,
            seed=seed,
            deadline=t0 + min(lns_share, 0.99) * limits.time_limit,  # 1 %: the output
            iterations=lns_iterations,
            params=_lns_params(problem, ride_times),
        )
        warm = state.plan(warm.stats)
    reasons = {u.request_id: u.reason for u in warm.unassigned}
    warm = replace(warm, unassigned=_mandatory_infeasible(problem, warm.unassigned))
    skip = lns_share >= 1 and solution_limit is None
    if skip or not problem.requests or not problem.vehicles:  # OR-Tools aborts without vehicles
        runtime = time.monotonic() - t0
        hit = runtime >= 0.95 * limits.time_limit
        return replace(warm, stats=SolveStats("ortools", _cost(problem, warm), runtime, hit))
    model = _build(problem)
    routing = model.routing
    remaining = limits.time_limit - (time.monotonic() - t0)
    params = _params(max(0.05, remaining), solution_limit)
    routing.CloseModelWithParameters(params)
    initial = routing.ReadAssignmentFromRoutes(_routes_of(model, problem, warm), True)
    if initial is not None:
        solution = routing.SolveFromAssignmentWithParameters(initial, params)
    else:
        solution = routing.SolveWithParameters(params)
    runtime = time.monotonic() - t0
    hit = runtime >= 0.95 * limits.time_limit
    if solution is None:
        stats = SolveStats(
            "ortools",
            _cost(problem, warm),
            runtime,
            hit,
            first_solution_found=False,
            fallback=True,
        )
        return replace(warm, stats=stats)
    seqs, cumuls = _read_solution(model, problem, solution)
    stats = SolveStats("ortools", 0, runtime, hit)
    plan = _plan_from(problem, seqs, cumuls, reasons, stats)
    if plan is None:
        return replace(warm, stats=replace(stats, fallback=True, objective=_cost(problem, warm)))
    cost = _cost(problem, plan)
    warm_cost = _cost(problem, warm)
    if warm_cost < cost:  # GLS cannot do worse than its start, but the insertion can be better
        return replace(warm, stats=replace(stats, objective=warm_cost))
    return replace(plan, stats=replace(stats, objective=cost))
