#include "sharding/sim_harness.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <set>
#include <system_error>

#include "common/keyslot.h"
#include "sharding/peer_rpc.h"

namespace shoal::sharding {

using membership::MemberId;

namespace {

constexpr size_t kMaxViolations = 20;

membership::SimClusterOptions NoJoinOnStart(membership::SimClusterOptions o) {
  o.join_on_start = false;
  return o;
}

// A chunk: entries of [u16 bucket][u32 key length][key][u32 value length][value], little-endian.
void AppendU32(std::string& out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xFF));
}

void AppendEntry(std::string& out, uint16_t b, const std::string& key, const std::string& value) {
  out.push_back(static_cast<char>(b & 0xFF));
  out.push_back(static_cast<char>(b >> 8));
  AppendU32(out, static_cast<uint32_t>(key.size()));
  out += key;
  AppendU32(out, static_cast<uint32_t>(value.size()));
  out += value;
}

struct Entry {
  uint16_t bucket;
  std::string key;
  std::string value;
};

bool ReadU32(std::string_view& in, uint32_t* v) {
  if (in.size() < 4) return false;
  *v = 0;
  for (int i = 0; i < 4; ++i) *v |= static_cast<uint32_t>(static_cast<uint8_t>(in[i])) << (8 * i);
  in.remove_prefix(4);
  return true;
}

bool ReadString(std::string_view& in, std::string* s) {
  uint32_t n = 0;
  if (!ReadU32(in, &n) || in.size() < n) return false;
  s->assign(in.substr(0, n));
  in.remove_prefix(n);
  return true;
}

bool DecodeChunk(std::string_view in, std::vector<Entry>* out) {
  while (!in.empty()) {
    if (in.size() < 2) return false;
    Entry e;
    e.bucket = static_cast<uint16_t>(static_cast<uint8_t>(in[0]) |
                                     (static_cast<uint16_t>(static_cast<uint8_t>(in[1])) << 8));
    in.remove_prefix(2);
    if (e.bucket >= kNumBuckets || !ReadString(in, &e.key) || !ReadString(in, &e.value)) {
      return false;
    }
    out->push_back(std::move(e));
  }
  return true;
}

}  // namespace

struct ShardSim::Write {
  uint64_t id = 0;
  int client = 0;
  bool read = false;  // a read (GET) rather than a write
  std::string key;
  uint64_t value = 0;
  uint16_t bucket = 0;
};

struct ShardSim::Client {
  uint64_t outstanding = 0;  // the write awaited, 0 = none
};

struct ShardSim::Node {
  uint64_t gen = 0;  // the network incarnation the core belongs to
  std::unique_ptr<Io> io;
  std::unique_ptr<ShardingCore> core;
  std::vector<BucketState> plane = std::vector<BucketState>(kNumBuckets, BucketState::kNone);
  std::vector<MemberId> peer = std::vector<MemberId>(kNumBuckets);
  std::map<uint16_t, std::map<std::string, std::string>> store;
  std::map<uint16_t, std::vector<std::pair<Write, bool>>> held;  // write, may redirect
  std::shared_ptr<const BucketMap> map;
  bool has_view = false;
  uint64_t view_version = 0;
};

class ShardSim::Io final : public CoreIo {
 public:
  Io(ShardSim* sim, int index) : sim_(sim), index_(index) {}
  void Call(const MemberId& to, const Endpoint& cluster, std::string body, int64_t timeout_us,
            ReplyFn done) override {
    sim_->DoCall(index_, to, cluster, std::move(body), timeout_us, std::move(done));
  }
  void SetStates(const std::vector<uint16_t>& buckets, BucketState state,
                 const MemberId& peer) override {
    sim_->DoSetStates(index_, buckets, state, peer);
  }
  void PublishMap(std::shared_ptr<const BucketMap> map) override {
    sim_->DoPublishMap(index_, std::move(map));
  }
  void ReadBuckets(const std::vector<uint16_t>& buckets, ChunksFn done) override {
    sim_->DoReadBuckets(index_, buckets, std::move(done));
  }
  void ApplyChunk(std::string chunk, DoneFn done) override {
    sim_->DoApplyChunk(index_, std::move(chunk), std::move(done));
  }
  void DropBuckets(const std::vector<uint16_t>& buckets) override {
    sim_->DoDropBuckets(index_, buckets);
  }
  uint64_t KeyCount() override { return sim_->DoKeyCount(index_); }

 private:
  ShardSim* sim_;
  int index_;
};

