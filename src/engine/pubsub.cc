#include "engine/pubsub.h"

#include <vector>

#include "engine/shard.h"
#include "resp/connection.h"
#include "resp/reply_builder.h"

namespace shoal::engine {

uint64_t DeliverPublication(Shard& shard, const std::string& entry, const bus::Publication& p,
                            const std::string& pattern) {
  auto it = shard.pubsub().clients.find(entry);
  if (it == shard.pubsub().clients.end()) return 0;
  std::string enc[2];  // by protocol 2 / 3
  auto encode = [&](int protocol) -> const std::string& {
    std::string& s = enc[protocol == 3 ? 1 : 0];
    if (!s.empty()) return s;
    resp::ReplyBuilder rb(&s, protocol);
    switch (entry[0]) {
      case 'c':
        rb.PushHeader(3);
        rb.Bulk("message");
        rb.Bulk(p.subject);
        break;
      case 'p':
        rb.PushHeader(4);
        rb.Bulk("pmessage");
        rb.Bulk(pattern);
        rb.Bulk(p.subject);
        break;
      case 's':
        rb.PushHeader(3);
        rb.Bulk("smessage");
        rb.Bulk(p.subject);
        break;
      default:
        rb.PushHeader(5);
        rb.Bulk("bus.message");
        rb.Bulk(p.exchange);
        rb.Bulk(pattern);
        rb.Bulk(p.subject);
        break;
    }
    rb.Bulk(p.payload);
    return s;
  };
  uint64_t n = 0;
  // Pushing may close a client over its output limit: collect first.
  std::vector<uint64_t> ids(it->second.begin(), it->second.end());
  for (uint64_t id : ids) {
    resp::Connection* c = shard.FindClient(id);
    if (c == nullptr || c->closing()) continue;
    c->Push(encode(c->protocol()), resp::Connection::Flush::kLater);
    shard.FlushBeforeSleep(c);
    ++n;
  }
  return n;
}

std::map<std::string, uint64_t> CountSubscriptions(Shard& shard, std::string_view spaces) {
  std::map<std::string, uint64_t> out;
  for (const auto& [entry, ids] : shard.pubsub().clients) {
    if (!entry.empty() && spaces.find(entry[0]) != std::string_view::npos) {
      out[entry] += ids.size();
    }
  }
  return out;
}

}  // namespace shoal::engine
