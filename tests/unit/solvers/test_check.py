"""The plan checker catches every kind of violation on hand-made plans."""

from __future__ import annotations

from dataclasses import replace

import pytest

from solvers.check import check_plan, plan_cost
from solvers.model import (
    Plan,
    Problem,
    Request,
    Route,
    Stop,
    StopKind,
    StopRef,
    TimeWindow,
    Unassigned,
    Vehicle,
)
from solvers.schedule import Infeasible, schedule_route
from tests.unit.solvers.kit import line_problem

P, D = StopKind.PICKUP, StopKind.DROPOFF


def feasible(problem: Problem) -> Plan:
    """Vehicle ``v`` serves a then b (nested), ``w`` stays empty."""
    routes = []
    for vid, stops in (
        ("v", [("a", P), ("b", P), ("b", D), ("a", D)]),
        ("w", []),
    ):
        route = schedule_route(problem, vid, [StopRef(r, k) for r, k in stops])
        assert not isinstance(route, Infeasible), route
        routes.append(route)
    return Plan(tuple(routes), (Unassigned("c", "penalty_cheaper"),))


@pytest.fixture
def problem() -> Problem:
    """Two vehicles, a mandatory request a, an optional b and an optional c."""
    vehicles = (
        Vehicle("v", 0, 0, seats=2, wheelchairs=1, max_duration=1000, end_time=2000),
        Vehicle("w", 9, 9, seats=1),
    )
    requests = (
        Request("a", 1, 6, max_ride_time=80, pickup_service=2, dropoff_service=2),
        Request("b", 2, 4, pickup_window=TimeWindow(0, 500), penalty=100, max_ride_time=40),
        Request("c", 3, 5, penalty=100),
    )
    return line_problem(requests, vehicles=vehicles)


def with_stop(plan: Plan, k: int, **changes: object) -> Plan:
    """The plan with stop ``k`` of the first route changed."""
    route = plan.routes[0]
    stops = list(route.stops)
    stops[k] = replace(stops[k], **changes)  # type: ignore[arg-type]
    return replace(plan, routes=(replace(route, stops=tuple(stops)), *plan.routes[1:]))


def violations(problem: Problem, plan: Plan, needle: str) -> list[str]:
    found = check_plan(problem, plan)
    assert any(needle in v for v in found), (needle, found)
    return found


def test_feasible_plan_has_no_violations(problem: Problem):
    """The reference plan is clean, and its cost is distance plus penalties."""
    plan = feasible(problem)
    assert check_plan(problem, plan) == []
    assert plan_cost(problem, plan) == plan.routes[0].distance + 100


def test_unserved_mandatory_and_missing_requests(problem: Problem):
    """A mandatory request left out, or a request neither served nor unassigned."""
    plan = feasible(problem)
    empty = Route("v", (), 0, 0, 0)
    violations(problem, replace(plan, routes=(empty, plan.routes[1])), "mandatory request a")
    violations(problem, replace(plan, unassigned=()), "c neither served nor unassigned")
    violations(
        problem,
        replace(plan, unassigned=(*plan.unassigned, Unassigned("a", "x"))),
        "both served and unassigned",
    )


def test_served_twice_and_split(problem: Problem):
    """The same request on two vehicles, or picked up twice."""
    plan = feasible(problem)
    v, w = plan.routes
    stolen = replace(w, stops=(v.stops[1],))
    violations(problem, replace(plan, routes=(v, stolen)), "split over")
    twice = replace(v, stops=(v.stops[0], v.stops[1], v.stops[1], v.stops[2], v.stops[3]))
    violations(problem, replace(plan, routes=(twice, w)), "picked up twice")


def test_precedence(problem: Problem):
    """A drop-off before its pickup, or a pickup never dropped off."""
    plan = feasible(problem)
    v = plan.routes[0]
    swapped = replace(v, stops=(v.stops[2], v.stops[1], v.stops[0], v.stops[3]))
    violations(problem, replace(plan, routes=(swapped, plan.routes[1])), "drop-off before pickup")
    dangling = replace(v, stops=v.stops[:3])
    violations(problem, replace(plan, routes=(dangling, plan.routes[1])), "never dropped off")


