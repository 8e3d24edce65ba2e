"""KPIs on a tiny hand-made history, checked against numbers computed by hand."""

from __future__ import annotations

from dataclasses import replace

from dispatcher.clock import to_datetime
from dispatcher.geo import LatLon
from dispatcher.kpis import History, RequestRecord, Shift, compute_kpis, kpis_by_hour, percentile
from producers.fleet import Segment
from schemas.dispatch import RejectionReason, RideOfferedV1, RideRejectedV1
from schemas.envelope import Place

T0 = 1_795_000_000.0
P = Place(lat=54.3, lon=9.6)
Q = Place(lat=54.31, lon=9.61)
A, B = LatLon(54.3, 9.6), LatLon(54.31, 9.61)


def _offer(rid: str, start: float, end: float, latest: float) -> tuple[float, RideOfferedV1]:
    return (
        T0,
        RideOfferedV1(
            occurred_at=to_datetime(T0),
            source="test",
            request_id=rid,
            zone="rendsburg",
            vehicle_id="v1",
            pickup=P,
            dropoff=Q,
            pickup_window_start=to_datetime(start),
            pickup_window_end=to_datetime(end),
            pickup_eta=to_datetime(start),
            dropoff_eta=to_datetime(start + 600),
            latest_dropoff=to_datetime(latest),
        ),
    )


def _rec(rid: str, desired: float | None, direct_s: float, persons: int = 1) -> RequestRecord:
    return RequestRecord(rid, T0, desired, direct_s, direct_s * 10, 900.0, 60.0, persons)


def _history() -> History:
    """Three requests: r1 and r2 pooled for 2 km, r3 rejected.

    Vehicle v1 (shift 2 h, one driven hour): 4 km empty, 2 km with r1, 2 km with r1+r2
    (3 persons), 2 km with r2 (2 persons): 10 km, 4 empty, person-km 2+6+4 = 12.
    r1: desired T0, boarded T0+300 (window T0..T0+900), alighted T0+1000, direct 500 s:
        ride 1000-300-60 = 640 s, detour 1.28, wait 300 s.
    r2 (2 persons): desired T0+100, boarded T0+1300, window T0+200..T0+1200 -> broken;
        alighted T0+2500, direct 400: ride 1140 > 900 -> exceeded, detour 2.85, wait 1200.
    """
    h = History(start=T0, end=T0 + 7200)
    h.requests = [_rec("r1", T0, 500), _rec("r2", T0 + 100, 400, persons=2), _rec("r3", T0, 300)]
    h.offers = {
        "r1": _offer("r1", T0, T0 + 900, T0 + 5000),
        "r2": _offer("r2", T0 + 200, T0 + 1200, T0 + 5000),
    }
    h.rejections = {
        "r3": (
            T0,
            RideRejectedV1(
                occurred_at=to_datetime(T0),
                source="test",
                request_id="r3",
                reason=RejectionReason.NO_VEHICLE,
            ),
        )
    }
    h.boarded = {"r1": T0 + 300, "r2": T0 + 1300}
    h.alighted = {"r1": T0 + 1000, "r2": T0 + 2500}
    h.segments = [
        Segment("v1", T0, T0 + 300, A, B, 4000, (), 0),
        Segment("v1", T0 + 300, T0 + 900, B, A, 2000, ("r1",), 1),
        Segment("v1", T0 + 1300, T0 + 2000, A, B, 2000, ("r1", "r2"), 3),
        Segment("v1", T0 + 2000, T0 + 2500, B, A, 2000, ("r2",), 2),
    ]
    h.shifts = [Shift("v1", T0, T0 + 7200, 7)]
    return h


def test_counts_rates_and_waits() -> None:
    """Requests, served, rejected by reason, service rate and wait percentiles."""
    k = compute_kpis(_history())
    assert (k["requests"], k["served"], k["rejected"]) == (3, 2, 1)
    assert k["rejected_by_reason"] == {"no_vehicle": 1}
    assert k["service_rate"] == round(2 / 3, 4)
    assert k["wait_mean_s"] == 750.0
    assert k["wait_p50_s"] == 750.0
    assert k["wait_p90_s"] == 300 + 0.9 * 900  # 1110
    assert k["wait_p95_s"] == 300 + 0.95 * 900  # 1155


