"""The import report: counts, rejected rows with reasons, provenance; exportable as CSV."""

from __future__ import annotations

import csv
import hashlib
import io
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

State = Literal["done", "dry_run", "failed", "refused"]


@dataclass(frozen=True)
class RejectedRow:
    row: int                 # 1-based data row (CSV/XLSX: the header is not counted; shapefile: FID + 1)
    code: str | None         # the row's business key (部件标识码, segment_no …) when it has one
    reasons: tuple[str, ...]


@dataclass
class Provenance:
    file_name: str
    file_size: int
    sha256: str
    source_kind: str | None = None
    dataset: str | None = None            # the file inside a zip/folder, or the layer/sheet
    crs: dict[str, Any] | None = None     # label, name, datum, reason
    encoding: dict[str, str] | None = None
    transform: str | None = None
    axes_swapped: bool = False


@dataclass
class ImportReport:
    layer: str
    mode: str
    on_error: str
    dry_run: bool
    batch_id: str | None = None
    state: State = "done"
    message: str | None = None
    rows_read: int = 0
    imported: int = 0
    updated: int = 0
    skipped: int = 0                      # blank rows
    repaired: int = 0                     # geometries made valid without changing their type
    rejected: list[RejectedRow] = field(default_factory=list)
    unmapped_columns: list[str] = field(default_factory=list)
    mapping: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    provenance: Provenance | None = None

    @property
    def ok(self) -> bool:
        return self.state in ("done", "dry_run")

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["rejected_count"] = len(self.rejected)
        d["rejected"] = [{"row": r.row, "code": r.code, "reasons": list(r.reasons)} for r in self.rejected]
        return d

    def rejected_csv(self) -> str:
        """The rejected rows as CSV (UTF-8 with BOM, so Excel opens the 中文 correctly)."""
        buf = io.StringIO()
        buf.write("\ufeff")
        w = csv.writer(buf)
        w.writerow(["行号 row", "编码 code", "原因 reasons"])
        for r in self.rejected:
            w.writerow([r.row, r.code or "", "；".join(r.reasons)])
        return buf.getvalue()


def fingerprint(path: Path) -> tuple[int, str]:
    """Size and SHA-256 of a file; of all parts of a ``.shp``; of a folder's files (sorted)."""
    if path.is_dir():
        files, base = sorted(p for p in path.rglob("*") if p.is_file()), path
    elif path.suffix.lower() == ".shp":
        files, base = sorted(p for p in path.parent.iterdir() if p.is_file() and p.stem == path.stem), path.parent
    else:
        files, base = [path], None
    h = hashlib.sha256()
    size = 0
    for p in files:
        if base is not None:   # names too: renaming a part changes what was delivered
            h.update(str(p.relative_to(base)).encode("utf-8") + b"\x00")
        with open(p, "rb") as f:
            while chunk := f.read(1 << 20):
                size += len(chunk)
                h.update(chunk)
    return size, h.hexdigest()
