#!/usr/bin/env bash
# Start/stop the bench servers, each tracked by its own PID file in $BENCH_STATE/run/.
#
#   servers.sh start  NAME...   upstream | peer1 | peer2 | yard | yarduv
#   servers.sh stop   NAME...   (or: all)
#   servers.sh status
#
#   upstream  nginx, static Marketplace v1 fixtures      127.0.0.1:$UPSTREAM_PORT (18081)
#   peer1     nginx peer gateway, 1 worker               127.0.0.1:$PEER_PORT     (18082)
#   peer2     nginx peer gateway, 2 workers (same port; starting one stops the other)
#   yard      aiohttp yardstick proxy, asyncio loop      127.0.0.1:18090
#   yarduv    aiohttp yardstick proxy, uvloop            127.0.0.1:18091
#
# CPU layout (2-core box): the system under test (peer1, yard, yarduv) is pinned to
# SUT_CPUS (default 0); the upstream and the load generator share LOAD_CPUS (default 1).
# peer2 gets one worker per core ("auto"), i.e. it competes with wrk and the upstream;
# PEER2_AFFINITY=off leaves its workers unpinned (the scheduler places them).
# PIN=0 disables all pinning.
# Peer upstream: PEER_UPSTREAM_PORT (default $UPSTREAM_PORT).
# Only processes whose PID is in $BENCH_STATE/run/*.pid are ever signalled.
# State (PID files, rendered configs, logs, fixtures) lives in BENCH_STATE
# (default ${TMPDIR:-/tmp}/marketplace-bench), never in this folder.
set -euo pipefail

