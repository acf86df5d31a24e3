"""Editing from the web map in a real browser against a real server: logging in (the role shows on
the 登录 button), the 导入 view end to end (GBK shapefile without .cpg in EPSG:4547 → detection,
dry run, import, new manholes on the map, rejected rows and their CSV, rollback), editing a
record's status in the 电子档案 with If-Match, and edit controls hidden from weaker roles.

Like test_webmap.py, the tests share one page and run in file order.
"""

from __future__ import annotations

import csv
import io

import httpx
import pytest

from geoapi.auth import create_key
from tests.webmap.deliveries import manhole_zip
from tests.webmap.seed import CENTER

pytestmark = pytest.mark.browser

# East of the seeded manholes (they lie within ±0.01° of CENTER): an empty spot before the import.
SPOT = (CENTER[0] + 0.02, CENTER[1])
NEW = [(SPOT[0] + dx, SPOT[1] + dy) for dx, dy in ((-0.0004, 0), (0.0004, 0), (0, 0.0003), (0, -0.0003))]


def manholes_at_spot(mp) -> list[dict]:
    return mp.page.evaluate("""([lon, lat]) => map.queryRenderedFeatures({layers: ['manholes']})
        .filter(f => Math.abs(f.geometry.coordinates[0] - lon) < 0.002 && Math.abs(f.geometry.coordinates[1] - lat) < 0.002)
        .map(f => f.properties)""", list(SPOT))


def take_expected_http_errors(mp, status: int) -> list[str]:
    """Remove the console/HTTP errors an expected ``status`` answer causes; return them."""
    taken = [e for e in mp.errors if str(status) in e]
    mp.errors[:] = [e for e in mp.errors if str(status) not in e]
    return taken


def log_in(mp, key: str) -> None:
    mp.page.click("#login-btn")
    mp.page.fill("#login-key", key)
    mp.page.click("#login-dialog button[value=save]")


@pytest.fixture(scope="module")
def deliveries(tmp_path_factory):
    folder = tmp_path_factory.mktemp("deliveries")
    return {"good": manhole_zip(folder, "丰收路井盖", NEW, ["雨水", "污水", "雨水", "电力"]),
            "bad": manhole_zip(folder, "错误井盖", NEW[:3], ["雨水", "不明用途", "污水"])}


def test_login_shows_the_role_and_name(map_page, live_server):
    mp = map_page
    assert mp.page.inner_text("#login-btn") == "登录（只读）"
    assert not mp.page.locator("#import-go").is_visible()
    log_in(mp, create_key(live_server.store.engine, "editor", "张三"))
    mp.page.wait_for_function("() => document.getElementById('login-btn').textContent === '编辑: 张三'")
    assert mp.page.evaluate("() => localStorage.getItem('geoapi.apiKey')").startswith("gk_")
    assert mp.page.evaluate("() => document.body.classList.contains('can-editor')")


def test_dry_run_shows_detected_encoding_and_crs(map_page, live_server, deliveries):
    mp = map_page
    mp.tab("import")
    assert mp.page.locator("#import-go").is_enabled()
    mp.page.set_input_files("#import-file", str(deliveries["good"]))
    mp.page.click("#import-dry")
    mp.page.wait_for_selector("#import-state[data-state=dry_run]")
    detected = mp.page.inner_text("#import-detected")
    assert "GB18030" in detected and "不是 UTF-8" in detected   # no .cpg: found from the bytes
    assert "EPSG:4547" in detected and ".prj" in detected
    counts = mp.page.inner_text("#import-counts")
    assert "可导入\n4" in counts and "拒绝\n0" in counts
    assert "检查通过" in mp.page.inner_text("#import-summary")
    assert "测量员" in mp.page.inner_text("#import-report")          # unmapped column, kept as extra
    n = httpx.get(f"{live_server.url}/collections/manholes/items", params={"limit": 1}).json()["numberMatched"]
    assert n == live_server.counts["manholes"]                      # a dry run writes nothing
    mp.screenshot("10-import-dry-run")


def test_a_bad_row_is_shown_with_its_reason_and_csv(map_page, deliveries, tmp_path):
    mp = map_page
    mp.page.set_input_files("#import-file", str(deliveries["bad"]))
    mp.page.click("#import-dry")
    mp.page.wait_for_selector("#import-state[data-state=dry_run]")
    rows = mp.page.locator("#import-rejected tbody tr")
    assert rows.count() == 1
    cells = rows.first.locator("td").all_inner_texts()
    assert cells[0] == "2" and "窨井用途" in cells[2] and "不明用途" in cells[2]
    assert "1 行有错误" in mp.page.inner_text("#import-summary")
    assert mp.page.locator("#import-rollback").count() == 0          # nothing was written
    with mp.page.expect_download() as info:
        mp.page.click("#import-csv")
    saved = tmp_path / "rejected.csv"
    info.value.save_as(saved)
    table = list(csv.reader(io.StringIO(saved.read_text(encoding="utf-8-sig"))))
    assert table[1][0] == "2" and "不明用途" in table[1][2]
    mp.screenshot("11-import-rejected")


