"""The seeded demand generator."""

from __future__ import annotations

from collections import Counter
from datetime import date
from statistics import mean

from dispatcher.clock import to_timestamp
from dispatcher.geo import LatLon
from producers.demand import DemandOptions, generate_demand, with_profile
from producers.scenario import load_scenario
from schemas.passenger import RideCancelledV1, RideRequestedV1, TimeType

SC = load_scenario("rendsburg")
START = SC.local_time(date(2026, 11, 19), 17)
END = START + 10 * 3600


def _requests(events: list) -> list[RideRequestedV1]:  # type: ignore[type-arg]
    return [e for _, e in events if isinstance(e, RideRequestedV1)]


def test_same_seed_same_events_other_seed_other_events() -> None:
    """Demand is a pure function of the seed, event ids included."""
    a = generate_demand(SC, START, END, seed=11)
    b = generate_demand(SC, START, END, seed=11)
    c = generate_demand(SC, START, END, seed=12)
    assert [(t, e.model_dump()) for t, e in a] == [(t, e.model_dump()) for t, e in b]
    assert [e.model_dump() for _, e in a] != [e.model_dump() for _, e in c]


def test_events_are_time_ordered_valid_and_snapped_to_stops() -> None:
    """Times never decrease, occurred_at equals the delivery time, places are known stops."""
    events = generate_demand(SC, START, END, seed=3)
    times = [t for t, _ in events]
    assert times == sorted(times)
    stop_ids = {s.id for s in (*SC.stops, *SC.hubs)}
    for t, e in events:
        assert abs(to_timestamp(e.occurred_at) - t) < 1e-3
        assert START <= t < END
        if isinstance(e, RideRequestedV1):
            assert e.zone == "rendsburg"
            assert e.origin.stop_id in stop_ids and e.destination.stop_id in stop_ids
            assert SC.area.contains(LatLon(e.origin.lat, e.origin.lon))


def test_profile_shape_is_followed() -> None:
    """Desired pickup times follow the hourly profile: a busy hour gets far more rides."""
    profile = [0.0] * 24
    profile[18], profile[22] = 200.0, 20.0  # local 18:00 busy, 22:00 quiet, rest empty
    settings = with_profile(SC.demand, profile)
    opts = DemandOptions(cutoff_s=0)
    events = generate_demand(SC, START, END, seed=5, options=opts, settings=settings)
    hours: Counter[int] = Counter()
    for _, e in events:
        if isinstance(e, RideRequestedV1):
            # immediate rides: desired = booking time; pre-booked: requested time
            t = to_timestamp(e.requested_time) if e.requested_time else to_timestamp(e.occurred_at)
            if e.time_type is TimeType.ARRIVAL:
                continue
            hours[SC.local_hour(t - 1)] += 1
    assert set(hours) <= {18, 19, 22, 23}  # pre-bookings round up to the next 5 minutes
    assert 120 <= hours[18] + hours[19] <= 200
    assert 5 <= hours[22] + hours[23] <= 25


def test_mix_of_bookings_groups_and_wheelchairs() -> None:
    """Shares of pre-bookings, groups, wheelchairs and cancellations are near the settings."""
    events = generate_demand(SC, START, END, seed=9, options=DemandOptions(scale=20.0))
    reqs = _requests(events)
    assert len(reqs) > 1000
    prebooked = sum(1 for r in reqs if r.requested_time is not None) / len(reqs)
    arrival = sum(1 for r in reqs if r.time_type is TimeType.ARRIVAL) / len(reqs)
    wheel = sum(1 for r in reqs if r.wheelchairs) / len(reqs)
    groups = Counter(r.seats for r in reqs if not r.wheelchairs)
    cancels = sum(1 for _, e in events if isinstance(e, RideCancelledV1)) / len(reqs)
    assert 0.25 < prebooked < 0.35
    assert 0.06 < arrival < 0.12
    assert 0.015 < wheel < 0.05
    assert groups[1] > 0.7 * sum(groups.values()) and set(groups) <= {1, 2, 3, 4}
    assert 0.02 < cancels < 0.07
    for r in reqs:
        if r.requested_time is not None:
            lead = to_timestamp(r.requested_time) - to_timestamp(r.occurred_at)
            assert lead <= 86_400 + 4000


def test_trips_are_short_and_mostly_local() -> None:
    """Mean road trip length is near the real service's 5.7 km; Rendsburg station is a hub."""
    events = generate_demand(SC, START, END, seed=2, options=DemandOptions(scale=10.0))
    travel = SC.travel()
    reqs = _requests(events)
    km = [
        travel.leg(
            LatLon(r.origin.lat, r.origin.lon), LatLon(r.destination.lat, r.destination.lon)
        )[1]
        / 1000
        for r in reqs
    ]
    assert 4.5 < mean(km) < 7.0
    to_station = sum(1 for r in reqs if "rail-ar" in (r.origin.stop_id, r.destination.stop_id))
    assert 0.05 < to_station / len(reqs) < 0.2
