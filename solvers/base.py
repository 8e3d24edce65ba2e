"""The solver interface: a pure function ``problem -> plan`` with a time limit."""

from __future__ import annotations

from typing import Protocol

from solvers.model import Plan, Problem, SolveLimits


class SolverError(Exception):
    """A solver failed in a way the caller cannot repair by retrying the same call."""

    retriable = False


class Solver(Protocol):
    """``solver(problem, limits, seed=...) -> Plan``; deterministic for a seed.

    A solver sets up no logging, touches no metrics and performs no I/O. Warm
    starts come in through ``problem.hint``.
    """

    def __call__(self, problem: Problem, limits: SolveLimits, *, seed: int = 0) -> Plan: ...
