"""GET /road_segments/{code}/summary, /road_segments/{code}/card, /unit_grids/{code}/summary."""

from __future__ import annotations

import datetime as dt
import re

import pytest
import shapely
import sqlalchemy as sa

from geoapi.grids.build import all_features
from geoapi.storage import FeatureQuery
from tests.grids.conftest import deg

ACTOR = "test"


@pytest.fixture
def assets(client, plan, keys):
    """Written through the API, so the app's enricher assigns them: on R01-01 (x 0…300, y 0)."""
    def post(layer, props, geom):
        r = client.post(f"/collections/{layer}/items", headers=keys["editor"],
                        json={"type": "Feature", "properties": props, "geometry": shapely.geometry.mapping(geom)})
        assert r.status_code == 201, r.text
        return r.json()

    made = [post("manholes", {"well_use": "雨水", "status": s}, deg(shapely.Point(x, 5)))
            for x, s in [(50, "完好"), (100, "完好"), (150, "破损")]]
    made.append(post("toilets", {"name": "人民路公厕"}, deg(shapely.Point(200, -20))))
    post("manholes", {"well_use": "污水"}, deg(shapely.Point(700, 5)))  # on R01-03, not counted
    return made


def test_segment_summary_counts_assets_by_layer_and_status(client, assets) -> None:
    r = client.get("/road_segments/R01-01/summary")
    assert r.status_code == 200
    body = r.json()
    assert body["assets"]["manholes"] == {"title": "窨井/井盖", "total": 3, "by_status": {"完好": 2, "破损": 1}}
    assert body["assets"]["toilets"]["total"] == 1
    assert body["asset_total"] == 4
    assert body["open_alarms"] == {"total": 0, "by_layer": {}}
    assert body["road_name"] == "人民路" and abs(body["length_m"] - 300) < 0.5
    assert 300 * 60 < body["corridor_area_m2"] < 300 * 60 + 30 * 30 * 3.2  # the west end's round cap
    assert [c["level"] for c in body["card"]["chiefs"]] == ["区级", "街道级"]
    assert body["card"]["supervise_phone"] == "12319"


def test_open_alarms_are_counted(client, plan, assets) -> None:
    ids = [a["id"] for a in assets]
    now = dt.datetime.now(dt.UTC)
    with plan.engine.begin() as conn:
        alarms = sa.Table("alarms", sa.MetaData(), autoload_with=conn)
        conn.execute(alarms.insert(), [
            {"type": "COVER_OPEN", "level": "报警", "state": state, "layer": "manholes", "feature_id": int(fid),
             "device_key": f"dev{fid}", "raised_at": now}
            for fid, state in [(ids[0], "open"), (ids[1], "acknowledged"), (ids[2], "resolved")]])
    body = client.get("/road_segments/R01-01/summary").json()
    assert body["open_alarms"] == {"total": 2, "by_layer": {"manholes": 2}}


def test_summaries_work_without_an_alarms_table(client, plan, assets) -> None:
    with plan.engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE alarms")
    r = client.get("/road_segments/R01-01/summary")
    assert r.status_code == 200
    assert r.json()["open_alarms"] is None and r.json()["asset_total"] == 4


def test_the_card_is_a_printable_chinese_a4_page(client, plan) -> None:
    r = client.get("/road_segments/R01-01/card")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    html = r.text
    assert "size: A4" in html and 'lang="zh-CN"' in html
    for text in ("焦作市路长制公示牌", "人民路", "人民路西端", "人民路与民主路交叉口", "王伟", "解放区副区长",
                 "13800000001", "李娜", "12319", "包秩序", "包卫生", "包立面", "区级：周"):
        assert text in html, text
    assert html.index("王伟") < html.index("李娜")  # higher level first


def test_card_values_are_escaped(client, plan) -> None:
    seg = plan.query("road_segments", FeatureQuery(filters={"segment_code": ["R02-01"]})).features[0]
    plan.patch("road_segments", seg.id, {"chiefs": [{"level": "社区级", "name": "<script>x</script>"}]}, actor=ACTOR)
    html = client.get("/road_segments/R02-01/card").text
    assert "<script>x" not in html and "&lt;script&gt;x" in html


def test_grid_summary(client, plan, assets) -> None:
    grid_code = client.get(f"/collections/manholes/items/{assets[0]['id']}").json()["properties"]["grid_code"]
    assert re.fullmatch(r"410802001001\d{3}", grid_code)
    body = client.get(f"/unit_grids/{grid_code}/summary").json()
    assert body["grid_code"] == grid_code and body["community_code"] == "410802001001"
    assert body["assets"]["manholes"]["total"] >= 1
    stored = {f.props["grid_code"]: f for f in all_features(plan, "unit_grids")}[grid_code]
    assert body["area_m2"] == stored.props["area_m2"]


@pytest.mark.parametrize(("path", "status", "code"), [
    ("/road_segments/NOPE-01/summary", 404, "feature_not_found"),
    ("/road_segments/NOPE-01/card", 404, "feature_not_found"),
    ("/unit_grids/410802001001999/summary", 404, "feature_not_found"),
    ("/unit_grids/4108020010/summary", 400, "bad_request"),
])
def test_unknown_and_malformed_codes_are_clear_4xx(client, plan, path, status, code) -> None:
    r = client.get(path)
    assert r.status_code == status and r.json()["code"] == code
    assert r.json()["detail"]


def test_corridors_and_signboards_are_served_as_vector_tiles(client, plan) -> None:
    import mapbox_vector_tile
    import morecantile

    centre = deg(shapely.Point(150, 0))
    tile = morecantile.tms.get("WebMercatorQuad").tile(centre.x, centre.y, 16)
    r = client.get(f"/tiles/road_corridors/{tile.z}/{tile.x}/{tile.y}.mvt")
    assert r.status_code == 200, r.text
    layers = mapbox_vector_tile.decode(r.content)
    feats = next(iter(layers.values()))["features"]
    assert "R01-01" in {f["properties"]["segment_code"] for f in feats}
    assert client.get("/tiles/signboards/tilejson.json").status_code == 200
