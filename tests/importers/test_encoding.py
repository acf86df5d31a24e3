"""Encoding detection (DOMAIN.md §8.1) and reading Chinese DBFs, names cut at 10 bytes included."""

from __future__ import annotations

import shapely

from importers.encoding import (
    decode_field_name,
    detect_dbf_encoding,
    detect_text_encoding,
    normalise_encoding,
    read_dbf_field_names,
)
from importers.readers import ReadOptions, open_source

from .conftest import TO_4547, lonlat_points, projected

NAMES = ["检查井编号", "井盖材质", "所在道路"]
VALUES = {"检查井编号": ["YS-001", "WS-002"], "井盖材质": ["球墨铸铁", "复合材料"], "所在道路": ["人民路", "解放中路"]}


def _points(n=2):
    xy = projected(lonlat_points(n), TO_4547)
    return shapely.points(xy)


def test_cpg_wins(make_shapefile):
    shp = make_shapefile("cpg", _points(), VALUES, encoding="GBK", cpg=True)
    guess = detect_dbf_encoding(shp.with_suffix(".dbf"))
    assert (guess.encoding, guess.reason) == ("gb18030", "cpg")


def test_ldid_0x4d_means_cp936(make_shapefile):
    shp = make_shapefile("ldid", _points(), VALUES, encoding="GBK", cpg=False, ldid=0x4D)
    guess = detect_dbf_encoding(shp.with_suffix(".dbf"))
    assert (guess.encoding, guess.reason) == ("gb18030", "ldid")


def test_utf8_without_cpg_is_recognised_strictly(make_shapefile):
    shp = make_shapefile("u8", _points(), VALUES, encoding="UTF-8", cpg=False, ldid=0x57)
    guess = detect_dbf_encoding(shp.with_suffix(".dbf"))
    assert (guess.encoding, guess.reason) == ("utf-8", "utf8-strict")
    assert "0x57" in guess.detail   # the ANSI LDID GDAL writes by default is noted, not trusted


def test_gbk_without_cpg_or_ldid_falls_back_to_gb18030(make_shapefile):
    shp = make_shapefile("gbk", _points(), VALUES, encoding="GBK", cpg=False, ldid=0x00)
    guess = detect_dbf_encoding(shp.with_suffix(".dbf"))
    assert (guess.encoding, guess.reason) == ("gb18030", "fallback")


def test_override_beats_everything(make_shapefile):
    shp = make_shapefile("ovr", _points(), VALUES, encoding="GBK", cpg=True)
    guess = detect_dbf_encoding(shp.with_suffix(".dbf"), override="big5")
    assert (guess.encoding, guess.reason) == ("big5", "override")


def test_cpg_spellings_are_understood():
    assert normalise_encoding("936") == "gb18030"
    assert normalise_encoding("GB2312") == "gb18030"   # usually GBK in practice
    assert normalise_encoding("65001") == "utf-8"
    assert normalise_encoding("UTF-8") == "utf-8"


def test_gbk_dbf_without_cpg_reads_chinese_names_and_values(make_shapefile):
    shp = make_shapefile("gbk", _points(), VALUES, encoding="GBK", cpg=False, ldid=0x00)
    with open_source(shp) as src:
        assert src.columns == NAMES
        batch = next(src.batches())
    assert batch.columns["所在道路"] == ["人民路", "解放中路"]
    assert batch.columns["井盖材质"] == ["球墨铸铁", "复合材料"]


def test_utf8_names_cut_inside_a_character_read_as_their_whole_characters(make_shapefile):
    # GDAL cuts 检查井编号 (15 UTF-8 bytes) at 10 bytes: 检查井 + the first byte of 编.
    shp = make_shapefile("cut8", _points(), {"检查井编号": ["A", "B"], "起点埋深": [1.5, 2.0]},
                         encoding="UTF-8", cpg=False)
    raw_names = read_dbf_field_names(shp.with_suffix(".dbf"))
    assert raw_names[0] == "检查井编号".encode()[:10]
    with open_source(shp) as src:
        assert src.columns == ["检查井", "起点埋"]
        batch = next(src.batches())
    assert batch.columns["检查井"] == ["A", "B"]
    assert batch.columns["起点埋"] == [1.5, 2.0]


def test_gbk_names_cut_inside_a_character(make_shapefile):
    # "a检查井编号" is 11 GBK bytes: the cut leaves half of 号.
    shp = make_shapefile("cutgbk", _points(), {"a检查井编号": ["A", "B"], "起点埋深测量": [1.0, 2.0],
                                               "起点埋深测试": [3.0, 4.0]}, encoding="GBK", cpg=False)
    with open_source(shp) as src:
        # GDAL renames the second 10-byte clash to 起点埋深_1; both stay readable.
        assert src.columns == ["a检查井编", "起点埋深测", "起点埋深_1"]
        batch = next(src.batches())
    assert batch.columns["起点埋深_1"] == [3.0, 4.0]


def test_decode_field_name_drops_only_the_broken_tail():
    assert decode_field_name("井深".encode("gbk"), "gb18030") == "井深"
    assert decode_field_name("检查井编号".encode()[:10], "utf-8") == "检查井"


def test_csv_encodings(tmp_path):
    gbk = tmp_path / "gbk.csv"
    gbk.write_bytes("名称,X,Y\n井盖,3899265,430806\n".encode("gbk"))
    bom = tmp_path / "bom.csv"
    bom.write_bytes("\ufeff名称,X,Y\n".encode())
    assert detect_text_encoding(gbk).encoding == "gb18030"
    assert detect_text_encoding(bom).reason == "bom"


def test_override_reaches_gdal(make_shapefile):
    """A wrong .cpg (says UTF-8, data is GBK) is fixed by encoding=."""
    shp = make_shapefile("wrongcpg", _points(), VALUES, encoding="GBK", cpg=False)
    shp.with_suffix(".cpg").write_text("UTF-8")
    with open_source(shp, ReadOptions(encoding="gbk")) as src:
        assert src.columns == NAMES
        assert next(src.batches()).columns["所在道路"] == ["人民路", "解放中路"]
