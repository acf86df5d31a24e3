"""The Store contract, run on SpatiaLite and PostGIS alike (issue 2 §3–§5)."""

from __future__ import annotations

import dataclasses

import pytest
import sqlalchemy as sa
from shapely.geometry import LineString, Point

from geoapi.errors import ConflictError, ValidationFailedError
from geoapi.settings import Settings
from geoapi.storage import FeatureQuery, Store


def manhole(i: int, **props):
    return ({"well_use": "污水", **props}, Point(113.20 + i * 1e-4, 35.21))


def test_bulk_modes_append_upsert_replace(store):
    store.bulk_write("manholes", [manhole(i, cover_no=f"W{i}") for i in range(10)], actor="t")
    codes = [f.props["obj_code"] for f in store.query("manholes", FeatureQuery(limit=100)).features]
    assert len(set(codes)) == 10
    update = [({"obj_code": codes[0], "well_use": "雨水"}, Point(113.3, 35.3)), manhole(99)]
    with pytest.raises(ValidationFailedError):  # a 污水 code cannot describe a 雨水 well
        store.bulk_write("manholes", update, actor="t", mode="upsert")
    counts = store.bulk_write("manholes", [({"obj_code": codes[0], "well_use": "污水", "status": "破损"},
                                            Point(113.3, 35.3)), manhole(99)], actor="t", mode="upsert")
    assert counts == {"inserted": 1, "updated": 1, "deleted": 0}
    assert store.count("manholes", FeatureQuery(filters={"status": ["破损"]})) == 1
    counts = store.bulk_write("manholes", [manhole(1)], actor="t", mode="replace")
    assert counts["deleted"] == 11 and store.count("manholes") == 1


def test_failed_batch_leaves_nothing(store):
    store.bulk_write("manholes", [manhole(0, obj_code="4108000102000007")], actor="t")
    before = store.count("manholes")
    rows = [manhole(i) for i in range(1, 50)] + [manhole(50, obj_code="4108000102000007")]
    with pytest.raises(ConflictError, match="4108000102000007 is already used") as err:
        store.bulk_write("manholes", rows, actor="t")
    assert err.value.errors == [{"field": "obj_code", "message": "duplicate", "row": 49}]
    assert store.count("manholes") == before
    h = sa.text("SELECT count(*) FROM history")
    with store.engine.connect() as conn:
        assert conn.execute(h).scalar() == 1


def test_listeners_hear_only_committed_changes(store):
    heard = []
    store.subscribe(heard.append)
    f = store.create("manholes", *manhole(0), actor="t")
    with pytest.raises(ValidationFailedError):
        store.patch("manholes", f.id, {"well_use": "??"}, actor="t")
    store.patch("manholes", f.id, {"status": "丢失"}, Point(113.25, 35.25), actor="t")
    assert [(c.op, c.ids) for c in heard] == [("insert", [f.id]), ("update", [f.id])]
    assert heard[1].old_geoms[0].equals(Point(113.20, 35.21)) and heard[1].new_geoms[0].equals(Point(113.25, 35.25))
    assert heard[1].status_changed


def test_codes_unique_under_many_allocations(store):
    store.bulk_write("manholes", [manhole(i, admin_code="410811") for i in range(300)], actor="t")
    store.bulk_write("manholes", [manhole(i, admin_code="410811") for i in range(300)], actor="t")
    codes = [f.props["obj_code"] for f in store.query("manholes", FeatureQuery(limit=1000)).features]
    assert len(codes) == 600 == len(set(codes))
    assert all(c.startswith("4108110102") for c in codes)
    assert max(codes) == "4108110102000600"


def test_admin_code_from_district(store):
    from shapely.geometry import box

    store.bulk_write("districts", [({"admin_code": "410811", "name": "山阳区"}, box(113.2, 35.1, 113.4, 35.3))],
                     actor="t")
    f = store.create("toilets", {"name": "测试公厕"}, Point(113.3, 35.2), actor="t")
    assert f.props["admin_code"] == "410811" and f.props["obj_code"].startswith("4108110301")
    outside = store.create("toilets", {"name": "城外公厕"}, Point(113.0, 35.0), actor="t")
    assert outside.props["admin_code"] == "410800"


def test_pipes_keep_z(store):
    line = LineString([(113.24, 35.21, 98.5), (113.241, 35.211, 98.2)])
    f = store.create("pipes", {"pipe_class": "排水", "material": "混凝土"}, line, actor="t")
    again = store.get("pipes", f.id)
    assert again.geometry.has_z and list(again.geometry.coords)[0][2] == pytest.approx(98.5)


