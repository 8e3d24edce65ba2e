"""Benchmark readers: header quirks, scaling, bks values, and known solutions re-checked."""

from __future__ import annotations

import math
import re
from pathlib import Path

from solvers.check import check_plan
from solvers.model import Plan, StopKind, StopRef
from solvers.readers import BenchmarkInstance, load_bks, read_cordeau, read_lilim
from solvers.schedule import Infeasible, schedule_route


def test_cordeau_a_instance_layout(cordeau_ab: Path):
    """a2-16: 2 vehicles, 16 requests, nodes 0..33 with end depot 33, T=480, Q=3, L=30."""
    inst = read_cordeau(cordeau_ab / "a2-16.txt")
    p = inst.problem
    assert inst.name == "a2-16"
    assert p.n_locations == 34
    assert len(p.vehicles) == 2
    assert len(p.requests) == 16
    v = p.vehicles[0]
    assert (v.start, v.end, v.seats, v.max_duration) == (0, 33, 3, 480 * inst.scale)
    assert (v.start_time, v.end_time) == (0, 480 * inst.scale)
    r = p.request("1")
    assert (r.pickup, r.dropoff) == (1, 17)
    assert r.max_ride_time == 30 * inst.scale
    assert r.pickup_service == 3 * inst.scale
    assert all(req.penalty is None for req in p.requests)
    assert inst.depot_nodes == frozenset({0, 33})


def test_cordeau_pr_header_counts_nodes(cordeau_pr: Path):
    """pr01's second header field (48) is the node count: 24 requests, one depot line."""
    inst = read_cordeau(cordeau_pr / "pr01")
    p = inst.problem
    assert len(p.requests) == 24
    assert p.n_locations == 49
    assert len(p.vehicles) == 3
    assert all(v.end == 0 and v.start == 0 for v in p.vehicles)
    assert p.request("24").dropoff == 48
    assert p.vehicles[0].seats == 6
    assert p.requests[0].max_ride_time == 90 * inst.scale


def test_scaled_durations_never_shorter_than_float(cordeau_ab: Path):
    """Travel times round up (integer-feasible implies float-feasible); costs round."""
    inst = read_cordeau(cordeau_ab / "a2-16.txt")
    p = inst.problem
    for a in range(0, p.n_locations, 5):
        for b in range(p.n_locations):
            exact = inst.euclid(a, b) * inst.scale
            assert exact <= p.duration[a][b] < exact + 1
            assert abs(p.distance[a][b] - exact) <= 0.5


def test_lilim_layout(lilim_100: Path):
    """lc101: 25 vehicles of capacity 200, pairs from the sibling columns, vehicle cost."""
    inst = read_lilim(lilim_100 / "lc101.txt")
    p = inst.problem
    assert len(p.vehicles) == 25
    assert p.vehicles[0].seats == 200
    assert p.vehicles[0].end_time == 1236 * inst.scale
    assert p.vehicles[0].fixed_cost > 0
    assert len(p.requests) == 53
    lines = (lilim_100 / "lc101.txt").read_text().split("\n")
    fields = lines[3].split()  # task 2: a delivery whose pickup is task 6 in lc101
    assert int(fields[7]) == p.request(fields[7]).pickup
    assert p.request(fields[7]).dropoff == int(fields[0])
    assert all(r.max_ride_time is None for r in p.requests)


def test_bks_values(benchmarks: Path):
    """DARP bks: pr04 takes the verified upper bound; Li & Lim: vehicles and distance."""
    darp = load_bks(benchmarks / "darp-cordeau" / "bks.csv")
    assert darp["a2-16"].value == 294.25
    assert darp["pr04"].value == 572.78
    assert darp["a3-18"].value == 300.48
    lilim = load_bks(benchmarks / "pdptw-lilim" / "bks.csv")
    assert lilim["lc101"].vehicles == 10
    assert math.isclose(lilim["lc101"].value, 828.9369)


def plan_from_sequences(inst: BenchmarkInstance, routes: list[list[int]]) -> Plan:
    """Schedule node sequences (file ids, depot excluded) on the instance's vehicles."""
    loc_of = {node: loc for loc, node in enumerate(inst.node_ids)}
    kind_of: dict[int, tuple[str, StopKind]] = {}
    for r in inst.problem.requests:
        kind_of[inst.node_ids[r.pickup]] = (r.id, StopKind.PICKUP)
        kind_of[inst.node_ids[r.dropoff]] = (r.id, StopKind.DROPOFF)
    out = []
    for v, nodes in zip(inst.problem.vehicles, routes, strict=False):
        stops = [StopRef(*kind_of[n]) for n in nodes if loc_of[n] not in inst.depot_nodes]
        route = schedule_route(inst.problem, v.id, stops)
        assert not isinstance(route, Infeasible), (v.id, route)
        out.append(route)
    return Plan(tuple(out), ())


def test_lilim_bks_solution_is_feasible_and_costs_the_bks(benchmarks: Path, lilim_100: Path):
    """The SINTEF lc101 routes, scheduled by us, pass the checker at 828.94 with 10 vehicles."""
    inst = read_lilim(lilim_100 / "lc101.txt")
    text = benchmarks / "pdptw-lilim" / "solutions" / "pdp_100" / "lc101.10_828.9369.txt"
    routes = [
        [int(x) for x in line.split(":")[1].split()]
        for line in text.read_text().splitlines()
        if line.startswith("Route")
    ]
    plan = plan_from_sequences(inst, routes)
    assert check_plan(inst.problem, plan) == []
    assert inst.vehicles_used(plan) == 10
    assert math.isclose(inst.cost(plan), 828.9369, abs_tol=1e-3)


def test_cordeau_tabu_solution_is_feasible(benchmarks: Path, cordeau_pr: Path):
    """Cordeau & Laporte's pr01 solution (a ride exactly at L) survives the scaling."""
    inst = read_cordeau(cordeau_pr / "pr01")
    res = benchmarks / "darp-cordeau" / "solutions" / "cordeau_laporte2003_tabu" / "pr01.res"
    routes = [
        [int(x) for x in re.findall(r"(\d+) \(", line)]
        for line in res.read_text().splitlines()[1:]
        if line.strip()
    ]
    plan = plan_from_sequences(inst, routes)
    assert check_plan(inst.problem, plan) == []
    assert math.isclose(inst.cost(plan), 190.02, abs_tol=0.01)
