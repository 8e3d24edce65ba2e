"""Operations the core handles: modes, no-shows, breakdowns, stops, hours, breaks."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from dispatcher.clock import VirtualClock, to_datetime, to_timestamp
from dispatcher.core import DispatchCore, VirtualStop
from dispatcher.planning import PlanningConfig, break_id, build_problem, plan_problems
from dispatcher.state import RideStatus
from schemas.dispatch import DriverPlanV1, RideOfferedV1, RideRejectedV1
from schemas.envelope import Event, Place
from schemas.vehicle import ArrivedAtStopV1, NoShowV1, PassengerBoardedV1, ShiftEndedV1
from solvers.check import check_plan
from solvers.insertion import insertion_solve
from solvers.model import SolveLimits
from solvers.ortools_pdp import ortools_solve
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
    vehicle_event,
)


def _immediate(**kw: object) -> DispatchCore:
    return core(mode="immediate", **kw)


def test_immediate_mode_offers_inside_handle():
    """In immediate mode a request is answered by insertion at once, with a driver plan."""
    clock = VirtualClock(T0)
    c = _immediate()
    c.handle(shift("v1"), clock.now())
    out = c.handle(request("r1"), clock.now()).outputs
    (offer,) = of_kind(out, RideOfferedV1)
    (plan,) = of_kind(out, DriverPlanV1)
    assert offer.vehicle_id == "v1" and c.state.rides["r1"].status is RideStatus.OFFERED
    assert [s.request_id for s in plan.stops] == ["r1", "r1"]
    assert out.index(offer) < out.index(plan)  # the passenger hears first
    assert not c.due(clock.now() + 3600)  # no batch, no re-optimisation configured


def test_immediate_mode_rejects_what_cannot_be_inserted():
    """A request no vehicle can take in time is rejected with no_vehicle."""
    c = _immediate()
    c.handle(shift("v1", seats=1, wheelchairs=0), T0)
    c.handle(request("r1", origin=FOCKBEK, destination=JEVENSTEDT), T0)
    out = c.handle(request("r2", origin=JEVENSTEDT, destination=FOCKBEK), T0).outputs
    offers, rejections = of_kind(out, RideOfferedV1), of_kind(out, RideRejectedV1)
    assert len(offers) + len(rejections) == 1


def test_reoptimisation_is_due_only_after_changes():
    """The re-optimisation timer fires every reopt_every_s, and only if routes changed."""
    c = _immediate(reopt_every_s=600.0)
    c.handle(shift("v1"), T0)
    assert not c.due(T0) and c.next_due_at() is None
    c.handle(request("r1"), T0 + 10)
    assert c.next_due_at() == T0 + 610  # reopt_every_s after the first change
    assert not c.due(T0 + 609)
    job = c.prepare(T0 + 610)
    assert job is not None and job.kind == "reopt" and job.new_ids == ()
    assert not c.due(T0 + 1200)  # nothing changed since


def test_reoptimised_plan_keeps_promises():
    """A re-optimisation plan passes the plan checker and keeps every promised window."""
    c = _immediate(reopt_every_s=60.0)
    c.handle(shift("v1"), T0)
    c.handle(shift("v2"), T0)
    for i, (a, b) in enumerate([(FOCKBEK, BUEDELSDORF), (OSTERROENFELD, RENDSBURG),
                                (BUEDELSDORF, FOCKBEK), (RENDSBURG, OSTERROENFELD)]):  # fmt: skip
        c.handle(request(f"r{i}", origin=a, destination=b, at=T0 + i), T0 + i)
    promised = {rid: r.promised_pickup for rid, r in c.state.rides.items()}
    job = c.prepare(T0 + 60)
    assert job is not None
    for r in job.problem.requests:
        assert r.penalty is None  # every offered ride is a promise now
    plan = insertion_solve(job.problem, SolveLimits(0.5))
    assert check_plan(job.problem, plan) == []
    c.complete(job, plan, T0 + 60)
    for rid, window in promised.items():
        ride = c.state.rides[rid]
        assert window is not None and ride.pickup_eta is not None
        assert window[0] - 1 <= ride.pickup_eta <= window[1] + 1


def test_stale_reoptimisation_is_not_taken():
    """A re-optimised plan is dropped when a request was inserted while it was solved."""
    c = _immediate(reopt_every_s=300.0)
    c.handle(shift("v1"), T0)
    c.handle(request("r1"), T0)
    job = c.prepare(T0 + 300)
    assert job is not None
    plan = insertion_solve(job.problem, SolveLimits(0.2))
    c.handle(request("r2", origin=OSTERROENFELD, destination=RENDSBURG), T0 + 301)
    assert c.state.rides["r2"].status is RideStatus.OFFERED
    c.complete(job, plan, T0 + 302)
    refs = c.state.vehicles["v1"].stop_refs()
    assert ("r2", "pickup") in refs and ("r2", "dropoff") in refs


def test_a_plan_breaking_the_checker_is_refused():
    """complete() keeps the routes when the plan checker finds a broken rule."""
    c = core(batch_window_s=1.0)
    c.handle(shift("v1"), T0)
    c.handle(request("r1"), T0)
    job = c.prepare(T0 + 1)
    assert job is not None
    plan = insertion_solve(job.problem, SolveLimits(0.2))
    route = plan.routes[0]
    bad_stops = tuple(reversed(route.stops))  # drop-off before pickup
    bad = type(plan)((type(route)(route.vehicle_id, bad_stops, route.start_time,
                                  route.end_time, route.distance),), ())  # fmt: skip
    assert plan_problems(job, bad)
    out = c.complete(job, bad, T0 + 1)
    assert of_kind(out, RideRejectedV1) and c.state.vehicles["v1"].stops == []


def _arrive_at_pickup(c: DispatchCore, rid: str, at: float) -> None:
    ride = c.state.rides[rid]
    c.handle(
        vehicle_event(
            ArrivedAtStopV1, at, vehicle_id="v1", request_ids=[rid],
            position=Place(lat=ride.origin.lat, lon=ride.origin.lon),
        ),
        at,
    )  # fmt: skip


def test_no_show_needs_the_wait_at_the_stop():
    """A no-show before arrival or before no_show_wait_s is refused with the reason."""
    c = _immediate(no_show_wait_s=300.0)
    c.handle(shift("v1"), T0)
    c.handle(request("r1"), T0)
    ride = c.state.rides["r1"]
    assert ride.promised_pickup is not None
    arrive = max(T0 + 600, ride.promised_pickup[0])
    early = vehicle_event(NoShowV1, arrive, vehicle_id="v1", request_id="r1")
    assert "before the vehicle arrived" in (c.handle(early, arrive).dead_letter or "")
    _arrive_at_pickup(c, "r1", arrive)
    reason = c.handle(early, arrive + 120).dead_letter or ""
    assert "after 120 s" in reason and "must wait 300 s" in reason
    assert c.state.rides["r1"].status is RideStatus.OFFERED
    late = vehicle_event(NoShowV1, arrive + 300, vehicle_id="v1", request_id="r1")
    assert c.handle(late, arrive + 300).dead_letter is None
    assert c.state.rides["r1"].status is RideStatus.NO_SHOW


def test_arrival_at_a_shared_stop_survives_a_new_plan():
    """Two pickups at one stop: the vehicle arrived at both. A ride inserted while the
    driver waits rebuilds the route; the second passenger's arrival must stay, or the
    driver's no-show after the wait is refused and the ride blocks the route for good."""
    c = _immediate(no_show_wait_s=300.0)
    c.handle(shift("v1"), T0)
    c.handle(request("r1"), T0)
    c.handle(request("r2"), T0)
    assert c.state.rides["r2"].vehicle_id == "v1"
    promised = c.state.rides["r2"].promised_pickup
    assert promised is not None
    arrive = max(T0 + 600, promised[0])
    ride = c.state.rides["r1"]
    c.handle(
        vehicle_event(
            ArrivedAtStopV1, arrive, vehicle_id="v1", request_ids=["r1", "r2"],
            position=Place(lat=ride.origin.lat, lon=ride.origin.lon),
        ),
        arrive,
    )  # fmt: skip
    out = c.handle(request("r3", RENDSBURG, OSTERROENFELD, at=arrive + 10), arrive + 10).outputs
    assert of_kind(out, RideOfferedV1)  # a new plan for v1
    first, second = (s.request_id for s in c.state.vehicles["v1"].stops[:2])
    assert {first, second} == {"r1", "r2"}
    boarded = vehicle_event(PassengerBoardedV1, arrive + 30, vehicle_id="v1", request_id=first)
    assert c.handle(boarded, arrive + 30).dead_letter is None
    head = c.state.vehicles["v1"].stops[0]
    assert head.ref == (second, "pickup") and head.arrived and head.arrived_at == arrive
    no_show = vehicle_event(NoShowV1, arrive + 300, vehicle_id="v1", request_id=second)
    assert c.handle(no_show, arrive + 300).dead_letter is None
    assert c.state.rides[second].status is RideStatus.NO_SHOW


