"""The vehicle simulator follows driver plans."""

from __future__ import annotations

import itertools

from dispatcher.clock import to_datetime
from dispatcher.geo import CrowFliesTravel, LatLon, haversine_m
from producers.fleet import FleetSimulator, VehicleConfig
from schemas.dispatch import DriverPlanV1, PlannedStop, StopAction
from schemas.envelope import Place
from schemas.vehicle import (
    ArrivedAtStopV1,
    NoShowV1,
    PassengerAlightedV1,
    PassengerBoardedV1,
    PositionUpdatedV1,
    ShiftEndedV1,
    ShiftStartedV1,
)

T0 = 1_795_000_000.0
DEPOT = LatLon(54.302262, 9.671134)  # Rendsburg station
FOCKBEK = Place(lat=54.30413, lon=9.601589, stop_id="vs-fockbek-01")
BUEDELSDORF = Place(lat=54.315687, lon=9.677817, stop_id="vs-buedelsdorf-01")
JEVENSTEDT = Place(lat=54.234604, lon=9.668849, stop_id="vs-jevenstedt-01")


def _fleet(**kw: float) -> FleetSimulator:
    cfg = VehicleConfig("v1", DEPOT, T0, T0 + 3 * 3600, seats=4, wheelchairs=1)
    return FleetSimulator([cfg], CrowFliesTravel(), seed=1, **kw)  # type: ignore[arg-type]


def _stop(action: StopAction, rid: str, where: Place, eta: float,
          window: tuple[float, float] | None = None) -> PlannedStop:  # fmt: skip
    return PlannedStop(
        action=action,
        request_id=rid,
        location=where,
        eta=to_datetime(eta),
        window_start=to_datetime(window[0]) if window else None,
        window_end=to_datetime(window[1]) if window else None,
    )


def _plan(version: int, stops: list[PlannedStop], at: float = T0) -> DriverPlanV1:
    return DriverPlanV1(
        occurred_at=to_datetime(at),
        source="test",
        vehicle_id="v1",
        zone="rendsburg",
        plan_version=version,
        stops=stops,
    )


def _two_rides(fleet: FleetSimulator, window_a: tuple[float, float]) -> None:
    fleet.on_plan(
        _plan(
            1,
            [
                _stop(StopAction.PICKUP, "a", FOCKBEK, window_a[0], window_a),
                _stop(StopAction.PICKUP, "b", BUEDELSDORF, T0 + 1500, (T0 + 1200, T0 + 2100)),
                _stop(StopAction.DROPOFF, "a", JEVENSTEDT, T0 + 2600),
                _stop(StopAction.DROPOFF, "b", JEVENSTEDT, T0 + 2600),
            ],
        ),
        T0,
    )


def test_vehicle_serves_its_plan_in_order_and_returns_to_the_depot() -> None:
    """Shift start, boardings and alightings in plan order, then the shift ends at the depot."""
    fleet = _fleet()
    (start,) = [e for _, e in fleet.advance(T0)]
    assert isinstance(start, ShiftStartedV1)
    _two_rides(fleet, (T0 + 600, T0 + 1500))
    events = fleet.advance(T0 + 4 * 3600)
    kinds = [
        (type(e).__name__, getattr(e, "request_id", None))
        for _, e in events
        if isinstance(e, PassengerBoardedV1 | PassengerAlightedV1)
    ]
    assert kinds == [
        ("PassengerBoardedV1", "a"),
        ("PassengerBoardedV1", "b"),
        ("PassengerAlightedV1", "a"),
        ("PassengerAlightedV1", "b"),
    ]
    arrivals = [e for _, e in events if isinstance(e, ArrivedAtStopV1)]
    assert arrivals[-1].request_ids == ["a", "b"]  # both drop-offs at one stop
    t_end, last = events[-1]
    assert isinstance(last, ShiftEndedV1)
    assert t_end >= T0 + 3 * 3600
    assert fleet.tracks()["v1"][-1][1] == DEPOT
    assert fleet.finished


def test_positions_move_toward_the_next_stop_at_model_speed() -> None:
    """Position reports come every 30 s and get steadily closer to the first stop."""
    fleet = _fleet(position_every_s=30.0)
    fleet.advance(T0)
    _two_rides(fleet, (T0 + 600, T0 + 1500))
    events = fleet.advance(T0 + 400)
    positions = [(t, e) for t, e in events if isinstance(e, PositionUpdatedV1)]
    assert len(positions) >= 5
    target = LatLon(FOCKBEK.lat, FOCKBEK.lon)
    dists = [haversine_m(LatLon(e.position.lat, e.position.lon), target) for _, e in positions]
    assert all(b < a for a, b in itertools.pairwise(dists))
    assert [round(t - T0) for t, _ in positions[:3]] == [30, 60, 90]
    assert 35 <= positions[0][1].speed_kmh <= 45  # type: ignore[operator]


