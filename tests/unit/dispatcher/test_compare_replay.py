"""Comparison, sweep and replay helpers of ``drt simulate``."""

from __future__ import annotations

from pathlib import Path

import pytest

from dispatcher.report import (
    compare_verdict,
    parse_sweep,
    read_events,
    replay_from,
    write_events,
    write_sweep,
)
from dispatcher.simulation import simulate
from producers.demand import DemandOptions
from producers.scenario import load_scenario
from schemas.passenger import RideRequestedV1
from solvers.insertion import insertion_solve


def test_parse_sweep_ranges_and_lists():
    """vehicles=3..5 is a range, 2,4 a list; anything else is refused."""
    assert parse_sweep("vehicles=3..5") == [3, 4, 5]
    assert parse_sweep("2,4") == [2, 4]
    for bad in ("seats=1..3", "vehicles=5..3", "vehicles=0..2"):
        with pytest.raises(ValueError, match=r"."):
            parse_sweep(bad)


def test_compare_verdict_needs_gain_and_kept_promises():
    """The goal is 10 % more served, or as many with 10 % fewer km, with promises kept."""
    base = {"served": 100, "vehicle_km": 1000.0, "promise_broken": 0, "ride_time_exceeded": 0}
    assert compare_verdict(base, {**base, "served": 110})["goal_met"]
    assert compare_verdict(base, {**base, "vehicle_km": 890.0})["goal_met"]
    assert not compare_verdict(base, {**base, "served": 105})["goal_met"]
    assert not compare_verdict(base, {**base, "served": 120, "promise_broken": 1})["goal_met"]


def test_sweep_writes_json_and_plot(tmp_path: Path):
    """A sweep writes sweep.json and a PNG."""
    rows = [{"vehicles": n, "service_rate": r, "vehicle_km": k}
            for n, r, k in ((3, 0.5, 300.0), (4, 0.7, 380.0))]  # fmt: skip
    paths = write_sweep(rows, tmp_path, "t")
    assert [p.name for p in paths] == ["sweep.json", "sweep.png"]
    assert (tmp_path / "sweep.png").stat().st_size > 1000


def test_recorded_events_replay_with_one_more_vehicle(tmp_path: Path):
    """A run's events.jsonl replays the same requests with a fleet one vehicle larger."""
    scenario = load_scenario("rendsburg")
    first = simulate(
        scenario, vehicles=2, hours=0.5, seed=3, policy="insertion", fallback=insertion_solve,
        demand_options=DemandOptions(scale=3.0, cutoff_s=300), no_show_prob=0.0,
    )  # fmt: skip
    path = tmp_path / "events.jsonl"
    assert write_events(first.events, path) == len(first.events)
    events = read_events(path)
    assert [type(e) for _, e in events] == [type(e) for _, e in first.events]
    replay = replay_from(events, vehicles=3)
    assert [v.vehicle_id for v in replay.fleet] == ["v01", "v02", "x01"]
    assert replay.start == first.start and replay.end == first.end
    again = simulate(
        scenario, seed=3, policy="insertion", demand=replay.demand, fleet=replay.fleet,
        hours=(replay.end - replay.start) / 3600, no_show_prob=0.0,
    )  # fmt: skip
    asked = sorted(e.request_id for _, e in first.events if isinstance(e, RideRequestedV1))
    replayed = sorted(e.request_id for _, e in again.events if isinstance(e, RideRequestedV1))
    assert asked == replayed and len(again.vehicles) == 3
    assert again.kpis["served"] >= first.kpis["served"]
