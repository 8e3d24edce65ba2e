"""A driver asks for a break (``break.requested@1``): planned as soon as promises allow."""

from __future__ import annotations

from dispatcher.clock import to_datetime, to_timestamp
from dispatcher.core import DispatchCore
from dispatcher.geo import LatLon
from dispatcher.planning import break_id, build_problem, on_break
from dispatcher.state import RideStatus
from schemas.dispatch import DriverPlanV1, RideOfferedV1
from schemas.envelope import Event
from schemas.vehicle import BreakRequestedV1, PassengerBoardedV1
from solvers.insertion import InsertionState, insertion_solve
from solvers.model import SolveLimits, SolveStats
from tests.unit.dispatcher.fleet_kit import (
    BUEDELSDORF,
    FOCKBEK,
    JEVENSTEDT,
    OSTERROENFELD,
    RENDSBURG,
    T0,
    core,
    of_kind,
    request,
    shift,
)


def brk(at: float, duration_s: int = 1800, latest_in_s: float = 3600, vid: str = "v1") -> Event:
    return BreakRequestedV1(
        occurred_at=to_datetime(at),
        source="tablet:t",
        vehicle_id=vid,
        zone="rendsburg",
        duration_s=duration_s,
        latest_start=to_datetime(at + latest_in_s),
    )


def _planned_break(c: DispatchCore, out: list[Event]) -> tuple[float, float]:
    (plan,) = of_kind(out, DriverPlanV1)
    assert plan.break_start is not None and plan.break_end is not None
    assert plan.break_location is not None
    b0, b1 = to_timestamp(plan.break_start), to_timestamp(plan.break_end)
    assert c.state.vehicles[plan.vehicle_id].break_planned == (b0, b1)
    return b0, b1


def _promises_kept(c: DispatchCore, b0: float, b1: float) -> None:
    for ride in c.state.rides.values():
        if ride.status not in (RideStatus.OFFERED, RideStatus.ONBOARD):
            continue
        assert ride.dropoff_eta is not None and ride.promised_dropoff is not None
        assert ride.dropoff_eta <= ride.promised_dropoff + 1, ride.request_id
        if ride.status is RideStatus.OFFERED:
            assert ride.promised_pickup is not None and ride.pickup_eta is not None
            start, end = ride.promised_pickup
            assert start - 1 <= ride.pickup_eta <= end + 1, ride.request_id
            assert ride.dropoff_eta <= b0 or ride.pickup_eta >= b1  # nobody on board
        else:
            assert ride.dropoff_eta <= b0


def test_break_of_an_empty_vehicle_starts_at_once_at_the_depot():
    """No passengers: the break starts as soon as the vehicle reaches the depot."""
    c = core(mode="immediate")
    c.handle(shift("v1", position=FOCKBEK), T0)
    handled = c.handle(brk(T0 + 60, duration_s=1200), T0 + 60)
    assert handled.dead_letter is None
    b0, b1 = _planned_break(c, handled.outputs)
    to_depot, _ = c.travel.leg(LatLon(FOCKBEK.lat, FOCKBEK.lon), c.state.vehicles["v1"].depot)
    assert T0 + 60 <= b0 <= T0 + 60 + to_depot + 60
    assert b1 - b0 == 1200


def test_break_waits_for_the_passenger_on_board_and_keeps_every_promise():
    """On board and confirmed passengers keep their windows; the break comes first it can."""
    c = core(mode="immediate")
    c.handle(shift("v1", position=FOCKBEK), T0)
    c.handle(shift("v2", position=OSTERROENFELD), T0)
    out = c.handle(request("r1", origin=FOCKBEK, destination=JEVENSTEDT, at=T0), T0).outputs
    (offer,) = of_kind(out, RideOfferedV1)
    vid = offer.vehicle_id
    board = PassengerBoardedV1(
        occurred_at=to_datetime(T0 + 120),
        source="t",
        vehicle_id=vid,
        zone="rendsburg",
        request_id="r1",
    )
    assert c.handle(board, T0 + 120).dead_letter is None
    c.handle(request("r2", origin=BUEDELSDORF, destination=RENDSBURG, at=T0 + 130), T0 + 130)
    promised = {rid: r.promised_pickup for rid, r in c.state.rides.items()}
    onboard = c.state.rides["r1"]
    assert onboard.status is RideStatus.ONBOARD and onboard.dropoff_eta is not None

    handled = c.handle(brk(T0 + 200, duration_s=1800, latest_in_s=3 * 3600, vid=vid), T0 + 200)
    assert handled.dead_letter is None, handled.dead_letter
    b0, b1 = _planned_break(c, handled.outputs)
    assert b0 >= onboard.dropoff_eta  # not with a passenger on board
    # as soon as they allow: drop-off, then straight to the depot (one bisection step)
    back, _ = c.travel.leg(onboard.destination, c.state.vehicles[vid].depot)
    assert b0 <= onboard.dropoff_eta + 30 + back + 90
    _promises_kept(c, b0, b1)
    assert {rid: r.promised_pickup for rid, r in c.state.rides.items()} == promised
    # the next problem holds the break where it was planned, and a solver keeps it
    job = build_problem(c.state, [], T0 + 300, c.travel, c.config.planning)
    plan = insertion_solve(job.problem, SolveLimits(0.2))
    assert f"break:{vid}" in plan.served


