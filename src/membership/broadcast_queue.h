// The dissemination queue: updates waiting to be piggybacked on outgoing packets.
//
// Each update is about one member and is retransmitted up to a limit (λ·⌈log10(N+1)⌉, see swim.h)
// before it is dropped. Packets take the least-transmitted updates first, newest first among
// equals, so fresh news overtakes news most members have already heard (memberlist's
// TransmitLimitedQueue). A newer update about a member replaces the queued one: an Alive that
// refutes a Suspect must not travel next to it.
//
// Single-threaded: owned by one Swim.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

#include "membership/types.h"

namespace shoal::membership {

class BroadcastQueue {
 public:
  // Queues `framed` (an encoded message) about `member`, replacing any queued update about it.
  // It will be sent `weight` times the limit given to Take.
  void Push(MemberId member, std::string framed, int weight = 1);

  // Appends to `out` copies of updates whose sizes sum to at most `budget` bytes (and at most
  // `max_count` of them), least-transmitted first, counts one transmission for each, and drops
  // those that reach `limit` (times their weight) transmissions.
  void Take(size_t budget, size_t max_count, int limit, std::vector<std::string>* out);

  // Drops every queued update.
  void Clear();

  size_t size() const { return by_member_.size(); }
  bool empty() const { return by_member_.empty(); }
  // Transmissions so far of the queued update about `member`; -1 if none is queued.
  int TransmitsOf(MemberId member) const;

 private:
  // Ordered by (transmits ascending, seq descending): the next update to send comes first.
  struct Key {
    int transmits;
    uint64_t seq;
    bool operator<(const Key& o) const {
      return std::tie(transmits, o.seq) < std::tie(o.transmits, seq);
    }
  };
  struct Item {
    MemberId member;
    std::string framed;
    int weight = 1;
  };

  uint64_t next_seq_ = 1;
  std::map<Key, Item> queue_;
  std::map<MemberId, Key> by_member_;
};

}  // namespace shoal::membership