def test_a_route_that_cannot_be_kept_does_not_block_the_other_vehicles():
    """A vehicle that fell silent still holds a ride it can no longer serve in time: its
    route as it stands has no schedule. New rides go to the other vehicles of its
    insertion group instead of being rejected while it stays that way."""
    c = _immediate()
    c.handle(shift("v1"), T0)
    c.handle(request("r1"), T0)
    assert c.state.rides["r1"].vehicle_id == "v1"
    c.handle(shift("v2", at=T0 + 60, position=BUEDELSDORF), T0 + 60)
    later = T0 + 2 * 3600  # v1 never reported again: r1's promised window is long past
    out = c.handle(request("r2", BUEDELSDORF, RENDSBURG, at=later), later).outputs
    (offer,) = of_kind(out, RideOfferedV1)
    assert offer.vehicle_id == "v2"
    assert [s.request_id for s in c.state.vehicles["v1"].stops] == ["r1", "r1"]  # not lost


def _batch_with_r1_on_v1(batch_window_s: float) -> DispatchCore:
    """A batch-mode core whose first batch put r1 (requested at T0) on v1."""
    c = core(batch_window_s=batch_window_s)
    c.handle(shift("v1"), T0)
    c.handle(request("r1"), T0)
    job = c.prepare(T0 + batch_window_s)
    assert job is not None
    c.complete(job, insertion_solve(job.problem, SolveLimits(0.2)), T0 + batch_window_s)
    assert c.state.rides["r1"].vehicle_id == "v1"
    return c


