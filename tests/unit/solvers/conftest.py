"""Fixtures for the solver tests: benchmark paths and small hand-made problems.

Benchmark files are read in place from ``<repo>/../shared/benchmarks`` (never
copied into the project); the path is computed from this file's location.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from solvers.model import Problem, Request
from tests.unit.solvers.kit import line_problem

#: tests/unit/solvers/conftest.py -> parents[3] is the repository root.
REPO = Path(__file__).resolve().parents[3]
BENCHMARKS = (REPO / ".." / "shared" / "benchmarks").resolve()


@pytest.fixture(scope="session")
def benchmarks() -> Path:
    """The shared benchmark folder; the tests fail (not skip) when it is missing."""
    assert BENCHMARKS.is_dir(), f"benchmarks not found at {BENCHMARKS}"
    return BENCHMARKS


@pytest.fixture(scope="session")
def cordeau_ab(benchmarks: Path) -> Path:
    """Cordeau (2006) a-instances."""
    return benchmarks / "darp-cordeau" / "instances" / "cordeau2006_ab"


@pytest.fixture(scope="session")
def cordeau_pr(benchmarks: Path) -> Path:
    """Cordeau & Laporte (2003) pr-instances."""
    return benchmarks / "darp-cordeau" / "instances" / "cordeau_laporte2003_pr"


@pytest.fixture(scope="session")
def lilim_100(benchmarks: Path) -> Path:
    """Li & Lim 100-customer instances."""
    return benchmarks / "pdptw-lilim" / "instances" / "pdp_100"


@pytest.fixture
def simple() -> Problem:
    """Two requests on a line, one vehicle: 1->3 and 2->5."""
    return line_problem(
        (
            Request("a", 1, 3, pickup_service=5, dropoff_service=5, max_ride_time=100),
            Request("b", 2, 5, pickup_service=5, dropoff_service=5, penalty=10_000),
        )
    )
