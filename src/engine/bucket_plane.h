// BucketPlane: this node's bucket states as the data plane sees them — which buckets it serves
// (ACTIVE, or SENDING: still served, writes held), which it is receiving, and which it has handed
// over (GARBAGE, with the node to redirect to). Written only by the control thread (the sharding
// driver, mirroring sharding::ShardingCore), read by every worker without locks.
//
// Ordering: Set() writes the peer under a per-bucket sequence lock, then stores the state
// (release). A reader that loads the state (acquire) and then reads the peer sees the peer of that
// state or a later one, and never half of one id and half of another: the 128-bit id is two
// 64-bit words, and peer() retries while a Set() of the same bucket is writing them. A worker that
// must act on a state change (release the writes it holds for a bucket leaving SENDING) is told
// by a message as well, so nothing depends on polling these atomics.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>

#include "common/ids.h"
#include "membership/types.h"
#include "sharding/bucket_map.h"

namespace shoal::engine {

class BucketPlane {
 public:
  BucketPlane() {
    for (auto& s : state_) s.store(0, std::memory_order_relaxed);
  }

  sharding::BucketState state(uint16_t b) const {
    return static_cast<sharding::BucketState>(state_[b].load(std::memory_order_acquire));
  }
  // Served here (reads at least).
  bool Serves(uint16_t b) const {
    const auto s = state(b);
    return s == sharding::BucketState::kActive || s == sharding::BucketState::kSending;
  }
  membership::MemberId peer(uint16_t b) const {
    for (;;) {
      const uint32_t before = peer_seq_[b].load(std::memory_order_acquire);
      if (before & 1) continue;  // a Set() is writing the two words
      // Acquire loads (no fences: ThreadSanitizer does not model them): the second sequence
      // load cannot move above them, and a word read from a Set() shows that Set()'s odd count.
      const uint64_t hi = peer_hi_[b].load(std::memory_order_acquire);
      const uint64_t lo = peer_lo_[b].load(std::memory_order_acquire);
      if (peer_seq_[b].load(std::memory_order_relaxed) == before) return {hi, lo};
    }
  }
  // Control thread only (one writer).
  void Set(uint16_t b, sharding::BucketState s, const membership::MemberId& peer) {
    const uint32_t seq = peer_seq_[b].load(std::memory_order_relaxed);
    peer_seq_[b].store(seq + 1, std::memory_order_relaxed);
    peer_hi_[b].store(peer.hi(), std::memory_order_release);
    peer_lo_[b].store(peer.lo(), std::memory_order_release);
    peer_seq_[b].store(seq + 2, std::memory_order_release);
    state_[b].store(static_cast<uint8_t>(s), std::memory_order_release);
  }
  // While false (a node without cluster sharding: unit tests, the library without a control
  // plane), every bucket is served locally and the states are ignored.
  bool enabled() const { return enabled_.load(std::memory_order_acquire); }
  void set_enabled(bool on) { enabled_.store(on, std::memory_order_release); }

 private:
  std::array<std::atomic<uint8_t>, kNumBuckets> state_;
  std::array<std::atomic<uint64_t>, kNumBuckets> peer_hi_{};
  std::array<std::atomic<uint64_t>, kNumBuckets> peer_lo_{};
  std::array<std::atomic<uint32_t>, kNumBuckets> peer_seq_{};  // odd while Set() writes the peer
  std::atomic<bool> enabled_{false};
};

}  // namespace shoal::engine
