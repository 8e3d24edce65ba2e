"""The simulation report: ``kpis.json``, ``report.md`` and PNG plots (matplotlib, Agg).

``run_simulation_cli`` is what ``drt simulate`` calls: it loads the scenario, runs the
simulation with a rich progress bar, writes the report and prints a KPI table.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from dispatcher.kpis import kpis_by_hour
from dispatcher.simulation import SimulationResult, simulate, solver_by_name
from producers.scenario import Scenario, load_scenario

log = logging.getLogger(__name__)

#: The keys ``kpis.json`` always carries (and the KPI table shows first).
HEADLINE = (
    "requests",
    "served",
    "rejected",
    "service_rate",
    "wait_p50_s",
    "wait_p90_s",
    "wait_p95_s",
    "promise_broken",
    "ride_time_exceeded",
    "detour_factor_mean",
    "pooling_rate",
    "occupancy_mean",
    "vehicle_km",
    "empty_km_share",
    "km_per_passenger",
)


def _pyplot() -> Any:
    import matplotlib  # noqa: PLC0415 - heavy, only when plotting

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    return plt


def run_info(result: SimulationResult, scenario: Scenario) -> dict[str, Any]:
    """How the run was set up and how long it took (for kpis.json)."""
    tz = ZoneInfo(scenario.timezone)
    solvers: dict[str, int] = {}
    for s in result.solves:
        solvers[s.solver] = solvers.get(s.solver, 0) + 1
    return {
        "scenario": result.scenario,
        "seed": result.seed,
        "start": datetime.fromtimestamp(result.start, tz).isoformat(),
        "end": datetime.fromtimestamp(result.end, tz).isoformat(),
        "hours": round((result.end - result.start) / 3600, 2),
        "vehicles": len(result.vehicles),
        "wall_s": round(result.wall_s, 2),
        "solve_wall_s": round(result.solve_wall_s, 2),
        "solver_calls": len(result.solves),
        "solver_fallbacks": sum(1 for s in result.solves if s.fallback),
        "reopt_kept": sum(1 for s in result.solves if s.kind == "reopt" and s.kept),
        "solvers": solvers,
        "events_in": len(result.events),
        "events_out": len(result.outputs),
        "dead_letters": len(result.dead_letters),
    }


def write_report(
    result: SimulationResult, scenario: Scenario, out: Path, extra: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Write ``kpis.json``, ``report.md`` and the plots into ``out``; return the JSON."""
    out.mkdir(parents=True, exist_ok=True)
    data: dict[str, Any] = {**result.kpis, "run": {**run_info(result, scenario), **(extra or {})}}
    (out / "kpis.json").write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n")
    plots = [_plot_hours(result, scenario, out / "kpis_over_time.png")]
    plots.append(_plot_map(result, scenario, out / "map.png"))
    (out / "report.md").write_text(_markdown(result, scenario, data, plots), encoding="utf-8")
    return data


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:,.3f}".rstrip("0").rstrip(".") if abs(v) < 100 else f"{v:,.1f}"
    if isinstance(v, dict):
        return ", ".join(f"{k}: {x}" for k, x in v.items()) or "-"
    if isinstance(v, list):
        return str(len(v))
    return "-" if v is None else str(v)


def _markdown(
    result: SimulationResult, scenario: Scenario, data: dict[str, Any], plots: list[str]
) -> str:
    run = data["run"]
    lines = [
        f"# Simulation: {scenario.name}",
        "",
        f"{scenario.description}",
        "",
        f"* Period: {run['start']} to {run['end']} ({run['hours']} h), "
        f"{run['vehicles']} vehicles, seed {run['seed']}",
        f"* Wall time: {run['wall_s']} s, of which solving {run['solve_wall_s']} s "
        f"({run['solver_calls']} calls, {run['solver_fallbacks']} fallbacks; {run['solvers']})",
        f"* Events: {run['events_in']} in, {run['events_out']} out, "
        f"{run['dead_letters']} dead letters",
        "",
        "## KPIs",
        "",
        "| KPI | value |",
        "|---|---:|",
    ]
    lines += [f"| {k} | {_fmt(v)} |" for k, v in data.items() if k != "run"]
    ref = scenario.reference
    if ref:
        lines += ["", "## The real service, for comparison", ""]
        lines += [f"* {k}: {v}" for k, v in ref.items()]
    lines += ["", "## Plots", ""]
    lines += [f"![{p}]({p})" for p in plots]
    lines += ["", "## Notes", ""]
    lines += [f"* {n}" for n in scenario.notes]
    lines += [
        "* Solving is inline and takes no simulated time; travel is straight-line "
        f"distance x {scenario.detour_factor} at {scenario.speed_kmh} km/h.",
        "",
    ]
    return "\n".join(lines)