ShardSim::ShardSim(uint64_t seed, ShardSimOptions options)
    : options_(std::move(options)),
      cluster_(seed, NoJoinOnStart(options_.cluster)),
      rng_(cluster_.sim().DeriveRng("sharding-harness")),
      rpc_(cluster_.net(), sim::RpcNetOptions{.max_request_bytes = options_.max_request_bytes}),
      active_count_(kNumBuckets, 0),
      exposed_at_(kNumBuckets, -1),
      clients_(static_cast<size_t>(options_.clients)) {
  for (int i = 0; i < cluster_.size(); ++i) {
    nodes_.push_back(std::make_unique<Node>());
    index_[cluster_.id(i)] = i;
  }
  cluster_.on_event = [this](int i, const membership::MemberEvent& e) { OnMemberEvent(i, e); };
  // Node 0 (everyone's seed) starts first; the others join within the spread.
  for (int i = 0; i < cluster_.size(); ++i) {
    const int64_t at = i == 0 ? 0
                              : static_cast<int64_t>(rng_.Uniform(static_cast<uint64_t>(
                                    std::max<int64_t>(options_.join_spread, 1))));
    sim().Schedule(at, [this, i] {
      cluster_.Join(i, {0});
      StartCore(i);
    });
  }
}

ShardSim::~ShardSim() {
  cluster_.on_event = nullptr;
  for (auto& n : nodes_) n->core.reset();
}

ShardingCore* ShardSim::core(int i) { return node(i).core.get(); }

std::vector<int> ShardSim::UpNodes() const {
  std::vector<int> out;
  for (int i = 0; i < size(); ++i) {
    if (up(i) && node(i).core != nullptr) out.push_back(i);
  }
  return out;
}

int ShardSim::IndexOf(const MemberId& id) const {
  auto it = index_.find(id);
  return it == index_.end() ? -1 : it->second;
}

bool ShardSim::Alive(int i, uint64_t gen) const {
  return up(i) && node(i).core != nullptr && node(i).gen == gen;
}

uint64_t ShardSim::Generation(int i) {
  return cluster_.net().node(cluster_.endpoint(i)).generation();
}

int64_t ShardSim::LocalNow(int i) {
  return cluster_.net().node(cluster_.endpoint(i)).clock().MonotonicMicros();
}

int64_t ShardSim::LinkDelay(int from, int to) {
  return cluster_.net().Link(cluster_.endpoint(from), cluster_.endpoint(to)).delay.Sample(rng_);
}

bool ShardSim::Blocked(int from, int to) {
  return cluster_.net().IsBlocked(cluster_.endpoint(from), cluster_.endpoint(to));
}

int ShardSim::LowestUp(int except) const {
  for (int i = 0; i < size(); ++i) {
    if (i != except && up(i) && node(i).core != nullptr) return i;
  }
  return -1;
}

int64_t ShardSim::StoreDelay() {
  return static_cast<int64_t>(rng_.Uniform(static_cast<uint64_t>(options_.store_delay) + 1));
}

void ShardSim::Violation(std::string what) {
  if (violations_.size() < kMaxViolations) {
    violations_.push_back(sim::FormatTime(Now()) + " " + std::move(what));
  } else if (violations_.size() == kMaxViolations) {
    violations_.push_back("... more violations left out");
  }
}

// ---------------------------------------------------------------------------------------------
// Nodes

void ShardSim::StartCore(int i) {
  Node& n = node(i);
  if (!up(i)) return;
  n.gen = Generation(i);
  n.io = std::make_unique<Io>(this, i);
  n.core = std::make_unique<ShardingCore>(id(i), options_.core, n.io.get());
  rpc_.Serve(cluster_.endpoint(i), std::string(kShardMethod),
             [this, i](const Endpoint&, std::string_view body, sim::RpcNet::Respond respond) {
               if (node(i).core == nullptr) {
                 respond(Error(Errc::kRefused, "no sharding core"));
                 return;
               }
               ServeRequest(*node(i).core, body, std::move(respond));
             });
  n.has_view = false;
  n.map = nullptr;
  RefreshView(i);
  ScheduleTick(i, n.gen,
               static_cast<int64_t>(rng_.Uniform(static_cast<uint64_t>(options_.tick_interval))));
}

void ShardSim::ScheduleTick(int i, uint64_t gen, int64_t delay) {
  sim().Schedule(delay, [this, i, gen] {
    if (!Alive(i, gen)) return;
    RefreshView(i);
    node(i).core->Tick(LocalNow(i));
    ScheduleTick(i, gen, options_.tick_interval);
  });
}

void ShardSim::RefreshView(int i) {
  Node& n = node(i);
  if (n.core == nullptr || !up(i)) return;
  auto snap = cluster_.core(i).Snapshot();
  if (n.has_view && snap->version() == n.view_version) return;
  n.has_view = true;
  n.view_version = snap->version();
  const MemberId coordinator = n.core->coordinator();
  n.core->OnView(std::move(snap), LocalNow(i));
  if (options_.verbose && n.core->coordinator() != coordinator) {
    std::printf("%s node %d: coordinator %d\n", sim::FormatTime(Now()).c_str(), i,
                IndexOf(n.core->coordinator()));
  }
}