def test_batch_planning_leaves_out_a_route_that_cannot_be_kept():
    """Batch mode: the same silent vehicle; the batch is planned on the others and its
    ride stays where it is (a plan without it would be refused as breaking a promise)."""
    c = _batch_with_r1_on_v1(batch_window_s=1.0)
    c.handle(shift("v2", at=T0 + 60, position=BUEDELSDORF), T0 + 60)
    later = T0 + 2 * 3600
    c.handle(request("r2", BUEDELSDORF, RENDSBURG, at=later), later)
    job = c.prepare(later + 1)
    assert job is not None and [v.id for v in job.problem.vehicles] == ["v2"]
    out = c.complete(job, insertion_solve(job.problem, SolveLimits(0.2)), later + 1)
    (offer,) = of_kind(out, RideOfferedV1)
    assert offer.vehicle_id == "v2"
    assert [s.request_id for s in c.state.vehicles["v1"].stops] == ["r1", "r1"]


def test_breakdown_moves_passengers_and_tells_them():
    """On a breakdown, unboarded rides get a new offer on another vehicle."""
    c = _immediate()
    c.handle(shift("v1"), T0)
    c.handle(request("r1"), T0)
    assert c.state.rides["r1"].vehicle_id == "v1"
    c.handle(shift("v2"), T0 + 60)
    ended = vehicle_event(ShiftEndedV1, T0 + 120, vehicle_id="v1", reason="breakdown")
    out = c.handle(ended, T0 + 120).outputs
    (offer,) = of_kind(out, RideOfferedV1)
    assert offer.vehicle_id == "v2" and c.state.rides["r1"].replanned_from == "v1"
    plans = {p.vehicle_id: p for p in of_kind(out, DriverPlanV1)}
    assert plans["v1"].stops == [] and [s.request_id for s in plans["v2"].stops] == ["r1", "r1"]


