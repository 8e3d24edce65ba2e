"""Property tests: every plan from every solver passes the independent checker."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from solvers.check import check_plan
from solvers.insertion import insert_request, insertion_solve
from solvers.lns import lns_solve
from solvers.model import Plan, Problem, SolveLimits, StopKind, StopRef
from solvers.ortools_pdp import ortools_solve
from solvers.schedule import Infeasible, Scheduler, Sequenced, Times, schedule_route
from tests.unit.solvers.kit import random_problem

LIMITS = SolveLimits(5.0)

problems = st.builds(
    random_problem,
    seed=st.integers(0, 10_000),
    n_requests=st.integers(0, 9),
    n_vehicles=st.integers(1, 3),
    onboard=st.integers(0, 2),
    wheelchairs=st.booleans(),
    ride_limits=st.booleans(),
    hint=st.booleans(),
)


def examples(n: int) -> settings:
    """``n`` derandomised examples, no deadline (solves take their time)."""
    return settings(
        max_examples=n,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow],
        derandomize=True,
        database=None,
    )


def assert_feasible(problem: Problem, plan: Plan) -> None:
    assert check_plan(problem, plan) == []
    served = plan.served
    assert {u.request_id for u in plan.unassigned} == {
        r.id for r in problem.requests if r.id not in served
    }


@examples(100)
@given(problems)
def test_insertion_plans_pass_the_checker(problem: Problem):
    """insertion_solve: feasible plans, passengers on board always delivered."""
    assert_feasible(problem, insertion_solve(problem, LIMITS))


@examples(30)
@given(problems)
def test_lns_plans_pass_the_checker(problem: Problem):
    """The ruin-and-recreate search keeps plans feasible."""
    assert_feasible(problem, lns_solve(problem, LIMITS, iterations=15))


@examples(40)
@given(problems)
def test_ortools_plans_pass_the_checker(problem: Problem):
    """ortools_solve (with its re-scheduling) returns checker-clean plans."""
    plan = ortools_solve(problem, LIMITS, solution_limit=15, lns_iterations=5)
    assert_feasible(problem, plan)
    assert not plan.stats.fallback


@examples(80)
@given(problems, st.randoms(use_true_random=False))
def test_scheduler_agrees_with_checker(problem: Problem, rnd):
    """Any random stop order the scheduler accepts is accepted by the checker."""
    vehicle = problem.vehicles[0]
    pool = [r for r in problem.requests if r.onboard_vehicle in (None, vehicle.id)]
    chosen = rnd.sample(pool, min(len(pool), 4))
    stops: list[StopRef] = []
    for r in chosen:
        if r.onboard_vehicle is None:
            i = rnd.randint(0, len(stops))
            stops.insert(i, StopRef(r.id, "pickup"))  # type: ignore[arg-type]
            stops.insert(rnd.randint(i + 1, len(stops)), StopRef(r.id, "dropoff"))  # type: ignore[arg-type]
        else:
            stops.insert(rnd.randint(0, len(stops)), StopRef(r.id, "dropoff"))  # type: ignore[arg-type]
    route = schedule_route(problem, vehicle.id, stops)
    if isinstance(route, Infeasible):
        return
    sub = Problem(
        problem.duration,
        problem.distance,
        (vehicle,),
        tuple(r for r in problem.requests if r.id in {s.request_id for s in stops}),
    )
    assert check_plan(sub, Plan((route,), ())) == []


@examples(50)
@given(problems)
def test_insert_request_keeps_plans_feasible(problem: Problem):
    """Inserting the last request into a plan of the others stays feasible."""
    if not problem.requests or problem.requests[-1].onboard:
        return
    last = problem.requests[-1]
    rest = Problem(problem.duration, problem.distance, problem.vehicles, problem.requests[:-1])
    plan = insertion_solve(rest, LIMITS)
    out = insert_request(problem, plan, last.id)
    if out is None:
        return
    assert last.id in out.served
    assert check_plan(problem, out) == [] or all(
        "neither served" in v or "mandatory" in v for v in check_plan(problem, out)
    )


@examples(120)
@given(problems, st.randoms(use_true_random=False))
def test_fast_feasibility_agrees_with_the_full_scheduler(problem: Problem, rnd):
    """The earliest-schedule check (``fast=True``) accepts exactly what the full
    scheduler accepts; the earliest and the latest schedule pass the checker and
    bracket the full scheduler's."""
    scheduler = Scheduler(problem)
    vehicle = problem.vehicles[0]
    pool = [r for r in problem.requests if r.onboard_vehicle in (None, vehicle.id)]
    chosen = rnd.sample(pool, min(len(pool), 5))
    stops: list[Sequenced] = []
    for r in chosen:
        if r.onboard_vehicle is None:
            i = rnd.randint(0, len(stops))
            stops.insert(i, (r, StopKind.PICKUP))
            stops.insert(rnd.randint(i + 1, len(stops)), (r, StopKind.DROPOFF))
        else:
            stops.insert(rnd.randint(0, len(stops)), (r, StopKind.DROPOFF))
    fast = scheduler.times(vehicle, stops, fast=True)
    full = scheduler.times(vehicle, stops)
    latest = scheduler.latest(vehicle, stops)
    assert isinstance(fast, Infeasible) == isinstance(full, Infeasible)
    # times only (no capacity or pairing check), like Scheduler.earliest
    assert (latest is None) == isinstance(scheduler.earliest(vehicle, stops), Infeasible)
    if isinstance(fast, Infeasible):
        return
    assert latest is not None
    assert all(a <= b for a, b in zip(fast.start, latest, strict=True))
    assert all(a <= b for a, b in zip(full.start, latest, strict=True))
    sub = Problem(
        problem.duration,
        problem.distance,
        problem.vehicles,
        tuple({r.id: r for r, _ in stops}.values()),
    )
    assert check_plan(sub, Plan((scheduler.build(vehicle, stops, fast),), ())) == []
    late = Times(fast.locations, fast.service, latest)
    assert check_plan(sub, Plan((scheduler.build(vehicle, stops, late),), ())) == []
