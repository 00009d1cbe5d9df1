#include "resp/connection.h"

#include <sys/epoll.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "common/log.h"

namespace shoal::resp {
namespace {
constexpr size_t kReadChunk = 16 * 1024;
constexpr size_t kMaxArgsInline = 64;

bool EqualsNoCaseAscii(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    const char x = a[i] >= 'A' && a[i] <= 'Z' ? static_cast<char>(a[i] + 32) : a[i];
    if (x != b[i]) return false;
  }
  return true;
}

// The first words of an HTTP request that are never a Redis command (as Redis's "post" and
// "host:" entries in its command table).
bool LooksLikeHttp(std::string_view command) {
  return EqualsNoCaseAscii(command, "post") || EqualsNoCaseAscii(command, "host:");
}
}  // namespace

Connection::Connection(net::EventLoop* loop, int fd, std::string peer, std::string local,
                       CommandService* service, const ConnectionLimits* limits, uint64_t id)
    : loop_(loop),
      fd_(fd),
      peer_(std::move(peer)),
      local_(std::move(local)),
      service_(service),
      limits_(limits),
      id_(id),
      parser_(limits->parser) {
  created_ms_ = last_active_ms_ = loop->NowMs();
}

Connection::~Connection() {
  if (fd_ >= 0) ::close(fd_);
}

void Connection::Start() {
  interest_ = EPOLLIN;
  loop_->Watch(fd_, interest_, this);
  service_->OnConnect(this);
}

size_t Connection::output_buffer_bytes() const { return out_.pending() + slot_bytes_; }

void Connection::Close(std::string_view reason) {
  if (closing_) return;
  closing_ = true;
  if (!reason.empty()) SHOAL_LOG_DEBUG("closing client id={} addr={}: {}", id_, peer_, reason);
  loop_->Unwatch(fd_);
  ::close(fd_);
  fd_ = -1;
  service_->OnDisconnect(this);
  loop_->DeleteLater(this);
}

void Connection::OnIoEvents(uint32_t events) {
  if (closing_) return;
  if (events & (EPOLLERR | EPOLLHUP)) {
    if (!(events & EPOLLIN)) {
      Close("connection reset");
      return;
    }
  }
  if (events & EPOLLOUT) WriteOutput();
  if (!closing_ && (events & EPOLLIN)) ReadInput();
}

void Connection::ReadInput() {
  // Make room: compact, then grow to what the parser says the command needs.
  if (rstart_ == rend_) rstart_ = rend_ = 0;
  size_t want = std::max<size_t>(kReadChunk, parser_.bytes_hint() > rend_ - rstart_
                                                 ? parser_.bytes_hint() - (rend_ - rstart_)
                                                 : 0);
  want = std::min<size_t>(want, 64 << 20);  // read big bulks in 64 MB steps
  if (rcap_ - rend_ < want) {
    if (rstart_ > 0 && rcap_ - (rend_ - rstart_) >= want) {
      std::memmove(rbuf_.get(), rbuf_.get() + rstart_, rend_ - rstart_);
      rend_ -= rstart_;
      rstart_ = 0;
    } else {
      size_t ncap = std::max(rcap_ * 2, rend_ - rstart_ + want);
      std::unique_ptr<char[]> nbuf(new char[ncap]);  // not zero-filled
      if (rend_ > rstart_) std::memcpy(nbuf.get(), rbuf_.get() + rstart_, rend_ - rstart_);
      rend_ -= rstart_;
      rstart_ = 0;
      rbuf_ = std::move(nbuf);
      rcap_ = ncap;
    }
  }
  ssize_t n = ::read(fd_, rbuf_.get() + rend_, rcap_ - rend_);
  if (n > 0 && limits_->input_bytes != nullptr) *limits_->input_bytes += static_cast<uint64_t>(n);
  if (n == 0) {
    Close("client closed connection");
    return;
  }
  if (n < 0) {
    if (errno == EAGAIN || errno == EINTR) return;
    Close(strerror(errno));
    return;
  }
  rend_ += static_cast<size_t>(n);
  last_active_ms_ = loop_->NowMs();
  if (limits_->query_buffer_limit > 0 &&
      static_cast<int64_t>(rend_ - rstart_) > limits_->query_buffer_limit) {
    SHOAL_LOG_WARN("closing client id={} addr={}: query buffer limit ({} bytes) exceeded", id_,
                   peer_, limits_->query_buffer_limit);
    ReplyBuilder rb(ReplyDestination(), protocol_);
    rb.Error("ERR query buffer limit exceeded (client-query-buffer-limit)");
    rstart_ = rend_ = 0;
    close_after_reply_ = true;
    blocked_ = true;  // read nothing more
    FlushOutput();
    return;
  }
  ProcessInput();
}

std::string* Connection::ReplyDestination() {
  if (slots_.empty()) return out_.back();
  if (!slots_.back().ready) slots_.push_back(Slot{true, {}});
  return &slots_.back().data;
}

