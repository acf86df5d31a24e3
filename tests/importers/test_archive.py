"""Zip extraction refuses path tricks and zip bombs before they touch the disk."""

from __future__ import annotations

import zipfile

import pytest

from geoapi.errors import GeoapiError
from importers.archive import ArchiveLimits, extract_zip
from importers.errors import ArchiveTooLargeError, UnsafeArchiveError


def _zip(path, entries: dict[str, bytes], compression=zipfile.ZIP_DEFLATED):
    with zipfile.ZipFile(path, "w", compression=compression) as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
    return path


def test_plain_archive_is_extracted_with_its_folders(tmp_path):
    z = _zip(tmp_path / "a.zip", {"data/井盖.shp": b"x", "data/井盖.dbf": b"y", "__MACOSX/._井盖.shp": b"z"})
    out = tmp_path / "out"
    out.mkdir()
    written = extract_zip(z, out)
    assert sorted(p.relative_to(out).as_posix() for p in written) == ["data/井盖.dbf", "data/井盖.shp"]
    assert (out / "data" / "井盖.shp").read_bytes() == b"x"


@pytest.mark.parametrize("name", ["../evil.shp", "data/../../evil.shp", "/etc/evil.shp", "C:/evil.shp",
                                  "..\\evil.shp"])
def test_entries_escaping_the_target_are_refused(tmp_path, name):
    z = _zip(tmp_path / "evil.zip", {"ok.txt": b"fine", name: b"pwned"})
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(UnsafeArchiveError, match="refused"):
        extract_zip(z, out)
    assert not (tmp_path / "evil.shp").exists()
    assert list(out.iterdir()) == []   # checked before anything is written


def test_zip_bomb_is_stopped_by_the_decompressed_size(tmp_path):
    z = _zip(tmp_path / "bomb.zip", {"zeros.dbf": b"\0" * (20 * 1024 * 1024)})
    assert z.stat().st_size < 100_000   # compresses ~1000:1
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(ArchiveTooLargeError, match="zip bomb"):
        extract_zip(z, out, ArchiveLimits(max_total_bytes=5 * 1024 * 1024))


def test_lying_size_headers_do_not_help_a_bomb(tmp_path):
    """A header claiming a small size is not believed: the read fails its check and is refused (4xx)."""
    z = _zip(tmp_path / "liar.zip", {"zeros.dbf": b"\0" * (3 * 1024 * 1024)})
    with zipfile.ZipFile(z) as zf:
        real = zf.infolist()[0].file_size.to_bytes(4, "little")
    z.write_bytes(z.read_bytes().replace(real, (10).to_bytes(4, "little")))
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(GeoapiError) as err:
        extract_zip(z, out, ArchiveLimits(max_total_bytes=1024 * 1024))
    assert err.value.status in (400, 413)
    assert sum(p.stat().st_size for p in out.rglob("*") if p.is_file()) <= 1024 * 1024


def test_too_many_entries_are_refused(tmp_path):
    z = _zip(tmp_path / "many.zip", {f"f{i}.txt": b"" for i in range(30)})
    with pytest.raises(ArchiveTooLargeError, match="30 entries"):
        extract_zip(z, tmp_path, ArchiveLimits(max_entries=20))


class _GbkName(zipfile.ZipInfo):
    """Store the name as GBK bytes without the UTF-8 flag, as zip tools on a Chinese Windows do."""

    def _encodeFilenameFlags(self):
        return self.filename.encode("gbk"), self.flag_bits


def test_gbk_entry_names_from_windows_zip_tools_are_decoded(tmp_path):
    z = tmp_path / "gbk.zip"
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr(_GbkName("井盖数据/井盖.shp"), b"x")
    with zipfile.ZipFile(z) as zf:
        assert zf.infolist()[0].filename != "井盖数据/井盖.shp"   # what Python alone makes of it
    out = tmp_path / "out"
    out.mkdir()
    written = extract_zip(z, out)
    assert [p.relative_to(out).as_posix() for p in written] == ["井盖数据/井盖.shp"]
