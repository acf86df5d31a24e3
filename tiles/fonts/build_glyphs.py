"""Build the SDF glyph ranges MapLibre loads for Latin text and digits (run once; output committed).

Usage: ``.venv/bin/python tiles/fonts/build_glyphs.py [FONT.ttf]`` (needs ``freetype-py``, a dev
extra, and Debian's ``fonts-dejavu-core``). Writes ``<start>-<end>.pbf`` beside this file.

Follows node-fontnik / sdf-glyph-foundry so MapLibre places the glyphs as it expects: font size 24 px,
unhinted outlines, a 3 px buffer around the rounded bounding box, signed distance to the outline
(radius 8 px, 0.25 of the byte range inside the edge), ``top`` = bbox top - ascender, uncompressed
``glyphs.proto`` (glyphs { stacks { name, range, glyphs { id, bitmap, width, height, left, top, advance } } }).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import freetype
import numpy as np

from tiles.pbf import length_delimited, varint_field

OUT_DIR = Path(__file__).resolve().parent
DEFAULT_FONT = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")
RANGES = [(0, 255), (256, 511), (8192, 8447)]  # Basic Latin + Latin-1, Latin Extended-A/B, punctuation
SIZE = 24
BUFFER = 3
RADIUS = 8
CUTOFF = 0.25
CURVE_STEPS = 8  # line segments per Bézier curve: plenty at 24 px


@dataclass
class Glyph:
    id: int
    width: int
    height: int
    left: int
    top: int
    advance: int
    bitmap: bytes = b""


def render_glyph(face: freetype.Face, code: int, ascender: int) -> Glyph | None:
    index = face.get_char_index(code)
    if index == 0:
        return None
    face.load_glyph(index, freetype.FT_LOAD_NO_HINTING | freetype.FT_LOAD_NO_BITMAP)
    advance = int(face.glyph.metrics.horiAdvance / 64)
    rings = _outline_rings(face.glyph.outline)
    if not rings:
        return Glyph(code, 0, 0, 0, -ascender, advance)
    points = np.concatenate(rings)
    xmin, ymin = np.round(points.min(axis=0))
    xmax, ymax = np.round(points.max(axis=0))
    width, height = int(xmax - xmin), int(ymax - ymin)
    if width == 0 or height == 0:
        return Glyph(code, 0, 0, 0, -ascender, advance)
    shifted = [ring - (xmin - BUFFER, ymin - BUFFER) for ring in rings]
    bitmap = _sdf(shifted, width + 2 * BUFFER, height + 2 * BUFFER)
    return Glyph(code, width, height, int(xmin), int(ymax) - ascender, advance, bitmap)


def _outline_rings(outline: freetype.Outline) -> list[np.ndarray]:
    """The outline as closed polygons in pixels (y up), curves flattened."""
    rings: list[list[tuple[float, float]]] = []

    def pt(v) -> tuple[float, float]:
        return v.x / 64.0, v.y / 64.0

    def move_to(to, _ctx) -> int:
        rings.append([pt(to)])
        return 0

    def line_to(to, _ctx) -> int:
        rings[-1].append(pt(to))
        return 0

    def conic_to(control, to, _ctx) -> int:
        p0, p1, p2 = map(np.array, (rings[-1][-1], pt(control), pt(to)))
        for t in np.linspace(0, 1, CURVE_STEPS + 1)[1:]:
            rings[-1].append(tuple((1 - t) ** 2 * p0 + 2 * (1 - t) * t * p1 + t**2 * p2))
        return 0

    def cubic_to(c1, c2, to, _ctx) -> int:
        p0, p1, p2, p3 = map(np.array, (rings[-1][-1], pt(c1), pt(c2), pt(to)))
        for t in np.linspace(0, 1, CURVE_STEPS + 1)[1:]:
            s = 1 - t
            rings[-1].append(tuple(s**3 * p0 + 3 * s * s * t * p1 + 3 * s * t * t * p2 + t**3 * p3))
        return 0

    outline.decompose(None, move_to=move_to, line_to=line_to, conic_to=conic_to, cubic_to=cubic_to)
    closed = []
    for ring in rings:
        if len(ring) < 2:
            continue
        if ring[0] != ring[-1]:
            ring.append(ring[0])
        closed.append(np.array(ring, dtype=np.float64))
    return closed


def _sdf(rings: list[np.ndarray], width: int, height: int) -> bytes:
    """Bytes of the signed distance field, top row first: 255 - clamp(32·distance + 64), inside negative."""
    xs, ys = np.meshgrid(np.arange(width) + 0.5, np.arange(height) + 0.5)
    p = np.stack([xs.ravel(), ys.ravel()], axis=1)
    a = np.concatenate([r[:-1] for r in rings])
    b = np.concatenate([r[1:] for r in rings])
    ab = b - a
    length2 = np.maximum((ab**2).sum(axis=1), 1e-12)
    t = np.clip(((p[:, None, :] - a) * ab).sum(axis=2) / length2, 0, 1)
    nearest = a + t[..., None] * ab
    dist = np.sqrt(((p[:, None, :] - nearest) ** 2).sum(axis=2)).min(axis=1)
    # Even-odd ray casting over all rings, as sdf-glyph-foundry does.
    y1, y2 = a[:, 1], b[:, 1]
    crosses = (y1 > p[:, 1:2]) != (y2 > p[:, 1:2])
    with np.errstate(divide="ignore", invalid="ignore"):
        x_at = (b[:, 0] - a[:, 0]) * (p[:, 1:2] - y1) / (y2 - y1) + a[:, 0]
    inside = (crosses & (p[:, 0:1] < x_at)).sum(axis=1) % 2 == 1
    d = np.where(inside, -dist, dist) * (256 / RADIUS) + CUTOFF * 256
    n = np.clip(np.trunc(d), 0, 255)
    field = (255 - n).astype(np.uint8).reshape(height, width)
    return field[::-1].tobytes()


def encode_range(name: str, start: int, end: int, glyphs: list[Glyph]) -> bytes:
    stack = length_delimited(1, name.encode()) + length_delimited(2, f"{start}-{end}".encode())
    for g in glyphs:
        body = varint_field(1, g.id)
        if g.bitmap:
            body += length_delimited(2, g.bitmap)
        body += varint_field(3, g.width) + varint_field(4, g.height)
        body += varint_field(5, _zigzag(g.left)) + varint_field(6, _zigzag(g.top))
        body += varint_field(7, g.advance)
        stack += length_delimited(3, body)
    return length_delimited(1, stack)


def _zigzag(n: int) -> int:
    return (n << 1) ^ (n >> 31)


def build(font: Path = DEFAULT_FONT, out_dir: Path = OUT_DIR) -> list[Path]:
    face = freetype.Face(str(font))
    face.set_char_size(SIZE * 64)  # 72 dpi: 24 px, like fontnik
    ascender = int(face.size.ascender / 64)
    name = f"{face.family_name.decode()} {face.style_name.decode()}"
    written = []
    for start, end in RANGES:
        glyphs = [g for code in range(start, end + 1) if (g := render_glyph(face, code, ascender))]
        path = out_dir / f"{start}-{end}.pbf"
        path.write_bytes(encode_range(name, start, end, glyphs))
        written.append(path)
        print(f"{path.name}: {len(glyphs)} glyphs, {path.stat().st_size} bytes ({name})")
    return written


if __name__ == "__main__":
    build(Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_FONT)
