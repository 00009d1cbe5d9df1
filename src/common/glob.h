// Redis glob matching (stringmatchlen): * ? [abc] [^a] [a-z] and \\ escapes. Used by KEYS, SCAN
// MATCH, CONFIG GET and PSUBSCRIBE.
#pragma once

#include <string_view>

namespace shoal {

bool GlobMatch(std::string_view pattern, std::string_view str, bool nocase = false);

}  // namespace shoal
