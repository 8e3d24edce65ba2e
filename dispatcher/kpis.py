"""Service KPIs from the history of a simulated (or recorded) service period. Pure.

The input is a :class:`History`: what passengers asked for, what the dispatcher
answered, what the vehicles did (boardings, alightings, no-shows) and what they
drove (segments with the riders on board). Definitions:

* ``wait``: from the desired pickup (the booking time for immediate rides, the
  requested time for departure bookings, the promised window start for arrival
  bookings) to boarding.
* ``promise_broken``: boardings outside the promised pickup window, plus
  alightings after the promised latest drop-off (``dropoff_late`` counts the latter).
* ``ride time``: alighting minus (boarding + pickup service), the solver's
  definition; ``ride_time_exceeded`` counts rides longer than their max ride time.
* ``detour_factor``: ride time / direct driving time.
* ``occupancy_mean``: persons on board averaged over driven km (person-km / vehicle-km).
* ``pooling_rate``: share of served rides that shared the vehicle with another ride
  for part of the way; ``pooled_km_share``: share of occupied km with two or more
  rides on board.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from producers.fleet import Segment
from schemas.dispatch import RideOfferedV1, RideRejectedV1

#: A boarding may be this much outside the promised window (rounding of times).
TOLERANCE_S = 1.0


@dataclass(frozen=True, slots=True)
class RequestRecord:
    """A request as the passenger made it, with its direct trip for comparison.

    ``desired_pickup`` is None for arrival bookings. ``max_ride_s`` bounds the ride
    time (alighting - boarding - ``pickup_service_s``).
    """

    request_id: str
    requested_at: float
    desired_pickup: float | None
    direct_s: float
    direct_m: float
    max_ride_s: float
    pickup_service_s: float
    persons: int
    prebooked: bool = False
    #: the request this one rebooks, on the alternative pickup it was offered
    alternative_of: str | None = None


@dataclass(frozen=True, slots=True)
class Shift:
    """A vehicle's shift, for utilisation."""

    vehicle_id: str
    start: float
    end: float
    capacity: int


@dataclass(slots=True)
class History:
    """Everything the KPIs are computed from (times in POSIX seconds)."""

    start: float
    end: float
    requests: list[RequestRecord] = field(default_factory=list)
    offers: dict[str, tuple[float, RideOfferedV1]] = field(default_factory=dict)
    #: rides offered again with another vehicle (moved by a later plan, or off a
    #: vehicle out of service)
    reassigned: set[str] = field(default_factory=set)
    rejections: dict[str, tuple[float, RideRejectedV1]] = field(default_factory=dict)
    cancelled: dict[str, float] = field(default_factory=dict)
    boarded: dict[str, float] = field(default_factory=dict)
    alighted: dict[str, float] = field(default_factory=dict)
    no_shows: dict[str, float] = field(default_factory=dict)
    segments: list[Segment] = field(default_factory=list)
    shifts: list[Shift] = field(default_factory=list)
    #: Final status and reason per request as the dispatcher recorded it (optional).
    outcomes: dict[str, tuple[str, str | None]] = field(default_factory=dict)


def percentile(values: list[float], q: float) -> float | None:
    """The ``q``-th percentile (0..100), linear interpolation; None for no values."""
    if not values:
        return None
    xs = sorted(values)
    pos = (len(xs) - 1) * q / 100.0
    lo, hi = math.floor(pos), math.ceil(pos)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def _r(x: float | None, digits: int = 3) -> float | None:
    return None if x is None else round(x, digits)


def _ts(d: Any) -> float:
    return float(d.timestamp())


def desired_pickup(r: RequestRecord, offer: RideOfferedV1 | None) -> float | None:
    """When the passenger wanted to leave (see the module docstring)."""
    if r.desired_pickup is not None:
        return r.desired_pickup
    return _ts(offer.pickup_window_start) if offer is not None else None


