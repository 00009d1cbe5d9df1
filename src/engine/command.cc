#include "engine/command.h"

#include <absl/container/flat_hash_map.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <mutex>
#include <string>

#include "common/ascii.h"
#include "common/hash.h"

namespace shoal::engine {
namespace {

struct NoCaseHash {
  size_t operator()(std::string_view s) const {
    char buf[32];
    if (s.size() > sizeof buf) return s.size();
    for (size_t i = 0; i < s.size(); ++i) buf[i] = AsciiToLower(s[i]);
    return Hash64(std::string_view(buf, s.size()));
  }
};
struct NoCaseEq {
  bool operator()(std::string_view a, std::string_view b) const { return AsciiEqualsNoCase(a, b); }
};

struct Registry {
  std::vector<CommandFamily> families;
  std::vector<CommandSpec> all;
  absl::flat_hash_map<std::string_view, const CommandSpec*, NoCaseHash, NoCaseEq> by_name;
  explicit Registry(std::span<const CommandFamily> f) : families(f.begin(), f.end()) {
    for (const CommandFamily& family : families) {
      all.insert(all.end(), family.commands.begin(), family.commands.end());
    }
    std::sort(all.begin(), all.end(),
              [](const CommandSpec& a, const CommandSpec& b) { return a.name < b.name; });
    for (const CommandSpec& s : all) by_name.emplace(s.name, &s);
  }
};

// Written once before any worker runs, then only read: no lock on the lookup path.
std::atomic<const Registry*> g_registry{nullptr};
const Registry kEmpty{{}};

const Registry& GetRegistry() {
  const Registry* r = g_registry.load(std::memory_order_acquire);
  return r != nullptr ? *r : kEmpty;
}

}  // namespace

void InstallCommandFamilies(std::span<const CommandFamily> families) {
  static std::once_flag once;
  std::call_once(once, [families] {
    g_registry.store(new Registry(families), std::memory_order_release);  // lives to exit
  });
}

std::span<const CommandFamily> CommandFamilies() { return GetRegistry().families; }

const CommandSpec* FindCommand(std::string_view name) {
  const auto& r = GetRegistry();
  auto it = r.by_name.find(name);
  return it == r.by_name.end() ? nullptr : it->second;
}

std::span<const CommandSpec> AllCommands() { return GetRegistry().all; }

std::vector<std::string> FlagNames(uint32_t flags) {
  std::vector<std::string> out;
  if (flags & kCmdWrite) out.push_back("write");
  if (flags & kCmdReadOnly) out.push_back("readonly");
  if (flags & kCmdDenyOom) out.push_back("denyoom");
  if (flags & kCmdAdmin) out.push_back("admin");
  if (flags & kCmdNoAuth) out.push_back("no_auth");
  if (flags & kCmdFast) out.push_back("fast");
  if (flags & kCmdConnection) out.push_back("stale");
  return out;
}

KeyPosList KeyPositions(const CommandSpec& spec, Args args) {
  KeyPosList pos;
  if (spec.first_key <= 0) return pos;
  const int argc = static_cast<int>(args.size());
  const int last = spec.last_key < 0 ? argc + spec.last_key : spec.last_key;
  const int step = std::max(spec.key_step, 1);
  for (int i = spec.first_key; i <= last && i < argc; i += step)
    pos.push_back(static_cast<size_t>(i));
  return pos;
}

std::string ReplyTooLargeError(uint64_t estimated_bytes, int64_t limit) {
  if (limit <= 0 || estimated_bytes <= static_cast<uint64_t>(limit)) return "";
  return "ERR the reply would take about " + std::to_string(estimated_bytes) +
         " bytes, over client-output-buffer-limit (" + std::to_string(limit) +
         " bytes): ask for fewer elements";
}

uint64_t BulkReplyBytes(uint64_t len) {
  uint64_t digits = 1;
  for (uint64_t v = len; v >= 10; v /= 10) ++digits;
  return 1 + digits + 2 + len + 2;
}

bool ParseInt64(std::string_view s, int64_t* out) {
  if (s.empty() || s.size() > 20) return false;
  if (s.size() > 1 && s[0] == '0') return false;
  if (s[0] == '-' && (s.size() == 1 || s[1] == '0')) return false;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
  return ec == std::errc() && p == s.data() + s.size();
}

bool ParseDouble(std::string_view s, double* out) {
  if (s.empty() || s.size() > 300 || std::isspace(static_cast<unsigned char>(s[0]))) return false;
  std::string tmp(s);
  char* end = nullptr;
  errno = 0;
  double v = std::strtod(tmp.c_str(), &end);
  if (end != tmp.c_str() + tmp.size() || errno == ERANGE || std::isnan(v)) return false;
  *out = v;
  return true;
}

}  // namespace shoal::engine
