#!/usr/bin/env bash
# `make test`: runs CTest in BUILD, then names every skip: tests CTest reported as skipped (every
# case skipped, exit 77) and tests that passed with some cases skipped ("[  SKIPPED ]" in their
# output). With CI=true a skip that tests/ci_allowed_skips.txt does not list fails the run: CI
# provides SLURM, transformers and all fixtures, so only the listed (GPU) tests may skip there.
# usage: tools/run_ctest.sh BUILD [ctest arguments...]
set -uo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
build=$1
shift
cd "$build" || exit 2
out=Testing/run_ctest.out
mkdir -p Testing
ctest --output-on-failure "$@" 2>&1 | tee "$out"
rc=${PIPESTATUS[0]}

# Whole tests CTest reported as skipped.
whole=$(sed -n -E 's/.*Test +#[0-9]+: ([^ ]+) \.+\*+Skipped.*/\1/p' "$out" | sort -u)
# Tests not reported skipped whose output holds skipped cases (LastTest.log: one block per test, "N/M Test: name" first).
cases=$(awk '/^[0-9]+\/[0-9]+ Test: /{t=$3} /^\[  SKIPPED \] [A-Za-z_][A-Za-z0-9_]*[.\/]/{print t " " $4}' \
  Testing/Temporary/LastTest.log 2>/dev/null | sort -u | awk -v w=" $(echo $whole) " 'index(w, " " $1 " ") == 0')
echo
echo "== skipped tests: $(echo "$whole" | grep -c . || true)"
for t in $whole; do echo "  $t (every case skipped)"; done
if [ -n "$cases" ]; then
  echo "== skipped cases in tests that ran: $(echo "$cases" | grep -c .)"
  echo "$cases" | sed 's/^/  /'
fi

if [ "${CI:-}" = true ]; then
  allowed=$(sed -e 's/#.*//' "$src/tests/ci_allowed_skips.txt" | awk 'NF {print $1}')
  bad=""
  for t in $whole $(echo "$cases" | awk 'NF {print $1}' | sort -u); do
    grep -qx "$t" <<<"$allowed" || bad="$bad $t"
  done
  if [ -n "$bad" ]; then
    echo "CI=true: these tests skipped but tests/ci_allowed_skips.txt does not allow it:$bad"
    echo "(CI must run them: their skip message above says what was missing)"
    [ "$rc" -ne 0 ] || rc=1
  else
    echo "CI=true: every skip is allowed by tests/ci_allowed_skips.txt"
  fi
fi
exit "$rc"
