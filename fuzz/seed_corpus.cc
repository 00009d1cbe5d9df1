// Writes the fuzzers' seed corpora: a few small valid inputs per target, made with the real
// encoders, one file each under <dir>/<target>/ (fuzz/corpus/ holds the committed output; rerun
// after a wire format changes: build-fuzz/fuzz/seed_corpus fuzz/corpus). Each input is laid out
// as its fuzzer reads it (a leading selector byte where the target has one).
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>
#include <vector>

#include "bus/registry.h"
#include "membership/codec.h"
#include "net/rpc_frame.h"
#include "replicated/lww_map.h"
#include "replicated/snapshot.h"
#include "replicated/sync.h"
#include "sharding/messages.h"

namespace {

namespace fs = std::filesystem;

struct Writer {
  fs::path dir;
  int count = 0;
  void Put(const std::string& target, std::string_view name, std::string_view bytes) {
    const fs::path d = dir / target;
    fs::create_directories(d);
    std::ofstream(d / std::string(name), std::ios::binary).write(bytes.data(), bytes.size());
    ++count;
  }
};

std::string Tagged(char tag, std::string_view bytes) {
  return std::string(1, tag) + std::string(bytes);
}

void Swim(Writer& w) {
  namespace m = shoal::membership;
  const m::MemberId a(1, 2), b(3, 4);
  const std::vector<std::pair<std::string, std::vector<m::Message>>> packets = {
      {"ping", {m::PingMsg{7, b, a, {}}}},
      {"ack", {m::AckMsg{7}}},
      {"suspect_dead", {m::SuspectMsg{{}, b, a}, m::DeadMsg{{}, b, a}}},
      {"leave_nack", {m::LeaveMsg{{}, a}, m::NackMsg{9}}},
  };
  for (const auto& [name, messages] : packets) {
    std::vector<std::string> framed;
    for (const auto& msg : messages) framed.push_back(m::EncodeMessage(msg));
    const std::vector<std::string_view> views(framed.begin(), framed.end());
    const std::string packet = m::SealPacket("cookie", views);
    w.Put("swim_packet", name, packet);
    // Without the MAC: what DecodePacketBody reads.
    w.Put("swim_packet", name + "_body", std::string_view(packet).substr(0, packet.size() - 16));
  }
  m::StateBlob blob;
  blob.sender = a;
  blob.entries.push_back(m::StateEntry{});
  w.Put("swim_packet", "state_blob", m::EncodeStateBlob("cookie", blob));
}

void Rpc(Writer& w) {
  namespace r = shoal::net::rpc;
  std::string frames;
  r::AppendFrame(&frames, r::FrameKind::kRequest, 1, "sharding.poll", "body");
  w.Put("rpc_frame", "request", frames);
  r::AppendFrame(&frames, r::FrameKind::kResponse, 1, "", "reply");
  r::AppendFrame(&frames, r::FrameKind::kError, 2, "", "no such method");
  w.Put("rpc_frame", "three_frames", frames);
}

void Sharding(Writer& w) {
  namespace s = shoal::sharding;
  // Not the map message nor a bucket map: an encoded map is 32 KiB, over the fuzzers' -max_len.
  const std::vector<std::pair<std::string, s::Message>> messages = {
      {"poll", s::PollMsg{}},     {"report", s::ReportMsg{}},   {"adopt", s::AdoptMsg{}},
      {"drop", s::DropMsg{}},     {"migrate", s::MigrateMsg{}}, {"transfer", s::TransferMsg{}},
      {"commit", s::CommitMsg{}}, {"abort", s::AbortMsg{}},     {"query", s::QueryMsg{}},
      {"ack", s::AckMsg{}},
  };
  for (const auto& [name, msg] : messages) w.Put("sharding_wire", name, Tagged(0, s::Encode(msg)));
}

void Bus(Writer& w) {
  namespace b = shoal::bus;
  b::Message digest;
  digest.type = b::MessageType::kDigest;
  digest.sender = b::MemberId(0, 1);
  digest.digest[b::MemberId(0, 2)] = 3;
  w.Put("bus_wire", "digest", Tagged(0, b::Encode(digest)));
  b::Message pull;
  pull.type = b::MessageType::kPull;
  pull.pull.push_back(b::MemberId(0, 2));
  w.Put("bus_wire", "pull", Tagged(0, b::Encode(pull)));
  b::Message states;
  states.type = b::MessageType::kStates;
  states.states.emplace_back();
  w.Put("bus_wire", "states", Tagged(0, b::Encode(states)));
}

void Replicated(Writer& w) {
  namespace r = shoal::replicated;
  const r::Change put{"key", std::string("value"), r::Stamp{{100, 0}, r::MemberId(0, 1)},
                      r::kNoExpire};
  const r::Change del{"gone", std::nullopt, r::Stamp{{101, 0}, r::MemberId(0, 2)}, r::kNoExpire};
  r::SyncRequest compare;
  compare.map = "users";
  w.Put("replicated_wire", "request", Tagged(0, r::EncodeRequest(compare)));
  w.Put("replicated_wire", "changes", Tagged(1, r::EncodeChanges("users", {put, del})));
  r::LwwMap map;
  map.Apply(put);
  map.Apply(del);
  w.Put("replicated_wire", "snapshot", Tagged(2, r::EncodeSnapshot("users", map)));
  // Edits of the target's own valid messages (high bit: kind; next byte: which message).
  for (int kind = 0; kind < 4; ++kind) {
    const std::string edit = {static_cast<char>(0x80 | kind), static_cast<char>(kind), 'x'};
    w.Put("replicated_wire", "edit_" + std::to_string(kind), edit);
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s <corpus dir>\n", argv[0]);
    return 2;
  }
  Writer w{argv[1]};
  Swim(w);
  Rpc(w);
  Sharding(w);
  Bus(w);
  Replicated(w);
  std::printf("%d seed inputs written under %s\n", w.count, argv[1]);
  return 0;
}
