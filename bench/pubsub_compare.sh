#!/usr/bin/env bash
# Publish-subscribe: Redis PUBLISH/SUBSCRIBE against shoal's cluster-wide PUBLISH/SUBSCRIBE, in
# one run, with the same client (bench/pubsub_bench.cc: plain sockets, raw RESP2, one thread).
#
# Usage: bench/pubsub_compare.sh [--help]
#
# Environment:
#   PUBSUB_BENCH    the client binary (default: <repo>/build-bench/bench/pubsub_bench, else
#                   <repo>/build/bench/pubsub_bench)
#   SHOAL_BIN       shoal binary (default: <repo>/build-bench/shoal, else <repo>/build/shoal)
#   SHOAL_THREADS   worker threads per shoal node (default: 1)
#   REDIS_SERVER    redis-server binary (default: redis-server from PATH)
#   SUBSCRIBERS     subscriber connections (default: 10)
#   MESSAGES        PUBLISHes in the throughput run (default: 500000)
#   BATCH           PUBLISHes per pipelined batch (default: 64)
#   WINDOW          batches in flight (default: 4)
#   PAYLOAD         message bytes (default: 16)
#   LATENCY_N       sequential PUBLISHes for the latency run (default: 20000)
#   BENCH_SECONDS   deadline per phase inside the client (default: 60)
#
# Runs, one after the other (never two servers at once):
#   redis         one redis-server (--save '' --appendonly no); S subscribers and the publisher
#                 on it;
#   shoal-1       one shoal node (cluster-enabled no): the same shape, for reference;
#   shoal-3       three shoal nodes joined with --seeds (one cookie); the S subscribers spread
#                 round-robin over the three nodes, the publisher on node 1: every PUBLISH is
#                 delivered on node 1 and sent once to each of the two other nodes.
# For each: throughput (M PUBLISHes in batches of B, W batches in flight, the deliveries counted
# on the subscribers until all M*S arrived or the deadline passed) and the round trip of N
# sequential PUBLISHes (p50/p99). Prints a table with shoal/redis.
# Every server listens on a free loopback port; only the processes this script started are
# stopped, by pid, on exit. Client and servers share the machine's cores.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/.." && pwd)"

for arg in "$@"; do
  case "$arg" in
    -h|--help) sed -n '2,34p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "unknown argument: $arg (try --help)" >&2; exit 2 ;;
  esac
done

first_of() { local f; for f in "$@"; do [[ -x $f ]] && { echo "$f"; return; }; done; echo "$1"; }
client="${PUBSUB_BENCH:-$(first_of "$repo/build-bench/bench/pubsub_bench" "$repo/build/bench/pubsub_bench")}"
shoal_bin="${SHOAL_BIN:-$(first_of "$repo/build-bench/shoal" "$repo/build/shoal")}"
shoal_threads="${SHOAL_THREADS:-1}"
redis_bin="${REDIS_SERVER:-redis-server}"
subscribers="${SUBSCRIBERS:-10}"
messages="${MESSAGES:-500000}"
batch="${BATCH:-64}"
window="${WINDOW:-4}"
payload="${PAYLOAD:-16}"
latency_n="${LATENCY_N:-20000}"
bench_seconds="${BENCH_SECONDS:-60}"
cookie="pubsub-compare-$$"

for tool in redis-cli python3 timeout "$redis_bin"; do
  command -v "$tool" >/dev/null 2>&1 || { echo "missing tool: $tool" >&2; exit 1; }
done
[[ -x $client ]] || { echo "client not found: $client (cmake --build build-bench --target pubsub_bench)" >&2; exit 1; }
[[ -x $shoal_bin ]] || { echo "shoal binary not found: $shoal_bin" >&2; exit 1; }

# The nodes get their settings from the command line only: no SHOAL_* variable of the caller's.
shoal_env=(env)
for v in $(compgen -e); do [[ $v == SHOAL_* ]] && shoal_env+=(-u "$v"); done

workdir="$(mktemp -d "${TMPDIR:-/tmp}/shoal-pubsub-compare.XXXXXX")"
pids=()        # servers started and not stopped yet
client_pid=""  # the client run in progress

