"""Travel providers: area types, a matrix file and an OSRM table client."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest

from dispatcher.geo import CrowFliesTravel, LatLon, interpolate
from dispatcher.travel import AreaTravel, MatrixTravel, OsrmTravel

TOWN = LatLon(54.306495, 9.663206)  # Rendsburg
VILLAGE = LatLon(54.234604, 9.668849)  # Jevenstedt
FAR = LatLon(54.40, 9.55)


def _area() -> AreaTravel:
    # Rendsburg: dense, 23.75 km² (a disc of about 2.75 km); Jevenstedt: sparse
    return AreaTravel([(TOWN, 1200.0, 23.75), (VILLAGE, 60.0, 40.0)], urban_density=500.0)


def test_area_travel_is_slower_in_town():
    """A leg of the same length takes longer inside the town than in the countryside."""
    t = _area()
    assert list(t.is_urban([TOWN, VILLAGE])) == [True, False]
    town_s, town_m = t.leg(TOWN, LatLon(TOWN.lat + 0.01, TOWN.lon))
    rural_s, rural_m = t.leg(VILLAGE, LatLon(VILLAGE.lat + 0.01, VILLAGE.lon))
    assert town_s / town_m > 1.5 * rural_s / rural_m
    assert town_m > rural_m  # a larger detour factor in town


def test_area_travel_is_additive_along_a_leg():
    """A leg split anywhere takes as long as the whole (vehicles divert mid-leg)."""
    t = _area()
    whole, _ = t.leg(TOWN, VILLAGE)
    for f in (0.1, 0.33, 0.5, 0.8):
        mid = interpolate(TOWN, VILLAGE, f)
        assert abs(t.leg(TOWN, mid)[0] + t.leg(mid, VILLAGE)[0] - whole) <= 1


def test_matrix_file_provider_reads_and_falls_back(tmp_path: Path):
    """Points in the file get its times; other points use the fallback model."""
    path = tmp_path / "matrix.json"
    path.write_text(json.dumps({
        "points": [[TOWN.lat, TOWN.lon], [VILLAGE.lat, VILLAGE.lon]],
        "durations_s": [[0, 777], [788, 0]],
        "distances_m": [[0, 9000], [9100, 0]],
    }))  # fmt: skip
    t = MatrixTravel.from_file(path, fallback=CrowFliesTravel())
    assert t.leg(TOWN, VILLAGE) == (777, 9000)
    assert t.leg(VILLAGE, TOWN) == (788, 9100)
    dur, _ = t.matrix([TOWN, VILLAGE, FAR])
    assert dur[0][1] == 777 and dur[0][2] == CrowFliesTravel().leg(TOWN, FAR)[0]


class _FakeOsrm(BaseHTTPRequestHandler):
    calls: list[str] = []  # noqa: RUF012
    fail = False

    def do_GET(self) -> None:
        type(self).calls.append(self.path)
        if type(self).fail:
            body = {"code": "InvalidQuery", "message": "nope"}
        else:
            coords = self.path.split("/table/v1/driving/")[1].split("?")[0].split(";")
            query = self.path.split("?")[1]
            params = dict(p.split("=") for p in query.split("&"))
            src = [int(i) for i in params["sources"].split("%3B" if "%3B" in params["sources"]
                                                          else ";")]  # fmt: skip
            dst = [int(i) for i in params["destinations"].replace("%3B", ";").split(";")]
            pts = [tuple(float(x) for x in c.split(",")) for c in coords]
            # a fake road network: 100 s and 1 km per 0.01 degree of longitude difference
            body = {
                "code": "Ok",
                "durations": [[abs(pts[i][0] - pts[j][0]) * 1e4 for j in dst] for i in src],
                "distances": [[abs(pts[i][0] - pts[j][0]) * 1e5 for j in dst] for i in src],
            }
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def osrm() -> Iterator[str]:
    server = HTTPServer(("127.0.0.1", 0), _FakeOsrm)
    _FakeOsrm.calls, _FakeOsrm.fail = [], False
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_osrm_client_reads_the_table_and_caches(osrm: str):
    """The OSRM client asks the table service once and answers later legs from its cache."""
    t = OsrmTravel(osrm, timeout_s=5.0)
    a, b = LatLon(54.30, 9.60), LatLon(54.30, 9.70)
    dur, dist = t.matrix([a, b])
    assert dur == ((0, 1000), (1000, 0)) and dist == ((0, 10000), (10000, 0))
    calls = len(_FakeOsrm.calls)
    assert calls >= 1 and "/table/v1/driving/9.600000,54.300000;" in _FakeOsrm.calls[0]
    assert t.leg(b, a) == (1000, 10000)
    assert len(_FakeOsrm.calls) == calls


def test_osrm_client_falls_back_on_errors(osrm: str):
    """An OSRM error answer makes the client estimate with its fallback model."""
    _FakeOsrm.fail = True
    t = OsrmTravel(osrm, fallback=CrowFliesTravel())
    assert t.leg(TOWN, VILLAGE) == CrowFliesTravel().leg(TOWN, VILLAGE)
    assert t.failures == 1
