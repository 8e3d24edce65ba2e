"""Best-known values from the ``bks.csv`` files next to the benchmark instances.

DARP (``darp-cordeau/bks.csv``): the ``bks`` column, except where its status
says ``INCONSISTENT`` (pr04), where the verified upper bound is used instead;
where ``bks`` is empty, the verified upper bound, else the npbenchmark value.
PDPTW (``pdptw-lilim/bks.csv``): ``vehicles`` and ``distance``.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class Bks:
    """A reference value: distance (and vehicles for PDPTW), with its status text."""

    instance: str
    value: float
    vehicles: int | None = None
    status: str = ""


def _float(x: str | None) -> float | None:
    try:
        return float(x) if x not in (None, "") else None
    except ValueError:
        return None


def load_bks(path: Path) -> dict[str, Bks]:
    """``{instance name: Bks}`` from a DARP or PDPTW ``bks.csv``."""
    out: dict[str, Bks] = {}
    with Path(path).open(newline="") as f:
        for row in csv.DictReader(f):
            name = row["instance"]
            status = row.get("bks_status") or row.get("status") or ""
            if "bks" in row:
                value = _float(row["bks"])
                upper = _float(row.get("verified_upper_bound"))
                if (value is None or status.startswith("INCONSISTENT")) and upper is not None:
                    value = upper
                if value is None:
                    value = _float(row.get("npbenchmark_best"))
                if value is not None:
                    out[name] = Bks(name, value, None, status)
            else:
                value = _float(row.get("distance"))
                vehicles = _float(row.get("vehicles"))
                if value is not None:
                    out[name] = Bks(name, value, int(vehicles) if vehicles else None, status)
    return out
