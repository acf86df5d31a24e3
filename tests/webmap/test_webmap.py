"""The web map in a real browser against a real server: the map renders our tiles with no
console errors, a click opens the 电子档案, the nearest search and the coverage choropleth draw,
the 路长制 card shows, and an API edit appears after the changed tiles refresh.

The tests share one page (loading MapLibre on SwiftShader takes seconds) and run in file order.
"""

from __future__ import annotations

import httpx
import pytest

from tests.webmap.seed import CENTER

pytestmark = pytest.mark.browser

MANHOLE_STATUS = {"完好", "破损", "丢失", "占用"}


def rendered(mp, layers: list[str]) -> list[dict]:
    return mp.page.evaluate("""(layers) => map.queryRenderedFeatures({layers}).map(f => ({
        id: f.id ?? f.properties.id, props: f.properties, geom: f.geometry }))""", layers)


def test_map_reaches_idle_without_console_errors(map_page):
    mp = map_page
    assert mp.page.evaluate("() => typeof window.map.getStyle === 'function'")
    assert mp.page.evaluate("() => map.getStyle().sources.geoapi !== undefined")
    legend = mp.page.inner_text("#legend")
    assert "窨井/井盖" in legend and "窨井盖" in legend  # layer title and its legend group
    mp.screenshot("01-overview")
    assert mp.errors == []


def test_dashboard_shows_manhole_counts(map_page, live_server):
    text = map_page.page.inner_text("#dash")
    assert "井盖总数" in text
    assert str(live_server.counts["manholes"]) in text


def test_low_zoom_shows_counts_not_points(map_page, live_server):
    mp = map_page
    mp.jump(*CENTER, 12.5)
    cells = rendered(mp, ["manholes-cells"])
    assert cells, "no aggregate cells at zoom 12.5"
    assert all("count" in c["props"] for c in cells)
    assert rendered(mp, ["manholes"]) == []
    mp.screenshot("02-clusters")


def test_query_rendered_features_finds_manholes(map_page):
    mp = map_page
    mp.jump(*CENTER, 15.5)
    hits = rendered(mp, ["manholes"])
    assert len(hits) > 20
    assert {h["props"]["status"] for h in hits} <= MANHOLE_STATUS
    assert all(h["id"] is not None for h in hits)


def _click_feature(mp, layer: str) -> dict:
    """Click the rendered feature of ``layer`` nearest the map's centre; returns it."""
    hit = mp.page.evaluate("""(layer) => {
        const c = map.project(map.getCenter());
        const fs = map.queryRenderedFeatures({layers: [layer]}).filter(f => f.geometry.type === 'Point');
        fs.sort((a, b) => { const pa = map.project(a.geometry.coordinates), pb = map.project(b.geometry.coordinates);
            return Math.hypot(pa.x - c.x, pa.y - c.y) - Math.hypot(pb.x - c.x, pb.y - c.y); });
        const f = fs[0]; const p = map.project(f.geometry.coordinates);
        return {id: f.id ?? f.properties.id, x: p.x, y: p.y, props: f.properties};
    }""", layer)
    box = mp.page.locator("#map canvas").bounding_box()
    mp.page.mouse.click(box["x"] + hit["x"], box["y"] + hit["y"])
    return hit


def test_click_opens_the_archive(map_page, live_server):
    mp = map_page
    mp.jump(*CENTER, 17)
    hit = _click_feature(mp, "manholes")
    mp.page.wait_for_selector(f"#tab-archive.active h2[data-archive='manholes/{hit['id']}']")
    text = mp.page.inner_text("#tab-archive")
    assert "部件标识码" in text and "窨井用途" in text and "井盖材质" in text  # 中文 labels from /layers
    code = httpx.get(f"{live_server.url}/collections/manholes/items/{hit['id']}").json()["properties"]["obj_code"]
    assert code and code in text
    mp.page.wait_for_function("() => !document.getElementById('archive-history').textContent.includes('查询中')")
    assert "新增" in mp.page.inner_text("#archive-history")
    assert "webmap-test" in mp.page.inner_text("#archive-history")
    mp.screenshot("03-archive")


def test_nearest_search_draws_results(map_page):
    mp = map_page
    mp.tab("dispatch")
    mp.page.select_option("#dispatch-layer", "manholes")
    mp.page.fill("#dispatch-k", "5")
    mp.page.fill("#dispatch-coord", f"{CENTER[0]}, {CENTER[1]}")
    mp.page.select_option("#dispatch-crs", "WGS84")
    mp.page.click("#dispatch-go")
    mp.page.wait_for_selector("#dispatch-table tbody tr")
    rows = mp.page.locator("#dispatch-table tbody tr")
    assert rows.count() == 5
    mp.idle()
    drawn = rendered(mp, ["dispatch-hits"])
    assert sorted(h["props"]["rank"] for h in drawn) == [1, 2, 3, 4, 5]
    distances = sorted(drawn, key=lambda h: h["props"]["rank"])
    assert [h["props"]["distance_m"] for h in distances] == sorted(h["props"]["distance_m"] for h in drawn)
    assert rendered(mp, ["dispatch-lines"])
    assert "米" in rows.first.inner_text()
    mp.screenshot("04-dispatch")


def test_nearest_by_map_click(map_page):
    mp = map_page
    box = mp.page.locator("#map canvas").bounding_box()
    mp.page.mouse.click(box["x"] + box["width"] * 0.3, box["y"] + box["height"] * 0.4)
    mp.page.wait_for_function("() => document.getElementById('dispatch-coord').value !== ''")
    mp.page.wait_for_selector("#dispatch-table tbody tr")
    assert mp.page.locator("#dispatch-table tbody tr").count() == 5


