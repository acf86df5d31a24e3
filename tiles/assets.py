"""Glyphs and sprite the styles point at, served locally (no internet).

Glyphs: MapLibre asks for ``/fonts/{fontstack}/{start}-{end}.pbf`` (256 code points each, the
glyphs.proto of mapbox/node-fontnik). A ``tiles/fonts/<range>.pbf`` file is served when present;
otherwise an empty but valid range (the label then falls back to nothing for those characters;
CJK is drawn from the browser's local fonts via ``localIdeographFontFamily``).
Sprite: the styles use circles and lines only, so it is an empty sheet.
"""

from __future__ import annotations

import re
import struct
import zlib
from functools import lru_cache
from pathlib import Path

from tiles.pbf import length_delimited

FONT_DIR = Path(__file__).with_name("fonts")
RANGE = re.compile(r"^(\d+)-(\d+)$")


class GlyphRangeError(ValueError):
    pass


def glyph_range(fontstack: str, span: str) -> bytes:
    m = RANGE.match(span)
    if not m:
        raise GlyphRangeError(f"glyph range {span!r} must look like 0-255")
    start, end = int(m.group(1)), int(m.group(2))
    if start % 256 or end != start + 255 or end > 65535:
        raise GlyphRangeError(f"glyph range {span!r} must be 256 code points starting at a multiple of 256")
    return _range_bytes(fontstack, start, end)


@lru_cache(maxsize=64)
def _range_bytes(fontstack: str, start: int, end: int) -> bytes:
    path = FONT_DIR / f"{start}-{end}.pbf"
    if path.is_file():
        return path.read_bytes()
    return empty_range(fontstack, start, end)


def empty_range(fontstack: str, start: int, end: int) -> bytes:
    """glyphs { stacks { name, range } } with no glyph."""
    stack = length_delimited(1, fontstack.encode()) + length_delimited(2, f"{start}-{end}".encode())
    return length_delimited(1, stack)


SPRITE_JSON = b"{}"


@lru_cache(maxsize=1)
def sprite_png() -> bytes:
    """A 1×1 transparent PNG."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 6, 0, 0, 0)
    pixels = zlib.compress(b"\x00\x00\x00\x00\x00")
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
