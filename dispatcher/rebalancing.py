"""Idle vehicles sent to standby points where the next requests are expected. Pure.

In a rural region a vehicle that waits where it dropped its last passenger may be
too far from where the next request comes up for its 15-minute pickup window. As
MATSim's DRT rebalancing does with its zones and expected demand, the core can send
a vehicle idle for a while to a *standby point*: a few places chosen once from the
expected pickups (a weighted p-median of the demand points, :func:`standby_points`),
each vehicle to the most useful point nobody covers yet within reach (:func:`assign`).

Off by default (no points): on the simulated Rendsburg day it changed served rides
and vehicle-km by no more than 2-3 % either way (demand x1-x3, seeds 1-4). Busy
vehicles are rarely idle for long at high demand, and at low demand nearly every
request is served anyway; the depot and most drop-offs are in Rendsburg, where most
pickups are expected. It is for regions and fleets where idle vehicles end up far
from the demand.

A relocation is a driver plan without stops and with ``standby``: it promises
nothing, so a new request is inserted into it from where the vehicle is on its way
(``planning.heading`` is the standby point) and the standby is dropped.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from dispatcher.geo import LatLon, haversine_many


@dataclass(frozen=True, slots=True)
class StandbyPoint:
    """A place idle vehicles wait at; ``weight`` is the share of the expected pickups
    nearest to it (the demand it covers)."""

    id: str
    lat: float
    lon: float
    weight: float = 1.0
    name: str | None = None

    @property
    def point(self) -> LatLon:
        return LatLon(self.lat, self.lon)


@dataclass(frozen=True, slots=True)
class RebalancingConfig:
    """When and how far the core relocates idle vehicles (off without standby points).

    A vehicle qualifies when it has had no stops and nobody on board for ``idle_s``,
    is on shift for at least ``shift_left_s`` more, and has no break planned or
    due within ``break_margin_s``. It goes to a point no other vehicle covers (a
    vehicle covers the point it is sent to, or one within ``cover_m`` of where it
    waits), at most ``max_distance_m`` (straight line) away; none such: it stays.
    A vehicle waiting at a standby point is called back in time for its break.
    """

    standby: tuple[StandbyPoint, ...] = ()
    idle_s: float = 300.0
    max_distance_m: float = 12_000.0
    cover_m: float = 2_000.0
    shift_left_s: float = 3600.0
    break_margin_s: float = 2700.0
    #: a vehicle at a standby point leaves for its planned break (at the depot) this
    #: long before it would have to
    recall_margin_s: float = 300.0

    @property
    def enabled(self) -> bool:
        return bool(self.standby)


def standby_points(
    candidates: Sequence[tuple[str, LatLon, float]],
    k: int,
    names: dict[str, str] | None = None,
) -> tuple[StandbyPoint, ...]:
    """``k`` standby points among ``candidates`` ``(id, point, expected pickups)``.

    A weighted p-median: the points minimising the pickups' total straight-line
    distance to their nearest standby point (greedy additions, then single swaps
    while one improves), so that a vehicle waiting at each is near as many of the
    expected requests as ``k`` vehicles can be. Each point's ``weight`` is the
    share of the pickups nearest to it. Deterministic (ties by candidate order).
    """
    weighted = [(cid, p, w) for cid, p, w in candidates if w > 0]
    if k <= 0 or not weighted:
        return ()
    k = min(k, len(weighted))
    points = [p for _, p, _ in weighted]
    weights = np.array([w for _, _, w in weighted], dtype=float)
    dist = np.array([haversine_many(points, p) for p in points])  # [candidate, demand]

    def cost(chosen: list[int]) -> float:
        return float(weights @ dist[chosen].min(axis=0))

    chosen: list[int] = []
    for _ in range(k):
        best = min(
            (i for i in range(len(points)) if i not in chosen),
            key=lambda i: cost([*chosen, i]),
        )
        chosen.append(best)
    current = cost(chosen)
    improved = True
    while improved:
        improved = False
        for slot in range(k):
            for i in range(len(points)):
                if i in chosen:
                    continue
                trial = [*chosen[:slot], i, *chosen[slot + 1 :]]
                c = cost(trial)
                if c < current - 1e-6:
                    chosen, current, improved = trial, c, True
    nearest = dist[chosen].argmin(axis=0)
    total = float(weights.sum())
    out = []
    for j, i in enumerate(chosen):
        cid, p, _ = weighted[i]
        share = float(weights[nearest == j].sum()) / total
        out.append(StandbyPoint(cid, p.lat, p.lon, round(share, 6), (names or {}).get(cid)))
    return tuple(sorted(out, key=lambda s: (-s.weight, s.id)))


def assign(
    idle: dict[str, LatLon],
    sent: Sequence[str],
    waiting: Sequence[LatLon],
    fleet: int,
    config: RebalancingConfig,
) -> dict[str, StandbyPoint]:
    """Standby points for idle vehicles: ``{vehicle id: point}`` (absent: it stays).

    Each point should have its share of the ``fleet`` (vehicles on shift) near it,
    ``weight * fleet``: most vehicles wait where most requests are expected, a
    village with a tenth of the demand gets a vehicle only once the town has its
    share. ``sent`` are the points other vehicles are sent to (one id each),
    ``waiting`` where other vehicles wait without one (each counts for the nearest
    point within ``cover_m``); ``idle`` where each vehicle free to move is. The
    point furthest below its share (by at least half a vehicle) takes the nearest
    idle vehicle within ``max_distance_m``, until none is below or none can reach.
    """
    points = config.standby
    if not points or not idle:
        return {}
    deficit = {s.id: s.weight * fleet for s in points}
    for sid in sent:
        if sid in deficit:
            deficit[sid] -= 1
    for p in waiting:
        metres = haversine_many([s.point for s in points], p)
        nearest = int(np.argmin(metres))
        if metres[nearest] <= config.cover_m:
            deficit[points[nearest].id] -= 1
    left = dict(sorted(idle.items()))
    out: dict[str, StandbyPoint] = {}
    open_points = list(points)
    while left and open_points:
        s = max(open_points, key=lambda s: (deficit[s.id], -points.index(s)))
        if deficit[s.id] < 0.5:
            break
        ids = list(left)
        metres = haversine_many([left[v] for v in ids], s.point)
        best = int(np.argmin(metres))
        if metres[best] > config.max_distance_m:
            open_points.remove(s)  # out of reach of every idle vehicle
            continue
        out[ids[best]] = s
        del left[ids[best]]
        deficit[s.id] -= 1
    return out
