"""Idle vehicles are sent to standby points of the expected demand, never at a promise's cost."""

from __future__ import annotations

from dispatcher.clock import to_datetime, to_timestamp
from dispatcher.core import DispatchCore
from dispatcher.geo import LatLon, haversine_m
from dispatcher.kpis import compute_kpis
from dispatcher.planning import build_problem, estimated_position, heading
from dispatcher.rebalancing import RebalancingConfig, StandbyPoint, assign, standby_points
from dispatcher.simulation import DEFAULT_DAY, scenario_rebalancing, simulate
from dispatcher.state import RideStatus
from producers.fleet import FleetSimulator, VehicleConfig
from producers.scenario import load_scenario
from schemas.dispatch import DriverPlanV1, RideOfferedV1
from schemas.envelope import Event, Place
from schemas.vehicle import BreakRequestedV1, PassengerBoardedV1
from solvers.insertion import insertion_solve
from tests.unit.dispatcher.fleet_kit import (
    BUEDELSDORF,
    FOCKBEK,
    JEVENSTEDT,
    RENDSBURG,
    T0,
    core,
    latlon,
    of_kind,
    request,
    shift,
    vehicle_event,
)

#: one standby point in Jevenstedt, about 8 km south of the depot in Rendsburg
STANDBY = StandbyPoint("sp-jevenstedt", JEVENSTEDT.lat, JEVENSTEDT.lon, 1.0)


def rebalancing_core(**kw: object) -> DispatchCore:
    config = RebalancingConfig(standby=(STANDBY,), idle_s=300, **kw)  # type: ignore[arg-type]
    return core(mode="immediate", rebalancing=config)


def _plan(outputs: list[Event]) -> DriverPlanV1:
    (plan,) = of_kind(outputs, DriverPlanV1)
    return plan


# -- standby points -------------------------------------------------------------------------


def test_standby_points_sit_where_the_demand_is():
    """The weighted p-median puts a point in the middle of a heavy cluster and one at a
    lone village; each point's weight is the share of the demand nearest to it."""
    town = [
        ("t1", LatLon(54.300, 9.660), 10.0),
        ("t2", LatLon(54.305, 9.665), 10.0),
        ("t3", LatLon(54.310, 9.670), 10.0),
    ]
    village = [("v1", LatLon(54.200, 9.600), 1.0)]
    points = standby_points([*village, *town], 2)
    assert [p.id for p in points] == ["t2", "v1"]  # heaviest first
    assert abs(points[0].weight - 30 / 31) < 1e-5
    assert abs(sum(p.weight for p in points) - 1.0) < 1e-5
    assert [p.id for p in standby_points([*village, *town], 1)] == ["t2"]


def test_the_rendsburg_points_follow_the_demand_model():
    """From the scenario: one point per vehicle, the town's point holds most demand."""
    sc = load_scenario("rendsburg")
    config = scenario_rebalancing(sc, 5)
    assert len(config.standby) == 5
    assert config.standby[0].weight > 0.4  # Rendsburg/Büdelsdorf
    assert abs(sum(p.weight for p in config.standby) - 1.0) < 1e-4
    assert haversine_m(config.standby[0].point, sc.fleet.depot) < 3000


def test_assign_fills_the_points_by_their_share_of_the_fleet():
    """Four vehicles, 3/4 of the demand in town: three wait in town, one in the village;
    a point out of reach gets nobody."""
    town = StandbyPoint("town", RENDSBURG.lat, RENDSBURG.lon, 0.75)
    village = StandbyPoint("village", JEVENSTEDT.lat, JEVENSTEDT.lon, 0.25)
    config = RebalancingConfig(standby=(town, village), max_distance_m=20_000)
    idle = {f"v{i}": latlon(BUEDELSDORF) for i in range(4)}
    got = assign(idle, [], [], 4, config)
    assert sorted(p.id for p in got.values()) == ["town", "town", "town", "village"]
    # two already sent to town, one waiting in town: one more for town, one for the village
    idle = {"a": latlon(FOCKBEK), "b": latlon(FOCKBEK)}
    got = assign(idle, ["town", "town"], [latlon(RENDSBURG)], 4, config)
    assert sorted(p.id for p in got.values()) == ["village"]
    near = RebalancingConfig(standby=(village,), max_distance_m=1000)
    assert assign({"a": latlon(BUEDELSDORF)}, [], [], 1, near) == {}


# -- the core -------------------------------------------------------------------------------


def test_an_idle_vehicle_is_sent_to_a_standby_point_after_the_idle_time():
    """Not before ``idle_s``; then a driver plan without stops names the standby point,
    and the core takes the vehicle to be on its way there."""
    c = rebalancing_core()
    c.handle(shift("v1"), T0)  # at the depot in Rendsburg
    assert c.next_due_at() == T0 + 300
    assert c.rebalance(T0 + 299) == []
    assert c.due(T0 + 300)
    plan = _plan(c.rebalance(T0 + 300))
    assert plan.stops == []
    assert plan.standby_location is not None
    assert plan.standby_location.stop_id == STANDBY.id
    assert (plan.standby_location.lat, plan.standby_location.lon) == (STANDBY.lat, STANDBY.lon)
    v = c.state.vehicles["v1"]
    assert heading(v, T0 + 400) == STANDBY.point
    half = c.travel.leg(latlon(RENDSBURG), STANDBY.point)[0] / 2
    way = haversine_m(latlon(RENDSBURG), STANDBY.point)
    assert abs(haversine_m(latlon(RENDSBURG), estimated_position(v, T0 + 300 + half, c.travel))
               - way / 2) < 200  # fmt: skip
    assert not c.due(T0 + 5000)  # sent once: it waits there
    assert c.rebalance(T0 + 5000) == []


