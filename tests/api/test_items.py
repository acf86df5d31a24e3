"""OGC API - Features reads and writes on both backends (issue 2 §5)."""

from __future__ import annotations

import pytest

POINT = {"type": "Point", "coordinates": [113.2405, 35.2151]}


def feature(props=None, geometry=POINT):
    return {"type": "Feature", "geometry": geometry, "properties": {"well_use": "雨水", **(props or {})}}


@pytest.fixture
def created(client, keys):
    r = client.post("/collections/manholes/items", json=feature({"name": "解放路1号井"}), headers=keys["editor"])
    assert r.status_code == 201, r.text
    return r


def test_create_returns_feature_with_location_etag_and_code(created):
    body = created.json()
    assert created.headers["location"].endswith(f"/collections/manholes/items/{body['id']}")
    assert created.headers["etag"] == f'"manholes-{body["id"]}-v1"'
    code = body["properties"]["obj_code"]
    assert len(code) == 16 and code[6:10] == "0103"  # 雨水井盖 小类
    assert body["properties"]["version"] == 1


def test_get_item_and_unknown_item(client, created):
    fid = created.json()["id"]
    r = client.get(f"/collections/manholes/items/{fid}")
    assert r.status_code == 200 and r.json()["properties"]["name"] == "解放路1号井"
    assert r.headers["content-type"].startswith("application/geo+json")
    missing = client.get("/collections/manholes/items/999999")
    assert missing.status_code == 404 and missing.json()["code"] == "feature_not_found"


def test_unknown_layer_is_404(client):
    r = client.get("/collections/nope/items")
    assert r.status_code == 404
    assert r.json()["code"] == "layer_not_found" and "manholes" in r.json()["detail"]


def test_collections_list_every_layer(client, store):
    ids = {c["id"] for c in client.get("/collections").json()["collections"]}
    assert set(store.registry.ids) <= ids


def test_items_bbox_filters_and_paging(client, store):
    from shapely.geometry import Point

    rows = [({"well_use": "雨水" if i % 2 else "污水", "status": "破损" if i % 5 == 0 else "完好"},
             Point(113.20 + i * 0.001, 35.20)) for i in range(30)]
    store.bulk_write("manholes", rows, actor="t")
    r = client.get("/collections/manholes/items", params={"bbox": "113.199,35.19,113.2095,35.21", "limit": 4})
    body = r.json()
    assert body["numberMatched"] == 10 and body["numberReturned"] == 4
    nxt = next(link["href"] for link in body["links"] if link["rel"] == "next")
    page2 = client.get(nxt).json()
    assert page2["numberReturned"] == 4
    assert {f["id"] for f in page2["features"]}.isdisjoint({f["id"] for f in body["features"]})
    assert any(link["rel"] == "prev" for link in page2["links"])
    broken = client.get("/collections/manholes/items", params={"status": "破损", "well_use": "污水"}).json()
    assert broken["numberMatched"] == 3  # i = 0, 10, 20 are 污水 and 破损; 5, 15, 25 are 雨水
    assert all(f["properties"]["status"] == "破损" for f in broken["features"])


@pytest.mark.parametrize("bbox", ["1,2,3", "a,b,c,d", "114,35,113,36", "113,-95,114,36"])
def test_bad_bbox_is_400(client, bbox):
    r = client.get("/collections/manholes/items", params={"bbox": bbox})
    assert r.status_code == 400 and r.json()["code"] == "bad_request"


def test_limit_is_clamped_to_maximum(client, settings):
    r = client.get("/collections/manholes/items", params={"limit": settings.max_limit * 10})
    assert r.status_code == 200
    assert client.get("/collections/manholes/items", params={"limit": 0}).status_code == 400


def test_unknown_filter_property_is_400(client):
    r = client.get("/collections/manholes/items", params={"colour": "red"})
    assert r.status_code == 400 and "colour" in r.json()["detail"]
    r = client.get("/collections/manholes/items", params={"status": "坏了"})
    assert r.status_code == 400 and "坏了" in r.json()["detail"]


