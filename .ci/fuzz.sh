#!/usr/bin/env bash
# Fuzz smoke run: every Fuzz target in every module of the repository runs
# for FUZZTIME (default 5s) on top of its seed corpus. A crash fails CI and
# leaves the failing input under the package's testdata/fuzz/ directory, to
# be committed with the fix as a regression seed.
#
# Usage: bash .ci/fuzz.sh [package-pattern]   (FUZZTIME=10s to run longer)
set -euo pipefail
cd "$(dirname "$0")/.."
fuzztime=${FUZZTIME:-5s}
filter=${1:-}
failed=0
count=0
for mod in . e2e loadtest; do
  [ -f "$mod/go.mod" ] || continue
  # Each line: <directory relative to the module> <FuzzName>.
  while read -r dir name; do
    [ -n "$dir" ] || continue
    if [ -n "$filter" ] && [[ "$mod/$dir" != *"$filter"* ]]; then continue; fi
    count=$((count + 1))
    echo "== fuzz $mod/$dir $name ($fuzztime)"
    if ! (cd "$mod" && go test -run '^$' -fuzz "^${name}\$" -fuzztime "$fuzztime" "./$dir"); then
      echo "FAIL: $mod/$dir $name"
      failed=$((failed + 1))
    fi
  # Files of nested modules (e2e/, loadtest/) belong to their own module.
  done < <(cd "$mod" && grep -rlE --include='*_test.go' '^func Fuzz[A-Za-z0-9_]+\(' . |
    if [ "$mod" = . ]; then grep -vE '^\./(e2e|loadtest)/'; else cat; fi |
    while read -r f; do
      d=$(dirname "$f")
      grep -hoE '^func Fuzz[A-Za-z0-9_]+' "$f" | sed 's/^func //' | sed "s|^|$d |"
    done | sort -u)
done
echo "== fuzz: $count targets, $failed failed"
if [ "$count" -eq 0 ]; then echo "no fuzz targets found: the enumeration is broken"; exit 1; fi
[ "$failed" -eq 0 ]