def test_break_that_cannot_start_in_time_is_dead_lettered_and_changes_nothing():
    """A passenger on board far away: no break can start within a minute."""
    c = core(mode="immediate")
    c.handle(shift("v1", position=FOCKBEK), T0)
    c.handle(request("r1", origin=FOCKBEK, destination=JEVENSTEDT), T0)
    board = PassengerBoardedV1(
        occurred_at=to_datetime(T0 + 60),
        source="t",
        vehicle_id="v1",
        zone="rendsburg",
        request_id="r1",
    )
    c.handle(board, T0 + 60)
    version = c.state.vehicles["v1"].plan_version
    handled = c.handle(brk(T0 + 90, latest_in_s=60), T0 + 90)
    assert handled.dead_letter is not None and "without breaking a promise" in handled.dead_letter
    assert handled.outputs == []
    v = c.state.vehicles["v1"]
    assert (v.break_window, v.break_s, v.break_planned) == (None, 0, None)
    assert v.plan_version == version


def test_break_requests_of_unknown_off_shift_or_resting_vehicles_are_refused():
    """Unknown vehicle, a break already running, a vehicle off shift: dead letters."""
    c = core(mode="immediate")
    assert c.handle(brk(T0, vid="ghost"), T0).dead_letter == "unknown vehicle 'ghost'"
    c.handle(shift("v1"), T0)  # at the depot
    b0, b1 = _planned_break(c, c.handle(brk(T0, duration_s=900), T0).outputs)
    assert on_break(c.state.vehicles["v1"], b0 + 1)
    again = c.handle(brk(b0 + 60), b0 + 60)
    assert again.dead_letter is not None and "on a break already" in again.dead_letter
    # after the break, a new one may be asked for
    assert c.handle(brk(b1 + 10, duration_s=600), b1 + 10).dead_letter is None
    late = shift("v2", at=T0 - 8 * 3600)  # its shift is over
    c.handle(late, T0 - 8 * 3600)
    assert "not on shift" in (c.handle(brk(T0, vid="v2"), T0).dead_letter or "")


def test_batch_mode_plans_the_break_at_once_and_new_rides_around_it():
    """In batch mode too; a later batch does not put a passenger in the break."""
    c = core()
    c.handle(shift("v1"), T0)
    b0, b1 = _planned_break(c, c.handle(brk(T0 + 10, duration_s=1800), T0 + 10).outputs)
    c.handle(request("r1", origin=FOCKBEK, destination=BUEDELSDORF, at=T0 + 20), T0 + 20)
    job = c.prepare(T0 + 30)
    assert job is not None
    out = c.complete(job, insertion_solve(job.problem, SolveLimits(0.2)), T0 + 30)
    assert c.state.vehicles["v1"].break_planned == (b0, b1)
    ride = c.state.rides["r1"]
    if ride.status is RideStatus.OFFERED:
        assert ride.pickup_eta is not None and ride.pickup_eta >= b1
        (plan,) = of_kind(out, DriverPlanV1)
        assert plan.break_start == to_datetime(b0)


def test_a_plan_without_the_pending_break_unplans_it():
    """A new plan that holds no place for the pending break (it is optional, promises
    come first) leaves it unplanned, to be planned again: a stale break time would
    send the driver to the depot while the route goes on without the break."""
    c = core(mode="immediate")
    c.handle(shift("v1", position=FOCKBEK), T0)
    c.handle(brk(T0 + 60, duration_s=1200, latest_in_s=7200), T0 + 60)
    assert c.state.vehicles["v1"].break_planned is not None
    now = T0 + 120
    job = build_problem(c.state, [], now, c.travel, c.config.planning)
    assert any(r.id == break_id("v1") for r in job.problem.requests)
    empty = InsertionState(job.problem)  # every route empty: the break left out
    out = c.complete(job, empty.plan(SolveStats("test", 0, 0.0)), now)
    assert c.state.vehicles["v1"].break_planned is None
    (plan,) = of_kind(out, DriverPlanV1)
    assert plan.break_start is None
    again = build_problem(c.state, [], now + 60, c.travel, c.config.planning)
    assert any(r.id == break_id("v1") for r in again.problem.requests)
