"""The scheduler: exact times, ride-time-aware delays, and each infeasibility reason."""

from __future__ import annotations

from solvers.check import check_plan
from solvers.model import Plan, Request, StopKind, StopRef, TimeWindow, Vehicle
from solvers.schedule import Infeasible, schedule_route
from tests.unit.solvers.kit import line_problem

P, D = StopKind.PICKUP, StopKind.DROPOFF


def refs(*items: tuple[str, StopKind]) -> list[StopRef]:
    return [StopRef(rid, kind) for rid, kind in items]


def test_times_follow_the_matrix_and_services():
    """Arrival = previous departure + travel; departure = service start + service."""
    problem = line_problem((Request("a", 1, 3, pickup_service=5, dropoff_service=7),))
    route = schedule_route(problem, "v", refs(("a", P), ("a", D)))
    assert not isinstance(route, Infeasible)
    pick, drop = route.stops
    assert (pick.arrival, pick.service_start, pick.departure) == (10, 10, 15)
    assert (drop.arrival, drop.service_start, drop.departure) == (35, 35, 42)
    assert route.start_time == 0
    assert route.end_time == 42 + 30
    assert route.distance == 100 + 200 + 300


def test_pickup_is_delayed_to_shorten_the_ride():
    """Waiting before a late drop-off window moves to the pickup (Cordeau's forward slack)."""
    problem = line_problem(
        (
            Request(
                "a", 1, 2, dropoff_window=TimeWindow(500, 600), pickup_service=5, max_ride_time=100
            ),
        )
    )
    route = schedule_route(problem, "v", refs(("a", P), ("a", D)))
    assert not isinstance(route, Infeasible)
    pick, drop = route.stops
    assert drop.service_start == 500
    assert drop.service_start - pick.departure == 10  # the bare travel time
    assert route.start_time == 485 - 10  # the vehicle leaves late rather than waits


def test_depot_departure_delay_keeps_route_duration():
    """Delaying the start absorbs waiting, so a tight route duration is still met."""
    vehicle = Vehicle("v", 0, 0, seats=2, max_duration=100)
    problem = line_problem(
        (Request("a", 1, 2, pickup_window=TimeWindow(1000, 1010)),), vehicles=(vehicle,)
    )
    route = schedule_route(problem, "v", refs(("a", P), ("a", D)))
    assert not isinstance(route, Infeasible)
    assert route.end_time - route.start_time == 40


def test_onboard_ride_time_counts_from_picked_up_at():
    """A passenger on board rides from ``picked_up_at``; too late a drop-off is infeasible."""
    vehicle = Vehicle("v", 4, 0, start_time=100, seats=2)
    ok = Request("a", 9, 8, onboard_vehicle="v", picked_up_at=50, max_ride_time=90)
    problem = line_problem((ok,), vehicles=(vehicle,))
    route = schedule_route(problem, "v", refs(("a", D)))
    assert not isinstance(route, Infeasible)
    assert route.stops[0].service_start == 140
    late = Request("a", 9, 8, onboard_vehicle="v", picked_up_at=50, max_ride_time=80)
    result = schedule_route(line_problem((late,), vehicles=(vehicle,)), "v", refs(("a", D)))
    assert isinstance(result, Infeasible)
    assert result.reason == "ride_time"


def test_reasons():
    """Each kind of infeasibility is named: capacity, windows, ride, shift, duration, order."""
    big = Request("big", 1, 2, seats=3)
    chair = Request("chair", 1, 2, seats=0, wheelchairs=2)
    late = Request("late", 5, 6, pickup_window=TimeWindow(0, 20))
    ride = Request("ride", 1, 9, max_ride_time=50)
    far = Request("far", 1, 9)
    cases = [
        ((big,), None, refs(("big", P), ("big", D)), "capacity"),
        ((chair,), None, refs(("chair", P), ("chair", D)), "capacity"),
        ((late,), None, refs(("late", P), ("late", D)), "time_window"),
        ((ride,), None, refs(("ride", P), ("ride", D)), "ride_time"),
        ((far,), Vehicle("v", 0, 0, end_time=150), refs(("far", P), ("far", D)), "shift_end"),
        (
            (far,),
            Vehicle("v", 0, 0, max_duration=150),
            refs(("far", P), ("far", D)),
            "max_duration",
        ),
        ((far,), None, refs(("far", D), ("far", P)), "precedence"),
        ((far,), None, refs(("far", P)), "precedence"),
        ((far,), None, refs(("nope", P)), "unknown_stop"),
    ]
    for requests, vehicle, stops, reason in cases:
        problem = line_problem(requests, vehicles=(vehicle,) if vehicle else None)
        result = schedule_route(problem, "v", stops)
        assert isinstance(result, Infeasible), reason
        assert result.reason == reason, (reason, result)


def test_allowed_and_onboard_vehicle_enforced():
    """A request restricted to another vehicle, or on board another, is rejected."""
    vehicles = (Vehicle("v", 0, 0), Vehicle("w", 0, 0))
    only_w = Request("a", 1, 2, allowed_vehicles=("w",))
    on_w = Request("b", 1, 2, onboard_vehicle="w", picked_up_at=0)
    problem = line_problem((only_w, on_w), vehicles=vehicles)
    assert schedule_route(problem, "v", refs(("a", P), ("a", D))) == Infeasible(
        "vehicle", "a not allowed on v"
    )
    result = schedule_route(problem, "v", refs(("b", D)))
    assert isinstance(result, Infeasible)
    assert result.reason == "vehicle"


def test_scheduled_route_passes_the_checker():
    """What the scheduler accepts, the independent checker accepts too."""
    requests = (
        Request("a", 1, 6, max_ride_time=80, pickup_service=3, dropoff_service=3),
        Request("b", 2, 4, dropoff_window=TimeWindow(200, 260), max_ride_time=60),
        Request("c", 3, 7, pickup_window=TimeWindow(30, 400), max_ride_time=120),
    )
    problem = line_problem(requests, vehicles=(Vehicle("v", 0, 0, seats=3),))
    stops = refs(("a", P), ("b", P), ("c", P), ("b", D), ("a", D), ("c", D))
    route = schedule_route(problem, "v", stops)
    assert not isinstance(route, Infeasible), route
    assert check_plan(problem, Plan((route,), ())) == []
