from __future__ import annotations

import math
import random

import pytest

from custody.geo import CELL_DEG, bounding_box, haversine_m, lat_cell, validate_point


def test_haversine_known_distances() -> None:
    # One degree of latitude on the mean sphere is 111.195 km.
    assert haversine_m(0, 0, 1, 0) == pytest.approx(111_195.08, rel=1e-6)
    # White House to the US Capitol, about 2.6 km.
    assert haversine_m(38.8977, -77.0365, 38.8899, -77.0091) == pytest.approx(2_513, rel=0.01)
    assert haversine_m(10, 20, 10, 20) == 0


def test_bounding_box_contains_every_point_of_the_circle() -> None:
    rng = random.Random(7)
    for _ in range(2000):
        lat, lon = rng.uniform(-70, 70), rng.uniform(-170, 170)
        radius = rng.uniform(1, 1000)
        box = bounding_box(lat, lon, radius)
        bearing = rng.uniform(0, 2 * math.pi)
        # A point on the circle's edge (small-distance approximation, shrunk a hair).
        d = radius * 0.999
        plat = lat + math.degrees(d * math.cos(bearing) / 6_371_008.8)
        plon = lon + math.degrees(d * math.sin(bearing) / (6_371_008.8 * math.cos(math.radians(lat))))
        if haversine_m(lat, lon, plat, plon) <= radius:
            assert box.min_lat <= plat <= box.max_lat
            assert box.min_lon <= plon <= box.max_lon
            assert lat_cell(plat) in box.cells()


def test_cells_are_small_for_program_radii() -> None:
    box = bounding_box(38.9, -77.03, 1000)
    assert len(box.cells()) <= math.ceil(2 * 1010 / 111_195 / CELL_DEG) + 2


@pytest.mark.parametrize(
    ("lat", "lon", "ok"),
    [(0, 0, True), (90, 180, True), (-90, -180, True), (90.1, 0, False), (0, -180.5, False),
     (float("nan"), 0, False), (0, float("inf"), False)],
)  # fmt: skip
def test_validate_point(lat: float, lon: float, ok: bool) -> None:
    assert (validate_point(lat, lon) is None) is ok
