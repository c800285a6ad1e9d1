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
    log=$(mktemp)
    ok=1
    (cd "$mod" && go test -run '^$' -fuzz "^${name}\$" -fuzztime "$fuzztime" "./$dir") 2>&1 | tee "$log" || ok=0
    # Go's fuzzer can report "context deadline exceeded" when -fuzztime
    # ends while a worker is still on an input (most often on a loaded
    # machine); that is no crash and writes no failing input. Such a run is
    # repeated, at most twice, and said so; a crash (a failing input
    # written) is not.
    for attempt in 1 2; do
      if [ "$ok" = 1 ] || ! grep -q 'context deadline exceeded' "$log" || grep -q 'Failing input written' "$log"; then
        break
      fi
      echo "RETRY $attempt: $mod/$dir $name ended with the fuzzer's deadline error and no failing input; running it again"
      ok=1
      (cd "$mod" && go test -run '^$' -fuzz "^${name}\$" -fuzztime "$fuzztime" "./$dir") 2>&1 | tee "$log" || ok=0
    done
    rm -f "$log"
    if [ "$ok" = 0 ]; then
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
