"""Safe zip extraction: stream every entry into a temp directory under hard limits.

Zip headers can lie about sizes, so the decompressed bytes are counted while copying and the
copy stops as soon as the limit is passed. Entries whose names would leave the target
directory (absolute paths, drive letters, ``..``) or that are symlinks are refused.
"""

from __future__ import annotations

import stat
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from importers.errors import ArchiveTooLargeError, UnsafeArchiveError

_CHUNK = 1 << 20
_UTF8_FLAG = 0x800


@dataclass(frozen=True)
class ArchiveLimits:
    max_total_bytes: int = 4 * 1024**3
    max_entries: int = 10_000


def entry_name(info: zipfile.ZipInfo) -> str:
    """The entry's real name: Windows zip tools store Chinese names in GBK without the UTF-8 flag."""
    if info.flag_bits & _UTF8_FLAG:
        return info.filename
    try:
        raw = info.filename.encode("cp437")
    except UnicodeEncodeError:
        return info.filename
    for enc in ("utf-8", "gb18030"):
        try:
            return raw.decode(enc)
        except UnicodeDecodeError:
            continue
    return info.filename


def safe_relative_path(name: str) -> PurePosixPath:
    """The entry's path below the target directory, or UnsafeArchiveError."""
    norm = name.replace("\\", "/")
    if norm.startswith("/") or (len(norm) > 1 and norm[1] == ":"):
        raise UnsafeArchiveError(f"zip entry {name!r} has an absolute path; refused")
    parts = PurePosixPath(norm).parts
    if any(p == ".." for p in parts):
        raise UnsafeArchiveError(f"zip entry {name!r} points outside the archive ('..'); refused")
    return PurePosixPath(*[p for p in parts if p not in ("", ".")])


def extract_zip(archive: Path, target: Path, limits: ArchiveLimits = ArchiveLimits()) -> list[Path]:
    """Extract ``archive`` into ``target``; return the files written (macOS metadata skipped)."""
    try:
        zf = zipfile.ZipFile(archive)
    except zipfile.BadZipFile as exc:
        raise UnsafeArchiveError(f"{archive.name} is not a readable zip file: {exc}") from exc
    with zf:
        plan = _plan(zf, archive, limits)
        written: list[Path] = []
        total = 0
        for info, rel in plan:
            dest = target.joinpath(*rel.parts)
            dest.parent.mkdir(parents=True, exist_ok=True)
            try:
                with zf.open(info) as src, open(dest, "wb") as out:
                    while chunk := src.read(_CHUNK):
                        total += len(chunk)
                        if total > limits.max_total_bytes:
                            raise ArchiveTooLargeError(_too_big(archive, limits))
                        out.write(chunk)
            # Corrupt data, a CRC mismatch (sizes that lie), encryption, exotic compression.
            except (zipfile.BadZipFile, zlib.error, EOFError, RuntimeError, NotImplementedError) as exc:
                raise UnsafeArchiveError(f"zip entry {rel.as_posix()!r} cannot be read: {exc}") from exc
            written.append(dest)
        return written


def check_zip(archive: Path, limits: ArchiveLimits = ArchiveLimits()) -> None:
    """The header checks of ``extract_zip`` (names, entry count, declared size) without extracting:
    cheap enough to run while an upload request is still open."""
    try:
        zf = zipfile.ZipFile(archive)
    except zipfile.BadZipFile as exc:
        raise UnsafeArchiveError(f"{archive.name} is not a readable zip file: {exc}") from exc
    with zf:
        _plan(zf, archive, limits)


def _plan(zf: zipfile.ZipFile, archive: Path, limits: ArchiveLimits) -> list[tuple[zipfile.ZipInfo, PurePosixPath]]:
    infos = zf.infolist()
    if len(infos) > limits.max_entries:
        raise ArchiveTooLargeError(
            f"{archive.name} has {len(infos)} entries; at most {limits.max_entries} are allowed")
    declared = sum(i.file_size for i in infos)
    if declared > limits.max_total_bytes:
        raise ArchiveTooLargeError(_too_big(archive, limits))
    # Check every name before writing anything, so a refused archive leaves nothing behind.
    plan = []
    for info in infos:
        name = entry_name(info)
        rel = safe_relative_path(name)
        if stat.S_ISLNK(info.external_attr >> 16):
            raise UnsafeArchiveError(f"zip entry {name!r} is a symbolic link; refused")
        if info.is_dir() or not rel.parts or rel.parts[0] == "__MACOSX" or rel.name.startswith("._"):
            continue
        plan.append((info, rel))
    return plan


def _too_big(archive: Path, limits: ArchiveLimits) -> str:
    mb = limits.max_total_bytes / 1024**2
    return f"{archive.name} decompresses to more than {mb:g} MB; refused (zip bomb guard)"
