"""The pure anonymiser behind the retention job."""

from __future__ import annotations

from dispatcher.retention import anonymise


def test_personal_fields_cleared_and_coordinates_coarsened():
    """passenger_ref and names go, every lat/lon pair is rounded, the rest stays."""
    doc = {
        "request_id": "r1",
        "passenger_ref": "p-42",
        "origin": {"lat": 54.3064951, "lon": 9.6632061, "name": "Am Markt 1", "stop_id": "s1"},
        "stops": [{"lat": 54.31, "lon": 9.67, "phone": "+49 4331 0"}],
        "seats": 2,
    }
    out = anonymise(doc)
    assert out["passenger_ref"] is None
    assert out["origin"] == {"lat": 54.31, "lon": 9.66, "name": None, "stop_id": "s1"}
    assert out["stops"][0]["phone"] is None
    assert out["request_id"] == "r1" and out["seats"] == 2
    assert doc["passenger_ref"] == "p-42"  # a copy, the input is untouched


def test_lone_numbers_named_lat_are_left_alone_without_a_pair():
    """Only objects that carry a latitude are treated as coordinates."""
    assert anonymise({"lon": 9.6632061}) == {"lon": 9.6632061}
