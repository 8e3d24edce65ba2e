"""Travel-time providers behind :class:`~dispatcher.geo.TravelModel`.

* :class:`AreaTravel` (the default of the scenarios): straight-line distance with
  a detour factor and a speed by area type, urban or rural: towns are discs around
  densely populated municipalities, and a leg's time integrates along its line.
* :class:`MatrixTravel`: a precomputed matrix file (JSON: ``points`` as
  ``[lat, lon]``, ``durations_s``, ``distances_m``); points not in the file (within
  ``snap_m``) fall back to another model.
* :class:`OsrmTravel`: the table service of an OSRM server
  (``GET {url}/table/v1/{profile}/{lon,lat;...}?annotations=duration,distance``),
  with a cache of every pair fetched. Blocking HTTP with a timeout; matrices are small
  (two points per open ride). On an error it falls back to another model and logs.

All return integer seconds and metres, as the solvers expect.
"""

from __future__ import annotations

import json
import logging
import math
import urllib.parse
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from dispatcher.geo import (
    EARTH_RADIUS_M,
    CrowFliesTravel,
    LatLon,
    Matrix,
    TravelModel,
    as_matrix,
)

log = logging.getLogger(__name__)


def _haversine_matrix(a: np.ndarray[Any, Any], b: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """Metres between every row of ``a`` and every row of ``b`` (degrees lat, lon)."""
    la, lb = np.radians(a), np.radians(b)
    dlat = la[:, None, 0] - lb[None, :, 0]
    dlon = la[:, None, 1] - lb[None, :, 1]
    h = (
        np.sin(dlat / 2) ** 2
        + np.cos(la[:, None, 0]) * np.cos(lb[None, :, 0]) * np.sin(dlon / 2) ** 2
    )
    result: np.ndarray[Any, Any] = 2 * EARTH_RADIUS_M * np.arcsin(np.minimum(1.0, np.sqrt(h)))
    return result


def leg_from_matrix(model: TravelModel, a: LatLon, b: LatLon) -> tuple[int, int]:
    """One leg as the 2x2 matrix gives it, so ``leg`` and ``matrix`` always agree."""
    dur, dist = model.matrix([a, b])
    return dur[0][1], dist[0][1]


@dataclass(frozen=True, slots=True)
class AreaType:
    """How roads are driven in one kind of area."""

    detour_factor: float
    speed_kmh: float


URBAN = AreaType(detour_factor=1.4, speed_kmh=28.0)
RURAL = AreaType(detour_factor=1.3, speed_kmh=50.0)


class AreaTravel:
    """Crow-flies distance with detour factor and speed by area type (urban/rural).

    Towns are discs: every centre with ``urban_density`` inhabitants per km² or more
    covers a disc of its area (``area_km2``); the rest is rural. A leg's time and
    road distance integrate along the straight line (its length inside the discs at
    the urban detour factor and speed, the rest at the rural ones), so they are
    additive: a leg split anywhere on the way takes exactly as long as the whole.
    The vehicle simulator and the planner may then start a leg from any point of an
    earlier one without breaking a promise. Distances are planar (equirectangular
    about the centres' mean latitude), fine for a region of some 50 km.
    """

    def __init__(
        self,
        centres: Sequence[tuple[LatLon, float, float]],
        urban_density: float = 500.0,
        urban: AreaType = URBAN,
        rural: AreaType = RURAL,
    ) -> None:
        if not centres:
            raise ValueError("AreaTravel needs at least one centre")
        self.urban_density = urban_density
        self.urban, self.rural = urban, rural
        lat0 = sum(p.lat for p, _, _ in centres) / len(centres)
        self._ky = math.pi / 180 * EARTH_RADIUS_M
        self._kx = self._ky * math.cos(math.radians(lat0))
        towns = [(p, area) for p, density, area in centres if density >= urban_density]
        self._discs = np.array(
            [
                [p.lon * self._kx, p.lat * self._ky, math.sqrt(area * 1e6 / math.pi)]
                for p, area in towns
            ],
            dtype=float,
        ).reshape(-1, 3)

    def _xy(self, points: Sequence[LatLon]) -> np.ndarray[Any, Any]:
        return np.array([[p.lon * self._kx, p.lat * self._ky] for p in points], dtype=float)

    def is_urban(self, points: Sequence[LatLon]) -> np.ndarray[Any, Any]:
        """Whether each point lies in a town disc."""
        xy = self._xy(points).reshape(-1, 2)
        if not len(self._discs):
            return np.zeros(len(xy), dtype=bool)
        d = np.hypot(
            xy[:, None, 0] - self._discs[None, :, 0], xy[:, None, 1] - self._discs[None, :, 1]
        )
        result: np.ndarray[Any, Any] = (d <= self._discs[None, :, 2]).any(axis=1)
        return result

    def _urban_share(
        self, a: np.ndarray[Any, Any], b: np.ndarray[Any, Any]
    ) -> np.ndarray[Any, Any]:
        """Fraction of each segment a[i] -> b[j] inside the union of the discs."""
        n, m = len(a), len(b)
        if not len(self._discs):
            return np.zeros((n, m))
        d = b[None, :, :] - a[:, None, :]  # (n, m, 2)
        dd = (d**2).sum(axis=2)[:, :, None]  # (n, m, 1)
        f = a[:, None, None, :] - self._discs[None, None, :, :2]  # (n, 1, k, 2)
        bq = 2 * (f * d[:, :, None, :]).sum(axis=3)  # (n, m, k)
        c = (f**2).sum(axis=3) - self._discs[None, None, :, 2] ** 2  # (n, 1, k)
        safe = np.where(dd > 0, dd, 1.0)
        disc = bq**2 - 4 * safe * c
        root = np.sqrt(np.maximum(disc, 0.0))
        t0 = np.clip((-bq - root) / (2 * safe), 0.0, 1.0)
        t1 = np.clip((-bq + root) / (2 * safe), 0.0, 1.0)
        t1 = np.where((disc > 0) & (dd > 0), t1, t0)  # no crossing: an empty interval
        order = np.argsort(t0, axis=2)
        t0 = np.take_along_axis(t0, order, axis=2)
        t1 = np.take_along_axis(t1, order, axis=2)
        covered = np.zeros((n, m))
        reach = np.zeros((n, m))
        for k in range(t0.shape[2]):  # union of intervals, sorted by start
            lo = np.maximum(t0[:, :, k], reach)
            covered += np.maximum(0.0, t1[:, :, k] - lo)
            reach = np.maximum(reach, t1[:, :, k])
        return covered

    def leg(self, a: LatLon, b: LatLon) -> tuple[int, int]:
        return leg_from_matrix(self, a, b)

    def min_seconds_per_metre(self) -> float:
        """No leg takes less than this many seconds per great-circle metre (before rounding).

        The faster of the two area types, with a 10 % margin for the planar
        distances (equirectangular, not great-circle).
        """
        u, r = self.urban, self.rural
        fastest = min(u.detour_factor / u.speed_kmh, r.detour_factor / r.speed_kmh)
        return 0.9 * fastest * 3.6

    def matrix(self, points: list[LatLon]) -> tuple[Matrix, Matrix]:
        if not points:
            return (), ()
        xy = self._xy(points)
        crow = np.hypot(xy[:, None, 0] - xy[None, :, 0], xy[:, None, 1] - xy[None, :, 1])
        share = self._urban_share(xy, xy)
        u, r = self.urban, self.rural
        urban_m, rural_m = crow * share * u.detour_factor, crow * (1 - share) * r.detour_factor
        seconds = urban_m / (u.speed_kmh / 3.6) + rural_m / (r.speed_kmh / 3.6)
        return as_matrix(seconds), as_matrix(urban_m + rural_m)


class MatrixTravel:
    """Travel times from a precomputed matrix file; other points use ``fallback``."""

    def __init__(
        self,
        points: Sequence[LatLon],
        durations_s: Sequence[Sequence[float]],
        distances_m: Sequence[Sequence[float]],
        fallback: TravelModel | None = None,
        snap_m: float = 25.0,
    ) -> None:
        n = len(points)
        if len(durations_s) != n or len(distances_m) != n:
            raise ValueError("matrix file: points, durations_s and distances_m differ in size")
        if any(len(r) != n for r in (*durations_s, *distances_m)):
            raise ValueError("matrix file: the matrices must be square")
        self.points = list(points)
        self._pts = np.array([[p.lat, p.lon] for p in points], dtype=float).reshape(-1, 2)
        self._dur = np.array(durations_s, dtype=float).reshape(n, n)
        self._dist = np.array(distances_m, dtype=float).reshape(n, n)
        self.fallback = fallback or CrowFliesTravel()
        self.snap_m = snap_m

    @classmethod
    def from_file(
        cls, path: str | Path, fallback: TravelModel | None = None, snap_m: float = 25.0
    ) -> MatrixTravel:
        """Read ``{"points": [[lat, lon], ...], "durations_s": [[...]], "distances_m": ...}``."""
        with Path(path).open(encoding="utf-8") as f:
            d = json.load(f)
        points = [LatLon(float(p[0]), float(p[1])) for p in d["points"]]
        return cls(points, d["durations_s"], d["distances_m"], fallback, snap_m)

    def _index(self, points: Sequence[LatLon]) -> list[int | None]:
        if not points or not len(self._pts):
            return [None] * len(points)
        pts = np.array([[p.lat, p.lon] for p in points], dtype=float)
        dist = _haversine_matrix(pts, self._pts)
        nearest = np.argmin(dist, axis=1)
        return [
            int(j) if dist[i, j] <= self.snap_m else None for i, j in enumerate(nearest.tolist())
        ]

    def leg(self, a: LatLon, b: LatLon) -> tuple[int, int]:
        return leg_from_matrix(self, a, b)

    def matrix(self, points: list[LatLon]) -> tuple[Matrix, Matrix]:
        if not points:
            return (), ()
        idx = self._index(points)
        if all(i is not None for i in idx):
            ii = np.array(idx, dtype=np.int64)
            return as_matrix(self._dur[np.ix_(ii, ii)]), as_matrix(self._dist[np.ix_(ii, ii)])
        fb_dur, fb_dist = self.fallback.matrix(points)
        dur = [list(r) for r in fb_dur]
        dist = [list(r) for r in fb_dist]
        for a, ia in enumerate(idx):
            for b, ib in enumerate(idx):
                if ia is not None and ib is not None:
                    dur[a][b] = round(self._dur[ia, ib])
                    dist[a][b] = round(self._dist[ia, ib])
        return tuple(tuple(r) for r in dur), tuple(tuple(r) for r in dist)


class OsrmTravel:
    """The OSRM table service, cached per pair of points; ``fallback`` when it fails.

    Parameters
    ----------
    url
        The OSRM server, e.g. ``http://127.0.0.1:5000``.
    profile
        The routing profile in the URL (``driving``).
    timeout_s
        Per HTTP request.
    max_points
        Larger matrices are fetched in blocks of this many sources/destinations
        (OSRM's ``--max-table-size`` defaults to 100).
    """

    def __init__(
        self,
        url: str,
        profile: str = "driving",
        timeout_s: float = 5.0,
        fallback: TravelModel | None = None,
        max_points: int = 100,
    ) -> None:
        parsed = urllib.parse.urlparse(url)
        if parsed.scheme not in {"http", "https"}:
            raise ValueError(f"OSRM url {url!r}: only http and https are understood")
        self.url = url.rstrip("/")
        self.profile = profile
        self.timeout_s = timeout_s
        self.fallback = fallback or CrowFliesTravel()
        self.max_points = max(2, max_points)
        self._cache: dict[tuple[tuple[float, float], tuple[float, float]], tuple[int, int]] = {}
        self.requests = 0
        self.failures = 0

    def _fetch(self, sources: list[LatLon], destinations: list[LatLon]) -> None:
        """Fill the cache for every source x destination pair (one table request)."""
        pts = [*sources, *destinations]
        coords = ";".join(f"{p.lon:.6f},{p.lat:.6f}" for p in pts)
        query = urllib.parse.urlencode(
            {
                "annotations": "duration,distance",
                "sources": ";".join(str(i) for i in range(len(sources))),
                "destinations": ";".join(str(len(sources) + j) for j in range(len(destinations))),
            },
            safe=";,",
        )
        url = f"{self.url}/table/v1/{self.profile}/{coords}?{query}"
        self.requests += 1
        with urllib.request.urlopen(url, timeout=self.timeout_s) as response:  # noqa: S310
            body = json.loads(response.read())
        if body.get("code") != "Ok":
            raise RuntimeError(f"OSRM answered {body.get('code')}: {body.get('message', '')}")
        durations, distances = body["durations"], body["distances"]
        for i, a in enumerate(sources):
            for j, b in enumerate(destinations):
                s, m = durations[i][j], distances[i][j]
                if s is None or m is None:  # unroutable: estimate instead
                    s, m = self.fallback.leg(a, b)
                self._cache[(a.key(), b.key())] = (round(s), round(m))

    def _ensure(self, points: list[LatLon]) -> bool:
        unique = list({p.key(): p for p in points}.values())
        missing = [p for p in unique if any((p.key(), q.key()) not in self._cache for q in unique)]
        if not missing:
            return True
        step = self.max_points // 2
        try:
            for i in range(0, len(missing), step):
                block = missing[i : i + step]
                for j in range(0, len(unique), step):
                    self._fetch(block, unique[j : j + step])
                    self._fetch(unique[j : j + step], block)
        except (OSError, ValueError, KeyError, RuntimeError) as exc:
            self.failures += 1
            log.warning("OSRM table request failed (%s); estimating instead", exc)
            return False
        return True

    def leg(self, a: LatLon, b: LatLon) -> tuple[int, int]:
        return leg_from_matrix(self, a, b)

    def matrix(self, points: list[LatLon]) -> tuple[Matrix, Matrix]:
        if not points:
            return (), ()
        if not self._ensure(points):
            return self.fallback.matrix(points)
        dur = tuple(
            tuple(0 if a.key() == b.key() else self._cache[(a.key(), b.key())][0] for b in points)
            for a in points
        )
        dist = tuple(
            tuple(0 if a.key() == b.key() else self._cache[(a.key(), b.key())][1] for b in points)
            for a in points
        )
        return dur, dist


def density_centres(
    municipalities: Sequence[Any],
) -> list[tuple[LatLon, float, float]]:
    """``(reference point, inhabitants per km², km²)`` of objects with lat, lon,
    population and area_km2 (the scenario's municipalities)."""
    return [
        (
            LatLon(m.lat, m.lon),
            m.population / m.area_km2 if m.area_km2 > 0 else math.inf,
            m.area_km2,
        )
        for m in municipalities
    ]