def test_breakdown_without_spare_vehicle_rejects_with_reason():
    """With no vehicle left, a moved ride is rejected and keeps a recorded reason."""
    c = _immediate()
    c.handle(shift("v1"), T0)
    c.handle(request("r1"), T0)
    ended = vehicle_event(ShiftEndedV1, T0 + 120, vehicle_id="v1", reason="breakdown")
    (rejection,) = of_kind(c.handle(ended, T0 + 120).outputs, RideRejectedV1)
    assert rejection.reason.value == "no_vehicle" and "v1" in rejection.message
    ride = c.state.rides["r1"]
    assert ride.status is RideStatus.REJECTED and "v1" in (ride.outcome_reason or "")


def test_breakdown_in_batch_mode_replans_in_next_batch():
    """In batch mode, a moved ride goes back into the next batch as pending."""
    c = _batch_with_r1_on_v1(batch_window_s=2.0)
    ended = vehicle_event(ShiftEndedV1, T0 + 60, vehicle_id="v1", reason="breakdown")
    c.handle(ended, T0 + 60)
    assert c.state.rides["r1"].status is RideStatus.PENDING and c.batch.pending == ("r1",)


STOPS = (
    VirtualStop("s-fockbek", FOCKBEK.lat, FOCKBEK.lon, "Fockbek Mitte"),
    VirtualStop("s-buedelsdorf", BUEDELSDORF.lat, BUEDELSDORF.lon, "Büdelsdorf"),
)


def test_requests_snap_to_nearest_stop_and_offer_says_where_to_walk():
    """A door-to-door request snaps to stops within walking distance; the offer names them."""
    c = _immediate(stops=STOPS, walk_max_m=500.0)
    c.handle(shift("v1"), T0)
    near_fockbek = Place(lat=FOCKBEK.lat + 0.002, lon=FOCKBEK.lon)  # about 220 m north
    out = c.handle(request("r1", origin=near_fockbek), T0).outputs
    (offer,) = of_kind(out, RideOfferedV1)
    assert offer.pickup.stop_id == "s-fockbek" and offer.dropoff.stop_id == "s-buedelsdorf"
    assert (offer.pickup.lat, offer.pickup.lon) == (FOCKBEK.lat, FOCKBEK.lon)
    assert 200 <= offer.walk_m <= 250


def test_request_far_from_every_stop_is_rejected():
    """Without a stop within walking distance the request is rejected as outside_area."""
    c = _immediate(stops=STOPS, walk_max_m=500.0)
    c.handle(shift("v1"), T0)
    (rej,) = c.handle(request("r1", origin=JEVENSTEDT), T0).outputs
    assert isinstance(rej, RideRejectedV1) and rej.reason.value == "outside_area"
    assert "500 m" in rej.message