def test_early_vehicle_waits_for_the_window_start() -> None:
    """A vehicle arriving before the pickup window boards only at the window start."""
    fleet = _fleet()
    fleet.advance(T0)
    _two_rides(fleet, (T0 + 1000, T0 + 1900))  # Fockbek is ~7 min away
    events = fleet.advance(T0 + 3600)
    arrived = next(t for t, e in events if isinstance(e, ArrivedAtStopV1))
    boarded = next(
        t for t, e in events if isinstance(e, PassengerBoardedV1) and e.request_id == "a"
    )
    assert arrived < T0 + 600
    assert boarded == T0 + 1000


def test_no_show_only_after_waiting() -> None:
    """With a certain no-show, the vehicle waits the full time, then reports it and drives on."""
    fleet = _fleet(no_show_prob=1.0, no_show_wait_s=300.0)
    fleet.advance(T0)
    _two_rides(fleet, (T0 + 600, T0 + 1500))
    early = fleet.advance(T0 + 899)
    assert not any(isinstance(e, NoShowV1) for _, e in early)
    later = fleet.advance(T0 + 1000)
    (t_ns,) = [t for t, e in later if isinstance(e, NoShowV1) and e.request_id == "a"]
    assert t_ns == T0 + 900
    assert not any(isinstance(e, PassengerBoardedV1) for _, e in (*early, *later))


def test_no_alighting_for_a_passenger_never_on_board() -> None:
    """A drop-off the plan still holds after a no-show (the dispatcher has not taken the
    report yet) is passed by: nobody alights who never boarded."""
    fleet = _fleet(no_show_prob=1.0, no_show_wait_s=300.0)
    fleet.advance(T0)
    _two_rides(fleet, (T0 + 600, T0 + 1500))
    events = fleet.advance(T0 + 4 * 3600)
    assert {e.request_id for _, e in events if isinstance(e, NoShowV1)} == {"a", "b"}
    assert not [e for _, e in events if isinstance(e, PassengerAlightedV1)]
    assert any(isinstance(e, ShiftEndedV1) for _, e in events)


def test_newer_plan_replaces_older_and_diverts_a_moving_vehicle() -> None:
    """A new plan version re-routes at once; an older version is ignored."""
    fleet = _fleet()
    fleet.advance(T0)
    _two_rides(fleet, (T0 + 600, T0 + 1500))
    fleet.advance(T0 + 120)
    fleet.on_plan(_plan(3, [_stop(StopAction.PICKUP, "c", JEVENSTEDT, T0 + 900)]), T0 + 120)
    fleet.on_plan(_plan(2, [_stop(StopAction.PICKUP, "a", FOCKBEK, T0 + 600)]), T0 + 120)
    events = fleet.advance(T0 + 2000)
    boarded = [e.request_id for _, e in events if isinstance(e, PassengerBoardedV1)]
    assert boarded == ["c"]
    km = sum(s.metres for s in fleet.segments) / 1000
    direct = CrowFliesTravel().leg(DEPOT, LatLon(JEVENSTEDT.lat, JEVENSTEDT.lon))[1] / 1000
    assert km > direct  # the first two minutes went toward Fockbek


def test_a_vehicle_told_to_set_off_later_waits_where_it_is() -> None:
    """With the plan's ``set_off_at``, the vehicle stays at the depot until then, then
    drives to the pickup (no position report, no driving before)."""
    fleet = _fleet(position_every_s=30.0)
    fleet.advance(T0)
    stops = [
        _stop(StopAction.PICKUP, "a", FOCKBEK, T0 + 3600, (T0 + 3600, T0 + 4500)),
        _stop(StopAction.DROPOFF, "a", BUEDELSDORF, T0 + 4200),
    ]
    plan = _plan(1, stops).model_copy(update={"set_off_at": to_datetime(T0 + 3000)})
    fleet.on_plan(plan, T0)
    events = fleet.advance(T0 + 3 * 3600)
    moves = [t for t, e in events if isinstance(e, PositionUpdatedV1)]
    arrived = next(t for t, e in events if isinstance(e, ArrivedAtStopV1))
    assert moves and min(moves) == T0 + 3000 + 30  # the first report on the way
    assert T0 + 3000 < arrived < T0 + 3600
    assert all(s.t0 >= T0 + 3000 for s in fleet.segments)
