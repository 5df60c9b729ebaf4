"""Great-circle distance and the grid cells that let a radius search use an index.

Why cells: a radius search must not scan every camera. Each camera stores `lat_cell`, its latitude
band of `CELL_DEG` degrees (about 111 m). A search turns its bounding box into the few bands it
touches and, per band, a longitude range; with a composite (lat_cell, lon) index both SQLite and
PostgreSQL seek straight to those rows. The exact great-circle distance then filters the box down to
the circle. Pure functions, no I/O.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

EARTH_RADIUS_M = 6_371_008.8  # mean Earth radius (IUGG), metres
CELL_DEG = 0.001


def haversine_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in metres between two WGS84 points (haversine formula)."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp = p2 - p1
    dl = math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(a)))


def lat_cell(lat: float) -> int:
    return math.floor(lat / CELL_DEG)


@dataclass(frozen=True, slots=True)
class BoundingBox:
    min_lat: float
    max_lat: float
    min_lon: float
    max_lon: float

    def cells(self) -> list[int]:
        return list(range(lat_cell(self.min_lat), lat_cell(self.max_lat) + 1))


def bounding_box(lat: float, lon: float, radius_m: float) -> BoundingBox:
    """A box that surely contains every point within `radius_m` of (lat, lon).

    Slightly generous (1% margin) so that no point on the circle's edge is lost to rounding; the
    exact distance filter removes what the box lets through. Boxes touching a pole or crossing the
    antimeridian are clamped, which only loses points no city program has.
    """
    margin = 1.01
    dlat = math.degrees(radius_m * margin / EARTH_RADIUS_M)
    cos_lat = math.cos(math.radians(min(89.9, abs(lat) + dlat)))
    dlon = math.degrees(radius_m * margin / (EARTH_RADIUS_M * cos_lat))
    return BoundingBox(
        min_lat=max(-90.0, lat - dlat),
        max_lat=min(90.0, lat + dlat),
        min_lon=max(-180.0, lon - dlon),
        max_lon=min(180.0, lon + dlon),
    )


def validate_point(lat: float, lon: float) -> str | None:
    """Return why a point is not a valid WGS84 coordinate, or None when it is."""
    if not (math.isfinite(lat) and -90.0 <= lat <= 90.0):
        return f"lat must be between -90 and 90, got {lat}"
    if not (math.isfinite(lon) and -180.0 <= lon <= 180.0):
        return f"lon must be between -180 and 180, got {lon}"
    return None
