#!/usr/bin/env bash
# The whole test suite: installs what is needed, checks formatting, builds and runs every test
# (unit, simulator, system) in a release build, runs the RESP parser fuzzer briefly, then builds
# and runs everything again under AddressSanitizer + UndefinedBehaviorSanitizer.
# Ends with one summary line "tests: N passed, N failed".
# Env: SHOAL_FAST=1 skips the sanitizer build and the fuzzer (for quick local runs).
set -uo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh || exit 1

passed=0
failed=0
status=0
count() {  # parse ctest's "N% tests passed, F tests failed out of T"
  local line
  line=$(grep -E "tests passed, [0-9]+ tests? failed out of [0-9]+" "$1" | tail -1)
  if [ -z "$line" ]; then failed=$((failed + 1)); status=1; return; fi
  local f t
  f=$(sed -E 's/.* ([0-9]+) tests? failed out of ([0-9]+).*/\1/' <<<"$line")
  t=$(sed -E 's/.* ([0-9]+) tests? failed out of ([0-9]+).*/\2/' <<<"$line")
  passed=$((passed + t - f))
  failed=$((failed + f))
}
mkdir -p build-logs

echo "== clang-format check"
if ! scripts/check-format.sh; then
  echo "clang-format: files above need formatting (run scripts/format.sh)"
  failed=$((failed + 1)); status=1
fi

echo "== release build"
if ./scripts/build.sh build -DCMAKE_BUILD_TYPE=RelWithDebInfo; then
  (cd build && ctest --output-on-failure -j2 --timeout 600) 2>&1 | tee build-logs/ctest-release.log
  count build-logs/ctest-release.log
else
  echo "release build failed"; failed=$((failed + 1)); status=1
fi

if [ "${SHOAL_FAST:-0}" != 1 ]; then
  echo "== fuzz the RESP, SWIM, RPC, sharding, bus and replicated-map decoders (short runs)"
  if scripts/fuzz.sh 30 >build-logs/fuzz.log 2>&1; then
    passed=$((passed + 1)); tail -3 build-logs/fuzz.log
  else
    echo "fuzzer found a problem or failed to build:"; tail -40 build-logs/fuzz.log
    failed=$((failed + 1)); status=1
  fi

  echo "== ASan + UBSan build"
  if ./scripts/build.sh build-asan -DCMAKE_BUILD_TYPE=Debug -DSHOAL_SANITIZE=ON; then
    (cd build-asan && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
      ctest --output-on-failure -j2 --timeout 900) 2>&1 | tee build-logs/ctest-asan.log
    count build-logs/ctest-asan.log
  else
    echo "sanitizer build failed"; failed=$((failed + 1)); status=1
  fi

  echo "== ThreadSanitizer build (the threaded parts: runtime, engine, server under system tests)"
  if ./scripts/build.sh build-tsan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSHOAL_TSAN=ON --target shoal net_test bus_client replicated_node_test; then
    (cd build-tsan && TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1" \
      ctest --output-on-failure -j2 --timeout 900 -R "^(EventLoop|Runtime|ReplicatedEmbedded|system_)") 2>&1 | tee build-logs/ctest-tsan.log
    count build-logs/ctest-tsan.log
  else
    echo "tsan build failed"; failed=$((failed + 1)); status=1
  fi
fi

[ "$failed" -eq 0 ] || status=1
echo "tests: $passed passed, $failed failed"
exit $status
