"""Copy the bench rig's seed-42 manholes (../shared/bench/make-data.py) into geoapi's own tables.

The rig's schema is not geoapi's, so rows are read from the rig database and written through
``Store.bulk_write(..., validated=True)`` in chunks: ``kind`` → ``well_use`` and the rig's
English ``status`` → the layer's 中文 status (mapping below). Coordinates are copied as they
are (the rig's EPSG:4326 numbers stored as EPSG:4490, as geoapi treats the two).
``--every 5`` keeps rows whose rig id is a multiple of 5: 200,000 of the 1,000,000, spread like
the whole set (the rig loads rows in random order, ids carry no location).

    .venv/bin/python bench/load_rig.py --db postgresql://postgres@127.0.0.1:55432/geoapi_bench
    .venv/bin/python bench/load_rig.py --db sqlite:////tmp/geoapi-bench-200k.sqlite --every 5
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import psycopg
import shapely

from geoapi.settings import Settings
from geoapi.storage import Store

WELL_USE = {"sewer": "污水", "storm": "雨水", "water": "给水", "power": "电力", "telecom": "通信",
            "gas": "燃气", "heating": "热力"}
STATUS = {"in_service": "完好", "planned": "完好", "maintenance": "占用", "damaged": "破损", "abandoned": "丢失"}


def ensure_postgis_db(url: str) -> None:
    """Create the target database (with PostGIS) on the rig's cluster if it is missing."""
    base, name = url.rsplit("/", 1)
    with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS postgis")


def load(rig_dsn: str, db: str, *, every: int, chunk: int) -> int:
    if db.startswith("postgresql"):
        ensure_postgis_db(db)
    store = Store.open(Settings(database_url=db, data_dir=Path(tempfile.gettempdir()) / "geoapi-bench-data"))
    store.upgrade()
    total, t0 = 0, time.perf_counter()
    with psycopg.connect(rig_dsn) as rig, rig.cursor(name="manholes") as cur:
        cur.itersize = chunk
        cur.execute("SELECT ST_X(geom), ST_Y(geom), kind, status FROM manholes WHERE id %% %s = 0 ORDER BY id",
                    (every,))
        first = True
        while batch := cur.fetchmany(chunk):
            xy = np.array([(r[0], r[1]) for r in batch])
            geoms = shapely.points(xy)
            rows = [({"well_use": WELL_USE[r[2]], "status": STATUS[r[3]]}, g)
                    for r, g in zip(batch, geoms, strict=True)]
            store.bulk_write("manholes", rows, actor="bench", mode="replace" if first else "append",
                             src_file="bench rig seed 42", validated=True)
            first = False
            total += len(rows)
            print(f"  {total:>9,} manholes  {time.perf_counter() - t0:6.1f} s", flush=True)
    store.close()
    return total


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rig-dsn", default="postgresql://postgres@127.0.0.1:55432/bench")
    ap.add_argument("--db", required=True, help="geoapi database URL (postgresql://… or sqlite:///…)")
    ap.add_argument("--every", type=int, default=1, help="keep rig ids divisible by this (5 → 200,000)")
    ap.add_argument("--chunk", type=int, default=50_000)
    a = ap.parse_args()
    n = load(a.rig_dsn, a.db, every=a.every, chunk=a.chunk)
    print(f"loaded {n:,} manholes into {a.db}")


if __name__ == "__main__":
    main()
