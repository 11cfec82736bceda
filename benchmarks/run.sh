#!/usr/bin/env bash
# The gateway's load benchmark: throughput, added latency and memory, in ONE run, against the
# references of benchmarks/harness/ (nginx upstream, nginx peer 1 worker, aiohttp yardstick) and
# the ceiling reference of this folder (raw_pool_proxy.py: aiohttp's low-level server + a raw
# keep-alive upstream pool).
#
#   benchmarks/run.sh [all | throughput | list | single | latency | memory | profile | check]...
#
#   list, single  throughput on that path: direct upstream, nginx-1w, yardstick, raw-pool,
#                 gateway, alternating round by round (ROUNDS x DURATION each), RSS after each
#   throughput    list + single
#   latency       CONNS=1 on list and single: direct upstream, yardstick, raw-pool and gateway
#                 (the added p50 of each, and the gateway's over the yardstick's and raw-pool's)
#   memory        a fresh gateway, MEM_REQUESTS (100,000) list requests at -c32; RSS at
#                 start, after MEM_MARK (20,000) and at the end; growth MEM_MARK -> end
#   all           throughput latency memory (the default)
#   check         no load: start every target, check each one's list and single answers
#                 (harness/check_response.py), stop; seconds, a fresh clone's first smoke test
#   profile       py-spy record of the gateway under list load (PROFILE_SECONDS), summarised
#                 by benchmarks/profile_summary.py; not part of "all"
#
# Run from anywhere; paths are resolved from this file. Set-up (Debian's nginx and wrk, which
# needs root, and the fixtures) is benchmarks/setup.sh: run once as root on a fresh clone
# (`sudo benchmarks/setup.sh`); run.sh calls it itself when something is missing.
# The gateway is the project's .venv/bin/gateway, pinned with taskset to GW_CPUS (CPU 0),
# listening on 127.0.0.1:GW_PORT with --public-base-url http://127.0.0.1:GW_PORT.
# Everything started here is stopped on exit, Ctrl-C included; harness servers that were
# already running are left running.
#
# Env (defaults):  ROUNDS=3 DURATION=10s WARMUP=3s LAT_DURATION=$DURATION
#                  QUICK=1 -> ROUNDS=1 DURATION=3s WARMUP=1s MEM_REQUESTS=20000 MEM_MARK=4000
#                  MEM_REQUESTS=100000 MEM_MARK=20000 MEM_PATH=list MEM_MAX_TIME=300
#                  GW_PORT=18093 GW_CPUS=$SUT_CPUS(0) GW_ARGS= (extra serve flags: --workers 2)
#                  UPSTREAM_PORT=18081 PEER_PORT=18082 YARD_PORT=18090 RAW_PORT=18094 (to move
#                  the references; raw-pool runs on the yardstick's python and CPUs, asyncio)
#                  GW_EXPECT_BASE= (public base the gateway writes, when not http://127.0.0.1:GW_PORT)
#                  PROFILE_SECONDS=10 PROFILE_PATH=list
#                  BENCH_STATE=/tmp/marketplace-bench  plus what harness/measure.sh reads
#                  (CONNS, QUIET_WAIT, FOREIGN_MAX, SUT_CPUS, LOAD_CPUS, PIN, ...)
# Output: the table on stdout; raw lines, gateway log, RSS series and report.md under
# $BENCH_STATE/logs/suite-<timestamp>/.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(dirname "$HERE")"
HARNESS="$HERE/harness"
export BENCH_STATE="${BENCH_STATE:-${TMPDIR:-/tmp}/marketplace-bench}"
if [[ "${QUICK:-0}" == 1 ]]; then
  : "${ROUNDS:=1}" "${DURATION:=3s}" "${WARMUP:=1s}" "${MEM_REQUESTS:=20000}" "${MEM_MARK:=4000}"
