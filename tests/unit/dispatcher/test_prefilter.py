"""The insertion pre-filter never rules out a vehicle insertion could use.

Brute force: at every request of a busy run, each vehicle on shift gets its own
insertion problem (``build_problem(only=[vehicle])``, as immediate insertion
builds them); wherever insertion finds a feasible place, ``may_insert`` must have
said True. The runs are saturated (small vehicles, many requests), so most
vehicles cannot take most rides and the filter has something to rule out.
"""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from dispatcher.chaos import request_event, shift_event
from dispatcher.clock import to_timestamp
from dispatcher.core import CoreConfig, DispatchCore
from dispatcher.geo import CrowFliesTravel, TravelModel
from dispatcher.planning import build_problem, plan_problems
from dispatcher.prefilter import DEFAULT_SECONDS_PER_METRE, may_insert, seconds_per_metre
from dispatcher.simulation import simulate
from dispatcher.state import Ride
from dispatcher.travel import AreaTravel
from producers.demand import DemandOptions
from producers.scenario import load_scenario
from schemas.envelope import Place
from tests.unit.dispatcher.fleet_kit import FOCKBEK, T0, core, request, shift


class Audit:
    """Wraps ``DispatchCore._insert_nearest``: compares the filter with insertion."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.kept_usable = 0  # filter True, insertion feasible
        self.ruled_out = 0  # filter False (insertion infeasible, checked)
        self.kept_unusable = 0  # filter True, insertion infeasible
        self.missed: list[tuple[str, str]] = []  # filter False, insertion feasible: a bug
        original = DispatchCore._insert_nearest

        def audited(core: DispatchCore, ride: Ride, now: float) -> object:
            self.check(core, ride, now)
            return original(core, ride, now)

        monkeypatch.setattr(DispatchCore, "_insert_nearest", audited)

    def check(self, core: DispatchCore, ride: Ride, now: float) -> None:
        state, cfg = core.state, core.config.planning
        on_shift = [v for v in state.vehicles.values() if v.active and v.shift_end > now]
        verdicts = may_insert(state, ride, on_shift, now, cfg, core.travel)
        for v, possible in zip(on_shift, verdicts, strict=True):
            job = build_problem(state, [ride.request_id], now, core.travel, cfg, [v.vehicle_id])
            job = replace(job, kind="insert")
            plan = core._insertion(job, ride.request_id, repair=False)
            usable = plan is not None and not plan_problems(job, plan)
            if usable and not possible:
                self.missed.append((ride.request_id, v.vehicle_id))
            self.kept_usable += usable and possible
            self.ruled_out += not possible
            self.kept_unusable += possible and not usable


def _chaos_run(travel: TravelModel, vehicles: int, requests: int, rate: float) -> None:
    """The bench's load (half immediate, half pre-booked), small vehicles, no movement."""
    core = DispatchCore(CoreConfig(mode="immediate"), travel)
    start = datetime(2026, 11, 25, 18, 0, tzinfo=UTC)
    for i in range(vehicles):
        core.handle(shift_event(f"v{i:02d}", start), to_timestamp(start))
    for v in core.state.vehicles.values():
        v.seats = 2  # seats bind too
    rng = random.Random(7)
    for k in range(requests):
        at = start + timedelta(seconds=k / rate)
        core.handle(request_event(f"r{k}", rng, at), to_timestamp(at))


def test_filter_keeps_every_usable_vehicle_crow_flies(monkeypatch: pytest.MonkeyPatch) -> None:
    audit = Audit(monkeypatch)
    _chaos_run(CrowFliesTravel(), vehicles=7, requests=160, rate=0.5)
    assert audit.missed == []
    assert audit.kept_usable > 50 and audit.ruled_out > 200  # both sides were exercised


def test_filter_keeps_every_usable_vehicle_in_a_simulated_day(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Moving vehicles, locked stops, passengers on board, no-shows, area travel times."""
    audit = Audit(monkeypatch)
    scenario = load_scenario("rendsburg")
    result = simulate(
        scenario,
        vehicles=6,
        hours=4,
        seed=3,
        policy="insertion",
        seats=2,
        demand_options=DemandOptions(scale=2.0),
    )
    assert isinstance(scenario.travel(), AreaTravel)
    assert result.outputs  # it ran
    assert audit.missed == []
    assert audit.kept_usable > 50 and audit.ruled_out > 30  # both sides were exercised


def test_travel_models_state_their_speed_bound() -> None:
    crow = CrowFliesTravel(detour_factor=1.35, speed_kmh=40.0)
    assert seconds_per_metre(crow) == pytest.approx(1.35 / (40 / 3.6))
    area = load_scenario("rendsburg").travel()
    u, r = area.urban, area.rural  # type: ignore[attr-defined]
    fastest = min(u.detour_factor / (u.speed_kmh / 3.6), r.detour_factor / (r.speed_kmh / 3.6))
    assert 0 < seconds_per_metre(area) < fastest
    assert seconds_per_metre(object()) == DEFAULT_SECONDS_PER_METRE  # type: ignore[arg-type]


def test_filter_rules_out_a_vehicle_too_far_away() -> None:
    """A single idle vehicle that cannot reach the pickup within the wait is ruled out."""
    c = core(mode="immediate")
    far = Place(lat=54.40, lon=9.80)  # ~15 km from Fockbek: 20+ minutes at 40 km/h
    c.handle(shift("v1", position=FOCKBEK), T0)
    c.handle(shift("v2", position=far), T0)
    c.handle(request("r1"), T0)  # taken by v1 (nearer), nothing else happens
    ride = c.state.rides["r1"]
    ride.latest_pickup = ride.earliest_pickup + 300  # must be picked up within 5 minutes
    vehicles = [c.state.vehicles["v1"], c.state.vehicles["v2"]]
    ride2 = replace_ride(ride)
    verdicts = may_insert(c.state, ride2, vehicles, T0, c.config.planning, c.travel)
    assert verdicts == [True, False]


def replace_ride(ride: Ride) -> Ride:
    """A new pending ride like ``ride`` (same places and window)."""
    return Ride(
        request_id="new",
        zone=ride.zone,
        passenger_ref="p-new",
        origin=ride.origin,
        destination=ride.destination,
        seats=1,
        wheelchairs=0,
        received_at=ride.received_at,
        earliest_pickup=ride.earliest_pickup,
        latest_pickup=ride.latest_pickup,
        latest_dropoff=None,
        direct_s=ride.direct_s,
        max_ride_s=ride.max_ride_s,
    )
