"""The simulation loop end to end on the real DispatchCore."""

from __future__ import annotations

from dataclasses import replace

import pytest

from dispatcher.clock import to_timestamp
from dispatcher.kpis import compute_kpis
from dispatcher.simulation import SimulationResult, simulate
from producers.demand import DemandOptions
from producers.scenario import load_scenario
from schemas.dispatch import RideRejectedV1
from schemas.passenger import RideRequestedV1
from solvers.base import Solver
from solvers.insertion import insertion_solve
from solvers.model import Plan, Problem, SolveLimits
from solvers.ortools_pdp import ortools_solve
from tests.unit.dispatcher.fleet_kit import answer_counts


def real_or_greedy() -> tuple[Solver, Solver]:
    """(solver, fallback): OR-Tools per batch, the insertion heuristic as fallback."""
    return ortools_solve, insertion_solve


greedy_solve: Solver = insertion_solve


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
    """Each request is answered by exactly one offer or one rejection, never both (a
    confirmed ride moved to another vehicle is offered again with its promise as it was)."""
    requests = [e.request_id for _, e in short_run.events if isinstance(e, RideRequestedV1)]
    assert len(requests) >= 5
    answers = answer_counts(short_run.outputs)
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
    # a passenger may try to cancel after boarding; nothing else is refused
    assert all("too late to cancel" in reason for _, _, reason in short_run.dead_letters)


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
    assert all(s.fallback for s in result.solves if s.kind == "batch")
    assert not any(s.kept for s in result.solves if s.kind == "reopt")
    assert result.history.offers


def test_passengers_turned_away_book_the_alternative_offered() -> None:
    """With accept_alternatives=1 every passenger turned away with a later pickup on
    offer books it a minute later, once; the requests count stays the same."""
    scenario = load_scenario("rendsburg")
    kw = {
        "vehicles": 2,
        "hours": 2.0,
        "seed": 4,
        "policy": "insertion",
        "demand_options": DemandOptions(scale=3.0, cutoff_s=900),
    }
    plain = simulate(scenario, **kw)  # type: ignore[arg-type]
    run = simulate(scenario, accept_alternatives=1.0, **kw)  # type: ignore[arg-type]
    assert plain.kpis["alternatives_taken"] == 0
    requests = {e.request_id: (t, e) for t, e in run.events if isinstance(e, RideRequestedV1)}
    offered_later = {
        e.request_id: (t, e)
        for t, e in run.outputs
        if isinstance(e, RideRejectedV1) and e.alternative_pickup is not None
    }
    originals = {rid: v for rid, v in offered_later.items() if not rid.endswith(".alt")}
    assert originals, "the day should turn some passengers away with an alternative"
    for rid, (t, rejection) in originals.items():
        at, rebooked = requests[f"{rid}.alt"]
        assert at == t + 60
        assert rebooked.requested_time == rejection.alternative_pickup
        assert rebooked.origin == requests[rid][1].origin
    assert not any(rid.endswith(".alt.alt") for rid in requests)
    k = run.kpis
    assert k["requests"] == plain.kpis["requests"]
    assert k["alternatives_taken"] == len(originals)
    assert 0 < k["served_by_alternative"] <= k["alternatives_taken"]
    assert k["served"] == len(run.history.alighted)
