#!/usr/bin/env bash
# Proves how CTest reads our GoogleTest binaries (issue: one skipped case used to make CTest report a
# binary with failed cases as skipped, and ctest exited 0). Registers demo_cases.cpp's binaries with
# the project's own lct_test_properties() in a scratch CTest project, runs ctest there and checks:
#   a failed + a skipped case -> Failed (plain main, MPI main alone, and under mpirun -np 2 where
#   rank 0 skips and rank 1 fails); every case skipped -> Skipped; a passed + a skipped case -> Passed.
# usage: test_ctest_semantics.sh DEMO_MPI DEMO_PLAIN MPIEXEC
set -euo pipefail
demo_mpi=$1 demo_plain=$2 mpiexec=$3
src=${LCT_SOURCE_DIR:?}
dir=${LCT_BINARY_DIR:?}/tests/scratch/ctest_semantics
rm -rf "$dir"
mkdir -p "$dir"
fail=0
mpirun="$mpiexec --oversubscribe --bind-to none --mca btl self,vader,tcp --mca btl_tcp_if_include lo --mca oob_tcp_if_include lo -np 2"

# name | expected verdict | command
cases=(
  "plain_fail_and_skip|Failed|$demo_plain --gtest_filter=Demo.Fails:Demo.Skips"
  "plain_all_skip|Skipped|$demo_plain --gtest_filter=Demo.Skips"
  "plain_pass_and_skip|Passed|$demo_plain --gtest_filter=Demo.Passes:Demo.Skips"
  "mpi1_fail_and_skip|Failed|$demo_mpi --gtest_filter=Demo.Skips:Demo.Fails"
  "mpi2_all_skip|Skipped|$mpirun $demo_mpi --gtest_filter=Demo.Skips"
  "mpi2_rank0_skips_rank1_fails|Failed|$mpirun $demo_mpi --gtest_filter=Demo.SkipsOnRank0FailsElsewhere"
  "mpi2_pass_and_skip|Passed|$mpirun $demo_mpi --gtest_filter=Demo.Passes:Demo.Skips"
)
{
  echo "cmake_minimum_required(VERSION 3.20)"
  echo "project(ctest_semantics NONE)"
  echo "enable_testing()"
  echo "include($src/cmake/LctHelpers.cmake)"
  for c in "${cases[@]}"; do
    IFS='|' read -r name _ cmd <<<"$c"
    echo "add_test(NAME $name COMMAND $cmd)"
    echo "lct_test_properties($name 60 demo)"
  done
} >"$dir/CMakeLists.txt"
cmake -S "$dir" -B "$dir/build" >"$dir/configure.log" 2>&1 || { cat "$dir/configure.log"; exit 1; }

rc=0
(cd "$dir/build" && ctest --output-on-failure) >"$dir/ctest.log" 2>&1 || rc=$?
# The log is shown only when this test fails: the demo's own "[  SKIPPED ]" lines would otherwise
# read as skips of this test to tools/run_ctest.sh.
trap '[ "$fail" = 0 ] || cat "$dir/ctest.log"' EXIT
for c in "${cases[@]}"; do
  IFS='|' read -r name want _ <<<"$c"
  got=$(sed -n -E "s/.*Test +#[0-9]+: $name \.+ *\*{0,3}(Passed|Failed|Skipped).*/\1/p" "$dir/ctest.log")
  if [ "$got" = "$want" ]; then
    echo "ok: $name -> $got"
  else
    echo "FAIL: $name: CTest reported '${got:-nothing}', expected $want"
    fail=1
  fi
done
[ "$rc" -ne 0 ] || { echo "FAIL: ctest exited 0 although tests failed"; fail=1; }
# Without the failing cases, ctest succeeds and lists the all-skipped ones as skipped.
rc=0
(cd "$dir/build" && ctest -R 'all_skip|pass_and_skip') >"$dir/ctest_ok.log" 2>&1 || rc=$?
[ "$rc" -eq 0 ] || { cat "$dir/ctest_ok.log"; echo "FAIL: ctest exited $rc with only passed and skipped tests"; fail=1; }
grep -q "plain_all_skip (Skipped)" "$dir/ctest_ok.log" || { cat "$dir/ctest_ok.log"; echo "FAIL: no skip listed"; fail=1; }
[ "$fail" = 0 ] && echo "PASS: CTest fails a binary with a failed case whatever else it skipped"
exit "$fail"
