#!/usr/bin/env bash
# Sharded cluster throughput: a 3-master Redis Cluster vs 3 shoal nodes, and the cost of shoal's
# forwarding, measured with redis-benchmark.
#
# Usage: bench/cluster_compare.sh [--help]
#
# Environment:
#   BENCH_N         requests per redis-benchmark test at -P 1 (default: 200000)
#   BENCH_P16_SCALE at -P 16, BENCH_N times this many requests (default: 10)
#   SHOAL_BIN       shoal binary (default: <repo>/build/shoal)
#   SHOAL_THREADS   worker threads per shoal node (default: 1)
#   REDIS_SERVER    redis-server binary (default: redis-server from PATH)
#   BENCH_TIMEOUT   seconds allowed per redis-benchmark run (default: 300)
#
# Parts, one after the other (never two clusters at once):
#   (a) Redis 7: three `redis-server --cluster-enabled yes` joined with
#       `redis-cli --cluster create ... --cluster-replicas 0 --cluster-yes`;
#   (b) shoal: three nodes in `cluster-mode redirect` (MOVED/ASK, like Redis Cluster);
#       both driven by
#         redis-benchmark --cluster -p PORT -t set,get -n N -c 50 -r 100000 -P 1|16 -q --csv
#       (note: with --cluster, redis-benchmark runs a thread per master, and its run time is
#       rounded up to its 250 ms progress tick: short runs under-report; the script prints the
#       shortest run and the bound on that error);
#       and compared (table: test, pipeline, redis rps, shoal rps, shoal/redis);
#   (c) forwarding cost, plain (non-cluster) client, -c 50 -r 100000 -P 1|16:
#         direct       one shoal node, --cluster-enabled no, keys key:__rand_int__
#         via node A   three shoal nodes in forward mode, all traffic to node A: A owns ~1/3 of
#                      the random keys, the other ~2/3 are forwarded to their owners
#       and with -P 16 only, keys {TAG}:key:__rand_int__ of one hash tag that node B owns:
#         owner B      sent to B (nothing forwarded)
#         through A    sent to A, which owns none of them (everything forwarded to B)
#       (custom-command runs: `redis-benchmark ... set '{TAG}:key:__rand_int__' v` and `get ...`).
# Every server listens on loopback; only the processes this script started are stopped, by pid,
# on exit. Client and servers share the machine's cores: read the numbers with that in mind.
# With the defaults it takes about 2 minutes on 2 cores.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/.." && pwd)"

for arg in "$@"; do
  case "$arg" in
    -h|--help) sed -n '2,36p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "unknown argument: $arg (try --help)" >&2; exit 2 ;;
  esac
done

n="${BENCH_N:-200000}"
n16=$((n * ${BENCH_P16_SCALE:-10}))
shoal_bin="${SHOAL_BIN:-$repo/build/shoal}"
shoal_threads="${SHOAL_THREADS:-1}"
redis_bin="${REDIS_SERVER:-redis-server}"
bench_timeout="${BENCH_TIMEOUT:-300}"
pipelines=(1 16)
cookie="cluster-compare-$$"

for tool in redis-benchmark redis-cli python3 timeout md5sum "$redis_bin"; do
  command -v "$tool" >/dev/null 2>&1 || { echo "missing tool: $tool" >&2; exit 1; }
done
[[ -x "$shoal_bin" ]] || { echo "shoal binary not found or not executable: $shoal_bin (build it: scripts/build.sh build --target shoal)" >&2; exit 1; }

# The nodes get their settings from the command line only: no SHOAL_* variable of the caller's.
shoal_env=(env)
for v in $(compgen -e); do [[ $v == SHOAL_* ]] && shoal_env+=(-u "$v"); done

workdir="$(mktemp -d "${TMPDIR:-/tmp}/shoal-cluster-compare.XXXXXX")"
pids=()  # every server this script started and has not stopped yet

