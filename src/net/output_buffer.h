// The pending output of one non-blocking stream socket: bytes are appended at the back and
// written from the front, as much as the socket takes at a time. The RESP client connections
// and the internal RPC connections both keep their output in one. Single-threaded (the
// connection's loop).
#pragma once

#include <sys/socket.h>
#include <sys/types.h>

#include <cerrno>
#include <cstddef>
#include <string>
#include <string_view>

namespace shoal::net {

class OutputBuffer {
 public:
  // The string to append to (a reply builder writes straight into it). Bytes appended go out
  // after those already pending.
  std::string* back() {
    Restart();
    return &buf_;
  }
  bool holds(const std::string* s) const { return s == &buf_; }
  void Append(std::string_view bytes) { back()->append(bytes); }
  // Appends `bytes`, taking over its storage when nothing is pending; `bytes` is left empty or
  // with unspecified contents.
  void Take(std::string& bytes) {
    Restart();
    if (buf_.empty()) {
      buf_.swap(bytes);
    } else {
      buf_.append(bytes);
    }
  }

  size_t pending() const { return buf_.size() - pos_; }
  bool empty() const { return pos_ == buf_.size(); }

  struct WriteResult {
    size_t written = 0;
    int error =
        0;  // errno of a failed send (the peer is gone); 0 when drained or the socket is full
  };
  // Sends what the socket takes now (never blocks, never raises SIGPIPE).
  WriteResult WriteTo(int fd) {
    WriteResult r;
    while (pos_ < buf_.size()) {
      const ssize_t n =
          ::send(fd, buf_.data() + pos_, buf_.size() - pos_, MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n < 0) {
        if (errno == EINTR) continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK) r.error = errno;
        break;
      }
      pos_ += static_cast<size_t>(n);
      r.written += static_cast<size_t>(n);
    }
    Compact();
    return r;
  }

 private:
  // Past this, a drained buffer gives its memory back, and a half-written one moves its unsent
  // bytes to the front.
  static constexpr size_t kKeepBytes = 1 << 20;

  void Restart() {
    if (pos_ == buf_.size()) {
      buf_.clear();
      pos_ = 0;
    }
  }
  void Compact() {
    if (pos_ == buf_.size()) {
      pos_ = 0;
      if (buf_.capacity() > kKeepBytes) {
        std::string().swap(buf_);
      } else {
        buf_.clear();
      }
    } else if (pos_ > kKeepBytes && pos_ > buf_.size() / 2) {
      buf_.erase(0, pos_);
      pos_ = 0;
    }
  }

  std::string buf_;
  size_t pos_ = 0;
};

}  // namespace shoal::net