def test_outside_service_hours_is_rejected_with_the_next_opening():
    """A pickup outside the service hours is rejected with the next opening as alternative."""
    c = core(service_hours=(17.0, 27.0), timezone="Europe/Berlin")
    c.handle(shift("v1"), T0)
    local = to_datetime(T0).astimezone(__import__("zoneinfo").ZoneInfo("Europe/Berlin"))
    morning = local.replace(hour=10, minute=0, second=0) + timedelta(days=1)
    (rej,) = c.handle(request("r1", requested_time=morning), T0).outputs
    assert isinstance(rej, RideRejectedV1) and rej.reason.value == "outside_hours"
    assert rej.alternative_pickup is not None
    alt = rej.alternative_pickup.astimezone(morning.tzinfo)
    assert (alt.date(), alt.hour) == (morning.date(), 17)
    night = local.replace(hour=2, minute=30, second=0) + timedelta(days=1)  # 26.5 h: open
    assert c.handle(request("r2", requested_time=night), T0).outputs == []


def test_vehicle_is_planned_only_inside_its_shift_and_alternative_is_offered():
    """A shift starting later is not used earlier; the rejection offers a later pickup."""
    c = _immediate(alternative_step_s=1800, alternative_tries=3)
    later = shift("v1", at=T0 + 3600)
    c.handle(later, T0)
    (rej,) = of_kind(c.handle(request("r1"), T0).outputs, RideRejectedV1)
    assert rej.reason.value == "no_vehicle" and rej.alternative_pickup is not None
    assert to_timestamp(rej.alternative_pickup) >= T0 + 3600


def test_break_is_planned_inside_its_window_with_an_empty_vehicle():
    """A vehicle's break lands in its window, at the depot, and the driver plan shows it."""
    c = _immediate()
    start = shift("v1", break_window=(T0 + 2700, T0 + 3600))
    c.handle(start, T0)
    out = c.handle(request("r1", origin=FOCKBEK, destination=JEVENSTEDT), T0 + 1).outputs
    (plan,) = of_kind(out, DriverPlanV1)
    assert plan.break_start is not None and plan.break_end is not None
    b0, b1 = to_timestamp(plan.break_start), to_timestamp(plan.break_end)
    assert T0 + 2700 <= b0 <= T0 + 3600 and b1 - b0 == 1800
    ride = c.state.rides["r1"]
    assert ride.dropoff_eta is not None and ride.pickup_eta is not None
    assert ride.dropoff_eta <= b0 or ride.pickup_eta >= b1  # nobody on board in the break
    job = build_problem(c.state, [], b0 + 60, c.travel, c.config.planning)
    (vehicle,) = job.problem.vehicles
    assert vehicle.start_time >= round(b1 - (b0 + 60)) - 1  # free only after the break
    assert all(r.id != break_id("v1") for r in job.problem.requests)


def test_new_plans_keep_a_buffer_before_a_promised_window_ends():
    """A later plan may not push a promised pickup into the last ``promise_buffer_s`` of
    its window (delays on the way would break it), unless it is planned there already."""
    from dispatcher.planning import PlanningConfig  # noqa: PLC0415

    for buffer in (0, 120):
        c = _immediate(planning=PlanningConfig(promise_buffer_s=buffer))
        c.handle(shift("v1"), T0)
        c.handle(request("r1"), T0)
        ride = c.state.rides["r1"]
        assert ride.promised_pickup is not None and ride.pickup_eta is not None
        job = build_problem(c.state, [], T0 + 10, c.travel, c.config.planning)
        window = job.problem.request("r1").pickup_window
        assert window.latest == round(ride.promised_pickup[1] - buffer - job.epoch)
        # planned inside the buffer already (a late vehicle): that time stays possible
        ride.pickup_eta = ride.promised_pickup[1] - 30
        job = build_problem(c.state, [], T0 + 10, c.travel, c.config.planning)
        late = job.problem.request("r1").pickup_window.latest
        end = ride.promised_pickup[1]
        assert late == round(max(end - buffer, end - 30) - job.epoch)
        assert ride.promised_dropoff is not None
        dropoff = job.problem.request("r1").dropoff_window.latest
        assert dropoff == max(round(ride.promised_dropoff - buffer - job.epoch),
                              round((ride.dropoff_eta or 0) - job.epoch))  # fmt: skip


