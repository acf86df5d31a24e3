"""Tile benchmark: geoapi against the PostGIS floor and tipg, through the rig's fixed tile list.

Subcommands (all bounded; loopback only; nothing is started or stopped here):
  sql    per tile, alternating: the rig's bare ST_AsMVT on its own table (bench-db.py's "full"
         query) and geoapi's own tile SQL (render_tile) on geoapi's tables → p50/p95 per zoom
  cold   per tile, alternating: GET geoapi (run it with GEOAPI_TILE_CACHE_SIZE=0) and tipg
  sizes  z10–z12 manhole tile bytes, and aggregated counts vs the points really in the tile
  load   wrk on the tile list against geoapi and tipg, same settings, one after the other
  lite   in-process cold render of the list's z14 tiles on a SpatiaLite database
  encode mapbox-vector-tile vs tiles.mvt on a synthetic dense point layer
See bench/README.md "Tiles" for the commands and the figures.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
from lean_http import LeanClient

RIG = Path("/work/shared/bench")
HERE = Path(__file__).resolve().parent
GEOAPI_URL, TIPG_URL = "http://127.0.0.1:8090", "http://127.0.0.1:8081"
RIG_DSN = "postgresql://postgres@127.0.0.1:55432/bench"


def tiles(path: Path = RIG / "tiles.txt") -> list[tuple[int, int, int]]:
    return [tuple(int(v) for v in line.split("/")) for line in path.read_text().split() if line]


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def summary(times: dict[int, list[float]]) -> dict[int, dict[str, float]]:
    return {z: {"p50_ms": round(pct(v, 50), 2), "p95_ms": round(pct(v, 95), 2), "n": len(v)}
            for z, v in sorted(times.items())}


def open_store(db: str):
    from geoapi.settings import Settings
    from geoapi.storage import Store

    return Store.open(Settings(database_url=db, data_dir=Path(tempfile.gettempdir()) / "geoapi-bench-data"))


def render(store, z: int, x: int, y: int) -> bytes:
    from geoapi.storage.tilesql import render_tile
    from tiles.filters import parse_filters
    from tiles.grid import TileId

    layers = [store.registry["manholes"]]
    return render_tile(store, layers, TileId(z, x, y), parse_filters({}, layers))


RIG_SQL = ("SELECT ST_AsMVT(q, 'manholes', 4096, 'geom') FROM (SELECT id, kind, status, "
           "ST_AsMVTGeom(ST_Transform(t.geom, 3857), ST_TileEnvelope(%(z)s, %(x)s, %(y)s), 4096, 64, true) AS geom "
           "FROM manholes t WHERE t.geom && ST_Transform(ST_TileEnvelope(%(z)s, %(x)s, %(y)s, margin => 0.015625), "
           "4326)) q")


def cmd_sql(a) -> dict:
    import psycopg

    store = open_store(a.db)
    rig, geo = defaultdict(list), defaultdict(list)
    with psycopg.connect(RIG_DSN, autocommit=True) as conn:
        conn.execute("SET max_parallel_workers_per_gather = 0")  # as geoapi sets it per tile
        for _ in range(a.reps):
            for z, x, y in tiles():
                t0 = time.perf_counter()
                conn.execute(RIG_SQL, {"z": z, "x": x, "y": y}).fetchone()
                rig[z].append((time.perf_counter() - t0) * 1e3)
                t0 = time.perf_counter()
                render(store, z, x, y)
                geo[z].append((time.perf_counter() - t0) * 1e3)
    store.close()
    return {"rig_floor_st_asmvt": summary(rig), "geoapi_render_sql": summary(geo)}


def cmd_cold(a) -> dict:
    """Per tile, alternating: the rig's bare ST_AsMVT (--floor), geoapi over HTTP, tipg (--tipg)."""
    import psycopg

    geo, tipg, size, floor = defaultdict(list), defaultdict(list), defaultdict(list), defaultdict(list)
    identity = {"Accept-Encoding": "identity"}
    with LeanClient(a.geoapi) as cli, LeanClient(a.tipg or a.geoapi) as peer, \
            psycopg.connect(a.floor_dsn, autocommit=True) as conn:
        conn.execute("SET max_parallel_workers_per_gather = 0")
        todo = [t for t in tiles() if not a.only_zoom or t[0] in a.only_zoom]
        for _ in range(a.reps):
            for z, x, y in todo:
                if a.floor:
                    t0 = time.perf_counter()
                    conn.execute(RIG_SQL, {"z": z, "x": x, "y": y}).fetchone()
                    floor[z].append((time.perf_counter() - t0) * 1e3)
                t0 = time.perf_counter()
                status, body = cli.get(f"/tiles/manholes/{z}/{x}/{y}.mvt", headers=identity)
                geo[z].append((time.perf_counter() - t0) * 1e3)
                assert status in (200, 204), body[:200]
                size[z].append(len(body))
                if a.tipg:
                    t0 = time.perf_counter()
                    peer.get(f"/collections/public.manholes/tiles/WebMercatorQuad/{z}/{x}/{y}", headers=identity)
                    tipg[z].append((time.perf_counter() - t0) * 1e3)
    out = {"geoapi_cold": summary(geo), "geoapi_bytes_p50": {z: int(pct(v, 50)) for z, v in size.items()}}
    if tipg:
        out["tipg_cold"] = summary(tipg)
    if floor:
        out["rig_floor_st_asmvt"] = summary(floor)
    return out


