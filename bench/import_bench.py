"""Import speed: geoapi's importer vs ``ogr2ogr -f PostgreSQL`` on the same shapefile, same run.

    .venv/bin/python bench/import_bench.py --points 1000000 --spatialite-points 300000

Writes a manholes shapefile (EPSG:4547, GBK, the DBF names surveyors use), then times, each in
its own process so its peak RSS is its own:

- ``geoapi-postgis``: ``importers.run_import`` into a fresh PostGIS database (validation,
  reprojection, history and all);
- ``ogr2ogr-postgis``: ``ogr2ogr -f PostgreSQL`` of the same file, reprojected to EPSG:4490;
- ``geoapi-spatialite``: ``run_import`` into a fresh SpatiaLite file.

The geoapi runs install the grid/segment enricher, as ``geoapi import`` and the API do. The two
PostGIS targets alternate ``--repeat`` times (the machine is shared: a ratio is only fair when
both sides ran under the same load) and the medians are compared. Prints one JSON line per run
(wall seconds, client CPU seconds, peak RSS) and a summary. Databases are dropped.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
USES = ["雨水", "污水", "给水", "电力", "通信"]


def write_delivery(path: Path, n: int) -> Path:
    import numpy as np
    import pyproj
    import shapely
    from pyogrio import raw

    rng = np.random.default_rng(1)
    lon = 113.24 + rng.uniform(-0.15, 0.15, n)
    lat = 35.22 + rng.uniform(-0.1, 0.1, n)
    x, y = pyproj.Transformer.from_crs(4490, 4547, always_xy=True).transform(lon, lat)
    fields = {"JCJBH": np.array([f"JZ{i:07d}" for i in range(n)], dtype=object),
              "YT": np.array([USES[i % 5] for i in range(n)], dtype=object),
              "JGCZ": np.array(["球墨铸铁"] * n, dtype=object),
              "JS": rng.uniform(0.5, 4, n).round(2)}
    path.parent.mkdir(parents=True, exist_ok=True)
    raw.write(path, shapely.to_wkb(shapely.points(x, y)), list(fields.values()), list(fields), driver="ESRI Shapefile",
              geometry_type="Point", crs="EPSG:4547", encoding="GBK")
    return path


def _pg(sql: str) -> None:
    import psycopg

    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(sql)


def _child(target: str, shp: Path, url: str, work: Path) -> dict:
    """One measured run, inside its own process."""
    t0 = time.perf_counter()
    rows = None
    if target == "ogr2ogr-postgis":
        dsn = "PG:" + url.replace("postgresql+psycopg://", "postgresql://")
        proc = subprocess.run(["ogr2ogr", "-f", "PostgreSQL", dsn, str(shp), "-nln", "ogr_manholes", "-t_srs",
                               "EPSG:4490", "-lco", "GEOMETRY_NAME=geom", "--config", "SHAPE_ENCODING", "CP936"],
                              capture_output=True, text=True)
        if proc.returncode:
            raise SystemExit(proc.stderr)
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    else:
        from geoapi.grids.assign import install
        from geoapi.settings import Settings
        from geoapi.storage import Store
        from importers import ImportOptions, run_import

        store = Store.open(Settings(database_url=url, data_dir=work))
        store.upgrade()
        install(store)
        t0 = time.perf_counter()   # the schema build is not part of the import
        own = resource.getrusage(resource.RUSAGE_SELF)
        cpu0 = own.ru_utime + own.ru_stime
        report = run_import(store, shp.parent, ImportOptions(layer="manholes", actor="bench"))
        if report.state != "done":
            raise SystemExit(f"import {report.state}: {report.message} {report.rejected[:3]}")
        seconds = time.perf_counter() - t0
        rows, usage = report.imported, resource.getrusage(resource.RUSAGE_SELF)
        store.close()
        return {"target": target, "seconds": round(seconds, 2), "rows": rows,
                "cpu_s": round(usage.ru_utime + usage.ru_stime - cpu0, 2), "peak_rss_mb": _own_peak_rss_mb()}
    return {"target": target, "seconds": round(time.perf_counter() - t0, 2), "rows": rows,
            "cpu_s": round(usage.ru_utime + usage.ru_stime, 2), "peak_rss_mb": usage.ru_maxrss // 1024}


def _own_peak_rss_mb() -> int:
    """This process's peak RSS (VmHWM). Not ``getrusage().ru_maxrss``: Linux carries that over
    fork and exec, so a child started by a parent holding the generated delivery (~480 MB for
    1M points) reported the parent's size, whatever it used itself."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) // 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024


