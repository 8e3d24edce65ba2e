"""Promises kept while vehicles run early or late, and while drivers wait for no-shows."""

from __future__ import annotations

from dispatcher.clock import to_datetime, to_timestamp
from dispatcher.core import CoreConfig, DispatchCore
from dispatcher.geo import CrowFliesTravel, LatLon, Matrix
from dispatcher.planning import PlanningConfig, latest_departures
from dispatcher.state import RideStatus
from schemas.dispatch import DriverPlanV1
from schemas.envelope import Event, Place
from schemas.vehicle import ArrivedAtStopV1, NoShowV1, PassengerBoardedV1, PositionUpdatedV1
from tests.unit.dispatcher.fleet_kit import (
    AREA,
    BUEDELSDORF,
    FOCKBEK,
    JEVENSTEDT,
    OSTERROENFELD,
    RENDSBURG,
    T0,
    core,
    latlon,
    of_kind,
    request,
    shift,
    vehicle_event,
)


def _at(place: Place) -> Place:
    return Place(lat=place.lat, lon=place.lon)


def _board(c: DispatchCore, rid: str, at: float) -> list[Event]:
    ride = c.state.rides[rid]
    here = Place(lat=ride.origin.lat, lon=ride.origin.lon)
    c.handle(vehicle_event(ArrivedAtStopV1, at, request_ids=[rid], position=here), at)
    return c.handle(vehicle_event(PassengerBoardedV1, at, request_id=rid), at).outputs


def _tight_core() -> DispatchCore:
    # short maximum ride times: a rider on board leaves little room for waiting
    return core(
        mode="immediate",
        no_show_wait_s=300.0,
        planning=PlanningConfig(ride_alpha=1.25, ride_beta_s=180),
    )


def test_no_show_wait_is_cut_short_to_keep_the_rider_on_board():
    """The driver may give up on a missing passenger when waiting longer would make the
    passenger already on board late; the plan says when (latest_departure)."""
    c = _tight_core()
    c.handle(shift("v1", position=RENDSBURG), T0)
    c.handle(request("r1", origin=RENDSBURG, destination=JEVENSTEDT), T0)
    c.handle(request("r2", origin=OSTERROENFELD, destination=JEVENSTEDT, at=T0 + 1), T0 + 1)
    assert c.state.rides["r2"].vehicle_id == "v1"
    order = [s.ref for s in c.state.vehicles["v1"].stops]
    assert order.index(("r2", "pickup")) < order.index(("r1", "dropoff"))
    board = max(T0 + 5, c.state.rides["r1"].promised_pickup[0])  # type: ignore[index]
    plans = of_kind(_board(c, "r1", board), DriverPlanV1)
    stop = next(s for s in plans[-1].stops if s.request_id == "r2" and s.action == "pickup")
    assert stop.latest_departure is not None
    depart_by = to_timestamp(stop.latest_departure)
    vehicle = c.state.vehicles["v1"]
    i = [s.ref for s in vehicle.stops].index(("r2", "pickup"))
    assert depart_by == latest_departures(c.state, vehicle, c.travel, c.config.planning)[i]
    # The vehicle reaches r2's pickup when its window is open; the rider on board
    # cannot spare the full 300 s.
    arrive = max(stop.eta, stop.window_start or stop.eta)
    at = to_timestamp(arrive)
    c.handle(
        vehicle_event(ArrivedAtStopV1, at, request_ids=["r2"], position=_at(OSTERROENFELD)), at
    )
    assert at < depart_by < at + 300
    too_early = c.handle(vehicle_event(NoShowV1, depart_by - 60, request_id="r2"), depart_by - 60)
    assert "must wait 300 s" in (too_early.dead_letter or "")
    ok = c.handle(vehicle_event(NoShowV1, depart_by, request_id="r2"), depart_by)
    assert ok.dead_letter is None
    assert c.state.rides["r2"].status is RideStatus.NO_SHOW


def test_late_boarding_retimes_the_rest_of_the_route():
    """A vehicle that boards late gets a plan whose next times start from the truth."""
    c = core(mode="immediate")
    c.handle(shift("v1", position=RENDSBURG), T0)
    c.handle(request("r1", origin=RENDSBURG, destination=JEVENSTEDT), T0)
    dropoff_eta = c.state.rides["r1"].dropoff_eta
    assert dropoff_eta is not None
    late = T0 + 600
    plans = of_kind(_board(c, "r1", late), DriverPlanV1)
    (stop,) = plans[-1].stops
    direct_s, _ = c.travel.leg(c.state.rides["r1"].origin, c.state.rides["r1"].destination)
    pickup_service = c.config.planning.pickup_service_s
    assert to_timestamp(stop.eta) >= late + pickup_service + direct_s - 1
    assert to_timestamp(stop.eta) > dropoff_eta + 500