void ShardSim::OnMemberEvent(int i, const membership::MemberEvent& e) {
  if (options_.verbose) {
    std::printf("%s swim: node %d sees %d %s\n", sim::FormatTime(Now()).c_str(), i,
                IndexOf(e.member.record.id), std::string(ToString(e.kind)).c_str());
  }
  if (e.kind == membership::MemberEventKind::kDead) {
    const int subject = IndexOf(e.member.record.id);
    if (subject >= 0 && up(subject)) {
      ++false_deaths_;
      faults_ = true;
      EndFault();  // the false death's view takes the grace to heal
    }
  }
  // Not from inside the Swim call: at the same instant, from the loop.
  if (node(i).core == nullptr) return;
  const uint64_t gen = node(i).gen;
  sim().Schedule(0, [this, i, gen] {
    if (Alive(i, gen)) RefreshView(i);
  });
}

int ShardSim::AddNode() {
  const int i = cluster_.AddNode();
  nodes_.push_back(std::make_unique<Node>());
  index_[cluster_.id(i)] = i;
  const int seed = LowestUp(i);
  cluster_.Join(i, {seed < 0 ? i : seed});
  StartCore(i);
  return i;
}

void ShardSim::Crash(int i) {
  Node& n = node(i);
  if (!up(i)) return;
  if (options_.verbose) std::printf("%s crash %d\n", sim::FormatTime(Now()).c_str(), i);
  for (uint32_t b = 0; b < kNumBuckets; ++b) {
    if (n.plane[b] == BucketState::kActive) SetActive(i, static_cast<uint16_t>(b), false);
    if (n.plane[b] == BucketState::kActive || n.plane[b] == BucketState::kSending) {
      exposed_at_[b] = Now();
    }
  }
  for (const auto& [b, list] : n.held) held_ -= list.size();
  n.held.clear();
  n.store.clear();
  std::fill(n.plane.begin(), n.plane.end(), BucketState::kNone);
  std::fill(n.peer.begin(), n.peer.end(), MemberId());
  n.core.reset();
  n.io.reset();
  n.map = nullptr;
  n.has_view = false;
  last_change_ = Now();
  cluster_.Crash(i);
}

void ShardSim::Restart(int i) {
  if (up(i)) return;
  if (options_.verbose) std::printf("%s restart %d\n", sim::FormatTime(Now()).c_str(), i);
  const int seed = LowestUp(i);
  cluster_.Restart(i, {seed < 0 ? i : seed});
  StartCore(i);
}

void ShardSim::Partition(const std::vector<int>& a, const std::vector<int>& b) {
  faults_ = true;
  partitioned_ = true;
  if (options_.verbose) {
    std::string sa, sb;
    for (int x : a) sa += fmt::format(" {}", x);
    for (int x : b) sb += fmt::format(" {}", x);
    std::printf("%s partition%s |%s\n", sim::FormatTime(Now()).c_str(), sa.c_str(), sb.c_str());
  }
  cluster_.Partition(a, b);
}

void ShardSim::HealAll() {
  if (options_.verbose) std::printf("%s heal\n", sim::FormatTime(Now()).c_str());
  cluster_.HealAll();
  if (partitioned_) EndFault();
  partitioned_ = false;
}

void ShardSim::SetLinkDelay(const sim::DelayDistribution& delay) {
  faults_ = true;
  slow_links_ = true;
  sim::LinkConfig link = options_.cluster.link;
  link.delay = delay;
  cluster_.net().SetDefaultLink(link);
}

void ShardSim::RestoreLinks() {
  cluster_.net().ClearLinkOverrides();
  if (slow_links_) EndFault();
  slow_links_ = false;
  cluster_.net().SetDefaultLink(options_.cluster.link);
}

void ShardSim::SetLeaving(int i) {
  membership::MemberRecord rec = cluster_.core(i).self();
  rec.labels[std::string(kLeavingLabel)] = "1";
  Status st = cluster_.core(i).UpdateSelf(rec);
  if (!st.ok()) Violation("UpdateSelf with the leaving label failed: " + st.error().message());
  if (node(i).core != nullptr) node(i).core->SetLeaving();
}

// ---------------------------------------------------------------------------------------------
// CoreIo

void ShardSim::DoCall(int from, const MemberId& to, const Endpoint& cluster, std::string body,
                      int64_t timeout_us, CoreIo::ReplyFn done) {
  if (options_.verbose) TraceRequest(from, IndexOf(to), body);
  CallPeer(rpc_.channel(cluster_.endpoint(from)), id(from), cluster, body, timeout_us,
           [this, from, to = IndexOf(to), gen = node(from).gen,
            done = std::move(done)](Result<std::string> r) mutable {
             if (!Alive(from, gen)) return;  // the caller's core died: nobody is waiting
             if (options_.verbose && !r.ok()) {
               std::printf("%s node %d: call to %d failed: %s\n", sim::FormatTime(Now()).c_str(),
                           from, to, r.error().message().c_str());
             }
             done(std::move(r));
           });
}

