"""The insertion heuristic: feasibility, hints, reasons, insert_request and determinism."""

from __future__ import annotations

from pathlib import Path

from solvers.check import check_plan
from solvers.insertion import InsertionState, insert_request, insertion_solve
from solvers.model import (
    Plan,
    Problem,
    Request,
    RouteHint,
    SolveLimits,
    SolveStats,
    StopKind,
    StopRef,
    TimeWindow,
    Vehicle,
)
from solvers.readers import read_cordeau
from tests.unit.solvers.kit import line_problem, random_problem

P, D = StopKind.PICKUP, StopKind.DROPOFF
LIMITS = SolveLimits(5.0)


def order(plan: Plan, vehicle: str) -> list[tuple[str, str]]:
    route = plan.route(vehicle)
    assert route is not None
    return [(s.request_id, s.kind.value) for s in route.stops]


def test_serves_simple_problem(simple: Problem):
    """Both requests of the line problem are served feasibly, in a sensible order."""
    plan = insertion_solve(simple, LIMITS)
    assert check_plan(simple, plan) == []
    assert plan.served == {"a", "b"}
    assert plan.stats.solver == "insertion"
    assert plan.stats.objective == 1000  # 0 -> 1 -> 2 -> 3|5 -> 5|3 -> 0, 100 m apart


def test_feasible_hint_is_kept(simple: Problem):
    """A feasible hinted route (not the cheapest) is kept as it is."""
    hint = RouteHint("v", (StopRef("b", P), StopRef("b", D), StopRef("a", P), StopRef("a", D)))
    problem = Problem(simple.duration, simple.distance, simple.vehicles, simple.requests, (hint,))
    plan = insertion_solve(problem, LIMITS)
    assert check_plan(problem, plan) == []
    assert order(plan, "v") == [(s.request_id, s.kind.value) for s in hint.stops]


def test_infeasible_hint_is_repaired():
    """An infeasible hint keeps what fits, in order; the rest is re-inserted elsewhere."""
    vehicles = (Vehicle("v", 0, 0, seats=1), Vehicle("w", 0, 0, seats=1))
    requests = (Request("a", 1, 5), Request("b", 2, 6))
    hint = RouteHint("v", (StopRef("a", P), StopRef("b", P), StopRef("a", D), StopRef("b", D)))
    base = line_problem(requests, vehicles=vehicles)
    problem = Problem(base.duration, base.distance, vehicles, requests, (hint,))
    plan = insertion_solve(problem, LIMITS)
    assert check_plan(problem, plan) == []
    assert order(plan, "v")[:2] == [("a", "pickup"), ("a", "dropoff")]
    assert plan.served == {"a", "b"}


def test_unserved_requests_carry_reasons():
    """Too big for every vehicle: capacity; window impossible: time_window; too dear."""
    requests = (
        Request("big", 1, 2, seats=5, penalty=100),
        Request("late", 8, 9, pickup_window=TimeWindow(0, 30), penalty=100),
        Request("dear", 1, 9, penalty=1),
        Request("ok", 1, 2, penalty=10_000),
    )
    plan = insertion_solve(line_problem(requests), LIMITS)
    reasons = {u.request_id: u.reason for u in plan.unassigned}
    assert reasons == {"big": "capacity", "late": "time_window", "dear": "penalty_cheaper"}
    assert check_plan(line_problem(requests), plan) == []


def test_onboard_and_mid_route_vehicles():
    """Passengers on board are dropped by their vehicle; vehicles start where they are."""
    problem = random_problem(3, n_requests=6, n_vehicles=3, onboard=3)
    plan = insertion_solve(problem, LIMITS)
    assert check_plan(problem, plan) == []
    for r in problem.requests:
        if r.onboard_vehicle is not None:
            route = plan.route(r.onboard_vehicle)
            assert route is not None
            assert (r.id, D) in {(s.request_id, s.kind) for s in route.stops}
    for route in plan.routes:
        vehicle = next(v for v in problem.vehicles if v.id == route.vehicle_id)
        assert route.start_time >= vehicle.start_time


def test_insert_request_keeps_existing_order(simple: Problem):
    """insert_request places one new request and leaves the planned order alone."""
    plan = insertion_solve(simple, LIMITS)
    new = Request("c", 4, 7, penalty=50_000)
    out = insert_request(simple, plan, new)
    assert out is not None
    kept = [x for x in order(out, "v") if x[0] != "c"]
    assert kept == order(plan, "v")
    assert ("c", "pickup") in order(out, "v")
    extended = Problem(simple.duration, simple.distance, simple.vehicles, (*simple.requests, new))
    assert check_plan(extended, out) == []


