"""Anticipation: requests sampled from the expected demand into batch problems."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from dispatcher.anticipation import (
    AnticipationConfig,
    DemandForecast,
    RateEstimate,
    is_sample,
    sample_requests,
)
from dispatcher.clock import to_datetime, to_timestamp
from dispatcher.config import DispatchSettings, Settings
from dispatcher.core import DispatchCore
from dispatcher.geo import LatLon
from dispatcher.kpis import compute_kpis
from dispatcher.planning import BatchJob
from dispatcher.simulation import scenario_forecast, simulate
from producers.demand import DemandOptions
from producers.scenario import load_scenario
from schemas.dispatch import DriverPlanV1, RideOfferedV1, RideRejectedV1
from schemas.passenger import RideRequestedV1, TimeType
from solvers.insertion import insertion_solve
from solvers.model import Plan, Request, Route, SolveLimits, StopKind, StopRef, Unassigned
from solvers.ortools_pdp import ortools_solve
from solvers.schedule import schedule_route
from tests.unit.dispatcher.fleet_kit import (
    FOCKBEK,
    JEVENSTEDT,
    T0,
    answer_counts,
    core,
    latlon,
    of_kind,
    request,
    shift,
)


def fockbek_to_jevenstedt(rng: np.random.Generator) -> tuple[LatLon, LatLon]:
    return latlon(FOCKBEK), latlon(JEVENSTEDT)


def forecast(per_hour: float = 12.0) -> DemandForecast:
    return DemandForecast((per_hour,) * 24, "Europe/Berlin", fockbek_to_jevenstedt)


def anticipating_core(per_hour: float = 12.0, **kw: object) -> DispatchCore:
    cfg = AnticipationConfig(forecast=forecast(per_hour), horizon_s=1800, **kw)  # type: ignore[arg-type]
    return core(anticipation=cfg)


def _r1_batch(first_sample: bool) -> tuple[DispatchCore, BatchJob, Request]:
    """One vehicle, ride r1 Jevenstedt -> Fockbek, its batch with samples, and the
    sample expected first (``first_sample``) or last."""
    c = anticipating_core(per_hour=30.0)
    c.handle(shift("v1"), T0)
    c.handle(request("r1", origin=JEVENSTEDT, destination=FOCKBEK), T0)
    job = c.prepare(T0 + 2)
    assert job is not None
    samples = [r for r in job.problem.requests if is_sample(r.id)]
    pick = min if first_sample else max
    return c, job, pick(samples, key=lambda r: r.pickup_window.earliest)


def _plan_of(job: BatchJob, route: Route) -> Plan:
    """``route`` as the whole plan; every request it does not serve unassigned."""
    served = {s.request_id for s in route.stops}
    unassigned = tuple(
        Unassigned(r.id, "not served") for r in job.problem.requests if r.id not in served
    )
    return Plan(routes=(route,), unassigned=unassigned)


def test_a_batch_problem_carries_optional_samples_only_when_anticipating():
    """Samples are optional (a prize far below a real request's penalty); no forecast, none."""
    for c, expect_samples in ((core(), False), (anticipating_core(), True)):
        c.handle(shift("v1"), T0)
        c.handle(request("r1"), T0)
        job = c.prepare(T0 + 2)
        assert job is not None
        samples = [r for r in job.problem.requests if is_sample(r.id)]
        assert bool(samples) is expect_samples
        real = job.problem.request("r1")
        for s in samples:
            assert s.penalty is not None and real.penalty is not None
            assert s.penalty * 100 < real.penalty
            assert s.pickup_window.earliest >= 0


def test_sampled_stops_never_reach_a_driver_and_real_stops_keep_room_for_them():
    """A plan that serves a sample before the real pickup: the driver gets the real stops
    only, at the times planned around the sample (the room kept for the likely ride), and
    the promised window holds that time."""
    c, job, sample = _r1_batch(first_sample=True)
    order = [StopRef(sample.id, StopKind.PICKUP), StopRef(sample.id, StopKind.DROPOFF),
             StopRef("r1", StopKind.PICKUP), StopRef("r1", StopKind.DROPOFF)]  # fmt: skip
    with_sample = schedule_route(job.problem, "v1", order)
    alone = schedule_route(job.problem, "v1", order[2:])
    assert isinstance(with_sample, Route) and isinstance(alone, Route)
    assert with_sample.stops[2].service_start > alone.stops[0].service_start + 600
    outputs = c.complete(job, _plan_of(job, with_sample), T0 + 2)
    (offer,) = of_kind(outputs, RideOfferedV1)
    (driver,) = of_kind(outputs, DriverPlanV1)
    assert [s.request_id for s in driver.stops] == ["r1", "r1"]
    pickup_eta = to_timestamp(driver.stops[0].eta)
    assert abs(pickup_eta - (job.epoch + with_sample.stops[2].service_start)) <= 1
    assert to_timestamp(offer.pickup_window_start) <= pickup_eta
    assert pickup_eta <= to_timestamp(offer.pickup_window_end)


def test_a_plan_breaking_a_rule_with_its_samples_is_not_taken():
    """The checker sees the plan as solved, samples included: a sample served out of
    its window makes the plan refused (the committed routes stay)."""
    c, job, sample = _r1_batch(first_sample=False)
    order = [StopRef("r1", StopKind.PICKUP), StopRef("r1", StopKind.DROPOFF),
             StopRef(sample.id, StopKind.PICKUP), StopRef(sample.id, StopKind.DROPOFF)]  # fmt: skip
    route = schedule_route(job.problem, "v1", order)
    assert isinstance(route, Route)
    pick = route.stops[2]
    early = replace(pick, arrival=0, service_start=0, departure=60)  # before its window
    bad = replace(route, stops=(*route.stops[:2], early, route.stops[3]))
    outputs = c.complete(job, _plan_of(job, bad), T0 + 2)
    assert not of_kind(outputs, RideOfferedV1)
    assert of_kind(outputs, RideRejectedV1)


def test_every_real_request_is_still_served_when_it_can_be():
    """Samples never cost a real ride: with a vehicle free for both, both are offered."""
    c = anticipating_core(per_hour=30.0)
    c.handle(shift("v1"), T0)
    c.handle(shift("v2"), T0)
    c.handle(request("r1"), T0)
    c.handle(request("r2", origin=JEVENSTEDT, destination=FOCKBEK), T0)
    job = c.prepare(T0 + 2)
    assert job is not None and sum(is_sample(r.id) for r in job.problem.requests) >= 2
    outputs = c.complete(job, insertion_solve(job.problem, SolveLimits(0.5)), T0 + 2)
    assert {o.request_id for o in of_kind(outputs, RideOfferedV1)} == {"r1", "r2"}
    for plan in of_kind(outputs, DriverPlanV1):
        assert not any(is_sample(s.request_id) for s in plan.stops)


def test_the_demand_level_follows_the_requests_seen():
    """About 1 when requests come as forecast; more seen, a higher level; bounded; the
    forecast itself before anything could be seen."""
    cfg = AnticipationConfig(forecast=forecast(12.0), rate_window_s=3600, prior=1.0)
    levels = {}
    for per_hour in (0, 12, 36, 500):
        rate = RateEstimate(cfg)
        assert rate.scale(T0 - 3600) == 1.0  # counting begins: nothing to go by yet
        for t in np.linspace(T0 - 3590, T0, per_hour):
            rate.observe(float(t))
        levels[per_hour] = rate.scale(T0)
    assert abs(levels[12] - 1.0) < 0.01
    assert levels[0] == cfg.scale_bounds[0]
    assert 2.5 < levels[36] < 3.0
    assert levels[500] == cfg.scale_bounds[1]
    # requests older than the window no longer count
    old = RateEstimate(cfg)
    for t in np.linspace(T0 - 7200, T0 - 3700, 36):
        old.observe(float(t))
    assert old.scale(T0) == levels[0]
    # half an hour after counting began, half an hour's requests are the forecast level
    fresh = RateEstimate(cfg)
    fresh.scale(T0 - 1800)
    for t in np.linspace(T0 - 1790, T0, 6):
        fresh.observe(float(t))
    assert abs(fresh.scale(T0) - 1.0) < 0.01


def test_the_core_counts_immediate_requests_only():
    """Pre-bookings are not part of the demand that comes at short notice."""
    c = anticipating_core()
    c.handle(shift("v1"), T0)
    c.handle(request("now1"), T0)
    c.handle(request("now2"), T0 + 5)
    later = T0 + 3 * 3600
    c.handle(request("pre", requested_time=to_datetime(later), time_type=TimeType.DEPARTURE), T0)
    assert list(c.demand_rate.seen) == [T0, T0 + 5]


def test_samples_are_the_same_for_the_same_seed_time_and_level():
    """A replay plans the same: samples depend on seed, batch time and level only."""
    cfg = AnticipationConfig(forecast=forecast(12.0), horizon_s=1800, seed=3)
    a = sample_requests(cfg, T0, 2.0)
    assert a == sample_requests(cfg, T0, 2.0)
    assert a != sample_requests(cfg, T0 + 60, 2.0)
    assert all(T0 <= s.at <= T0 + 1800 for s in a)
    counts = [len(sample_requests(cfg, T0 + 60 * k, 2.0)) for k in range(200)]
    assert abs(np.mean(counts) - 12.0 * 2.0 * 0.5) < 1.0


def test_the_scenario_forecast_leaves_out_pre_bookings():
    sc = load_scenario("rendsburg")
    f = scenario_forecast(sc)
    share = 1 - sc.demand.prebooked_share
    assert f.per_hour == tuple(r * share for r in sc.demand.requests_per_hour)
    origin, destination = f.draw_od(np.random.default_rng(0))
    assert sc.area.contains(origin) and sc.area.contains(destination)


def test_a_simulated_evening_with_anticipation_keeps_every_promise():
    """The batch policy with samples: every request answered once, no promise broken,
    no sampled stop in any driver plan."""
    sc = load_scenario("rendsburg")
    result = simulate(
        sc,
        vehicles=3,
        hours=1.5,
        seed=5,
        solver=ortools_solve,
        solver_time_limit=0.2,
        policy="batch",
        demand_options=DemandOptions(scale=2.0, cutoff_s=900),
        anticipation=AnticipationConfig(forecast=scenario_forecast(sc), seed=5),
        no_show_prob=0.0,
    )
    requests = [e.request_id for _, e in result.events if isinstance(e, RideRequestedV1)]
    answers = answer_counts(result.outputs)
    assert set(answers) == set(requests) and set(answers.values()) == {1}
    plans = [e for _, e in result.outputs if isinstance(e, DriverPlanV1)]
    assert plans and not any(is_sample(s.request_id) for p in plans for s in p.stops)
    k = compute_kpis(result.history)
    assert k["served"] > 0
    assert k["promise_broken"] == 0 and k["ride_time_exceeded"] == 0
    assert k["confirmed_unaccounted"] == []


def test_settings_turn_anticipation_on_with_the_scenario_forecast():
    """DRT_DISPATCH__ANTICIPATE_S switches it on for the live service; off by default."""
    assert not Settings().core_config().anticipation.enabled
    on = Settings(dispatch=DispatchSettings(anticipate_s=900, anticipation_prize_m=5000))
    cfg = on.core_config().anticipation
    assert cfg.enabled and cfg.horizon_s == 900 and cfg.prize_m == 5000
    expected = load_scenario("rendsburg").demand.requests_per_hour
    assert cfg.forecast is not None and cfg.forecast.per_hour[20] < expected[20]


def test_the_requests_seen_are_forgotten_after_the_window():
    """A long-running service keeps only the last window's request times, anticipating
    or not."""
    rate = RateEstimate(AnticipationConfig(rate_window_s=600))
    for k in range(1000):
        rate.observe(T0 + 60 * k)
    assert len(rate.seen) == 11
