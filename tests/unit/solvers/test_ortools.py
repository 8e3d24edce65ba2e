"""The OR-Tools model: feasibility, on-board passengers, infeasible mandatory requests,
warm starts and determinism with a solution limit."""

from __future__ import annotations

from pathlib import Path

from solvers.check import check_plan
from solvers.model import (
    Problem,
    Request,
    RouteHint,
    SolveLimits,
    StopKind,
    StopRef,
    TimeWindow,
    Vehicle,
)
from solvers.ortools_pdp import ortools_solve
from solvers.readers import read_cordeau
from tests.unit.solvers.kit import line_problem, random_problem

LIMITS = SolveLimits(5.0)


def test_small_benchmark_solved_feasibly(cordeau_ab: Path):
    """a2-16 with a short search: every request served and the checker agrees."""
    inst = read_cordeau(cordeau_ab / "a2-16.txt")
    plan = ortools_solve(inst.problem, LIMITS, solution_limit=50, lns_iterations=20)
    assert plan.unassigned == ()
    assert check_plan(inst.problem, plan) == []
    assert plan.stats.solver == "ortools"
    assert plan.stats.first_solution_found
    assert inst.cost(plan) < 294.25 * 1.05


def test_deterministic_with_a_solution_limit():
    """Same problem, seed and solution limit: the same plan twice."""
    problem = random_problem(5, n_requests=8, n_vehicles=3, onboard=2)
    first = ortools_solve(problem, LIMITS, seed=3, solution_limit=30, lns_iterations=10)
    second = ortools_solve(problem, LIMITS, seed=3, solution_limit=30, lns_iterations=10)
    assert first.routes == second.routes
    assert first.unassigned == second.unassigned
    assert check_plan(problem, first) == []


def test_onboard_passengers_stay_on_their_vehicle():
    """A passenger on board w is dropped by w even when v would be closer."""
    vehicles = (Vehicle("v", 6, 0, seats=2), Vehicle("w", 1, 0, seats=2, start_time=30))
    requests = (
        Request("o", 0, 7, onboard_vehicle="w", picked_up_at=0, max_ride_time=200),
        Request("r", 2, 3, penalty=100_000),
    )
    problem = line_problem(requests, vehicles=vehicles)
    plan = ortools_solve(problem, LIMITS, solution_limit=20)
    assert check_plan(problem, plan) == []
    w = plan.route("w")
    assert w is not None
    assert ("o", StopKind.DROPOFF) in {(s.request_id, s.kind) for s in w.stops}
    assert w.start_time >= 30


def test_impossible_mandatory_request_is_reported_not_fatal():
    """A mandatory request nobody can serve is Unassigned('infeasible'); the rest is planned."""
    requests = (
        Request("never", 9, 8, pickup_window=TimeWindow(0, 10)),
        Request("fine", 1, 2),
    )
    problem = line_problem(requests)
    plan = ortools_solve(problem, LIMITS, solution_limit=10)
    assert {u.request_id: u.reason for u in plan.unassigned} == {"never": "infeasible"}
    assert plan.served == {"fine"}
    violations = check_plan(problem, plan)
    assert violations == ["mandatory request never not served"]


def test_allowed_vehicles_and_wheelchairs():
    """A wheelchair user rides only on a vehicle with a place; allowed_vehicles holds."""
    vehicles = (Vehicle("v", 0, 0, seats=4), Vehicle("w", 9, 9, seats=1, wheelchairs=1))
    requests = (
        Request("chair", 1, 2, seats=0, wheelchairs=1, penalty=100_000),
        Request("only_v", 8, 7, allowed_vehicles=("v",), penalty=100_000),
    )
    problem = line_problem(requests, vehicles=vehicles)
    plan = ortools_solve(problem, LIMITS, solution_limit=20)
    assert check_plan(problem, plan) == []
    w, v = plan.route("w"), plan.route("v")
    assert w is not None and v is not None
    assert {s.request_id for s in w.stops} == {"chair"}
    assert {s.request_id for s in v.stops} == {"only_v"}


def test_hint_is_a_valid_warm_start(simple: Problem):
    """A hinted plan is accepted as the start; the result is feasible and no worse."""
    hint = RouteHint(
        "v",
        (
            StopRef("b", StopKind.PICKUP),
            StopRef("b", StopKind.DROPOFF),
            StopRef("a", StopKind.PICKUP),
            StopRef("a", StopKind.DROPOFF),
        ),
    )
    problem = Problem(simple.duration, simple.distance, simple.vehicles, simple.requests, (hint,))
    plan = ortools_solve(problem, LIMITS, solution_limit=20)
    assert check_plan(problem, plan) == []
    assert plan.served == {"a", "b"}
    assert plan.stats.objective <= 1400  # the hinted order costs 0-2-5-1-3-0 = 14 x 100 m


def test_no_vehicles_and_no_requests():
    """Without vehicles every request is unserved (OR-Tools is not called: it would abort);
    without requests every vehicle just drives to its end depot."""
    no_fleet = line_problem((Request("a", 1, 2, penalty=5),), vehicles=())
    plan = ortools_solve(no_fleet, LIMITS)
    assert [(u.request_id, u.reason) for u in plan.unassigned] == [("a", "no_vehicle")]
    assert check_plan(no_fleet, plan) == []
    idle = line_problem((), vehicles=(Vehicle("v", 3, 0, start_time=50),))
    plan = ortools_solve(idle, LIMITS)
    assert check_plan(idle, plan) == []
    assert plan.routes[0].end_time == 80
