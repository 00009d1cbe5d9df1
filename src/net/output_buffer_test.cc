// OutputBuffer over a real socket pair: bytes leave in order across partial sends and
// compaction, the pending count is exact, and a peer that is gone is an error, not a signal.
#include "net/output_buffer.h"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <string>

namespace shoal::net {
namespace {

std::string Pattern(size_t from, size_t n) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; ++i) s[i] = static_cast<char>('a' + (from + i) % 23);
  return s;
}

TEST(OutputBuffer, BytesLeaveInOrderAcrossPartialSends) {
  int fds[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
  const int small = 4096;
  setsockopt(fds[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
  OutputBuffer out;
  EXPECT_TRUE(out.empty());
  // 3 MiB in 3000 appends, more than the socket takes at once: the buffer compacts on the way.
  const size_t chunk = 1024, chunks = 3000, total = chunk * chunks;
  size_t appended = 0, sent = 0;
  std::string received;
  char buf[65536];
  while (received.size() < total) {
    if (appended < total) {
      std::string piece = Pattern(appended, chunk);
      if (appended % (7 * chunk) == 0) {
        out.Take(piece);
      } else {
        out.Append(piece);
      }
      appended += chunk;
    }
    const OutputBuffer::WriteResult r = out.WriteTo(fds[0]);
    ASSERT_EQ(r.error, 0);
    sent += r.written;
    EXPECT_EQ(out.pending(), appended - sent);
    const ssize_t n = ::recv(fds[1], buf, sizeof buf, MSG_DONTWAIT);
    if (n > 0) received.append(buf, static_cast<size_t>(n));
  }
  EXPECT_TRUE(out.empty());
  EXPECT_EQ(received, Pattern(0, total));
  close(fds[0]);
  close(fds[1]);
}

TEST(OutputBuffer, APeerGoneIsAnErrorNotASignal) {
  int fds[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
  close(fds[1]);
  OutputBuffer out;
  out.Append("hello");
  const OutputBuffer::WriteResult r = out.WriteTo(fds[0]);  // would raise SIGPIPE with write()
  EXPECT_EQ(r.error, EPIPE);
  EXPECT_EQ(r.written, 0u);
  EXPECT_EQ(out.pending(), 5u);
  close(fds[0]);
}

}  // namespace
}  // namespace shoal::net
