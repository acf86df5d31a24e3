"""The field-crew export: a PMTiles file whose tiles read back as the API's tiles."""

from __future__ import annotations

import gzip

import pytest
from pmtiles.reader import MmapSource, Reader

from geoapi.services.tile_export import export_pmtiles
from tests.tiles.conftest import decode, tile_at


@pytest.mark.usefixtures("seeded")
def test_export_reads_back_with_the_pmtiles_reader(store, seeded, tmp_path):
    out = tmp_path / "jiaozuo.pmtiles"
    stats = export_pmtiles(store, ["manholes", "pipes"], (113.23, 35.20, 113.25, 35.22), 12, 16, out)
    assert stats["tiles"] > 0
    with out.open("rb") as f:
        reader = Reader(MmapSource(f))
        header = reader.header()
        assert (header["min_zoom"], header["max_zoom"]) == (12, 16)
        assert {v["id"] for v in reader.metadata()["vector_layers"]} == {"manholes", "pipes"}
        t = tile_at(113.2400, 35.2100, 16)
        tile = decode(gzip.decompress(reader.get(t.z, t.x, t.y)))
        assert {f["id"] for f in tile["manholes"]["features"]} == set(seeded["manholes"][:3])
        low = tile_at(113.2400, 35.2100, 12)
        cells = decode(gzip.decompress(reader.get(low.z, low.x, low.y)))["manholes"]["features"]
        assert sum(c["properties"]["count"] for c in cells) == 4  # a tile is whole, not cut to the area


def test_export_refuses_bad_zooms(store, tmp_path):
    with pytest.raises(ValueError, match="zooms"):
        export_pmtiles(store, ["manholes"], (113.23, 35.20, 113.25, 35.22), 16, 12, tmp_path / "x.pmtiles")
