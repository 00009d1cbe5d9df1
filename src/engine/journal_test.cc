// The journal against the real command handlers: random sequences of every write command, with
// TTLs, lazy and active expiry, eviction, migration and flushes on a fake clock. Replaying the
// journal into an empty table must give the same table.
#include <gtest/gtest.h>

#include <algorithm>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/hash.h"
#include "common/keyslot.h"
#include "common/rng.h"
#include "engine/command.h"
#include "storage/dump.h"
#include "storage/journal.h"
#include "storage/table.h"

namespace shoal::engine {
namespace {

using storage::Entry;
using storage::Journal;
using storage::JournalRecord;
using storage::Table;

struct Collector : storage::JournalConsumer {
  void OnRecord(const JournalRecord& r) override { records.push_back(r); }
  std::vector<JournalRecord> records;
};

// Every entry, expired ones included: "bucket key" -> "type expire value".
std::map<std::string, std::string> Contents(const Table& t) {
  std::map<std::string, std::string> out;
  for (uint32_t b = 0; b < kNumBuckets; ++b) {
    t.ForEachInBucket(BucketId(static_cast<uint16_t>(b)), [&](const Entry* e) {
      std::string v =
          std::to_string(static_cast<int>(e->type())) + " " + std::to_string(e->expire_ms()) + " ";
      if (e->type() == storage::ObjType::kString) {
        v += e->str();
      } else {
        std::map<std::string, std::string> fields(e->hash()->map().begin(), e->hash()->map().end());
        for (const auto& [f, x] : fields) v += f + "=" + x + ";";
      }
      out[std::to_string(b) + " " + std::string(e->key())] = v;
    });
  }
  return out;
}

uint64_t Digest(const std::map<std::string, std::string>& m) {
  uint64_t h = m.size();
  for (const auto& [k, v] : m) h = h * 1099511628211ULL ^ Hash64(k + "\n" + v);
  return h;
}

class JournalTest : public ::testing::Test {
 protected:
  JournalTest() { table.set_journal(&journal); }

  std::string Run(const std::vector<std::string>& args) {
    const CommandSpec* spec = FindCommand(args[0]);
    EXPECT_NE(spec, nullptr) << args[0];
    if (spec == nullptr || spec->key_handler == nullptr) return "<none>";
    std::vector<std::string_view> views(args.begin(), args.end());
    std::string out;
    resp::ReplyBuilder rb(&out, 2);
    ExecContext ctx{Args(views.data(), views.size()), &rb, nullptr, &table, clock.NowUnixMillis()};
    journal.BeginUnit();
    spec->key_handler(ctx);
    journal.EndUnit();
    return out;
  }

  // Replays what the collector holds into a fresh table; expects the same contents.
  void ExpectReplayMatches() {
    Table replay(&clock, 99);
    uint64_t expect_lsn = 1;
    for (const JournalRecord& r : sink.records) {
      ASSERT_EQ(r.lsn.value(), expect_lsn++);
      Status st = storage::ApplyJournalOp(replay, r.bucket, r.op);
      ASSERT_TRUE(st.ok()) << st.error().message() << " in " << r.op;
    }
    EXPECT_EQ(journal.lsn().value(), sink.records.size());
    const auto want = Contents(table);
    const auto got = Contents(replay);
    EXPECT_EQ(Digest(want), Digest(got));
    EXPECT_EQ(want, got);
  }