def test_a_request_meanwhile_is_inserted_from_the_way_and_the_relocation_dropped():
    """A request while the vehicle drives to the standby point is offered with a pickup
    time from where the vehicle is by then (sooner than from the depot), the new plan
    has the stops and no standby point, and the ride is served within its promise."""
    c = rebalancing_core()
    c.handle(shift("v1"), T0)
    c.rebalance(T0 + 300)
    half = c.travel.leg(latlon(RENDSBURG), STANDBY.point)[0] / 2
    now = T0 + 300 + half
    out = c.handle(request("r1", origin=JEVENSTEDT, destination=RENDSBURG, at=now), now).outputs
    (offer,) = of_kind(out, RideOfferedV1)
    plan = _plan(out)
    assert [s.request_id for s in plan.stops] == ["r1", "r1"]
    assert plan.standby_location is None
    v = c.state.vehicles["v1"]
    assert v.standby is None
    from_depot = c.travel.leg(latlon(RENDSBURG), latlon(JEVENSTEDT))[0]
    eta = to_timestamp(offer.pickup_eta)
    assert eta < now + from_depot - 60  # on its way there: about half the way left
    # the problem the next insertion sees starts the vehicle where it is on the way
    job = build_problem(c.state, [], now, c.travel, c.config.planning)
    start = job.points[job.problem.vehicles[0].start]
    depot = latlon(RENDSBURG)
    assert abs(haversine_m(depot, start) - haversine_m(depot, STANDBY.point) / 2) < 200
    # boards inside the promised window
    start_w, end_w = to_timestamp(offer.pickup_window_start), to_timestamp(offer.pickup_window_end)
    assert start_w <= eta <= end_w
    board = max(eta, start_w)
    c.handle(vehicle_event(PassengerBoardedV1, board, request_id="r1"), board)
    assert c.state.rides["r1"].status is RideStatus.ONBOARD


def test_no_relocation_with_work_on_board_or_stops():
    """A vehicle with a stop to serve or a passenger on board is never relocated."""
    c = rebalancing_core()
    c.handle(shift("v1"), T0)
    c.handle(request("r1", origin=BUEDELSDORF, destination=FOCKBEK, at=T0 + 10), T0 + 10)
    v = c.state.vehicles["v1"]
    assert v.stops
    assert c.rebalance(T0 + 900) == []
    assert v.standby is None
    eta = c.state.rides["r1"].pickup_eta
    assert eta is not None
    c.handle(vehicle_event(PassengerBoardedV1, eta, request_id="r1"), eta)
    assert v.onboard == ["r1"]
    assert c.rebalance(eta + 900) == []
    assert v.standby is None


def test_no_relocation_near_the_shift_end():
    """An hour before the shift ends a vehicle stays: it must be back at the depot."""
    c = rebalancing_core()
    c.handle(shift("v1", hours=1), T0)
    assert c.next_due_at() is None
    assert c.rebalance(T0 + 600) == []


def test_no_relocation_when_the_break_is_due_and_a_recall_for_a_break():
    """A break window opening within ``break_margin_s`` keeps the vehicle where it is;
    a break planned while it waits at a standby point calls it back to the depot."""
    c = rebalancing_core()
    soon = shift("v1", break_window=(T0 + 1200, T0 + 7200))
    c.handle(soon, T0)
    assert c.rebalance(T0 + 600) == []
    assert c.state.vehicles["v1"].standby is None

    c = rebalancing_core()
    c.handle(shift("v1"), T0)
    c.rebalance(T0 + 300)
    v = c.state.vehicles["v1"]
    assert v.standby is not None
    now = T0 + 2000
    brk = BreakRequestedV1(
        occurred_at=to_datetime(now),
        source="t",
        vehicle_id="v1",
        zone="rendsburg",
        duration_s=1200,
        latest_start=to_datetime(now + 3600),
    )
    handled = c.handle(brk, now)
    assert handled.dead_letter is None
    plan = _plan(handled.outputs)
    assert plan.break_start is not None
    assert plan.standby_location is None  # off to the depot for the break at once
    assert v.standby is None
    assert heading(v, now) == v.depot


