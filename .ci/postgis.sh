#!/usr/bin/env bash
# Make sure the local PostgreSQL answers on 127.0.0.1:5432 with PostGIS, and that the `test`
# database can create the extension. Installs postgresql-15 (+ cluster) and PostGIS when missing.
#
#   bash .ci/postgis.sh
#   PG_MAJOR=16 bash .ci/postgis.sh     (another server version, e.g. on Ubuntu 24.04)
#
# Trust auth for `postgres` over loopback is added to pg_hba.conf only on a cluster this script
# installed, or when CI=true or GEOAPI_PG_TRUST=1 say so; otherwise it explains and stops.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=lib.sh
. .ci/lib.sh

host=127.0.0.1 port=5432 db=test
installed_server=0

# The newest installed server wins; 15 is Debian bookworm's.
installed_major=$(find /usr/lib/postgresql -mindepth 3 -maxdepth 3 -path '*/bin/postgres' 2>/dev/null \
  | awk -F/ '{print $5}' | sort -n | tail -n 1)
pg=${PG_MAJOR:-${installed_major:-15}}

if [ ! -x "/usr/lib/postgresql/$pg/bin/postgres" ]; then
  [ "$(id -u)" = 0 ] || die "no PostgreSQL $pg server: sudo apt-get install postgresql-$pg postgresql-$pg-postgis-3"
  apt_ensure "postgresql-$pg"
  installed_server=1
fi
apt_ensure "postgresql-$pg-postgis-3"
[ -f "/usr/share/postgresql/$pg/extension/postgis.control" ] \
  || die "PostGIS for PostgreSQL $pg is not installed: sudo apt-get install postgresql-$pg-postgis-3"

# Debian's package makes the `main` cluster unless told not to; make it if it is not there.
if [ ! -d "/etc/postgresql/$pg/main" ]; then
  say "creating cluster $pg/main on port $port"
  quiet postgres pg_createcluster --port "$port" "$pg" main
  installed_server=1
fi

answers() { pg_isready -q -h "$host" -p "$port"; }
if ! answers; then
  say "starting PostgreSQL $pg/main"
  quiet postgres pg_ctlcluster --skip-systemctl-redirect "$pg" main start \
    || die "PostgreSQL $pg/main did not start: see /var/log/postgresql/postgresql-$pg-main.log"
  for _ in $(seq 1 30); do answers && break; sleep 1; done
  answers || die "PostgreSQL does not answer on $host:$port after 30 s"
fi

psql_pg() { psql -X -q -w -v ON_ERROR_STOP=1 -h "$host" -p "$port" -U postgres "$@"; }

if ! psql_pg -d postgres -tAc 'select 1' >/dev/null 2>&1; then
  hba=$(find "/etc/postgresql/$pg/main" -name pg_hba.conf | head -n 1)
  if [ "$installed_server" = 1 ] || [ "${CI:-}" = true ] || [ "${GEOAPI_PG_TRUST:-0}" = 1 ]; then
    [ "$(id -u)" = 0 ] || die "cannot edit $hba without root"
    say "allowing user postgres over loopback without a password (trust) in $hba"
    # First matching line wins, so these go on top.
    { printf '%s\n' '# geoapi tests: postgres over loopback, no password' \
        'host all postgres 127.0.0.1/32 trust' 'host all postgres ::1/128 trust'
      cat "$hba"; } > "$hba.geoapi" && cat "$hba.geoapi" > "$hba" && rm -f "$hba.geoapi"
    quiet postgres pg_ctlcluster --skip-systemctl-redirect "$pg" main reload
    sleep 1
  fi
  psql_pg -d postgres -tAc 'select 1' >/dev/null || die "cannot connect as postgres to $host:$port without a password.
  The tests expect trust auth for postgres over loopback; on a test machine run
  GEOAPI_PG_TRUST=1 bash .ci/postgis.sh, or set GEOAPI_TEST_PG_URL to a URL with a password."
fi

if [ -z "$(psql_pg -d postgres -tAc "select 1 from pg_database where datname = '$db'")" ]; then
  say "creating database $db"
  psql_pg -d postgres -c "create database $db"
fi
psql_pg -d "$db" -c 'set client_min_messages to warning' -c 'create extension if not exists postgis'
version=$(psql_pg -d "$db" -tAc 'select postgis_lib_version()')

say "PostgreSQL $pg with PostGIS $version on $host:$port, database $db"
echo "GEOAPI_TEST_PG_URL=postgresql+psycopg://postgres@$host:$port/$db"