def _plot_hours(result: SimulationResult, scenario: Scenario, path: Path) -> str:
    plt = _pyplot()
    rows = kpis_by_hour(result.history)
    tz = ZoneInfo(scenario.timezone)
    labels = [datetime.fromtimestamp(r.hour_start, tz).strftime("%H:%M") for r in rows]
    x = list(range(len(rows)))
    fig, axes = plt.subplots(3, 1, figsize=(10, 9), sharex=True)
    w = 0.27
    axes[0].bar([i - w for i in x], [r.requests for r in rows], w, label="requests")
    axes[0].bar(x, [r.served for r in rows], w, label="served")
    axes[0].bar([i + w for i in x], [r.rejected for r in rows], w, label="rejected")
    axes[0].set_ylabel("rides (by request hour)")
    axes[0].legend()
    nan = float("nan")
    axes[1].plot(x, [(r.wait_mean_s or nan) / 60 for r in rows], "o-", label="mean")
    axes[1].plot(x, [(r.wait_p90_s or nan) / 60 for r in rows], "s--", label="p90")
    axes[1].set_ylabel("wait (min)")
    axes[1].legend()
    axes[2].plot(x, [r.occupancy_mean or nan for r in rows], "o-", label="occupancy")
    ax2 = axes[2].twinx()
    ax2.bar(x, [r.vehicle_km for r in rows], 0.5, alpha=0.25, color="grey", label="vehicle-km")
    axes[2].set_ylabel("persons on board per km")
    ax2.set_ylabel("vehicle-km")
    axes[2].set_xticks(x, labels, rotation=45)
    fig.suptitle(f"{scenario.name}: KPIs per hour")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path.name


def _plot_map(result: SimulationResult, scenario: Scenario, path: Path) -> str:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(9, 9))
    ax.scatter(
        [s.lon for s in scenario.stops],
        [s.lat for s in scenario.stops],
        s=6,
        c="lightgrey",
        label="virtual stops",
    )
    ax.scatter(
        [h.lon for h in scenario.hubs],
        [h.lat for h in scenario.hubs],
        s=60,
        marker="s",
        c="black",
        label="rail hubs",
    )
    for m in scenario.municipalities:
        if m.population >= 3000:
            ax.annotate(m.name, (m.lon, m.lat), fontsize=7, alpha=0.7)
    served = set(result.history.alighted)
    for _, e in result.events:
        if e.type == "ride.requested":
            rid = getattr(e, "request_id", "")
            o, d = e.origin, e.destination  # type: ignore[attr-defined]
            ax.plot(
                [o.lon, d.lon],
                [o.lat, d.lat],
                color="tab:green" if rid in served else "tab:red",
                lw=0.5,
                alpha=0.35,
            )
    colors = plt.get_cmap("tab10")
    for i, (vid, track) in enumerate(sorted(result.tracks.items())):
        ax.plot(
            [p.lon for _, p in track],
            [p.lat for _, p in track],
            lw=0.8,
            alpha=0.6,
            color=colors(i % 10),
            label=f"track {vid}",
        )
    a = scenario.area
    ax.set_xlim(a.lon_min, a.lon_max)
    ax.set_ylim(a.lat_min, a.lat_max)
    ax.set_aspect(1 / 0.585)  # cos(54.3°): degrees of longitude are shorter
    ax.set_xlabel("lon")
    ax.set_ylabel("lat")
    ax.set_title("stops, trips (green served, red not) and vehicle tracks")
    ax.legend(loc="lower left", fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path.name


def kpi_table(data: dict[str, Any], title: str = "KPIs") -> Any:
    """A rich table of the headline KPIs followed by the rest."""
    from rich.table import Table  # noqa: PLC0415

    table = Table(title=title)
    table.add_column("KPI")
    table.add_column("value", justify="right")
    keys = [*HEADLINE, *(k for k in data if k not in HEADLINE and k != "run")]
    for k in keys:
        if k in data:
            table.add_row(k, _fmt(data[k]))
    return table


def run_simulation_cli(
    scenario: str,
    vehicles: int,
    hours: float,
    seed: int,
    out: Path,
    start_hour: float | None,
    solver: str,
    time_limit: float,
    strategy: str = "each",
) -> dict[str, Any]:
    """Run a simulation with a progress bar, write the report to ``out``, print the KPIs.

    ``solver`` is ``"ortools"`` or ``"insertion"`` (per batch, insertion as fallback);
    ``strategy="hybrid"`` plans batches by insertion and re-optimises with OR-Tools
    every 15 simulated minutes.
    """
    from rich.console import Console  # noqa: PLC0415
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn  # noqa: PLC0415

    console = Console()
    sc = load_scenario(scenario)
    chosen = solver_by_name(solver)
    with Progress(
        TextColumn("[bold]simulating[/]"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}% {task.fields[info]}"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as bar:
        task = bar.add_task("sim", total=1.0, info="")

        def progress(done: float, total: float, counts: dict[str, int]) -> None:
            info = " ".join(f"{k}={v}" for k, v in counts.items())
            bar.update(task, completed=min(1.0, done / total), info=info)

        result = simulate(
            sc,
            vehicles=vehicles,
            hours=hours,
            seed=seed,
            solver=chosen,
            solver_time_limit=time_limit,
            start_hour=start_hour,
            strategy="hybrid" if strategy == "hybrid" else "each",
            progress=progress,
        )
    data = write_report(
        result, sc, out, {"solver": solver, "time_limit": time_limit, "strategy": strategy}
    )
    console.print(kpi_table(data, f"{sc.name}: {vehicles} vehicles, {hours} h, seed {seed}"))
    run = data["run"]
    console.print(
        f"simulated {run['hours']} h in {run['wall_s']} s wall "
        f"({run['solve_wall_s']} s solving); report in {out}"
    )
    return data
