// Scenario tests: N ShardingCores over real SWIM views in the deterministic simulator (ShardSim,
// sharding/sim_harness.h), each scenario over many seeds (200 by default, 40 in a build without
// optimization; SHOAL_SIM_SEEDS=n for more, SHOAL_SIM_SEED=s for one). A failure names its seed;
// SHOAL_SIM_SEED=<seed> replays it, and SameSeedSameTrace checks that a seed's run is a function
// of the seed.
//
// Checked in every scenario: never two nodes ACTIVE for one bucket at the same instant unless a
// partition, link fault or false death is in effect or ended within the harness's fault grace
// (the harness checks it at every state change, for the whole run); epochs only go up; chunks
// land only in RECEIVING buckets; nothing ACTIVE is dropped; a SENDING node answers a read
// without an acknowledged write only if its migration target acknowledged it.
// At the end of each scenario: one epoch everywhere, every bucket ACTIVE on exactly one node, the
// map naming it, and every acknowledged write's last value in its bucket's holder unless a crash
// or a split brain exposed the bucket to loss since (cache semantics); reads see the last
// acknowledged write under the same exception.
//
// Debugging a seed: SHOAL_SIM_VERBOSE=1 prints state changes, maps, coordinator changes, SWIM
// events and faults; SHOAL_SIM_BUCKET=<b> narrows the state changes and requests to one bucket.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "common/keyslot.h"
#include "common/log.h"
#include "sharding/sim_harness.h"
#include "sim/scenario.h"

