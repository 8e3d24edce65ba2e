"""The committed Rendsburg scenario file and its loader."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from dispatcher.geo import haversine_m
from producers.build_scenario import build
from producers.scenario import DATA_DIR, load_scenario


def test_scenario_loads_with_the_project_region() -> None:
    """The scenario has the 39 project-region municipalities, hubs, stops and a fleet."""
    sc = load_scenario("rendsburg")
    assert sc.zone == "rendsburg"
    assert len(sc.municipalities) == 39
    assert sum(m.population for m in sc.municipalities) == 89_220
    assert {h.name for h in sc.hubs} >= {"Rendsburg Bahnhof", "Schülldorf Bahnhof"}
    assert sc.fleet.vehicles == 5 and sc.fleet.seats == 6 and sc.fleet.wheelchairs == 1
    assert len(sc.demand.requests_per_hour) == 24
    assert sc.service_end_hour - sc.service_start_hour == 10


def test_every_stop_lies_in_the_area_near_its_municipality() -> None:
    """All stops are inside the service area and within 6 km of their municipality."""
    sc = load_scenario(DATA_DIR / "rendsburg.json")
    where = {m.name: m for m in sc.municipalities}
    ids = [s.id for s in (*sc.stops, *sc.hubs)]
    assert len(ids) == len(set(ids))
    for s in (*sc.stops, *sc.hubs):
        assert sc.area.contains(s.point), s
    for s in sc.stops:
        m = where[s.municipality]
        assert haversine_m(s.point, type(s.point)(m.lat, m.lon)) < 6000


def test_json_agrees_with_the_shared_csv(geo_dir: Path) -> None:
    """Names, coordinates and populations in the JSON equal the Destatis CSV (when present)."""
    data = json.loads((DATA_DIR / "rendsburg.json").read_text(encoding="utf-8"))
    with (geo_dir / "rendsburg_eckernfoerde_municipalities.csv").open(encoding="utf-8") as f:
        rows = {r["ags"]: r for r in csv.DictReader(f) if r["project_region"] == "yes"}
    assert {m["ags"] for m in data["municipalities"]} == set(rows)
    for m in data["municipalities"]:
        r = rows[m["ags"]]
        assert m["name"] == r["name"]
        assert (m["lat"], m["lon"]) == (float(r["lat"]), float(r["lon"]))
        assert m["population"] == int(r["population"])
    with (geo_dir / "db_stations_rendsburg_eckernfoerde_bbox_2016.csv").open(encoding="utf-8") as f:
        stations = {r["name"]: r for r in csv.DictReader(f)}
    for h in data["hubs"]:
        s = stations[h["station"]]
        assert (h["lat"], h["lon"]) == (float(s["lat"]), float(s["lon"]))
    assert build(geo_dir) == data  # the committed file is what the generator writes
