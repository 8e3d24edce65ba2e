"""The core's handling of input events, without a solver."""

from __future__ import annotations

from datetime import timedelta

from dispatcher.clock import to_datetime
from dispatcher.state import RideStatus
from schemas.dispatch import RideRejectedV1
from schemas.envelope import Place
from schemas.passenger import RideCancelledV1, TimeType
from schemas.vehicle import NoShowV1, PassengerBoardedV1, PositionUpdatedV1
from tests.unit.dispatcher.fleet_kit import T0, core, request, shift


def test_request_is_queued_for_the_next_batch():
    """A valid request becomes a pending ride and makes a batch due after the window."""
    c = core(batch_window_s=2.0)
    c.handle(shift("v1"), T0)
    handled = c.handle(request("r1"), T0)
    assert handled.outputs == [] and handled.dead_letter is None
    assert c.state.rides["r1"].status is RideStatus.PENDING
    assert not c.due(T0 + 1.9)
    assert c.due(T0 + 2.0)


def test_outside_area_and_capacity_are_rejected_at_once():
    """Requests the fleet can never serve are rejected with a reason code, not batched."""
    c = core()
    c.handle(shift("v1", seats=4, wheelchairs=0), T0)
    far = request("far", origin=Place(lat=53.55, lon=9.99))  # Hamburg
    big = request("big", seats=6)
    wheel = request("wheel", wheelchairs=1)
    reasons = {}
    for r in (far, big, wheel):
        (out,) = c.handle(r, T0).outputs
        assert isinstance(out, RideRejectedV1)
        reasons[r.request_id] = out.reason.value
    assert reasons == {"far": "outside_area", "big": "capacity", "wheel": "capacity"}
    assert len(c.batch) == 0


def test_times_in_past_or_far_future_are_invalid():
    """A pre-booking in the past or beyond the horizon is rejected as invalid."""
    c = core(max_prebook_s=86_400)
    c.handle(shift("v1"), T0)
    past = request("past", requested_time=to_datetime(T0) - timedelta(hours=1))
    future = request("future", requested_time=to_datetime(T0) + timedelta(days=3))
    for r in (past, future):
        (out,) = c.handle(r, T0).outputs
        assert out.reason.value == "invalid"


def test_arrival_booking_sets_latest_dropoff():
    """An arrival-based booking plans back from the arrival time."""
    c = core()
    c.handle(shift("v1"), T0)
    arrive = to_datetime(T0) + timedelta(hours=2)
    c.handle(request("a", time_type=TimeType.ARRIVAL, requested_time=arrive), T0)
    ride = c.state.rides["a"]
    assert ride.latest_dropoff == T0 + 7200
    assert ride.latest_pickup < T0 + 7200 - ride.direct_s + 1
    assert ride.earliest_pickup >= T0


def test_duplicate_request_id_is_dead_lettered_but_redelivery_ignored():
    """The same event again is ignored; another event with a used request id is refused."""
    c = core()
    c.handle(shift("v1"), T0)
    first = request("r1")
    c.handle(first, T0)
    assert c.handle(first, T0 + 1).dead_letter is None
    other = request("r1")
    assert "already in use" in (c.handle(other, T0 + 1).dead_letter or "")


def test_unknown_vehicle_and_request_are_dead_letters():
    """Events about vehicles or requests the dispatcher does not know are refused."""
    c = core()
    pos = PositionUpdatedV1(
        occurred_at=to_datetime(T0),
        source="t",
        vehicle_id="ghost",
        zone="rendsburg",
        position=Place(lat=54.3, lon=9.6),
    )
    assert "unknown vehicle" in (c.handle(pos, T0).dead_letter or "")
    c.handle(shift("v1"), T0)
    boarded = PassengerBoardedV1(
        occurred_at=to_datetime(T0),
        source="t",
        vehicle_id="v1",
        zone="rendsburg",
        request_id="nobody",
    )
    assert "not planned" in (c.handle(boarded, T0).dead_letter or "")
    cancel = RideCancelledV1(
        occurred_at=to_datetime(T0), source="t", request_id="nobody", zone="rendsburg"
    )
    assert "unknown request" in (c.handle(cancel, T0).dead_letter or "")


def test_cancel_pending_request_leaves_batch():
    """A pending request that is cancelled is not planned."""
    c = core()
    c.handle(shift("v1"), T0)
    c.handle(request("r1"), T0)
    cancel = RideCancelledV1(
        occurred_at=to_datetime(T0), source="t", request_id="r1", zone="rendsburg"
    )
    assert c.handle(cancel, T0 + 1).outputs == []
    assert c.state.rides["r1"].status is RideStatus.CANCELLED
    assert not c.due(T0 + 100)


def test_no_show_for_unassigned_ride_is_refused():
    """A no-show for a ride that is not on the vehicle is a dead letter."""
    c = core()
    c.handle(shift("v1"), T0)
    c.handle(request("r1"), T0)
    no_show = NoShowV1(
        occurred_at=to_datetime(T0),
        source="t",
        vehicle_id="v1",
        zone="rendsburg",
        request_id="r1",
    )
    assert c.handle(no_show, T0).dead_letter


def test_a_vehicle_is_never_planned_before_now():
    """The problem's epoch is now rounded down; a free vehicle starts at now rounded up,
    not at the epoch (a second early on every re-plan adds up to late boardings)."""
    c = core(batch_window_s=1.0)
    c.handle(shift("v1"), T0)
    c.handle(request("r1"), T0 + 100.9)
    job = c.prepare(T0 + 101.9)
    assert job is not None and job.epoch == T0 + 101
    (vehicle,) = job.problem.vehicles
    assert vehicle.start_time == 1


def test_build_problem_shapes():
    """The batch problem has one vehicle per shift and the new requests with penalties."""
    c = core(batch_window_s=1.0)
    c.handle(shift("v1"), T0)
    c.handle(shift("v2", seats=8), T0)
    c.handle(request("r1"), T0)
    c.handle(request("r2", seats=2), T0 + 0.5)
    job = c.prepare(T0 + 1.0)
    assert job is not None
    p = job.problem
    assert [v.id for v in p.vehicles] == ["v1", "v2"]
    assert [r.id for r in p.requests] == ["r1", "r2"]
    r1 = p.request("r1")
    assert r1.penalty is not None and r1.allowed_vehicles == ("v1", "v2")
    assert r1.pickup_window.earliest == 0
    assert r1.pickup_window.latest == 1800 - 1
    assert r1.max_ride_time is not None and r1.max_ride_time > p.duration[r1.pickup][r1.dropoff]
    assert job.new_ids == ("r1", "r2")
    assert c.prepare(T0 + 5) is None
