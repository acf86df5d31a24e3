#!/usr/bin/env bash
# One sitting of the tile benchmark (bench/README.md "Tiles"): geoapi and tipg on the same
# inputs, alternating. Needs the rig's PostGIS up with its data (../shared/bench: pg-up.sh,
# make-data.py) and geoapi's copy loaded (bench/load_rig.py). Starts and stops geoapi (port
# 8090) and tipg (8081) itself, each by the pid it recorded; everything on 127.0.0.1; every
# load run is bounded (wrk -d). Results: $BENCH_RESULTS/tiles-<time>/*.json
set -euo pipefail
cd "$(dirname "$0")/.."
RIG=/work/shared/bench
OUT=${BENCH_RESULTS:-/tmp/bench-results}/tiles-$(date +%Y%m%d-%H%M%S)
DB=${GEOAPI_BENCH_DB:-postgresql://postgres@127.0.0.1:55432/geoapi_bench}
LITE=${GEOAPI_BENCH_LITE:-sqlite:////tmp/geoapi-bench-200k.sqlite}
PY=.venv/bin/python
PIDFILE=/tmp/geoapi-bench.pid
mkdir -p "$OUT"

start_geoapi() {  # $1 = in-process tile cache entries (0 = every request renders)
  GEOAPI_DATABASE_URL=$DB GEOAPI_TILE_CACHE_SIZE=$1 GEOAPI_LOG_LEVEL=warning \
    setsid .venv/bin/geoapi serve --port 8090 > "$OUT/geoapi-cache$1.log" 2>&1 < /dev/null &
  echo $! > $PIDFILE
  for _ in $(seq 1 240); do
    curl -fsS http://127.0.0.1:8090/tiles/manholes/tilejson.json > /dev/null 2>&1 && return 0
    sleep 0.5
  done
  echo "geoapi did not come up; see $OUT/geoapi-cache$1.log" >&2; stop_geoapi; exit 1
}
stop_geoapi() {
  if [ -s $PIDFILE ]; then
    kill "$(cat $PIDFILE)" 2> /dev/null || true
    for _ in $(seq 1 40); do kill -0 "$(cat $PIDFILE)" 2> /dev/null || break; sleep 0.25; done
    rm -f $PIDFILE
  fi
}
rss_mb() { awk '/VmRSS/ {print $2 / 1024}' "/proc/$(cat $PIDFILE)/status"; }
trap 'stop_geoapi; $RIG/tipg-down.sh > /dev/null 2>&1 || true' EXIT

echo "== encoder alone (synthetic 5,000 points)"; $PY bench/tiles_bench.py encode --reps 5 | tee "$OUT/encode.json"
echo "== SpatiaLite 200k, in-process cold render"; $PY bench/tiles_bench.py lite --db "$LITE" --zooms 14 16 --reps 3 | tee "$OUT/lite.json"
echo "== SQL: rig floor vs geoapi's tile SQL"; $PY bench/tiles_bench.py sql --db "$DB" --reps 1 | tee "$OUT/sql.json"
echo "== z10-z12 sizes and counts"; $PY bench/tiles_bench.py sizes --db "$DB" --dense 10 | tee "$OUT/sizes.json"

$RIG/tipg-up.sh 1 standard
start_geoapi 0
echo "== cold tiles, alternating bare SQL / geoapi / tipg"; $PY bench/tiles_bench.py cold --floor --tipg http://127.0.0.1:8081 --reps 1 | tee "$OUT/cold.json"
echo "== z16 again, 10 passes (1,000 tiles each side: a steadier p95)"; $PY bench/tiles_bench.py cold --floor --only-zoom 16 --reps 10 | tee "$OUT/cold-z16.json"
echo "== throughput, cache off (every request renders)"
$PY bench/tiles_bench.py load --tipg http://127.0.0.1:8081 --reps 2 --duration 10 | tee "$OUT/load-cold.json"
echo "geoapi worker RSS after cold load: $(rss_mb) MB" | tee "$OUT/rss-cold.txt"
stop_geoapi

start_geoapi 20000
$PY bench/tiles_bench.py cold --reps 1 > /dev/null   # one pass fills the cache
echo "== throughput, cache warm"
$PY bench/tiles_bench.py load --tipg http://127.0.0.1:8081 --reps 2 --duration 10 | tee "$OUT/load-warm.json"
echo "geoapi worker RSS with the list cached: $(rss_mb) MB" | tee "$OUT/rss-warm.txt"
tipg_pid=$(cat /tmp/tipg.pid)
echo "tipg RSS: $(awk '/VmRSS/ {print $2 / 1024}' /proc/$tipg_pid/status) MB (one worker: uvicorn serves in the process it starts)" | tee -a "$OUT/rss-warm.txt"
stop_geoapi
$RIG/tipg-down.sh
echo "results in $OUT"