def test_capacity_seats_and_wheelchairs():
    """Seats and wheelchair places are separate capacities."""
    requests = (Request("a", 1, 3, seats=2), Request("b", 2, 4, seats=0, wheelchairs=1))
    vehicle = Vehicle("v", 0, 0, seats=1, wheelchairs=0)
    problem = line_problem(requests, vehicles=(vehicle,))
    stops = (
        Stop("a", P, 1, 10, 10, 10),
        Stop("b", P, 2, 20, 20, 20),
        Stop("a", D, 3, 30, 30, 30),
        Stop("b", D, 4, 40, 40, 40),
    )
    plan = Plan((Route("v", stops, 0, 80, 800),), ())
    found = check_plan(problem, plan)
    assert any("seats > 1" in v for v in found), found
    assert any("wheelchairs > 0" in v for v in found), found


def test_time_window_and_ride_time(problem: Problem):
    """Service outside its window; a ride longer than allowed."""
    plan = feasible(problem)
    route = plan.routes[0]
    late = route.stops[1].service_start + 600
    violations(
        problem,
        with_stop(plan, 1, arrival=late, service_start=late, departure=late),
        "outside [0, 500]",
    )
    slow = route.stops[3].service_start + 200
    violations(
        problem,
        with_stop(plan, 3, arrival=slow, service_start=slow, departure=slow + 2),
        "ride time",
    )


def test_travel_times_and_stop_times(problem: Problem):
    """Arriving faster than the matrix, serving before arrival, wrong departure."""
    plan = feasible(problem)
    first = plan.routes[0].stops[0]
    violations(problem, with_stop(plan, 0, arrival=first.arrival - 1), "cannot before")
    violations(problem, with_stop(plan, 0, service_start=first.arrival - 1), "before arrival")
    violations(problem, with_stop(plan, 0, departure=first.departure + 1), "service ends")
    violations(problem, with_stop(plan, 0, location=7), "location 7")


def test_route_level_rules(problem: Problem):
    """Distance, shift end, duration, leaving before the vehicle is free, return time."""
    plan = feasible(problem)
    v = plan.routes[0]
    cases = [
        (replace(v, distance=v.distance + 1), "distance"),
        (replace(v, end_time=2500), "after shift end"),
        (replace(v, start_time=v.start_time - 1), "before it is free"),
        (replace(v, end_time=v.end_time - 1), "cannot before"),
    ]
    for route, needle in cases:
        violations(problem, replace(plan, routes=(route, plan.routes[1])), needle)
    long_problem = replace(
        problem, vehicles=(replace(problem.vehicles[0], max_duration=10), problem.vehicles[1])
    )
    violations(long_problem, plan, "duration")


def test_onboard_passengers_and_allowed_vehicles():
    """On-board passengers belong to their vehicle; allowed_vehicles is enforced."""
    vehicles = (Vehicle("v", 0, 0), Vehicle("w", 0, 0))
    requests = (
        Request("o", 1, 2, onboard_vehicle="w", picked_up_at=0),
        Request("x", 1, 2, allowed_vehicles=("w",), penalty=5),
    )
    problem = line_problem(requests, vehicles=vehicles)
    stops = (
        Stop("o", D, 2, 20, 20, 20),
        Stop("x", P, 1, 30, 30, 30),
        Stop("x", D, 2, 40, 40, 40),
    )
    plan = Plan((Route("v", stops, 0, 60, 600), Route("w", (), 0, 0, 0)), ())
    found = check_plan(problem, plan)
    assert any("on board w" in v for v in found), found
    assert any("vehicle not allowed" in v for v in found), found
    assert any("never dropped off" in v for v in found), found
    only_pickup = Plan((Route("w", (Stop("o", P, 1, 10, 10, 10),), 0, 0, 0),), ())
    assert any("already on board" in v for v in check_plan(problem, only_pickup))


def test_unknown_vehicle_and_request(problem: Problem):
    """Routes for vehicles or stops for requests the problem does not know."""
    plan = feasible(problem)
    ghost = Route("ghost", (), 0, 0, 0)
    violations(problem, replace(plan, routes=(*plan.routes, ghost)), "unknown vehicle")
    violations(problem, with_stop(plan, 0, request_id="zzz"), "unknown request")
