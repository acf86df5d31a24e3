"""Which text encoding a delivery uses (DOMAIN.md §8.1).

DBF files carry no reliable encoding. Order of evidence: the ``.cpg`` file, the DBF language
driver id (LDID, byte 29) when it names a CJK code page, strict UTF-8 over the whole DBF,
and GB18030 (a superset of GBK/CP936) as the fallback. Western LDIDs are not trusted: GDAL
writes 0x57 (ANSI) by default and many Chinese tools leave it, so they say nothing.
"""

from __future__ import annotations

import codecs
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

Reason = Literal["override", "cpg", "ldid", "utf8-strict", "fallback", "bom", "format"]

# DBF language driver ids that name an East Asian code page (dBASE / FoxPro / ArcGIS tables).
CJK_LDIDS: dict[int, str] = {
    0x4D: "cp936",   # Chinese GBK (PRC), ArcGIS/dBASE
    0x7A: "cp936",   # FoxPro PRC GBK
    0x4F: "cp950",   # Big5 (Taiwan)
    0x78: "cp950",   # FoxPro Big5
    0x4E: "cp949",   # Korean
    0x79: "cp949",
    0x13: "cp932",   # Japanese Shift-JIS
    0x7B: "cp932",
}

_CPG_ALIASES = {
    "65001": "utf-8", "936": "gb18030", "950": "cp950", "949": "cp949", "932": "cp932",
    "88591": "latin-1", "8859_1": "latin-1", "1252": "cp1252", "ansi_1252": "cp1252",
    # Files labelled GB2312 are routinely GBK in practice; GB18030 decodes both.
    "gb2312": "gb18030", "gbk": "gb18030", "cp936": "gb18030", "ms936": "gb18030",
}


@dataclass(frozen=True)
class EncodingGuess:
    encoding: str      # a Python codec name that GDAL's iconv also knows
    reason: Reason
    detail: str = ""

    def as_dict(self) -> dict[str, str]:
        return {"encoding": self.encoding, "reason": self.reason, "detail": self.detail}


def normalise_encoding(name: str) -> str:
    """A codec name for a user- or .cpg-given encoding; ValueError when unknown."""
    key = name.strip().lower()
    key = _CPG_ALIASES.get(key, _CPG_ALIASES.get(key.replace("-", "").replace("_", ""), key))
    try:
        return codecs.lookup(key).name
    except LookupError as exc:
        raise ValueError(f"unknown text encoding {name!r}") from exc


def detect_dbf_encoding(dbf: Path, override: str | None = None) -> EncodingGuess:
    """The encoding of a shapefile's DBF (and its ``.cpg`` sibling if there is one)."""
    if override:
        return EncodingGuess(normalise_encoding(override), "override", f"given: {override}")
    cpg = _sibling(dbf, ".cpg")
    if cpg is not None:
        text = cpg.read_bytes().decode("ascii", "replace").strip()
        try:
            return EncodingGuess(normalise_encoding(text), "cpg", f"{cpg.name}: {text}")
        except ValueError:
            pass  # an unreadable .cpg is no evidence; fall through
    ldid = read_ldid(dbf)
    if ldid in CJK_LDIDS:
        return EncodingGuess(normalise_encoding(CJK_LDIDS[ldid]), "ldid", f"language driver 0x{ldid:02X}")
    note = f"language driver 0x{ldid:02X} says nothing; " if ldid is not None else ""
    if is_utf8_dbf(dbf):
        return EncodingGuess("utf-8", "utf8-strict", note + "names and values decode as UTF-8")
    return EncodingGuess("gb18030", "fallback", note + "not UTF-8; assumed GB18030 (GBK)")


def detect_text_encoding(path: Path, override: str | None = None) -> EncodingGuess:
    """For CSV: BOM, else strict UTF-8, else GB18030 (Excel in China saves CSV as GBK)."""
    if override:
        return EncodingGuess(normalise_encoding(override), "override", f"given: {override}")
    with open(path, "rb") as f:
        head = f.read(4)
    if head.startswith(codecs.BOM_UTF8):
        return EncodingGuess("utf-8-sig", "bom", "UTF-8 byte-order mark")
    if head[:2] in (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE):
        return EncodingGuess("utf-16", "bom", "UTF-16 byte-order mark")
    if is_strict_utf8(path):
        return EncodingGuess("utf-8", "utf8-strict", "every byte decodes as UTF-8")
    return EncodingGuess("gb18030", "fallback", "not UTF-8; assumed GB18030 (GBK)")


def read_ldid(dbf: Path) -> int | None:
    with open(dbf, "rb") as f:
        header = f.read(32)
    return header[29] if len(header) >= 30 else None


def is_strict_utf8(path: Path, chunk: int = 1 << 20) -> bool:
    """True when the whole file decodes as UTF-8 (streamed: a 1M-row DBF is hundreds of MB)."""
    decoder = codecs.getincrementaldecoder("utf-8")(errors="strict")
    try:
        with open(path, "rb") as f:
            while block := f.read(chunk):
                decoder.decode(block)
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return False
    return True


def is_utf8_dbf(dbf: Path, chunk: int = 1 << 20) -> bool:
    """Strict UTF-8, except for characters cut by a DBF byte limit.

    Writers cut names at 10 bytes and values at the field width, often inside a character,
    so a genuine UTF-8 DBF can hold a few broken sequences. GBK read as UTF-8 breaks at
    nearly every Chinese character; a share of broken sequences under 5 % of the non-ASCII
    bytes is therefore still UTF-8.
    """
    for name in read_dbf_field_names(dbf):
        if not _decodes_but_tail(name, "utf-8"):
            return False
    with open(dbf, "rb") as f:
        header = f.read(32)
        f.seek(int.from_bytes(header[8:10], "little"))
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        high = broken = 0
        while block := f.read(chunk):
            high += int(np.count_nonzero(np.frombuffer(block, dtype=np.uint8) >= 0x80))
            broken += decoder.decode(block).count("\ufffd")
        broken += decoder.decode(b"", final=True).count("\ufffd")
    return broken == 0 or broken * 20 <= high


def _decodes_but_tail(raw: bytes, encoding: str) -> bool:
    for cut in range(0, 4):
        try:
            raw[:len(raw) - cut].decode(encoding)
            return True
        except UnicodeDecodeError:
            continue
    return False


def read_dbf_field_names(dbf: Path) -> list[bytes]:
    """The raw 11-byte name slots of the DBF field descriptors, NUL-trimmed."""
    with open(dbf, "rb") as f:
        header = f.read(32)
        if len(header) < 32:
            raise ValueError(f"{dbf.name} is not a DBF file (too short)")
        header_len = int.from_bytes(header[8:10], "little")
        descriptors = f.read(max(0, header_len - 32))
    names = []
    for off in range(0, len(descriptors) - 31, 32):
        slot = descriptors[off:off + 32]
        if slot[0] == 0x0D:  # header terminator
            break
        names.append(slot[:11].split(b"\x00", 1)[0])
    return names


def decode_field_name(raw: bytes, encoding: str) -> str:
    """Decode a DBF field name; a multibyte character cut by the 10-byte limit is dropped."""
    try:
        return raw.decode(encoding)
    except UnicodeDecodeError:
        pass
    for cut in range(1, 4):  # at most 3 trailing bytes of one character can be left over
        try:
            return raw[:-cut].decode(encoding)
        except UnicodeDecodeError:
            continue
    return raw.decode(encoding, errors="replace")


def _sibling(path: Path, suffix: str) -> Path | None:
    for cand in path.parent.iterdir():
        if cand.stem == path.stem and cand.suffix.lower() == suffix:
            return cand
    return None
