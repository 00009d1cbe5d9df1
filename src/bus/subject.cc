#include "bus/subject.h"

#include <string>

namespace shoal::bus {
namespace {

std::string_view DescribeRoutingErrc(RoutingErrc e) {
  switch (e) {
    case RoutingErrc::kInvalidSubject:
      return "invalid subject";
    case RoutingErrc::kNoHandler:
      return "no handler";
    case RoutingErrc::kRejected:
      return "rejected";
    case RoutingErrc::kInvalidRoute:
      return "invalid route";
  }
  return "unknown bus error";
}

bool IsSpace(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

Error Invalid(std::string_view what, std::string_view s, std::string detail) {
  return Error(RoutingErrc::kInvalidSubject,
               std::string(what) + " '" + std::string(s) + "': " + std::move(detail));
}

// Shared by both validators; `pattern` allows the wildcards.
Status Validate(std::string_view s, bool pattern) {
  const std::string_view what = pattern ? "invalid pattern" : "invalid subject";
  if (s.empty()) return Invalid(what, s, "empty");
  const std::vector<std::string_view> tokens = SplitTokens(s);
  if (tokens.size() > kMaxTokens) {
    return Invalid(what, s.substr(0, 64), "more than " + std::to_string(kMaxTokens) + " tokens");
  }
  for (size_t i = 0; i < tokens.size(); ++i) {
    const std::string_view tok = tokens[i];
    const std::string pos = "token " + std::to_string(i + 1);
    if (tok.empty()) return Invalid(what, s, pos + " is empty");
    for (char c : tok) {
      if (IsSpace(c)) return Invalid(what, s, pos + " contains whitespace");
    }
    const bool has_wild = tok.find_first_of("*>") != std::string_view::npos;
    if (!has_wild) continue;
    if (!pattern) {
      return Invalid(what, s, pos + " has a wildcard ('*' or '>'), not allowed in a subject");
    }
    if (tok.size() != 1) {
      return Invalid(what, s, pos + " mixes a wildcard with other characters");
    }
    if (tok == ">" && i + 1 != tokens.size()) {
      return Invalid(what, s, "'>' may only be the last token");
    }
  }
  return Status::Ok();
}

}  // namespace

SHOAL_ERROR_CATEGORY_DEFINE(RoutingErrc, "bus.routing", DescribeRoutingErrc)

std::vector<std::string_view> SplitTokens(std::string_view s) {
  std::vector<std::string_view> out;
  size_t start = 0;
  for (;;) {
    const size_t dot = s.find('.', start);
    if (dot == std::string_view::npos) {
      out.push_back(s.substr(start));
      return out;
    }
    out.push_back(s.substr(start, dot - start));
    start = dot + 1;
  }
}

Status ValidateSubject(std::string_view subject) { return Validate(subject, false); }

Status ValidatePattern(std::string_view pattern) { return Validate(pattern, true); }

bool Matches(std::string_view pattern, std::string_view subject) {
  if (!ValidatePattern(pattern).ok() || !ValidateSubject(subject).ok()) return false;
  const std::vector<std::string_view> p = SplitTokens(pattern);
  const std::vector<std::string_view> s = SplitTokens(subject);
  for (size_t i = 0; i < p.size(); ++i) {
    if (p[i] == ">") return s.size() > i;  // one or more remaining tokens
    if (i >= s.size()) return false;
    if (p[i] != "*" && p[i] != s[i]) return false;
  }
  return p.size() == s.size();
}

}  // namespace shoal::bus
