"""The clairvoyant plan of a simulated day (``drt simulate --compare --bound S``)."""

from __future__ import annotations

import pytest

from dispatcher.bound import clairvoyant_plan
from dispatcher.simulation import SimulationResult, simulate
from producers.demand import DemandOptions
from producers.scenario import Scenario, load_scenario
from schemas.dispatch import RejectionReason, RideRejectedV1
from schemas.passenger import RideCancelledV1, RideRequestedV1
from solvers.insertion import insertion_solve


@pytest.fixture(scope="module")
def scenario() -> Scenario:
    return load_scenario("rendsburg")


@pytest.fixture(scope="module")
def overloaded_day(scenario: Scenario) -> SimulationResult:
    """Three hours, two vehicles, three times the demand: many requests turned away."""
    return simulate(
        scenario,
        vehicles=2,
        hours=3.0,
        seed=3,
        policy="insertion",
        demand_options=DemandOptions(scale=3.0),
    )


def test_clairvoyant_plan_takes_the_days_admissible_requests(
    overloaded_day: SimulationResult,
) -> None:
    """Every request the core would admit goes into the plan, cancelled ones stay out, and
    the plan passes the independent checker."""
    result = overloaded_day
    requested = {e.request_id for _, e in result.events if isinstance(e, RideRequestedV1)}
    cancelled = {e.request_id for _, e in result.events if isinstance(e, RideCancelledV1)}
    inadmissible = {
        e.request_id
        for _, e in result.outputs
        if isinstance(e, RideRejectedV1) and e.reason is not RejectionReason.NO_VEHICLE
    }
    bound = clairvoyant_plan(result, time_limit=2.0, solver=insertion_solve)
    assert bound.requests == len(requested)
    assert bound.cancelled == len(cancelled)
    assert bound.admissible == len(requested - cancelled - inadmissible)
    assert bound.feasible
    assert 0 < bound.planned <= bound.admissible
    # the planned driving, reported in km
    assert bound.vehicle_km > 0
    assert bound.as_dict()["vehicle_km"] == round(bound.vehicle_km, 1)


def test_knowing_the_day_in_advance_serves_more(overloaded_day: SimulationResult) -> None:
    """With every request known at the start, the solver plans more rides than the online
    insertion policy offered (where demand far exceeds the fleet)."""
    result = overloaded_day
    bound = clairvoyant_plan(result, time_limit=5.0)
    offered = result.kpis["offered"]
    assert isinstance(offered, int)
    assert bound.planned > offered
