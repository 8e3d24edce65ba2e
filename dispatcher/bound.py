"""How many of a simulated day's requests a clairvoyant planner could have served.

An online dispatcher answers each request when it arrives, without knowing the
requests still to come; a ride it accepts now may block two it would rather have
taken later. :func:`clairvoyant_plan` measures what that costs: it hands every
request of a simulated day (as the same core admits and snaps it, with the same
windows, ride times and vehicles) to the solver at the start of the day, and
counts the rides its plan serves. The solver is a heuristic, so the count is a
lower bound on what perfect foresight allows, and an upper reference for any
online policy: the gap between the two is the value of knowing the future, which
no re-optimisation of the rides already known can recover.

Requests the passenger cancels during the day are left out (they would not ride
whatever the plan); no-shows are not known in advance and stay in.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace

from dispatcher.core import DispatchCore
from dispatcher.planning import break_id, build_problem
from dispatcher.simulation import SimulationResult
from schemas.passenger import RideCancelledV1, RideRequestedV1
from schemas.vehicle import ShiftStartedV1
from solvers.base import Solver
from solvers.check import check_plan
from solvers.model import SolveLimits


@dataclass(frozen=True, slots=True)
class Clairvoyant:
    """The offline plan of a simulated day's requests."""

    requests: int  # requested during the day
    cancelled: int  # left out: cancelled by the passenger
    admissible: int  # admitted by the core (in the area, in service hours, ...)
    planned: int  # rides the offline plan serves
    feasible: bool  # the plan passed the independent checker
    seconds: float
    #: planned driving: from each vehicle's start through its stops back to its depot
    vehicle_km: float = 0.0

    def as_dict(self) -> dict[str, object]:
        return {
            "requests": self.requests,
            "cancelled": self.cancelled,
            "admissible": self.admissible,
            "planned": self.planned,
            "feasible": self.feasible,
            "seconds": round(self.seconds, 1),
            "vehicle_km": round(self.vehicle_km, 1),
        }


def clairvoyant_plan(
    result: SimulationResult,
    *,
    time_limit: float,
    solver: Solver | None = None,
) -> Clairvoyant:
    """Plan every request of ``result``'s day at once, as if all were known at its start.

    Requests are admitted, snapped and windowed by a core with the simulation's own
    configuration and travel model; ``solver`` (default: the OR-Tools/LNS solver)
    gets ``time_limit`` seconds.
    """
    if result.core_config is None or result.travel is None:
        raise ValueError("the simulation result does not say how its core was configured")
    if solver is None:
        from solvers.ortools_pdp import ortools_solve  # noqa: PLC0415

        solver = ortools_solve
    config = replace(
        result.core_config,
        mode="batch",
        batch_window_s=float("inf"),  # nothing is solved while the requests come in
        batch_max_size=1_000_000,
        reopt_every_s=0.0,
    )
    core = DispatchCore(config, result.travel)
    events = sorted(result.events, key=lambda te: te[0])
    cancelled = {e.request_id for _, e in events if isinstance(e, RideCancelledV1)}
    for t, e in events:
        if isinstance(e, ShiftStartedV1):
            core.handle(e, t)
    requests = 0
    admitted: list[str] = []
    for t, e in events:
        if not isinstance(e, RideRequestedV1):
            continue
        requests += 1
        if e.request_id in cancelled:
            continue
        handled = core.handle(e, t)
        if not handled.outputs and handled.dead_letter is None:
            admitted.append(e.request_id)
    job = build_problem(core.state, admitted, result.start, core.travel, config.planning)
    t0 = time.monotonic()
    plan = solver(job.problem, SolveLimits(time_limit))
    seconds = time.monotonic() - t0
    breaks = {break_id(v) for v in core.state.vehicles}
    return Clairvoyant(
        requests=requests,
        cancelled=len(cancelled),
        admissible=len(admitted),
        planned=len(plan.served - breaks),
        feasible=not check_plan(job.problem, plan),
        seconds=seconds,
        vehicle_km=sum(r.distance for r in plan.routes if r.stops) / 1000.0,
    )