def test_json_and_enum_list_values_round_trip(store):
    f = store.create("manholes", *manhole(0, defects=["下沉", "松动"]), actor="t")
    assert store.get("manholes", f.id).props["defects"] == ["下沉", "松动"]
    q = FeatureQuery(filters={"defects": ["松动"]})
    assert [x.id for x in store.query("manholes", q).features] == [f.id]


@pytest.mark.parametrize("cap", [5, 1000])
def test_filtered_pages_count_their_matches_within_and_beyond_the_cap(store, monkeypatch, cap):
    """A filtered page counts its matches in the page's own statement up to Store.COUNT_CAP and
    with count(*) beyond it: numberMatched and the page are the same either way."""
    monkeypatch.setattr(Store, "COUNT_CAP", cap)
    store.bulk_write("manholes", [manhole(i, well_use="雨水" if i % 3 else "污水", well_depth_m=float(i % 4))
                                  for i in range(60)], actor="t")
    every = store.query("manholes", FeatureQuery(limit=100, count=False)).features
    want = sorted((f for f in every if f.props["well_use"] == "雨水" and f.geometry.x <= 113.2045),
                  key=lambda f: (-f.props["well_depth_m"], f.id))
    assert len(want) == 30
    q = FeatureQuery(bbox=(113.19, 35.2, 113.2045, 35.22), filters={"well_use": ["雨水"]},
                     sortby=[("well_depth_m", True)], limit=4)
    for offset in (0, 4, 12, 26, 28, 30, 44):
        page = store.query("manholes", dataclasses.replace(q, offset=offset))
        assert page.number_matched == 30, offset
        assert [f.id for f in page.features] == [f.id for f in want[offset:offset + 4]]


def test_upgrade_is_idempotent_and_adds_new_fields(settings, tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    store = Store.open(settings)
    done = store.upgrade()  # the template database is already current: nothing created or added
    assert not [line for line in done if line.startswith(("created", "added"))], done
    store.close()
    (site / "litter_bins.toml").write_text(
        'id = "litter_bins"\ntitle = "果皮箱"\ntitle_en = "Litter bins"\ngeometry = "Point"\n'
        '[identifier]\nclass_code = "03"\nsubclass = "0305"\n'
        '[[fields]]\nname = "capacity_l"\nlabel = "容量"\ntype = "int"\n')
    s2 = Settings(**{**settings.model_dump(), "layers_dir": site})
    store = Store.open(s2)
    assert "created table litter_bins" in store.upgrade()
    store.close()
    (site / "litter_bins.toml").write_text((site / "litter_bins.toml").read_text()
                                          + '[[fields]]\nname = "material"\nlabel = "材质"\n')
    store = Store.open(s2)
    assert "added column litter_bins.material" in store.upgrade()
    f = store.create("litter_bins", {"material": "不锈钢", "capacity_l": 120}, Point(113.24, 35.21), actor="t")
    assert f.props["obj_code"][6:10] == "0305"
    store.close()


def test_ids_are_never_reused_after_delete(store):
    first = store.create("manholes", *manhole(0), actor="t")
    store.delete("manholes", first.id, actor="t")
    store.bulk_write("manholes", [manhole(1)], actor="t")
    second = store.create("manholes", *manhole(2), actor="t")
    ids = [f.id for f in store.query("manholes", FeatureQuery(limit=10)).features]
    assert first.id not in ids and second.id > first.id
    assert [h.op for h in store.history("manholes", first.id)] == ["insert", "delete"]


def test_revision_0004_adds_history_runs_and_refuses_a_downgrade_that_would_lose_them(store):
    from alembic import command

    from geoapi.storage.migrate import alembic_config, head_revision

    def history_shape():
        with store.read() as conn:
            inspector = sa.inspect(conn)
            return ("last_feature_id" in {c["name"] for c in inspector.get_columns("history")},
                    "ix_history_runs" in {i["name"] for i in inspector.get_indexes("history")},
                    conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar())

    with store.engine.connect().execution_options(geoapi_write=True) as conn, conn.begin():
        command.downgrade(alembic_config(conn), "0003")   # no runs yet: nothing is lost
    assert history_shape() == (False, False, "0003")
    store.upgrade()
    assert history_shape() == (True, True, head_revision())
    store.bulk_write("manholes", [manhole(i) for i in range(3)], actor="t")
    with pytest.raises(RuntimeError, match="1 history entries"):
        with store.engine.connect().execution_options(geoapi_write=True) as conn, conn.begin():
            command.downgrade(alembic_config(conn), "0003")
    assert history_shape() == (True, True, head_revision())