void Connection::ProcessInput() {
  if (in_process_) return;
  in_process_ = true;
  parser_.set_limits(limits_->parser);
  bool dispatched = false;
  while (!closing_ && !blocked_ && !close_after_reply_ && rstart_ < rend_) {
    const ParseStatus st = parser_.Parse(std::string_view(rbuf_.get() + rstart_, rend_ - rstart_));
    if (st == ParseStatus::kNeedMore) break;
    if (st == ParseStatus::kError) {
      ReplyBuilder rb(ReplyDestination(), protocol_);
      rb.Error(parser_.error());
      SHOAL_LOG_DEBUG("client id={} addr={}: {}", id_, peer_, parser_.error());
      rstart_ = rend_ = 0;
      close_after_reply_ = true;
      break;
    }
    const auto& args = parser_.args();
    if (LooksLikeHttp(args[0])) {
      // An HTTP request sent to the RESP port (a browser, or a cross-protocol attack through
      // one): its headers and body must never run as commands. Redis does the same.
      SHOAL_LOG_WARN(
          "closing client id={} addr={}: it sent '{}', an HTTP request, to the RESP port (possible "
          "cross-protocol attack)",
          id_, peer_, args[0]);
      rstart_ = rend_ = 0;
      in_process_ = false;
      Close("HTTP request on the RESP port");
      return;
    }
    std::string* dest = ReplyDestination();
    const size_t before = dest->size();
    ReplyBuilder rb(dest, protocol_);
    const DispatchResult r = service_->Dispatch(this, std::span(args.data(), args.size()), &rb);
    if (r == DispatchResult::kBlocked) {
      blocked_ = true;
      break;
    }
    if (!out_.holds(dest)) slot_bytes_ += dest->size() - before;
    last_command_.assign(args[0].substr(0, kMaxArgsInline));
    rstart_ += parser_.consumed();
    dispatched = true;
  }
  if (rstart_ == rend_) rstart_ = rend_ = 0;
  in_process_ = false;
  if (closing_) return;
  if (dispatched) service_->OnInputProcessed(this);
  if (closing_) return;
  FlushOutput();
}

Connection::ReplyToken Connection::ReserveReply() {
  slots_.push_back(Slot{false, {}});
  ++pending_;
  return first_token_ + slots_.size() - 1;
}

void Connection::CompleteReply(ReplyToken token, std::string_view bytes) {
  if (closing_) return;
  Slot& s = slots_[token - first_token_];
  s.data.assign(bytes);
  s.ready = true;
  slot_bytes_ += bytes.size();
  --pending_;
}

void Connection::Push(std::string_view bytes, Flush flush) {
  if (closing_) return;
  if (slots_.empty()) {
    out_.Append(bytes);
  } else {
    if (!slots_.back().ready) slots_.push_back(Slot{true, {}});
    slots_.back().data.append(bytes);
    slot_bytes_ += bytes.size();
  }
  if (flush == Flush::kNow) FlushOutput();
}

bool Connection::CheckOutputLimit() {
  if (limits_->output_buffer_limit > 0 &&
      static_cast<int64_t>(output_buffer_bytes()) > limits_->output_buffer_limit) {
    SHOAL_LOG_WARN("closing client id={} addr={}: output buffer {} bytes over limit {}", id_, peer_,
                   output_buffer_bytes(), limits_->output_buffer_limit);
    Close("output buffer limit");
    return false;
  }
  return true;
}

void Connection::FlushOutput() {
  if (closing_) return;
  while (!slots_.empty() && slots_.front().ready) {
    Slot& s = slots_.front();
    slot_bytes_ -= s.data.size();
    out_.Take(s.data);
    slots_.pop_front();
    ++first_token_;
  }
  if (!CheckOutputLimit()) return;
  // While replies from other workers are still due (microseconds away), hold back a small
  // ready prefix so the whole pipeline usually leaves in one write() instead of two.
  constexpr size_t kEagerWriteBytes = 64 * 1024;
  if (pending_ > 0 && out_.pending() < kEagerWriteBytes) return;
  WriteOutput();
  if (closing_) return;
  // Replies all went out: resume a pipeline that waited for them.
  if (blocked_ && pending_ == 0 && !close_after_reply_) {
    blocked_ = false;
    ProcessInput();
    return;
  }
  UpdateInterest();
}

void Connection::WriteOutput() {
  const net::OutputBuffer::WriteResult r = out_.WriteTo(fd_);
  if (limits_->output_bytes != nullptr) *limits_->output_bytes += r.written;
  if (r.error != 0) {
    Close(strerror(r.error));
    return;
  }
  if (out_.empty()) {
    if (close_after_reply_ && slots_.empty()) {
      Close("");
      return;
    }
  }
  UpdateInterest();
}

void Connection::UpdateInterest() {
  uint32_t want = 0;
  if (!blocked_ && !close_after_reply_) want |= EPOLLIN;
  if (!out_.empty()) want |= EPOLLOUT;
  if (want != interest_) {
    interest_ = want;
    loop_->Modify(fd_, want, this);
  }
}

}  // namespace shoal::resp
