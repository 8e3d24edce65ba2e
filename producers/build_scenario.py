"""Build ``producers/data/rendsburg.json`` from the shared geodata in ``../shared/geo``.

Run from the repository root::

    .venv/bin/python -m producers.build_scenario [--geo ../shared/geo] [--out producers/data]

The municipalities and railway stops are copied from the CSVs (see
``../shared/geo/README.md`` for their sources and licences). The virtual stops are
**synthetic**: there is no open stop data for the Rendsburg Rufbus, so each
municipality gets a number of stops in proportion to its population, scattered
deterministically around its Destatis reference point within a radius derived from
its area. The demand profile, fleet defaults and service hours are assumptions for
the demo, documented in the ``notes`` of the file. The JSON is committed, so the
simulation runs on a fresh clone without ``../shared``.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import math
import random
from pathlib import Path
from typing import Any

ZONE = "rendsburg"
MUNICIPALITIES_CSV = "rendsburg_eckernfoerde_municipalities.csv"
STATIONS_CSV = "db_stations_rendsburg_eckernfoerde_bbox_2016.csv"
SEED_TEXT = "rendsburg-virtual-stops-v1"

#: Inhabitants per virtual stop, and the bounds on stops per municipality.
PEOPLE_PER_STOP = 600
MIN_STOPS, MAX_STOPS = 2, 40

#: Requests per local hour (0..23). Assumed: the real Rufbus Rendsburg runs mainly in
#: the evening and at night; the profile peaks after work and again late evening.
REQUESTS_PER_HOUR = [
    6, 4, 3, 1, 1, 2, 6, 9, 9, 8, 8, 9,
    10, 10, 11, 12, 13, 16, 15, 13, 11, 10, 11, 9,
]  # fmt: skip

_TRANSLIT = str.maketrans({"ä": "ae", "ö": "oe", "ü": "ue", "ß": "ss", "Ä": "Ae", "Ö": "Oe",
                           "Ü": "Ue"})  # fmt: skip


def slug(name: str) -> str:
    """An ASCII identifier for a place name: ``Büdelsdorf`` -> ``buedelsdorf``."""
    text = name.translate(_TRANSLIT).lower()
    out = "".join(c if c.isalnum() else "-" for c in text)
    while "--" in out:
        out = out.replace("--", "-")
    return out.strip("-")


def _rng(key: str) -> random.Random:
    digest = hashlib.sha256(f"{SEED_TEXT}:{key}".encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))  # noqa: S311 - not crypto


def read_municipalities(geo: Path) -> list[dict[str, Any]]:
    """The project-region municipalities, in file order."""
    with (geo / MUNICIPALITIES_CSV).open(encoding="utf-8", newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["project_region"] == "yes"]
    return [
        {
            "ags": r["ags"],
            "name": r["name"],
            "verband": r["verband"],
            "lat": float(r["lat"]),
            "lon": float(r["lon"]),
            "population": int(r["population"]),
            "area_km2": float(r["area_km2"]),
        }
        for r in rows
    ]


def _all_municipalities(geo: Path) -> list[tuple[float, float, bool]]:
    with (geo / MUNICIPALITIES_CSV).open(encoding="utf-8", newline="") as f:
        return [
            (float(r["lat"]), float(r["lon"]), r["project_region"] == "yes")
            for r in csv.DictReader(f)
        ]


def _dist_m(a: tuple[float, float], b: tuple[float, float]) -> float:
    dy = (a[0] - b[0]) * 111_195.0
    dx = (a[1] - b[1]) * 111_195.0 * math.cos(math.radians((a[0] + b[0]) / 2))
    return math.hypot(dx, dy)


def read_hubs(geo: Path) -> list[dict[str, Any]]:
    """Railway stops whose nearest municipality reference point is in the project region."""
    places = _all_municipalities(geo)
    hubs = []
    with (geo / STATIONS_CSV).open(encoding="utf-8", newline="") as f:
        for r in csv.DictReader(f):
            p = (float(r["lat"]), float(r["lon"]))
            nearest = min(places, key=lambda m: _dist_m(p, (m[0], m[1])))
            if nearest[2]:
                hubs.append(
                    {
                        "id": f"rail-{r['ds100'].lower()}",
                        "name": f"{r['name']} Bahnhof",
                        "station": r["name"],
                        "eva_nr": r["eva_nr"],
                        "ds100": r["ds100"],
                        "traffic": r["verkehr"],
                        "lat": p[0],
                        "lon": p[1],
                    }
                )
    return hubs


def virtual_stops(municipalities: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Synthetic stops: the reference point plus points scattered within the built-up core.

    The scatter radius is 45 % of the radius of a disc with the municipality's area
    (villages are smaller than their Gemarkung), uniform over the disc.
    """
    stops = []
    for m in municipalities:
        n = min(MAX_STOPS, max(MIN_STOPS, round(m["population"] / PEOPLE_PER_STOP)))
        radius_m = 0.45 * math.sqrt(m["area_km2"] * 1e6 / math.pi)
        rng = _rng(m["ags"])
        base = slug(m["name"])
        for i in range(n):
            if i == 0:
                lat, lon = m["lat"], m["lon"]
            else:
                r = radius_m * math.sqrt(rng.random())
                a = rng.uniform(0.0, 2 * math.pi)
                lat = m["lat"] + r * math.cos(a) / 111_195.0
                lon = m["lon"] + r * math.sin(a) / (111_195.0 * math.cos(math.radians(m["lat"])))
            stops.append(
                {
                    "id": f"vs-{base}-{i + 1:02d}",
                    "name": f"{m['name']} Haltepunkt {i + 1}",
                    "municipality": m["name"],
                    "lat": round(lat, 6),
                    "lon": round(lon, 6),
                    "weight": round(m["population"] / n, 2),
                }
            )
    return stops


