"""A benchmark instance: the integer :class:`Problem` plus the float data it came from.

Benchmark files give coordinates and times in float minutes with Euclidean
travel times. The model wants integers, so readers multiply by ``scale``
(default :data:`DEFAULT_SCALE` = 1000, i.e. milli-minutes):

* travel times are rounded **up** (``ceil(scale * d - 1e-6)``). Every integer
  schedule is then also feasible with the exact float travel times (keep the
  same service start times: arcs only got longer), so a plan the checker
  accepts is truly feasible. The price is at most ``1/scale`` minute per arc,
  so a float-feasible plan whose ride times or windows are tight to within a
  few thousandths of a minute may become infeasible after scaling. With
  scale 1000 that is 0.001 min per arc against a 30 min ride-time limit.
* distances (the objective) are rounded to nearest; the reported cost is
  always recomputed from the float coordinates (:meth:`BenchmarkInstance.cost`).
* windows, service times, ride-time and route-duration limits are multiplied
  and rounded (files carry at most three decimals, so this is exact at 1000).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

from solvers.model import Plan, Problem

#: Integer units per minute used by the readers.
DEFAULT_SCALE = 1000


@dataclass(frozen=True, slots=True)
class BenchmarkInstance:
    """A parsed benchmark file.

    ``node_ids[loc]`` is the file's node id of location ``loc`` of the problem;
    ``coords[loc]`` its float coordinates; request ids are the pickup node ids
    as strings. ``kind`` is ``"darp"`` or ``"pdptw"``.
    """

    name: str
    kind: str
    problem: Problem
    scale: int
    coords: tuple[tuple[float, float], ...]
    node_ids: tuple[int, ...]
    depot_nodes: frozenset[int]

    def euclid(self, a: int, b: int) -> float:
        (xa, ya), (xb, yb) = self.coords[a], self.coords[b]
        return math.hypot(xa - xb, ya - yb)

    def cost(self, plan: Plan) -> float:
        """Total float Euclidean length of the plan's routes, in the file's units."""
        vehicles = {v.id: v for v in self.problem.vehicles}
        total = 0.0
        for route in plan.routes:
            if not route.stops:
                continue
            v = vehicles[route.vehicle_id]
            locs = [v.start, *(s.location for s in route.stops), v.end]
            total += sum(self.euclid(a, b) for a, b in itertools.pairwise(locs))
        return total

    def vehicles_used(self, plan: Plan) -> int:
        return sum(1 for r in plan.routes if r.stops)

    def to_minutes(self, t: int) -> float:
        return t / self.scale


def scaled_matrices(
    coords: list[tuple[float, float]], scale: int
) -> tuple[tuple[tuple[int, ...], ...], tuple[tuple[int, ...], ...]]:
    """(duration, distance): Euclidean times scale, durations rounded up, distances to nearest."""
    dur: list[tuple[int, ...]] = []
    dist: list[tuple[int, ...]] = []
    for xa, ya in coords:
        row_t: list[int] = []
        row_d: list[int] = []
        for xb, yb in coords:
            d = math.hypot(xa - xb, ya - yb) * scale
            row_t.append(max(0, math.ceil(d - 1e-6)))
            row_d.append(round(d))
        dur.append(tuple(row_t))
        dist.append(tuple(row_d))
    return tuple(dur), tuple(dist)


def scaled(x: float, scale: int) -> int:
    return round(x * scale)