stop_servers() {
  # SIGTERM then SIGKILL for Redis. shoal nodes get SIGKILL at once: a SIGTERM makes a node hand
  # its buckets to the others first, which is pointless here.
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
started() {  # pid [shoal]: remember a server to stop (not a shell job: no "Killed" notices)
  pids+=("$1")
  [[ ${2:-} == shoal ]] && touch "$workdir/shoal.$1"
  disown "$1"
}
bench_pid=""  # the redis-benchmark run in progress (its `timeout` wrapper)
cleanup() {
  if [[ -n $bench_pid ]]; then
    kill -TERM "$bench_pid" 2>/dev/null || true
    wait "$bench_pid" 2>/dev/null || true
  fi
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

wait_for() {  # deadline-seconds description command...: polls until the command succeeds
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

declare -A rps  # rps[kind,test,pipeline]
shortest_cluster_run=""  # seconds: the shortest redis-benchmark --cluster run

# run_bench kind pipeline redis-benchmark-args...: runs it, stores rps[kind,TEST,pipeline]. The
# args are -p PORT and either -t tests or a custom command (with __rand_int__).
run_bench() {
  local kind=$1 p=$2; shift 2
  local out="$workdir/bench.$kind.P$p.$RANDOM.csv" line test val requests=$n secs
  [[ $p == 1 ]] || requests=$n16
  # The options first: redis-benchmark takes everything from the first non-option on as a command.
  # In the background, so that a signal to this script stops it at once (see cleanup).
  timeout "$bench_timeout" redis-benchmark -h 127.0.0.1 -n "$requests" -c 50 -r 100000 -P "$p" \
    -q --csv "$@" >"$out" 2>"$out.err" &
  bench_pid=$!
  if ! wait "$bench_pid"; then
    echo "redis-benchmark $* -P $p failed or timed out after ${bench_timeout}s" >&2
    cat "$out.err" >&2
  fi
  bench_pid=""
  while IFS= read -r line; do
    [[ $line == \"* ]] || continue
    line="${line//\"/}"
    test="${line%%,*}"; val="${line#*,}"; val="${val%%,*}"
    [[ $test == test ]] && continue
    test="${test%% *}"  # custom commands: "set {tag}:key:__rand_int__ v" -> "set"
    test="${test^^}"
    rps[$kind,$test,$p]="$val"
    secs="$(python3 -c 'import sys; print("%.2f" % (int(sys.argv[1]) / float(sys.argv[2])))' "$requests" "$val")"
    echo "#   $kind -P $p -n $requests: $test $val rps (${secs} s)" >&2
    if [[ " $* " == *" --cluster "* ]] && { [[ -z $shortest_cluster_run ]] ||
         python3 -c 'import sys; sys.exit(not float(sys.argv[1]) < float(sys.argv[2]))' "$secs" "$shortest_cluster_run"; }; then
      shortest_cluster_run=$secs
    fi
  done <"$out"
}

# --- (a) Redis Cluster -------------------------------------------------------------------------

redis_cluster_ok() {
  local port
  for port in "$@"; do
    redis-cli -h 127.0.0.1 -p "$port" cluster info 2>/dev/null | grep -q '^cluster_state:ok' || return 1
  done
}

bench_redis_cluster() {
  local ports=() port i
  for i in 1 2 3; do
    port="$(free_port)"
    ports+=("$port")
    "$redis_bin" --bind 127.0.0.1 --port "$port" --cluster-enabled yes --cluster-config-file "$workdir/nodes-$port.conf" \
      --save '' --appendonly no --daemonize no --dir "$workdir" >"$workdir/redis-$port.log" 2>&1 &
    started $!
    wait_for 15 "redis-server on port $port" pings "$port"
  done
  redis-cli --cluster create "127.0.0.1:${ports[0]}" "127.0.0.1:${ports[1]}" "127.0.0.1:${ports[2]}" \
    --cluster-replicas 0 --cluster-yes >"$workdir/redis-create.log" 2>&1 \
    || { cat "$workdir/redis-create.log" >&2; return 1; }
  wait_for 30 "Redis cluster_state:ok on all three" redis_cluster_ok "${ports[@]}"
  echo "# (a) Redis Cluster on ${ports[*]} (pids ${pids[*]}), load $(load)" >&2
  for p in "${pipelines[@]}"; do run_bench redis-cluster "$p" --cluster -p "${ports[0]}" -t set,get; done
  stop_servers
}

# --- shoal clusters ------------------------------------------------------------------------------

shoal_ports=()

start_shoal_cluster() {  # mode (forward|redirect)
  local mode=$1 port cport seeds="" i
  shoal_ports=()
  for i in 1 2 3; do
    port="$(free_port)"
    cport="$(free_port)"
    shoal_ports+=("$port")
    "${shoal_env[@]}" "$shoal_bin" serve --port "$port" --threads "$shoal_threads" --cluster-port "$cport" \
      --http-port -1 --cookie "$cookie" --set "cluster-mode=$mode" ${seeds:+--seeds "$seeds"} \
      >"$workdir/shoal-$port.log" 2>&1 &
    started $! shoal
    [[ -z $seeds ]] && seeds="127.0.0.1:$cport"
    wait_for 15 "shoal on port $port" pings "$port"
  done
  wait_for 60 "the shoal cluster to settle" shoal_settled "${shoal_ports[@]}"
}

# The buckets are spread evenly, nothing is moving, and every node's map (CLUSTER NODES) is the
# same and names each node for exactly the buckets it serves.
shoal_settled() {
  local port info served sending receiving total=0 maps="" share=$((16384 / $#)) mapped
  for port in "$@"; do
    info="$(redis-cli -h 127.0.0.1 -p "$port" info cluster 2>/dev/null | tr -d '\r')" || return 1
    served="$(sed -n 's/^buckets_served://p' <<<"$info")"
    sending="$(sed -n 's/^buckets_sending://p' <<<"$info")"
    receiving="$(sed -n 's/^buckets_receiving://p' <<<"$info")"
    [[ -n $served && $sending == 0 && $receiving == 0 ]] || return 1
    (( served > share * 98 / 100 && served < share * 102 / 100 )) || return 1
    total=$((total + served))
    mapped="$(redis-cli -h 127.0.0.1 -p "$port" cluster nodes 2>/dev/null | slots_per_node)" || return 1
    grep -qx "127.0.0.1:$port $served" <<<"$mapped" || return 1
    maps+="$(md5sum <<<"$mapped")"$'\n'
  done
  (( total == 16384 )) || return 1
  [[ "$(sort -u <<<"${maps%$'\n'}" | wc -l)" == 1 ]]
}

slots_per_node() {  # CLUSTER NODES on stdin -> "ip:port slots" lines
  awk '{ n = 0; for (i = 9; i <= NF; i++) { if ($i ~ /^\[/) continue; split($i, r, "-");
         n += (r[2] == "" ? 1 : r[2] - r[1] + 1) } sub(/@.*/, "", $2); print $2, n }' | sort
}

owner_port_of_slot() {  # port slot -> the client port of the node owning slot
  local nodes
  nodes="$(redis-cli -h 127.0.0.1 -p "$1" cluster nodes | tr -d '\r')"
  awk -v s="$2" '{
    for (i = 9; i <= NF; i++) { if ($i ~ /^\[/) continue; split($i, r, "-"); if (r[2] == "") r[2] = r[1];
      if (s + 0 >= r[1] + 0 && s + 0 <= r[2] + 0) { sub(/@.*/, "", $2); sub(/.*:/, "", $2); print $2 } } }' \
    <<<"$nodes"
}

bench_shoal_redirect() {
  start_shoal_cluster redirect
  echo "# (b) shoal, 3 nodes in redirect mode on ${shoal_ports[*]} (--threads $shoal_threads), load $(load)" >&2
  for p in "${pipelines[@]}"; do run_bench shoal-cluster "$p" --cluster -p "${shoal_ports[0]}" -t set,get; done
  stop_servers
}

bench_forwarding() {
  local port tag="" slot owner i a b
  # Direct: one node, no cluster.
  port="$(free_port)"
  "${shoal_env[@]}" "$shoal_bin" serve --port "$port" --threads "$shoal_threads" --http-port -1 --set cluster-enabled=no \
    >"$workdir/shoal-single-$port.log" 2>&1 &
  started $! shoal
  wait_for 15 "single shoal on port $port" pings "$port"
  echo "# (c) single shoal node on $port (cluster disabled), load $(load)" >&2
  for p in "${pipelines[@]}"; do run_bench direct "$p" -p "$port" -t set,get; done
  tag="t0"
  run_bench direct-tag 16 -p "$port" set "{$tag}:key:__rand_int__" v
  run_bench direct-tag 16 -p "$port" get "{$tag}:key:__rand_int__"
  stop_servers

  # Forward mode, 3 nodes: random keys through node A; one tag owned by B, through B and A.
  start_shoal_cluster forward
  a="${shoal_ports[0]}"; b="${shoal_ports[1]}"
  echo "# (c) shoal, 3 nodes in forward mode on ${shoal_ports[*]}, load $(load)" >&2
  for p in "${pipelines[@]}"; do run_bench via-a "$p" -p "$a" -t set,get; done
  for i in $(seq 0 999); do
    slot="$(redis-cli -h 127.0.0.1 -p "$a" cluster keyslot "t$i")"
    owner="$(owner_port_of_slot "$a" "$slot")"
    if [[ $owner == "$b" ]]; then tag="t$i"; break; fi
  done
  if [[ $owner != "$b" ]]; then
    echo "# no hash tag found on node B; skipping the all-forwarded runs" >&2
  else
    echo "# hash tag {$tag} (slot $slot) lives on node B ($b)" >&2
    run_bench owner-b 16 -p "$b" set "{$tag}:key:__rand_int__" v
    run_bench owner-b 16 -p "$b" get "{$tag}:key:__rand_int__"
    run_bench through-a 16 -p "$a" set "{$tag}:key:__rand_int__" v
    run_bench through-a 16 -p "$a" get "{$tag}:key:__rand_int__"
    # The keys really are on B, not on A.
    echo "# DBSIZE after the tagged runs: A $(redis-cli -p "$a" dbsize), B $(redis-cli -p "$b" dbsize)," \
         "COUNTKEYSINSLOT $slot on B: $(redis-cli -p "$b" cluster countkeysinslot "$slot")" >&2
  fi
  stop_servers
}

ratio() {
  python3 -c 'import sys
try: print("%.2fx" % (float(sys.argv[1]) / float(sys.argv[2])))
except Exception: print("n/a")' "${1:-}" "${2:-}"
}

echo "# shoal: $shoal_bin (--threads $shoal_threads per node); redis: $("$redis_bin" --version | cut -d' ' -f1-3)" >&2
echo "# requests per test: $n at -P 1, $n16 at -P 16; clients: 50, keyspace: 100000;" \
     "$(nproc) cores shared by the client and every server" >&2
bench_redis_cluster
bench_shoal_redirect
bench_forwarding

echo
echo "Cluster: 3 masters, redis-benchmark --cluster -c 50 -r 100000, -n $n at -P 1 and $n16 at -P 16" \
     "($(nproc) cores shared by client and servers)"
printf '%-6s %-8s %14s %14s %12s\n' test pipeline "redis rps" "shoal rps" shoal/redis
for t in SET GET; do
  for p in "${pipelines[@]}"; do
    r="${rps[redis-cluster,$t,$p]:-}"; s="${rps[shoal-cluster,$t,$p]:-}"
    printf '%-6s %-8s %14s %14s %12s\n' "$t" "$p" "${r:-n/a}" "${s:-n/a}" "$(ratio "$s" "$r")"
  done
done
if [[ -n $shortest_cluster_run ]]; then
  echo "(shortest --cluster run: ${shortest_cluster_run} s; its run time is rounded up to 250 ms ticks," \
       "so its rps may read up to $(python3 -c 'import sys; print("%.0f" % (25 / float(sys.argv[1])))' "$shortest_cluster_run")% low)"
  if python3 -c 'import sys; sys.exit(not float(sys.argv[1]) < 4)' "$shortest_cluster_run"; then
    echo "(too short to compare: raise BENCH_N so that every --cluster run takes 4 s or more)"
  fi
fi
echo
echo "Forwarding (shoal forward mode, plain client, -c 50 -r 100000): rps, and ratio to the direct single node"
printf '%-6s %-8s %12s %20s %8s\n' test pipeline "direct" "via A (~2/3 fwd)" ratio
for t in SET GET; do
  for p in "${pipelines[@]}"; do
    d="${rps[direct,$t,$p]:-}"; v="${rps[via-a,$t,$p]:-}"
    printf '%-6s %-8s %12s %20s %8s\n' "$t" "$p" "${d:-n/a}" "${v:-n/a}" "$(ratio "$v" "$d")"
  done
done
printf '%-6s %-8s %12s %14s %14s %10s %10s\n' test pipeline "direct {tag}" "owner B" "through A" "A/direct" "A/B"
for t in SET GET; do
  d="${rps[direct-tag,$t,16]:-}"; o="${rps[owner-b,$t,16]:-}"; f="${rps[through-a,$t,16]:-}"
  printf '%-6s %-8s %12s %14s %14s %10s %10s\n' "$t" 16 "${d:-n/a}" "${o:-n/a}" "${f:-n/a}" \
    "$(ratio "$f" "$d")" "$(ratio "$f" "$o")"
done
