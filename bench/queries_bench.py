"""Query benchmark (issue 4 "Speed"): geoapi over HTTP against the bare SQL floor, same inputs.

Starts `geoapi serve` on a free loopback port against ``--db`` (stops it, by pid, at the end),
then for each fixed input alternates one HTTP request and the bare SQL that is its floor, so
both see the same machine load (the box is shared: compare ratios, not absolutes):

  nearest   GET /nearest?layer=manholes&lon&lat&k=5 for each point of the rig's knn-points.txt;
            floor: the index KNN alone (PostGIS ``ORDER BY geom <-> pt LIMIT 5``; SpatiaLite
            its KNN virtual table)
  items     GET /collections/manholes/items?bbox=…&limit=1000 for each of the rig's bboxes.txt,
            and plain pages ?limit=1000&offset=… ; floor: the page SELECT (and the COUNT)
  coverage  GET /coverage?layer=manholes&by=district; floor: the district × manholes join
            grouped by district, status, is_smart

Every block runs ``--reps`` times after one warm-up pass; p50/p95 of each run are kept and the
median over runs reported. Usage (see bench/README.md "Queries"):

  .venv/bin/python bench/queries_bench.py --db postgresql://postgres@127.0.0.1:5432/geoapi_bench_queries
  .venv/bin/python bench/queries_bench.py --db sqlite:////tmp/qbench/geoapi.sqlite --only nearest
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import numpy as np
import orjson
from lean_http import LeanClient

RIG = Path("/work/shared/bench")
HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = Path(os.environ.get("BENCH_RESULTS", "/tmp/bench-results"))
BLOCKS = ("nearest", "items", "coverage")


def points(n: int) -> list[tuple[float, float]]:
    rows = [line.split(",") for line in (RIG / "knn-points.txt").read_text().split()]
    return [(float(x), float(y)) for x, y in rows][:n]


def bboxes() -> list[tuple[float, ...]]:
    return [tuple(float(v) for v in line.split(",")) for line in (RIG / "bboxes.txt").read_text().split()]


def pct(values: list[float], q: float) -> float:
    return round(float(np.percentile(values, q)), 2) if values else float("nan")


def ms_since(t0: float) -> float:
    return (time.perf_counter() - t0) * 1e3


# -- the server --------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(db: str, port: int, log: Path) -> subprocess.Popen:
    env = {**os.environ, "GEOAPI_DATABASE_URL": db, "GEOAPI_LOG_LEVEL": "warning"}
    env.pop("GEOAPI_MQTT_URL", None)
    proc = subprocess.Popen([str(ROOT / ".venv/bin/geoapi"), "serve", "--port", str(port)], env=env,
                            stdout=log.open("w"), stderr=subprocess.STDOUT, cwd=ROOT)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the server exited ({proc.returncode}); see {log}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/conformance", timeout=2).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    stop_server(proc)
    raise SystemExit(f"the server did not answer within 180 s; see {log}")


def stop_server(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# -- the floors --------------------------------------------------------------------------------
class Floor:
    """Bare SQL on one persistent connection: what the database alone needs for each request."""

    def __init__(self, db: str):
        self.postgis = db.startswith("postgresql")
        if self.postgis:
            import psycopg

            self.conn = psycopg.connect(db.replace("postgresql+psycopg", "postgresql"), autocommit=True)
            # as geoapi's query sessions run (geoapi.storage): no parallel workers for small queries
            self.conn.execute("SET max_parallel_workers_per_gather = 0")
        else:
            sys.path.insert(0, str(ROOT))
            from geoapi.storage.engine import load_spatialite, sqlite_module

            self.conn = sqlite_module().connect(db.removeprefix("sqlite:///"), check_same_thread=False)
            load_spatialite(self.conn)
        self.item_cols = self._item_columns()

    def _rows(self, sql: str, params: tuple = ()) -> list:
        if self.postgis:
            return self.conn.execute(sql, params, prepare=True).fetchall()
        return self.conn.execute(sql.replace("%s", "?"), params).fetchall()

    def _item_columns(self) -> str:
        if self.postgis:
            names = [r[0] for r in self._rows(
                "SELECT column_name FROM information_schema.columns WHERE table_name = 'manholes' "
                "AND column_name <> 'geom' ORDER BY ordinal_position")]
        else:
            names = [r[1] for r in self._rows("PRAGMA table_info(manholes)") if r[1] != "geom"]
        return ", ".join(f'"{n}"' for n in names)

    def nearest(self, lon: float, lat: float, k: int = 5) -> int:
        if self.postgis:
            return len(self._rows(
                "SELECT id, ST_AsBinary(geom) FROM manholes ORDER BY geom <-> ST_SetSRID(ST_MakePoint(%s, %s), 4490) "
                "LIMIT %s", (lon, lat, k)))
        return len(self._rows(
            "SELECT m.id, AsBinary(m.geom) FROM KNN k JOIN manholes m ON m.id = k.fid WHERE k.f_table_name = "
            "'manholes' AND k.ref_geometry = MakePoint(%s, %s, 4490) AND k.max_items = %s", (lon, lat, k)))

    def items(self, bbox: tuple | None, offset: int = 0, limit: int = 1000) -> int:
        if bbox is None:
            where, params = "", ()
        elif self.postgis:
            where = ("WHERE geom && ST_MakeEnvelope(%s, %s, %s, %s, 4490) "
                     "AND ST_Intersects(geom, ST_MakeEnvelope(%s, %s, %s, %s, 4490))")
            params = (*bbox, *bbox)
        else:
            where = ("WHERE id IN (SELECT rowid FROM SpatialIndex WHERE f_table_name = 'manholes' AND "
                     "search_frame = BuildMbr(%s, %s, %s, %s, 4490)) AND ST_Intersects(geom, BuildMbr(%s, %s, %s, %s, 4490))")
            params = (*bbox, *bbox)
        wkb = "ST_AsBinary(geom)" if self.postgis else "AsBinary(geom)"
        rows = self._rows(f"SELECT {self.item_cols}, {wkb} FROM manholes {where} ORDER BY id LIMIT %s OFFSET %s",
                          (*params, limit, offset))
        if len(rows) == limit:  # a full page: numberMatched needs a count, as geoapi does
            self._rows(f"SELECT count(*) FROM manholes {where}", params)
        return len(rows)

    def coverage(self) -> int:
        if self.postgis:
            return len(self._rows(
                "SELECT d.id, m.status, m.is_smart, count(*) FROM districts d JOIN manholes m "
                "ON m.geom && d.geom AND ST_Intersects(d.geom, m.geom) GROUP BY 1, 2, 3"))
        n = 0
        for (did,) in self._rows("SELECT id FROM districts"):
            n += len(self._rows(
                "SELECT m.status, m.is_smart, count(*) FROM manholes m, districts d WHERE d.id = %s AND m.id IN "
                "(SELECT rowid FROM SpatialIndex WHERE f_table_name = 'manholes' AND search_frame = d.geom) "
                "AND ST_Intersects(m.geom, d.geom) GROUP BY 1, 2", (did,)))
        return n


# -- the blocks ----------------------------------------------------------------------------------
def paired(inputs: list, http: Callable, floor: Callable, reps: int) -> dict:
    """Alternate HTTP and floor per input; one warm-up pass, then ``reps`` measured passes."""
    runs = []
    for rep in range(reps + 1):
        h, s, sizes = [], [], []
        for x in inputs:
            t0 = time.perf_counter()
            sizes.append(http(x))
            h.append(ms_since(t0))
            t0 = time.perf_counter()
            floor(x)
            s.append(ms_since(t0))
        if rep:
            runs.append({"http_p50": pct(h, 50), "http_p95": pct(h, 95), "sql_p50": pct(s, 50),
                         "sql_p95": pct(s, 95), "http_max": round(max(h), 2), "n": len(h),
                         "returned_p50": pct(sizes, 50)})
    med = {k: pct([r[k] for r in runs], 50) for k in runs[0] if k != "n"}
    med["ratio_p95"] = round(med["http_p95"] / med["sql_p95"], 2) if med["sql_p95"] else None
    return {"median": med, "runs": runs}


def get_json(client: LeanClient, path: str, params: dict) -> dict:
    status, body = client.get(path, params)
    if status != 200:
        raise SystemExit(f"GET {path} {params} → {status}: {body[:300]!r}")
    return orjson.loads(body)


def run(a) -> dict:
    floor = Floor(a.db)
    out: dict = {}
    with LeanClient(a.url, timeout=120) as client:
        if "nearest" in a.only:
            pts = points(a.points)

            def http_nearest(p):
                return len(get_json(client, "/nearest", {"layer": "manholes", "lon": p[0], "lat": p[1],
                                                         "k": 5})["features"])

            out["nearest_k5"] = paired(pts, http_nearest, lambda p: floor.nearest(*p), a.reps)
        if "items" in a.only:
            def http_items(q):
                params = {"limit": 1000, "offset": q[1]}
                if q[0] is not None:
                    params["bbox"] = ",".join(map(str, q[0]))
                return get_json(client, "/collections/manholes/items", params)["numberReturned"]

            boxes = [(b, 0) for b in bboxes()]
            out["items_bbox_1000"] = paired(boxes, http_items, lambda q: floor.items(q[0], q[1]), a.reps)
            pages = [(None, off) for off in range(0, 20_000, 1000)]
            out["items_page_1000"] = paired(pages, http_items, lambda q: floor.items(q[0], q[1]), a.reps)
        if "coverage" in a.only:
            def http_coverage(_):
                return len(get_json(client, "/coverage", {"layer": "manholes", "by": "district"})["units"])

            out["coverage_district"] = paired(list(range(a.coverage_n)), http_coverage, lambda _: floor.coverage(),
                                              a.reps)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--db", required=True, help="database URL geoapi serves (postgresql://… or sqlite:////path)")
    p.add_argument("--url", help="an already running geoapi on this db (default: start one on a free port)")
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--points", type=int, default=1000, help="how many of the 1,000 knn points")
    p.add_argument("--coverage-n", type=int, default=5, help="coverage requests per run")
    p.add_argument("--only", default=",".join(BLOCKS))
    a = p.parse_args()
    a.only = [b for b in a.only.split(",") if b]
    proc = None
    if a.url is None:
        port = free_port()
        a.url = f"http://127.0.0.1:{port}"
        proc = start_server(a.db, port, Path(f"/tmp/queries-bench-server-{port}.log"))
        print(f"geoapi serve pid {proc.pid} on {a.url}", flush=True)
    started = {"when": dt.datetime.now().isoformat(timespec="seconds"), "db": a.db,
               "loadavg_start": Path("/proc/loadavg").read_text().strip()}
    try:
        result = run(a)
    finally:
        if proc is not None:
            stop_server(proc)
    payload = {**started, "loadavg_end": Path("/proc/loadavg").read_text().strip(), "reps": a.reps,
               "results": result}
    RESULTS.mkdir(exist_ok=True)
    kind = "pg" if a.db.startswith("postgresql") else "lite"
    path = RESULTS / f"queries-{kind}-{dt.datetime.now():%Y%m%d-%H%M%S}.json"
    path.write_text(json.dumps(payload, indent=2))
    print(f"{'block':<20} {'http p50':>9} {'http p95':>9} {'sql p50':>8} {'sql p95':>8} {'p95 ratio':>9} {'rows p50':>8}")
    for name, r in result.items():
        m = r["median"]
        print(f"{name:<20} {m['http_p50']:>9} {m['http_p95']:>9} {m['sql_p50']:>8} {m['sql_p95']:>8} "
              f"{m['ratio_p95']!s:>9} {m['returned_p50']:>8}")
    print(f"(ms, medians over {a.reps} runs; loadavg {started['loadavg_start']} → {payload['loadavg_end']}) {path}")


if __name__ == "__main__":
    main()
