#!/usr/bin/env bash
# Packed-document measurements for docs/parallel.md and docs/PERFORMANCE.md (issue 18):
#   balance - attention work (visible pairs) per rank over 100 random packings (document lengths
#             log-uniform from 1K to T = 131072), sequence zigzag vs doc_zigzag at cp 4 and 8
#   skip    - cpu attention forward + backward at cp 1, 16 equal documents in a 32K sample vs plain
#             causal (one head of 64, tile 64, fp32, OMP_NUM_THREADS=2, best of 3)
# usage: tools/measure_docmask.sh [balance|skip|all] [OUTDIR]   (needs build/bin/bench_docmask:
#        `make` builds it). Writes OUTDIR/{balance,skip}.json (docs/perf/2026-12-04-docmask/ holds the
# committed ones that tools/doc_blocks.py turns into the docs' tables) and asserts the claims:
# doc_zigzag's mean max/mean below zigzag's at each cp, masked time <= 2 x visible-pair fraction x
# causal time. Exit 1 otherwise.
set -euo pipefail
cd "$(dirname "$0")/.."
what=${1:-all}
out=${2:-build/measure_docmask}
bin=${BENCH_BIN:-build/bin/bench_docmask}
mkdir -p "$out"
py=python3
[ -x .venv/bin/python3 ] && py=.venv/bin/python3
failed=0
if [ "$what" = balance ] || [ "$what" = all ]; then
  "$bin" balance 131072 100 >"$out/balance.json"
  cat "$out/balance.json"
  "$py" - "$out/balance.json" <<'PY' || failed=1
import json, sys
rows = json.load(open(sys.argv[1]))["rows"]
for cp in (4, 8):
    z = next(r for r in rows if r["cp"] == cp and r["sharding"] == "zigzag")["mean_max_over_mean"]
    d = next(r for r in rows if r["cp"] == cp and r["sharding"] == "doc_zigzag")["mean_max_over_mean"]
    print(f"cp {cp}: mean max/mean zigzag {z:.4f}, doc_zigzag {d:.4f}")
    if not d < z:
        sys.exit("doc_zigzag does not balance better: the default for reset_attention_mask must change")
PY
fi
if [ "$what" = skip ] || [ "$what" = all ]; then
  OMP_NUM_THREADS=2 "$bin" skip 32768 16 3 >"$out/skip.json" || { echo "masked attention above 2 x fraction x causal"; failed=1; }
  cat "$out/skip.json"
fi
exit $failed