void ShardSim::TraceRequest(int from, int to, std::string_view body) {
  auto m = Decode(body);
  if (!m.ok()) return;
  const auto mentions = [this](const std::vector<uint16_t>& buckets) {
    return options_.verbose_bucket < 0 ||
           std::find(buckets.begin(), buckets.end(), options_.verbose_bucket) != buckets.end();
  };
  std::string what;
  if (const auto* a = std::get_if<AdoptMsg>(&*m)) {
    if (mentions(a->buckets)) what = fmt::format("adopt {} buckets", a->buckets.size());
  } else if (const auto* d = std::get_if<DropMsg>(&*m)) {
    if (mentions(d->buckets)) what = fmt::format("drop {} buckets", d->buckets.size());
  } else if (std::holds_alternative<PollMsg>(*m)) {
    what = "poll";
  } else if (const auto* g = std::get_if<MigrateMsg>(&*m)) {
    if (mentions(g->buckets)) {
      what = fmt::format("migrate {} buckets to {}", g->buckets.size(), IndexOf(g->to));
    }
  }
  if (what.empty()) return;
  std::printf("%s request %d -> %d: %s\n", sim::FormatTime(Now()).c_str(), from, to, what.c_str());
}

void ShardSim::EndFault() {
  lenient_until_ = std::max(lenient_until_, Now() + options_.fault_grace);
}

bool ShardSim::Lenient() const { return partitioned_ || slow_links_ || Now() < lenient_until_; }

void ShardSim::Trace(std::initializer_list<uint64_t> words) {
  for (uint64_t w : words) {
    for (int k = 0; k < 8; ++k) {
      trace_hash_ ^= (w >> (8 * k)) & 0xff;
      trace_hash_ *= 1099511628211ull;
    }
  }
}

void ShardSim::SetActive(int i, uint16_t b, bool active) {
  if (active) {
    ++active_count_[b];
    if (active_count_[b] >= 2) {
      exposed_at_[b] = Now();
      if (Lenient()) {
        ++excused_duplicates_;
      } else {
        std::string who;
        for (int n = 0; n < size(); ++n) {
          if (node(n).plane[b] == BucketState::kActive) who += fmt::format(" {}", n);
        }
        Violation(fmt::format("bucket {} ACTIVE on several nodes:{}", b, who));
      }
    }
  } else {
    if (active_count_[b] >= 2) exposed_at_[b] = Now();
    --active_count_[b];
  }
}

void ShardSim::DoSetStates(int i, const std::vector<uint16_t>& buckets, BucketState state,
                           const MemberId& peer) {
  Node& n = node(i);
  const bool mentioned =
      options_.verbose_bucket < 0 ||
      std::find(buckets.begin(), buckets.end(), options_.verbose_bucket) != buckets.end();
  if (options_.verbose && mentioned) {
    std::printf("%s node %d: %zu buckets (first %u, was %s) -> %s peer %d\n",
                sim::FormatTime(Now()).c_str(), i, buckets.size(), buckets.empty() ? 0 : buckets[0],
                buckets.empty() ? "" : std::string(ToString(n.plane[buckets[0]])).c_str(),
                std::string(ToString(state)).c_str(), IndexOf(peer));
  }
  for (uint16_t b : buckets) {
    const BucketState old = n.plane[b];
    const MemberId old_peer = n.peer[b];
    Trace({1, static_cast<uint64_t>(Now()), static_cast<uint64_t>(i), b,
           static_cast<uint64_t>(state), static_cast<uint64_t>(IndexOf(peer) + 1)});
    n.plane[b] = state;
    n.peer[b] = peer;
    last_change_ = Now();
    if (old != BucketState::kActive && state == BucketState::kActive) {
      SetActive(i, b, true);
      if (old == BucketState::kReceiving) {
        ++moves_[{IndexOf(old_peer), i}];
      } else if (old != BucketState::kSending) {
        ++adopted_;
      }
    } else if (old == BucketState::kActive && state != BucketState::kActive) {
      SetActive(i, b, false);
    }
    if (old == BucketState::kSending && state != BucketState::kSending) {
      const uint64_t gen = n.gen;
      sim().Schedule(0, [this, i, gen, b] { ReleaseHeld(i, gen, b); });
    }
  }
}

