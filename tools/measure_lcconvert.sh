#!/usr/bin/env bash
# Peak RSS of `lcconvert from-hf` and `lcconvert to-hf` on a multi-shard model (docs/PERFORMANCE.md,
# "Streaming HF conversion"): a 1.7 GB fp32 Llama-shaped model in 200 MB shards, made by
# tools/make_big_hf_model.py, imported to an lctrain checkpoint and exported again in bf16 shards.
# Usage: tools/measure_lcconvert.sh [WORKDIR] [OUTFILE]   (needs ~5 GB of disk in WORKDIR)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
work=${1:-/tmp/lct-measure-lcconvert}
out=${2:-/dev/stdout}
py=$root/.venv/bin/python3
lc=$root/build/bin/lcconvert
rm -rf "$work" && mkdir -p "$work"
{
  echo "# tools/measure_lcconvert.sh on $(hostname), $(date -u +%Y-%m-%dT%H:%MZ), commit $(git -C "$root" rev-parse --short HEAD)"
  echo "\$ $py tools/make_big_hf_model.py $work/hf --layers 6 --shard-mb 200"
  "$py" "$root/tools/make_big_hf_model.py" "$work/hf" --layers 6 --shard-mb 200
  echo "\$ lcconvert from-hf tests/data/hf/tiny_gqa2 tiny.h5   (baseline: the program and its libraries)"
  "$lc" from-hf "$root/tests/data/hf/tiny_gqa2" "$work/tiny.h5"
  echo "\$ lcconvert from-hf $work/hf big.h5"
  "$lc" from-hf "$work/hf" "$work/big.h5"
  echo "\$ lcconvert to-hf big.h5 out --dtype bf16 --shard-bytes 200000000"
  "$lc" to-hf "$work/big.h5" "$work/out" --dtype bf16 --shard-bytes 200000000
  echo "\$ ls -l $work/out"
  ls -l "$work/out" | grep safetensors
} > "$out" 2>&1
rm -rf "$work"
