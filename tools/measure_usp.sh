#!/usr/bin/env bash
# Counted bytes per step of ring-only vs hierarchical context parallelism (issue 19), for
# docs/parallel.md: `mpirun -np 8` lctrain runs of 2 steps on 2 emulated nodes of 4 ranks
# (parallel.ranks_per_node = 4), cp = 8, one model (8 query / 4 K/V heads, 8K tokens: the ring's
# bytes dominate the gradient reduction's), with
#   p2p          the ring over all 8 ranks (it crosses the nodes twice)
#   a2a+p2p 2,4  all-to-all over pairs inside a node x ring of 4
#   a2a+p2p 4,2  all-to-all over the 4 ranks of a node x ring of 2
# Each run's metrics.jsonl (what the comm layer counted, summed over ranks) is compared with
# `lctrain --plan` for the same deck: they must be equal (exit 1 otherwise). Writes OUTDIR/usp.json
# (docs/perf/2026-12-05-usp/ holds the committed one that tools/doc_blocks.py turns into the table).
# usage: tools/measure_usp.sh [OUTDIR]    (needs build/bin/lctrain: `make`)
# Step times on a 2-core machine are no evidence of a gain on a cluster: not recorded.
set -euo pipefail
cd "$(dirname "$0")/.."
out=$(realpath -m "${1:-build/measure_usp}")
bin=$(realpath "${BIN:-build/bin}")
mkdir -p "$out"
py=python3
[ -x .venv/bin/python3 ] && py=.venv/bin/python3
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=1
"$py" - "$out/data.bin" <<'PY'
import struct, sys, random
# A llm.c shard (header of 256 int32: magic 20240520, version 1, token count) of random tokens.
random.seed(5)
n = 60000
with open(sys.argv[1], "wb") as f:
    f.write(struct.pack("<256i", 20240520, 1, n, *([0] * 253)))
    f.write(struct.pack(f"<{n}H", *(random.randrange(256) for _ in range(n))))
PY
deck="$out/usp.deck"
cat >"$deck" <<EOF
[run]
out_dir = $out/run
[model]
vocab_size = 256
dim = 64
n_layers = 2
n_heads = 8
n_kv_heads = 4
head_dim = 8
ffn_dim = 128
[train]
seq_len = 8192
micro_batch = 1
steps = 2
lr = 1e-3
[data]
train = $out/data.bin
[parallel]
cp = 8
ranks_per_node = 4
EOF
runs=("p2p" "a2a+p2p 2,4" "a2a+p2p 4,2")
: >"$out/runs.jsonl"
for r in "${runs[@]}"; do
  set -- $r
  keys=(--parallel.cp_comm_type=$1)
  [ $# -gt 1 ] && keys+=(--parallel.hierarchical_cp_sizes=$2)
  name=$(echo "$r" | tr ' ,+' '___')
  rm -rf "$out/run"
  echo "== $r"
  mpirun --oversubscribe -np 8 "$bin/lctrain" "$deck" "${keys[@]}" >"$out/$name.log" 2>&1 ||
    { cat "$out/$name.log"; exit 1; }
  "$bin/lctrain" --plan "$deck" --world-size 8 "${keys[@]}" --run.out_dir="$out/plan_$name" >"$out/plan_$name.txt"
  "$py" - "$r" "$out/run/metrics.jsonl" "$out/plan_$name/plan.json" "$out/run/layout.json" >>"$out/runs.jsonl" <<'PY'
import json, sys
name, metrics, plan, layout = sys.argv[1:]
rows = [json.loads(l) for l in open(metrics)]
rows = [r for r in rows if "step" in r and "event" not in r]
pred = json.load(open(plan))["stages"][0]["predicted"]
lay = json.load(open(layout))
keys = ["bytes_intra_node_total", "bytes_same_rail_total", "bytes_cross_rail_total", "bytes_a2a_total"]
for r in rows:
    for k in keys:
        if r[k] != pred[k]:
            sys.exit(f"{name}: step {r['step']} counted {k} = {r[k]}, --plan predicts {pred[k]}")
r = rows[-1]
print(json.dumps({"run": name, "cp_a2a": lay["cp_a2a"], "cp_ring": lay["cp_ring"],
                  "ring_hops": lay["ring_hops"], **{k: r[k] for k in keys},
                  "cross_node": r["bytes_same_rail_total"] + r["bytes_cross_rail_total"],
                  "planned_equal": True}))
PY
  tail -1 "$out/runs.jsonl"
done
"$py" - "$out/runs.jsonl" "$out/usp.json" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
json.dump({"machine": "8 MPI ranks, 2 emulated nodes of 4 (parallel.ranks_per_node = 4), cpu backend f32",
           "model": "dim 64, 2 layers, 8 q / 4 kv heads of 8, seq_len 8192, micro_batch 1, cp 8",
           "command": "tools/measure_usp.sh", "rows": rows}, open(sys.argv[2], "w"), indent=1)
base = rows[0]["cross_node"]
for r in rows:
    print(f"{r['run']:>14}: cross-node {r['cross_node']:>10} B/step ({r['cross_node'] / base:.3f} of ring only), "
          f"intra-node {r['bytes_intra_node_total']:>10}, of which all-to-all {r['bytes_a2a_total']:>10}")
PY
