"""Virtual clock and the crow-flies travel model."""

from __future__ import annotations

import pytest

from dispatcher.clock import VirtualClock
from dispatcher.geo import CrowFliesTravel, LatLon, haversine_m, interpolate

RENDSBURG = LatLon(54.306495, 9.663206)
BUEDELSDORF = LatLon(54.315687, 9.677817)


async def test_virtual_clock_moves_only_when_told():
    """Virtual time advances by sleeps and explicit steps, never backwards."""
    clock = VirtualClock(100.0)
    await clock.sleep(5)
    clock.advance(1.5)
    assert clock.now() == 106.5
    with pytest.raises(ValueError, match="backwards"):
        clock.set(50.0)


def test_haversine_known_distance():
    """Rendsburg to Büdelsdorf reference points are about 1.4 km apart."""
    assert 1_300 < haversine_m(RENDSBURG, BUEDELSDORF) < 1_500


def test_matrix_agrees_with_leg_and_is_symmetric():
    """The vectorised matrix equals the single-leg computation."""
    travel = CrowFliesTravel(detour_factor=1.3, speed_kmh=36.0)
    points = [RENDSBURG, BUEDELSDORF, LatLon(54.2346, 9.6688)]
    duration, distance = travel.matrix(points)
    for i, a in enumerate(points):
        for j, b in enumerate(points):
            seconds, metres = travel.leg(a, b)
            assert abs(duration[i][j] - seconds) <= 1
            assert abs(distance[i][j] - metres) <= 1
            assert distance[i][j] == distance[j][i]
    assert duration[0][0] == 0
    # 36 km/h is 10 m/s
    assert abs(duration[0][1] * 10 - distance[0][1]) <= 10


def test_interpolate_clamps():
    """Interpolation stays between the two points."""
    assert interpolate(RENDSBURG, BUEDELSDORF, 2.0) == BUEDELSDORF
    assert interpolate(RENDSBURG, BUEDELSDORF, 0.0) == RENDSBURG
