#!/usr/bin/env bash
# Rewrites tests/gpu/ptx_table.json (the PTX guard's committed table: per kernel the shfl.sync,
# float-atomic and mma.sync counts, registers, spills) from a fresh sm_90 compile of cuda/*.cu.
# Review the diff like code: a count that drops to zero is a lost shuffle, atomic or mma.
# Usage: tools/update_ptx_table.sh [build-dir]   (default: build; configured with CUDA)
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
cmake --build "$build" --target update_ptx_table
git --no-pager diff --stat -- tests/gpu/ptx_table.json
