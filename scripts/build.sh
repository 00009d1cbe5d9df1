#!/usr/bin/env bash
# Configures and builds one tree. Usage: scripts/build.sh [build-dir] [extra cmake args...]
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-build}
shift || true
targets=()
args=()
while [ $# -gt 0 ]; do
  if [ "$1" = "--target" ]; then
    shift
    targets=(--target "$@")
    break
  fi
  args+=("$1")
  shift
done
set -- "${args[@]}"
gen=()
command -v ninja >/dev/null && gen=(-G Ninja)
launcher=()
command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_C_COMPILER_LAUNCHER=ccache)
if [ ! -f "$dir/CMakeCache.txt" ]; then
  cmake -S . -B "$dir" "${gen[@]}" "${launcher[@]}" "$@"
else
  cmake -S . -B "$dir" "$@" >/dev/null
fi
# Arguments after the cmake ones: "--target a b" builds only those.
cmake --build "$dir" -j "$(nproc)" "${targets[@]}"