fi
export ROUNDS="${ROUNDS:-3}" DURATION="${DURATION:-10s}" WARMUP="${WARMUP:-3s}"
LAT_DURATION="${LAT_DURATION:-$DURATION}"
MEM_REQUESTS="${MEM_REQUESTS:-100000}"
MEM_MARK="${MEM_MARK:-20000}"
MEM_PATH="${MEM_PATH:-list}"
MEM_MAX_TIME="${MEM_MAX_TIME:-300}"
PROFILE_SECONDS="${PROFILE_SECONDS:-10}"
PROFILE_PATH="${PROFILE_PATH:-list}"
export UPSTREAM_PORT="${UPSTREAM_PORT:-18081}"
export PEER_PORT="${PEER_PORT:-18082}"
export YARD_PORT="${YARD_PORT:-18090}"
RAW_PORT="${RAW_PORT:-18094}"
GW_PORT="${GW_PORT:-18093}"
SUT_CPUS="${SUT_CPUS:-0}"
LOAD_CPUS="${LOAD_CPUS:-1}"
GW_CPUS="${GW_CPUS:-$SUT_CPUS}"
GW_ARGS="${GW_ARGS:-}"
GATEWAY="${GATEWAY:-$ROOT/.venv/bin/gateway}"
PY="${PYTHON:-python3}"

die() { echo "benchmarks/run.sh: $*" >&2; exit 2; }
log() { echo "[$(date +%H:%M:%S)] $*" >&2; }

# ---- what to run
modes=()
for arg in "${@:-all}"; do
  case "$arg" in
    all) modes+=(list single latency memory) ;;
    throughput) modes+=(list single) ;;
    list | single | latency | memory | profile | check) modes+=("$arg") ;;
    -h | --help) sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown mode '$arg' (all throughput list single latency memory profile check)" ;;
  esac
done
want() { local m; for m in "${modes[@]}"; do [[ "$m" == "$1" ]] && return 0; done; return 1; }

[[ -x "$GATEWAY" ]] || die "gateway executable not found at $GATEWAY (pip install -e . in .venv)"

# ---- set-up, only when something is missing (installing nginx and wrk needs root: it says so)
if ! { command -v nginx || [[ -x /usr/sbin/nginx ]]; } >/dev/null || ! command -v wrk >/dev/null \
  || [[ ! -f "$BENCH_STATE/fixtures/manifest.json" ]]; then
  log "running $HERE/setup.sh (BENCH_STATE=$BENCH_STATE)"
  "$HERE/setup.sh" >&2 || die "set-up failed (see above); on a fresh clone: sudo $HERE/setup.sh"
fi

OUT="$BENCH_STATE/logs/suite-$(date +%Y%m%d-%H%M%S)"
mkdir -p "$OUT"
TSV="$OUT/results.tsv"
printf 'section\tround\ttarget\tpath\tline\n' > "$TSV"

# ---- cleanup: everything this script started, and nothing else
started=()  # servers.sh names
GW_PID=""
RAW_PID=""
BG_PIDS=()
descendants() { # PID -> its children, grandchildren, ... (by parent PID, not by name)
  local c
  for c in $(ps -o pid= --ppid "$1" 2>/dev/null); do echo "$c"; descendants "$c"; done
}
# shellcheck disable=SC2317  # called from traps
kill_tree() { # SIGNAL PID: the process and everything below it
  local p
  for p in $(descendants "$2") "$2"; do kill -"$1" "$p" 2>/dev/null || true; done
}
# shellcheck disable=SC2317
stop_gateway() {
  [[ -n "$GW_PID" ]] || return 0
  local pid="$GW_PID" kids i
  GW_PID=""
  kids="$(ps -o pid= --ppid "$pid" 2>/dev/null | tr -s ' \n' ' ' || true)"
  kill -TERM "$pid" 2>/dev/null || true
  for (( i = 0; i < 150; i++ )); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null || true
  for k in $kids; do kill -KILL "$k" 2>/dev/null || true; done
  wait "$pid" 2>/dev/null || true
}
# shellcheck disable=SC2317
cleanup() {
  local p n
  trap - EXIT INT TERM
  set +e  # stop everything even if one step fails
  for p in "${BG_PIDS[@]}"; do
    if [[ -n "$p" ]]; then kill_tree TERM "$p"; fi
  done
  stop_gateway
  if [[ -n "$RAW_PID" ]]; then kill -TERM "$RAW_PID" 2>/dev/null; wait "$RAW_PID" 2>/dev/null; fi
  for n in "${started[@]}"; do "$HARNESS/servers.sh" stop "$n" >&2 || true; done
}
trap cleanup EXIT
trap 'log "interrupted"; cleanup; exit 130' INT TERM