namespace shoal::sharding {
namespace {

using membership::MemberState;
using sim::Failures;
using sim::kMillisecond;
using sim::kSecond;

// Seeds per scenario by default. A build without optimization (CI's ASan + UBSan stage) runs
// ~20x slower, so it runs fewer; SHOAL_SIM_SEEDS overrides.
#ifdef NDEBUG
constexpr uint64_t kDefaultSeeds = 200;
#else
constexpr uint64_t kDefaultSeeds = 40;
#endif

// Runs `scenario` for each seed (sim/scenario.h), quietly. Returns the number of seeds run.
int ForEachSeed(const std::function<Failures(uint64_t)>& scenario) {
  log::SetLevel("error");  // the cores warn about every aborted migration
  return sim::ForEachSeed(kDefaultSeeds, scenario);
}

ShardSimOptions Options(int nodes) {
  ShardSimOptions o;
  o.cluster.nodes = nodes;
  o.verbose = std::getenv("SHOAL_SIM_VERBOSE") != nullptr;
  if (const char* b = std::getenv("SHOAL_SIM_BUCKET")) o.verbose_bucket = std::atoi(b);
  return o;
}

using sim::Range;
using sim::Without;

int64_t Rand(SeededRng& rng, int64_t max) {
  return static_cast<int64_t>(rng.Uniform(static_cast<uint64_t>(max)));
}

void CollectViolations(ShardSim& s, Failures& f) {
  for (const std::string& v : s.violations()) f.push_back(v);
  for (const std::string& v : s.cluster().violations()) f.push_back("swim: " + v);
}

// Views agree on `live`, then the sharding state converges over them; false (with the reason in
// `f`) if either takes longer than its bound.
bool Converge(ShardSim& s, Failures& f, const std::vector<int>& holders,
              const std::vector<int>& viewers, int64_t view_timeout, int64_t shard_timeout) {
  std::vector<int> live = viewers;
  for (int h : holders) {
    if (std::find(live.begin(), live.end(), h) == live.end()) live.push_back(h);
  }
  std::sort(live.begin(), live.end());
  if (!s.cluster().RunUntil([&] { return s.cluster().ViewsAgree(live); }, view_timeout)) {
    f.push_back("views never agreed:" + s.cluster().DescribeViews());
    return false;
  }
  if (!s.cluster().RunUntil([&] { return s.Converged(holders, viewers, nullptr); }, shard_timeout,
                            20 * kMillisecond)) {
    std::string why;
    s.Converged(holders, viewers, &why);
    f.push_back(fmt::format("no convergence within {} s: {}{}", shard_timeout / kSecond, why,
                            s.Describe()));
    return false;
  }
  return true;
}

// Stops the clients and waits until no write is outstanding (and the state is still converged).
bool Quiesce(ShardSim& s, Failures& f, const std::vector<int>& holders,
             const std::vector<int>& viewers) {
  s.StopWrites();
  if (!s.cluster().RunUntil(
          [&] { return s.WritesIdle() && s.Converged(holders, viewers, nullptr); }, 20 * kSecond,
          20 * kMillisecond)) {
    std::string why;
    s.Converged(holders, viewers, &why);
    f.push_back(
        fmt::format("writes never settled (idle={}): {}{}", s.WritesIdle(), why, s.Describe()));
    return false;
  }
  return true;
}

// Every node of `holders` holds its share of the buckets, within 5%.
void CheckBalance(ShardSim& s, Failures& f, const std::vector<int>& holders) {
  const std::vector<uint32_t> counts = s.ActiveCounts();
  const double share = static_cast<double>(kNumBuckets) / static_cast<double>(holders.size());
  for (int h : holders) {
    if (counts[h] < share * 0.95 || counts[h] > share * 1.05) {
      f.push_back(fmt::format("node {} holds {} buckets, share {:.1f}", h, counts[h], share));
    }
  }
}

// Reads served, and reads a SENDING node answered without a write its target had acknowledged.
struct ReadStats {
  uint64_t reads = 0, stale = 0;
  void Add(const ShardSim& s) {
    reads += s.reads();
    stale += s.stale_sending_reads();
  }
  std::string ToString() const {
    return fmt::format("reads {} (stale on SENDING: {})", reads, stale);
  }
};

ShardSim::WriteCheck CheckWrites(ShardSim& s, Failures& f) {
  const ShardSim::WriteCheck w = s.CheckWrites(f);
  if (w.keys == 0) f.push_back("no write was acknowledged");
  return w;
}

// 1. Five nodes start within a second; once their views agree, the buckets are spread over all of
// them within bounded virtual time, and the state stays put.
TEST(ShardingSim, BootstrapSpreadsBucketsEvenly) {
  int64_t virtual_time = 0;
  const int seeds = ForEachSeed([&](uint64_t seed) {
    Failures f;
    constexpr int kN = 5;
    ShardSim s(seed, Options(kN));
    if (!Converge(s, f, Range(kN), Range(kN), 10 * kSecond, 20 * kSecond)) return f;
    CheckBalance(s, f, Range(kN));
    const uint64_t epoch = s.core(0)->map()->epoch().value();
    const std::vector<int> holders = s.Holders();
    s.cluster().RunFor(5 * kSecond);
    std::string why;
    if (!s.Converged(Range(kN), Range(kN), &why)) f.push_back("unsettled later: " + why);
    if (s.core(0)->map()->epoch().value() != epoch) f.push_back("epoch changed while stable");
    if (s.Holders() != holders) f.push_back("buckets moved while stable");
    // Nodes join within a second: a first coordinator may spread the buckets over the nodes it
    // knows and the next one move some, but each bucket is adopted exactly once.
    if (s.adopted() != kNumBuckets) {
      f.push_back(fmt::format("{} buckets adopted, expected {}", s.adopted(), kNumBuckets));
    }
    CollectViolations(s, f);
    virtual_time += s.Now();
    return f;
  });
  std::printf("[  SUMMARY ] bootstrap: %d seeds, %.1f s virtual per seed\n", seeds,
              static_cast<double>(virtual_time) / kSecond / seeds);
}

// 2. A fourth node joins three under continuous writes: about a quarter of the buckets move, all
// of them to the new node, and every acknowledged write survives.
TEST(ShardingSim, JoinUnderWritesMovesBucketsOnlyToTheNewNode) {
  uint64_t total_moved = 0, total_keys = 0, min_moved = UINT64_MAX, max_moved = 0, acked = 0;
  ReadStats reads;
  const int seeds = ForEachSeed([&](uint64_t seed) {
    Failures f;
    ShardSim s(seed, Options(3));
    SeededRng rng = s.sim().DeriveRng("test");
    if (!Converge(s, f, Range(3), Range(3), 10 * kSecond, 20 * kSecond)) return f;
    const std::vector<int> before = s.Holders();
    const auto moves_before = s.moves();
    const uint64_t adopted_before = s.adopted();
    const uint64_t keys_before = s.keys_moved();
    s.StartWrites();
    s.cluster().RunFor(2 * kSecond + Rand(rng, 1 * kSecond));
    const int fresh = s.AddNode();
    if (!Converge(s, f, Range(4), Range(4), 10 * kSecond, 30 * kSecond)) return f;
    s.cluster().RunFor(Rand(rng, 1 * kSecond));
    if (!Quiesce(s, f, Range(4), Range(4))) return f;

    const std::vector<int> after = s.Holders();
    uint64_t moved = 0;
    for (uint32_t b = 0; b < kNumBuckets; ++b) {
      if (before[b] == after[b]) continue;
      ++moved;
      if (after[b] != fresh) {
        f.push_back(fmt::format("bucket {} moved from node {} to node {}", b, before[b], after[b]));
        break;
      }
    }
    for (const auto& [pair, n] : s.moves()) {
      auto it = moves_before.find(pair);
      const uint64_t since = n - (it == moves_before.end() ? 0 : it->second);
      if (since > 0 && pair.second != fresh) {
        f.push_back(fmt::format("{} buckets migrated from node {} to node {}", since, pair.first,
                                pair.second));
      }
    }
    const double quarter = kNumBuckets / 4.0;
    if (moved < quarter * 0.95 || moved > quarter * 1.05) {
      f.push_back(fmt::format("{} buckets moved, expected about {}", moved, quarter));
    }
    if (s.adopted() != adopted_before) f.push_back("buckets adopted during the join");
    CheckBalance(s, f, Range(4));
    const ShardSim::WriteCheck w = CheckWrites(s, f);
    if (w.excused != 0) f.push_back(fmt::format("{} keys exposed to loss", w.excused));
    CollectViolations(s, f);
    if (!s.strict()) f.push_back("a member was declared dead");
    total_moved += moved;
    min_moved = std::min(min_moved, moved);
    max_moved = std::max(max_moved, moved);
    total_keys += s.keys_moved() - keys_before;
    acked += s.acks().size();
    reads.Add(s);
    return f;
  });
  std::printf(
      "[  SUMMARY ] join: %d seeds, buckets moved per join avg %.1f (min %llu, max %llu), keys "
      "moved avg %.1f, writes acknowledged avg %.1f, %s\n",
      seeds, static_cast<double>(total_moved) / seeds, static_cast<unsigned long long>(min_moved),
      static_cast<unsigned long long>(max_moved), static_cast<double>(total_keys) / seeds,
      static_cast<double>(acked) / seeds, reads.ToString().c_str());
}

// 3. One of four nodes leaves gracefully under writes: it ends drained, its buckets went to the
// others (and nothing else moved), and no acknowledged write was lost.
TEST(ShardingSim, GracefulLeaveDrainsUnderWrites) {
  int64_t drain_time = 0;
  ReadStats reads;
  const int seeds = ForEachSeed([&](uint64_t seed) {
    Failures f;
    constexpr int kN = 4;
    ShardSim s(seed, Options(kN));
    SeededRng rng = s.sim().DeriveRng("test");
    if (!Converge(s, f, Range(kN), Range(kN), 10 * kSecond, 20 * kSecond)) return f;
    s.StartWrites();
    s.cluster().RunFor(Rand(rng, 1 * kSecond));
    const int leaver = static_cast<int>(rng.Uniform(kN));
    const std::vector<int> before = s.Holders();
    const auto moves_before = s.moves();
    const uint64_t adopted_before = s.adopted();
    const int64_t start = s.Now();
    s.SetLeaving(leaver);
    const std::vector<int> rest = Without(Range(kN), leaver);
    if (!s.cluster().RunUntil([&] { return s.core(leaver)->Drained(); }, 30 * kSecond,
                              1 * kMillisecond)) {
      f.push_back(fmt::format("node {} not drained within 30 s:{}", leaver, s.Describe()));
      return f;
    }
    drain_time += s.Now() - start;
    if (!s.cluster().RunUntil(
            [&] { return s.core(leaver)->Drained() && s.Converged(rest, Range(kN), nullptr); },
            30 * kSecond, 20 * kMillisecond)) {
      std::string why;
      s.Converged(rest, Range(kN), &why);
      f.push_back(fmt::format("node {} not drained within 30 s (drained={}): {}{}", leaver,
                              s.core(leaver)->Drained(), why, s.Describe()));
      return f;
    }
    s.cluster().RunFor(Rand(rng, 1 * kSecond));
    if (!Quiesce(s, f, rest, Range(kN))) return f;
    if (!s.core(leaver)->Drained()) f.push_back("the leaver holds buckets again");
    const std::vector<int> after = s.Holders();
    for (uint32_t b = 0; b < kNumBuckets; ++b) {
      if (before[b] != leaver && after[b] != before[b]) {
        f.push_back(fmt::format("bucket {} moved from node {} to node {}", b, before[b], after[b]));
        break;
      }
    }
    for (const auto& [pair, n] : s.moves()) {
      auto it = moves_before.find(pair);
      const uint64_t since = n - (it == moves_before.end() ? 0 : it->second);
      if (since > 0 && (pair.first != leaver || pair.second == leaver)) {
        f.push_back(fmt::format("{} buckets migrated from node {} to node {}", since, pair.first,
                                pair.second));
      }
    }
    if (s.adopted() != adopted_before) f.push_back("buckets adopted during the leave");
    CheckBalance(s, f, rest);
    const ShardSim::WriteCheck w = CheckWrites(s, f);
    if (w.excused != 0) f.push_back(fmt::format("{} keys exposed to loss", w.excused));
    CollectViolations(s, f);
    if (!s.strict()) f.push_back("a member was declared dead");
    reads.Add(s);
    return f;
  });
  std::printf("[  SUMMARY ] leave: %d seeds, drained after %.2f s virtual on average, %s\n", seeds,
              static_cast<double>(drain_time) / kSecond / seeds, reads.ToString().c_str());
}

// 3b. Values larger than one request: requests over 64 KiB fail (as over the RPC frame limit),
// and the leaver holds two keys of ~300 KiB. Its buckets go over under writes, the large chunks
// in pieces; in half the seeds another node crashes during the leave (and comes back). Both large
// values end byte-exact on their bucket's new holder (unless that holder was the one that
// crashed while holding it), and no request was ever too large.
TEST(ShardingSim, LeaveHandsOverValuesLargerThanOneRequest) {
  uint64_t pieces = 0;
  const int seeds = ForEachSeed([&](uint64_t seed) {
    Failures f;
    constexpr int kN = 4;
    ShardSimOptions o = Options(kN);
    o.max_request_bytes = 64 << 10;
    o.core.max_transfer_bytes = 16 << 10;
    ShardSim s(seed, o);
    SeededRng rng = s.sim().DeriveRng("test");
    if (!Converge(s, f, Range(kN), Range(kN), 10 * kSecond, 20 * kSecond)) return f;
    const std::vector<int> holders = s.Holders();
    const int leaver = holders[KeyBucket("big:0").value()];
    // Two large values on the leaver: one under "big:0", one under the first key it holds after.
    std::map<std::string, std::string> big;
    for (int i = 0; big.size() < 2 && i < 100000; ++i) {
      const std::string key = fmt::format("big:{}", i);
      if (holders[KeyBucket(key).value()] != leaver) continue;
      std::string value(300'000 + rng.Uniform(1000), '\0');
      for (char& c : value) c = static_cast<char>(rng.Uniform(256));
      if (!s.Put(leaver, key, value)) {
        f.push_back("cannot store a large value on its holder");
        return f;
      }
      big[key] = std::move(value);
    }
    s.StartWrites();
    s.cluster().RunFor(Rand(rng, 500 * kMillisecond));
    s.SetLeaving(leaver);
    std::vector<int> rest = Without(Range(kN), leaver);
    // The crash victim, and whether it held a large value's bucket when it crashed.
    std::set<uint16_t> exposed;
    if (rng.Uniform(2) == 0) {
      const int victim = rest[rng.Uniform(rest.size())];
      s.cluster().RunFor(Rand(rng, 800 * kMillisecond));
      const std::vector<int> now = s.Holders();
      for (const auto& [key, value] : big) {
        const uint16_t b = KeyBucket(key).value();
        if (now[b] == victim) exposed.insert(b);
      }
      s.Crash(victim);
      s.cluster().RunFor(Rand(rng, 3 * kSecond));
      s.Restart(victim);
    }
    if (!s.cluster().RunUntil(
            [&] { return s.core(leaver)->Drained() && s.Converged(rest, Range(kN), nullptr); },
            60 * kSecond, 20 * kMillisecond)) {
      std::string why;
      s.Converged(rest, Range(kN), &why);
      f.push_back(fmt::format(
          "node {} not drained within 60 s (drained={}, last failure: {}): "
          "{}{}",
          leaver, s.core(leaver)->Drained(), s.core(leaver)->last_failure(), why, s.Describe()));
      return f;
    }
    if (!Quiesce(s, f, rest, Range(kN))) return f;
    const std::vector<int> after = s.Holders();
    for (const auto& [key, value] : big) {
      const uint16_t b = KeyBucket(key).value();
      if (exposed.count(b) > 0) continue;
      const std::string* got = after[b] >= 0 ? s.Get(after[b], key) : nullptr;
      if (got == nullptr) {
        f.push_back(fmt::format("{} (bucket {}) lost", key, b));
      } else if (*got != value) {
        f.push_back(fmt::format("{} (bucket {}) has {} bytes, not the {} written", key, b,
                                got->size(), value.size()));
      }
    }
    if (s.oversized_requests() != 0) {
      f.push_back(fmt::format("{} requests over the limit", s.oversized_requests()));
    }
    pieces += s.core(leaver)->counters().pieces_sent;
    if (s.core(leaver)->counters().pieces_sent == 0) f.push_back("no chunk went in pieces");
    CollectViolations(s, f);
    return f;
  });
  std::printf("[  SUMMARY ] large values: %d seeds, %.1f pieces sent per leave\n", seeds,
              static_cast<double>(pieces) / seeds);
}

// 3c. A leave that cannot complete: the others refuse any chunk over 100 KiB, and the leaver
// holds a 300 KiB value. The leaver keeps the batch with that key (and the key) and keeps being
// told to retry for as long as another node is not leaving (NextLeaveStep says wait, the last
// failure says why); once the others announce their leave too, every node's step is "no taker"
// within a bounded time.
TEST(ShardingSim, LeaveThatCannotCompleteWaitsForATakerOnly) {
  const int seeds = ForEachSeed([&](uint64_t seed) {
    Failures f;
    constexpr int kN = 3;
    ShardSimOptions o = Options(kN);
    o.core.max_assembly_bytes = 100 << 10;
    o.core.max_transfer_bytes = 16 << 10;
    ShardSim s(seed, o);
    if (!Converge(s, f, Range(kN), Range(kN), 10 * kSecond, 20 * kSecond)) return f;
    const std::vector<int> holders = s.Holders();
    const std::string key = "big:0";
    const uint16_t bucket = KeyBucket(key).value();
    const int leaver = holders[bucket];
    const std::string value(300'000, 'v');
    if (!s.Put(leaver, key, value)) {
      f.push_back("cannot store the large value");
      return f;
    }
    s.SetLeaving(leaver);
    auto step = [&](int i) {
      ShardingCore* c = s.core(i);
      return NextLeaveStep(c->Drained(), false, c->Takers().size(), c->send_batches());
    };
    // Long after every other bucket went, the leaver still holds the big key's batch, retrying.
    s.cluster().RunFor(30 * kSecond);
    ShardingCore* c = s.core(leaver);
    const std::vector<uint16_t> held = c->HeldBuckets();
    if (std::find(held.begin(), held.end(), bucket) == held.end()) {
      f.push_back("the big key's bucket left the leaver");
    }
    if (held.size() > o.core.batch_buckets) {
      f.push_back(fmt::format("the leaver still holds {} buckets", held.size()));
    }
    if (step(leaver) != LeaveStep::kWait) {
      f.push_back(fmt::format("leaver's step {} with takers there", ToString(step(leaver))));
    }
    if (c->last_failure().find("exceeds") == std::string::npos) {
      f.push_back("last failure: '" + c->last_failure() + "'");
    }
    const std::string* kept = s.Get(leaver, key);
    if (kept == nullptr || *kept != value) f.push_back("the leaver lost the big value");
    // Everyone leaves: nobody can take anything, and each node stops waiting.
    for (int i : Without(Range(kN), leaver)) s.SetLeaving(i);
    if (!s.cluster().RunUntil(
            [&] {
              for (int i : Range(kN)) {
                const LeaveStep st = step(i);
                if (st != LeaveStep::kNoTaker && st != LeaveStep::kDrained) return false;
              }
              return true;
            },
            20 * kSecond, 10 * kMillisecond)) {
      f.push_back(fmt::format("steps {} {} {} 20 s after everyone left:{}", ToString(step(0)),
                              ToString(step(1)), ToString(step(2)), s.Describe()));
    }
    if (step(leaver) != LeaveStep::kNoTaker) f.push_back("the leaver drained after all");
    CollectViolations(s, f);
    return f;
  });
  EXPECT_GT(seeds, 0);
}

// 4. One of five nodes crashes under writes: once SWIM declares it dead its buckets are adopted
// by the others (nothing else moves), every bucket has one owner, and the writes to the
// survivors' buckets are intact.
TEST(ShardingSim, CrashedNodesBucketsAreReadopted) {
  uint64_t lost_keys = 0;
  ReadStats reads;
  const int seeds = ForEachSeed([&](uint64_t seed) {
    Failures f;
    constexpr int kN = 5;
    ShardSim s(seed, Options(kN));
    SeededRng rng = s.sim().DeriveRng("test");
    if (!Converge(s, f, Range(kN), Range(kN), 10 * kSecond, 20 * kSecond)) return f;
    s.StartWrites();
    s.cluster().RunFor(Rand(rng, 1 * kSecond));
    const int victim = static_cast<int>(rng.Uniform(kN));
    const std::vector<int> before = s.Holders();
    const auto moves_before = s.moves();
    const uint64_t adopted_before = s.adopted();
    s.Crash(victim);
    const std::vector<int> live = Without(Range(kN), victim);
    if (!s.cluster().RunUntil([&] { return s.cluster().AllSee(live, victim, MemberState::kDead); },
                              30 * kSecond)) {
      f.push_back("the crashed node is not dead everywhere within 30 s");
      return f;
    }
    if (!Converge(s, f, live, live, 5 * kSecond, 20 * kSecond)) return f;
    s.cluster().RunFor(Rand(rng, 1 * kSecond));
    if (!Quiesce(s, f, live, live)) return f;
    const std::vector<int> after = s.Holders();
    uint64_t orphans = 0;
    for (uint32_t b = 0; b < kNumBuckets; ++b) {
      if (before[b] == victim) {
        ++orphans;
      } else if (after[b] != before[b]) {
        f.push_back(fmt::format("bucket {} moved from node {} to node {}", b, before[b], after[b]));
        break;
      }
    }
    if (s.moves() != moves_before) f.push_back("buckets migrated after the crash");
    if (s.adopted() - adopted_before != orphans) {
      f.push_back(fmt::format("{} buckets adopted, the dead node held {}",
                              s.adopted() - adopted_before, orphans));
    }
    CheckBalance(s, f, live);
    const ShardSim::WriteCheck w = CheckWrites(s, f);
    lost_keys += w.excused;
    // Only the writes to the crashed node's buckets may be excused.
    std::set<std::string> exposable;
    for (const AckedWrite& a : s.acks()) {
      if (before[KeyBucket(a.key).value()] == victim) exposable.insert(a.key);
    }
    if (w.excused > exposable.size()) {
      f.push_back(fmt::format("{} keys excused, but only {} were in the crashed node's buckets",
                              w.excused, exposable.size()));
    }
    CollectViolations(s, f);
    if (!s.strict()) f.push_back("a live member was declared dead");
    reads.Add(s);
    return f;
  });
  std::printf("[  SUMMARY ] crash: %d seeds, keys exposed by the crash avg %.1f, %s\n", seeds,
              static_cast<double>(lost_keys) / seeds, reads.ToString().c_str());
}

// 5. Under writes: random partitions and heals, a crash and a restart, slow links. After healing
// and a stable period: one epoch everywhere, every bucket ACTIVE on exactly one node, and every
// write acknowledged since its bucket was last exposed to loss (crash, split brain) intact.
// Three quarters of the keys at most may be excused: the faults expose only the buckets of a
// crashed node or of a split brain (up to two crashes and a 2|3 split per run; over 200 seeds
// the share averages 16% and peaks below 60%), so a run that excuses nearly everything has lost
// its check.
constexpr double kMaxExcusedShare = 0.75;

// The fault scenario of one seed; `s` is the simulation (for its counters and trace hash).
Failures RunFaults(ShardSim& s, uint64_t* faults, ShardSim::WriteCheck* check) {
  Failures f;
  constexpr int kN = 5;
  SeededRng rng = s.sim().DeriveRng("test");
  if (!Converge(s, f, Range(kN), Range(kN), 10 * kSecond, 20 * kSecond)) return f;
  s.StartWrites();
  bool partitioned = false, slow = false;
  int crashed = -1, crashes = 0;
  const int64_t end = s.Now() + 20 * kSecond;
  while (s.Now() < end) {
    s.cluster().RunFor(300 * kMillisecond + Rand(rng, 2 * kSecond));
    ++*faults;
    switch (rng.Uniform(4)) {
      case 0:
      case 1:
        if (partitioned) {
          s.HealAll();
          partitioned = false;
        } else {
          std::vector<int> a, b;
          const int minority = 1 + static_cast<int>(rng.Uniform(2));
          std::vector<int> order = Range(kN);
          for (int i = kN - 1; i > 0; --i) {
            std::swap(order[i], order[static_cast<size_t>(rng.Uniform(i + 1))]);
          }
          for (int i = 0; i < kN; ++i) (i < minority ? a : b).push_back(order[i]);
          s.Partition(a, b);
          partitioned = true;
        }
        break;
      case 2:
        if (crashed >= 0) {
          s.Restart(crashed);
          crashed = -1;
        } else if (crashes < 2) {
          crashed = static_cast<int>(rng.Uniform(kN));
          s.Crash(crashed);
          ++crashes;
        }
        break;
      default:
        if (slow) {
          s.RestoreLinks();
        } else {
          s.SetLinkDelay(sim::DelayDistribution::Exponential(1 * kMillisecond, 30 * kMillisecond,
                                                             400 * kMillisecond));
        }
        slow = !slow;
        break;
    }
  }
  s.HealAll();
  s.RestoreLinks();
  if (crashed >= 0) s.Restart(crashed);
  if (!Converge(s, f, Range(kN), Range(kN), 60 * kSecond, 60 * kSecond)) return f;
  s.cluster().RunFor(Rand(rng, 1 * kSecond));
  if (!Quiesce(s, f, Range(kN), Range(kN))) return f;
  CheckBalance(s, f, Range(kN));
  const ShardSim::WriteCheck w = CheckWrites(s, f);
  if (static_cast<double>(w.excused) > kMaxExcusedShare * static_cast<double>(w.keys)) {
    f.push_back(fmt::format("{} of {} keys excused (exposed to loss): more than {:.0f}%", w.excused,
                            w.keys, kMaxExcusedShare * 100));
  }
  *check = w;
  CollectViolations(s, f);
  return f;
}

TEST(ShardingSim, ConvergesAfterPartitionsCrashesAndDelays) {
  uint64_t faults = 0, excused = 0, checked = 0, keys = 0, duplicates = 0;
  ReadStats reads;
  const int seeds = ForEachSeed([&](uint64_t seed) {
    ShardSim s(seed, Options(5));
    ShardSim::WriteCheck w;
    Failures f = RunFaults(s, &faults, &w);
    excused += w.excused;
    checked += w.checked;
    keys += w.keys;
    duplicates += s.excused_duplicates();
    reads.Add(s);
    return f;
  });
  std::printf(
      "[  SUMMARY ] faults: %d seeds, %.1f fault steps per seed, keys checked avg %.1f, exposed "
      "to loss avg %.1f (%.1f%% of keys), duplicate ACTIVE holders excused avg %.1f, %s\n",
      seeds, static_cast<double>(faults) / seeds, static_cast<double>(checked) / seeds,
      static_cast<double>(excused) / seeds,
      keys == 0 ? 0.0 : 100.0 * static_cast<double>(excused) / static_cast<double>(keys),
      static_cast<double>(duplicates) / seeds, reads.ToString().c_str());
}

// 6. A seed's run is a function of the seed: the fault scenario run twice with one seed gives the
// same trace hash (bucket state changes, maps, writes and reads with their times), and another
// seed a different one.
TEST(ShardingSim, SameSeedSameTrace) {
  log::SetLevel("error");
  auto run = [](uint64_t seed) {
    ShardSim s(seed, Options(5));
    uint64_t faults = 0;
    ShardSim::WriteCheck w;
    const Failures f = RunFaults(s, &faults, &w);
    EXPECT_TRUE(f.empty()) << "seed " << seed << ": " << (f.empty() ? "" : f.front());
    return std::vector<uint64_t>{s.trace_hash(), s.sim().TraceHash(),
                                 static_cast<uint64_t>(s.Now()), s.acks().size(), s.reads()};
  };
  const std::vector<uint64_t> first = run(3);
  EXPECT_EQ(first, run(3));
  EXPECT_NE(first[0], run(4)[0]);
}

}  // namespace
}  // namespace shoal::sharding
