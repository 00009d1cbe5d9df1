#!/usr/bin/env bash
# Builds the libFuzzer targets with clang in build-fuzz/ and fuzzes each decoder: the RESP
# parser, SWIM packets and state blobs, internal RPC frames, sharding and bus messages, and the
# replicated maps' sync messages, change batches and snapshots.
#   scripts/fuzz.sh [seconds-per-target]     default 60; CI runs 20, long runs 3600
# Env: SHOAL_FUZZ_JOBS=n runs n targets at a time (default: the number of cores).
# Each target starts from its committed seed corpus, fuzz/corpus/<name>/ (a few small valid
# inputs; build-fuzz/fuzz/seed_corpus fuzz/corpus writes them again after a wire format change),
# and keeps the new interesting inputs it finds in fuzz/corpus-<name>/ (git-ignored). A crash
# leaves its input in build-fuzz/fuzz-artifacts/ and makes this script fail; reproduce it with
# build-fuzz/fuzz/<target> <file>. Each target's output is in build-fuzz/fuzz-<target>.log.
set -euo pipefail

seconds="${1:-60}"
jobs="${SHOAL_FUZZ_JOBS:-$(nproc)}"
root="$(cd "$(dirname "$0")/.." && pwd)"
build="$root/build-fuzz"
targets=(resp_parser_fuzz swim_packet_fuzz rpc_frame_fuzz sharding_wire_fuzz bus_wire_fuzz
  replicated_wire_fuzz)

launcher=()
if command -v ccache >/dev/null; then launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache); fi
CC=clang CXX=clang++ cmake -S "$root" -B "$build" -G Ninja -DSHOAL_FUZZ=ON -DSHOAL_JEMALLOC=OFF -DSHOAL_LINE_TABLES_ONLY=ON \
  -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ "${launcher[@]}" >/dev/null
ninja -C "$build" "${targets[@]}"

artifacts="$build/fuzz-artifacts"
mkdir -p "$artifacts"

run() {  # run <target>: fuzzes one target from its seed corpus; output in its log
  local target=$1 name=${1%_fuzz}
  local seeds="$root/fuzz/corpus/${name%_parser}" corpus="$root/fuzz/corpus-${name%_parser}"
  [ -d "$seeds" ] || { echo "no seed corpus $seeds" >"$build/fuzz-$target.log"; return 1; }
  mkdir -p "$corpus"
  local extra=()
  [ "$target" = resp_parser_fuzz ] || extra=(-max_len=4096)
  "$build/fuzz/$target" -max_total_time="$seconds" -print_final_stats=1 "${extra[@]}" \
    -artifact_prefix="$artifacts/$target-" "$corpus" "$seeds" >"$build/fuzz-$target.log" 2>&1
}

pids=()
names=()
status=0
wait_one() {  # waits for the oldest running target and reports it
  local pid=${pids[0]} target=${names[0]}
  pids=("${pids[@]:1}")
  names=("${names[@]:1}")
  if wait "$pid"; then
    echo "$target: ok ($(grep -m1 -o 'stat::number_of_executed_units: [0-9]*' \
      "$build/fuzz-$target.log" | awk '{print $2}') runs in ${seconds}s)"
  else
    echo "$target: FAILED"; tail -40 "$build/fuzz-$target.log"; status=1
  fi
}
for target in "${targets[@]}"; do
  [ "${#pids[@]}" -lt "$jobs" ] || wait_one
  run "$target" &
  pids+=($!)
  names+=("$target")
done
while [ "${#pids[@]}" -gt 0 ]; do wait_one; done
exit $status
