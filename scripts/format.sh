#!/usr/bin/env bash
# Formats every C++ source in place.
cd "$(dirname "$0")/.."
# Tracked and new (not ignored) files that exist: a file deleted but not yet staged is skipped.
git ls-files --cached --others --exclude-standard '*.h' '*.cc' | while IFS= read -r f; do
  [ -f "$f" ] && printf '%s\0' "$f"
done | xargs -0 -r clang-format -i
