"""A service scenario (places, stops, demand, fleet), loaded from ``producers/data/*.json``.

``load_scenario("rendsburg")`` reads the committed file that
``producers/build_scenario.py`` generated from ``../shared/geo``; a path to another
JSON file of the same shape works too. Everything is frozen and plain, so a
scenario can be shared between the demand generator, the fleet simulator and the
report.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from dispatcher.core import Area
from dispatcher.geo import CrowFliesTravel, LatLon, TravelModel
from dispatcher.travel import RURAL, URBAN, AreaTravel, AreaType, density_centres

DATA_DIR = Path(__file__).resolve().parent / "data"


@dataclass(frozen=True, slots=True)
class Municipality:
    """A Gemeinde: Destatis reference point and population."""

    ags: str
    name: str
    verband: str
    lat: float
    lon: float
    population: int
    area_km2: float


@dataclass(frozen=True, slots=True)
class Stop:
    """A (virtual or hub) stop a ride starts or ends at.

    ``weight`` is the population the stop stands for (hubs: 0, their attraction
    comes from ``DemandSettings.hub_share``); ``municipality`` is empty for hubs.
    """

    id: str
    name: str
    lat: float
    lon: float
    municipality: str = ""
    weight: float = 0.0
    hub: bool = False

    @property
    def point(self) -> LatLon:
        return LatLon(self.lat, self.lon)


@dataclass(frozen=True, slots=True)
class DemandSettings:
    """Parameters of the demand generator.

    ``requests_per_hour`` has 24 values, one per local hour: the expected number of
    rides whose desired pickup (or, for arrival bookings, arrival) falls in that
    hour. Shares are of all generated rides. ``distance_decay_m`` is ``d0`` in the
    gravity weight ``population * exp(-distance / d0)``; destinations closer than
    ``min_trip_m`` are not drawn. ``seats_weights[i]`` is the weight of ``i + 1``
    seats.
    """

    requests_per_hour: tuple[float, ...]
    prebooked_share: float = 0.3
    arrival_share: float = 0.3
    wheelchair_share: float = 0.03
    cancel_share: float = 0.04
    hub_share: float = 0.15
    distance_decay_m: float = 2000.0
    min_trip_m: float = 800.0
    seats_weights: tuple[float, ...] = (0.8, 0.13, 0.05, 0.02)

    def __post_init__(self) -> None:
        if len(self.requests_per_hour) != 24 or min(self.requests_per_hour) < 0:
            raise ValueError("requests_per_hour needs 24 non-negative values")


@dataclass(frozen=True, slots=True)
class FleetDefaults:
    """Default fleet: how many vehicles, their capacity, the depot and the break rule.

    A shift longer than ``break_after_h`` hours gets a break of ``break_min`` minutes
    that starts between ``break_after_h`` and ``break_after_h + break_window_h``
    hours into the shift (0 minutes: no breaks).
    """

    vehicles: int
    seats: int
    wheelchairs: int
    depot_name: str
    depot_lat: float
    depot_lon: float
    break_min: float = 0.0
    break_after_h: float = 4.0
    break_window_h: float = 2.0

    @property
    def depot(self) -> LatLon:
        return LatLon(self.depot_lat, self.depot_lon)


@dataclass(frozen=True, slots=True)
class Scenario:
    """A region to simulate.

    Attributes
    ----------
    name, zone
        Scenario name and the dispatcher zone id its requests carry.
    timezone
        IANA time zone of the local hours (``Europe/Berlin``).
    area
        The service area bounding box (all stops lie inside).
    service_start_hour, service_end_hour
        Local hours of the default service period; the end may exceed 24 (next day).
    municipalities, hubs, stops
        Places; ``stops`` are the synthetic virtual stops, ``hubs`` the railway stops.
    demand, fleet
        Demand generator parameters and fleet defaults.
    detour_factor, speed_kmh
        Parameters of the crow-flies travel model.
    travel_model, urban_density, urban, rural
        ``"area"``: speed and detour factor by area type (a point is urban when its
        nearest municipality has ``urban_density`` inhabitants per km² or more);
        ``"crow"``: one detour factor and speed everywhere.
    reference
        Published facts about the real service, for comparison in the report.
    """

    name: str
    zone: str
    timezone: str
    description: str
    area: Area
    service_start_hour: float
    service_end_hour: float
    municipalities: tuple[Municipality, ...]
    hubs: tuple[Stop, ...]
    stops: tuple[Stop, ...]
    demand: DemandSettings
    fleet: FleetDefaults
    detour_factor: float
    speed_kmh: float
    reference: dict[str, Any]
    notes: tuple[str, ...] = ()
    travel_model: str = "crow"
    urban_density: float = 500.0
    urban: AreaType = URBAN
    rural: AreaType = RURAL

    def travel(self) -> TravelModel:
        """The travel model the scenario assumes."""
        if self.travel_model == "area" and self.municipalities:
            return AreaTravel(
                density_centres(self.municipalities), self.urban_density, self.urban, self.rural
            )
        return CrowFliesTravel(detour_factor=self.detour_factor, speed_kmh=self.speed_kmh)

    def local_time(self, day: date, hour: float) -> float:
        """POSIX seconds of ``hour`` (may exceed 24) local time on ``day``."""
        midnight = datetime.combine(day, time(0), tzinfo=ZoneInfo(self.timezone))
        return (midnight + timedelta(hours=hour)).timestamp()

    def local_hour(self, t: float) -> int:
        """The local hour of day (0..23) at POSIX time ``t``."""
        return datetime.fromtimestamp(t, tz=ZoneInfo(self.timezone)).hour


def _stop(d: dict[str, Any], hub: bool = False) -> Stop:
    return Stop(
        id=d["id"],
        name=d["name"],
        lat=float(d["lat"]),
        lon=float(d["lon"]),
        municipality=d.get("municipality", ""),
        weight=float(d.get("weight", 0.0)),
        hub=hub,
    )


def scenario_from_dict(d: dict[str, Any]) -> Scenario:
    """Build a :class:`Scenario` from the JSON structure ``build_scenario`` writes."""
    dm = dict(d["demand"])
    fleet = d["fleet"]
    travel = d["travel"]
    return Scenario(
        name=d["name"],
        zone=d["zone"],
        timezone=d["timezone"],
        description=d.get("description", ""),
        area=Area(**d["area"]),
        service_start_hour=float(d["service_hours"]["start_hour"]),
        service_end_hour=float(d["service_hours"]["end_hour"]),
        municipalities=tuple(Municipality(**m) for m in d["municipalities"]),
        hubs=tuple(_stop(h, hub=True) for h in d["hubs"]),
        stops=tuple(_stop(s) for s in d["stops"]),
        demand=DemandSettings(
            **{
                **dm,
                "requests_per_hour": tuple(float(x) for x in dm["requests_per_hour"]),
                "seats_weights": tuple(float(x) for x in dm["seats_weights"]),
            }
        ),
        fleet=FleetDefaults(
            vehicles=int(fleet["vehicles"]),
            seats=int(fleet["seats"]),
            wheelchairs=int(fleet["wheelchairs"]),
            depot_name=fleet["depot"]["name"],
            depot_lat=float(fleet["depot"]["lat"]),
            depot_lon=float(fleet["depot"]["lon"]),
            break_min=float(fleet.get("break_min", 0.0)),
            break_after_h=float(fleet.get("break_after_h", 4.0)),
            break_window_h=float(fleet.get("break_window_h", 2.0)),
        ),
        detour_factor=float(travel["detour_factor"]),
        speed_kmh=float(travel["speed_kmh"]),
        reference=dict(d.get("reference", {})),
        notes=tuple(d.get("notes", ())),
        travel_model=str(travel.get("model", "crow")),
        urban_density=float(travel.get("urban_density_per_km2", 500.0)),
        urban=AreaType(**travel["urban"]) if "urban" in travel else URBAN,
        rural=AreaType(**travel["rural"]) if "rural" in travel else RURAL,
    )


def load_scenario(name_or_path: str | Path = "rendsburg") -> Scenario:
    """Load a scenario by name (``producers/data/<name>.json``) or from a JSON file."""
    path = Path(name_or_path)
    if not path.suffix:
        path = DATA_DIR / f"{name_or_path}.json"
    with path.open(encoding="utf-8") as f:
        return scenario_from_dict(json.load(f))
