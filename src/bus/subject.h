// NATS subject syntax for the bus's publish-subscribe routing keys, sans-I/O.
//
// A subject is tokens separated by '.', e.g. "orders.eu.created". Tokens are non-empty and hold
// no whitespace. A pattern (used by subscriptions) may use two wildcards, each a whole token:
//   `*` matches exactly one token ("a.*.c" matches "a.b.c", not "a.c" or "a.b.x.c");
//   `>` matches one or more trailing tokens and may only be last ("a.>" matches "a.b" and
//       "a.b.c", not "a"; ">" alone matches every subject).
// A literal subject (used by publish) may not contain '*' or '>' at all. A token that mixes a
// wildcard character with others ("a*", "x>y") is rejected in patterns too, so the syntax has
// one reading. Subjects are limited to kMaxTokens tokens, which bounds the recursion below.
//
// SubjectIndex<T> is a token trie like NATS's sublist: it maps subscriptions (pattern, id) to
// their ids. Match walks the trie along the subject's tokens, following the literal child, the
// `*` child and the `>` leaf of each node, so its cost is proportional to the subject's tokens
// times the wildcard branching and to the number of results, never to the subscription count.
// Each subscription that matches is reported exactly once (a pattern is one path in the trie).
// A subscription is a set element: inserting the same (pattern, id) twice keeps one.
//
// The error codes of routing (subjects here, strategies in strategy.h) are bus::RoutingErrc,
// apart from the registry's bus::Errc (registry.h), so this header stays free of membership.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/string_view.h"
#include "common/result.h"

namespace shoal::bus {

enum class RoutingErrc {
  kInvalidSubject = 1,  // a subject or pattern that breaks the syntax above
  kNoHandler,           // no live handler can take the request (like NATS no-responders)
  kRejected,            // the application's router rejected the request
  kInvalidRoute,        // a router or config that cannot route (a stranger handler, no router)
};
SHOAL_ERROR_CATEGORY_DECL(RoutingErrc)

}  // namespace shoal::bus

template <>
struct std::is_error_code_enum<shoal::bus::RoutingErrc> : std::true_type {};

namespace shoal::bus {

// More tokens than this make a subject or pattern invalid.
inline constexpr size_t kMaxTokens = 256;

// OK if `subject` is a valid literal subject (no wildcards), else kInvalidSubject with a message
// naming the problem and the token's position.
Status ValidateSubject(std::string_view subject);
// OK if `pattern` is a valid subscription pattern (wildcards allowed), else kInvalidSubject.
Status ValidatePattern(std::string_view pattern);

// True if the pattern matches the literal subject. False if either is invalid.
bool Matches(std::string_view pattern, std::string_view subject);

// Splits on '.'. No validation: "a..b" gives an empty middle token.
std::vector<std::string_view> SplitTokens(std::string_view s);

// Subscriptions (pattern, id) → id; see the note at the top. T must be hashable by absl and
// equality-comparable (integers, strings, ...). Not thread-safe.
template <typename T>
class SubjectIndex {
 public:
  SubjectIndex() : root_(std::make_unique<Node>()) {}

  // Adds a subscription. True if new, false if (pattern, id) was already there; an error (and no
  // change) if the pattern is invalid.
  Result<bool> Insert(std::string_view pattern, const T& id) {
    if (Status s = ValidatePattern(pattern); !s.ok()) return s.error();
    Node* node = root_.get();
    const std::vector<std::string_view> tokens = SplitTokens(pattern);
    for (std::string_view tok : tokens) {
      if (tok == ">") {
        const bool added = node->rest.insert(id).second;
        count_ += added ? 1 : 0;
        return added;
      }
      std::unique_ptr<Node>& child = tok == "*" ? node->star : node->children[Sv(tok)];
      if (!child) child = std::make_unique<Node>();
      node = child.get();
    }
    const bool added = node->here.insert(id).second;
    count_ += added ? 1 : 0;
    return added;
  }

  // Removes a subscription. True if it was there. Empty trie nodes are freed.
  bool Erase(std::string_view pattern, const T& id) {
    if (!ValidatePattern(pattern).ok()) return false;
    const std::vector<std::string_view> tokens = SplitTokens(pattern);
    const bool erased = EraseAt(root_.get(), tokens, 0, id);
    count_ -= erased ? 1 : 0;
    return erased;
  }

  // Calls f(id) once for each subscription whose pattern matches the literal `subject`. An
  // invalid subject (or one with wildcards) matches nothing.
  template <typename F>
  void ForEachMatch(std::string_view subject, F&& f) const {
    if (!ValidateSubject(subject).ok()) return;
    const std::vector<std::string_view> tokens = SplitTokens(subject);
    MatchAt(root_.get(), tokens, 0, f);
  }

  std::vector<T> Match(std::string_view subject) const {
    std::vector<T> out;
    ForEachMatch(subject, [&out](const T& id) { out.push_back(id); });
    return out;
  }

  // The number of subscriptions.
  size_t Count() const { return count_; }
  bool Empty() const { return count_ == 0; }

 private:
  // Debian's Abseil has its own string_view, which heterogeneous lookup needs.
  static absl::string_view Sv(std::string_view s) { return {s.data(), s.size()}; }

  struct Node {
    absl::flat_hash_map<std::string, std::unique_ptr<Node>> children;  // literal next tokens
    std::unique_ptr<Node> star;                                        // `*` next token
    absl::flat_hash_set<T> here;  // patterns that end at this node
    absl::flat_hash_set<T> rest;  // patterns "<path to this node>.>"

    bool Unused() const { return children.empty() && !star && here.empty() && rest.empty(); }
  };

  template <typename F>
  static void MatchAt(const Node* node, const std::vector<std::string_view>& tokens, size_t i,
                      F& f) {
    if (i == tokens.size()) {
      for (const T& id : node->here) f(id);
      return;
    }
    for (const T& id : node->rest) f(id);  // `>` takes tokens[i..], at least one
    if (auto it = node->children.find(Sv(tokens[i])); it != node->children.end()) {
      MatchAt(it->second.get(), tokens, i + 1, f);
    }
    if (node->star) MatchAt(node->star.get(), tokens, i + 1, f);
  }

  static bool EraseAt(Node* node, const std::vector<std::string_view>& tokens, size_t i,
                      const T& id) {
    if (i == tokens.size()) return node->here.erase(id) > 0;
    const std::string_view tok = tokens[i];
    if (tok == ">") return node->rest.erase(id) > 0;
    if (tok == "*") {
      if (!node->star) return false;
      const bool erased = EraseAt(node->star.get(), tokens, i + 1, id);
      if (node->star->Unused()) node->star.reset();
      return erased;
    }
    auto it = node->children.find(Sv(tok));
    if (it == node->children.end()) return false;
    const bool erased = EraseAt(it->second.get(), tokens, i + 1, id);
    if (it->second->Unused()) node->children.erase(it);
    return erased;
  }

  std::unique_ptr<Node> root_;
  size_t count_ = 0;
};

}  // namespace shoal::bus
