#!/usr/bin/env bash
# Builds the libFuzzer targets with clang in build-fuzz/ and fuzzes the RESP parser.
#   scripts/fuzz.sh [seconds]     default 60; CI runs 30, long runs 3600
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
ninja -C "$build" resp_parser_fuzz

corpus="$root/fuzz/corpus-resp"
artifacts="$build/fuzz-artifacts"
mkdir -p "$corpus" "$artifacts"
"$build/fuzz/resp_parser_fuzz" -max_total_time="$seconds" -print_final_stats=1 \
  -artifact_prefix="$artifacts/" "$corpus" "$root/fuzz/corpus/resp"
