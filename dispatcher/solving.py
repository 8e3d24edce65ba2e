"""Run a solver on a problem; the function a process pool executes.

Top-level and importable, so a spawn-started worker can unpickle the call.
"""

from __future__ import annotations

import importlib
from typing import cast

from solvers.base import Solver
from solvers.model import Plan, Problem, SolveLimits


def solve(problem: Problem, solver: str, time_limit: float, seed: int) -> Plan:
    """Solve with the named solver: "ortools", "insertion" or "package.module:function"."""
    limits = SolveLimits(time_limit=time_limit)
    if solver == "insertion":
        from solvers.insertion import insertion_solve  # noqa: PLC0415

        return insertion_solve(problem, limits, seed=seed)
    if solver == "ortools":
        from solvers.ortools_pdp import ortools_solve  # noqa: PLC0415

        return ortools_solve(problem, limits, seed=seed)
    if ":" in solver:  # a plug-in solver (tests use this to make the solver fail)
        module, _, name = solver.partition(":")
        function = cast(Solver, getattr(importlib.import_module(module), name))
        return function(problem, limits, seed=seed)
    raise ValueError(f"unknown solver {solver!r}")


def warm_up() -> bool:
    """Import the solver modules in a fresh worker before the first batch."""
    import solvers.insertion  # noqa: PLC0415
    import solvers.ortools_pdp  # noqa: F401, PLC0415

    return True
