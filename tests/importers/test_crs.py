"""CRS detection by parameters (DOMAIN.md §7.1, §8.3), zone prefixes, datum refusals, transforms."""

from __future__ import annotations

import numpy as np
import pyproj
import pytest

from importers.crs import parse_crs_text, prefix_zone, refuse_missing_crs, with_zone_prefix
from importers.errors import ImportRefusedError
from importers.transforms import helmert_pipeline, make_mapper, parse_transform

from .conftest import ESRI_CM_114E, JIAOZUO

_GEOG_2000 = ('GEOGCS["GCS_China_Geodetic_Coordinate_System_2000",DATUM["D_China_2000",'
              'SPHEROID["CGCS2000",6378137.0,298.257222101]],PRIMEM["Greenwich",0.0],UNIT["Degree",0.0174532925199433]]')


def _esri_tm(name: str, geog: str, fe: float, cm: float = 114.0, projection: str = "Gauss_Kruger") -> str:
    return (f'PROJCS["{name}",{geog},PROJECTION["{projection}"],PARAMETER["False_Easting",{fe}],'
            f'PARAMETER["False_Northing",0.0],PARAMETER["Central_Meridian",{cm}],PARAMETER["Scale_Factor",1.0],'
            'PARAMETER["Latitude_Of_Origin",0.0],UNIT["Meter",1.0]]')


_XIAN = ('GEOGCS["GCS_Xian_1980",DATUM["D_Xian_1980",SPHEROID["Xian_1980",6378140.0,298.257]],'
         'PRIMEM["Greenwich",0.0],UNIT["Degree",0.0174532925199433]]')
_BEIJING = ('GEOGCS["GCS_Beijing_1954",DATUM["D_Beijing_1954",SPHEROID["Krasovsky_1940",6378245.0,298.3]],'
            'PRIMEM["Greenwich",0.0],UNIT["Degree",0.0174532925199433]]')
# Other tools' spellings: no AUTHORITY, odd names; only the parameters say what they are.
_CHINA_2000 = _GEOG_2000.replace("GCS_China_Geodetic_Coordinate_System_2000", "GCS_china_2000").replace(
    "D_China_2000", "D_china_2000")
_FME = ('PROJCS["CGCS2000/GK3d-114E_FME",GEOGCS["CGCS2000_FME",DATUM["China_2000",SPHEROID["CGCS2000",'
        '6378137,298.257222101]],PRIMEM["Greenwich",0],UNIT["degree",0.0174532925199433]],'
        'PROJECTION["Transverse_Mercator"],PARAMETER["latitude_of_origin",0],PARAMETER["central_meridian",114],'
        'PARAMETER["scale_factor",1],PARAMETER["false_easting",500000],PARAMETER["false_northing",0],UNIT["Meter",1]]')


@pytest.mark.parametrize(("wkt", "epsg", "datum"), [
    (ESRI_CM_114E, 4547, "cgcs2000"),
    (_esri_tm("CGCS2000_3_Degree_GK_Zone_38", _GEOG_2000, 38500000.0), 4526, "cgcs2000"),
    (_esri_tm("CGCS2000_3_Degree_GK_CM_111E", _GEOG_2000, 500000.0, cm=111.0), 4546, "cgcs2000"),
    (_esri_tm("China_2000_3_Degree_GK_CM_114E", _CHINA_2000, 500000.0, projection="Transverse_Mercator"), 4547,
     "cgcs2000"),
    (_FME, 4547, "cgcs2000"),
    (_esri_tm("Unnamed", _GEOG_2000, 500000.0), 4547, "cgcs2000"),   # the name says nothing
    (_GEOG_2000, 4490, "cgcs2000"),
    (_esri_tm("Xian_1980_3_Degree_GK_CM_114E", _XIAN, 500000.0), 2383, "xian80"),
    (_esri_tm("Xian_1980_3_Degree_GK_Zone_38", _XIAN, 38500000.0), 2362, "xian80"),
    (_esri_tm("Beijing_1954_3_Degree_GK_CM_114E", _BEIJING, 500000.0), 2435, "beijing54"),
    (_XIAN, 4610, "xian80"),
])
def test_prj_is_matched_by_parameters(wkt, epsg, datum):
    src = parse_crs_text(wkt, "prj")
    assert (src.epsg, src.datum) == (epsg, datum)


def test_local_tm_without_epsg_is_kept_as_given():
    """A 城市独立坐标系 (CM 113°15′ on CGCS2000) has no EPSG code but is usable."""
    src = parse_crs_text(_esri_tm("Jiaozuo_Local", _GEOG_2000, 500000.0, cm=113.25), "prj")
    assert src.epsg is None and src.datum == "cgcs2000"
    lon, lat = make_mapper(src, None)(np.array([500000.0]), np.array([3_899_000.0]))
    assert lon[0] == pytest.approx(113.25, abs=1e-9)


