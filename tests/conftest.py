"""Fixtures shared by all test suites: paths to the repository and shared data.

The shared data (benchmark instances, geodata) lives next to the repository in
``../shared``, outside version control; ``DRT_SHARED_DIR`` points elsewhere.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_DIR = Path(__file__).resolve().parents[1]


def in_ci() -> bool:
    """Whether we run under CI, where missing services or data must fail."""
    return os.environ.get("CI", "").lower() not in ("", "0", "false", "no")


@pytest.fixture(scope="session")
def repo_dir() -> Path:
    """The repository root."""
    return REPO_DIR


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """The shared data directory, ``<repo>/../shared`` unless ``DRT_SHARED_DIR``."""
    path = Path(os.environ.get("DRT_SHARED_DIR", REPO_DIR.parent / "shared")).resolve()
    if not path.is_dir():
        message = f"shared data directory {path} not found; set DRT_SHARED_DIR"
        if in_ci():
            pytest.fail(message)
        pytest.skip(message)
    return path


@pytest.fixture(scope="session")
def benchmarks_dir(shared_dir: Path) -> Path:
    """Benchmark instances (``darp-cordeau``, ``pdptw-lilim``, ...)."""
    return shared_dir / "benchmarks"


@pytest.fixture(scope="session")
def geo_dir(shared_dir: Path) -> Path:
    """Geodata for the Rendsburg-Eckernförde region."""
    return shared_dir / "geo"
