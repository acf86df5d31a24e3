#!/usr/bin/env bash
# The final sitting (bench/README.md): every speed benchmark, one after the other, on a machine
# doing nothing else. Needs the rig and the data of each section (bench/README.md). ~8 min.
set -uo pipefail
cd "$(dirname "$0")/.."

PG=postgresql+psycopg://postgres@127.0.0.1:5432/geoapi_bench_queries
echo "== start $(date +%T) $(uptime)"
echo "== queries PG nearest,items"; .venv/bin/python bench/queries_bench.py --db $PG --reps 2 --points 100 --only nearest,items 2>&1 | tail -5
echo "== queries PG coverage"; .venv/bin/python bench/queries_bench.py --db $PG --reps 1 --points 100 --coverage-n 3 --only coverage 2>&1 | tail -3
echo "== queries SpatiaLite nearest"; .venv/bin/python bench/queries_bench.py --db sqlite:////tmp/qbench/geoapi.sqlite --reps 2 --points 100 --only nearest 2>&1 | tail -3
echo "== tiles $(date +%T) $(uptime)"; bash bench/tiles-run.sh 2>&1 | tail -150
echo "== imports $(date +%T) $(uptime)"; .venv/bin/python bench/import_bench.py --points 1000000 --spatialite-points 300000 --repeat 2 --spatialite-repeat 1 2>&1 | tail -30
echo "== end $(date +%T) $(uptime)"
