"""drt-dispatch solvers.

Entry points (all pure: no I/O, no logging, no clock but their own time limit):

* :func:`solvers.ortools_pdp.ortools_solve` ``(problem, limits, *, seed=0) -> Plan``:
  the main solver (insertion start, ruin-and-recreate, then OR-Tools guided local
  search; final times from the scheduler). With ride times (DARP) the
  ruin-and-recreate search gets the whole budget and OR-Tools is skipped. Falls
  back to the insertion plan with ``stats.fallback=True`` when OR-Tools finds nothing.
* :func:`solvers.insertion.insertion_solve` ``(problem, limits, *, seed=0) -> Plan``:
  fast cheapest feasible insertion; the fallback. Keeps hinted routes.
* :func:`solvers.insertion.insert_request` ``(problem, routes, request) -> Plan | None``:
  put one request into existing routes, their order kept.
* :func:`solvers.lns.lns_solve`: the ruin-and-recreate search alone.
* :func:`solvers.schedule.schedule_route` ``(problem, vehicle_id, stops) -> Route | Infeasible``:
  times of a fixed stop order (ride-time-aware), or why it is infeasible.
* :func:`solvers.check.check_plan` ``(problem, plan) -> list[str]``: independent checker.
* :mod:`solvers.readers`, :mod:`solvers.bench`: benchmark files and runs.
"""
