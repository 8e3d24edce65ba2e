"""Simulated passengers: a seeded, time-ordered stream of ride requests and cancellations.

Trips are drawn with a gravity model: the origin stop by the population it stands
for, the destination by ``population * exp(-distance / d0)`` (so most trips stay
within or between neighbouring municipalities), and a share ``hub_share`` of trips
goes to or comes from a railway hub (mostly Rendsburg station). Desired times follow
the scenario's hourly profile as a Poisson process per hour. Some rides are
pre-booked (30 minutes to a day ahead, by departure or by arrival), the rest are
immediate; a few are for groups or need a wheelchair place, and a few are cancelled
later. The same seed always gives the same events (ids included).
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, replace

import numpy as np

from dispatcher.clock import to_datetime
from dispatcher.geo import TravelModel, haversine_m
from producers.scenario import DemandSettings, Scenario, Stop
from schemas.envelope import Event, Place
from schemas.passenger import RideCancelledV1, RideRequestedV1, TimeType

SOURCE = "sim:demand"
_NAMESPACE = uuid.UUID("6f1c2a55-0b7e-4c6a-9d43-2f8f0e1d7a10")


@dataclass(frozen=True, slots=True)
class DemandOptions:
    """Knobs on top of the scenario's :class:`DemandSettings`.

    ``scale`` multiplies the hourly profile. ``prebook_min_s``/``prebook_max_s``
    bound the booking lead of pre-booked rides. Requests whose booking time falls
    before ``start`` are delivered at ``start`` (they were made before the simulated
    period). ``cutoff_s`` stops desired pickups that long before ``end`` (a ride
    that could not finish before the shifts end is not booked).
    """

    scale: float = 1.0
    prebook_min_s: float = 1800.0
    prebook_max_s: float = 86_400.0
    immediate_cancel_max_s: float = 900.0
    cutoff_s: float = 1800.0
    round_prebook_s: int = 300


def _uuid(seed: int, text: str) -> uuid.UUID:
    return uuid.uuid5(_NAMESPACE, f"{seed}:{text}")


def _place(s: Stop) -> Place:
    return Place(lat=s.lat, lon=s.lon, stop_id=s.id, name=s.name)


class DemandModel:
    """The gravity model over a scenario's stops; draws (origin, destination) pairs."""

    def __init__(self, scenario: Scenario, settings: DemandSettings | None = None) -> None:
        self.scenario = scenario
        self.settings = settings or scenario.demand
        self.stops = scenario.stops
        self.hubs = scenario.hubs
        pts = np.radians(np.array([[s.lat, s.lon] for s in self.stops]))
        lat, lon = pts[:, 0], pts[:, 1]
        dlat = lat[:, None] - lat[None, :]
        dlon = lon[:, None] - lon[None, :]
        h = (
            np.sin(dlat / 2) ** 2
            + np.cos(lat)[:, None] * np.cos(lat)[None, :] * np.sin(dlon / 2) ** 2
        )
        self.distance_m = 2 * 6_371_000.0 * np.arcsin(np.minimum(1.0, np.sqrt(h)))
        weight = np.array([s.weight for s in self.stops], dtype=float)
        self.origin_p = weight / weight.sum()
        gravity = weight[None, :] * np.exp(-self.distance_m / self.settings.distance_decay_m)
        gravity[self.distance_m < self.settings.min_trip_m] = 0.0
        rows = gravity.sum(axis=1, keepdims=True)
        self.dest_p = gravity / np.where(rows > 0, rows, 1.0)
        # Hubs attract by their traffic: long-distance stations much more than halts.
        hub_w = np.array([5.0 if h.id == "rail-ar" else 1.0 for h in self.hubs], dtype=float)
        self.hub_p = hub_w / hub_w.sum() if len(self.hubs) else hub_w

    def pickup_shares(self) -> list[tuple[Stop, float]]:
        """Each stop and hub with its expected share of the pickups (summing to 1).

        What :meth:`draw_od` draws, in expectation: a trip starts at a stop by its
        population, except the ``hub_share`` of trips to or from a hub, which start
        at the hub half of the time. Rebalancing places idle vehicles by it.
        """
        hub = self.settings.hub_share if len(self.hubs) else 0.0
        shares = [
            (s, float(p) * (1 - hub / 2)) for s, p in zip(self.stops, self.origin_p, strict=True)
        ]
        shares += [(h, float(p) * hub / 2) for h, p in zip(self.hubs, self.hub_p, strict=True)]
        return shares

    def draw_od(self, rng: np.random.Generator) -> tuple[Stop, Stop]:
        """One origin-destination pair of distinct places at least ``min_trip_m`` apart."""
        while True:
            o = int(rng.choice(len(self.stops), p=self.origin_p))
            if self.hubs and rng.random() < self.settings.hub_share:
                hub = self.hubs[int(rng.choice(len(self.hubs), p=self.hub_p))]
                stop = self.stops[o]
                if haversine_m(stop.point, hub.point) < self.settings.min_trip_m:
                    continue
                return (hub, stop) if rng.random() < 0.5 else (stop, hub)
            row = self.dest_p[o]
            if row.sum() <= 0:
                continue
            d = int(rng.choice(len(self.stops), p=row))
            return self.stops[o], self.stops[d]