def cmd_sizes(a) -> dict:
    """The list's densest z12 tiles and their z11/z10 parents: bytes, and whether the counts add up."""
    import mapbox_vector_tile
    import psycopg

    store = open_store(a.db)
    meta = [line.split("\t") for line in (RIG / "tiles-meta.tsv").read_text().splitlines()[1:]]
    dense = sorted(((int(n), int(z), int(x), int(y)) for z, x, y, n in meta if z == "12"), reverse=True)[:a.dense]
    parents = sorted({(z - d, x >> d, y >> d) for _, z, x, y in dense for d in (0, 1, 2)})
    out, worst = [], 0
    with psycopg.connect(a.db) as conn:
        for z, x, y in parents:
            data = render(store, z, x, y)
            feats = mapbox_vector_tile.decode(data)["manholes"]["features"] if data else []
            counted = sum(f["properties"]["count"] for f in feats)
            truth = conn.execute(
                "SELECT count(*) FROM manholes WHERE ST_Intersects(ST_Transform(geom, 3857), "
                "ST_TileEnvelope(%s, %s, %s))", (z, x, y)).fetchone()[0]
            worst = max(worst, len(data))
            out.append({"tile": f"{z}/{x}/{y}", "bytes": len(data), "cells": len(feats), "points": counted,
                        "points_in_tile": truth})
    store.close()
    return {"tiles": out, "max_bytes": worst, "all_counted": all(t["points"] == t["points_in_tile"] for t in out)}


def write_lua(template: str) -> Path:
    """The rig's wrk script with another URL layout (ordering and reporting unchanged)."""
    src = (RIG / "wrk-tiles.lua").read_text()
    old = '"/collections/" .. c .. "/tiles/WebMercatorQuad/" .. l'
    assert old in src
    path = Path(tempfile.gettempdir()) / "geoapi-wrk-tiles.lua"
    path.write_text(src.replace(old, template))
    return path


def wrk(url: str, script: Path, args: list[str], a) -> dict:
    cmd = ["wrk", f"-t{a.threads}", f"-c{a.conns}", f"-d{a.duration}s", "--timeout", "10s", "-s", str(script),
           url, "--", str(RIG / "tiles.txt"), *args]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=a.duration + 60).stdout
    line = next(ln for ln in out.splitlines() if ln.startswith("JSON "))
    return json.loads(line[5:])


def cmd_load(a) -> dict:
    lua = write_lua('"/tiles/" .. c .. "/" .. l .. ".mvt"')
    res: dict[str, list] = defaultdict(list)
    for _ in range(a.reps):  # alternating, same settings
        if a.tipg:
            res["tipg"].append(wrk(a.tipg, RIG / "wrk-tiles.lua", ["public.manholes"], a))
        res["geoapi"].append(wrk(a.geoapi, lua, ["manholes"], a))
    return {k: [{"rps": r["rps"], "p50_ms": r["lat_p50_ms"], "p99_ms": r["lat_p99_ms"], "requests": r["requests"],
                 "errors": r["err_status"] + r["err_timeout"] + r["err_connect"] + r["err_read"]} for r in v]
            for k, v in res.items()}


