"""GCJ-02 / BD-09 offsets: the public reference values, and an inverse under 0.5 m (DOMAIN.md §7.3)."""

from __future__ import annotations

import numpy as np
import pyproj
import pytest

from importers import offsets

GEOD = pyproj.Geod(ellps="GRS80")


def test_forward_matches_the_reference_implementation():
    # wandergis/coordtransform README values for (116.404, 39.915).
    lon, lat = offsets.wgs84_to_gcj02(116.404, 39.915)
    assert (float(lon), float(lat)) == pytest.approx((116.41024449916938, 39.91640428150164), abs=1e-9)
    lon, lat = offsets.gcj02_to_bd09(116.404, 39.915)
    assert (float(lon), float(lat)) == pytest.approx((116.41036949371029, 39.92133699351022), abs=1e-9)


def test_offset_in_jiaozuo_is_hundreds_of_metres():
    lon, lat = offsets.wgs84_to_gcj02(113.24, 35.22)
    _, _, d = GEOD.inv(113.24, 35.22, float(lon), float(lat))
    assert 100 < d < 1000


@pytest.mark.parametrize(("forward", "inverse"), [
    (offsets.wgs84_to_gcj02, offsets.gcj02_to_wgs84),
    (offsets.wgs84_to_bd09, offsets.bd09_to_wgs84),
    (offsets.gcj02_to_bd09, offsets.bd09_to_gcj02),
])
def test_inverse_round_trips_within_half_a_metre(forward, inverse):
    rng = np.random.default_rng(7)
    lon = rng.uniform(73.0, 135.0, 2000)
    lat = rng.uniform(18.0, 53.0, 2000)
    back_lon, back_lat = inverse(*forward(lon, lat))
    _, _, d = GEOD.inv(lon, lat, back_lon, back_lat)
    assert d.max() < 0.5
    assert d.max() < 0.001   # in fact far better


def test_outside_china_no_offset():
    lon, lat = offsets.wgs84_to_gcj02(np.array([2.35]), np.array([48.85]))
    assert (lon[0], lat[0]) == (2.35, 48.85)