def test_insertion_wait_cost_takes_a_sooner_ride_over_a_cheaper_later_one():
    """Immediate mode: v1 will pass the same stops in about 28 min for a pre-booked
    ride, adding no distance; v2 stands there idle. Plain cheapest insertion pools the
    new ride into v1's trip; with a wait cost, v2 takes it now."""
    offered = {}
    for wait_cost in (0.0, 3.0):
        c = _immediate(insertion_wait_cost=wait_cost)
        c.handle(shift("v1", position=FOCKBEK), T0)
        c.handle(shift("v2", position=FOCKBEK), T0)
        c.handle(request("pre", requested_time=to_datetime(T0 + 1700)), T0)
        (offer,) = of_kind(c.handle(request("now", at=T0 + 1), T0 + 1).outputs, RideOfferedV1)
        offered[wait_cost] = (offer.vehicle_id, to_timestamp(offer.pickup_window_start) - T0)
    assert offered[0.0][0] == "v1" and offered[0.0][1] > 1000
    assert offered[3.0] == ("v2", 1.0)


def test_a_request_while_the_only_vehicle_is_late_for_its_shift_end_is_rejected():
    """A vehicle that can no longer be back at the depot by its shift end cannot be
    timed at all; a request then is turned away (no_vehicle), not a crash."""
    c = _immediate()
    c.handle(shift("v1", position=JEVENSTEDT, hours=0.1), T0)
    out = c.handle(request("r1", origin=JEVENSTEDT, destination=RENDSBURG, at=T0 + 10), T0 + 10)
    (rejection,) = of_kind(out.outputs, RideRejectedV1)
    assert rejection.reason == "no_vehicle" and out.dead_letter is None


def _prebooked_on_v1_then_v2_at_fockbek(**kw: object) -> tuple[DispatchCore, RideOfferedV1]:
    """r1, Fockbek -> Büdelsdorf booked for an hour ahead, offered on v1 (the only
    vehicle, at the Rendsburg depot); then v2 starts its shift in Fockbek."""
    c = _immediate(reopt_every_s=60.0, **kw)
    c.handle(shift("v1"), T0)
    pickup = to_datetime(T0 + 3600)
    (first,) = of_kind(c.handle(request("r1", requested_time=pickup), T0).outputs, RideOfferedV1)
    assert first.vehicle_id == "v1"
    c.handle(shift("v2", at=T0 + 30, position=FOCKBEK), T0 + 30)
    return c, first


def _reoptimise(c: DispatchCore, now: float) -> list[Event]:
    job = c.prepare(now)
    assert job is not None and job.kind == "reopt"
    return c.complete(job, ortools_solve(job.problem, SolveLimits(1.0)), now)


def test_reoptimisation_moves_a_confirmed_ride_to_a_better_placed_vehicle():
    """With ``reassign_lead_s``, a re-optimisation may give a confirmed ride to another
    vehicle: the passenger is offered the ride again on the new vehicle with the window
    and latest drop-off already promised, and both drivers get new plans."""
    c, first = _prebooked_on_v1_then_v2_at_fockbek(planning=PlanningConfig(reassign_lead_s=600))
    out = _reoptimise(c, T0 + 90)
    (again,) = of_kind(out, RideOfferedV1)
    assert again.vehicle_id == "v2"
    assert (again.pickup_window_start, again.pickup_window_end, again.latest_dropoff) == (
        first.pickup_window_start,
        first.pickup_window_end,
        first.latest_dropoff,
    )
    plans = {p.vehicle_id: p for p in of_kind(out, DriverPlanV1)}
    assert plans["v1"].stops == [] and [s.request_id for s in plans["v2"].stops] == ["r1", "r1"]
    ride = c.state.rides["r1"]
    assert ride.vehicle_id == "v2" and ride.reassigned == 1
    assert ride.status is RideStatus.OFFERED


