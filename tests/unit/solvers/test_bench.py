"""The benchmark runner: results file layout, node ids, checking, gaps and the plot."""

from __future__ import annotations

import json
from pathlib import Path

from rich.console import Console

from solvers.bench import (
    bench_solver,
    bench_warm_start,
    find_bks,
    instance_files,
    plot_gap_vs_budget,
    warm_start_experiment,
)


def test_instance_files_and_bks_location(cordeau_ab: Path, cordeau_pr: Path):
    """Instances are sorted by name; bks.csv is found two levels up."""
    files = instance_files(cordeau_ab)
    assert files[0].stem == "a2-16"
    assert [p.stem for p in instance_files(cordeau_pr)][:2] == ["pr01", "pr02"]
    assert find_bks(cordeau_ab) == (cordeau_ab.parent.parent / "bks.csv").resolve()


def test_bench_writes_checked_results(cordeau_ab: Path, tmp_path: Path):
    """One instance through the insertion solver: JSON with routes in file node ids."""
    out = tmp_path / "results.json"
    console = Console(record=True, width=120)
    results = bench_solver(
        "darp", cordeau_ab, 2.0, "insertion", out, console=console, names=["a2-16"]
    )
    data = json.loads(out.read_text())
    assert data["results"] == results
    (record,) = results
    assert record["instance"] == "a2-16"
    assert record["feasible"] is True
    assert record["violations"] == []
    assert record["bks"] == 294.25
    assert record["gap"] >= -0.01
    nodes = sorted(n for route in record["routes"] for n in route["nodes"])
    assert nodes == list(range(1, 33))  # every pickup and drop-off, no depot
    for route in record["routes"]:
        assert len(route["start"]) == len(route["nodes"])
        assert route["start"] == sorted(route["start"])
    text = console.export_text()
    assert "a2-16" in text
    assert "mean gap" in text


def test_vroom_violations_are_reported(cordeau_ab: Path):
    """VROOM cannot bound ride times: its a2-16 plan is flagged, not hidden."""
    (record,) = bench_solver(
        "darp", cordeau_ab, 1.0, "vroom", None, console=Console(quiet=True), names=["a2-16"]
    )
    assert record["feasible"] is False
    assert any("ride time" in v for v in record["violations"])


def test_pdptw_vehicles_and_plot(lilim_100: Path, tmp_path: Path):
    """Li & Lim runs report vehicles next to the bks; the plot is a PNG file."""
    (record,) = bench_solver(
        "pdptw", lilim_100, 1.0, "insertion", None, console=Console(quiet=True), names=["lc101"]
    )
    assert record["bks_vehicles"] == 10
    assert record["feasible"]
    png = plot_gap_vs_budget(
        "pdptw", lilim_100, [0.2, 0.4], ["insertion"], tmp_path / "gap.png", names=["lc101"]
    )
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_warm_start_experiment_reports_both_costs(cordeau_ab: Path):
    """Held-out requests re-inserted from the previous plan: both plans feasible, gap given."""
    out = warm_start_experiment(
        "darp",
        cordeau_ab / "a2-16.txt",
        new=3,
        cold_limit=0.5,
        warm_limit=0.2,
        solver="insertion",
    )
    assert len(out["new"]) == 3
    assert out["warm_feasible"] and out["cold_feasible"]
    assert out["warm_cost"] > 0 and out["cold_cost"] > 0


def test_bench_warm_start_table_and_file(cordeau_ab: Path, tmp_path: Path):
    """``drt bench warm``: one row per instance, the gap computed from both costs."""
    out = tmp_path / "warm.json"
    console = Console(record=True, width=120)
    results = bench_warm_start(
        "darp",
        cordeau_ab,
        new=4,
        cold_limit=0.3,
        warm_limit=0.1,
        solver="insertion",
        out=out,
        console=console,
        names=["a2-16", "a3-18"],
    )
    assert [r["instance"] for r in results] == ["a2-16", "a3-18"]
    assert json.loads(out.read_text())["results"] == results
    for r in results:
        assert r["gap_percent"] == 100.0 * (r["warm_cost"] - r["cold_cost"]) / r["cold_cost"]
    text = console.export_text()
    assert "a3-18" in text and "mean gap" in text


def test_bench_warm_start_repeats_rows_are_means(cordeau_ab: Path):
    """``--repeats``: every run is kept with its seed, the row shows the mean gap and range."""
    console = Console(record=True, width=160)
    results = bench_warm_start(
        "darp",
        cordeau_ab,
        new=3,
        cold_limit=0.2,
        warm_limit=0.1,
        solver="insertion",
        console=console,
        names=["a2-16"],
        repeats=2,
        seed=5,
    )
    assert [(r["instance"], r["seed"]) for r in results] == [("a2-16", 5), ("a2-16", 6)]
    assert results[0]["new"] != results[1]["new"]  # another held-out sample per seed
    mean = (results[0]["gap_percent"] + results[1]["gap_percent"]) / 2
    text = console.export_text()
    assert f"{mean:.2f}" in text and "gap range" in text and "seeds 5-6" in text


def test_warm_start_with_removed_requests(cordeau_ab: Path):
    """Requests taken out with the new ones: neither plan serves them, both are checked
    against the final set of requests."""
    from solvers.bench import READERS, solver_by_name  # noqa: PLC0415
    from solvers.model import SolveLimits  # noqa: PLC0415

    out = warm_start_experiment(
        "darp",
        cordeau_ab / "a2-16.txt",
        new=2,
        removed=3,
        cold_limit=0.3,
        warm_limit=0.1,
        solver="insertion",
    )
    assert len(out["new"]) == 2 and len(out["removed"]) == 3
    assert not set(out["new"]) & set(out["removed"])
    assert out["warm_feasible"] and out["cold_feasible"]
    # fewer requests than the whole instance: cheaper than its cold solve
    inst = READERS["darp"](cordeau_ab / "a2-16.txt")
    whole = inst.cost(solver_by_name("insertion")(inst.problem, SolveLimits(0.3)))
    assert out["cold_cost"] < whole