def test_import_runs_and_the_new_manholes_show_on_the_map(map_page, live_server, deliveries):
    mp = map_page
    mp.jump(*SPOT, 17)
    mp.idle()
    assert manholes_at_spot(mp) == []              # the tiles here are loaded, and empty
    mp.page.set_input_files("#import-file", str(deliveries["good"]))
    mp.page.click("#import-go")
    mp.page.wait_for_selector("#import-state[data-state=done]")
    assert mp.page.evaluate("() => document.getElementById('import-bar').style.width") == "100%"
    assert "新增 4 行" in mp.page.inner_text("#import-summary")
    # The changed tiles refresh in place (no reload): the four new covers appear.
    mp.page.wait_for_function("""([lon, lat]) => map.queryRenderedFeatures({layers: ['manholes']})
        .filter(f => Math.abs(f.geometry.coordinates[0] - lon) < 0.002
                     && Math.abs(f.geometry.coordinates[1] - lat) < 0.002).length === 4""",
                              arg=list(SPOT), timeout=30_000)
    assert {p["status"] for p in manholes_at_spot(mp)} == {"破损"}
    items = httpx.get(f"{live_server.url}/collections/manholes/items",
                      params={"bbox": f"{SPOT[0] - 0.002},{SPOT[1] - 0.002},{SPOT[0] + 0.002},{SPOT[1] + 0.002}"}).json()
    assert sorted(f["properties"]["cover_no"] for f in items["features"]) == [f"导入-00{i}" for i in range(1, 5)]
    assert {f["properties"]["road_name"] for f in items["features"]} == {"丰收路"}   # GBK read right
    assert mp.page.locator("#import-rollback").is_visible()
    mp.screenshot("12-import-done")


def test_rollback_removes_the_import_from_the_map(map_page, live_server):
    mp = map_page
    mp.page.once("dialog", lambda d: d.accept())
    mp.page.click("#import-rollback")
    mp.page.wait_for_selector("#import-state[data-state=rolled_back]")
    assert "删除 4 行" in mp.page.inner_text("#import-summary")
    mp.page.wait_for_function("""([lon, lat]) => !map.queryRenderedFeatures({layers: ['manholes']})
        .some(f => Math.abs(f.geometry.coordinates[0] - lon) < 0.002 && Math.abs(f.geometry.coordinates[1] - lat) < 0.002)""",
                              arg=list(SPOT), timeout=30_000)
    n = httpx.get(f"{live_server.url}/collections/manholes/items", params={"limit": 1}).json()["numberMatched"]
    assert n == live_server.counts["manholes"]
    mp.screenshot("13-import-rolled-back")


def _open_record(mp, live_server) -> dict:
    feature = httpx.get(f"{live_server.url}/collections/manholes/items",
                        params={"status": "完好", "limit": 1}).json()["features"][0]
    mp.page.evaluate("(id) => geoapiApp.openArchive('manholes', id)", feature["id"])
    mp.page.wait_for_selector(f"#tab-archive.active h2[data-archive='manholes/{feature['id']}']")
    return feature


def test_a_stale_edit_is_refused_with_a_clear_message(map_page, live_server):
    mp = map_page
    feature = _open_record(mp, live_server)
    # Someone else edits the record after the page loaded it.
    r = httpx.patch(f"{live_server.url}/collections/manholes/items/{feature['id']}",
                    json={"type": "Feature", "properties": {"note": "巡查员已复核"}},
                    headers={"Authorization": f"Bearer {live_server.editor_key}"})
    assert r.status_code == 200, r.text
    mp.page.select_option("#edit-status", "丢失")
    mp.page.click("#edit-save")
    mp.page.wait_for_selector("#edit-msg.error #edit-reload")
    assert "该记录已被他人修改，请刷新" in mp.page.inner_text("#edit-msg")
    assert httpx.get(f"{live_server.url}/collections/manholes/items/{feature['id']}").json()["properties"]["status"] == "完好"
    mp.screenshot("14-archive-edit-conflict")
    assert take_expected_http_errors(mp, 412)      # the refused PATCH, and only it
    mp.feature_under_edit = feature


def test_an_editor_changes_status_and_defects(map_page, live_server):
    mp = map_page
    fid = mp.feature_under_edit["id"]
    mp.page.click("#edit-reload")
    mp.page.wait_for_function("() => document.querySelector('#archive-history')?.textContent.includes('巡查员已复核')")
    mp.page.select_option("#edit-status", "破损")
    mp.page.check("#edit-defects input[value=下沉]")
    mp.page.check("#edit-defects input[value=破裂]")
    mp.page.click("#edit-save")
    mp.page.wait_for_function("() => document.querySelector('#archive-history')?.textContent.includes('张三')")
    history = mp.page.inner_text("#archive-history")
    assert "v3 修改" in history and "完好 → 破损" in history
    props = httpx.get(f"{live_server.url}/collections/manholes/items/{fid}").json()["properties"]
    assert props["status"] == "破损" and sorted(props["defects"]) == ["下沉", "破裂"] and props["version"] == 3
    last = httpx.get(f"{live_server.url}/collections/manholes/items/{fid}/history").json()["entries"][-1]
    assert last["actor"].startswith("张三")
    mp.screenshot("15-archive-edited")


def test_weaker_roles_see_no_edit_controls(map_page, live_server):
    mp = map_page
    editor_key = mp.page.evaluate("() => localStorage.getItem('geoapi.apiKey')")
    log_in(mp, create_key(live_server.store.engine, "viewer", "王五"))
    mp.page.wait_for_function("() => document.getElementById('login-btn').textContent === '查看: 王五'")
    assert mp.page.locator("#archive-edit").count() == 1 and not mp.page.locator("#archive-edit").is_visible()
    mp.tab("import")
    assert not mp.page.locator("#import-go").is_visible() and mp.page.locator("#import-go").is_disabled()
    assert "“查看”权限" in mp.page.inner_text("#import-needs-editor")
    log_in(mp, editor_key)
    mp.page.wait_for_function("() => document.getElementById('login-btn').textContent === '编辑: 张三'")
    assert mp.page.locator("#import-go").is_visible()


def test_no_console_errors(map_page):
    assert map_page.errors == []
