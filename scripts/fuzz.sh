#!/usr/bin/env bash
# Builds the libFuzzer targets with clang in build-fuzz/ and fuzzes each decoder in turn: the RESP
# parser, SWIM packets and state blobs, internal RPC frames, sharding and bus messages, and the
# replicated maps' sync messages, change batches and snapshots.
#   scripts/fuzz.sh [seconds-per-target]     default 60; CI runs 30, long runs 3600
# New interesting inputs go to fuzz/corpus-resp/ (git-ignored), seeded from fuzz/corpus/resp/.
# A crash leaves its input in build-fuzz/fuzz-artifacts/ and makes this script fail; reproduce it
# with build-fuzz/fuzz/resp_parser_fuzz <file>.
set -euo pipefail

seconds="${1:-60}"
root="$(cd "$(dirname "$0")/.." && pwd)"
build="$root/build-fuzz"

launcher=()
if command -v ccache >/dev/null; then launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache); fi
CC=clang CXX=clang++ cmake -S "$root" -B "$build" -G Ninja -DSHOAL_FUZZ=ON -DSHOAL_JEMALLOC=OFF \
  -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ "${launcher[@]}" >/dev/null
ninja -C "$build" resp_parser_fuzz swim_packet_fuzz rpc_frame_fuzz sharding_wire_fuzz bus_wire_fuzz \
  replicated_wire_fuzz

corpus="$root/fuzz/corpus-resp"
artifacts="$build/fuzz-artifacts"
mkdir -p "$corpus" "$artifacts"
"$build/fuzz/resp_parser_fuzz" -max_total_time="$seconds" -print_final_stats=1 \
  -artifact_prefix="$artifacts/" "$corpus" "$root/fuzz/corpus/resp"

for target in swim_packet_fuzz rpc_frame_fuzz sharding_wire_fuzz bus_wire_fuzz \
  replicated_wire_fuzz; do
  corpus="$root/fuzz/corpus-${target%_fuzz}"
  mkdir -p "$corpus"
  "$build/fuzz/$target" -max_total_time="$seconds" -print_final_stats=1 -max_len=4096 \
    -artifact_prefix="$artifacts/" "$corpus"
done
