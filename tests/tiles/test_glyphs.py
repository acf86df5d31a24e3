"""The committed SDF glyph ranges (tiles/fonts/*.pbf): they decode as glyphs.proto, carry real digit
and Latin glyphs in fontnik's layout, are what the API serves, and match what build_glyphs.py makes."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

from tiles import assets

FONT_DIR = Path(assets.__file__).with_name("fonts")
EDGE = 191  # 255 - 0.25 * 256: the byte value on the outline


def _varint(data: bytes, i: int) -> tuple[int, int]:
    shift = value = 0
    while True:
        byte = data[i]
        i += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return value, i


def _fields(data: bytes) -> list[tuple[int, int | bytes]]:
    """(field number, value) of one message; only varint and length-delimited wire types occur."""
    out, i = [], 0
    while i < len(data):
        key, i = _varint(data, i)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, i = _varint(data, i)
        elif wire == 2:
            length, i = _varint(data, i)
            value, i = data[i:i + length], i + length
        else:
            raise AssertionError(f"unexpected wire type {wire} for field {number}")
        out.append((number, value))
    return out


def _unzigzag(n: int) -> int:
    return (n >> 1) ^ -(n & 1)


def decode_glyphs(data: bytes) -> tuple[str, str, dict[int, dict]]:
    """glyphs { stacks { name, range, glyphs {...} } } with one stack -> (name, range, {id: glyph})."""
    stacks = [v for n, v in _fields(data) if n == 1]
    assert len(stacks) == 1
    name = rng = ""
    glyphs: dict[int, dict] = {}
    for number, value in _fields(stacks[0]):
        if number == 1:
            name = value.decode()
        elif number == 2:
            rng = value.decode()
        elif number == 3:
            g = {"bitmap": b""}
            keys = {1: "id", 2: "bitmap", 3: "width", 4: "height", 5: "left", 6: "top", 7: "advance"}
            for n, v in _fields(value):
                g[keys[n]] = _unzigzag(v) if n in (5, 6) else v
            glyphs[g["id"]] = g
    return name, rng, glyphs


@pytest.mark.parametrize("span", ["0-255", "256-511", "8192-8447"])
def test_range_decodes_with_its_own_code_points(span):
    name, rng, glyphs = decode_glyphs((FONT_DIR / f"{span}.pbf").read_bytes())
    start, end = map(int, span.split("-"))
    assert name == "DejaVu Sans Book" and rng == span
    assert len(glyphs) > 100 and all(start <= i <= end for i in glyphs)
    for g in glyphs.values():
        if g["bitmap"]:
            assert len(g["bitmap"]) == (g["width"] + 6) * (g["height"] + 6), chr(g["id"])


def test_digits_and_letters_have_sdf_bitmaps():
    _, _, glyphs = decode_glyphs((FONT_DIR / "0-255.pbf").read_bytes())
    for ch in "0123456789AZaz#-":
        g = glyphs[ord(ch)]
        assert 0 < g["width"] < 24 and 0 < g["height"] <= 24 and 0 < g["advance"] <= 24, ch
        bitmap = g["bitmap"]
        assert len(bitmap) == (g["width"] + 6) * (g["height"] + 6), ch
        # Inside the outline, outside it, and the 3 px buffer border faded towards 0.
        assert max(bitmap) > EDGE > min(bitmap), ch
        w = g["width"] + 6
        assert max(bitmap[:w]) < EDGE and max(bitmap[-w:]) < EDGE, ch
    # Digits share one advance (tabular figures) and sit on the baseline: top = height - ascender.
    digits = [glyphs[ord(c)] for c in "0123456789"]
    assert len({g["advance"] for g in digits}) == 1
    assert all(-12 < g["top"] < 0 for g in digits)
    space = glyphs[ord(" ")]
    assert space["bitmap"] == b"" and space["advance"] > 0
    assert ord("\n") not in glyphs  # no outline-less control characters beyond what the font maps


def test_api_serves_the_committed_range_for_any_fontstack(client):
    body = client.get("/fonts/Noto Sans Regular/0-255.pbf").content
    assert body == (FONT_DIR / "0-255.pbf").read_bytes()
    # A range with no file is still the empty-but-valid fallback.
    _, rng, glyphs = decode_glyphs(client.get("/fonts/Noto Sans Regular/1024-1279.pbf").content)
    assert rng == "1024-1279" and glyphs == {}


def test_committed_digits_match_what_the_build_script_makes(monkeypatch):
    pytest.importorskip("freetype", reason="freetype-py is a dev extra")
    spec = importlib.util.spec_from_file_location("build_glyphs", FONT_DIR / "build_glyphs.py")
    build = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "build_glyphs", build)  # its dataclass looks itself up there
    spec.loader.exec_module(build)
    if not build.DEFAULT_FONT.exists():
        pytest.skip(f"{build.DEFAULT_FONT} missing (apt-get install fonts-dejavu-core)")
    import freetype

    face = freetype.Face(str(build.DEFAULT_FONT))
    face.set_char_size(build.SIZE * 64)
    ascender = int(face.size.ascender / 64)
    _, _, committed = decode_glyphs((FONT_DIR / "0-255.pbf").read_bytes())
    for ch in "0123456789":
        fresh = build.render_glyph(face, ord(ch), ascender)
        assert vars(fresh) == committed[ord(ch)], ch
