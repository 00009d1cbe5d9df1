// Connection: one client socket on one worker thread.
//
// Reads requests, hands each to the CommandService, and writes replies in request order even when
// some are produced later by other threads (pipelining): a reply that cannot go out yet waits in a
// slot until every reply before it is ready. Enforces the query-buffer and output-buffer limits
// and closes the connection on a protocol error after sending the error.
//
// Ownership: created by the worker's acceptor, destroys itself (via the loop's DeleteLater) when
// closed. Thread-safety: everything runs on the owning worker's thread.
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "net/event_loop.h"
#include "net/output_buffer.h"
#include "resp/parser.h"
#include "resp/service.h"

namespace shoal::resp {

class Connection final : public net::IoWatcher {
 public:
  using ReplyToken = uint64_t;

  Connection(net::EventLoop* loop, int fd, std::string peer, std::string local,
             CommandService* service, const ConnectionLimits* limits, uint64_t id);
  ~Connection() override;

  // Registers with the loop and tells the service. Call once, right after construction.
  void Start();

  uint64_t id() const { return id_; }
  const std::string& peer() const { return peer_; }
  const std::string& local() const { return local_; }
  int protocol() const { return protocol_; }
  void set_protocol(int p) { protocol_ = p; }
  const std::string& name() const { return name_; }
  void set_name(std::string n) { name_ = std::move(n); }
  ClientState* state() const { return state_.get(); }
  void set_state(std::unique_ptr<ClientState> s) { state_ = std::move(s); }
  net::EventLoop* loop() const { return loop_; }
  bool closing() const { return closing_; }
  int64_t created_ms() const { return created_ms_; }
  int64_t last_active_ms() const { return last_active_ms_; }
  const std::string& last_command() const { return last_command_; }
  size_t query_buffer_bytes() const { return rend_ - rstart_; }
  size_t output_buffer_bytes() const;

  // Asynchronous replies. ReserveReply() is called from within Dispatch; CompleteReply() later
  // (on this thread) with the encoded reply; FlushOutput() sends what is ready.
  ReplyToken ReserveReply();
  void CompleteReply(ReplyToken token, std::string_view bytes);
  void FlushOutput();
  size_t pending_replies() const { return pending_; }
  // Sends an out-of-band message (a RESP3 push, or a RESP2 pub-sub array) after every reply
  // already reserved, so it never overtakes the answer to an earlier command (e.g. SUBSCRIBE's).
  // Subject to the output-buffer limit. Not from inside Dispatch. With kLater the bytes wait for
  // the caller's next FlushOutput (so many pushes leave in one write).
  enum class Flush { kNow, kLater };
  void Push(std::string_view bytes, Flush flush = Flush::kNow);

  // Sends what is queued, then closes (QUIT).
  void CloseAfterReply() { close_after_reply_ = true; }
  // Closes now (CLIENT KILL, limits). `reason` is logged.
  void Close(std::string_view reason);

 private:
  struct Slot {
    bool ready = false;
    std::string data;
  };

  void OnIoEvents(uint32_t events) override;
  void ReadInput();
  void ProcessInput();
  void WriteOutput();
  void UpdateInterest();
  bool CheckOutputLimit();
  std::string* ReplyDestination();

  net::EventLoop* loop_;
  int fd_;
  std::string peer_, local_;
  CommandService* service_;
  const ConnectionLimits* limits_;
  uint64_t id_;
  int protocol_ = 2;
  std::string name_;
  std::unique_ptr<ClientState> state_;

  Parser parser_;
  std::unique_ptr<char[]> rbuf_;
  size_t rcap_ = 0, rstart_ = 0, rend_ = 0;

  net::OutputBuffer out_;
  std::deque<Slot> slots_;
  ReplyToken first_token_ = 0;  // token of slots_.front()
  size_t pending_ = 0;          // reserved, not yet completed
  size_t slot_bytes_ = 0;

  uint32_t interest_ = 0;
  bool blocked_ = false;
  bool closing_ = false;
  bool close_after_reply_ = false;
  bool in_process_ = false;
  int64_t created_ms_ = 0;
  int64_t last_active_ms_ = 0;
  std::string last_command_;
};

}  // namespace shoal::resp