start_server() { # servers.sh NAME, if not running already
  local name="$1" st
  st="$("$HARNESS/servers.sh" status)"
  case "$name" in
    peer1)
      if ! grep -q "^peer: running.*affinity=1:$UPSTREAM_PORT:" <<<"$st"; then
        PEER_UPSTREAM_PORT="$UPSTREAM_PORT" "$HARNESS/servers.sh" start peer1 >&2
        started+=(peer1)
      fi ;;
    *)
      if ! grep -q "^$name: running" <<<"$st"; then
        "$HARNESS/servers.sh" start "$name" >&2
        started+=("$name")
      fi ;;
  esac
}

code_id() { # commit + fingerprint of the gateway sources as they are on disk now
  local commit sum
  commit="$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')"
  sum="$(cd "$ROOT" && find gateway rewrite_rules -type f \( -name '*.py' -o -name '*.toml' \) \
    -print0 | sort -z | xargs -0 cat | sha1sum | cut -c1-10)"
  echo "$commit sources=$sum"
}
start_gateway() {
  [[ -z "$(ss -ltnH "( sport = :$GW_PORT )" 2>/dev/null)" ]] || die "port $GW_PORT is busy"
  local -a cmd=("$GATEWAY" serve --listen "127.0.0.1:$GW_PORT"
    --marketplace-upstream "http://127.0.0.1:$UPSTREAM_PORT"
    --public-base-url "${GW_EXPECT_BASE:-http://127.0.0.1:$GW_PORT}")
  # shellcheck disable=SC2206  # GW_ARGS is a list of flags on purpose
  cmd+=($GW_ARGS)
  [[ "${PIN:-1}" == 1 ]] && cmd=(taskset -c "$GW_CPUS" "${cmd[@]}")
  echo "# ${cmd[*]}" >> "$OUT/gateway.log"
  # others may edit gateway/ during a run: record which code each gateway process ran
  echo "# gateway start $(date +%H:%M:%S): code $(code_id)" >> "$OUT/meta.txt"
  "${cmd[@]}" >> "$OUT/gateway.log" 2>&1 &
  GW_PID=$!
  local i
  for (( i = 0; i < 150; i++ )); do
    if curl -s -o /dev/null -m 1 "http://127.0.0.1:$GW_PORT/healthz"; then
      log "gateway up: pid $GW_PID, cpus $(taskset -pc "$GW_PID" | awk -F': ' '{print $2}'), $GW_ARGS"
      return 0
    fi
    kill -0 "$GW_PID" 2>/dev/null || break
    sleep 0.1
  done
  tail -20 "$OUT/gateway.log" >&2
  die "gateway did not come up (log: $OUT/gateway.log)"
}

start_raw_pool() { # benchmarks/raw_pool_proxy.py, the ceiling reference, pinned as the yardstick
  [[ -z "$RAW_PID" ]] || return 0
  [[ -z "$(ss -ltnH "( sport = :$RAW_PORT )" 2>/dev/null)" ]] || die "port $RAW_PORT is busy"
  local -a cmd=("${YARD_PYTHON:-$ROOT/.venv/bin/python}" "$HERE/raw_pool_proxy.py"
    --port "$RAW_PORT" --upstream "http://127.0.0.1:$UPSTREAM_PORT")
  [[ "${PIN:-1}" == 1 ]] && cmd=(taskset -c "$SUT_CPUS" "${cmd[@]}")
  "${cmd[@]}" >> "$OUT/raw-pool.log" 2>&1 &
  RAW_PID=$!
  local i
  for (( i = 0; i < 100; i++ )); do
    curl -s -o /dev/null -m 1 "http://127.0.0.1:$RAW_PORT/" && return 0
    kill -0 "$RAW_PID" 2>/dev/null || break
    sleep 0.1
  done
  die "raw pool proxy did not come up (log: $OUT/raw-pool.log)"
}

