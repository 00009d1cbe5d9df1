// Small helpers over msgpack-c++ for the internal wire formats (sharding, bus, replicated maps,
// forwarded commands): a Writer that packs into a string and a Reader that walks a decoded object,
// throwing WireError (caught at the module's Decode functions, never let out) on any type or size
// mismatch.
#pragma once

#define MSGPACK_NO_BOOST 1
#include <msgpack.hpp>

#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>

#include "common/member_id.h"
#include "common/transport.h"

namespace shoal::wire {

struct WireError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

class Writer {
 public:
  Writer() : pk_(&buf_) {}
  void Array(uint32_t n) { pk_.pack_array(n); }
  void U64(uint64_t v) { pk_.pack_uint64(v); }
  void Bool(bool v) { v ? pk_.pack_true() : pk_.pack_false(); }
  void Bin(std::string_view s) {
    pk_.pack_bin(static_cast<uint32_t>(s.size()));
    pk_.pack_bin_body(s.data(), static_cast<uint32_t>(s.size()));
  }
  void Id(const MemberId& id) {
    Array(2);
    U64(id.hi());
    U64(id.lo());
  }
  void Ep(const Endpoint& e) {
    Array(2);
    Bin(e.host);
    U64(e.port);
  }
  std::string Take() { return std::string(buf_.data(), buf_.size()); }

 private:
  msgpack::sbuffer buf_;
  msgpack::packer<msgpack::sbuffer> pk_;
};

class Reader {
 public:
  explicit Reader(const msgpack::object& o) : o_(o) {}
  uint32_t Array() const {
    if (o_.type != msgpack::type::ARRAY) throw WireError("expected an array");
    return o_.via.array.size;
  }
  Reader At(uint32_t i) const {
    if (i >= Array()) throw WireError("array too short");
    return Reader(o_.via.array.ptr[i]);
  }
  uint64_t U64() const {
    if (o_.type != msgpack::type::POSITIVE_INTEGER) throw WireError("expected an integer");
    return o_.via.u64;
  }
  uint64_t U64Max(uint64_t max) const {
    const uint64_t v = U64();
    if (v > max) throw WireError("integer out of range");
    return v;
  }
  bool Bool() const {
    if (o_.type != msgpack::type::BOOLEAN) throw WireError("expected a boolean");
    return o_.via.boolean;
  }
  std::string_view Bin() const {
    if (o_.type != msgpack::type::BIN) throw WireError("expected bytes");
    return {o_.via.bin.ptr, o_.via.bin.size};
  }
  MemberId Id() const {
    if (Array() != 2) throw WireError("bad member id");
    return {At(0).U64(), At(1).U64()};
  }
  Endpoint Ep() const {
    if (Array() != 2) throw WireError("bad endpoint");
    return Endpoint{std::string(At(0).Bin()), static_cast<uint16_t>(At(1).U64Max(65535))};
  }

 private:
  const msgpack::object& o_;
};

// Unpacks `bytes` with limits fit for the internal messages (bounded arrays and nesting).
inline msgpack::object_handle Unpack(std::string_view bytes) {
  try {
    return msgpack::unpack(bytes.data(), bytes.size(), nullptr, nullptr,
                           msgpack::unpack_limit(1 << 20, 0, 1 << 16, 256 << 20, 0, 8));
  } catch (const std::exception& e) {
    throw WireError(std::string("msgpack: ") + e.what());
  }
}

}  // namespace shoal::wire