def final_rejections(h: History) -> dict[str, RideRejectedV1]:
    """The passengers' requests turned away for good, by the id they were made with.

    A request rebooked on the alternative offered (``RequestRecord.alternative_of``)
    is not turned away if the rebooking was offered; if it was turned away too, the
    rebooking's reason counts. Rebookings are not requests of their own.
    """
    rebooked = {r.alternative_of: r.request_id for r in h.requests if r.alternative_of}
    out: dict[str, RideRejectedV1] = {}
    for r in h.requests:
        if r.alternative_of is not None or r.request_id not in h.rejections:
            continue
        rejection = h.rejections[r.request_id][1]
        alt = rebooked.get(r.request_id)
        if alt is not None and alt in h.offers:
            continue
        if alt is not None and alt in h.rejections:
            rejection = h.rejections[alt][1]
        out[r.request_id] = rejection
    return out


def compute_kpis(h: History) -> dict[str, Any]:
    """All KPIs as a JSON-able dict (seconds, km, shares in 0..1).

    A request rebooked on an alternative pickup counts once: served if the
    rebooking was, rejected only if both were turned away.
    """
    by_id = {r.request_id: r for r in h.requests}
    served = [rid for rid in h.alighted if rid in by_id]
    rejected = final_rejections(h)
    reasons = Counter(rej.reason.value for rej in rejected.values())
    alternatives = [r for r in h.requests if r.alternative_of is not None]
    delays = [
        r.desired_pickup - original.desired_pickup
        for r in alternatives
        if r.request_id in h.alighted
        and (original := by_id.get(r.alternative_of or "")) is not None
        and r.desired_pickup is not None
        and original.desired_pickup is not None
    ]
    waits: list[float] = []
    rides: list[float] = []
    detours: list[float] = []
    broken = late_dropoff = exceeded = 0
    for rid, t_board in h.boarded.items():
        r = by_id.get(rid)
        offer = h.offers.get(rid, (0.0, None))[1]
        if r is None:
            continue
        want = desired_pickup(r, offer)
        if want is not None:
            waits.append(max(0.0, t_board - want))
        if offer is not None:
            lo, hi = _ts(offer.pickup_window_start), _ts(offer.pickup_window_end)
            if not (lo - TOLERANCE_S <= t_board <= hi + TOLERANCE_S):
                broken += 1
    for rid in served:
        r = by_id[rid]
        offer = h.offers.get(rid, (0.0, None))[1]
        t_off = h.alighted[rid]
        if offer is not None and t_off > _ts(offer.latest_dropoff) + TOLERANCE_S:
            late_dropoff += 1
        if rid not in h.boarded:
            continue
        ride = t_off - h.boarded[rid] - r.pickup_service_s
        rides.append(ride)
        if ride > r.max_ride_s + TOLERANCE_S:
            exceeded += 1
        if r.direct_s > 0:
            detours.append(ride / r.direct_s)

    vehicle_m = sum(s.metres for s in h.segments)
    empty_m = sum(s.metres for s in h.segments if not s.onboard)
    person_m = sum(s.metres * s.persons for s in h.segments)
    occupied_m = vehicle_m - empty_m
    pooled_m = sum(s.metres for s in h.segments if len(s.onboard) >= 2)
    pooled_rides = {rid for s in h.segments if len(s.onboard) >= 2 for rid in s.onboard}
    driving_s = sum(s.t1 - s.t0 for s in h.segments)
    shift_s = sum(max(0.0, s.end - s.start) for s in h.shifts)
    passengers = sum(by_id[rid].persons for rid in served)
    direct_m = sum(by_id[rid].direct_m for rid in served)
    n_requests = len(h.requests) - len(alternatives)
    n_offered = len([rid for rid in h.offers if rid in by_id])
    final_ok = _confirmed_accounted(h)

    return {
        "requests": n_requests,
        "offered": n_offered,
        "served": len(served),
        "rejected": len(rejected),
        "rejected_by_reason": dict(sorted(reasons.items())),
        "alternatives_taken": len(alternatives),
        "served_by_alternative": sum(1 for r in alternatives if r.request_id in h.alighted),
        "alternative_delay_mean_s": _r(_mean(delays), 1),
        "reassigned": len(h.reassigned),
        "cancelled": len(h.cancelled),
        "no_shows": len(h.no_shows),
        "service_rate": _r(len(served) / n_requests if n_requests else None, 4),
        "acceptance_rate": _r(n_offered / n_requests if n_requests else None, 4),
        "passengers": passengers,
        "wait_mean_s": _r(_mean(waits), 1),
        "wait_p50_s": _r(percentile(waits, 50), 1),
        "wait_p90_s": _r(percentile(waits, 90), 1),
        "wait_p95_s": _r(percentile(waits, 95), 1),
        "promise_broken": broken + late_dropoff,
        "pickup_outside_window": broken,
        "dropoff_late": late_dropoff,
        "ride_time_exceeded": exceeded,
        "ride_time_mean_s": _r(_mean(rides), 1),
        "ride_time_p90_s": _r(percentile(rides, 90), 1),
        "detour_factor_mean": _r(_mean(detours), 3),
        "pooling_rate": _r(len(pooled_rides & set(served)) / len(served) if served else None, 4),
        "pooled_km_share": _r(pooled_m / occupied_m if occupied_m else None, 4),
        "occupancy_mean": _r(person_m / vehicle_m if vehicle_m else None, 3),
        "vehicle_km": round(vehicle_m / 1000, 2),
        "empty_km": round(empty_m / 1000, 2),
        "empty_km_share": _r(empty_m / vehicle_m if vehicle_m else None, 4),
        "passenger_km_direct": round(direct_m / 1000, 2),
        "km_per_passenger": _r(vehicle_m / 1000 / passengers if passengers else None, 3),
        "vehicle_hours": round(shift_s / 3600, 2),
        "vehicle_utilisation": _r(driving_s / shift_s if shift_s else None, 4),
        "passengers_per_vehicle_hour": _r(passengers / (shift_s / 3600) if shift_s else None, 3),
        "confirmed_unaccounted": final_ok,
    }


