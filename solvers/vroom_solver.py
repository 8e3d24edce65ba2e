"""VROOM (pyvroom) on the same :class:`Problem`, for comparison in ``drt bench``.

Requests become shipments (pickup and delivery steps with time windows and
service times, amount ``[seats, wheelchairs]``); passengers on board become
delivery jobs carried from the start; ``allowed_vehicles`` become skills;
mandatory requests get the highest priority; vehicle fixed costs are VROOM
fixed costs; the cost matrix is the problem's distance matrix.

VROOM cannot express maximum ride times or route durations. The plan keeps
VROOM's own times (arrival, waiting, service), so :func:`solvers.check.check_plan`
reports whatever ride-time or duration limits it breaks. Exploration level 5,
one thread, the time limit as VROOM's timeout.
"""

from __future__ import annotations

import itertools
import time
from datetime import timedelta
from typing import Any

import vroom

from solvers.model import (
    Plan,
    Problem,
    Request,
    Route,
    SolveLimits,
    SolveStats,
    Stop,
    StopKind,
    Unassigned,
)

_U32 = (1 << 32) - 1


def _clip(t: int) -> int:
    return max(0, min(int(t), _U32))


def vroom_solve(problem: Problem, limits: SolveLimits, *, seed: int = 0) -> Plan:
    """Solve with VROOM. Implements :class:`~solvers.base.Solver` (``seed`` is unused:
    VROOM with one thread is deterministic)."""
    del seed
    t0 = time.monotonic()
    vrp = vroom.Input()
    vrp.set_durations_matrix(
        profile="car", matrix_input=[[_clip(x) for x in row] for row in problem.duration]
    )
    vrp.set_costs_matrix(
        profile="car", matrix_input=[[_clip(x) for x in row] for row in problem.distance]
    )
    vindex = {v.id: k for k, v in enumerate(problem.vehicles)}
    skill_sets: dict[tuple[int, ...], int] = {}

    def skills_for(ids: tuple[str, ...]) -> set[int]:
        key = tuple(sorted(vindex[x] for x in ids))
        return {skill_sets.setdefault(key, len(skill_sets) + 1)}

    skills_of: dict[str, set[int]] = {}
    for r in problem.requests:
        allowed = (r.onboard_vehicle,) if r.onboard_vehicle is not None else r.allowed_vehicles
        if allowed is not None:
            skills_of[r.id] = skills_for(tuple(allowed))
    vehicle_skills: list[set[int]] = [set() for _ in problem.vehicles]
    for key, skill in skill_sets.items():
        for k in key:
            vehicle_skills[k].add(skill)
    for k, v in enumerate(problem.vehicles):
        vrp.add_vehicle(
            vroom.Vehicle(
                id=k,
                start=v.start,
                end=v.end,
                capacity=[v.seats, v.wheelchairs],
                skills=vehicle_skills[k],
                time_window=vroom.TimeWindow(_clip(v.start_time), _clip(v.end_time)),
                costs=vroom.VehicleCosts(fixed=v.fixed_cost),
            )
        )
    by_step: dict[tuple[str, int], tuple[Request, StopKind]] = {}
    for i, r in enumerate(problem.requests):
        amount = vroom.Amount([r.seats, r.wheelchairs])
        priority = 100 if r.penalty is None else 0
        skills = skills_of.get(r.id)
        dw = r.dropoff_window
        if r.onboard_vehicle is not None:
            vrp.add_job(
                vroom.Job(
                    id=i,
                    location=r.dropoff,
                    default_service=r.dropoff_service,
                    delivery=amount,
                    skills=skills,
                    priority=priority,
                    time_windows=[vroom.TimeWindow(_clip(dw.earliest), _clip(dw.latest))],
                )
            )
            by_step["job", i] = (r, StopKind.DROPOFF)
            continue
        pw = r.pickup_window
        vrp.add_shipment(
            vroom.ShipmentStep(
                i,
                r.pickup,
                default_service=r.pickup_service,
                time_windows=[vroom.TimeWindow(_clip(pw.earliest), _clip(pw.latest))],
            ),
            vroom.ShipmentStep(
                i,
                r.dropoff,
                default_service=r.dropoff_service,
                time_windows=[vroom.TimeWindow(_clip(dw.earliest), _clip(dw.latest))],
            ),
            amount=amount,
            skills=skills,
            priority=priority,
        )
        by_step["pickup", i] = (r, StopKind.PICKUP)
        by_step["delivery", i] = (r, StopKind.DROPOFF)
    solution: dict[str, Any] = vrp.solve(
        exploration_level=5, nb_threads=1, timeout=timedelta(seconds=limits.time_limit)
    ).to_dict()
    routes: dict[str, Route] = {}
    dist = problem.distance
    for vr in solution.get("routes", []):
        v = problem.vehicles[int(vr["vehicle"])]
        stops: list[Stop] = []
        start = end = v.start_time
        for step in vr["steps"]:
            kind = step["type"]
            if kind == "start":
                start = int(step["arrival"])
                continue
            if kind == "end":
                end = int(step["arrival"])
                continue
            r, sk = by_step[kind, int(step["id"])]
            begin = int(step["arrival"]) + int(step["waiting_time"])
            stops.append(
                Stop(
                    r.id,
                    sk,
                    int(step["location_index"]),
                    int(step["arrival"]),
                    begin,
                    begin + int(step["service"]),
                )
            )
        locs = [v.start, *(s.location for s in stops), v.end]
        distance = sum(dist[a][b] for a, b in itertools.pairwise(locs))
        routes[v.id] = Route(v.id, tuple(stops), start, end, distance)
    for v in problem.vehicles:
        if v.id not in routes:
            end = v.start_time + problem.duration[v.start][v.end]
            routes[v.id] = Route(v.id, (), v.start_time, end, dist[v.start][v.end])
    served = {s.request_id for r in routes.values() for s in r.stops}
    unassigned = tuple(
        Unassigned(r.id, "unassigned_by_vroom") for r in problem.requests if r.id not in served
    )
    runtime = time.monotonic() - t0
    cost = int(solution.get("summary", {}).get("cost", 0))
    return Plan(
        tuple(routes[v.id] for v in problem.vehicles),
        unassigned,
        SolveStats("vroom", cost, runtime, runtime >= 0.95 * limits.time_limit),
    )
