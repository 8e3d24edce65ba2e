"""Coordinates and travel times. Pure: no I/O.

The default travel model estimates road time from straight-line distance with
a detour factor and an average speed, which is what a rural on-demand service
without a road graph can do. A model exposes ``matrix`` (for the solver) and
``leg`` (for the vehicle simulator and ETAs), both in integer seconds and metres.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

EARTH_RADIUS_M = 6_371_000.0


@dataclass(frozen=True, slots=True)
class LatLon:
    lat: float
    lon: float

    def key(self) -> tuple[float, float]:
        return (round(self.lat, 6), round(self.lon, 6))


def haversine_m(a: LatLon, b: LatLon) -> float:
    """Great-circle distance in metres."""
    p1, p2 = math.radians(a.lat), math.radians(b.lat)
    dp, dl = p2 - p1, math.radians(b.lon - a.lon)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(h)))


def haversine_many(points: list[LatLon], to: LatLon) -> np.ndarray[Any, Any]:
    """Great-circle metres from each of ``points`` to ``to`` (vectorised)."""
    lat = np.radians(np.fromiter((p.lat for p in points), float, len(points)))
    lon = np.radians(np.fromiter((p.lon for p in points), float, len(points)))
    lat0, lon0 = math.radians(to.lat), math.radians(to.lon)
    h = np.sin((lat - lat0) / 2) ** 2 + np.cos(lat) * math.cos(lat0) * np.sin((lon - lon0) / 2) ** 2
    result: np.ndarray[Any, Any] = 2 * EARTH_RADIUS_M * np.arcsin(np.minimum(1.0, np.sqrt(h)))
    return result


def interpolate(a: LatLon, b: LatLon, fraction: float) -> LatLon:
    """The point ``fraction`` of the way from ``a`` to ``b`` (fine for short legs)."""
    f = min(1.0, max(0.0, fraction))
    return LatLon(a.lat + (b.lat - a.lat) * f, a.lon + (b.lon - a.lon) * f)


Matrix = tuple[tuple[int, ...], ...]


def as_matrix(values: np.ndarray[Any, Any]) -> Matrix:
    """A float array rounded to the integer matrix the solvers index (``tolist`` is C-fast)."""
    rows: list[list[int]] = np.rint(values).astype(np.int64).tolist()
    return tuple(map(tuple, rows))


class TravelModel(Protocol):
    """Road travel time (s) and distance (m) between points."""

    def leg(self, a: LatLon, b: LatLon) -> tuple[int, int]: ...

    def matrix(self, points: list[LatLon]) -> tuple[Matrix, Matrix]: ...


@dataclass(frozen=True, slots=True)
class CrowFliesTravel:
    """Straight-line distance times ``detour_factor``, driven at ``speed_kmh``."""

    detour_factor: float = 1.35
    speed_kmh: float = 40.0

    def leg(self, a: LatLon, b: LatLon) -> tuple[int, int]:
        metres = haversine_m(a, b) * self.detour_factor
        return round(metres / (self.speed_kmh / 3.6)), round(metres)

    def min_seconds_per_metre(self) -> float:
        """No leg takes less than this many seconds per great-circle metre (before rounding)."""
        return self.detour_factor / (self.speed_kmh / 3.6)

    def matrix(self, points: list[LatLon]) -> tuple[Matrix, Matrix]:
        if not points:
            return (), ()
        lat = np.radians(np.array([p.lat for p in points]))
        lon = np.radians(np.array([p.lon for p in points]))
        dlat = lat[:, None] - lat[None, :]
        dlon = lon[:, None] - lon[None, :]
        h = (
            np.sin(dlat / 2) ** 2
            + np.cos(lat)[:, None] * np.cos(lat)[None, :] * np.sin(dlon / 2) ** 2
        )
        metres = 2 * EARTH_RADIUS_M * np.arcsin(np.minimum(1.0, np.sqrt(h))) * self.detour_factor
        seconds = metres / (self.speed_kmh / 3.6)
        return as_matrix(seconds), as_matrix(metres)