@pytest.mark.parametrize("body, field", [
    (feature({"well_use": "下水道"}), "well_use"),
    (feature({"well_depth_m": 999}), "well_depth_m"),
    (feature({"well_use": None}), "well_use"),
    (feature(geometry={"type": "LineString", "coordinates": [[113.24, 35.21], [113.25, 35.22]]}), "geometry"),
    (feature(geometry={"type": "Point", "coordinates": [35.2151, 113.2405]}), "geometry"),
    (feature(geometry={"type": "Point", "coordinates": [116.4, 39.9]}), "geometry"),
    (feature(geometry={"type": "Point", "coordinates": "x"}), "geometry"),
    (feature({"colour": "red"}), "colour"),
])
def test_invalid_feature_is_422_naming_the_field(client, keys, store, body, field):
    r = client.post("/collections/manholes/items", json=body, headers=keys["editor"])
    assert r.status_code == 422, r.text
    assert field in [e["field"] for e in r.json()["errors"]]
    assert store.count("manholes") == 0  # nothing half-written


def test_swapped_lonlat_says_so(client, keys):
    r = client.post("/collections/manholes/items",
                    json=feature(geometry={"type": "Point", "coordinates": [35.2151, 113.2405]}), headers=keys["editor"])
    assert "swapped" in r.json()["errors"][0]["message"]


def test_malformed_json_is_400(client, keys):
    r = client.post("/collections/manholes/items", content=b"{not json", headers=keys["editor"])
    assert r.status_code == 400


def test_patch_put_delete_with_etags(client, keys, created):
    fid, etag = created.json()["id"], created.headers["etag"]
    url = f"/collections/manholes/items/{fid}"
    r = client.patch(url, json={"properties": {"status": "破损", "defects": ["破损", "松动"]}},
                     headers={**keys["editor"], "If-Match": etag})
    assert r.status_code == 200 and r.json()["properties"]["status"] == "破损"
    assert r.headers["etag"] == f'"manholes-{fid}-v2"'
    stale = client.patch(url, json={"properties": {"status": "完好"}}, headers={**keys["editor"], "If-Match": etag})
    assert stale.status_code == 412
    assert client.get(url).json()["properties"]["status"] == "破损"
    put = client.put(url, json=feature({"well_use": "污水"}), headers={**keys["editor"], "If-Match": r.headers["etag"]})
    assert put.status_code == 200
    props = put.json()["properties"]
    assert props["well_use"] == "污水" and props["defects"] is None
    old_code = created.json()["properties"]["obj_code"]
    # reclassified from 雨水 (0103) to 污水 (0102): a new code in the new 小类, same district
    assert props["obj_code"][6:10] == "0102" and props["obj_code"][:6] == old_code[:6]
    assert client.delete(url, headers={**keys["editor"], "If-Match": etag}).status_code == 412
    assert client.delete(url, headers=keys["editor"]).status_code == 204
    assert client.get(url).status_code == 404


def test_history_records_who_when_before_after(client, keys, created):
    fid = created.json()["id"]
    url = f"/collections/manholes/items/{fid}"
    client.patch(url, json={"properties": {"status": "丢失"}}, headers=keys["editor"])
    client.delete(url, headers=keys["admin"])
    entries = client.get(f"{url}/history").json()["entries"]
    assert [e["op"] for e in entries] == ["insert", "update", "delete"]
    assert entries[1]["before"]["properties"]["status"] == "完好"
    assert entries[1]["after"]["properties"]["status"] == "丢失"
    assert "test-editor" in entries[1]["actor"] and "test-admin" in entries[2]["actor"]
    assert entries[2]["after"] is None and entries[0]["at"]


def test_given_code_validated_and_unique(client, keys):
    good = feature({"obj_code": "4108020103000123", "admin_code": "410802"})
    assert client.post("/collections/manholes/items", json=good, headers=keys["editor"]).status_code == 201
    dup = client.post("/collections/manholes/items", json=good, headers=keys["editor"])
    assert dup.status_code == 409
    wrong_class = feature({"obj_code": "4108020301000001", "admin_code": "410802"})
    r = client.post("/collections/manholes/items", json=wrong_class, headers=keys["editor"])
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "obj_code"
    # the next generated code in that prefix skips past the given serial
    auto = client.post("/collections/manholes/items", json=feature({"admin_code": "410802"}), headers=keys["editor"])
    assert auto.json()["properties"]["obj_code"] == "4108020103000124"


def test_layers_endpoint_describes_fields(client):
    layers = {layer["id"]: layer for layer in client.get("/layers").json()["layers"]}
    manholes = layers["manholes"]
    assert manholes["geometry"] == "Point" and manholes["title"] == "窨井/井盖"
    well_use = next(f for f in manholes["fields"] if f["name"] == "well_use")
    assert well_use["label"] == "窨井用途" and "雨水" in well_use["values"]