void ShardSim::DoPublishMap(int i, std::shared_ptr<const BucketMap> map) {
  Node& n = node(i);
  if (options_.verbose) {
    std::string sets;
    for (uint16_t k = 0; k < map->sets().size(); ++k) {
      sets += fmt::format(" {}:{}", IndexOf(map->sets()[k].leader), map->CountOf(k));
    }
    std::printf("%s node %d: map epoch %llu (coordinator %d)%s\n", sim::FormatTime(Now()).c_str(),
                i, static_cast<unsigned long long>(map->epoch().value()),
                IndexOf(n.core->coordinator()), sets.c_str());
  }
  if (n.map != nullptr && map->epoch() <= n.map->epoch()) {
    Violation(fmt::format("node {} published epoch {} after {}", i, map->epoch().value(),
                          n.map->epoch().value()));
  }
  Trace({2, static_cast<uint64_t>(Now()), static_cast<uint64_t>(i), map->epoch().value()});
  n.map = std::move(map);
  last_change_ = Now();
}

void ShardSim::DoReadBuckets(int i, const std::vector<uint16_t>& buckets, CoreIo::ChunksFn done) {
  Node& n = node(i);
  auto chunks = std::make_shared<std::vector<std::string>>();
  std::string cur;
  size_t entries = 0;
  for (uint16_t b : buckets) {
    if (n.plane[b] != BucketState::kSending) {
      Violation(fmt::format("node {} reads bucket {} in state {}", i, b, ToString(n.plane[b])));
    }
    auto it = n.store.find(b);
    if (it == n.store.end()) continue;
    for (const auto& [key, value] : it->second) {
      AppendEntry(cur, b, key, value);
      if (++entries == options_.chunk_entries) {
        chunks->push_back(std::move(cur));
        cur.clear();
        entries = 0;
      }
    }
  }
  if (!cur.empty()) chunks->push_back(std::move(cur));
  auto fn = std::make_shared<CoreIo::ChunksFn>(std::move(done));
  const uint64_t gen = n.gen;
  sim().Schedule(StoreDelay(), [this, i, gen, fn, chunks] {
    if (Alive(i, gen)) (*fn)(std::move(*chunks));
  });
}

void ShardSim::DoApplyChunk(int i, std::string chunk, CoreIo::DoneFn done) {
  Node& n = node(i);
  std::vector<Entry> entries;
  auto status = std::make_shared<Status>();
  if (!DecodeChunk(chunk, &entries)) {
    *status = Error(std::make_error_code(std::errc::invalid_argument), "bad chunk");
  } else {
    for (Entry& e : entries) {
      if (n.plane[e.bucket] != BucketState::kReceiving) {
        Violation(fmt::format("node {} applies a chunk to bucket {} in state {}", i, e.bucket,
                              ToString(n.plane[e.bucket])));
      }
      n.store[e.bucket][e.key] = std::move(e.value);
      ++keys_moved_;
    }
  }
  auto fn = std::make_shared<CoreIo::DoneFn>(std::move(done));
  const uint64_t gen = n.gen;
  sim().Schedule(StoreDelay(), [this, i, gen, fn, status] {
    if (Alive(i, gen)) (*fn)(*status);
  });
}

void ShardSim::DoDropBuckets(int i, const std::vector<uint16_t>& buckets) {
  Node& n = node(i);
  for (uint16_t b : buckets) {
    if (n.plane[b] == BucketState::kActive || n.plane[b] == BucketState::kSending) {
      Violation(fmt::format("node {} drops bucket {} in state {}", i, b, ToString(n.plane[b])));
    }
    n.store.erase(b);
  }
}

bool ShardSim::Put(int i, const std::string& key, std::string value) {
  const uint16_t b = KeyBucket(key).value();
  Node& n = node(i);
  if (!up(i) || n.plane[b] != BucketState::kActive) return false;
  n.store[b][key] = std::move(value);
  return true;
}

const std::string* ShardSim::Get(int i, const std::string& key) const {
  const uint16_t b = KeyBucket(key).value();
  const Node& n = node(i);
  auto it = n.store.find(b);
  if (it == n.store.end()) return nullptr;
  auto kv = it->second.find(key);
  return kv == it->second.end() ? nullptr : &kv->second;
}

uint64_t ShardSim::DoKeyCount(int i) const {
  uint64_t keys = 0;
  for (const auto& [b, kv] : node(i).store) keys += kv.size();
  return keys;
}

// ---------------------------------------------------------------------------------------------
// Clients

void ShardSim::StartWrites() {
  if (writing_) return;
  writing_ = true;
  for (int c = 0; c < options_.clients; ++c) {
    if (clients_[c].outstanding == 0) Issue(c);
  }
}

void ShardSim::StopWrites() { writing_ = false; }

bool ShardSim::WritesIdle() const {
  if (writing_ || in_flight_ != 0 || held_ != 0) return false;
  for (const Client& c : clients_) {
    if (c.outstanding != 0) return false;
  }
  return true;
}

