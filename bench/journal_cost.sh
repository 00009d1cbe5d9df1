#!/usr/bin/env bash
# The journal's cost with no consumer: the shoal binary of this tree against the binary of a base
# commit (the code without the journal), one node each, driven in turns by redis-benchmark -P 16.
#
# Usage: bench/journal_cost.sh [--help]
#
# Environment:
#   BASE_REV     the commit to compare with (default: the parent of the commit that added
#                src/storage/journal.cc, i.e. the code before the journal)
#   BASE_BIN     a shoal binary built from BASE_REV (default: built here, into
#                <repo>/build-journal-base from a `git worktree add --detach` of BASE_REV)
#   SHOAL_BIN    this tree's binary (default: <repo>/build/shoal)
#   SHOAL_THREADS  worker threads per node (default: 2)
#   BENCH_N      requests per redis-benchmark run (default: 2000000)
#   BENCH_ROUNDS rounds; each runs base then new, or new then base, alternately (default: 5)
#   BENCH_TESTS  redis-benchmark tests (default: set,incr,hset; all of them write)
#
# Each run, per test: redis-benchmark -p PORT -t TEST -n $BENCH_N -c 50 -r 100000 -P 16 -q --csv
# against a fresh node (`shoal serve --set cluster-enabled=no`). The script prints every run, then
# per test the median requests/s of each binary and new/base, and the node's CPU time (user +
# system, from /proc/PID/stat) per request: the CPU figure does not depend on how the two cores
# are shared with redis-benchmark, so it is the steadier of the two.
# Servers listen on loopback; only the processes this script started are stopped, by pid.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/.." && pwd)"

for arg in "$@"; do
  case "$arg" in
    -h|--help) sed -n '2,23p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "unknown argument: $arg (try --help)" >&2; exit 2 ;;
  esac
done

n="${BENCH_N:-2000000}"
rounds="${BENCH_ROUNDS:-5}"
tests="${BENCH_TESTS:-set,incr,hset}"
threads="${SHOAL_THREADS:-2}"
new_bin="${SHOAL_BIN:-$repo/build/shoal}"

for tool in redis-benchmark redis-cli python3 git; do
  command -v "$tool" >/dev/null 2>&1 || { echo "missing tool: $tool" >&2; exit 1; }
done
[[ -x "$new_bin" ]] || { echo "shoal binary not found: $new_bin (scripts/build.sh build --target shoal)" >&2; exit 1; }

if [[ -z ${BASE_BIN:-} ]]; then
  base_rev="${BASE_REV:-$(git -C "$repo" log --diff-filter=A --format=%H -1 -- src/storage/journal.cc)~1}"
  base_rev="$(git -C "$repo" rev-parse "$base_rev")"
  base_build="$repo/build-journal-base"
  base_src="$base_build/src-$base_rev"
  if [[ ! -x "$base_build/bin-$base_rev/shoal" ]]; then
    echo "# building the base $base_rev into $base_build (once)" >&2
    mkdir -p "$base_build"
    [[ -d $base_src ]] || git -C "$repo" worktree add --detach "$base_src" "$base_rev" >&2
    (cd "$base_src" && ./scripts/build.sh build -DCMAKE_BUILD_TYPE=RelWithDebInfo --target shoal) >&2
    mkdir -p "$base_build/bin-$base_rev"
    cp "$base_src/build/shoal" "$base_build/bin-$base_rev/shoal"
    git -C "$repo" worktree remove --force "$base_src" >&2
  fi
  BASE_BIN="$base_build/bin-$base_rev/shoal"
fi

shoal_env=(env)
for v in $(compgen -e); do [[ $v == SHOAL_* ]] && shoal_env+=(-u "$v"); done

workdir="$(mktemp -d "${TMPDIR:-/tmp}/shoal-journal-cost.XXXXXX")"
pid=""
stop() {
  if [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null; then
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  fi
  pid=""
}
trap 'stop; rm -rf "$workdir"' EXIT
trap 'exit 130' INT TERM

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

server_cpu_ticks() {  # pid: user + system time of the process, in clock ticks
  awk '{print $14 + $15}' "/proc/$1/stat"
}

run_one() {  # label binary
  local label=$1 bin=$2 port deadline
  port="$(free_port)"
  "${shoal_env[@]}" "$bin" serve --port "$port" --threads "$threads" --http-port -1 \
    --set cluster-enabled=no >"$workdir/$label.log" 2>&1 &
  pid=$!
  deadline=$((SECONDS + 15))
  until redis-cli -p "$port" ping >/dev/null 2>&1; do
    (( SECONDS < deadline )) || { echo "$label did not start" >&2; cat "$workdir/$label.log" >&2; exit 1; }
    sleep 0.1
  done
  local test rps cpu0 cpu1
  for test in ${tests//,/ }; do
    cpu0="$(server_cpu_ticks "$pid")"
    rps="$(redis-benchmark -p "$port" -t "$test" -n "$n" -c 50 -r 100000 -P 16 -q --csv |
      tail -n +2 | tr -d '"' | cut -d, -f2)"
    cpu1="$(server_cpu_ticks "$pid")"
    echo "$label,${test^^},$rps,$((cpu1 - cpu0))" | tee -a "$workdir/results.csv"
  done
  stop
}

echo "# new: $new_bin" >&2
echo "# base: $BASE_BIN" >&2
echo "# redis-benchmark -t $tests -n $n -c 50 -r 100000 -P 16, --threads $threads, $rounds rounds" >&2
for r in $(seq "$rounds"); do
  if (( r % 2 )); then run_one base "$BASE_BIN"; run_one new "$new_bin"
  else run_one new "$new_bin"; run_one base "$BASE_BIN"; fi
done

python3 - "$workdir/results.csv" "$n" <<'EOF'
import collections, os, statistics, sys
n_req, hz = int(sys.argv[2]), os.sysconf("SC_CLK_TCK")
runs = collections.defaultdict(list)
cpu = collections.defaultdict(list)
for line in open(sys.argv[1]):
    label, test, rps, ticks = line.strip().split(",")
    runs[(test, label)].append(float(rps))
    cpu[(test, label)].append(int(ticks) * 1e9 / hz / n_req)
tests = sorted({t for t, _ in runs})
print(f"{'test':<8} {'base rps':>10} {'new rps':>10} {'new/base':>9} "
      f"{'base ns/req':>12} {'new ns/req':>11} {'cpu new/base':>13}")
for t in tests:
    b = statistics.median(runs[(t, "base")])
    n = statistics.median(runs[(t, "new")])
    cb = statistics.median(cpu[(t, "base")])
    cn = statistics.median(cpu[(t, "new")])
    print(f"{t:<8} {b:>10.0f} {n:>10.0f} {n / b:>9.3f} {cb:>12.0f} {cn:>11.0f} {cn / cb:>13.3f}")
EOF