def generate_demand(
    scenario: Scenario,
    start: float,
    end: float,
    seed: int,
    options: DemandOptions | None = None,
    settings: DemandSettings | None = None,
) -> list[tuple[float, Event]]:
    """All ride requests (and cancellations) for desired times in ``[start, end - cutoff)``.

    Returns ``(delivery time, event)`` pairs sorted by time; ``occurred_at`` of each
    event equals its delivery time. Deterministic for a seed.
    """
    opts = options or DemandOptions()
    cfg = settings or scenario.demand
    model = DemandModel(scenario, cfg)
    travel = scenario.travel()
    rng = np.random.default_rng(seed)
    last = end - opts.cutoff_s
    out: list[tuple[float, Event]] = []
    n = 0
    hour_start = math.floor(start / 3600) * 3600
    t0 = hour_start
    while t0 < last:
        lo, hi = max(t0, start), min(t0 + 3600, last)
        rate = cfg.requests_per_hour[scenario.local_hour(t0)] * opts.scale
        count = int(rng.poisson(rate * (hi - lo) / 3600)) if hi > lo else 0
        times = np.sort(rng.uniform(lo, hi, size=count))
        for desired in times:
            n += 1
            out.extend(_one_request(scenario, model, travel, rng, seed, n, float(desired),
                                    start, cfg, opts))  # fmt: skip
        t0 += 3600
    out.sort(key=lambda te: (te[0], te[1].type != "ride.requested"))
    return out


def _one_request(
    scenario: Scenario,
    model: DemandModel,
    travel: TravelModel,
    rng: np.random.Generator,
    seed: int,
    n: int,
    desired: float,
    start: float,
    cfg: DemandSettings,
    opts: DemandOptions,
) -> list[tuple[float, Event]]:
    origin, destination = model.draw_od(rng)
    seats = 1 + int(rng.choice(len(cfg.seats_weights), p=np.array(cfg.seats_weights) /
                               sum(cfg.seats_weights)))  # fmt: skip
    wheelchairs = 0
    if rng.random() < cfg.wheelchair_share:
        wheelchairs, seats = 1, int(rng.random() < 0.3)  # sometimes with a companion
    prebooked = rng.random() < cfg.prebooked_share
    arrival = prebooked and rng.random() < cfg.arrival_share
    lead = 0.0
    requested = None
    time_type = TimeType.DEPARTURE
    if prebooked:
        # Log-uniform lead: most pre-bookings are made an hour or two ahead.
        lead = math.exp(rng.uniform(math.log(opts.prebook_min_s), math.log(opts.prebook_max_s)))
        step = opts.round_prebook_s
        target = math.ceil(desired / step) * step
        if arrival:
            time_type = TimeType.ARRIVAL
            direct_s, _ = travel.leg(origin.point, destination.point)
            target = math.ceil((desired + direct_s + 600) / step) * step
        requested = target
    booked = max(start, desired - lead)
    request_id = f"r{seed}-{n:05d}"
    event = RideRequestedV1(
        event_id=_uuid(seed, request_id),
        occurred_at=to_datetime(booked),
        source=SOURCE,
        request_id=request_id,
        passenger_ref=f"p{seed}-{int(rng.integers(0, 10**8)):08d}",
        zone=scenario.zone,
        origin=_place(origin),
        destination=_place(destination),
        seats=seats,
        wheelchairs=wheelchairs,
        time_type=time_type,
        requested_time=to_datetime(requested) if requested is not None else None,
    )
    out: list[tuple[float, Event]] = [(booked, event)]
    if rng.random() < cfg.cancel_share:
        pickup_by = desired if prebooked else booked + opts.immediate_cancel_max_s
        at = booked + float(rng.uniform(0.1, 0.9)) * max(60.0, pickup_by - booked)
        out.append(
            (
                at,
                RideCancelledV1(
                    event_id=_uuid(seed, f"{request_id}:cancel"),
                    occurred_at=to_datetime(at),
                    source=SOURCE,
                    request_id=request_id,
                    zone=scenario.zone,
                    reason="plans changed",
                ),
            )
        )
    return out


def iter_demand(
    scenario: Scenario, start: float, end: float, seed: int, options: DemandOptions | None = None
) -> Iterator[tuple[float, Event]]:
    """:func:`generate_demand` as an iterator."""
    yield from generate_demand(scenario, start, end, seed, options)


def with_profile(settings: DemandSettings, requests_per_hour: list[float]) -> DemandSettings:
    """A copy of ``settings`` with another hourly profile (24 values)."""
    return replace(settings, requests_per_hour=tuple(float(x) for x in requests_per_hour))