def test_promises_ride_times_and_detours() -> None:
    """One pickup outside its window, one ride over its max ride time, the mean detour."""
    k = compute_kpis(_history())
    assert k["promise_broken"] == 1
    assert k["pickup_outside_window"] == 1 and k["dropoff_late"] == 0
    assert k["ride_time_exceeded"] == 1
    assert k["ride_time_mean_s"] == (640 + 1140) / 2
    assert k["detour_factor_mean"] == round((640 / 500 + 1140 / 400) / 2, 3)  # 2.065


def test_distances_occupancy_and_pooling() -> None:
    """Vehicle-km, empty share, occupancy per km, pooling and km per passenger."""
    k = compute_kpis(_history())
    assert k["vehicle_km"] == 10.0
    assert k["empty_km_share"] == 0.4
    assert k["occupancy_mean"] == 1.2  # 12 person-km / 10 km
    assert k["pooling_rate"] == 1.0  # both served rides shared a stretch
    assert k["pooled_km_share"] == round(2 / 6, 4)
    assert k["passengers"] == 3
    assert k["km_per_passenger"] == round(10 / 3, 3)
    assert k["vehicle_utilisation"] == round(2100 / 7200, 4)  # 300+600+700+500 s driven
    assert k["confirmed_unaccounted"] == []


def test_an_open_confirmed_ride_is_reported() -> None:
    """An offered ride with no completion and no recorded reason is listed as unaccounted."""
    h = _history()
    h.alighted.pop("r2")
    assert compute_kpis(h)["confirmed_unaccounted"] == ["r2"]
    h.outcomes["r2"] = ("offered", "vehicle broke down")
    assert compute_kpis(h)["confirmed_unaccounted"] == []


def test_hourly_rows() -> None:
    """Per-hour rows split requests by hour and km by the overlap of segments."""
    rows = kpis_by_hour(_history())
    assert len(rows) == 2
    assert (rows[0].requests, rows[0].served, rows[0].rejected) == (3, 2, 1)
    assert rows[0].vehicle_km == 10.0 and rows[1].vehicle_km == 0.0
    assert rows[0].occupancy_mean == 1.2


def test_percentile_interpolates() -> None:
    """The percentile interpolates linearly between order statistics."""
    assert percentile([], 50) is None
    assert percentile([1.0, 2.0, 3.0, 4.0], 50) == 2.5
    assert percentile([5.0], 95) == 5.0


def _rejected(rid: str, reason: RejectionReason) -> tuple[float, RideRejectedV1]:
    return (
        T0,
        RideRejectedV1(occurred_at=to_datetime(T0), source="test", request_id=rid, reason=reason),
    )


def test_a_request_rebooked_on_its_alternative_counts_once():
    """r3 is turned away and rebooked on its alternative 1800 s later, which is served;
    r4 is turned away twice (the rebooking for lack of capacity); r5 once, for good."""
    h = _history()
    h.requests += [
        replace(_rec("r3.alt", T0 + 1800, 300), alternative_of="r3"),
        _rec("r4", T0, 300),
        replace(_rec("r4.alt", T0 + 3600, 300), alternative_of="r4"),
        _rec("r5", T0, 300),
    ]
    h.rejections |= {
        "r4": _rejected("r4", RejectionReason.NO_VEHICLE),
        "r4.alt": _rejected("r4.alt", RejectionReason.CAPACITY),
        "r5": _rejected("r5", RejectionReason.NO_VEHICLE),
    }
    h.offers["r3.alt"] = _offer("r3.alt", T0 + 1800, T0 + 2700, T0 + 5000)
    h.boarded["r3.alt"] = T0 + 1900
    h.alighted["r3.alt"] = T0 + 2400
    k = compute_kpis(h)
    assert k["requests"] == 5  # r1..r5; rebookings are not requests of their own
    assert k["served"] == 3  # r1, r2 and r3 by its alternative
    assert k["rejected"] == 2  # r4 (both times) and r5
    assert k["rejected_by_reason"] == {"capacity": 1, "no_vehicle": 1}
    assert k["alternatives_taken"] == 2 and k["served_by_alternative"] == 1
    assert k["alternative_delay_mean_s"] == 1800.0
    assert k["service_rate"] == 0.6
    (hour, *_) = kpis_by_hour(h)
    assert (hour.requests, hour.served, hour.rejected) == (5, 3, 2)
