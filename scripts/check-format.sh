#!/usr/bin/env bash
# Fails (listing the files) if any C++ source is not clang-formatted.
cd "$(dirname "$0")/.."
bad=0
while IFS= read -r f; do
  [ -f "$f" ] || continue
  if ! clang-format --dry-run -Werror "$f" >/dev/null 2>&1; then echo "not formatted: $f"; bad=1; fi
done < <(git ls-files --cached --others --exclude-standard '*.h' '*.cc' 2>/dev/null)
exit $bad