void ShardSim::Issue(int c) {
  if (!writing_ || clients_[c].outstanding != 0) return;
  Write w;
  w.id = next_write_++;
  w.client = c;
  w.key = fmt::format("key:{}", rng_.Uniform(static_cast<uint64_t>(options_.keys)));
  w.read = rng_.Bernoulli(options_.read_ratio);
  w.value = w.read ? 0 : next_value_++;
  w.bucket = KeyBucket(w.key).value();
  clients_[c].outstanding = w.id;
  sim().Schedule(options_.client_timeout, [this, c, id = w.id] {
    if (clients_[c].outstanding != id) return;
    clients_[c].outstanding = 0;  // gives up (the write may still be applied later)
    if (writing_) Issue(c);
  });
  SendWrite(w, static_cast<int>(rng_.Uniform(static_cast<uint64_t>(size()))));
}

void ShardSim::SendWrite(const Write& w, int n) {
  ++in_flight_;
  const int64_t d =
      options_.client_delay_min + static_cast<int64_t>(rng_.Uniform(static_cast<uint64_t>(
                                      options_.client_delay_max - options_.client_delay_min + 1)));
  sim().Schedule(d, [this, w, n] {
    --in_flight_;
    if (!up(n) || node(n).core == nullptr) {
      Reply(w, false);
      return;
    }
    Evaluate(n, w, true);
  });
}

void ShardSim::Evaluate(int n, const Write& w, bool may_redirect) {
  Node& nd = node(n);
  const uint16_t b = w.bucket;
  if (w.read && (nd.plane[b] == BucketState::kActive || nd.plane[b] == BucketState::kSending)) {
    CheckRead(n, w);
    Reply(w, true);
    return;
  }
  switch (nd.plane[b]) {
    case BucketState::kActive:
      nd.store[b][w.key] = std::to_string(w.value);
      acks_.push_back(AckedWrite{w.key, w.value, n, Now()});
      Trace({3, static_cast<uint64_t>(Now()), static_cast<uint64_t>(n), w.value});
      last_acked_[w.key] = acks_.size() - 1;
      if (options_.verbose && options_.verbose_bucket == b) {
        std::printf("%s node %d: write %s = %llu\n", sim::FormatTime(Now()).c_str(), n,
                    w.key.c_str(), static_cast<unsigned long long>(w.value));
      }
      Reply(w, true);
      return;
    case BucketState::kSending:
      nd.held[b].emplace_back(w, may_redirect);
      ++held_;
      return;
    case BucketState::kGarbage: {
      const int p = IndexOf(nd.peer[b]);
      if (may_redirect && p >= 0 && p != n) {
        Forward(n, p, w);
      } else {
        Reply(w, false);
      }
      return;
    }
    case BucketState::kNone:
    case BucketState::kReceiving: {
      const SetInfo* owner = nd.core->map()->OwnerOf(BucketId(b));
      const int p = owner == nullptr ? -1 : IndexOf(owner->leader);
      if (may_redirect && p >= 0 && p != n) {
        Forward(n, p, w);
      } else {
        Reply(w, false);
      }
      return;
    }
  }
}

void ShardSim::CheckRead(int n, const Write& r) {
  ++reads_;
  const Node& nd = node(n);
  const uint16_t b = r.bucket;
  const std::string* got = nullptr;
  if (auto bit = nd.store.find(b); bit != nd.store.end()) {
    if (auto kit = bit->second.find(r.key); kit != bit->second.end()) got = &kit->second;
  }
  Trace({4, static_cast<uint64_t>(Now()), static_cast<uint64_t>(n),
         got == nullptr ? 0 : std::strtoull(got->c_str(), nullptr, 10) + 1});
  auto lit = last_acked_.find(r.key);
  const AckedWrite* last = lit == last_acked_.end() ? nullptr : &acks_[lit->second];
  if (last == nullptr || (got != nullptr && *got == std::to_string(last->value))) return;
  // Not the last acknowledged value. Excused while the bucket is ACTIVE twice, or if it was
  // exposed to loss since that write.
  if (active_count_[b] >= 2 || last->at <= exposed_at_[b]) return;
  // The commit window: the target T committed and took this write before S heard of the commit.
  // A SENDING node missing a write that anyone else acknowledged is a violation.
  if (nd.plane[b] == BucketState::kSending && last->node == IndexOf(nd.peer[b])) {
    ++stale_sending_reads_;
    return;
  }
  Violation(
      fmt::format("node {} read {} = {} in bucket {} ({}), last acknowledged {} (node {} at {})", n,
                  r.key, got == nullptr ? std::string("nothing") : *got, b, ToString(nd.plane[b]),
                  last->value, last->node, sim::FormatTime(last->at)));
}