def test_a_break_far_ahead_lets_the_vehicle_wait_and_recalls_it_in_time():
    """A break planned hours ahead: the vehicle waits at the standby point and is called
    back (a new plan without the standby point) in time to reach the depot."""
    c = rebalancing_core()
    late = shift("v1", break_window=(T0 + 3 * 3600, T0 + 5 * 3600))
    c.handle(late, T0)
    v = c.state.vehicles["v1"]
    v.break_planned = (T0 + 3 * 3600, T0 + 3 * 3600 + 1800)  # as an insertion plans it
    assert _plan(c.rebalance(T0 + 300)).standby_location is not None
    way = c.travel.leg(STANDBY.point, v.depot)[0]
    recall = c.next_due_at()
    assert recall is not None
    assert T0 + 3 * 3600 - way - 600 <= recall <= T0 + 3 * 3600 - way
    assert c.rebalance(recall - 1) == []
    plan = _plan(c.rebalance(recall))
    assert plan.standby_location is None and plan.break_start is not None
    assert heading(v, recall) == v.depot


def test_rebalancing_off_without_standby_points():
    """No standby points: nothing is ever due and idle vehicles stay."""
    c = core(mode="immediate")
    c.handle(shift("v1"), T0)
    assert c.next_due_at() is None
    assert c.rebalance(T0 + 3600) == []


def test_the_standby_survives_the_state_round_trip():
    """The standby point is part of the persisted vehicle state."""
    c = rebalancing_core()
    c.handle(shift("v1"), T0)
    c.rebalance(T0 + 300)
    v = c.state.vehicles["v1"]
    again = type(v).from_dict(v.to_dict())
    assert again.standby == STANDBY.point and again.standby_id == STANDBY.id


# -- the vehicle simulator and the KPIs -----------------------------------------------------


def test_the_simulated_vehicle_drives_to_the_standby_point_and_back_for_the_shift_end():
    """A plan without stops but with a standby point: the vehicle drives there, waits,
    and is back at the depot by its shift end; both ways are recorded as empty km."""
    depot = latlon(RENDSBURG)
    cfg = VehicleConfig("v1", depot, T0, T0 + 3 * 3600)
    c = DispatchCore(core().config, core().travel)
    fleet = FleetSimulator([cfg], c.travel)
    fleet.advance(T0)
    plan = DriverPlanV1(
        occurred_at=to_datetime(T0 + 60),
        source="t",
        vehicle_id="v1",
        zone="rendsburg",
        plan_version=1,
        stops=[],
        standby_location=Place(lat=STANDBY.lat, lon=STANDBY.lon, stop_id=STANDBY.id),
    )
    fleet.on_plan(plan, T0 + 60)
    events = fleet.advance(T0 + 4 * 3600)
    there = c.travel.leg(depot, STANDBY.point)[1] + c.travel.leg(STANDBY.point, depot)[1]
    assert abs(sum(s.metres for s in fleet.segments) - there) < 1
    assert all(not s.onboard for s in fleet.segments)
    assert fleet.segments[0].b == STANDBY.point
    ended = [t for t, e in events if e.type == "shift.ended"]
    assert ended and ended[0] <= T0 + 3 * 3600 + 60


def test_a_simulated_day_counts_the_relocation_km_and_serves_the_request():
    """Two quiet hours, one request: with rebalancing the vehicle drives to the standby
    point and back (vehicle km and empty km), serves the request within its promise;
    without it the same day has fewer km."""
    sc = load_scenario("rendsburg")
    start = sc.local_time(DEFAULT_DAY, 8.0)
    at = start + 1800
    ride = request("q1", origin=JEVENSTEDT, destination=BUEDELSDORF, at=at)
    ride = ride.model_copy(update={"occurred_at": to_datetime(at)})
    demand: list[tuple[float, Event]] = [(at, ride)]
    fleet = [VehicleConfig("v1", latlon(RENDSBURG), start, start + 2 * 3600)]
    kw: dict[str, object] = {
        "hours": 2.0,
        "start_hour": 8.0,
        "fleet": fleet,
        "demand": demand,
        "policy": "immediate",
        "reopt_every_s": 0.0,
        "solver": insertion_solve,
        "no_show_prob": 0.0,
    }
    standby = RebalancingConfig(standby=(StandbyPoint("sp", FOCKBEK.lat, FOCKBEK.lon, 1.0),))
    moved = simulate(sc, rebalancing=standby, **kw)  # type: ignore[arg-type]
    stayed = simulate(sc, rebalancing=RebalancingConfig(), **kw)  # type: ignore[arg-type]
    plans = [e for _, e in moved.outputs if isinstance(e, DriverPlanV1)]
    assert any(p.standby_location is not None for p in plans)
    assert not any(
        p.standby_location is not None for _, p in stayed.outputs if isinstance(p, DriverPlanV1)
    )
    for result in (moved, stayed):
        k = result.kpis
        assert k["served"] == 1
        assert k["promise_broken"] == 0 and k["ride_time_exceeded"] == 0
    to_fockbek = haversine_m(latlon(RENDSBURG), latlon(FOCKBEK)) / 1000
    assert moved.kpis["vehicle_km"] > stayed.kpis["vehicle_km"] + to_fockbek
    assert moved.kpis["empty_km"] > stayed.kpis["empty_km"] + to_fockbek
    assert compute_kpis(moved.history)["vehicle_km"] == moved.kpis["vehicle_km"]
