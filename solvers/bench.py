"""Benchmark runs: one solve per instance file, gaps to best-known values, a plot.

:func:`bench_solver` backs ``drt bench solver`` and :func:`plot_gap_vs_budget`
backs ``drt bench plot``. Costs are reported in the instance's own float units
(recomputed from its coordinates, see :mod:`solvers.readers.instance`), node ids
are the file's. Every plan is checked with :func:`solvers.check.check_plan`
and flagged when infeasible; an infeasible plan gets no gap in the mean.

This module does I/O (it reads instances and writes results); the solvers it
calls do not.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from solvers.base import Solver
from solvers.check import check_plan
from solvers.model import Plan, SolveLimits
from solvers.readers import BenchmarkInstance, Bks, load_bks, read_cordeau, read_lilim

READERS: dict[str, Callable[[Path], BenchmarkInstance]] = {
    "darp": read_cordeau,
    "pdptw": read_lilim,
}


def solver_by_name(name: str) -> Solver:
    """``"ortools"``, ``"insertion"`` or ``"vroom"`` (imported lazily)."""
    if name == "ortools":
        from solvers.ortools_pdp import ortools_solve  # noqa: PLC0415

        return ortools_solve
    if name == "insertion":
        from solvers.insertion import insertion_solve  # noqa: PLC0415

        return insertion_solve
    if name == "vroom":
        from solvers.vroom_solver import vroom_solve  # noqa: PLC0415

        return vroom_solve
    raise ValueError(f"unknown solver {name!r}: ortools, insertion or vroom")


def instance_files(instances: Path) -> list[Path]:
    """Instance files of a directory, sorted (extension ``.txt`` or none)."""
    return sorted(
        p
        for p in Path(instances).iterdir()
        if p.is_file() and not p.name.startswith(".") and p.suffix in ("", ".txt")
    )


def find_bks(instances: Path) -> Path | None:
    """``bks.csv`` in the instances folder or up to two levels above it."""
    here = Path(instances).resolve()
    for folder in (here, here.parent, here.parent.parent):
        candidate = folder / "bks.csv"
        if candidate.is_file():
            return candidate
    return None


def solution_record(
    inst: BenchmarkInstance, plan: Plan, solver: str, seconds: float
) -> dict[str, Any]:
    """One entry of ``results``: cost, vehicles, feasibility and routes in file ids/units."""
    violations = check_plan(inst.problem, plan)
    vehicles = {v.id: v for v in inst.problem.vehicles}
    routes = []
    for route in plan.routes:
        if not route.stops:
            continue
        routes.append(
            {
                "vehicle": route.vehicle_id,
                "nodes": [inst.node_ids[s.location] for s in route.stops],
                "start": [round(inst.to_minutes(s.service_start), 3) for s in route.stops],
                "depart_depot": round(inst.to_minutes(route.start_time), 3),
                "back_at_depot": round(inst.to_minutes(route.end_time), 3),
            }
        )
        assert vehicles[route.vehicle_id]
    return {
        "instance": inst.name,
        "solver": solver,
        "cost": round(inst.cost(plan), 4),
        "vehicles": inst.vehicles_used(plan),
        "seconds": round(seconds, 3),
        "feasible": not violations,
        "violations": violations[:50],
        "n_violations": len(violations),
        "unassigned": [u.request_id for u in plan.unassigned],
        "routes": routes,
    }


def _gap(cost: float, ref: Bks | None) -> float | None:
    if ref is None or ref.value <= 0:
        return None
    return 100.0 * (cost - ref.value) / ref.value


def bench_solver(
    set_name: str,
    instances: Path,
    time_limit: float,
    solver: str = "ortools",
    out: Path | None = None,
    seed: int = 0,
    bks: Path | None = None,
    *,
    console: Console | None = None,
    names: Sequence[str] | None = None,
) -> list[dict[str, Any]]:
    """Solve every instance file in ``instances`` once; write and print the results.

    Parameters
    ----------
    set_name
        ``"darp"`` (Cordeau a/b and pr files) or ``"pdptw"`` (Li & Lim).
    instances
        Directory of instance files; each is solved once, in sorted order, and
        named by its stem (``a2-16``, ``pr03``, ``lc101``).
    time_limit
        Seconds per instance.
    solver
        ``"ortools"``, ``"insertion"`` or ``"vroom"``.
    out
        Where to write ``{"results": [...]}`` (JSON), or ``None``.
    seed
        Passed to the solver.
    bks
        ``bks.csv``; by default found next to the instances folder.
    console
        Where the table goes (default: stdout); ``names`` restricts the run to
        those instance stems.

    Returns
    -------
    list[dict]
        One record per instance: ``instance, solver, cost, vehicles, seconds,
        feasible, violations, routes`` (``nodes``: file node ids in visiting
        order, depot excluded; ``start``: start of service in file units) and
        ``bks, bks_vehicles, gap`` (percent, distance).
    """
    if set_name not in READERS:
        raise ValueError(f"unknown set {set_name!r}: darp or pdptw")
    read = READERS[set_name]
    solve = solver_by_name(solver)
    bks_path = bks if bks is not None else find_bks(instances)
    refs = load_bks(bks_path) if bks_path is not None else {}
    results: list[dict[str, Any]] = []
    for path in instance_files(instances):
        if names is not None and path.stem not in names:
            continue
        inst = read(path)
        plan = solve(inst.problem, SolveLimits(time_limit), seed=seed)
        record = solution_record(inst, plan, solver, plan.stats.runtime)
        ref = refs.get(inst.name)
        record["bks"] = ref.value if ref else None
        record["bks_vehicles"] = ref.vehicles if ref else None
        record["gap"] = _gap(record["cost"], ref)
        results.append(record)
    if out is not None:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        Path(out).write_text(json.dumps({"results": results}, indent=1) + "\n")
    print_table(results, set_name, time_limit, console or Console())
    return results


def mean_gap(results: Sequence[dict[str, Any]]) -> float | None:
    """Mean gap (percent) over feasible, complete results that have a best-known value.

    Where the best-known value has a vehicle count (Li & Lim), only results with
    that many vehicles count: distances of different fleet sizes do not compare.
    """
    gaps = [
        r["gap"]
        for r in results
        if r["gap"] is not None
        and r["feasible"]
        and not r.get("unassigned")
        and r.get("bks_vehicles") in (None, r["vehicles"])
    ]
    return statistics.fmean(gaps) if gaps else None


def print_table(
    results: Sequence[dict[str, Any]], set_name: str, time_limit: float, console: Console
) -> None:
    """The results as a rich table with the mean gap in the caption."""
    title = f"{set_name}: {results[0]['solver'] if results else ''}, {time_limit:g} s per instance"
    table = Table(title=title)
    for col in ("instance", "bks", "cost", "gap %", "vehicles", "seconds", "feasible"):
        table.add_column(col, justify="left" if col == "instance" else "right")
    for r in results:
        bks = "" if r["bks"] is None else f"{r['bks']:.2f}"
        vehicles = str(r["vehicles"])
        if r.get("bks_vehicles") is not None:
            vehicles += f" ({r['bks_vehicles']})"
        gap = "" if r["gap"] is None else f"{r['gap']:.2f}"
        feasible = "yes" if r["feasible"] else f"NO ({r['n_violations']})"
        if r.get("unassigned"):
            feasible += f", {len(r['unassigned'])} unserved"
        table.add_row(
            r["instance"],
            bks,
            f"{r['cost']:.2f}",
            gap,
            vehicles,
            f"{r['seconds']:.1f}",
            feasible,
        )
    mg = mean_gap(results)
    table.caption = "mean gap: " + ("n/a" if mg is None else f"{mg:.2f} %")
    if any(r.get("bks_vehicles") is not None for r in results):
        table.caption += " (distance, where vehicles equal the bks)"
    if any(r.get("bks_vehicles") is not None for r in results):
        same = sum(1 for r in results if r["vehicles"] == r.get("bks_vehicles"))
        table.caption += f"; vehicles equal to bks on {same}/{len(results)}"
    console.print(table)


def plot_gap_vs_budget(
    set_name: str,
    instances: Path,
    budgets: Sequence[float],
    solvers: Sequence[str],
    out: Path,
    seed: int = 0,
    bks: Path | None = None,
    *,
    names: Sequence[str] | None = None,
) -> Path:
    """Plot the mean gap to best-known values against the time budget, one line per solver.

    Runs :func:`bench_solver` for every (solver, budget) pair (so this takes
    ``len(solvers) * sum(budgets) * instances`` seconds at most) and writes a
    PNG to ``out``; returns ``out``. ``names`` restricts the instances. A
    budget where a solver has no feasible, complete result (VROOM on DARP: it
    cannot bound ride times) gives that solver no point.
    """
    import matplotlib  # noqa: PLC0415

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    quiet = Console(quiet=True)
    fig, ax = plt.subplots(figsize=(6, 4))
    for name in solvers:
        xs: list[float] = []
        ys: list[float] = []
        for budget in budgets:
            results = bench_solver(
                set_name, instances, budget, name, None, seed, bks, console=quiet, names=names
            )
            mg = mean_gap(results)
            if mg is not None:
                xs.append(budget)
                ys.append(mg)
        ax.plot(xs, ys, marker="o", label=name)
    ax.set_xscale("log")
    ax.set_xlabel("time budget per instance [s]")
    ax.set_ylabel("mean gap to best known [%]")
    ax.set_title(f"{set_name}: {Path(instances).name}")
    ax.grid(visible=True, which="both", alpha=0.3)
    ax.legend()
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120, bbox_inches="tight")
    plt.close(fig)
    return Path(out)


def warm_start_experiment(
    set_name: str,
    path: Path,
    *,
    new: int = 5,
    cold_limit: float = 10.0,
    warm_limit: float = 1.0,
    solver: str = "ortools",
    seed: int = 0,
    removed: int = 0,
) -> dict[str, Any]:
    """How good is a short re-solve from the previous plan after new requests arrive?

    Solves the instance without ``new`` requests (chosen with ``seed``) for
    ``cold_limit`` seconds, adds them back (and takes ``removed`` others out, as
    cancellations) and re-solves for ``warm_limit`` seconds with the first plan
    as ``problem.hint``; compares with a cold solve of that final set of requests
    for ``cold_limit`` seconds. Costs in file units.
    """
    import random  # noqa: PLC0415

    inst = READERS[set_name](Path(path))
    solve = solver_by_name(solver)
    full = inst.problem
    rng = random.Random(seed)  # noqa: S311 (sampling, not cryptography)
    ids = [r.id for r in full.requests]
    chosen = rng.sample(ids, min(new + removed, len(ids)))
    held, gone = set(chosen[:new]), set(chosen[new:])
    before = replace(full, requests=tuple(r for r in full.requests if r.id not in held))
    after = replace(full, requests=tuple(r for r in full.requests if r.id not in gone))
    first = solve(before, SolveLimits(cold_limit), seed=seed)
    warm = solve(replace(after, hint=first.hints()), SolveLimits(warm_limit), seed=seed)
    cold = solve(after, SolveLimits(cold_limit), seed=seed)
    warm_cost, cold_cost = inst.cost(warm), inst.cost(cold)
    return {
        "instance": inst.name,
        "new": sorted(held),
        "removed": sorted(gone),
        "warm_cost": warm_cost,
        "warm_feasible": not check_plan(after, warm),
        "cold_cost": cold_cost,
        "cold_feasible": not check_plan(after, cold),
        "gap_percent": 100.0 * (warm_cost - cold_cost) / cold_cost if cold_cost else 0.0,
    }


def bench_warm_start(
    set_name: str,
    instances: Path,
    *,
    new: int = 5,
    cold_limit: float = 10.0,
    warm_limit: float = 1.0,
    solver: str = "ortools",
    seed: int = 0,
    out: Path | None = None,
    console: Console | None = None,
    names: Sequence[str] | None = None,
    repeats: int = 1,
    removed: int = 0,
) -> list[dict[str, Any]]:
    """:func:`warm_start_experiment` on every instance file in ``instances``; a table.

    Each row: the cold solve of the whole instance (``cold_limit`` s), the re-solve
    after ``new`` requests were added to a solved instance (``warm_limit`` s from
    the previous plan), the warm cost's gap to the cold one in percent, and whether
    both plans pass the independent checker. Writes ``{"results": [...]}`` to ``out``.

    With ``repeats`` > 1 every instance is run with seeds ``seed`` ...
    ``seed + repeats - 1`` (other held-out requests, other search randomness) and
    its row shows the mean costs, the mean gap and the range of the gaps: a
    time-limited solve varies by about a percent from run to run on the larger
    instances, as much as the gap being measured, so one run per instance says
    little about one instance. ``results`` holds every run (with its ``seed``).
    """
    if repeats < 1:
        raise ValueError("repeats must be at least 1")
    if set_name not in READERS:
        raise ValueError(f"unknown set {set_name!r}: darp or pdptw")
    results: list[dict[str, Any]] = []
    for path in instance_files(instances):
        if names is not None and path.stem not in names:
            continue
        for k in range(repeats):
            run = warm_start_experiment(
                set_name,
                path,
                new=new,
                cold_limit=cold_limit,
                warm_limit=warm_limit,
                solver=solver,
                seed=seed + k,
                removed=removed,
            )
            results.append({**run, "seed": seed + k})
    if out is not None:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        Path(out).write_text(json.dumps({"results": results}, indent=1) + "\n")
    runs = f", mean of {repeats} runs (seeds {seed}-{seed + repeats - 1})" if repeats > 1 else ""
    table = Table(
        title=(
            f"{set_name}: {solver}, +{new}{f' -{removed}' if removed else ''} requests,"
            f" {warm_limit:g} s warm vs {cold_limit:g} s"
            f" cold{runs}"
        )
    )
    columns = ["instance", "cold cost", "warm cost", "gap %"]
    if repeats > 1:
        columns.append("gap range %")
    for name in (*columns, "feasible"):
        table.add_column(name, justify="left" if name == "instance" else "right")
    by_instance: dict[str, list[dict[str, Any]]] = {}
    for r in results:
        by_instance.setdefault(r["instance"], []).append(r)
    gaps: list[float] = []
    for name, rs in by_instance.items():
        gap = statistics.fmean(r["gap_percent"] for r in rs)
        gaps.append(gap)
        cells = [
            name,
            f"{statistics.fmean(r['cold_cost'] for r in rs):.2f}",
            f"{statistics.fmean(r['warm_cost'] for r in rs):.2f}",
            f"{gap:.2f}",
        ]
        if repeats > 1:
            low, high = min(r["gap_percent"] for r in rs), max(r["gap_percent"] for r in rs)
            cells.append(f"{low:.2f} .. {high:.2f}")
        ok = all(r["warm_feasible"] and r["cold_feasible"] for r in rs)
        table.add_row(*cells, "yes" if ok else "NO")
    if gaps:
        table.caption = (
            f"mean gap: {statistics.fmean(gaps):.2f} %, worst: {max(gaps):.2f} %,"
            f" within 1 %: {sum(g <= 1.0 for g in gaps)}/{len(gaps)}"
        )
        if repeats > 1:
            each = [r["gap_percent"] for r in results]
            table.caption += f"; single runs within 1 %: {sum(g <= 1.0 for g in each)}/{len(each)}"
    (console or Console()).print(table)
    return results