def build(geo: Path) -> dict[str, Any]:
    """The scenario as a JSON-able dict."""
    municipalities = read_municipalities(geo)
    hubs = read_hubs(geo)
    stops = virtual_stops(municipalities)
    lats = [p["lat"] for p in (*stops, *hubs)]
    lons = [p["lon"] for p in (*stops, *hubs)]
    margin = 0.01
    rendsburg_station = next(h for h in hubs if h["station"] == "Rendsburg")
    return {
        "name": "rendsburg",
        "zone": ZONE,
        "timezone": "Europe/Berlin",
        "description": (
            "Rufbus region Rendsburg: Rendsburg, Büdelsdorf and the Ämter Fockbek, "
            "Eiderkanal, Hüttener Berge and Jevenstedt (Kreis Rendsburg-Eckernförde)."
        ),
        "sources": {
            "municipalities": "Destatis Gemeindeverzeichnis (AuszugGV4QAktuell), population "
            "most likely 31.12.2019; © Statistisches Bundesamt (Destatis)",
            "hubs": "Deutsche Bahn open data 'Haltestellen' 01-2016, CC BY 4.0",
            "virtual_stops": "synthetic, generated by producers/build_scenario.py",
        },
        "notes": [
            "Virtual stops are synthetic: scattered deterministically around each "
            "municipality's reference point, about one per "
            f"{PEOPLE_PER_STOP} inhabitants ({MIN_STOPS}..{MAX_STOPS} per municipality).",
            "The 39 municipalities cover 528 km² and 89,220 inhabitants; the real Rufbus "
            "area is quoted as about 237 km² and 78,000 inhabitants, so ours is larger.",
            "The demand profile, the evening service hours and the fleet are assumptions "
            "for the demo, shaped after the published facts in 'reference'.",
            "Hubs are railway stops whose nearest municipality is in the project region.",
        ],
        "reference": {
            "vehicles": 5,
            "area_km2": 237,
            "inhabitants": 78_000,
            "booking_to_pickup_min": 20,
            "mean_trip_km": 5.7,
            "service": "evenings and nights, accessible vehicles",
        },
        "area": {
            "lat_min": round(min(lats) - margin, 4),
            "lat_max": round(max(lats) + margin, 4),
            "lon_min": round(min(lons) - margin, 4),
            "lon_max": round(max(lons) + margin, 4),
        },
        "service_hours": {"start_hour": 17.0, "end_hour": 27.0},
        "fleet": {
            "vehicles": 5,
            "seats": 6,
            "wheelchairs": 1,
            "depot": {
                "name": rendsburg_station["name"],
                "lat": rendsburg_station["lat"],
                "lon": rendsburg_station["lon"],
            },
            "break_min": 30.0,
            "break_after_h": 4.0,
            "break_window_h": 2.0,
        },
        "travel": {
            "model": "area",
            "detour_factor": 1.35,
            "speed_kmh": 40.0,
            "urban_density_per_km2": 500.0,
            "urban": {"detour_factor": 1.4, "speed_kmh": 28.0},
            "rural": {"detour_factor": 1.3, "speed_kmh": 50.0},
        },
        "demand": {
            "requests_per_hour": REQUESTS_PER_HOUR,
            "prebooked_share": 0.3,
            "arrival_share": 0.3,
            "wheelchair_share": 0.03,
            "cancel_share": 0.04,
            "hub_share": 0.15,
            "distance_decay_m": 2000.0,
            "min_trip_m": 800.0,
            "seats_weights": [0.8, 0.13, 0.05, 0.02],
        },
        "municipalities": municipalities,
        "hubs": hubs,
        "stops": stops,
    }


def main(argv: list[str] | None = None) -> Path:
    """Write ``<out>/rendsburg.json`` and return its path."""
    here = Path(__file__).resolve().parent
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--geo", type=Path, default=here.parents[1] / "shared" / "geo")
    parser.add_argument("--out", type=Path, default=here / "data")
    args = parser.parse_args(argv)
    data = build(args.geo)
    args.out.mkdir(parents=True, exist_ok=True)
    path: Path = args.out / "rendsburg.json"
    path.write_text(json.dumps(data, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    return path


if __name__ == "__main__":
    main()
