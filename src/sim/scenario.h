// Helpers for scenario tests over many seeds (header-only; for GoogleTest binaries).
//
// ForEachSeed runs a scenario for seeds 1..default_count, or SHOAL_SIM_SEEDS=n seeds, or the one
// seed SHOAL_SIM_SEED=s (to replay a failure exactly); Seeds() gives that range to a test that
// loops itself. Each failure is reported with its seed;
// after 5 failing seeds it stops. Returns the number of seeds run.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <cstdlib>
#include <functional>
#include <string>
#include <vector>

namespace shoal::sim {

using Failures = std::vector<std::string>;

// The seeds to run: {first, count}: {1, default_count}, {1, n} with SHOAL_SIM_SEEDS=n, or
// {s, 1} with SHOAL_SIM_SEED=s.
struct SeedRange {
  uint64_t first = 1;
  uint64_t count = 0;
};

inline SeedRange Seeds(uint64_t default_count) {
  SeedRange r{1, default_count};
  if (const char* s = std::getenv("SHOAL_SIM_SEED")) {
    r.first = std::strtoull(s, nullptr, 10);
    r.count = 1;
  } else if (const char* n = std::getenv("SHOAL_SIM_SEEDS")) {
    r.count = std::strtoull(n, nullptr, 10);
  }
  return r;
}

inline int ForEachSeed(uint64_t default_count, const std::function<Failures(uint64_t)>& scenario) {
  const auto [first, count] = Seeds(default_count);
  int failing = 0, run = 0;
  for (uint64_t seed = first; seed < first + count && failing < 5; ++seed) {
    const Failures f = scenario(seed);
    ++run;
    for (const std::string& what : f) ADD_FAILURE() << "seed " << seed << ": " << what;
    failing += f.empty() ? 0 : 1;
  }
  return run;
}

// Node indices 0..n-1, and the same without x.
inline std::vector<int> Range(int n) {
  std::vector<int> v(n);
  for (int i = 0; i < n; ++i) v[i] = i;
  return v;
}

inline std::vector<int> Without(std::vector<int> v, int x) {
  std::erase(v, x);
  return v;
}

}  // namespace shoal::sim
