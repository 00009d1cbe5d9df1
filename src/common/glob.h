// Redis glob matching (stringmatchlen): * ? [abc] [^a] [a-z] and \\ escapes. Used by KEYS, SCAN
// MATCH, HSCAN, CONFIG GET, PUBSUB CHANNELS, PSUBSCRIBE and the bus.
//
// The matcher never backtracks recursively: a '*' only records where to resume, and a mismatch
// resumes after the most recent '*' one character further along the string. Retrying from the
// latest star alone is enough for globs (a '*' matches any run, so an earlier star's choice never
// has to change once a later star has been reached), which bounds a match at
// O(|pattern| × |string|) steps whatever the pattern: `a*a*a*…*b` against a long string of `a`s
// costs microseconds instead of the exponential time a recursive matcher spends (Redis's
// CVE-2022-36021).
#pragma once

#include <string_view>

namespace shoal {

bool GlobMatch(std::string_view pattern, std::string_view str, bool nocase = false);

}  // namespace shoal