def cmd_lite(a) -> dict:
    """Alternating per tile: the in-process path with tiles.mvt and with mapbox-vector-tile."""
    from geoapi.storage import tilesql
    from tiles.mvt import encode, encode_with_mapbox

    store = open_store(a.db)
    times: dict[str, dict[int, list[float]]] = {"tiles.mvt": defaultdict(list), "mapbox_vector_tile": defaultdict(list)}
    encoders = [("tiles.mvt", encode), ("mapbox_vector_tile", encode_with_mapbox)]
    for _ in range(a.reps):
        for z, x, y in tiles():
            if z not in a.zooms:
                continue
            encoders.reverse()  # neither always gets the page cache the other warmed
            for name, fn in encoders:
                tilesql.encode = fn  # the module's name for the encoder; restored below
                t0 = time.perf_counter()
                render(store, z, x, y)
                times[name][z].append((time.perf_counter() - t0) * 1e3)
    tilesql.encode = encode
    store.close()
    return {f"spatialite_render_{k}": summary(v) for k, v in times.items()}


def cmd_encode(a) -> dict:
    import shapely

    from tiles.mvt import TileLayer, encode, encode_with_mapbox

    rng = np.random.default_rng(42)
    n = a.features
    pts = shapely.points(rng.integers(-64, 4160, (n, 2)).astype(float))
    cols = {"status": rng.choice(["完好", "破损", "丢失", "占用"], n).tolist(),
            "well_use": rng.choice(["雨水", "污水", "给水"], n).tolist(),
            "is_smart": (rng.random(n) < 0.1).tolist(), "obj_code": [f"41080201{i:08d}" for i in range(n)]}
    layer = TileLayer("manholes", pts, np.arange(n), columns=cols)
    res = {}
    for name, fn in (("mapbox_vector_tile", encode_with_mapbox), ("tiles.mvt", encode)):
        runs = []
        for _ in range(a.reps):
            t0 = time.perf_counter()
            fn([layer])
            runs.append(time.perf_counter() - t0)
        res[name] = {"ms": round(min(runs) * 1e3, 1), "us_per_feature": round(min(runs) / n * 1e6, 2)}
    res["same_bytes"] = encode([layer]) == encode_with_mapbox([layer])
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    for name in ("sql", "cold", "sizes", "load", "lite", "encode"):
        p = sub.add_parser(name)
        p.add_argument("--reps", type=int, default=1)
        p.add_argument("--db", default="postgresql://postgres@127.0.0.1:55432/geoapi_bench")
        p.add_argument("--geoapi", default=GEOAPI_URL)
        p.add_argument("--tipg", default=None, help=f"tipg base URL (e.g. {TIPG_URL}) to alternate with")
        p.add_argument("--threads", type=int, default=2)
        p.add_argument("--conns", type=int, default=16)
        p.add_argument("--duration", type=int, default=10)
        p.add_argument("--zooms", type=int, nargs="*", default=[14])
        p.add_argument("--features", type=int, default=5000)
        p.add_argument("--floor", action="store_true", help="cold: also time the rig's bare SQL per tile")
        p.add_argument("--dense", type=int, default=10, help="sizes: how many of the densest z12 tiles")
        p.add_argument("--floor-dsn", default=RIG_DSN, help="cold: the database the bare SQL runs on (default: the rig's)")
        p.add_argument("--only-zoom", type=int, nargs="*", default=None, help="cold: only the list's tiles at these zooms")
    a = ap.parse_args()
    out = {"sql": cmd_sql, "cold": cmd_cold, "sizes": cmd_sizes, "load": cmd_load, "lite": cmd_lite,
           "encode": cmd_encode}[a.cmd](a)
    print(json.dumps(out, ensure_ascii=False, indent=1))


if __name__ == "__main__":
    main()