def test_a_confirmed_ride_keeps_its_vehicle_without_reassignment_or_inside_the_lead():
    """By default a confirmed ride stays on the vehicle it was offered with; with
    reassignment, also once its window opens within ``reassign_lead_s``."""
    for planning in (PlanningConfig(), PlanningConfig(reassign_lead_s=3600)):
        c, _ = _prebooked_on_v1_then_v2_at_fockbek(planning=planning)
        job = c.prepare(T0 + 90)
        assert job is not None
        (r1,) = [r for r in job.problem.requests if r.id == "r1"]
        assert r1.allowed_vehicles == ("v1",)
        assert not of_kind(c.complete(job, ortools_solve(job.problem, SolveLimits(1.0)),
                                      T0 + 90), RideOfferedV1)  # fmt: skip
        assert c.state.rides["r1"].vehicle_id == "v1"


def test_a_moved_ride_leaves_a_vehicle_the_plan_has_no_route_for():
    """A solver may leave out a vehicle without stops; the vehicle a ride moved from
    still gives it up, so no ride is ever on two plans."""
    c, _ = _prebooked_on_v1_then_v2_at_fockbek(planning=PlanningConfig(reassign_lead_s=600))
    job = c.prepare(T0 + 90)
    assert job is not None
    plan = ortools_solve(job.problem, SolveLimits(1.0))
    only_v2 = replace(plan, routes=tuple(r for r in plan.routes if r.vehicle_id == "v2"))
    assert "r1" in only_v2.served
    out = c.complete(job, only_v2, T0 + 90)
    plans = {p.vehicle_id: p for p in of_kind(out, DriverPlanV1)}
    assert plans["v1"].stops == [] and c.state.vehicles["v1"].stops == []
    assert [s.request_id for s in plans["v2"].stops] == ["r1", "r1"]
    assert [o.vehicle_id for o in of_kind(out, RideOfferedV1)] == ["v2"]


def test_a_vehicle_waiting_early_at_a_prebooked_pickup_serves_a_ride_meanwhile():
    """A vehicle that drove to a pre-booked pickup an hour early is not held there: it
    takes an immediate ride in the meantime and is back within the promised window.
    (Held until the pickup, it turned such rides away while it stood idle.)"""
    c = _immediate()
    c.handle(shift("v1"), T0)
    pickup = to_datetime(T0 + 3600)
    (first,) = of_kind(c.handle(request("r1", requested_time=pickup), T0).outputs, RideOfferedV1)
    arrived = vehicle_event(ArrivedAtStopV1, T0 + 600, position=FOCKBEK, request_ids=["r1"])
    c.handle(arrived, T0 + 600)
    out = c.handle(request("r2", FOCKBEK, BUEDELSDORF, at=T0 + 700), T0 + 700).outputs
    (offer,) = of_kind(out, RideOfferedV1)
    assert offer.vehicle_id == "v1"
    stops = c.state.vehicles["v1"].stops
    assert [s.ref for s in stops[:2]] == [("r2", "pickup"), ("r2", "dropoff")]
    assert not any(s.arrived for s in stops)  # back at r1's pickup, the driver says so again
    r1 = c.state.rides["r1"]
    assert r1.pickup_eta is not None and r1.promised_pickup is not None
    assert to_timestamp(first.pickup_window_start) <= r1.pickup_eta
    assert r1.pickup_eta <= to_timestamp(first.pickup_window_end)


def test_reoptimisation_weighs_later_drop_offs_like_the_insertion():
    """The re-optimisation problem carries the insertion's wait cost as its drop-off
    wait cost, so it does not undo the sooner rides the insertion chose; without a
    wait cost it weighs distance alone."""
    for wait_cost in (0.0, 3.0):
        c = _immediate(reopt_every_s=60.0, insertion_wait_cost=wait_cost)
        c.handle(shift("v1"), T0)
        c.handle(request("r1"), T0)
        job = c.prepare(T0 + 60)
        assert job is not None and job.kind == "reopt"
        assert job.problem.dropoff_wait_cost == wait_cost