stop_servers() {
  # redis: SIGTERM; shoal: SIGKILL at once (a SIGTERM makes a node leave gracefully first, which
  # is pointless here). Then SIGKILL whatever is still there after 5 s.
  local pid
  for pid in "${pids[@]}"; do
    if kill -0 "$pid" 2>/dev/null; then
      if [[ -e "$workdir/shoal.$pid" ]]; then kill -KILL "$pid" 2>/dev/null || true
      else kill -TERM "$pid" 2>/dev/null || true; fi
    fi
  done
  for pid in "${pids[@]}"; do
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null || true
  done
  pids=()
}
started() { pids+=("$1"); [[ ${2:-} == shoal ]] && touch "$workdir/shoal.$1"; disown "$1"; }
cleanup() {
  if [[ -n $client_pid ]]; then kill -TERM "$client_pid" 2>/dev/null || true; wait "$client_pid" 2>/dev/null || true; fi
  stop_servers
  rm -rf "$workdir"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {  # a loopback port free a moment ago, below 55000 (so port + 10000 is valid too)
  python3 -c '
import socket
while True:
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]
    if p < 55000:
        t = socket.socket()
        try:
            t.bind(("127.0.0.1", p + 10000)); t.close(); print(p); break
        except OSError:
            pass
    s.close()'
}
wait_for() {  # deadline-seconds description command...
  local secs=$1 what=$2; shift 2
  local deadline=$((SECONDS + secs))
  while (( SECONDS < deadline )); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.1
  done
  echo "timed out after ${secs}s waiting for $what" >&2
  return 1
}
pings() { [[ "$(timeout 2 redis-cli -h 127.0.0.1 -p "$1" ping 2>/dev/null)" == PONG ]]; }
load() { cut -d' ' -f1-3 /proc/loadavg; }
# Every node sees `n` alive members (INFO membership).
members_alive() {
  local n=$1 port; shift
  for port in "$@"; do
    [[ "$(redis-cli -h 127.0.0.1 -p "$port" info membership 2>/dev/null | tr -d '\r' |
          sed -n 's/^members_alive://p')" == "$n" ]] || return 1
  done
}

declare -A result  # result[label,key]

run_client() {  # label pub-port sub-ports
  local label=$1 pub=$2 subs=$3 out="$workdir/client.$1.out" line kv
  echo "# $label: publisher on $pub, subscribers on $subs, load $(load)" >&2
  timeout $((bench_seconds * 3 + 60)) "$client" --label "$label" --pub "$pub" --sub "$subs" \
    --subscribers "$subscribers" --messages "$messages" --batch "$batch" --window "$window" \
    --payload "$payload" --latency "$latency_n" --seconds "$bench_seconds" >"$out" 2>&1 &
  client_pid=$!
  if ! wait "$client_pid"; then echo "# $label: the client failed or did not deliver everything:" >&2; fi
  client_pid=""
  grep -v '^RESULT' "$out" | sed 's/^/#   /' >&2
  line="$(grep '^RESULT' "$out" || true)"
  for kv in $line; do
    [[ $kv == *=* ]] && result[$label,${kv%%=*}]="${kv#*=}"
  done
}

bench_redis() {
  local port
  port="$(free_port)"
  "$redis_bin" --bind 127.0.0.1 --port "$port" --save '' --appendonly no --daemonize no \
    --dir "$workdir" >"$workdir/redis.log" 2>&1 &
  started $!
  wait_for 15 "redis-server on $port" pings "$port"
  run_client redis "$port" "$port"
  stop_servers
}

bench_shoal_single() {
  local port
  port="$(free_port)"
  "${shoal_env[@]}" "$shoal_bin" serve --port "$port" --threads "$shoal_threads" --http-port -1 \
    --cookie "$cookie" --set cluster-enabled=no >"$workdir/shoal-1.log" 2>&1 &
  started $! shoal
  wait_for 15 "shoal on $port" pings "$port"
  run_client shoal-1 "$port" "$port"
  stop_servers
}

bench_shoal_cluster() {
  local ports=() port cport seeds="" i
  for i in 1 2 3; do
    port="$(free_port)"; cport="$(free_port)"
    ports+=("$port")
    "${shoal_env[@]}" "$shoal_bin" serve --port "$port" --threads "$shoal_threads" --cluster-port "$cport" \
      --http-port -1 --cookie "$cookie" ${seeds:+--seeds "$seeds"} >"$workdir/shoal-$port.log" 2>&1 &
    started $! shoal
    [[ -z $seeds ]] && seeds="127.0.0.1:$cport"
    wait_for 15 "shoal on $port" pings "$port"
  done
  wait_for 60 "three alive members on every node" members_alive 3 "${ports[@]}"
  sleep 1  # let the bucket hand-over of the empty nodes finish
  run_client shoal-3 "${ports[0]}" "$(IFS=,; echo "${ports[*]}")"
  stop_servers
}

echo "# client: $client; shoal: $shoal_bin (--threads $shoal_threads per node); redis: $("$redis_bin" --version | cut -d' ' -f1-3)" >&2
echo "# $subscribers subscribers, $messages PUBLISHes of $payload B in batches of $batch ($window in flight)," \
     "$latency_n sequential PUBLISHes for latency; $(nproc) cores shared by the client and the servers" >&2
bench_redis
bench_shoal_single
bench_shoal_cluster

ratio() {
  python3 -c 'import sys
try: print("%.2fx" % (float(sys.argv[1]) / float(sys.argv[2])))
except Exception: print("n/a")' "${1:-}" "${2:-}"
}

echo
echo "Pub-sub: $subscribers subscribers on one channel, $messages PUBLISHes of $payload B (batches of $batch," \
     "$window in flight); latency: $latency_n sequential PUBLISH round trips"
printf '%-8s %12s %12s %12s %10s %10s %10s %10s\n' server delivered "deliveries/s" "PUBLISH/s" "vs redis" \
  "p50 us" "p99 us" "p99.9 us"
for label in redis shoal-1 shoal-3; do
  printf '%-8s %12s %12s %12s %10s %10s %10s %10s\n' "$label" "${result[$label,delivered]:-n/a}" \
    "${result[$label,deliveries_per_s]:-n/a}" "${result[$label,publishes_per_s]:-n/a}" \
    "$(ratio "${result[$label,deliveries_per_s]:-}" "${result[redis,deliveries_per_s]:-}")" \
    "${result[$label,lat_p50_us]:-n/a}" "${result[$label,lat_p99_us]:-n/a}" "${result[$label,lat_p999_us]:-n/a}"
done
echo "(shoal-1: one node; shoal-3: subscribers spread over three nodes, publisher on node 1;" \
     "expected deliveries: $((messages * subscribers)))"
