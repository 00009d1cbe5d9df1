// Micro-benchmarks of the storage engine: point lookups, inserts and overwrites on a Table
// holding 1M keys (16-byte keys, 32-byte values, as the redis comparison loads).
#include <benchmark/benchmark.h>

#include <string>
#include <vector>

#include "common/clock.h"
#include "common/keyslot.h"
#include "storage/table.h"

namespace {
using shoal::KeyBucket;
using shoal::storage::Entry;
using shoal::storage::kNoExpire;

std::string Key(uint64_t i) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "key:%012llu", static_cast<unsigned long long>(i));
  return std::string(buf, 16);
}

struct Loaded {
  shoal::FakeClock clock;
  shoal::storage::Table table{&clock, 1};
  std::vector<std::string> keys;
  explicit Loaded(size_t n) {
    keys.reserve(n);
    const std::string value(32, 'v');
    for (size_t i = 0; i < n; ++i) {
      keys.push_back(Key(i));
      table.Put(KeyBucket(keys.back()), Entry::NewString(keys.back(), value, kNoExpire));
    }
  }
};

Loaded& Million() {
  static Loaded l(1'000'000);
  return l;
}

void BM_FindHit(benchmark::State& state) {
  Loaded& l = Million();
  size_t i = 0;
  for (auto _ : state) {
    const std::string& k = l.keys[(i++ * 7919) % l.keys.size()];
    benchmark::DoNotOptimize(l.table.Find(KeyBucket(k), k));
  }
}
BENCHMARK(BM_FindHit);

void BM_FindMiss(benchmark::State& state) {
  Loaded& l = Million();
  size_t i = 0;
  for (auto _ : state) {
    const std::string k = Key(2'000'000 + (i++ % 100'000));
    benchmark::DoNotOptimize(l.table.Find(KeyBucket(k), k));
  }
}
BENCHMARK(BM_FindMiss);

void BM_Overwrite(benchmark::State& state) {
  Loaded& l = Million();
  const std::string value(32, 'w');
  size_t i = 0;
  for (auto _ : state) {
    const std::string& k = l.keys[(i++ * 7919) % l.keys.size()];
    l.table.Put(KeyBucket(k), Entry::NewString(k, value, kNoExpire));
  }
}
BENCHMARK(BM_Overwrite);

void BM_InsertFresh(benchmark::State& state) {
  shoal::FakeClock clock;
  auto table = std::make_unique<shoal::storage::Table>(&clock, 2);
  const std::string value(32, 'v');
  uint64_t i = 0;
  for (auto _ : state) {
    const std::string k = Key(i++);
    table->Put(KeyBucket(k), Entry::NewString(k, value, kNoExpire));
  }
  state.counters["bytes_per_key"] =
      static_cast<double>(table->used_bytes()) / static_cast<double>(std::max<uint64_t>(i, 1));
}
BENCHMARK(BM_InsertFresh);

void BM_KeyBucket(benchmark::State& state) {
  const std::string k = Key(123456);
  for (auto _ : state) benchmark::DoNotOptimize(KeyBucket(k));
}
BENCHMARK(BM_KeyBucket);

}  // namespace

BENCHMARK_MAIN();
