"""Travel-time providers behind :class:`~dispatcher.geo.TravelModel`.

* :class:`AreaTravel` (the default of the scenarios): straight-line distance with
  a detour factor and a speed by area type, urban or rural. A point is urban when
  the municipality nearest to it is densely populated; a leg is driven half at the
  speed of its start's area type and half at its end's.
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

from dispatcher.geo import EARTH_RADIUS_M, CrowFliesTravel, LatLon, Matrix, TravelModel

log = logging.getLogger(__name__)


def _haversine_matrix(a: np.ndarray[Any, Any], b: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """Metres between every row of ``a`` and every row of ``b`` (degrees lat, lon)."""
    la, lb = np.radians(a), np.radians(b)
    dlat = la[:, None, 0] - lb[None, :, 0]
    dlon = la[:, None, 1] - lb[None, :, 1]
    h = np.sin(dlat / 2) ** 2 + np.cos(la[:, None, 0]) * np.cos(lb[None, :, 0]) * np.sin(
        dlon / 2
    ) ** 2
    result: np.ndarray[Any, Any] = 2 * EARTH_RADIUS_M * np.arcsin(np.minimum(1.0, np.sqrt(h)))
    return result


def _as_matrix(values: np.ndarray[Any, Any]) -> Matrix:
    return tuple(tuple(int(x) for x in row) for row in np.rint(values).astype(np.int64))


@dataclass(frozen=True, slots=True)
class AreaType:
    """How roads are driven in one kind of area."""

    detour_factor: float
    speed_kmh: float


URBAN = AreaType(detour_factor=1.4, speed_kmh=28.0)
RURAL = AreaType(detour_factor=1.3, speed_kmh=50.0)


class AreaTravel:
    """Crow-flies distance with detour factor and speed by area type (urban/rural).

    ``centres`` are reference points with their population density (per km²); a
    point takes the type of the nearest centre: urban at ``urban_density`` or more.
    """

    def __init__(
        self,
        centres: Sequence[tuple[LatLon, float]],
        urban_density: float = 500.0,
        urban: AreaType = URBAN,
        rural: AreaType = RURAL,
    ) -> None:
        if not centres:
            raise ValueError("AreaTravel needs at least one centre")
        self.urban_density = urban_density
        self.urban, self.rural = urban, rural
        self._centres = np.array([[p.lat, p.lon] for p, _ in centres], dtype=float)
        self._urban = np.array([d >= urban_density for _, d in centres], dtype=bool)

    def is_urban(self, points: Sequence[LatLon]) -> np.ndarray[Any, Any]:
        """Whether each point is urban (by its nearest centre)."""
        pts = np.array([[p.lat, p.lon] for p in points], dtype=float).reshape(-1, 2)
        nearest = np.argmin(_haversine_matrix(pts, self._centres), axis=1)
        result: np.ndarray[Any, Any] = self._urban[nearest]
        return result

    def _params(self, points: Sequence[LatLon]) -> tuple[np.ndarray[Any, Any], ...]:
        urban = self.is_urban(points)
        detour = np.where(urban, self.urban.detour_factor, self.rural.detour_factor)
        speed = np.where(urban, self.urban.speed_kmh, self.rural.speed_kmh) / 3.6
        return detour, speed

    def leg(self, a: LatLon, b: LatLon) -> tuple[int, int]:
        dur, dist = self.matrix([a, b])
        return dur[0][1], dist[0][1]

    def matrix(self, points: list[LatLon]) -> tuple[Matrix, Matrix]:
        if not points:
            return (), ()
        pts = np.array([[p.lat, p.lon] for p in points], dtype=float)
        crow = _haversine_matrix(pts, pts)
        detour, speed = self._params(points)
        factor = (detour[:, None] + detour[None, :]) / 2
        metres = crow * factor
        # half the leg in the start's area type, half in the end's
        seconds = metres / 2 / speed[:, None] + metres / 2 / speed[None, :]
        return _as_matrix(seconds), _as_matrix(metres)


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
        dur, dist = self.matrix([a, b])
        return dur[0][1], dist[0][1]

    def matrix(self, points: list[LatLon]) -> tuple[Matrix, Matrix]:
        if not points:
            return (), ()
        idx = self._index(points)
        if all(i is not None for i in idx):
            ii = np.array(idx, dtype=np.int64)
            return _as_matrix(self._dur[np.ix_(ii, ii)]), _as_matrix(self._dist[np.ix_(ii, ii)])
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
                "destinations": ";".join(
                    str(len(sources) + j) for j in range(len(destinations))
                ),
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
        dur, dist = self.matrix([a, b])
        return dur[0][1], dist[0][1]

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
) -> list[tuple[LatLon, float]]:
    """``(reference point, inhabitants per km²)`` of objects with lat, lon,
    population and area_km2 (the scenario's municipalities)."""
    return [
        (LatLon(m.lat, m.lon), m.population / m.area_km2 if m.area_km2 > 0 else math.inf)
        for m in municipalities
    ]
