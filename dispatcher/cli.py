"""The ``drt`` command: serve, gateway, driver, simulate, bench, schemas, produce.

The only module that reads the environment (through ``Settings``) and
configures logging handlers.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from dispatcher.config import Settings

# No local variables in tracebacks: they would print passwords read from *_FILE.
app = typer.Typer(
    help="drt-dispatch: an event-driven dispatcher for on-demand shuttles.",
    pretty_exceptions_show_locals=False,
)
schemas_app = typer.Typer(help="Event schemas.")
bench_app = typer.Typer(help="Benchmarks that print tables.")
produce_app = typer.Typer(help="Simulated passengers and vehicles publishing to Kafka.")
app.add_typer(schemas_app, name="schemas")
app.add_typer(bench_app, name="bench")
app.add_typer(produce_app, name="produce")
docs_app = typer.Typer(help="Generated documentation.")
app.add_typer(docs_app, name="docs")


def _logging(level: str) -> None:
    logging.basicConfig(
        level=level.upper(),
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
    )
    logging.getLogger("aiokafka").setLevel(logging.WARNING)


def _settings() -> Settings:
    from dispatcher.config import Settings  # noqa: PLC0415

    return Settings()


@app.command()
def serve() -> None:
    """Run the live dispatcher against Kafka and PostgreSQL until SIGTERM."""
    from prometheus_client import start_http_server  # noqa: PLC0415

    from dispatcher.metrics import Metrics  # noqa: PLC0415
    from dispatcher.service import Dispatcher  # noqa: PLC0415

    settings = _settings()
    _logging(settings.log_level)
    metrics = Metrics()
    if settings.metrics_port:
        start_http_server(settings.metrics_port, addr="0.0.0.0", registry=metrics.registry)  # noqa: S104

    async def main() -> None:
        import signal  # noqa: PLC0415

        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        async with Dispatcher(settings, metrics=metrics) as dispatcher:
            await dispatcher.run(until=stop)

    from dispatcher.kafka import TransportError  # noqa: PLC0415
    from dispatcher.store import StoreError  # noqa: PLC0415

    try:
        asyncio.run(main())
    except (StoreError, TransportError) as exc:
        # Start-up failed (the loop retries later failures): wrong credentials, TLS
        # settings or address. One line, no traceback; the messages hold no secrets.
        logging.getLogger("dispatcher").error("drt serve cannot start: %s", exc)  # noqa: TRY400
        raise typer.Exit(1) from None


def _serve_web(kind: str) -> None:
    """Run the passenger gateway or the driver app with uvicorn until SIGTERM."""
    from producers.gateway.web import server  # noqa: PLC0415

    settings = _settings()
    _logging(settings.log_level)
    if kind == "gateway":
        from producers.gateway.app import create_app  # noqa: PLC0415

        host, port = settings.gateway.host, settings.gateway.port
    else:
        from producers.driver.app import create_app  # noqa: PLC0415

        host, port = settings.driver.host, settings.driver.port
    if settings.auth.token_secret.get_secret_value() == "drt-local-dev-secret-change-me":
        logging.getLogger(__name__).warning("DRT_AUTH__TOKEN_SECRET is the local default")
    asyncio.run(server(create_app(settings), host, port, settings.log_level).serve())


@app.command()
def gateway() -> None:
    """Run the passenger gateway (booking API, live ride updates) until SIGTERM."""
    _serve_web("gateway")


@app.command()
def driver() -> None:
    """Run the driver tablet app (web pages and API) until SIGTERM."""
    _serve_web("driver")


@schemas_app.command("export")
def schemas_export(
    out: Annotated[Path, typer.Option(help="Directory for the JSON Schemas and AsyncAPI.")],
) -> None:
    """Write a JSON Schema per event and an AsyncAPI 3.0 document of every topic."""
    from schemas.export import export  # noqa: PLC0415

    settings = _settings()
    paths = export(out, settings.kafka.topic_names())
    typer.echo(f"wrote {len(paths)} files to {out}")


@app.command()
def simulate(
    scenario: Annotated[str, typer.Option(help="Scenario name or JSON file.")] = "rendsburg",
    vehicles: Annotated[int, typer.Option(help="Fleet size.")] = 5,
    hours: Annotated[float, typer.Option(help="Hours of service to simulate.")] = 10.0,
    seed: Annotated[int, typer.Option(help="Random seed for demand and fleet.")] = 1,
    out: Annotated[Path, typer.Option(help="Output directory (kpis.json, report).")] = Path(
        "out/simulation"
    ),
    start_hour: Annotated[
        float | None, typer.Option(help="Local hour the simulation starts (default: scenario's).")
    ] = None,
    solver: Annotated[str, typer.Option(help="ortools or insertion")] = "ortools",
    time_limit: Annotated[float, typer.Option(help="Solver seconds per batch.")] = 0.5,
    policy: Annotated[
        str | None,
        typer.Option(help="batch, immediate (insertion + re-optimisation) or insertion."),
    ] = None,
    reopt_every: Annotated[
        float | None, typer.Option(help="Re-optimise open rides every this many seconds.")
    ] = None,
    reopt_time_limit: Annotated[
        float | None, typer.Option(help="Solver seconds per re-optimisation.")
    ] = None,
    demand_scale: Annotated[
        float | None, typer.Option(help="Multiply the scenario's demand profile.")
    ] = None,
    compare: Annotated[
        bool, typer.Option("--compare", help="Insertion-only vs the full policy, same demand.")
    ] = False,
    sweep: Annotated[
        str | None, typer.Option(help="e.g. vehicles=3..12: service rate against fleet size.")
    ] = None,
    replay: Annotated[
        Path | None,
        typer.Option(help="Replay recorded events (JSON lines, e.g. a run's events.jsonl)."),
    ] = None,
    bound: Annotated[
        float,
        typer.Option(
            help="With --compare: also plan the day's requests as if all were known at the"
            " start, with this many solver seconds (0: no)."
        ),
    ] = 0.0,
    rebalance_points: Annotated[
        int,
        typer.Option(
            help="Policy immediate: idle vehicles are sent to this many standby points of"
            " the expected demand (0: they stay where they are)."
        ),
    ] = 0,
    anticipate: Annotated[
        float | None,
        typer.Option(
            help="Policy batch: sample the requests expected this many seconds ahead into"
            " every batch problem (0: none)."
        ),
    ] = None,
    anticipation_prize: Annotated[
        int | None, typer.Option(help="What a sampled request is worth, in metres of driving.")
    ] = None,
    wait_cost: Annotated[
        float | None,
        typer.Option(
            help="Policy immediate: metres of driving a second of a new passenger's later"
            " arrival costs when choosing where to insert the ride (the insertion-only"
            " baseline always uses 0)."
        ),
    ] = None,
    reassign_lead: Annotated[
        int | None,
        typer.Option(
            help="Policies immediate and batch: a confirmed ride may move to another"
            " vehicle while its promised window opens more than this many seconds ahead"
            " (its passenger is told); -1: rides keep their vehicle. The insertion-only"
            " baseline never moves a ride."
        ),
    ] = None,
    accept_alternatives: Annotated[
        float,
        typer.Option(
            min=0.0,
            max=1.0,
            help="Share of the passengers turned away who book the later pickup offered"
            " them (a new pre-booked request a minute later; 0: none).",
        ),
    ] = 0.0,
) -> None:
    """Simulate a service day faster than real time with the same dispatcher core."""
    from dataclasses import replace  # noqa: PLC0415

    from dispatcher.report import SimOptions, run_simulation_cli  # noqa: PLC0415

    _logging("ERROR")
    opts = SimOptions(
        scenario=scenario,
        vehicles=vehicles,
        hours=hours,
        seed=seed,
        start_hour=start_hour,
        solver=solver,
        time_limit=time_limit,
        replay=replay,
    )
    if policy is not None:
        opts = replace(opts, policy=policy)  # type: ignore[arg-type]  # checked by the run
    if reopt_every is not None:
        opts = replace(opts, reopt_every_s=reopt_every)
    if reopt_time_limit is not None:
        opts = replace(opts, reopt_time_limit=reopt_time_limit)
    if demand_scale is not None:
        opts = replace(opts, demand_scale=demand_scale)
    if rebalance_points:
        opts = replace(opts, rebalance_points=rebalance_points)
    if anticipate is not None:
        opts = replace(opts, anticipation_horizon_s=anticipate)
    if anticipation_prize is not None:
        opts = replace(opts, anticipation_prize_m=anticipation_prize)
    if wait_cost is not None:
        opts = replace(opts, insertion_wait_cost=wait_cost)
    if reassign_lead is not None:
        opts = replace(opts, reassign_lead_s=None if reassign_lead < 0 else reassign_lead)
    if accept_alternatives:
        opts = replace(opts, accept_alternatives=accept_alternatives)
    run_simulation_cli(opts, out, compare=compare, sweep=sweep, bound_s=bound)


@bench_app.command("solver")
def bench_solver(
    set_name: Annotated[str, typer.Option("--set", help="darp or pdptw")],
    instances: Annotated[Path, typer.Option(help="Directory of instance files.")],
    time_limit: Annotated[float, typer.Option(help="Seconds per instance.")] = 10.0,
    solver: Annotated[str, typer.Option(help="ortools, insertion or vroom")] = "ortools",
    out: Annotated[Path | None, typer.Option(help="results.json to write")] = None,
    seed: Annotated[int, typer.Option()] = 0,
) -> None:
    """Solve every instance in a directory and print gaps to the best known values."""
    from solvers.bench import bench_solver as run  # noqa: PLC0415

    _logging("WARNING")
    run(set_name, instances, time_limit, solver, out, seed=seed)


@bench_app.command("plot")
def bench_plot(
    set_name: Annotated[str, typer.Option("--set", help="darp or pdptw")],
    instances: Annotated[Path, typer.Option(help="Directory of instance files.")],
    out: Annotated[Path, typer.Option(help="PNG to write")] = Path("out/gap_vs_budget.png"),
    budgets: Annotated[str, typer.Option(help="Comma-separated seconds")] = "1,5,10,30",
    solvers: Annotated[str, typer.Option(help="Comma-separated solver names")] = "ortools,vroom",
) -> None:
    """Plot the mean gap against the time budget for several solvers."""
    from solvers.bench import plot_gap_vs_budget  # noqa: PLC0415

    _logging("WARNING")
    plot_gap_vs_budget(
        set_name,
        instances,
        [float(b) for b in budgets.split(",")],
        solvers.split(","),
        out,
    )


@bench_app.command("warm")
def bench_warm(
    set_name: Annotated[str, typer.Option("--set", help="darp or pdptw")],
    instances: Annotated[Path, typer.Option(help="Directory of instance files.")],
    new: Annotated[int, typer.Option(help="Requests added to the solved instance.")] = 5,
    removed: Annotated[
        int, typer.Option(help="Requests taken out at the same time (cancellations).")
    ] = 0,
    cold_limit: Annotated[float, typer.Option(help="Seconds of the cold solves.")] = 10.0,
    warm_limit: Annotated[float, typer.Option(help="Seconds of the warm re-solve.")] = 1.0,
    solver: Annotated[str, typer.Option(help="ortools, insertion or vroom")] = "ortools",
    out: Annotated[Path | None, typer.Option(help="results.json to write")] = None,
    seed: Annotated[int, typer.Option()] = 0,
    repeats: Annotated[
        int, typer.Option(help="Runs per instance (seeds seed, seed+1, ...); rows show the mean.")
    ] = 1,
    only: Annotated[
        str | None, typer.Option(help="Comma-separated instance names (default: all in DIR).")
    ] = None,
) -> None:
    """Re-solve from the previous plan after new requests; compare with a cold solve."""
    from solvers.bench import bench_warm_start  # noqa: PLC0415

    _logging("WARNING")
    bench_warm_start(
        set_name,
        instances,
        new=new,
        cold_limit=cold_limit,
        warm_limit=warm_limit,
        solver=solver,
        seed=seed,
        out=out,
        repeats=repeats,
        names=only.split(",") if only else None,
        removed=removed,
    )


def _isolated(settings: Settings, name: str) -> Settings:
    """A copy of ``settings`` on fresh topics, group and schema (benchmarks)."""
    import uuid  # noqa: PLC0415

    tag = f"{name}-{uuid.uuid4().hex[:8]}"
    k = settings.kafka.model_copy(
        update={"topic_prefix": f"{tag}.", "group_id": tag, "client_id": tag, "partitions": 2}
    )
    db = settings.database.model_copy(update={"db_schema": tag.replace("-", "_")})
    return settings.model_copy(update={"kafka": k, "database": db, "metrics_port": 0})


@bench_app.command("chaos")
def bench_chaos(
    cycles: Annotated[int, typer.Option(help="SIGKILL-and-restart cycles.")] = 100,
    rate: Annotated[float, typer.Option(help="Ride requests per second.")] = 4.0,
    min_up: Annotated[float, typer.Option(help="Shortest run after take-over, s.")] = 0.2,
    max_up: Annotated[float, typer.Option(help="Longest run after take-over, s.")] = 4.0,
    seed: Annotated[int, typer.Option()] = 0,
    log: Annotated[Path | None, typer.Option(help="Append the dispatchers' logs here.")] = None,
) -> None:
    """Kill the dispatcher with SIGKILL at random moments under load; count lost/doubled."""
    from dispatcher.chaos import run_kill_cycles  # noqa: PLC0415

    _logging("WARNING")
    settings = _isolated(_settings(), "chaos")
    settings.solver.time_limit_s = min(settings.solver.time_limit_s, 0.5)
    settings.dispatch.batch_window_s = 0.5
    settings.kafka.session_timeout_s = 6.0  # the broker's minimum: a killed member leaves fast
    settings.kafka.heartbeat_interval_s = 1.0
    report = asyncio.run(
        run_kill_cycles(
            settings,
            cycles=cycles,
            rate=rate,
            min_up_s=min_up,
            max_up_s=max_up,
            seed=seed,
            log_path=log,
        )
    )
    v = report.verdict
    rows = [
        ("kill cycles", report.kills),
        ("wall time, s", f"{report.seconds:.0f}"),
        ("requests sent", v.requests),
        ("answered", v.answered),
        ("offered", v.offered),
        ("lost", len(v.lost)),
        ("duplicate outcomes", len(v.duplicate_outcomes)),
        ("duplicate event ids", v.duplicate_event_ids),
        ("plan contradictions", len(v.plan_contradictions)),
    ]
    for label, value in rows:
        typer.echo(f"{label:>22}: {value}")
    if not v.ok:
        raise typer.Exit(1)


@bench_app.command("dispatch")
def bench_dispatch(
    vehicles: Annotated[int, typer.Option(help="Fleet size.")] = 50,
    rate: Annotated[float, typer.Option(help="Ride requests per second.")] = 20.0,
    seconds: Annotated[float, typer.Option(help="Seconds of steady load.")] = 60.0,
    seed: Annotated[int, typer.Option()] = 0,
    mode: Annotated[
        str,
        typer.Option(
            help="Dispatch mode of the dispatcher under test: immediate (answer each "
            "request at once) or batch (answer after the batch window)."
        ),
    ] = "immediate",
) -> None:
    """Sustained requests/s and request-to-offer latency on the real broker."""
    from dispatcher.loadbench import print_table, run_load  # noqa: PLC0415

    if mode not in {"immediate", "batch"}:
        raise typer.BadParameter(f"mode {mode!r}: immediate or batch", param_hint="--mode")
    settings = _settings()
    _logging("WARNING")
    result = asyncio.run(
        run_load(
            _isolated(settings, "bench"),
            vehicles=vehicles,
            rate=rate,
            seconds=seconds,
            seed=seed,
            mode=mode,
        )
    )
    print_table(result)


@app.command()
def retention(
    days: Annotated[
        int | None, typer.Option(help="Anonymise personal data older than this (default: setting).")
    ] = None,
) -> None:
    """Anonymise or delete passenger personal data older than N days (GDPR)."""
    from dispatcher.store import Store  # noqa: PLC0415

    settings = _settings()
    _logging(settings.log_level)
    keep = days if days is not None else settings.retention.days

    async def main() -> None:
        store = await Store.connect(settings.database)
        try:
            report = await store.apply_retention(keep)
        finally:
            await store.close()
        for table, n in report.anonymised.items():
            typer.echo(f"anonymised {n:>6} rows in {table}")
        for table, n in report.deleted.items():
            typer.echo(f"deleted    {n:>6} rows in {table}")

    asyncio.run(main())


@produce_app.command("demo")
def produce_demo(
    vehicles: Annotated[int, typer.Option(help="Vehicles to start.")] = 5,
    requests: Annotated[int, typer.Option(help="Ride requests to send.")] = 60,
    rate: Annotated[float, typer.Option(help="Requests per second.")] = 2.0,
    seed: Annotated[int, typer.Option()] = 1,
    minutes: Annotated[float, typer.Option(help="Run the vehicles this long.")] = 3.0,
) -> None:
    """Start simulated vehicles and passengers against the live dispatcher via Kafka."""
    from producers.live import run_demo  # noqa: PLC0415

    settings = _settings()
    _logging(settings.log_level)
    summary = asyncio.run(
        run_demo(
            settings, vehicles=vehicles, requests=requests, rate=rate, seed=seed, minutes=minutes
        )
    )
    for key, value in summary.items():
        typer.echo(f"{key:>24}: {value}")


@docs_app.command("settings")
def docs_settings(
    write: Annotated[bool, typer.Option(help="Rewrite the tables in the READMEs.")] = False,
) -> None:
    """Print (or write into README.md and deploy/README.md) the settings table."""
    from dispatcher.config import settings_markdown, with_settings_table  # noqa: PLC0415

    if not write:
        typer.echo(settings_markdown())
        return
    root = Path(__file__).resolve().parents[1]
    for path in (root / "README.md", root / "deploy" / "README.md"):
        path.write_text(with_settings_table(path.read_text()))
        typer.echo(f"wrote {path}")


def main() -> None:  # pragma: no cover - console entry point
    app()
