#!/usr/bin/env bash
# The load benchmark's set-up (benchmarks/run.sh runs it when something is missing). Idempotent.
#
#   sudo benchmarks/setup.sh      # first time: installs Debian's nginx and wrk (needs root)
#   benchmarks/setup.sh           # later, or with SKIP_APT=1: the fixtures only, no root needed
#
# 1. Debian packages nginx and wrk (with curl, iproute2 for ss, util-linux for taskset), when
#    one is missing: apt-get, which NEEDS ROOT. Without root it prints the command to run and
#    stops. The package may start a system nginx on port 80; the benchmark never uses it, and
#    runs its own nginx processes from rendered configs (harness/nginx/).
# 2. The project's .venv must hold aiohttp and uvloop (the yardstick runs on it):
#    `.venv/bin/pip install -e '.[test]'` gives both.
# 3. The upstream's fixtures: harness/make_fixtures.py writes $BENCH_STATE/fixtures/.
# BENCH_STATE (default ${TMPDIR:-/tmp}/marketplace-bench) holds everything the benchmark writes;
# nothing is written inside the checkout.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(dirname "$HERE")"
STATE="$(realpath -m "${BENCH_STATE:-${TMPDIR:-/tmp}/marketplace-bench}")"
case "$STATE/" in "$ROOT"/*)
  echo "setup.sh: BENCH_STATE ($STATE) must be outside the checkout ($ROOT)" >&2; exit 2 ;; esac
PACKAGES=(nginx wrk curl iproute2 util-linux)

log() { echo "setup.sh: $*" >&2; }

missing=()
for tool in nginx wrk curl ss taskset; do
  command -v "$tool" >/dev/null 2>&1 || [[ -x "/usr/sbin/$tool" ]] || missing+=("$tool")
done
if (( ${#missing[@]} )) && [[ "${SKIP_APT:-0}" != 1 ]]; then
  if [[ "$(id -u)" -ne 0 ]]; then
    log "missing ${missing[*]}: installing Debian's packages needs root. Run, as root:"
    log "  apt-get update && apt-get install -y --no-install-recommends ${PACKAGES[*]}"
    log "or again: sudo $0"
    exit 2
  fi
  command -v apt-get >/dev/null 2>&1 || { log "missing ${missing[*]} and no apt-get: install them by hand"; exit 2; }
  log "installing ${PACKAGES[*]} (apt-get, as root)"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${PACKAGES[@]}"
fi

PY="${YARD_PYTHON:-$ROOT/.venv/bin/python}"
if ! "$PY" -c 'import aiohttp, uvloop' 2>/dev/null; then
  log "$PY lacks aiohttp or uvloop (the yardstick needs both): python3 -m venv .venv &&" \
    ".venv/bin/pip install -e '.[test]' in $ROOT"
  exit 2
fi

mkdir -p "$STATE/logs" "$STATE/run"
"$PY" "$HERE/harness/make_fixtures.py" --out "$STATE/fixtures" >&2
log "done: $("$(command -v nginx || echo /usr/sbin/nginx)" -v 2>&1 | tr -d '\n'), $(wrk -v 2>&1 | head -1 | cut -d' ' -f1-2)," \
  "yardstick on $("$PY" -c 'import aiohttp, uvloop; print(f"aiohttp {aiohttp.__version__}, uvloop {uvloop.__version__}")'), state in $STATE"
