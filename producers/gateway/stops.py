"""Virtual stops near a point, for the booking map (from the scenario)."""

from __future__ import annotations

from dataclasses import dataclass

from dispatcher.geo import LatLon, haversine_m
from producers.scenario import Stop, load_scenario


@dataclass(frozen=True, slots=True)
class StopIndex:
    stops: tuple[Stop, ...]

    @classmethod
    def for_scenario(cls, name: str) -> StopIndex:
        scenario = load_scenario(name)
        return cls(scenario.stops + scenario.hubs)

    def get(self, stop_id: str) -> Stop | None:
        return next((s for s in self.stops if s.id == stop_id), None)

    def nearby(self, lat: float, lon: float, radius_m: float, limit: int) -> list[tuple[Stop, int]]:
        """Stops within ``radius_m`` of the point, nearest first, with distances in metres."""
        here = LatLon(lat, lon)
        found = [(s, round(haversine_m(here, s.point))) for s in self.stops]
        return sorted((p for p in found if p[1] <= radius_m), key=lambda p: p[1])[:limit]