def measure(target: str, shp: Path, n: int, work: Path) -> dict:
    if target.endswith("postgis"):
        name = f"geoapi_bench_{uuid.uuid4().hex[:8]}"
        _pg(f'CREATE DATABASE "{name}"')
        if target.startswith("ogr2ogr"):
            import psycopg

            with psycopg.connect(PG_ADMIN.rsplit("/", 1)[0] + "/" + name, autocommit=True) as conn:
                conn.execute("CREATE EXTENSION postgis")
        url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    else:
        name, url = None, f"sqlite:///{work / ('bench-' + uuid.uuid4().hex[:8] + '.sqlite')}"
    try:
        out = subprocess.run([sys.executable, __file__, "--child", target, "--shp", str(shp), "--url", url,
                              "--work", str(work)], capture_output=True, text=True, check=False)
        if out.returncode:
            raise SystemExit(f"{target} failed:\n{out.stderr[-3000:]}")
        result = json.loads(out.stdout.strip().splitlines()[-1])
    finally:
        if name:
            _pg(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    result["rows"] = result["rows"] or n
    result["rows_per_s"] = round(result["rows"] / result["seconds"])
    return result


def summarise(results: list[dict]) -> None:
    def median(target: str, key: str) -> float | None:
        values = [r[key] for r in results if r["target"] == target]
        return statistics.median(values) if values else None

    ogr, ours = median("ogr2ogr-postgis", "rows_per_s"), median("geoapi-postgis", "rows_per_s")
    if ogr and ours:
        pairs = [b["rows_per_s"] / a["rows_per_s"] for a, b in zip(
            [r for r in results if r["target"] == "ogr2ogr-postgis"],
            [r for r in results if r["target"] == "geoapi-postgis"], strict=False)]
        print(f"PostGIS: geoapi {ours:.0f} rows/s, ogr2ogr {ogr:.0f} rows/s (medians): {ours / ogr:.2f}x "
              f"(per pair: {', '.join(f'{p:.2f}' for p in pairs)}; target >= 0.7x)")
    sl = [r for r in results if r["target"] == "geoapi-spatialite"]
    if sl:
        print(f"SpatiaLite: {sl[0]['rows']} points in median {median('geoapi-spatialite', 'seconds')} s "
              "(target for 300 000: < 60 s)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--points", type=int, default=1_000_000, help="points for the PostGIS comparison")
    ap.add_argument("--spatialite-points", type=int, default=300_000)
    ap.add_argument("--repeat", type=int, default=2, help="alternating ogr2ogr / geoapi PostGIS runs")
    ap.add_argument("--spatialite-repeat", type=int, default=1)
    ap.add_argument("--skip", nargs="*", default=[], help="targets to skip")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--shp", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--url", help=argparse.SUPPRESS)
    ap.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(_child(args.child, args.shp, args.url, args.work)))
        return
    work = Path(tempfile.mkdtemp(prefix="geoapi-bench-"))
    try:
        results = []
        pg_shp = write_delivery(work / "pg" / "manholes.shp", args.points)
        for _ in range(args.repeat):
            for target in ("ogr2ogr-postgis", "geoapi-postgis"):
                if target not in args.skip:
                    results.append(measure(target, pg_shp, args.points, work))
                    print(json.dumps(results[-1]), flush=True)
        if "geoapi-spatialite" not in args.skip:
            sl_shp = write_delivery(work / "sl" / "manholes.shp", args.spatialite_points)
            for _ in range(args.spatialite_repeat):
                results.append(measure("geoapi-spatialite", sl_shp, args.spatialite_points, work))
                print(json.dumps(results[-1]), flush=True)
        summarise(results)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONPATH", str(Path(__file__).resolve().parents[1]))
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    main()