gw_pids() { # the gateway process and its children (workers)
  [[ -n "$GW_PID" ]] || return 0
  echo "$GW_PID"
  ps -o pid= --ppid "$GW_PID" 2>/dev/null | tr -d ' ' || true
}
rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
# "max=KB total=KB procs=N": largest RSS of one process, and the sum, over the gateway tree
gw_rss() {
  local p max=0 total=0 n=0 r
  for p in $(gw_pids); do
    r="$(rss_kb "$p")"; r="${r:-0}"
    (( r > max )) && max=$r
    total=$(( total + r )); n=$(( n + 1 ))
  done
  echo "rss_kb=$max rss_total_kb=$total procs=$n"
}
target_rss() {
  case "$1" in
    gateway) gw_rss ;;
    yardstick) echo "rss_kb=$(rss_kb "$(cat "$BENCH_STATE/run/yard.pid" 2>/dev/null || echo 0)")" ;;
    raw-pool) echo "rss_kb=$(rss_kb "${RAW_PID:-0}")" ;;
    *) echo "" ;;
  esac
}

port_of() {
  case "$1" in
    direct) echo "$UPSTREAM_PORT" ;; nginx-1w) echo "$PEER_PORT" ;;
    yardstick) echo "$YARD_PORT" ;; gateway) echo "$GW_PORT" ;; raw-pool) echo "$RAW_PORT" ;;
  esac
}

measure() { # SECTION ROUND TARGET PATH [env assignments for run.sh...]
  local section="$1" round="$2" target="$3" path="$4" line
  shift 4
  local base=""
  [[ "$target" == gateway ]] && base="${GW_EXPECT_BASE:-}"
  # in the background + wait, so that Ctrl-C reaches the trap at once (bash runs a trap only
  # after a foreground child ends, and not at all when that child handles SIGINT, as wrk does)
  env "$@" EXPECT_BASE="$base" LABEL="$target" "$HARNESS/measure.sh" "$(port_of "$target")" "$path" \
    > "$OUT/run-line.txt" &
  local child=$!
  BG_PIDS+=("$child")
  wait "$child" || true
  BG_PIDS=("${BG_PIDS[@]/$child}")
  line="$(cat "$OUT/run-line.txt") $(target_rss "$target")"
  printf '%s\t%s\t%s\t%s\t%s\n' "$section" "$round" "$target" "$path" "$line" >> "$TSV"
  printf '%-10s round %s %-9s %-6s %s\n' "$section" "$round" "$target" "$path" \
    "$(tr ' ' '\n' <<<"$line" | grep -E '^(rps|p50_ms|p99_ms|errors|check|contaminated|sut_cpu|load_cpu|rss_kb)=' | paste -sd' ' -)" >&2
}

{
  echo "# date=$(date -Is) host=$(hostname) nproc=$(nproc) modes=${modes[*]}"
  echo "# ROUNDS=$ROUNDS DURATION=$DURATION WARMUP=$WARMUP LAT_DURATION=$LAT_DURATION CONNS=${CONNS:-32} QUICK=${QUICK:-0}"
  echo "# MEM_REQUESTS=$MEM_REQUESTS MEM_MARK=$MEM_MARK MEM_PATH=$MEM_PATH GW_ARGS=$GW_ARGS GW_CPUS=$GW_CPUS"
  echo "# gateway=$(code_id)$(git -C "$ROOT" diff --quiet HEAD -- gateway 2>/dev/null || echo ' (uncommitted changes in gateway/)')"
} > "$OUT/meta.txt"

start_server upstream

# ---- check: every target answers both pages correctly, no load
if want check; then
  start_server peer1
  start_server yard
  start_raw_pool
  [[ -n "$GW_PID" ]] || start_gateway
  failed=0
  for target in direct nginx-1w yardstick raw-pool gateway; do
    for page in list single; do
      req_path="$("$PY" -c 'import json,sys;print(json.load(open(sys.argv[1]))["bench_paths"][sys.argv[2]])' \
        "$BENCH_STATE/fixtures/manifest.json" "$page")"
      [[ "$target" == direct ]] && req_path="/v1/${req_path#/marketplace/}"
      base=""
      [[ "$target" == gateway ]] && base="${GW_EXPECT_BASE:-}"
      verdict="$("$PY" "$HARNESS/check_response.py" "http://127.0.0.1:$(port_of "$target")$req_path" \
        ${base:+--expect-base "$base"} || true)"
      printf 'check %-9s %-6s %s\n' "$target" "$page" "$verdict"
      [[ "$verdict" == ok ]] || failed=1
    done
  done
  (( failed == 0 )) || die "check: a target answered wrongly (above)"
