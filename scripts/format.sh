#!/usr/bin/env bash
# Formats every C++ source in place.
cd "$(dirname "$0")/.."
git ls-files '*.h' '*.cc' | xargs clang-format -i
