"""The simulation report: ``kpis.json``, ``report.md``, PNG plots and ``events.jsonl``.

``run_simulation_cli`` is what ``drt simulate`` calls: it loads the scenario, runs the
simulation with a rich progress bar, writes the report and prints a KPI table. It
also runs the comparisons: ``--compare`` (the same demand under the insertion-only
policy and the full policy, ``compare.json``), ``--sweep vehicles=3..12`` (service
rate against fleet size, ``sweep.json`` and ``sweep.png``) and ``--replay FILE`` (a
recorded stream of events, JSON lines, e.g. a run's ``events.jsonl``).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from dispatcher.anticipation import AnticipationConfig
from dispatcher.clock import to_timestamp
from dispatcher.geo import LatLon
from dispatcher.kpis import kpis_by_hour
from dispatcher.simulation import (
    DEFAULT_DAY,
    FULL_POLICY_REASSIGN_LEAD_S,
    FULL_POLICY_WAIT_COST,
    POLICIES,
    Policy,
    SimulationResult,
    scenario_forecast,
    scenario_rebalancing,
    simulate,
    solver_by_name,
)
from producers.demand import DemandOptions
from producers.fleet import VehicleConfig
from producers.scenario import Scenario, load_scenario
from schemas.codec import DecodeError, decode
from schemas.envelope import Event, event_tag
from schemas.passenger import RideCancelledV1, RideRequestedV1
from schemas.vehicle import ShiftStartedV1

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
    write_events(result.events, out / "events.jsonl")
    return data


# -- recording and replay -------------------------------------------------------------


def write_events(events: list[tuple[float, Event]], path: Path) -> int:
    """Record input events as JSON lines (the bytes Kafka would carry), in time order."""
    with path.open("w", encoding="utf-8") as f:
        for _, event in events:
            f.write(event.model_dump_json() + "\n")
    return len(events)


def _role(tag: str | None) -> str:
    return "requests" if tag is not None and tag.startswith("ride.") else "vehicle_events"


def read_events(path: Path) -> list[tuple[float, Event]]:
    """Events from JSON lines (one event per line, e.g. ``events.jsonl`` or a Kafka
    dump), each at its ``occurred_at``; lines that do not decode are skipped."""
    out: list[tuple[float, Event]] = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            tag = event_tag(json.loads(line))
            event = decode(_role(tag), line.encode())
        except (DecodeError, json.JSONDecodeError) as exc:
            log.warning("%s:%d skipped: %s", path, n, exc)
            continue
        out.append((to_timestamp(event.occurred_at), event))
    out.sort(key=lambda te: te[0])
    return out


@dataclass(frozen=True, slots=True)
class Replay:
    """What a recording holds for the simulator: passenger events and the shifts."""

    demand: list[tuple[float, Event]]
    fleet: list[VehicleConfig]
    start: float
    end: float


def replay_from(events: list[tuple[float, Event]], vehicles: int | None = None) -> Replay:
    """Passenger events as recorded; the fleet from the recorded shift starts.

    Vehicle movements are not replayed: they followed the old plans, so the
    simulator drives the new ones. ``vehicles`` changes the fleet size: fewer keeps
    the first ones, more adds copies of the first shift (``x01``, ``x02``, ...).
    """
    demand: list[tuple[float, Event]] = [
        (t, e) for t, e in events if isinstance(e, RideRequestedV1 | RideCancelledV1)
    ]
    shifts: dict[str, ShiftStartedV1] = {}
    for _, e in events:
        if isinstance(e, ShiftStartedV1) and e.vehicle_id not in shifts:
            shifts[e.vehicle_id] = e
    if not shifts:
        raise ValueError("the recording has no shift.started event: no fleet to replay")
    fleet = [_vehicle(e, e.vehicle_id) for e in shifts.values()]
    if vehicles is not None:
        first = next(iter(shifts.values()))
        extra = [_vehicle(first, f"x{i + 1:02d}") for i in range(max(0, vehicles - len(fleet)))]
        fleet = (fleet + extra)[:vehicles]
    start = min(v.shift_start for v in fleet)
    end = max(v.shift_end for v in fleet)
    return Replay(demand, fleet, start, end)


def _vehicle(e: ShiftStartedV1, vehicle_id: str) -> VehicleConfig:
    window = None
    if e.break_window_start is not None and e.break_window_end is not None:
        window = (to_timestamp(e.break_window_start), to_timestamp(e.break_window_end))
    return VehicleConfig(
        vehicle_id=vehicle_id,
        depot=LatLon(e.depot.lat, e.depot.lon),
        shift_start=to_timestamp(e.shift_start),
        shift_end=to_timestamp(e.shift_end),
        seats=e.seats,
        wheelchairs=e.wheelchairs,
        zone=e.zone,
        break_window=window,
        break_s=e.break_duration_s if window else 0,
    )


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
    if scenario.travel_model == "area":
        travel = (
            f"straight-line distance x {scenario.urban.detour_factor} at "
            f"{scenario.urban.speed_kmh} km/h in towns (>= {scenario.urban_density:.0f} "
            f"inhabitants/km²), x {scenario.rural.detour_factor} at "
            f"{scenario.rural.speed_kmh} km/h elsewhere"
        )
    else:
        travel = f"straight-line distance x {scenario.detour_factor} at {scenario.speed_kmh} km/h"
    lines += [f"* Solving is inline and takes no simulated time; travel is {travel}.", ""]
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


@dataclass(frozen=True, slots=True)
class SimOptions:
    """What ``drt simulate`` was asked for (one run, a comparison or a sweep)."""

    scenario: str = "rendsburg"
    vehicles: int | None = 5
    hours: float | None = 10.0
    seed: int = 1
    start_hour: float | None = None
    solver: str = "ortools"
    time_limit: float = 0.5
    policy: Policy = "immediate"  # the full policy: insertion + OR-Tools re-optimisation
    reopt_every_s: float = 900.0
    reopt_time_limit: float = 1.0
    demand_scale: float = 1.0
    replay: Path | None = None
    #: standby points of the immediate policy's rebalancing (0: none, idle vehicles stay)
    rebalance_points: int = 0
    #: the batch policy samples requests expected this far ahead (0: none)
    anticipation_horizon_s: float = 0.0
    anticipation_prize_m: int = 10_000
    #: the full policy's insertion: metres per second a new passenger arrives later
    insertion_wait_cost: float = FULL_POLICY_WAIT_COST
    #: the full policy moves confirmed rides between vehicles up to this long before
    #: their window opens (None: never)
    reassign_lead_s: int | None = FULL_POLICY_REASSIGN_LEAD_S
    #: share of the passengers turned away who book the later pickup offered them
    accept_alternatives: float = 0.0


def _run(
    opts: SimOptions,
    sc: Scenario,
    policy: Policy,
    vehicles: int | None = None,
    progress: Any = None,
) -> SimulationResult:
    n = vehicles if vehicles is not None else opts.vehicles
    demand = fleet = None
    rebalancing = None
    if opts.rebalance_points > 0 and policy == "immediate":
        rebalancing = scenario_rebalancing(sc, opts.rebalance_points)
    anticipation = None
    if opts.anticipation_horizon_s > 0 and policy == "batch":
        anticipation = AnticipationConfig(
            forecast=scenario_forecast(sc),
            horizon_s=opts.anticipation_horizon_s,
            prize_m=opts.anticipation_prize_m,
            seed=opts.seed,
        )
    start_hour, hours = opts.start_hour, opts.hours
    if opts.replay is not None:
        rec = replay_from(read_events(opts.replay), n)
        demand, fleet = rec.demand, rec.fleet
        local = datetime.fromtimestamp(rec.start, ZoneInfo(sc.timezone))
        start_hour = local.hour + local.minute / 60 + local.second / 3600
        hours = (rec.end - rec.start) / 3600
    return simulate(
        sc,
        vehicles=n,
        hours=hours,
        seed=opts.seed,
        solver=solver_by_name(opts.solver),
        solver_time_limit=opts.time_limit,
        start_hour=start_hour,
        day=_day(opts, sc),
        policy=policy,
        reopt_every_s=opts.reopt_every_s,
        reopt_time_limit=opts.reopt_time_limit,
        demand=demand,
        fleet=fleet,
        demand_options=DemandOptions(scale=opts.demand_scale),
        rebalancing=rebalancing,
        anticipation=anticipation,
        insertion_wait_cost=opts.insertion_wait_cost,
        reassign_lead_s=opts.reassign_lead_s,
        accept_alternatives=opts.accept_alternatives,
        progress=progress,
    )


def _day(opts: SimOptions, sc: Scenario) -> date:
    if opts.replay is None:
        return DEFAULT_DAY
    first = read_events(opts.replay)[0][0]
    shifts = [e for _, e in read_events(opts.replay) if isinstance(e, ShiftStartedV1)]
    t = to_timestamp(shifts[0].shift_start) if shifts else first
    local = datetime.fromtimestamp(t, ZoneInfo(sc.timezone))
    return local.date()


def compare_row(kpis: dict[str, Any]) -> dict[str, Any]:
    """The headline KPIs of a run (the compare table's rows)."""
    return {k: kpis.get(k) for k in (*HEADLINE, "confirmed_unaccounted") if k in kpis}


def compare_verdict(insertion: dict[str, Any], full: dict[str, Any]) -> dict[str, Any]:
    """Whether the full policy meets the goal against insertion-only.

    Goal: >= 10 % more served rides, or as many with >= 10 % fewer vehicle-km, with
    no broken promise and no exceeded ride time.
    """
    served_gain = (full["served"] - insertion["served"]) / max(1, insertion["served"])
    km_saving = 1 - full["vehicle_km"] / insertion["vehicle_km"] if insertion["vehicle_km"] else 0
    safe = full["promise_broken"] == 0 and full["ride_time_exceeded"] == 0
    return {
        "served_gain": round(served_gain, 4),
        "vehicle_km_saving": round(km_saving, 4),
        "promises_kept": safe,
        "goal_met": safe
        and (served_gain >= 0.10 or (full["served"] >= insertion["served"] and km_saving >= 0.10)),
    }


def parse_sweep(spec: str) -> list[int]:
    """``"vehicles=3..12"`` (or ``3..12``, or ``3,5,8``) -> fleet sizes."""
    body = spec.split("=", 1)[1] if "=" in spec else spec
    if "=" in spec and spec.split("=", 1)[0].strip() != "vehicles":
        raise ValueError(f"only vehicles can be swept, not {spec.split('=', 1)[0]!r}")
    if ".." in body:
        lo, hi = (int(x) for x in body.split("..", 1))
        if lo < 1 or hi < lo:
            raise ValueError(f"sweep range {body!r} not understood")
        return list(range(lo, hi + 1))
    sizes = [int(x) for x in body.split(",") if x.strip()]
    if not sizes or min(sizes) < 1:
        raise ValueError(f"sweep {body!r} not understood")
    return sizes


def write_sweep(rows: list[dict[str, Any]], out: Path, title: str) -> list[Path]:
    """``sweep.json`` and ``sweep.png`` (service rate and served rides against fleet size)."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "sweep.json").write_text(json.dumps(rows, indent=2) + "\n")
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.2))
    xs = [r["vehicles"] for r in rows]
    ax.plot(xs, [r["service_rate"] for r in rows], marker="o", label="service rate")
    ax.set_xlabel("vehicles")
    ax.set_ylabel("service rate (served / requested)")
    ax.set_ylim(0, 1.05)
    ax.grid(alpha=0.3)
    ax.set_title(title)
    ax2 = ax.twinx()
    ax2.plot(xs, [r["vehicle_km"] for r in rows], color="tab:gray", ls="--", label="vehicle-km")
    ax2.set_ylabel("vehicle-km")
    fig.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(out / "sweep.png", dpi=110)
    plt.close(fig)
    return [out / "sweep.json", out / "sweep.png"]


def run_simulation_cli(
    opts: SimOptions,
    out: Path,
    compare: bool = False,
    sweep: str | None = None,
    bound_s: float = 0.0,
) -> dict[str, Any]:
    """Run what ``drt simulate`` was asked for, with progress, and write the results.

    One run writes ``kpis.json``, ``report.md``, plots and ``events.jsonl``. With
    ``compare``, the insertion-only policy and ``opts.policy`` (the full policy) run
    on the same demand: ``compare.json`` and each run's report under ``out/<policy>``;
    with ``bound_s`` > 0 also the clairvoyant plan of the day's requests
    (:mod:`dispatcher.bound`, ``bound_s`` seconds of solving) as ``"clairvoyant"``.
    With ``sweep``, one run per fleet size: ``sweep.json`` and ``sweep.png``.
    """
    from rich.console import Console  # noqa: PLC0415
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn  # noqa: PLC0415
    from rich.table import Table  # noqa: PLC0415

    console = Console()
    sc = load_scenario(opts.scenario)
    if opts.policy not in POLICIES:
        raise ValueError(f"policy {opts.policy!r} not understood; one of {POLICIES}")

    def one(policy: Policy, label: str, vehicles: int | None = None) -> SimulationResult:
        with Progress(
            TextColumn(f"[bold]{label}[/]"),
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

            return _run(opts, sc, policy, vehicles, progress)

    settings = {
        "solver": opts.solver,
        "time_limit": opts.time_limit,
        "policy": opts.policy,
        "reopt_every_s": opts.reopt_every_s,
        "reopt_time_limit": opts.reopt_time_limit,
        "demand_scale": opts.demand_scale,
        "replay": str(opts.replay) if opts.replay else None,
        "rebalance_points": opts.rebalance_points,
    }
    if sweep is not None:
        rows = []
        for n in parse_sweep(sweep):
            result = one(opts.policy, f"{n} vehicles", n)
            rows.append({"vehicles": n, **compare_row(result.kpis), "wall_s": result.wall_s})
            console.print(
                f"{n:>3} vehicles: served {result.kpis['served']}/{result.kpis['requests']} "
                f"(rate {result.kpis['service_rate']}) in {result.wall_s:.1f} s"
            )
        write_sweep(rows, out, f"{sc.name}: service rate against fleet size")
        console.print(f"sweep written to {out / 'sweep.json'} and {out / 'sweep.png'}")
        return {"sweep": rows, "run": settings}
    if compare:
        runs: dict[str, dict[str, Any]] = {}
        bound: dict[str, Any] | None = None
        for name, policy in (("insertion", "insertion"), ("full", opts.policy)):
            result = one(policy, name)  # type: ignore[arg-type]
            data = write_report(result, sc, out / name, {**settings, "policy": policy})
            runs[name] = data
            if bound is None and bound_s > 0:
                from dispatcher.bound import clairvoyant_plan  # noqa: PLC0415

                with console.status(f"clairvoyant plan of the day ({bound_s:g} s)"):
                    bound = clairvoyant_plan(result, time_limit=bound_s).as_dict()
        table = Table(title=f"{sc.name}: insertion-only vs full policy ({opts.policy})")
        table.add_column("KPI")
        table.add_column("insertion", justify="right")
        table.add_column("full", justify="right")
        for k in (*HEADLINE, "confirmed_unaccounted"):
            table.add_row(k, _fmt(runs["insertion"].get(k)), _fmt(runs["full"].get(k)))
        console.print(table)
        if bound is not None:
            console.print(
                f"clairvoyant (every request known at the start, {bound_s:g} s of solving):"
                f" {bound['planned']} of {bound['admissible']} admissible requests planned"
                f" ({bound['cancelled']} cancelled by passengers left out) with"
                f" {bound['vehicle_km']:.0f} vehicle-km; offered online:"
                f" insertion {runs['insertion'].get('offered')}, full {runs['full'].get('offered')}"
            )
        verdict = compare_verdict(runs["insertion"], runs["full"])
        result_json = {**runs, "verdict": verdict}
        if bound is not None:
            result_json["clairvoyant"] = bound
        out.mkdir(parents=True, exist_ok=True)
        (out / "compare.json").write_text(json.dumps(result_json, indent=2, ensure_ascii=False))
        console.print(f"verdict: {verdict}; written to {out / 'compare.json'}")
        return result_json
    result = one(opts.policy, "simulating")
    data = write_report(result, sc, out, settings)
    console.print(
        kpi_table(
            data,
            f"{sc.name}: {len(result.vehicles)} vehicles, {data['run']['hours']} h, "
            f"seed {opts.seed}, {opts.policy}",
        )
    )
    run = data["run"]
    console.print(
        f"simulated {run['hours']} h in {run['wall_s']} s wall "
        f"({run['solve_wall_s']} s solving); report and events.jsonl in {out}"
    )
    return data