def test_jiaozuo_known_truth():
    """DOMAIN.md §7.2: 113.24E 35.22N ≈ EPSG:4547 E 430 806 / N 3 899 265."""
    src = parse_crs_text("EPSG:4547", "given")
    lon, lat = make_mapper(src, None)(np.array([430806.0]), np.array([3899265.0]))
    assert lon[0] == pytest.approx(JIAOZUO[0], abs=1e-5) and lat[0] == pytest.approx(JIAOZUO[1], abs=1e-5)


def test_zone_prefixed_eastings_switch_cm_only_to_the_zone_crs():
    src = parse_crs_text(ESRI_CM_114E, "prj")
    fitted, note = with_zone_prefix(src, np.array([38430806.0, 38431000.0]))
    assert fitted.epsg == 4526 and "zone prefix" in note
    back, note = with_zone_prefix(parse_crs_text("EPSG:4526", "given"), np.array([430806.0]))
    assert back.epsg == 4547 and note


def test_zone_prefix_on_the_wrong_meridian_is_refused():
    src = parse_crs_text(_esri_tm("CM_111E", _GEOG_2000, 500000.0, cm=111.0), "prj")
    with pytest.raises(ImportRefusedError, match="zone prefix 38"):
        with_zone_prefix(src, np.array([38430806.0]))


def test_prefix_zone_needs_8_digits():
    assert prefix_zone(np.array([38430806.0, 38440000.0])) == 38
    assert prefix_zone(np.array([3899265.0])) is None   # a northing is not a prefixed easting
    assert prefix_zone(np.array([430806.0])) is None


def test_missing_crs_message_names_the_likely_codes():
    err = refuse_missing_crs("井盖.shp", np.array([38430806.0]), np.array([3899265.0]))
    assert "no coordinate system" in err.detail and "EPSG:4526" in err.detail and "EPSG:2362" in err.detail


@pytest.mark.parametrize("code", ["EPSG:2383", "EPSG:2435", "EPSG:4610"])
def test_xian80_and_beijing54_are_refused_without_parameters(code):
    with pytest.raises(ImportRefusedError, match="transform="):
        make_mapper(parse_crs_text(code, "given"), None)


def test_seven_parameters_agree_with_proj_towgs84():
    params = "-10.5,120.3,50.1,0.5,-1.2,2.1,3.5"
    src = parse_crs_text("EPSG:2383", "given")
    lon, lat = make_mapper(src, parse_transform(f"+towgs84={params}"))(np.array([430806.0]), np.array([3899265.0]))
    bound = pyproj.CRS.from_proj4("+proj=tmerc +lat_0=0 +lon_0=114 +k=1 +x_0=500000 +y_0=0 +a=6378140 "
                                  f"+rf=298.257 +towgs84={params} +units=m")
    tlon, tlat = pyproj.Transformer.from_crs(bound, 4326, always_xy=True).transform(430806.0, 3899265.0)
    # metres: 1e-8° ≈ 1 mm
    assert lon[0] == pytest.approx(tlon, abs=1e-8) and lat[0] == pytest.approx(tlat, abs=1e-8)
    assert "helmert" in helmert_pipeline(src.crs, parse_transform(f"+towgs84={params}").params)


def test_four_parameters_follow_the_survey_formula():
    """X' = dX + (1+m)(X cosα − Y sinα), Y' = dY + (1+m)(X sinα + Y cosα), X = northing."""
    src = parse_crs_text("EPSG:2383", "given")
    dX, dY, rot, ppm = 35.2, -61.7, 1.5, 4.0
    E, N = 430806.0, 3899265.0
    a, k = np.radians(rot / 3600), 1 + ppm * 1e-6
    N2, E2 = dX + k * (N * np.cos(a) - E * np.sin(a)), dY + k * (N * np.sin(a) + E * np.cos(a))
    tlon, tlat = pyproj.Transformer.from_crs(4547, 4490, always_xy=True).transform(E2, N2)
    lon, lat = make_mapper(src, parse_transform(f"4param:{dX},{dY},{rot},{ppm}"))(np.array([E]), np.array([N]))
    assert lon[0] == pytest.approx(tlon, abs=1e-9) and lat[0] == pytest.approx(tlat, abs=1e-9)


@pytest.mark.parametrize("bad", ["+towgs84=1,2,3", "4param:1,2,x,4", "helmert:1,2,3,4,5,6,7"])
def test_unreadable_transforms_are_refused(bad):
    with pytest.raises(ImportRefusedError):
        parse_transform(bad)


def test_user_crs_spellings():
    assert parse_crs_text("4547", "given").epsg == 4547
    assert parse_crs_text("CGCS2000", "given").epsg == 4490
    assert parse_crs_text("gcj-02", "given").offset == "gcj02"
    assert parse_crs_text("BD-09", "given").label == "BD-09"
    with pytest.raises(ImportRefusedError, match="cannot understand"):
        parse_crs_text("EPSG:999999", "given")
