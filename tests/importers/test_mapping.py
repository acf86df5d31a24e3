"""Column names → layer fields through the layer file's aliases (DOMAIN.md §8.2)."""

from __future__ import annotations

import pytest

from importers.errors import ImportRefusedError
from importers.mapping import build_mapping


def test_pinyin_aliases_labels_and_names_map(manholes):
    m = build_mapping(manholes, ["JCJBH", "jgcz", "所在道路", "well_use", "Well Depth M"])
    assert m.columns == {"JCJBH": "cover_no", "jgcz": "cover_material", "所在道路": "road_name",
                         "well_use": "well_use"}
    assert m.how["jgcz"] == "alias" and m.how["well_use"] == "name"
    assert m.extra == ["Well Depth M"]


def test_names_cut_at_10_bytes_still_map(manholes):
    # 是否智能井盖 (label/alias) cut at 10 GBK bytes: 是否智能井; in UTF-8: 是否智 (9 bytes + a broken byte).
    m = build_mapping(manholes, ["是否智能井", "井盖与路面"])
    assert m.columns == {"是否智能井": "is_smart", "井盖与路面": "height_diff_mm"}
    assert set(m.how.values()) == {"truncated"}
    m8 = build_mapping(manholes, ["是否智"])
    assert m8.columns == {"是否智": "is_smart"}


def test_unmapped_columns_are_listed_not_dropped(manholes):
    m = build_mapping(manholes, ["JCJBH", "OBJECTID", "测量员"])
    assert m.extra == ["OBJECTID", "测量员"]


def test_explicit_mapping_overrides_aliases(manholes):
    m = build_mapping(manholes, ["JCJBH", "编号2", "JGCZ"], {"编号2": "cover_no", "JGCZ": None})
    assert m.columns == {"编号2": "cover_no"}
    assert "JCJBH" in m.extra and "JGCZ" in m.extra   # the alias lost; JGCZ kept in extra on request
    assert any("JCJBH" in n for n in m.notes)


def test_explicit_mapping_must_fit(manholes):
    with pytest.raises(ImportRefusedError, match="not in the file"):
        build_mapping(manholes, ["A"], {"B": "cover_no"})
    with pytest.raises(ImportRefusedError, match="not fields of layer manholes"):
        build_mapping(manholes, ["A"], {"A": "no_such_field"})


def test_pipe_survey_codes(pipes):
    m = build_mapping(pipes, ["QDMS", "ZDMS", "GJ", "CZ", "MSFS", "QSDW", "SZDL"])
    assert m.extra == [], m.notes
    assert m.columns["QSDW"] == "owner_name" and m.columns["SZDL"] == "road_name"
