"""The simulation loop end to end on the real DispatchCore."""

from __future__ import annotations

import importlib
import importlib.util
from collections import Counter
from dataclasses import replace

import pytest

from dispatcher.clock import to_timestamp
from dispatcher.kpis import compute_kpis
from dispatcher.simulation import SimulationResult, simulate
from producers.demand import DemandOptions
from producers.scenario import load_scenario
from schemas.dispatch import RideOfferedV1, RideRejectedV1
from schemas.passenger import RideRequestedV1
from solvers.base import Solver
from solvers.model import (
    Plan,
    Problem,
    Request,
    Route,
    SolveLimits,
    SolveStats,
    Stop,
    StopKind,
    Unassigned,
)

# -- a tiny greedy stand-in, used only until solvers/insertion.py exists ------------------

_Item = tuple[Request, StopKind]


def _timing(problem: Problem, vi: int, items: list[_Item]) -> tuple[list[Stop], int, int] | None:
    """Stops with times, distance and the lateness of promised stops, or None if infeasible.

    Promised stops (penalty None) may be late (a delay must not make them unplannable);
    an insertion is accepted only if it adds no lateness.
    """
    v = problem.vehicles[vi]
    t, loc, dist = v.start_time, v.start, 0
    seats = sum(r.seats for r in problem.requests if r.onboard_vehicle == v.id)
    wheel = sum(r.wheelchairs for r in problem.requests if r.onboard_vehicle == v.id)
    picked: dict[str, int] = {
        r.id: r.picked_up_at or 0 for r in problem.requests if r.onboard_vehicle == v.id
    }
    stops = []
    late = 0
    for r, kind in items:
        at = r.pickup if kind is StopKind.PICKUP else r.dropoff
        arrival = t + problem.duration[loc][at]
        dist += problem.distance[loc][at]
        window = r.pickup_window if kind is StopKind.PICKUP else r.dropoff_window
        start = max(arrival, window.earliest)
        soft = r.penalty is None  # a promise: a delay must not make it unplannable
        if start > window.latest:
            if not soft:
                return None
            late += start - window.latest
        if kind is StopKind.PICKUP:
            seats, wheel = seats + r.seats, wheel + r.wheelchairs
            if seats > v.seats or wheel > v.wheelchairs:
                return None
            depart = start + r.pickup_service
            picked[r.id] = depart
        else:
            if r.id not in picked:
                return None
            over = start - picked[r.id] - (r.max_ride_time or 0)
            if r.max_ride_time is not None and over > 0:
                if not soft:
                    return None
                late += over
            seats, wheel = seats - r.seats, wheel - r.wheelchairs
            depart = start + r.dropoff_service
        stops.append(Stop(r.id, kind, at, arrival, start, depart))
        t, loc = depart, at
    if t + problem.duration[loc][v.end] > v.end_time:
        return None
    return stops, dist + problem.distance[loc][v.end], late


def greedy_solve(problem: Problem, limits: SolveLimits, *, seed: int = 0) -> Plan:
    """Keep the hinted routes; insert each optional request at its cheapest feasible place."""
    by_id = {r.id: r for r in problem.requests}
    routes: list[list[_Item]] = []
    for v in problem.vehicles:
        hint = next((h for h in problem.hint if h.vehicle_id == v.id), None)
        items = [(by_id[s.request_id], s.kind) for s in (hint.stops if hint else ())]
        have = {(r.id, k) for r, k in items}
        items.extend(
            (r, StopKind.DROPOFF)
            for r in problem.requests
            if r.onboard_vehicle == v.id and (r.id, StopKind.DROPOFF) not in have
        )
        routes.append(items)
    planned = {r.id for items in routes for r, _ in items}
    unassigned = []
    for r in problem.requests:
        if r.id in planned:
            continue
        best: tuple[int, int, list[_Item]] | None = None
        for vi, v in enumerate(problem.vehicles):
            if r.allowed_vehicles is not None and v.id not in r.allowed_vehicles:
                continue
            base = _timing(problem, vi, routes[vi])
            if base is None:
                continue
            base_d, base_late = base[1], base[2]
            items = routes[vi]
            for i in range(len(items) + 1):
                for j in range(i, len(items) + 1):
                    cand = [*items[:i], (r, StopKind.PICKUP), *items[i:j],
                            (r, StopKind.DROPOFF), *items[j:]]  # fmt: skip
                    timed = _timing(problem, vi, cand)
                    if timed is None or timed[2] > base_late:
                        continue
                    if best is None or timed[1] - base_d < best[0]:
                        best = (timed[1] - base_d, vi, cand)
        if best is None:
            unassigned.append(Unassigned(r.id, "no_feasible_insertion"))
        else:
            routes[best[1]] = best[2]
    out = []
    for vi, v in enumerate(problem.vehicles):
        stops, dist, _ = _timing(problem, vi, routes[vi]) or ([], 0, 0)
        end = stops[-1].departure if stops else v.start_time
        out.append(Route(v.id, tuple(stops), v.start_time, end, dist))
    return Plan(tuple(out), tuple(unassigned), SolveStats("greedy-test", 0, 0.0))


