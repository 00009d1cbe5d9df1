// Cryptographic primitives for the cluster cookie (OpenSSL underneath): HMAC-SHA256 to
// authenticate packets and handshakes, constant-time comparison, and random bytes for
// challenges and node ids. Thread-safe.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace shoal {

using Sha256Digest = std::array<uint8_t, 32>;

// HMAC-SHA256 of `data` keyed by `key`.
Sha256Digest HmacSha256(std::string_view key, std::string_view data);

// Compares without an early exit, so the time taken does not reveal where they differ.
bool ConstantTimeEqual(std::string_view a, std::string_view b);

// `n` bytes from the OS's cryptographically secure generator.
std::string SecureRandomBytes(size_t n);

}  // namespace shoal