def test_coverage_colours_districts(map_page):
    mp = map_page
    mp.tab("coverage")
    mp.page.select_option("#coverage-layer", "manholes")
    mp.page.select_option("#coverage-unit", "district")
    mp.page.fill("#coverage-radius", "")
    mp.page.click("#coverage-go")
    mp.page.wait_for_selector("#coverage-table-grid tbody tr")
    assert mp.page.locator("#coverage-table-grid tbody tr").count() == 10  # 焦作's ten districts
    mp.idle()
    fills = rendered(mp, ["coverage-fill"])
    assert fills
    assert len({f["props"]["_colour"] for f in fills}) >= 2  # 解放区 holds every manhole: it stands out
    assert "图例" in mp.page.inner_text("#coverage-legend")
    mp.screenshot("05-coverage")


def test_roadchief_shows_the_signboard(map_page):
    mp = map_page
    mp.tab("roadchief")
    mp.page.wait_for_function("() => map.getLayoutProperty('rc-segments', 'visibility') === 'visible'")
    mp.jump(CENTER[0] - 0.003, CENTER[1], 16)
    point = mp.page.evaluate("""(c) => { const p = map.project(c); return {x: p.x, y: p.y}; }""",
                             [CENTER[0] - 0.003, CENTER[1]])
    box = mp.page.locator("#map canvas").bounding_box()
    mp.page.mouse.click(box["x"] + point["x"], box["y"] + point["y"])
    mp.page.wait_for_selector("#rc-signboard")
    card = mp.page.inner_text("#rc-signboard")
    assert "解放中路" in card and "李强" in card and "12319" in card
    assert "人民路口" in card and "建设路口" in card
    mp.screenshot("06-roadchief")


def test_import_view_needs_an_editor_key(map_page):
    mp = map_page
    mp.tab("import")
    assert "编辑" in mp.page.inner_text("#tab-import")  # asks for a key first
    assert mp.page.locator("#import-go").is_disabled()
    mp.page.evaluate("(k) => { localStorage.setItem('geoapi.apiKey', k); window.dispatchEvent(new Event('geoapi:key')); }",
                     mp.server.editor_key)
    # The page asks GET /auth/whoami who the key is; the button then names the role and holder.
    mp.page.wait_for_function("() => document.getElementById('login-btn').textContent === '编辑: webmap-test-editor'")
    assert mp.page.locator("#import-disabled").count() == 0      # the server has /imports
    assert mp.page.locator("#import-go").is_enabled()
    mp.screenshot("07-import")


def test_api_edit_shows_after_tile_refresh(map_page, live_server):
    mp = map_page
    mp.tab("overview")
    mp.jump(*CENTER, 16)
    mp.page.evaluate("() => { window.__noReload = true; }")
    target = next(h for h in rendered(mp, ["manholes"]) if h["props"]["status"] == "完好")
    r = httpx.patch(f"{live_server.url}/collections/manholes/items/{target['id']}",
                    json={"type": "Feature", "properties": {"status": "丢失"}},
                    headers={"Authorization": f"Bearer {live_server.editor_key}"})
    assert r.status_code == 200, r.text
    mp.page.wait_for_function("""(id) => map.queryRenderedFeatures({layers: ['manholes']})
        .some(f => (f.id ?? f.properties.id) === id && f.properties.status === '丢失')""", arg=target["id"], timeout=30_000)
    assert mp.page.evaluate("() => window.__noReload === true")  # refreshed in place, not reloaded
    assert mp.page.evaluate("() => (window.geoapiApp.lastRefreshedTiles || []).length") > 0
    mp.screenshot("08-after-edit")


def test_live_alarm_appears_and_flies_to_the_asset(map_page, live_server):
    mp = map_page
    mp.tab("overview")
    device = httpx.get(f"{live_server.url}/collections/smart_covers/items",
                       params={"device_sn": "SC0002"}).json()["features"][0]
    r = httpx.post(f"{live_server.url}/telemetry", json={"device_sn": "SC0002", "tilt_deg": 45},
                   headers={"Authorization": f"Bearer {live_server.editor_key}"})
    if r.status_code == 404:
        pytest.skip("no telemetry endpoint in this build")
    assert r.status_code == 200, r.text
    item = mp.page.wait_for_selector("#alarm-list li[data-alarm]", timeout=30_000)  # pushed over SSE /events
    assert "井盖开启" in item.inner_text()
    assert mp.page.locator(".alarm-marker").count() >= 1  # the alarmed cover stands out on the map
    item.click()
    mp.page.wait_for_selector(f"#tab-archive.active h2[data-archive='smart_covers/{device['id']}']")
    mp.page.wait_for_function("() => !map.isMoving()")
    centre = mp.page.evaluate("() => map.getCenter().toArray()")
    lon, lat = device["geometry"]["coordinates"]
    assert abs(centre[0] - lon) < 1e-3 and abs(centre[1] - lat) < 1e-3
    mp.page.wait_for_function("() => !document.getElementById('archive-alarms').textContent.includes('查询中')")
    assert "井盖开启" in mp.page.inner_text("#archive-alarms")
    mp.screenshot("09-alarm")


def test_no_console_errors_through_all_views(map_page):
    assert map_page.errors == []