def real_or_greedy() -> tuple[Solver, Solver]:
    """(solver, fallback): the project's solvers when they exist, else the stand-in."""
    if importlib.util.find_spec("solvers.insertion") is None:
        return greedy_solve, greedy_solve
    insertion: Solver = importlib.import_module("solvers.insertion").insertion_solve
    if importlib.util.find_spec("solvers.ortools_pdp") is None:
        return insertion, insertion
    return importlib.import_module("solvers.ortools_pdp").ortools_solve, insertion


# -- the tests ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def short_run() -> SimulationResult:
    """One simulated hour, 3 vehicles, a small demand, no no-shows."""
    scenario = load_scenario("rendsburg")
    solver, fallback = real_or_greedy()
    return simulate(
        scenario,
        vehicles=3,
        hours=1.0,
        seed=7,
        solver=solver,
        fallback=fallback,
        solver_time_limit=0.2,
        demand_options=DemandOptions(scale=1.0, cutoff_s=900),
        no_show_prob=0.0,
    )


def test_every_request_gets_exactly_one_outcome(short_run: SimulationResult) -> None:
    """Each request is answered by exactly one offer or one rejection, never both."""
    requests = [e.request_id for _, e in short_run.events if isinstance(e, RideRequestedV1)]
    assert len(requests) >= 5
    answers = Counter(
        e.request_id for _, e in short_run.outputs if isinstance(e, RideOfferedV1 | RideRejectedV1)
    )
    assert set(answers) == set(requests)
    assert all(n == 1 for n in answers.values())


def test_every_offered_ride_is_completed_or_has_a_reason(short_run: SimulationResult) -> None:
    """A confirmed ride ends completed, cancelled or as a no-show; none is left open."""
    h = short_run.history
    assert h.offers
    for rid in h.offers:
        done = rid in h.alighted or rid in h.cancelled or rid in h.no_shows
        status, reason = h.outcomes.get(rid, ("forgotten", None))
        assert done or reason, (rid, status)
    assert compute_kpis(h)["confirmed_unaccounted"] == []


def test_capacity_is_never_exceeded(short_run: SimulationResult) -> None:
    """No vehicle ever carries more persons than its seats plus wheelchair places."""
    capacity = {v.vehicle_id: v.seats + v.wheelchairs for v in short_run.vehicles}
    for vid, most in short_run.max_persons.items():
        assert most <= capacity[vid]
    for s in short_run.history.segments:
        assert s.persons <= capacity[s.vehicle_id]


def test_no_promise_is_broken(short_run: SimulationResult) -> None:
    """Every boarding lies in its promised window and every drop-off before its promise."""
    h = short_run.history
    assert h.boarded
    for rid, t in h.boarded.items():
        offer = h.offers[rid][1]
        assert to_timestamp(offer.pickup_window_start) - 1 <= t
        assert t <= to_timestamp(offer.pickup_window_end) + 1
    k = compute_kpis(h)
    assert k["promise_broken"] == 0
    assert k["ride_time_exceeded"] == 0


def test_boarding_precedes_alighting_and_fleet_returns(short_run: SimulationResult) -> None:
    """Every passenger alights after boarding on the same ride; all shifts end at the depot."""
    h = short_run.history
    for rid, t in h.alighted.items():
        assert h.boarded[rid] < t
    ended = [e for _, e in short_run.events if e.type == "shift.ended"]
    assert len(ended) == len(short_run.vehicles)
    assert not short_run.dead_letters


def test_simulation_is_deterministic_per_seed() -> None:
    """Two runs with the same seed and solver produce the same outcomes."""
    scenario = load_scenario("rendsburg")
    kw = {
        "vehicles": 2,
        "hours": 0.5,
        "seed": 3,
        "solver": greedy_solve,
        "fallback": greedy_solve,
        "demand_options": DemandOptions(scale=2.0, cutoff_s=300),
    }
    a = simulate(scenario, **kw)  # type: ignore[arg-type]
    b = simulate(scenario, **kw)  # type: ignore[arg-type]
    drop = {"confirmed_unaccounted"}
    assert {k: v for k, v in a.kpis.items() if k not in drop} == {
        k: v for k, v in b.kpis.items() if k not in drop
    }
    assert [type(e).__name__ for _, e in a.outputs] == [type(e).__name__ for _, e in b.outputs]


def test_a_failing_solver_falls_back() -> None:
    """When the per-batch solver raises, the fallback plans the batch instead."""
    scenario = load_scenario("rendsburg")

    def broken(problem: Problem, limits: SolveLimits, *, seed: int = 0) -> Plan:
        raise RuntimeError("boom")

    result = simulate(
        replace(scenario),
        vehicles=2,
        hours=0.5,
        seed=5,
        solver=broken,
        fallback=greedy_solve,
        demand_options=DemandOptions(scale=2.0, cutoff_s=300),
    )
    assert result.solves
    assert all(s.fallback for s in result.solves)
    assert result.history.offers
