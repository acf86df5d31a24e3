# Helpers shared by .ci/setup.sh and .ci/postgis.sh (sourced, not run).

say() { printf '[setup] %s\n' "$*"; }
die() { printf '[setup] ERROR: %s\n' "$*" >&2; exit 1; }

# quiet NAME CMD...: run CMD with its output in /tmp/geoapi-ci-NAME.log; on failure show the tail.
# VERBOSE=1 streams the output instead.
quiet() {
  local name=$1; shift
  local log=/tmp/geoapi-ci-$name.log
  if [ "${VERBOSE:-0}" = 1 ]; then
    "$@" 2>&1 | tee -a "$log"
    return "${PIPESTATUS[0]}"
  fi
  if ! "$@" >>"$log" 2>&1; then
    printf '[setup] FAILED: %s\n[setup] last lines of %s:\n' "$*" "$log" >&2
    tail -n 40 "$log" >&2
    return 1
  fi
}

# missing_pkgs PKG...: print the Debian packages that are not installed.
missing_pkgs() {
  local p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || echo "$p"
  done
}

# apt_ensure PKG...: install what is missing; `apt-get update` runs only when something is.
# Not root: print what is missing and how to install it, and go on.
apt_ensure() {
  command -v dpkg-query >/dev/null || { say "no dpkg here: install by hand: $*"; return 0; }
  local missing
  missing=$(missing_pkgs "$@" | xargs)
  [ -n "$missing" ] || return 0
  if [ "$(id -u)" != 0 ]; then
    say "not root, skipping apt. Missing: $missing"
    say "install them with: sudo apt-get update && sudo apt-get install -y $missing"
    return 0
  fi
  say "apt-get install $missing (log: /tmp/geoapi-ci-apt.log)"
  if [ -z "${_GEOAPI_APT_UPDATED:-}" ]; then
    quiet apt env DEBIAN_FRONTEND=noninteractive apt-get update -q
    _GEOAPI_APT_UPDATED=1
  fi
  # shellcheck disable=SC2086  # word splitting of the package list is wanted
  quiet apt env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $missing
}
