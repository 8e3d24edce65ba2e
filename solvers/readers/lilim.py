"""Li & Lim PDPTW instances (tab-separated).

Header ``K Q S`` (vehicles, capacity, speed: unused), then
``i x y q e l s p d`` per task, ``i = 0`` the depot. A pickup has ``p = 0`` and
``d`` = its delivery; a delivery has ``p`` = its pickup. Travel time = distance
= Euclidean. No ride-time limit. Solutions rank by vehicles first, distance
second: every vehicle carries ``fixed_cost`` = :data:`VEHICLE_COST_MINUTES`
distance units (far above any distance one vehicle less could add).
"""

from __future__ import annotations

from pathlib import Path

from solvers.model import Problem, Request, TimeWindow, Vehicle
from solvers.readers.instance import DEFAULT_SCALE, BenchmarkInstance, scaled, scaled_matrices

#: Fixed cost of a vehicle in (unscaled) distance units.
VEHICLE_COST_MINUTES = 10_000


def read_lilim(path: Path, scale: int = DEFAULT_SCALE) -> BenchmarkInstance:
    """Parse a Li & Lim PDPTW file into a :class:`BenchmarkInstance`."""
    lines = [ln.split() for ln in Path(path).read_text().splitlines() if ln.strip()]
    header, rows = lines[0], lines[1:]
    k, q = int(float(header[0])), int(float(header[1]))
    tasks = {int(r[0]): [float(x) for x in r[1:9]] for r in rows}
    ids = sorted(tasks)
    if ids != list(range(len(tasks))):
        msg = f"{path}: task ids are not 0..{len(tasks) - 1}"
        raise ValueError(msg)
    coords = [(tasks[i][0], tasks[i][1]) for i in ids]
    duration, distance = scaled_matrices(coords, scale)
    depot = tasks[0]
    vehicles = tuple(
        Vehicle(
            id=str(v),
            start=0,
            end=0,
            start_time=scaled(depot[3], scale),
            end_time=scaled(depot[4], scale),
            seats=q,
            wheelchairs=0,
            fixed_cost=VEHICLE_COST_MINUTES * scale,
        )
        for v in range(k)
    )
    requests = []
    for i in ids[1:]:
        _x, _y, demand, early, late, s, p, d = tasks[i]
        if p != 0:
            continue  # a delivery; read with its pickup
        j = int(d)
        de = tasks[j]
        if int(de[6]) != i:
            msg = f"{path}: pickup {i} names delivery {j}, which names pickup {int(de[6])}"
            raise ValueError(msg)
        requests.append(
            Request(
                id=str(i),
                pickup=i,
                dropoff=j,
                pickup_window=TimeWindow(scaled(early, scale), scaled(late, scale)),
                dropoff_window=TimeWindow(scaled(de[3], scale), scaled(de[4], scale)),
                seats=max(1, int(demand)),
                pickup_service=scaled(s, scale),
                dropoff_service=scaled(de[5], scale),
            )
        )
    name = Path(path).stem
    problem = Problem(duration, distance, vehicles, tuple(requests), name=name)
    return BenchmarkInstance(
        name=name,
        kind="pdptw",
        problem=problem,
        scale=scale,
        coords=tuple(coords),
        node_ids=tuple(ids),
        depot_nodes=frozenset({0}),
    )
