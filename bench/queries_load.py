"""Bench-only loader: the 焦作 demo's districts and manholes into PostGIS, manholes by plain COPY.

`geoapi demo --scale 1000000` is the intended load, but at this commit it takes far longer than
a bench sitting (bench/README.md "Queries" says where). The query benchmark needs the demo's
districts and the same generated manholes (same generator, scale and seed), not the derived
grid_code / road_segment columns, so this writes the districts through the Store and COPYs the
manholes' generated columns (admin_code from the district that contains each point).

  .venv/bin/python bench/queries_load.py postgresql://postgres@127.0.0.1:5432/geoapi_bench_queries 1000000
"""

from __future__ import annotations

import datetime as dt
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import psycopg
import shapely


def main(db: str, scale: int, seed: int = 42) -> None:
    from geoapi.demo import generate
    from geoapi.settings import Settings
    from geoapi.storage import Store

    t0 = time.perf_counter()
    store = Store.open(Settings(database_url=db, data_dir=Path(tempfile.gettempdir()) / "qbench-data"))
    store.upgrade()
    data = generate(scale=scale, seed=seed, as_of=dt.datetime.now(dt.UTC))
    print(f"generated in {time.perf_counter() - t0:.1f} s", flush=True)
    store.bulk_write("districts", list(data["districts"]), actor="bench", mode="replace", validated=True)
    districts = list(data["districts"])
    tree = shapely.STRtree([g for _, g in districts])
    mh = data["manholes"]
    pt_idx, d_idx = tree.query(mh.geometries, predicate="within")
    admin = np.full(len(mh), store.city_admin_code, dtype=object)
    admin[pt_idx] = [districts[i][0]["admin_code"] for i in d_idx]
    table = store.table("manholes")
    json_cols = {c.name for c in table.c if c.type.__class__.__name__ == "JSON"}
    names = [n for n in mh.columns if n in table.c and n not in ("id", "geom", "admin_code")]
    now = dt.datetime.now(dt.UTC)
    cols = [*names, "admin_code", "version", "created_at", "created_by", "updated_at", "updated_by", "geom"]
    wkb = shapely.to_wkb(mh.geometries, hex=True, include_srid=False)
    t1 = time.perf_counter()
    with psycopg.connect(db.replace("postgresql+psycopg", "postgresql"), autocommit=False) as conn:
        conn.execute("TRUNCATE manholes RESTART IDENTITY")
        copy_sql = f"COPY manholes ({', '.join(cols)}) FROM STDIN"
        with conn.cursor().copy(copy_sql) as cp:
            columns = [mh.columns[n] for n in names]
            for i in range(len(mh)):
                vals = [json.dumps(c[i], ensure_ascii=False) if n in json_cols and c[i] is not None else c[i]
                        for n, c in zip(names, columns, strict=True)]
                cp.write_row([*vals, admin[i], 1, now, "bench", now, "bench", f"SRID=4490;{wkb[i]}"])
        conn.commit()
        conn.autocommit = True
        conn.execute("VACUUM ANALYZE manholes")
        conn.execute("ANALYZE districts")
    print(f"{len(mh):,} manholes copied in {time.perf_counter() - t1:.1f} s; total {time.perf_counter() - t0:.1f} s")


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