fi

# ---- throughput: list and/or single, 5 targets, rotating order
paths=()
want list && paths+=(list)
want single && paths+=(single)
if (( ${#paths[@]} )); then
  start_server peer1
  start_server yard
  start_raw_pool
  start_gateway
  targets=(direct nginx-1w yardstick raw-pool gateway)
  log "throughput: ${paths[*]}, $ROUNDS round(s) x $(( ${#paths[@]} * 5 )) runs of $DURATION"
  for (( r = 0; r < ROUNDS; r++ )); do
    for p in "${paths[@]}"; do
      for (( k = 0; k < 5; k++ )); do
        measure throughput "$(( r + 1 ))" "${targets[$(( (k + r) % 5 ))]}" "$p"
      done
    done
  done
fi

# ---- latency at one connection: direct upstream, yardstick, raw pool, gateway
if want latency; then
  start_server yard
  start_raw_pool
  [[ -n "$GW_PID" ]] || start_gateway
  jobs=(direct:list yardstick:list raw-pool:list gateway:list
    direct:single yardstick:single raw-pool:single gateway:single)
  log "latency: CONNS=1, $ROUNDS round(s) x ${#jobs[@]} runs of $LAT_DURATION"
  for (( r = 0; r < ROUNDS; r++ )); do
    for (( k = 0; k < ${#jobs[@]}; k++ )); do
      j="${jobs[$(( (k + r) % ${#jobs[@]} ))]}"
      measure latency "$(( r + 1 ))" "${j%%:*}" "${j#*:}" CONNS=1 DURATION="$LAT_DURATION"
    done
  done
fi

# ---- memory: a fresh gateway, a bounded number of requests, RSS sampled
wrk_count() { # COUNT URL -> sets WRKCOUNT (wrk's summary line); stops wrk after COUNT responses
  local count="$1" url="$2" done_file="$OUT/wrk-done" wpid i
  rm -f "$done_file"
  WRK_COUNT="$count" WRK_DONE_FILE="$done_file" taskset -c "$LOAD_CPUS" \
    wrk -t1 -c"${CONNS:-32}" -d"${MEM_MAX_TIME}s" -s "$HERE/wrk_count.lua" "$url" \
    > "$OUT/wrk-count.out" 2>&1 &
  wpid=$!
  BG_PIDS+=("$wpid")
  for (( i = 0; i < MEM_MAX_TIME * 10 + 50; i++ )); do
    [[ -f "$done_file" ]] && break
    kill -0 "$wpid" 2>/dev/null || break
    sleep 0.1 &
    wait "$!"
  done
  kill -INT "$wpid" 2>/dev/null || true
  wait "$wpid" 2>/dev/null || true
  BG_PIDS=("${BG_PIDS[@]/$wpid}")
  WRKCOUNT="$(grep '^WRKCOUNT' "$OUT/wrk-count.out" || echo "WRKCOUNT requests=0 errors=0 failed=1")"
}
kv() { # KEY "k=v k=v ..." -> v (0 when absent)
  local v
  v="$(tr ' ' '\n' <<<"$2" | sed -n "s/^$1=//p" | head -1)"
  echo "${v:-0}"
}
if want memory; then
  stop_gateway
  start_gateway
  req_path="$("$PY" -c 'import json,sys;print(json.load(open(sys.argv[1]))["bench_paths"][sys.argv[2]])' \
    "$BENCH_STATE/fixtures/manifest.json" "$MEM_PATH" 2>/dev/null || echo "$MEM_PATH")"
  url="http://127.0.0.1:$GW_PORT$req_path"
  "$PY" "$HARNESS/check_response.py" "$url" ${GW_EXPECT_BASE:+--expect-base "$GW_EXPECT_BASE"} >&2 \
    || die "memory: correctness check failed on $url"
  # RSS series, one sample a second, for the record
  ( while :; do echo "$(date +%s) $(gw_rss)"; sleep 1; done ) > "$OUT/rss-series.txt" 2>/dev/null &
  sampler=$!
  BG_PIDS+=("$sampler")
  rss0="$(gw_rss)"
  log "memory: $MEM_REQUESTS requests on $MEM_PATH at -c${CONNS:-32} (mark at $MEM_MARK), start $rss0"
  wrk_count "$MEM_MARK" "$url"
  a="$WRKCOUNT"
  rss1="$(gw_rss)"
  log "memory: ${a#WRKCOUNT } -> $rss1"
  wrk_count "$(( MEM_REQUESTS - $(kv requests "$a") ))" "$url"
  b="$WRKCOUNT"
  rss2="$(gw_rss)"
  log "memory: ${b#WRKCOUNT } -> $rss2"
  kill -TERM "$sampler" 2>/dev/null || true
  line="requests=$(( $(kv requests "$a") + $(kv requests "$b") )) mark_requests=$(kv requests "$a")"
  line="$line goal=$MEM_REQUESTS rps=$(kv rps "$b") p99_ms=$(kv p99_ms "$b")"
  line="$line errors=$(( $(kv errors "$a") + $(kv errors "$b") )) procs=$(kv procs "$rss2")"
  line="$line rss_start_kb=$(kv rss_kb "$rss0") rss_mark_kb=$(kv rss_kb "$rss1")"
  line="$line rss_end_kb=$(kv rss_kb "$rss2") rss_end_total_kb=$(kv rss_total_kb "$rss2")"
  line="$line duration_s=$(awk -v x="$(kv duration_s "$a")" -v y="$(kv duration_s "$b")" 'BEGIN{print x+y}')"
  printf '%s\t%s\t%s\t%s\t%s\n' memory 1 gateway "$MEM_PATH" "$line" >> "$TSV"
fi

# ---- profile (py-spy)
if want profile; then
  pyspy="$ROOT/.venv/bin/py-spy"
  [[ -x "$pyspy" ]] || die "py-spy missing: .venv/bin/pip install py-spy"
  [[ -n "$GW_PID" ]] || start_gateway
  req_path="$("$PY" -c 'import json,sys;print(json.load(open(sys.argv[1]))["bench_paths"][sys.argv[2]])' \
    "$BENCH_STATE/fixtures/manifest.json" "$PROFILE_PATH" 2>/dev/null || echo "$PROFILE_PATH")"
  taskset -c "$LOAD_CPUS" wrk -t1 -c"${CONNS:-32}" -d"$(( PROFILE_SECONDS + 3 ))s" \
    -s "$HARNESS/wrk_report.lua" "http://127.0.0.1:$GW_PORT$req_path" > "$OUT/wrk-profile.out" 2>&1 &
  wpid=$!
  BG_PIDS+=("$wpid")
  sleep 1
  # the worker processes if there are any, else the gateway itself
  ppids="$(gw_pids | tail -n +2 | paste -sd' ' -)"; [[ -n "$ppids" ]] || ppids="$GW_PID"
  spies=()
  for p in $ppids; do
    "$pyspy" record -o "$OUT/profile-$p.json" -f speedscope --pid "$p" -d "$PROFILE_SECONDS" \
      -r 200 > "$OUT/py-spy-$p.log" 2>&1 &
    spies+=("$!")
    BG_PIDS+=("$!")
  done
  for p in "${spies[@]}"; do wait "$p" || true; done
  BG_PIDS=()
  wait "$wpid" || true
  grep '^WRKJSON' "$OUT/wrk-profile.out" >&2 || true
  for p in $ppids; do
    echo "== profile of pid $p under $PROFILE_PATH load: $OUT/profile-$p.json (speedscope)"
    "$PY" "$HERE/profile_summary.py" "$OUT/profile-$p.json" --top 20
  done
fi

# ---- report
if grep -qv '^section' "$TSV"; then
  "$PY" "$HERE/report.py" "$TSV" --meta "$OUT/meta.txt" --markdown "$OUT/report.md"
  echo
  echo "raw: $TSV"
  echo "markdown: $OUT/report.md"
fi
