"""Cordeau (2006) a/b and Cordeau & Laporte (2003) pr DARP instances.

Header ``m n T Q L`` (vehicles, n, max route duration, capacity, max ride
time), then ``i x y d q e l`` per node. Two layouts exist:

* a/b files: ``n`` requests, nodes ``0 .. 2n+1``; node ``2n+1`` is the end depot.
* pr files: the second header field is the number of *nodes* ``2n``; there is
  a single depot line (node 0), which is also the end depot.

The layout is recognised from the number of node lines, not the file name.
Vehicles start at the depot at its earliest time, must be back by the depot's
latest time and drive at most ``T`` (from leaving to returning). Every request
is mandatory. Travel time = cost = Euclidean distance (see
:mod:`solvers.readers.instance` for the integer scaling).
"""

from __future__ import annotations

from pathlib import Path

from solvers.model import Problem, Request, TimeWindow, Vehicle
from solvers.readers.instance import DEFAULT_SCALE, BenchmarkInstance, scaled, scaled_matrices


def read_cordeau(path: Path, scale: int = DEFAULT_SCALE) -> BenchmarkInstance:
    """Parse a Cordeau DARP file (a/b or pr layout) into a :class:`BenchmarkInstance`."""
    lines = [ln.split() for ln in Path(path).read_text().splitlines() if ln.strip()]
    header, rows = lines[0], lines[1:]
    m, n_field, t_max, q, l_max = (float(x) for x in header[:5])
    nodes = [[float(x) for x in r[:7]] for r in rows]
    n_field_i = int(n_field)
    if len(nodes) == 2 * n_field_i + 2:
        n, end_node = n_field_i, 2 * n_field_i + 1
    elif len(nodes) == n_field_i + 1 and n_field_i % 2 == 0:
        n, end_node = n_field_i // 2, 0
    else:
        msg = f"{path}: {len(nodes)} node lines fit neither a/b nor pr layout (header {header})"
        raise ValueError(msg)
    by_id = {int(node[0]): node for node in nodes}
    ids = sorted(by_id)
    if ids != list(range(len(nodes))):
        msg = f"{path}: node ids are not 0..{len(nodes) - 1}"
        raise ValueError(msg)
    coords = [(by_id[i][1], by_id[i][2]) for i in ids]
    duration, distance = scaled_matrices(coords, scale)
    depot = by_id[0]
    end = by_id[end_node]
    vehicles = tuple(
        Vehicle(
            id=str(k),
            start=0,
            end=end_node,
            start_time=scaled(depot[5], scale),
            end_time=scaled(end[6], scale),
            seats=int(q),
            wheelchairs=0,
            max_duration=scaled(t_max, scale),
        )
        for k in range(int(m))
    )
    requests = []
    for i in range(1, n + 1):
        p, d = by_id[i], by_id[n + i]
        requests.append(
            Request(
                id=str(i),
                pickup=i,
                dropoff=n + i,
                pickup_window=TimeWindow(scaled(p[5], scale), scaled(p[6], scale)),
                dropoff_window=TimeWindow(scaled(d[5], scale), scaled(d[6], scale)),
                seats=max(1, int(p[4])),
                pickup_service=scaled(p[3], scale),
                dropoff_service=scaled(d[3], scale),
                max_ride_time=scaled(l_max, scale),
            )
        )
    name = Path(path).stem
    problem = Problem(duration, distance, vehicles, tuple(requests), name=name)
    return BenchmarkInstance(
        name=name,
        kind="darp",
        problem=problem,
        scale=scale,
        coords=tuple(coords),
        node_ids=tuple(ids),
        depot_nodes=frozenset({0, end_node}),
    )
