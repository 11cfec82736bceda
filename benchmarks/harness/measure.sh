#!/usr/bin/env bash
# One measurement of one target: correctness check, warmup, wrk --latency run, one line out.
#
#   measure.sh PORT [PATH]
#
# PATH: a request path, or an alias from $BENCH_STATE/fixtures/manifest.json:
#   list       /marketplace/InstalledAddOns?PageSize=50      (50 records, ~35 KB)  [default]
#   single     /marketplace/InstalledAddOns/XE<32 hex>       (~1 KB)
#   extensions /marketplace/AvailableAddOns/XB<32 hex>/Extensions
# On the upstream's own port (UPSTREAM_PORT, 18081) a /marketplace/ path is sent as /v1/...
#
# Prints ONE line on stdout, e.g.
#   rps=21034.5 p50_ms=1.402 p99_ms=2.731 errors=0 ... port=18082 path=... check=ok contaminated=no ...
# errors = non-2xx/3xx responses + socket errors (connect, read, write, timeout).
#
# Load generator: wrk, ONE thread (THREADS=1), CONNS=32 connections, pinned with taskset to
# LOAD_CPUS (default CPU 1; the system under test is meant to sit on CPU 0, see servers.sh).
# Closed loop: latency is per-request service time at fixed concurrency (no coordinated-
# omission correction). Raw wrk output goes to $BENCH_STATE/logs/ (BENCH_STATE defaults to
# ${TMPDIR:-/tmp}/marketplace-bench; nothing is written next to this script).
#
# Env: DURATION=10s WARMUP=3s CONNS=32 THREADS=1 LOAD_CPUS=1 PIN=1 CHECK=1 EXPECT_BASE=
#      UPSTREAM_PORT=18081 LABEL=
#      QUIET_WAIT=0   wait up to this many seconds for whole-box CPU <= BUSY_PCT (15) before
#                     loading (bg_cpu_before= reports what was seen)
#      FOREIGN_MAX=10 CPU% (of one core) used DURING the run by processes that are not ours
#                     (not the target/upstream listeners, $BENCH_STATE/run/*.pid trees or wrk)
#                     above which the line says contaminated=yes; see cpu_guard.py
# sut_cpu / load_cpu: CPU% (of one core) used during the run by the target (listeners on
# PORT and their children) and by wrk + upstream. sut_cpu near 100 per pinned core = the
# target is the bottleneck; load_cpu near 100 with sut_cpu well below = the load side is.
# calib_ms: calib.py on SUT_CPUS just before the run (host-speed probe; lower = faster host).
set -euo pipefail

