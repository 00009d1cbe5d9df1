#!/usr/bin/env bash
# The whole test suite: installs what is needed, checks formatting, builds and runs every test
# (unit, simulator, system) in a release build, runs every fuzzer briefly from its seed corpus,
# builds and runs everything again (but the system tests bound by membership timers) under
# AddressSanitizer + UndefinedBehaviorSanitizer, and the
# threaded parts under ThreadSanitizer. Long simulation sweeps are scripts/soak.sh.
# Ends with one summary line "tests: N passed, N failed, N skipped" (a skipped test is counted
# apart; with CI=true as root, a skipped network-namespace test counts as failed).
# Every tree is built with line tables only (-g1): sanitizer reports and backtraces keep file:line,
# and the builds, most of CI's time, are faster.
# Env: SHOAL_FAST=1 skips the sanitizer build and the fuzzer (for quick local runs).
set -uo pipefail
cd "$(dirname "$0")/.."
# Wall-clock seconds per stage, printed before the summary line.
times=()
mark=$SECONDS
stage_done() { times+=("$1 $((SECONDS - mark))s"); mark=$SECONDS; }
./scripts/setup.sh || exit 1
stage_done setup

passed=0
failed=0
skipped=0
status=0
# Tests that must run in CI (env CI=true): as root, the network-namespace tests cannot skip there.
must_run=()
if [ "${CI:-}" = true ] && [ "$(id -u)" = 0 ]; then must_run=(system_netns_membership system_netns_replicated); fi
count() {  # parse ctest's "N% tests passed, F tests failed out of T" and its list of skipped tests
  local line
  line=$(grep -E "tests passed, [0-9]+ tests? failed out of [0-9]+" "$1" | tail -1)
  if [ -z "$line" ]; then failed=$((failed + 1)); status=1; return; fi
  local f t s name
  f=$(sed -E 's/.* ([0-9]+) tests? failed out of ([0-9]+).*/\1/' <<<"$line")
  t=$(sed -E 's/.* ([0-9]+) tests? failed out of ([0-9]+).*/\2/' <<<"$line")
  # ctest counts a skipped test (SKIP_RETURN_CODE, "Not Run" for a disabled one) as passed, and
  # lists it under "The following tests did not run:" as "<n> - <name> (Skipped)".
  local skips
  skips=$(sed -n '/The following tests did not run:/,/^$/p' "$1" | sed -nE 's/^\s*[0-9]+ - (\S+) \((Skipped|Disabled|Not Run)\).*/\1/p')
  s=$(grep -c . <<<"$skips")
  [ -n "$skips" ] || s=0
  passed=$((passed + t - f - s))
  failed=$((failed + f))
  skipped=$((skipped + s))
  # Inside a system test (Python unittest), a skipped test method is listed apart too (ctest
  # counts the file as one test; its full output is in Testing/Temporary/LastTest.log).
  local last="$2/Testing/Temporary/LastTest.log" methods
  if [ -f "$last" ]; then
    methods=$(grep -E "^test_[A-Za-z0-9_]+ \(.*\) \.\.\. skipped" "$last" | sed -E 's/ \.\.\. skipped/: skipped/')
    if [ -n "$methods" ]; then
      echo "system test methods skipped ($2; not in the counts):"; sed 's/^/  /' <<<"$methods"
    fi
  fi
  for name in $skips; do
    echo "skipped: $name ($1)"
    for m in "${must_run[@]}"; do
      if [ "$name" = "$m" ]; then
        echo "FAIL: $name must run in CI (running as root) but was skipped"
        failed=$((failed + 1)); status=1
      fi
    done
  done
}
mkdir -p build-logs

echo "== clang-format check"
if ! scripts/check-format.sh; then
  echo "clang-format: files above need formatting (run scripts/format.sh)"
  failed=$((failed + 1)); status=1
fi

echo "== release build"
if ./scripts/build.sh build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSHOAL_LINE_TABLES_ONLY=ON; then
  stage_done release-build
  (cd build && ctest --output-on-failure -j2 --timeout 600) 2>&1 | tee build-logs/ctest-release.log
  count build-logs/ctest-release.log build
  stage_done release-tests
else
  echo "release build failed"; failed=$((failed + 1)); status=1
fi

if [ "${SHOAL_FAST:-0}" != 1 ]; then
  echo "== fuzz the RESP, SWIM, RPC, sharding, bus and replicated-map decoders (short runs)"
  # 20 s per target from its seed corpus, as many targets at a time as there are cores.
  if scripts/fuzz.sh 20 >build-logs/fuzz.log 2>&1; then
    passed=$((passed + 1)); grep -E "^[a-z_]+_fuzz: " build-logs/fuzz.log
  else
    echo "fuzzer found a problem or failed to build:"; tail -40 build-logs/fuzz.log
    failed=$((failed + 1)); status=1
  fi
  stage_done fuzz

  # The system tests that spend their time waiting on membership timers (suspicion, dead-member
  # removal, the spread of a leave) run in the release build only: their code runs under the
  # sanitizers through the simulations and the other system tests, and running them three times
  # would hold CI for minutes of sleeping.
  timer_bound='^system_(leave|leave_large|rejoin|membership|netns_membership|netns_replicated)$'

  # Everything else ctest runs (no benchmarks).
  echo "== ASan + UBSan build"
  if ./scripts/build.sh build-asan -DCMAKE_BUILD_TYPE=Debug -DSHOAL_SANITIZE=ON -DSHOAL_BENCH=OFF -DSHOAL_LINE_TABLES_ONLY=ON; then
    stage_done asan-build
    # 12 seeds per simulation scenario (the release build runs 200 and more): the sweeps are the
    # release build's; here the simulations are run for memory errors and undefined behaviour,
    # and at -O0 under the sanitizers a seed costs ten times what it does there.
    (cd build-asan && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 SHOAL_SIM_SEEDS=12 \
      ctest --output-on-failure -j2 --timeout 900 -E "$timer_bound") 2>&1 | tee build-logs/ctest-asan.log
    count build-logs/ctest-asan.log build-asan
    stage_done asan-tests
  else
    echo "sanitizer build failed"; failed=$((failed + 1)); status=1
  fi

  # The threaded parts: runtime, engine, server under the system tests (not the timer-bound ones
  # above).
  echo "== ThreadSanitizer build (the threaded parts: runtime, engine, server under system tests)"
  if ./scripts/build.sh build-tsan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSHOAL_TSAN=ON -DSHOAL_LINE_TABLES_ONLY=ON --target shoal net_test bus_client replicated_node_test; then
    stage_done tsan-build
    (cd build-tsan && TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1" \
      ctest --output-on-failure -j2 --timeout 900 -R "^(EventLoop|Runtime|ReplicatedEmbedded|system_)" -E "$timer_bound") 2>&1 | tee build-logs/ctest-tsan.log
    count build-logs/ctest-tsan.log build-tsan
    stage_done tsan-tests
  else
    echo "tsan build failed"; failed=$((failed + 1)); status=1
  fi
fi

[ "$failed" -eq 0 ] || status=1
echo "stage times: ${times[*]} (total $((SECONDS / 60)) min)"
echo "tests: $passed passed, $failed failed, $skipped skipped"
exit $status