def test_a_position_report_does_not_make_the_next_stop_come_sooner():
    """Halfway along a leg the vehicle is not expected before the leg's travel time is up:
    a report that it is (almost) there cannot pull the next stop's time forward."""
    c = core(mode="immediate")
    c.handle(shift("v1", position=RENDSBURG), T0)
    c.handle(request("r1", origin=RENDSBURG, destination=JEVENSTEDT), T0)
    _board(c, "r1", T0 + 5)
    ride = c.state.rides["r1"]
    leg_s, _ = c.travel.leg(ride.origin, ride.destination)
    earliest = c.state.vehicles["v1"].leg_since + leg_s
    # a (wrong or early) report right next to the drop-off, soon after leaving
    near = Place(lat=JEVENSTEDT.lat + 0.001, lon=JEVENSTEDT.lon)
    c.handle(vehicle_event(PositionUpdatedV1, T0 + 120, position=near), T0 + 120)
    out = c.handle(request("r2", origin=BUEDELSDORF, destination=RENDSBURG, at=T0 + 121), T0 + 121)
    plan = of_kind(out.outputs, DriverPlanV1)
    stops = plan[-1].stops if plan else []
    dropoff = next((s for s in stops if s.request_id == "r1"), None)
    if dropoff is not None:  # r2 went to v1: its plan is timed from the leg, not the report
        assert to_timestamp(dropoff.eta) >= earliest - 1
    assert c.state.rides["r1"].dropoff_eta is not None
    assert c.state.rides["r1"].dropoff_eta >= earliest - 1


class _SlowDirect:
    """Straight lines, except that the direct way between two places takes twice as
    long (a road model without the triangle inequality: via a third place is faster)."""

    def __init__(self, a: LatLon, b: LatLon) -> None:
        self.base = CrowFliesTravel()
        self.slow = {(a, b), (b, a)}

    def leg(self, a: LatLon, b: LatLon) -> tuple[int, int]:
        seconds, metres = self.base.leg(a, b)
        return (2 * seconds if (a, b) in self.slow else seconds), metres

    def matrix(self, points: list[LatLon]) -> tuple[Matrix, Matrix]:
        legs = [[self.leg(a, b) for b in points] for a in points]
        return (
            tuple(tuple(x[0] for x in row) for row in legs),
            tuple(tuple(x[1] for x in row) for row in legs),
        )


def test_no_show_latest_departure_holds_for_the_way_without_the_drop_off():
    """After a no-show the vehicle drives straight to its next pickup, skipping the
    drop-off; where that way takes longer than the planned one through the drop-off,
    the latest departure must hold for it too."""
    fockbek, jevenstedt = latlon(FOCKBEK), latlon(JEVENSTEDT)
    travel = _SlowDirect(fockbek, jevenstedt)
    c = DispatchCore(CoreConfig(areas={"rendsburg": AREA}, mode="immediate"), travel)
    c.handle(shift("v1", position=FOCKBEK), T0)
    c.handle(request("r1", origin=FOCKBEK, destination=BUEDELSDORF), T0)
    booked = request("r2", origin=JEVENSTEDT, destination=RENDSBURG,
                     requested_time=to_datetime(T0 + 1500))  # fmt: skip
    c.handle(booked, T0 + 1)
    vehicle = c.state.vehicles["v1"]
    assert [s.ref for s in vehicle.stops][:3] == [
        ("r1", "pickup"), ("r1", "dropoff"), ("r2", "pickup")]  # fmt: skip
    window_end = c.state.rides["r2"].promised_pickup[1]  # type: ignore[index]
    depart_by = latest_departures(c.state, vehicle, travel, c.config.planning)[0]
    # leaving r1's pickup then, without r1, still reaches r2 inside its window
    assert depart_by + travel.leg(fockbek, jevenstedt)[0] <= window_end
    # and with r1 on board, by way of the drop-off, too
    via = (
        travel.leg(fockbek, latlon(BUEDELSDORF))[0] + travel.leg(latlon(BUEDELSDORF), jevenstedt)[0]
    )
    assert depart_by + via + c.config.planning.dropoff_service_s <= window_end
