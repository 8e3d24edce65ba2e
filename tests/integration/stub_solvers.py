"""Solvers that misbehave: `DRT_SOLVER__NAME=tests.integration.stub_solvers:fail`."""

from __future__ import annotations

import time

from solvers.model import Plan, Problem, SolveLimits


def fail(problem: Problem, limits: SolveLimits, *, seed: int = 0) -> Plan:
    """Raise, as a solver with a bug would."""
    raise RuntimeError("stub solver failure")


def stall(problem: Problem, limits: SolveLimits, *, seed: int = 0) -> Plan:
    """Overrun every time limit."""
    time.sleep(120)
    raise RuntimeError("unreachable")