BENCH="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
STATE="$(realpath -m "${BENCH_STATE:-${TMPDIR:-/tmp}/marketplace-bench}")"
case "$STATE/" in "$(realpath "$BENCH")"/*)
  echo "servers.sh: BENCH_STATE ($STATE) must be outside $BENCH" >&2; exit 2 ;; esac
export BENCH_STATE="$STATE"
RUN="$STATE/run"
LOGS="$STATE/logs"
FIXTURES="$STATE/fixtures"
UPSTREAM_PORT="${UPSTREAM_PORT:-18081}"
PEER_PORT="${PEER_PORT:-18082}"
PEER_UPSTREAM_PORT="${PEER_UPSTREAM_PORT:-$UPSTREAM_PORT}"
YARD_PORT="${YARD_PORT:-18090}"
YARDUV_PORT="${YARDUV_PORT:-18091}"
SUT_CPUS="${SUT_CPUS:-0}"
LOAD_CPUS="${LOAD_CPUS:-1}"
PIN="${PIN:-1}"
NGINX="${NGINX:-$(command -v nginx || echo /usr/sbin/nginx)}"
# The yardstick runs on the project's own .venv (its aiohttp and uvloop); YARD_PYTHON overrides.
PY_BENCH="${YARD_PYTHON:-$(cd "$BENCH/../.." && pwd)/.venv/bin/python}"
mkdir -p "$RUN" "$LOGS"

die() { echo "servers.sh: $*" >&2; exit 1; }

# "0" -> "1", "1" -> "10", "0,1" -> "11": nginx worker_cpu_affinity bitmask
cpu_mask() {
  local m=0 c
  for c in ${1//,/ }; do m=$(( m | (1 << c) )); done
  local s=""; while (( m > 0 )); do s="$(( m & 1 ))$s"; m=$(( m >> 1 )); done
  echo "$s"
}
pin_prefix() { # CPUS -> "taskset -c CPUS" or nothing
  if [[ "$PIN" == 1 && -n "$1" ]]; then echo "taskset -c $1"; fi
}

pidfile() { echo "$RUN/$1.pid"; }
# which executable a tracked PID must be (guards against a recycled PID)
expect_comm() {
  case "$1" in upstream|peer) echo nginx ;; yard|yarduv) echo python ;; esac
}
alive() { # NAME -> 0 if its PID file names a live process of the right kind
  local f pid comm; f="$(pidfile "$1")"
  [[ -s "$f" ]] || return 1
  pid="$(cat "$f")"; [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  comm="$(cat /proc/"$pid"/comm 2>/dev/null || true)"
  [[ "$comm" == "$(expect_comm "$1")"* ]]
}

wait_http() { # PORT PATH SECONDS
  local i
  for (( i = 0; i < $3 * 10; i++ )); do
    if curl -s -o /dev/null -m 1 "http://127.0.0.1:$1$2"; then return 0; fi
    sleep 0.1
  done
  return 1
}
port_busy() { [[ -n "$(ss -ltnH "( sport = :$1 )" 2>/dev/null)" ]]; }

render() { # TEMPLATE OUT key=value...
  local tmpl="$1" out="$2"; shift 2
  local content; content="$(cat "$tmpl")"
  local kv
  for kv in "$@"; do content="${content//@${kv%%=*}@/${kv#*=}}"; done
  if [[ "$PIN" != 1 ]]; then content="$(grep -v '^worker_cpu_affinity' <<<"$content")"; fi
  printf '%s\n' "$content" > "$out"
}

start_upstream() {
  alive upstream && { echo "upstream already running (pid $(cat "$(pidfile upstream)"))"; return; }
  port_busy "$UPSTREAM_PORT" && die "port $UPSTREAM_PORT busy (not ours?)"
  [[ -f "$FIXTURES/manifest.json" ]] || python3 "$BENCH/make_fixtures.py" --out "$FIXTURES" >/dev/null
  local conf="$RUN/upstream.conf"
  render "$BENCH/nginx/upstream.conf.tmpl" "$conf" RUN="$RUN" LOGS="$LOGS" \
    FIXTURES="$FIXTURES" UPSTREAM_PORT="$UPSTREAM_PORT" UP_AFFINITY="$(cpu_mask "$LOAD_CPUS")"
  "$NGINX" -q -t -p "$RUN" -c "$conf" -e "$LOGS/upstream-error.log"
  $(pin_prefix "$LOAD_CPUS") "$NGINX" -p "$RUN" -c "$conf" -e "$LOGS/upstream-error.log"
  wait_http "$UPSTREAM_PORT" /v1/InstalledAddOns 10 || die "upstream did not come up"
  echo "upstream up: 127.0.0.1:$UPSTREAM_PORT pid $(cat "$(pidfile upstream)") (worker cpus: $([[ $PIN == 1 ]] && echo "$LOAD_CPUS" || echo any))"
}

start_peer() { # WORKERS
  local workers="$1" aff
  if [[ "$workers" == 1 ]]; then aff="$(cpu_mask "$SUT_CPUS")"; else aff="${PEER2_AFFINITY:-auto}"; fi
  [[ "$PIN" == 1 ]] || aff=off
  if alive peer; then
    if [[ "$(cat "$RUN/peer.workers" 2>/dev/null)" == "$workers:$PEER_UPSTREAM_PORT:$aff" ]]; then
      echo "peer$workers already running (pid $(cat "$(pidfile peer)"))"; return
    fi
    stop_one peer
  fi
  port_busy "$PEER_PORT" && die "port $PEER_PORT busy (not ours?)"
  local conf="$RUN/peer.conf"
  render "$BENCH/nginx/peer.conf.tmpl" "$conf" RUN="$RUN" LOGS="$LOGS" WORKERS="$workers" \
    PEER_PORT="$PEER_PORT" UPSTREAM_PORT="$PEER_UPSTREAM_PORT" PEER_AFFINITY="$aff"
  if [[ "$aff" == off ]]; then sed -i '/^worker_cpu_affinity/d' "$conf"; fi
  "$NGINX" -q -t -p "$RUN" -c "$conf" -e "$LOGS/peer-error.log"
  if [[ "$workers" == 1 ]]; then
    $(pin_prefix "$SUT_CPUS") "$NGINX" -p "$RUN" -c "$conf" -e "$LOGS/peer-error.log"
  else
    "$NGINX" -p "$RUN" -c "$conf" -e "$LOGS/peer-error.log"
  fi
  echo "$workers:$PEER_UPSTREAM_PORT:$aff" > "$RUN/peer.workers"
  wait_http "$PEER_PORT" /marketplace/ 10 || die "peer did not come up"
  echo "peer$workers up: 127.0.0.1:$PEER_PORT -> 127.0.0.1:$PEER_UPSTREAM_PORT pid $(cat "$(pidfile peer)") workers=$workers affinity=$aff"
}

start_yard() { # NAME PORT [--uvloop]
  local name="$1" port="$2"; shift 2
  alive "$name" && { echo "$name already running (pid $(cat "$(pidfile "$name")"))"; return; }
  port_busy "$port" && die "port $port busy (not ours?)"
  [[ -x "$PY_BENCH" ]] || die "missing $PY_BENCH (pip install -e '.[test]' in the project's .venv, or set YARD_PYTHON)"
  # shellcheck disable=SC2046
  nohup $(pin_prefix "$SUT_CPUS") "$PY_BENCH" "$BENCH/yardstick.py" --port "$port" \
    --upstream "http://127.0.0.1:$UPSTREAM_PORT" "$@" > "$LOGS/$name.log" 2>&1 &
  echo $! > "$(pidfile "$name")"
  wait_http "$port" /marketplace/ 15 || die "$name did not come up (see $LOGS/$name.log)"
  echo "$name up: 127.0.0.1:$port pid $(cat "$(pidfile "$name")") $(tail -1 "$LOGS/$name.log")"
}

stop_one() { # NAME (upstream|peer|yard|yarduv)
  local name="$1" f pid i sig=TERM
  f="$(pidfile "$name")"
  if ! alive "$name"; then rm -f "$f"; return 0; fi
  pid="$(cat "$f")"
  [[ "$(expect_comm "$name")" == nginx ]] && sig=QUIT   # graceful nginx stop
  kill -"$sig" "$pid" 2>/dev/null || true
  for (( i = 0; i < 100; i++ )); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid" 2>/dev/null || true; sleep 0.2; fi
  rm -f "$f"
  [[ "$name" == peer ]] && rm -f "$RUN/peer.workers"
  echo "stopped $name (pid $pid)"
}

status() {
  local n
  for n in upstream peer yard yarduv; do
    if alive "$n"; then
      local extra=""
      [[ "$n" == peer ]] && extra=" workers:upstream:affinity=$(cat "$RUN/peer.workers" 2>/dev/null)"
      echo "$n: running pid $(cat "$(pidfile "$n")")$extra"
    else
      echo "$n: stopped"
    fi
  done
}

cmd="${1:-status}"; shift || true
case "$cmd" in
  start)
    [[ $# -gt 0 ]] || die "start what? upstream peer1 peer2 yard yarduv"
    for n in "$@"; do
      case "$n" in
        upstream) start_upstream ;;
        peer1) start_peer 1 ;;
        peer2) start_peer 2 ;;
        yard) start_yard yard "$YARD_PORT" ;;
        yarduv) start_yard yarduv "$YARDUV_PORT" --uvloop ;;
        *) die "unknown server $n" ;;
      esac
    done ;;
  stop)
    [[ $# -gt 0 ]] || set -- all
    for n in "$@"; do
      case "$n" in
        all) for m in yard yarduv peer upstream; do stop_one "$m"; done ;;
        peer1|peer2|peer) stop_one peer ;;
        upstream|yard|yarduv) stop_one "$n" ;;
        *) die "unknown server $n" ;;
      esac
    done ;;
  status) status ;;
  *) die "usage: servers.sh start|stop|status NAME..." ;;
esac