def test_insert_request_from_stop_refs_and_failure(simple: Problem):
    """Routes given as stop references work; an impossible request gives None."""
    routes = {"v": [StopRef("a", P), StopRef("a", D)]}
    out = insert_request(simple, routes, "b")
    assert out is not None
    assert out.served == {"a", "b"}
    impossible = Request("x", 9, 1, pickup_window=TimeWindow(0, 5))
    assert insert_request(simple, routes, impossible) is None


def test_deterministic_for_a_seed():
    """The same problem and seed give the same plan, twice."""
    problem = random_problem(11, n_requests=10, n_vehicles=3, onboard=1)
    for seed in (0, 7):
        first = insertion_solve(problem, LIMITS, seed=seed)
        second = insertion_solve(problem, LIMITS, seed=seed)
        assert first.routes == second.routes
        assert first.unassigned == second.unassigned


def test_small_benchmark_served_feasibly(cordeau_ab: Path):
    """a2-16: every request served, every rule kept."""
    inst = read_cordeau(cordeau_ab / "a2-16.txt")
    plan = insertion_solve(inst.problem, LIMITS)
    assert plan.unassigned == ()
    assert check_plan(inst.problem, plan) == []


def test_exchange_tails_swaps_route_ends_where_both_vehicles_are_empty():
    """v serves a (1->2) then b (8->9), w serves c (8->9) then d (1->2) (3800 m): swapping
    tails where the vehicles are empty ends with one vehicle serving all four
    (e.g. 0-1-2-8-9-8-9-1-2-0, 2200 m)."""
    vehicles = (Vehicle("v", 0, 0, seats=2), Vehicle("w", 0, 0, seats=2))
    requests = (Request("a", 1, 2), Request("b", 8, 9), Request("c", 8, 9), Request("d", 1, 2))
    problem = line_problem(requests, vehicles=vehicles)
    state = InsertionState(problem)
    r = {x.id: x for x in requests}
    assert state.set_route("v", [(r["a"], P), (r["a"], D), (r["b"], P), (r["b"], D)])
    assert state.set_route("w", [(r["c"], P), (r["c"], D), (r["d"], P), (r["d"], D)])
    before = state.total_cost()
    assert state.exchange_tails(fixed=frozenset({"a"})) == 0  # v is fixed: nothing to swap
    assert before == 3800
    saved = state.exchange_tails()
    assert saved == 1600
    assert state.total_cost() == before - saved
    plan = state.plan(SolveStats("test", state.total_cost(), 0.0))
    assert check_plan(problem, plan) == []
    (used,) = [route for route in plan.routes if route.stops]
    assert used.distance == 2200


def test_wait_cost_trades_distance_for_a_sooner_pickup():
    """With a wait cost, the insertion picks an idle vehicle that adds more distance
    over a busy one passing by much later; without it, the cheaper distance wins."""
    v_idle = Vehicle("idle", start=0, end=0)
    v_busy = Vehicle("busy", start=50, end=50)
    booked = Request("q", 50, 5, pickup_window=TimeWindow(3000, 3100))
    problem = line_problem((booked,), (v_idle, v_busy), n=60)
    routes = {"idle": [], "busy": [StopRef("q", P), StopRef("q", D)]}
    new = Request("n", 20, 15)  # on the busy vehicle's way down, at about t = 3300

    def pickup(plan: Plan) -> tuple[str, int]:
        return next(
            (r.vehicle_id, s.service_start)
            for r in plan.routes
            for s in r.stops
            if s.request_id == "n" and s.kind == P
        )

    by_distance = insert_request(problem, routes, new)
    by_wait = insert_request(problem, routes, new, wait_cost=3.0)
    assert by_distance is not None and by_wait is not None
    assert pickup(by_distance) == ("busy", 3300)  # adds 0 m, picks up after 3300 s
    assert pickup(by_wait) == ("idle", 200)  # 4000 m + 3 x 200 < 0 m + 3 x 3300
    extended = Problem(problem.duration, problem.distance, problem.vehicles, (booked, new))
    assert check_plan(extended, by_wait) == []
