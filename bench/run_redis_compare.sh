#!/usr/bin/env bash
# Throughput comparison: shoal vs the system redis-server, measured with redis-benchmark.
#
# Usage: bench/run_redis_compare.sh [--quick] [--help]
#
#   --quick   100,000 requests per test instead of 1,000,000.
#
# Environment:
#   SHOAL_BIN       shoal binary (default: <repo>/build/shoal)
#   SHOAL_THREADS   shoal worker threads (default: 2)
#   REDIS_SERVER    redis-server binary (default: redis-server from PATH)
#   BENCH_TIMEOUT   seconds allowed per redis-benchmark run (default: 600, 120 with --quick)
#
# For each server, one after the other (never both at once, so they do not compete for
# the cores), it runs
#   redis-benchmark -h 127.0.0.1 -p PORT -t set,get -n N -c 50 -r 100000 -P 1  -q --csv
#   redis-benchmark -h 127.0.0.1 -p PORT -t set,get -n N -c 50 -r 100000 -P 16 -q --csv
# and prints a table: test, pipeline, shoal rps, redis rps, ratio shoal/redis.
# Servers listen on free loopback ports; only the processes this script started are killed.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/.." && pwd)"

quick=0
for arg in "$@"; do
  case "$arg" in
    --quick) quick=1 ;;
    -h|--help) sed -n '2,20p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "unknown argument: $arg (try --help)" >&2; exit 2 ;;
  esac
done

shoal_bin="${SHOAL_BIN:-$repo/build/shoal}"
shoal_threads="${SHOAL_THREADS:-2}"
redis_bin="${REDIS_SERVER:-redis-server}"
if [[ $quick == 1 ]]; then n=100000; bench_timeout="${BENCH_TIMEOUT:-120}"; else n=1000000; bench_timeout="${BENCH_TIMEOUT:-600}"; fi
pipelines=(1 16)
tests=(SET GET)

for tool in redis-benchmark redis-cli python3 timeout "$redis_bin"; do
  command -v "$tool" >/dev/null 2>&1 || { echo "missing tool: $tool" >&2; exit 1; }
done
[[ -x "$shoal_bin" ]] || { echo "shoal binary not found or not executable: $shoal_bin (build it: ninja -C build shoal)" >&2; exit 1; }

workdir="$(mktemp -d "${TMPDIR:-/tmp}/shoal-redis-compare.XXXXXX")"
server_pid=""

stop_server() {
  # Stop the one server this script started (if any), escalating to SIGKILL after 5 s.
  if [[ -n "$server_pid" ]] && kill -0 "$server_pid" 2>/dev/null; then
    kill -TERM "$server_pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$server_pid" 2>/dev/null && kill -KILL "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  server_pid=""
}
cleanup() { stop_server; rm -rf "$workdir"; }
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

wait_for_ping() {  # port, pid, log
  local port=$1 pid=$2 log=$3 deadline=$((SECONDS + 15))
  while (( SECONDS < deadline )); do
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "server (pid $pid) exited before answering PING; its log:" >&2; tail -n 20 "$log" >&2; return 1
    fi
    if [[ "$(timeout 2 redis-cli -h 127.0.0.1 -p "$port" ping 2>/dev/null)" == PONG ]]; then return 0; fi
    sleep 0.1
  done
  echo "server on port $port did not answer PING within 15 s; its log:" >&2; tail -n 20 "$log" >&2
  return 1
}

declare -A rps  # rps[server,test,pipeline]

run_server() {  # name
  local name=$1 port log
  port="$(free_port)"
  log="$workdir/$name.log"
  if [[ $name == shoal ]]; then
    "$shoal_bin" serve --port "$port" --threads "$shoal_threads" >"$log" 2>&1 &
  else
    "$redis_bin" --port "$port" --save "" --appendonly no --daemonize no >"$log" 2>&1 &
  fi
  server_pid=$!
  wait_for_ping "$port" "$server_pid" "$log"
  echo "# $name: pid $server_pid, port $port, load average: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
  local p out line test val
  for p in "${pipelines[@]}"; do
    out="$workdir/$name.P$p.csv"
    if ! timeout "$bench_timeout" redis-benchmark -h 127.0.0.1 -p "$port" -t set,get -n "$n" -c 50 -r 100000 \
         -P "$p" -q --csv >"$out" 2>"$workdir/$name.P$p.err"; then
      echo "redis-benchmark against $name (-P $p) failed or timed out after ${bench_timeout}s" >&2
      cat "$workdir/$name.P$p.err" >&2
    fi
    while IFS= read -r line; do
      line="${line//\"/}"
      test="${line%%,*}"; val="${line#*,}"; val="${val%%,*}"
      [[ $test == test ]] && continue
      [[ -n $test ]] && rps[$name,$test,$p]="$val"
    done <"$out"
    echo "#   -P $p: $(grep -v '^"test"' "$out" | cut -d, -f1,2 | tr -d '"' | tr '\n' ' ')" >&2
  done
  stop_server
}

echo "# shoal: $shoal_bin (--threads $shoal_threads); redis: $("$redis_bin" --version | cut -d' ' -f1-3)" >&2
echo "# requests per test: $n, clients: 50, keyspace: 100000, $(nproc) cores" >&2
run_server shoal
run_server redis

printf '%-6s %-8s %14s %14s %12s\n' test pipeline "shoal rps" "redis rps" shoal/redis
for t in "${tests[@]}"; do
  for p in "${pipelines[@]}"; do
    s="${rps[shoal,$t,$p]:-}"; r="${rps[redis,$t,$p]:-}"
    ratio="$(python3 -c 'import sys
try: print("%.2fx" % (float(sys.argv[1]) / float(sys.argv[2])))
except Exception: print("n/a")' "$s" "$r")"
    printf '%-6s %-8s %14s %14s %12s\n' "$t" "$p" "${s:-n/a}" "${r:-n/a}" "$ratio"
  done
done