  FakeClock clock;
  Journal journal;
  Table table{&clock, 7};
  Collector sink;
};

TEST_F(JournalTest, NoOpWritesRecordNothing) {
  ASSERT_TRUE(journal.Subscribe(&sink, Lsn(1)).ok());
  Run({"SET", "k", "v"});
  ASSERT_EQ(journal.lsn().value(), 1u);
  Run({"SET", "k", "w", "NX"});
  Run({"SETNX", "k", "w"});
  Run({"DEL", "missing"});
  Run({"HDEL", "missing", "f"});
  Run({"PERSIST", "k"});
  Run({"SET", "other", "v", "XX"});
  Run({"GET", "k"});
  EXPECT_EQ(journal.lsn().value(), 1u);
  EXPECT_EQ(sink.records.size(), 1u);
}

TEST_F(JournalTest, OperationsAreEffects) {
  ASSERT_TRUE(journal.Subscribe(&sink, Lsn(1)).ok());
  const int64_t now = clock.NowUnixMillis();
  Run({"SET", "k", "v", "EX", "10"});
  Run({"INCRBYFLOAT", "f", "1.5"});
  Run({"INCRBYFLOAT", "f", "2"});
  Run({"SET", "k", "w", "KEEPTTL", "GET"});
  Run({"HINCRBYFLOAT", "h", "x", "0.25"});
  std::vector<std::string> ops;
  std::vector<std::string_view> a;
  for (const auto& r : sink.records) {
    ASSERT_TRUE(storage::ParseJournalOp(r.op, &a).ok());
    std::string s;
    for (auto x : a) s += std::string(x) + " ";
    ops.push_back(s);
  }
  const std::string at = std::to_string(now + 10'000);
  EXPECT_EQ(ops,
            (std::vector<std::string>{"SET k v PXAT " + at + " ", "SET f 1.5 ", "SET f 3.5 ",
                                      "SET k w PXAT " + at + " ", "RESTOREHASH h -1 x 0.25 "}));
}

TEST_F(JournalTest, UnitsOfSeveralRecordsAreGroups) {
  ASSERT_TRUE(journal.Subscribe(&sink, Lsn(1)).ok());
  Run({"SET", "a", "1"});
  Run({"MSET", "a", "2", "b", "3", "c", "4"});
  ASSERT_EQ(sink.records.size(), 4u);
  EXPECT_EQ(sink.records[0].group, 0u);
  const uint64_t g = sink.records[1].group;
  EXPECT_NE(g, 0u);
  for (size_t i = 1; i < 4; ++i) {
    EXPECT_EQ(sink.records[i].group, g);
    EXPECT_EQ(sink.records[i].group_parts, 1u);
    EXPECT_EQ(sink.records[i].group_end, i == 3);
  }
}

TEST_F(JournalTest, SubscribeFromAHeldLsnOnly) {
  Run({"SET", "a", "1"});  // nobody listens: counted, not kept
  EXPECT_EQ(journal.lsn().value(), 1u);
  EXPECT_TRUE(journal.held().empty());
  EXPECT_FALSE(journal.Subscribe(&sink, Lsn(1)).ok());
  EXPECT_FALSE(journal.Subscribe(&sink, Lsn(3)).ok());
  ASSERT_TRUE(journal.Subscribe(&sink, Lsn(2)).ok());
  Run({"SET", "b", "2"});
  Run({"SET", "c", "3"});
  Collector late;
  ASSERT_TRUE(journal.Subscribe(&late, Lsn(3)).ok());
  ASSERT_EQ(late.records.size(), 1u);
  EXPECT_EQ(late.records[0].lsn.value(), 3u);
  Run({"DEL", "a"});
  EXPECT_EQ(late.records.size(), 2u);
  EXPECT_EQ(sink.records.size(), 3u);
  journal.Unsubscribe(&late);
  journal.Unsubscribe(&sink);
  Run({"DEL", "b"});
  EXPECT_EQ(journal.lsn().value(), 5u);
  EXPECT_TRUE(journal.held().empty());
}

TEST_F(JournalTest, RingIsBounded) {
  Journal small(4);
  Table t(&clock, 3);
  t.set_journal(&small);
  Collector c;
  ASSERT_TRUE(small.Subscribe(&c, Lsn(1)).ok());
  for (int i = 0; i < 10; ++i)
    t.Put(BucketId(1), Entry::NewString("k" + std::to_string(i), "v", -1));
  EXPECT_EQ(small.held().size(), 4u);
  EXPECT_EQ(small.held().front().lsn.value(), 7u);
  Collector late;
  EXPECT_FALSE(small.Subscribe(&late, Lsn(6)).ok());
  EXPECT_TRUE(small.Subscribe(&late, Lsn(7)).ok());
  EXPECT_EQ(late.records.size(), 4u);
}

// Random sequences of every write command (the test fails if the command table gains a write
// command without a generator here), reads that expire lazily, active expiry, eviction,
// migration in and out, and flushes; then a replay of the journal.
TEST_F(JournalTest, RandomWritesReplayToTheSameTable) {
  ASSERT_TRUE(journal.Subscribe(&sink, Lsn(1)).ok());
  SeededRng rng(12345);
  std::vector<std::string> keys;
  for (int i = 0; i < 40; ++i) keys.push_back("key:" + std::to_string(i));
  auto key = [&] { return keys[rng.Uniform(keys.size())]; };
  auto num = [&](int lo, int hi) {
    return std::to_string(lo + static_cast<int>(rng.Uniform(hi - lo + 1)));
  };
  auto val = [&] {
    static const char* vals[] = {"a", "bb", "12", "7", "-3", "1.5", "hello", "99999", ""};
    return std::string(vals[rng.Uniform(9)]);
  };
  auto field = [&] { return "f" + num(0, 5); };
  auto at_ms = [&] { return std::to_string(clock.NowUnixMillis() + 1 + rng.Uniform(20'000)); };
  auto ttl_opt = [&](std::vector<std::string>* a) {
    switch (rng.Uniform(6)) {
      case 0:
        a->insert(a->end(), {"EX", num(1, 20)});
        break;
      case 1:
        a->insert(a->end(), {"PX", num(1, 20000)});
        break;
      case 2:
        a->insert(a->end(), {"PXAT", at_ms()});
        break;
      case 3:
        a->insert(a->end(),
                  {"EXAT", std::to_string(clock.NowUnixMillis() / 1000 + 1 + rng.Uniform(20))});
        break;
      case 4:
        a->push_back("KEEPTTL");
        break;
      default:
        break;
    }
  };
  using Gen = std::function<std::vector<std::string>()>;
  const std::map<std::string, Gen> gens = {
      {"set",
       [&] {
         std::vector<std::string> a = {"SET", key(), val()};
         ttl_opt(&a);
         if (rng.Uniform(4) == 0) a.push_back(rng.Uniform(2) ? "NX" : "XX");
         if (rng.Uniform(4) == 0) a.push_back("GET");
         return a;
       }},
      {"setnx",
       [&] {
         return std::vector<std::string>{"SETNX", key(), val()};
       }},
      {"setex",
       [&] {
         return std::vector<std::string>{"SETEX", key(), num(1, 20), val()};
       }},
      {"psetex",
       [&] {
         return std::vector<std::string>{"PSETEX", key(), num(1, 20000), val()};
       }},
      {"getset",
       [&] {
         return std::vector<std::string>{"GETSET", key(), val()};
       }},
      {"getdel",
       [&] {
         return std::vector<std::string>{"GETDEL", key()};
       }},
      {"getex",
       [&] {
         std::vector<std::string> a = {"GETEX", key()};
         switch (rng.Uniform(4)) {
           case 0:
             a.insert(a.end(), {"EX", num(1, 20)});
             break;
           case 1:
             a.insert(a.end(), {"PXAT", at_ms()});
             break;
           case 2:
             a.push_back("PERSIST");
             break;
           default:
             break;
         }
         return a;
       }},
      {"append",
       [&] {
         return std::vector<std::string>{"APPEND", key(), val()};
       }},
      {"setrange",
       [&] {
         return std::vector<std::string>{"SETRANGE", key(), num(0, 8), val()};
       }},
      {"incr",
       [&] {
         return std::vector<std::string>{"INCR", key()};
       }},
      {"decr",
       [&] {
         return std::vector<std::string>{"DECR", key()};
       }},
      {"incrby",
       [&] {
         return std::vector<std::string>{"INCRBY", key(), num(-50, 50)};
       }},
      {"decrby",
       [&] {
         return std::vector<std::string>{"DECRBY", key(), num(-50, 50)};
       }},
      {"incrbyfloat",
       [&] {
         return std::vector<std::string>{"INCRBYFLOAT", key(), "0." + num(1, 99)};
       }},
      {"mset",
       [&] {
         return std::vector<std::string>{"MSET", key(), val(), key(), val()};
       }},
      {"msetnx",
       [&] {
         return std::vector<std::string>{"MSETNX", key(), val(), key(), val()};
       }},
      {"del",
       [&] {
         return std::vector<std::string>{"DEL", key(), key()};
       }},
      {"unlink",
       [&] {
         return std::vector<std::string>{"UNLINK", key()};
       }},
      {"expire",
       [&] {
         return std::vector<std::string>{"EXPIRE", key(), num(-1, 20)};
       }},
      {"pexpire",
       [&] {
         return std::vector<std::string>{"PEXPIRE", key(), num(1, 20000)};
       }},
      {"expireat",
       [&] {
         return std::vector<std::string>{
             "EXPIREAT", key(), std::to_string(clock.NowUnixMillis() / 1000 + rng.Uniform(20))};
       }},
      {"pexpireat",
       [&] {
         return std::vector<std::string>{"PEXPIREAT", key(), at_ms()};
       }},
      {"persist",
       [&] {
         return std::vector<std::string>{"PERSIST", key()};
       }},
      {"rename",
       [&] {
         return std::vector<std::string>{"RENAME", key(), key()};
       }},
      {"renamenx",
       [&] {
         return std::vector<std::string>{"RENAMENX", key(), key()};
       }},
      {"hset",
       [&] { return std::vector<std::string>{"HSET", key(), field(), val(), field(), val()}; }},
      {"hmset",
       [&] {
         return std::vector<std::string>{"HMSET", key(), field(), val()};
       }},
      {"hsetnx",
       [&] {
         return std::vector<std::string>{"HSETNX", key(), field(), val()};
       }},
      {"hdel",
       [&] {
         return std::vector<std::string>{"HDEL", key(), field(), field()};
       }},
      {"hincrby",
       [&] {
         return std::vector<std::string>{"HINCRBY", key(), field(), num(-9, 9)};
       }},
      {"hincrbyfloat",
       [&] {
         return std::vector<std::string>{"HINCRBYFLOAT", key(), field(), "1.25"};
       }},
  };
  // Every keyed write command has a generator (FLUSHDB / FLUSHALL run over all workers: below).
  std::vector<std::string> names;
  for (const CommandSpec& s : AllCommands()) {
    if ((s.flags & kCmdWrite) && s.key_handler != nullptr && s.group != "replicated") {
      EXPECT_TRUE(gens.count(std::string(s.name))) << "no generator for " << s.name;
    }
  }
  for (const auto& [n, g] : gens) names.push_back(n);
  const std::vector<std::string> reads = {"GET", "TTL", "EXISTS", "HGET", "STRLEN", "HLEN"};

  size_t replies_ok = 0;
  for (int step = 0; step < 20000; ++step) {
    const uint64_t dice = rng.Uniform(100);
    if (dice < 70) {
      const std::string& n = names[rng.Uniform(names.size())];
      const std::string reply = Run(gens.at(n)());
      replies_ok += reply.starts_with("-") ? 0 : 1;
    } else if (dice < 82) {
      const std::string& r = reads[rng.Uniform(reads.size())];
      if (r == "HGET") {
        Run({"HGET", key(), field()});
      } else {
        Run({r, key()});
      }
    } else if (dice < 90) {
      clock.AdvanceMillis(static_cast<int64_t>(rng.Uniform(3000)));
    } else if (dice < 94) {
      table.ActiveExpireCycle(rng.Uniform(50));
    } else if (dice < 97) {
      static const storage::EvictionPolicy policies[] = {storage::EvictionPolicy::kAllKeysLru,
                                                         storage::EvictionPolicy::kVolatileLru,
                                                         storage::EvictionPolicy::kAllKeysRandom};
      table.set_lru_clock(static_cast<uint32_t>(step));
      table.EvictOne(policies[rng.Uniform(3)], 3);
    } else if (dice < 99) {
      // Migration: a bucket leaves, another arrives as chunk records.
      const std::string k = key();
      const BucketId b = KeyBucket(k);
      if (rng.Uniform(2) == 0) {
        table.ClearBucket(b);
      } else {
        std::string chunk;
        auto* h = new storage::HashObj();
        h->Set("m", val());
        Entry* src = rng.Uniform(2) ? Entry::NewString(k, "moved", clock.NowUnixMillis() + 5000)
                                    : Entry::NewHash(k, h, storage::kNoExpire);
        if (src->type() == storage::ObjType::kString) delete h;
        storage::DumpEntry(b, *src, &chunk);
        Entry::Free(src);
        ASSERT_TRUE(storage::ForEachRecord(chunk, [&](BucketId rb, std::string_view rec) {
                      table.Put(rb, storage::LoadRecord(rec));
                    }).ok());
      }
    } else if (step % 7 == 0) {
      table.Clear();  // FLUSHALL / FLUSHDB on this worker
    }
  }
  EXPECT_GT(replies_ok, 5000u);
  EXPECT_GT(table.size(), 0u);
  EXPECT_GT(table.stats().expired_keys, 0u);
  EXPECT_GT(table.stats().evicted_keys, 0u);
  std::set<std::string> kinds;
  std::vector<std::string_view> a;
  for (const auto& r : sink.records) {
    ASSERT_TRUE(storage::ParseJournalOp(r.op, &a).ok());
    kinds.insert(std::string(a[0]));
  }
  EXPECT_EQ(kinds, (std::set<std::string>{"SET", "DEL", "PEXPIREAT", "PERSIST", "RESTOREHASH",
                                          "HSET", "HDEL", "FLUSHALL", "DROPBUCKET"}));
  ExpectReplayMatches();
}

}  // namespace
}  // namespace shoal::engine