void ShardSim::Forward(int from, int to, const Write& w) {
  ++in_flight_;
  const bool cut = Blocked(from, to);
  sim().Schedule(LinkDelay(from, to), [this, from, to, w, cut] {
    --in_flight_;
    if (cut || Blocked(from, to) || !up(to) || node(to).core == nullptr) {
      Reply(w, false);
      return;
    }
    Evaluate(to, w, false);
  });
}

void ShardSim::Reply(const Write& w, bool ok) {
  ++in_flight_;
  const int64_t d =
      options_.client_delay_min + static_cast<int64_t>(rng_.Uniform(static_cast<uint64_t>(
                                      options_.client_delay_max - options_.client_delay_min + 1)));
  sim().Schedule(d, [this, w, ok] {
    --in_flight_;
    Client& c = clients_[w.client];
    if (c.outstanding != w.id) return;
    if (ok) {
      c.outstanding = 0;
      if (!writing_) return;
      ++in_flight_;
      const int64_t think =
          options_.think_min + static_cast<int64_t>(rng_.Uniform(static_cast<uint64_t>(
                                   options_.think_max - options_.think_min + 1)));
      sim().Schedule(think, [this, client = w.client] {
        --in_flight_;
        Issue(client);
      });
      return;
    }
    ++in_flight_;
    sim().Schedule(options_.retry_delay, [this, w] {
      --in_flight_;
      if (clients_[w.client].outstanding != w.id) return;
      SendWrite(w, static_cast<int>(rng_.Uniform(static_cast<uint64_t>(size()))));
    });
  });
}

void ShardSim::ReleaseHeld(int i, uint64_t gen, uint16_t b) {
  if (!Alive(i, gen)) return;
  Node& n = node(i);
  auto it = n.held.find(b);
  if (it == n.held.end()) return;
  std::vector<std::pair<Write, bool>> list = std::move(it->second);
  n.held.erase(it);
  held_ -= list.size();
  for (const auto& [w, may_redirect] : list) Evaluate(i, w, may_redirect);
}

// ---------------------------------------------------------------------------------------------
// Checks

std::vector<int> ShardSim::Holders() const {
  std::vector<int> out(kNumBuckets, -1);
  for (int i = 0; i < size(); ++i) {
    if (!up(i) || node(i).core == nullptr) continue;
    const Node& n = node(i);
    for (uint32_t b = 0; b < kNumBuckets; ++b) {
      if (n.plane[b] != BucketState::kActive) continue;
      out[b] = out[b] == -1 ? i : -2;
    }
  }
  return out;
}

std::vector<uint32_t> ShardSim::ActiveCounts() const {
  std::vector<uint32_t> out(static_cast<size_t>(size()), 0);
  for (int i = 0; i < size(); ++i) {
    if (!up(i) || node(i).core == nullptr) continue;
    out[i] = static_cast<uint32_t>(
        std::count(node(i).plane.begin(), node(i).plane.end(), BucketState::kActive));
  }
  return out;
}

bool ShardSim::Converged(const std::vector<int>& holders, const std::vector<int>& viewers,
                         std::string* why) const {
  std::set<int> all(holders.begin(), holders.end());
  all.insert(viewers.begin(), viewers.end());
  auto fail = [why](std::string s) {
    if (why != nullptr) *why = std::move(s);
    return false;
  };
  // Cheap checks first: this runs every poll.
  if (Now() - last_change_ < options_.quiet) {
    return fail(fmt::format("last change {} ago", sim::FormatTime(Now() - last_change_)));
  }
  // A coordinator round waiting for an answer (up to the RPC timeout) may still act.
  if (rpc_.open_calls() != 0) {
    return fail(fmt::format("{} requests unanswered", rpc_.open_calls()));
  }
  std::optional<Epoch> epoch;
  for (int i : all) {
    if (!up(i) || node(i).core == nullptr) return fail(fmt::format("node {} is down", i));
    const ShardingCore& c = *node(i).core;
    if (!c.InFlight().empty()) return fail(fmt::format("node {} has migrations in flight", i));
    const Epoch e = c.map()->epoch();
    if (e.value() == 0) return fail(fmt::format("node {} has no map", i));
    if (epoch.has_value() && *epoch != e) {
      return fail(fmt::format("epochs differ: {} vs {} on node {}", epoch->value(), e.value(), i));
    }
    epoch = e;
  }
  for (int i : all) {
    const ShardingCore& c = *node(i).core;
    for (BucketState s : {BucketState::kSending, BucketState::kReceiving, BucketState::kGarbage}) {
      if (c.CountIn(s) != 0) {
        return fail(fmt::format("node {} has {} buckets {}", i, c.CountIn(s), ToString(s)));
      }
    }
  }
  const std::vector<int> owner = Holders();
  const std::set<int> holder_set(holders.begin(), holders.end());
  for (uint32_t b = 0; b < kNumBuckets; ++b) {
    if (owner[b] == -1) return fail(fmt::format("bucket {} has no holder", b));
    if (owner[b] == -2) return fail(fmt::format("bucket {} has several holders", b));
    if (holder_set.count(owner[b]) == 0) {
      return fail(fmt::format("bucket {} held by node {}, not a holder", b, owner[b]));
    }
  }
  for (int i : all) {
    const Node& n = node(i);
    for (uint32_t b = 0; b < kNumBuckets; ++b) {
      if (n.plane[b] != n.core->state(static_cast<uint16_t>(b))) {
        return fail(fmt::format("node {} bucket {}: data plane {} but core {}", i, b,
                                ToString(n.plane[b]),
                                ToString(n.core->state(static_cast<uint16_t>(b)))));
      }
    }
    const BucketMap& map = *n.core->map();
    if (n.map.get() != &map) return fail(fmt::format("node {} published another map", i));
    for (uint32_t b = 0; b < kNumBuckets; ++b) {
      const SetInfo* o = map.OwnerOf(BucketId(static_cast<uint16_t>(b)));
      if (o == nullptr || o->leader != id(owner[b])) {
        return fail(fmt::format("node {}'s map names {} for bucket {}, held by {}", i,
                                o == nullptr ? std::string("nobody") : o->leader.ShortString(), b,
                                owner[b]));
      }
    }
  }
  return true;
}

