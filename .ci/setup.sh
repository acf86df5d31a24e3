#!/usr/bin/env bash
# Make a fresh Debian/Ubuntu machine ready: apt packages, .venv/ from the OS python, web_map npm
# packages, then check that SpatiaLite loads. Idempotent; pip/npm are skipped while their stamp
# (a hash of what they install from) is unchanged.
#
#   bash .ci/setup.sh [--postgis]     (or GEOAPI_SETUP_POSTGIS=1)
#   VERBOSE=1 streams apt/pip/npm output instead of logging it to /tmp/geoapi-ci-*.log
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=lib.sh
. .ci/lib.sh

want_postgis=${GEOAPI_SETUP_POSTGIS:-0}
for arg in "$@"; do
  case $arg in
    --postgis) want_postgis=1 ;;
    -h|--help) sed -n '2,8p' "$0"; exit 0 ;;
    *) die "unknown argument: $arg" ;;
  esac
done

# --- apt --------------------------------------------------------------------------------------
# gdal-bin: ogrinfo/ogr2ogr used by tests; chromium + a CJK font: browser tests and screenshots.
# mosquitto: the MQTT broker the telemetry tests talk to (and start privately for the restart test).
pkgs=(python3-venv libsqlite3-mod-spatialite gdal-bin chromium fonts-wqy-microhei fonts-dejavu-core mosquitto)
command -v node >/dev/null || pkgs+=(nodejs npm)
[ "$want_postgis" = 1 ] && pkgs+=(postgresql-15-postgis-3)
apt_ensure "${pkgs[@]}"

# --- python -----------------------------------------------------------------------------------
# The OS python can load SQLite extensions; pyenv's builds usually cannot. Without it, any
# python3 >= 3.11 works with the pysqlite3-binary wheel (a Linux x86_64 dependency in pyproject).
py_ok() {  # py_ok PYTHON [need-extensions]
  "$1" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null || return 1
  [ "${2:-}" != need-extensions ] && return 0
  "$1" -c 'import sqlite3; sqlite3.Connection.enable_load_extension' 2>/dev/null
}
if py_ok /usr/bin/python3 need-extensions; then
  base_py=/usr/bin/python3
elif command -v python3 >/dev/null && py_ok "$(command -v python3)"; then
  base_py=$(command -v python3)
  say "/usr/bin/python3 is not 3.11+ with SQLite extension loading; using $base_py + pysqlite3-binary"
else
  die "no Python 3.11+ found: install python3 (Debian bookworm has 3.11) and run again"
fi
base_real=$(readlink -f "$base_py")

# A venv built from another interpreter (e.g. pyenv's) is rebuilt: extension loading depends on it.
if [ -x .venv/bin/python ]; then
  venv_base=$(.venv/bin/python -c 'import sys, os; print(os.path.realpath(sys._base_executable))' 2>/dev/null || true)
  if [ "$venv_base" != "$base_real" ]; then
    say "rebuilding .venv (built from '${venv_base:-a broken python}', want $base_real)"
    rm -rf .venv
  fi
elif [ -e .venv ]; then
  rm -rf .venv
fi
if [ ! -x .venv/bin/python ]; then
  say "creating .venv from $base_py"
  quiet pip "$base_py" -m venv .venv || die "python3 -m venv failed: is python3-venv installed?"
fi

pip_key=$( { cat pyproject.toml; echo "$base_real"; } | sha256sum | cut -d' ' -f1)
if [ "$(cat .venv/.setup-stamp 2>/dev/null)" != "$pip_key" ]; then
  say "pip install -e '.[dev]' (log: /tmp/geoapi-ci-pip.log)"
  quiet pip .venv/bin/pip install --disable-pip-version-check -q -e '.[dev]'
  echo "$pip_key" > .venv/.setup-stamp
fi

# --- npm (web_map) ------------------------------------------------------------------------------
if [ -f web_map/package.json ]; then
  command -v npm >/dev/null || die "npm not found: install nodejs and npm (apt-get install nodejs npm)"
  npm_key=$(cat web_map/package.json web_map/package-lock.json 2>/dev/null | sha256sum | cut -d' ' -f1)
  if [ "$(cat web_map/node_modules/.setup-stamp 2>/dev/null)" != "$npm_key" ]; then
    if [ -f web_map/package-lock.json ]; then
      say "npm ci in web_map (log: /tmp/geoapi-ci-npm.log)"
      quiet npm npm --prefix web_map ci --no-audit --no-fund
    else
      say "npm install in web_map: no package-lock.json yet, commit the one it writes"
      quiet npm npm --prefix web_map install --no-audit --no-fund
      npm_key=$(cat web_map/package.json web_map/package-lock.json | sha256sum | cut -d' ' -f1)
    fi
    echo "$npm_key" > web_map/node_modules/.setup-stamp
  fi
fi

# --- check --------------------------------------------------------------------------------------
if ! spatialite=$(.venv/bin/python - 2>&1 <<'PY'
try:
    import sqlite3
    sqlite3.Connection.enable_load_extension
except AttributeError:  # a python built without extension loading: the wheel has it
    import pysqlite3 as sqlite3
con = sqlite3.connect(":memory:")
con.enable_load_extension(True)
con.load_extension("mod_spatialite")
print(con.execute("select spatialite_version()").fetchone()[0])
PY
); then
  printf '%s\n' "$spatialite" | tail -n 5 >&2
  die "SpatiaLite does not load from .venv/bin/python: install libsqlite3-mod-spatialite (apt) and run again"
fi
say "ready: $(.venv/bin/python -V), SpatiaLite $spatialite"
