#!/bin/bash
# The suite "format": every C file in the tree follows .clang-format (the
# house style, item 18), checked with Debian 12's clang-format 14. A file
# that departs fails the suite and is named with its first differences; the
# fix is `clang-format -i FILE` (or, for a table or macro clang-format mangles,
# /* clang-format off */ ... /* clang-format on */ around it). Exit 77 when
# clang-format is not installed (scripts/install-deps.sh installs it; under CI
# a skip counts as a failure).
set -uo pipefail
cd "$(dirname "$0")/.."
command -v clang-format >/dev/null || { echo "1..0 # SKIP clang-format missing"; exit 77; }
mapfile -t files < <(git ls-files '*.c' '*.h' 2>/dev/null || find . -name '*.[ch]' ! -path './build*')
echo "1..${#files[@]}"
n=0 bad=0
for f in "${files[@]}"; do
	n=$((n + 1))
	if out=$(clang-format --dry-run -Werror "$f" 2>&1) && [ -z "$out" ]; then
		echo "ok $n - $f"
	else
		echo "not ok $n - $f departs from .clang-format (clang-format -i $f)"
		printf '%s\n' "$out" | head -n 6 | sed 's/^/# /'
		bad=$((bad + 1))
	fi
done
[ "$bad" = 0 ]
