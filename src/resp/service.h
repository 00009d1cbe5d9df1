// The narrow interface between the RESP front end and the engine behind it (Dragonfly's facade
// rule): resp/ parses requests, keeps replies in order and enforces client limits; it knows
// nothing of keys, shards or storage. The engine implements CommandService.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string_view>

#include "common/metrics.h"
#include "resp/parser.h"
#include "resp/reply_builder.h"

namespace shoal::resp {

class Connection;

enum class DispatchResult {
  kDone,     // the reply was written to `out` before Dispatch returned
  kAsync,    // Dispatch reserved a reply slot (Connection::ReserveReply) and fills it later
  kBlocked,  // not now: call Dispatch again with the same command once no reply is pending
};

// Limits that apply to every client connection of a worker. Owned by the service; connections
// read them through a pointer, so a change made on the worker's thread applies at once.
struct ConnectionLimits {
  ParserLimits parser;
  int64_t query_buffer_limit = 1LL << 30;   // client-query-buffer-limit
  int64_t output_buffer_limit = 256 << 20;  // hard limit per client; 0 = none
  // Bytes read from and written to the worker's clients (null: not counted). Written on the
  // worker's thread only.
  metrics::OwnedValue<uint64_t>* input_bytes = nullptr;
  metrics::OwnedValue<uint64_t>* output_bytes = nullptr;
};

// Per-connection state the service attaches to a connection.
class ClientState {
 public:
  virtual ~ClientState() = default;
};

// All methods are called on the connection's own worker thread.
class CommandService {
 public:
  virtual ~CommandService() = default;
  virtual void OnConnect(Connection* c) = 0;
  // `args` is non-empty; its views are valid only during the call.
  virtual DispatchResult Dispatch(Connection* c, std::span<const std::string_view> args,
                                  ReplyBuilder* out) = 0;
  // After a batch of requests read together has been dispatched: the moment to send messages
  // collected for other threads.
  virtual void OnInputProcessed(Connection* c) {}
  virtual void OnDisconnect(Connection* c) = 0;
};

}  // namespace shoal::resp