ShardSim::WriteCheck ShardSim::CheckWrites(std::vector<std::string>& failures) const {
  WriteCheck r;
  std::map<std::string, const AckedWrite*> last;
  for (const AckedWrite& a : acks_) last[a.key] = &a;
  const std::vector<int> owner = Holders();
  size_t reported = 0;
  auto report = [&](std::string s) {
    if (++reported <= 10) failures.push_back(std::move(s));
  };
  for (const auto& [key, a] : last) {
    ++r.keys;
    const uint16_t b = KeyBucket(key).value();
    if (a->at <= exposed_at_[b]) {
      ++r.excused;
      continue;
    }
    ++r.checked;
    const int h = owner[b];
    if (h < 0) {
      report(fmt::format("key {} (bucket {}): {} holders", key, b, h == -1 ? "no" : "several"));
      continue;
    }
    const auto& store = node(h).store;
    auto bit = store.find(b);
    const std::string* v = nullptr;
    if (bit != store.end()) {
      auto kit = bit->second.find(key);
      if (kit != bit->second.end()) v = &kit->second;
    }
    if (v == nullptr || *v != std::to_string(a->value)) {
      report(fmt::format(
          "key {} (bucket {}): last acknowledged value {} (node {} at {}), node {} has {}", key, b,
          a->value, a->node, sim::FormatTime(a->at), h, v == nullptr ? "nothing" : *v));
    }
  }
  for (int i = 0; i < size(); ++i) {
    if (!up(i) || node(i).core == nullptr) continue;
    for (const auto& [b, kv] : node(i).store) {
      if (!kv.empty() && node(i).plane[b] != BucketState::kActive) {
        report(fmt::format("node {} stores {} keys of bucket {}, which is {} there", i, kv.size(),
                           b, ToString(node(i).plane[b])));
      }
      for (const auto& [key, value] : kv) {
        if (KeyBucket(key).value() != b) report(fmt::format("key {} stored in bucket {}", key, b));
      }
    }
  }
  if (reported > 10) failures.push_back(fmt::format("... {} write failures in all", reported));
  return r;
}

uint64_t ShardSim::moved_buckets() const {
  uint64_t n = 0;
  for (const auto& [pair, count] : moves_) n += count;
  return n;
}

std::string ShardSim::Describe() const {
  std::string out;
  for (int i = 0; i < size(); ++i) {
    out += fmt::format("\n  node {} {}", i, id(i).ShortString());
    if (!up(i) || node(i).core == nullptr) {
      out += " down";
      continue;
    }
    const ShardingCore& c = *node(i).core;
    out += fmt::format(
        " epoch={} coord={}{} active={} sending={} receiving={} garbage={} leaving={}",
        c.map()->epoch().value(), c.coordinator().ShortString(), c.is_coordinator() ? "*" : "",
        c.CountIn(BucketState::kActive), c.CountIn(BucketState::kSending),
        c.CountIn(BucketState::kReceiving), c.CountIn(BucketState::kGarbage), c.leaving());
    for (const auto& f : c.InFlight()) {
      out += fmt::format(" [{} {} {} {}]", f.outgoing ? "to" : "from", IndexOf(f.peer), f.buckets,
                         f.phase);
    }
  }
  return out;
}

}  // namespace shoal::sharding