def _confirmed_accounted(h: History) -> list[str]:
    """Offered rides with neither a completion nor a recorded reason (should be empty)."""
    missing = []
    for rid in h.offers:
        if rid in h.alighted or rid in h.no_shows or rid in h.cancelled:
            continue
        status, reason = h.outcomes.get(rid, ("", None))
        if status in {"completed", "no_show", "cancelled"} or reason:
            continue
        missing.append(rid)
    return sorted(missing)


@dataclass(frozen=True, slots=True)
class HourRow:
    """KPIs of one hour of the period (by request time, or by time of the event)."""

    hour_start: float
    requests: int
    served: int
    rejected: int
    wait_mean_s: float | None
    wait_p90_s: float | None
    occupancy_mean: float | None
    vehicle_km: float


def kpis_by_hour(h: History) -> list[HourRow]:
    """Requests, served and rejected rides (by request hour), waits and occupancy per hour."""
    rows = []
    by_id = {r.request_id: r for r in h.requests}
    # a request rebooked on an alternative counts in its own hour, served if either was
    served_ids = set(h.alighted) | {
        r.alternative_of for r in h.requests if r.alternative_of and r.request_id in h.alighted
    }
    rejected_ids = set(final_rejections(h))
    t = h.start
    while t < h.end:
        t1 = t + 3600
        in_hour = [r for r in h.requests if t <= r.requested_at < t1 and not r.alternative_of]
        ids = {r.request_id for r in in_hour}
        waits = []
        for rid, tb in h.boarded.items():
            if not t <= tb < t1 or rid not in by_id:
                continue
            want = desired_pickup(by_id[rid], h.offers.get(rid, (0.0, None))[1])
            if want is not None:
                waits.append(max(0.0, tb - want))
        metres = person_m = 0.0
        for s in h.segments:
            overlap = min(s.t1, t1) - max(s.t0, t)
            if overlap <= 0 or s.t1 <= s.t0:
                continue
            m = s.metres * overlap / (s.t1 - s.t0)
            metres += m
            person_m += m * s.persons
        rows.append(
            HourRow(
                hour_start=t,
                requests=len(in_hour),
                served=len(ids & served_ids),
                rejected=len(ids & rejected_ids),
                wait_mean_s=_mean(waits),
                wait_p90_s=percentile(waits, 90),
                occupancy_mean=person_m / metres if metres else None,
                vehicle_km=metres / 1000,
            )
        )
        t = t1
    return rows