BENCH="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
STATE="$(realpath -m "${BENCH_STATE:-${TMPDIR:-/tmp}/marketplace-bench}")"
case "$STATE/" in "$(realpath "$BENCH")"/*)
  echo "measure.sh: BENCH_STATE ($STATE) must be outside $BENCH" >&2; exit 2 ;; esac
export BENCH_STATE="$STATE"
PORT="${1:?usage: measure.sh PORT [PATH|list|single|extensions]}"
PATH_ARG="${2:-list}"
DURATION="${DURATION:-10s}"
WARMUP="${WARMUP:-3s}"
CONNS="${CONNS:-32}"
THREADS="${THREADS:-1}"
LOAD_CPUS="${LOAD_CPUS:-1}"
PIN="${PIN:-1}"
CHECK="${CHECK:-1}"
UPSTREAM_PORT="${UPSTREAM_PORT:-18081}"
BUSY_PCT="${BUSY_PCT:-15}"
QUIET_WAIT="${QUIET_WAIT:-0}"
FOREIGN_MAX="${FOREIGN_MAX:-10}"
LOGS="$STATE/logs"; mkdir -p "$LOGS"
case "$DURATION" in
  *ms) echo "measure.sh: DURATION in ms is too short" >&2; exit 2 ;;
  *m) DUR_S=$(( ${DURATION%m} * 60 )) ;;
  *s) DUR_S="${DURATION%s}" ;;
  *) DUR_S="$DURATION" ;;
esac

command -v wrk >/dev/null || { echo "measure.sh: wrk not installed (run benchmarks/setup.sh)" >&2; exit 3; }
MANIFEST="$STATE/fixtures/manifest.json"
case "$PATH_ARG" in
  list|single|extensions)
    [[ -f "$MANIFEST" ]] || python3 "$BENCH/make_fixtures.py" --out "$STATE/fixtures" >/dev/null
    REQ_PATH="$(python3 -c 'import json,sys;print(json.load(open(sys.argv[1]))["bench_paths"][sys.argv[2]])' "$MANIFEST" "$PATH_ARG")" ;;
  /*) REQ_PATH="$PATH_ARG" ;;
  *) echo "measure.sh: PATH must start with / or be list|single|extensions" >&2; exit 2 ;;
esac
if [[ "$PORT" == "$UPSTREAM_PORT" && "$REQ_PATH" == /marketplace/* ]]; then
  REQ_PATH="/v1/${REQ_PATH#/marketplace/}"
fi
URL="http://127.0.0.1:$PORT$REQ_PATH"

# CPU busy % of the whole box over 1 s, taken before warmup while our servers are idle:
# anything well above 0 means another process is competing for the 2 cores.
bg_cpu() {
  local a b
  read -r _ u n s i w x y z _ < /proc/stat; a=("$((u+n+s+x+y+z))" "$((u+n+s+i+w+x+y+z))")
  sleep 1
  read -r _ u n s i w x y z _ < /proc/stat; b=("$((u+n+s+x+y+z))" "$((u+n+s+i+w+x+y+z))")
  echo $(( 100 * (b[0] - a[0]) / (b[1] - a[1] > 0 ? b[1] - a[1] : 1) ))
}

check="skipped"
if [[ "$CHECK" == 1 ]]; then
  if out="$(python3 "$BENCH/check_response.py" "$URL" ${EXPECT_BASE:+--expect-base "$EXPECT_BASE"})"; then
    check=ok
  else
    echo "rps=0 p50_ms=NA p99_ms=NA errors=NA port=$PORT path=$REQ_PATH check=FAIL reason=\"${out#FAIL: }\"${LABEL:+ label=$LABEL}"
    exit 1
  fi
fi

# Wait (up to QUIET_WAIT s) for the box to be quiet before loading it.
BG="$(bg_cpu)"; waited=0
while (( BG > BUSY_PCT && waited < QUIET_WAIT )); do sleep 4; waited=$(( waited + 5 )); BG="$(bg_cpu)"; done
busy=no; (( BG > BUSY_PCT )) && busy=yes

SUT_CPUS="${SUT_CPUS:-0}"
CALIBCMD=(python3 "$BENCH/calib.py")
[[ "$PIN" == 1 ]] && CALIBCMD=(taskset -c "$SUT_CPUS" "${CALIBCMD[@]}")
CALIB="$("${CALIBCMD[@]}" 2>/dev/null || echo NA)"

PINCMD=()
[[ "$PIN" == 1 ]] && PINCMD=(taskset -c "$LOAD_CPUS")
"${PINCMD[@]}" wrk -t"$THREADS" -c"$CONNS" -d"$WARMUP" -s "$BENCH/wrk_report.lua" "$URL" >/dev/null 2>&1 || true
ts="$(date +%Y%m%d-%H%M%S)"
raw="$LOGS/wrk-$ts-$PORT${LABEL:+-$LABEL}.txt"
# CPU accounting groups (cpu_guard.py): sut = whatever listens on PORT; load = wrk plus the
# upstream (when it is not itself the target); ours = the rest of $BENCH_STATE/run/*.pid.
listeners() { ss -ltnpH "( sport = :$1 )" 2>/dev/null | grep -o 'pid=[0-9]*' | cut -d= -f2 | paste -sd, -; }
sut_pids="$(listeners "$PORT")"
up_pids=""; [[ "$PORT" != "$UPSTREAM_PORT" ]] && up_pids="$(listeners "$UPSTREAM_PORT")"
ours="$$"
for f in "$STATE"/run/*.pid; do [[ -s "$f" ]] && ours="$ours,$(cat "$f")"; done
snap0="$(mktemp)"; snap1="$(mktemp)"
python3 "$BENCH/cpu_guard.py" snap "$snap0"
t0=$(date +%s.%N)
"${PINCMD[@]}" wrk -t"$THREADS" -c"$CONNS" -d"$DURATION" --latency -s "$BENCH/wrk_report.lua" "$URL" > "$raw" 2>&1 &
wpid=$!
# second snapshot shortly BEFORE wrk ends, so wrk itself is still there to be counted
sleep "$(awk -v d="$DUR_S" 'BEGIN{print (d > 1.5 ? d - 0.5 : d * 0.6)}')"
python3 "$BENCH/cpu_guard.py" snap "$snap1"
t1=$(date +%s.%N)
wait "$wpid" || true
guard="$(python3 "$BENCH/cpu_guard.py" report "$snap0" "$snap1" "$(awk -v a="$t0" -v b="$t1" 'BEGIN{print b-a}')" \
  "sut=$sut_pids" "load=$wpid,$up_pids" "ours=$ours")"
rm -f "$snap0" "$snap1"
echo "$guard" >> "$raw"

line="$(grep '^WRKJSON ' "$raw" | head -1 | cut -d' ' -f2-)"
if [[ -z "$line" ]]; then
  echo "rps=0 p50_ms=NA p99_ms=NA errors=NA port=$PORT path=$REQ_PATH check=$check wrk=failed raw=$raw${LABEL:+ label=$LABEL}"
  exit 1
fi
python3 - "$line" "$PORT" "$REQ_PATH" "$check" "$BG" "$busy" "$CONNS" "$THREADS" "$DURATION" "$raw" "${LABEL:-}" "$guard" "$FOREIGN_MAX" "$CALIB" <<'EOF'
import json, sys
d = json.loads(sys.argv[1])
port, path, check, bg, busy, conns, threads, dur, raw, label, guard, fmax, calib = sys.argv[2:]
g = dict(kv.split("=", 1) for kv in guard.split())
contaminated = "yes" if float(g["foreign_cpu"]) > float(fmax) else "no"
sock = d["err_connect"] + d["err_read"] + d["err_write"] + d["err_timeout"]
print("rps=%.1f p50_ms=%.3f p99_ms=%.3f errors=%d non2xx=%d sock_err=%d port=%s path=%s check=%s "
      "contaminated=%s foreign_cpu=%s%% foreign_top=%s bg_cpu_before=%s%% sut_cpu=%s%% load_cpu=%s%% "
      "calib_ms=%s conns=%s threads=%s dur=%s requests=%d p90_ms=%.3f max_ms=%.3f raw=%s%s" % (
      d["rps"], d["p50_ms"], d["p99_ms"], d["errors"], d["err_status"], sock, port, path, check,
      contaminated, g["foreign_cpu"], g["foreign_top"], bg, g["sut_cpu"], g["load_cpu"], calib,
      conns, threads, dur, d["requests"], d["p90_ms"], d["max_ms"], raw,
      (" label=" + label) if label else ""))
EOF
