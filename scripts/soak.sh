#!/usr/bin/env bash
# Long simulation sweep: every simulation test over many seeds in the release build (CI runs 200
# per scenario; this runs thousands). A failure names its seed; replay it with
#   SHOAL_SIM_SEED=<seed> build/src/<dir>/<test> --gtest_filter=<Suite.Test>
#   scripts/soak.sh [seeds]      default 2000; env SHOAL_SOAK_FILTER=regex picks the tests
# Builds what it runs in build/ (RelWithDebInfo) first. Logs go to build-logs/soak-<test>.log.
set -uo pipefail
cd "$(dirname "$0")/.."

seeds="${1:-2000}"
filter="${SHOAL_SOAK_FILTER:-}"
# Binary and the gtest filter of its seed sweeps (the tests that read SHOAL_SIM_SEEDS).
sims=(
  "src/membership/membership_test:SwimSim.*:-SwimSim.SameSeedSameTrace"
  "src/sharding/sharding_sim_test:ShardingSim.*:-ShardingSim.SameSeedSameTrace"
  "src/bus/bus_registry_test:RegistrySim.ConvergesUnderChurnLossAndCrashesAndFailsOver"
  "src/bus/bus_dispatcher_sim_test:DispatcherSim.*:-DispatcherSim.SameSeedSameTrace"
  "src/replicated/replicated_sim_test:ReplicatedSim.*:-ReplicatedSim.SameSeedSameRun"
)
targets=()
for s in "${sims[@]}"; do targets+=("$(basename "${s%%:*}")"); done
./scripts/build.sh build -DCMAKE_BUILD_TYPE=RelWithDebInfo --target "${targets[@]}" || exit 1
mkdir -p build-logs

status=0
for s in "${sims[@]}"; do
  bin="build/${s%%:*}"
  gtest="${s#*:}"
  name="$(basename "$bin")"
  if [ -n "$filter" ] && ! [[ "$name $gtest" =~ $filter ]]; then continue; fi
  start=$(date +%s)
  if SHOAL_SIM_SEEDS="$seeds" "$bin" --gtest_filter="$gtest" >"build-logs/soak-$name.log" 2>&1; then
    echo "$name ($gtest): $seeds seeds per scenario passed in $(($(date +%s) - start)) s"
  else
    echo "$name ($gtest): FAILED after $(($(date +%s) - start)) s; the failing seeds:"
    grep -E "seed [0-9]+" "build-logs/soak-$name.log" | head -20
    status=1
  fi
done
exit $status
