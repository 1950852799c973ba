#!/usr/bin/env bash
# Ring attention measurements for docs/PERFORMANCE.md ([ring] acceptance):
#   memory  - peak RSS per rank at fixed tokens per rank: (N, cp=1), (4N, cp=1) control,
#             (2N, cp=2), (4N, cp=4), with a model whose activations dominate
#   balance - causal score elements and attention time per rank, zigzag vs contiguous
#   longest - a training step at T = 131072 with cp = 4 on the tiny model
# usage: tools/measure_ring.sh [memory|balance|longest|all] [OUTDIR]   (needs bin/lctrain, bin/lcdata)
# Writes OUTDIR/{memory,balance,longest}.json (docs/perf/2026-12-04-ring/ holds the committed ones that
# tools/doc_blocks.py turns into docs/PERFORMANCE.md's tables) and asserts the ring's claims: memory
# per rank at (2N, cp=2) and (4N, cp=4) <= 1.1x that of (N, cp=1), the control (4N, cp=1) >= 3x
# (the measurement sees activations), zigzag's score elements equal on every rank. Exit 1 otherwise.
set -euo pipefail
cd "$(dirname "$0")/.."
what=${1:-all}
out=${2:-build/measure_ring}
mkdir -p "$out"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
MPI="mpirun --oversubscribe --bind-to none -np"
corpus=$out/corpus.h5
[ -f "$corpus" ] || bin/lcdata text --tokenizer bytes --out "$corpus" src/*/*.cpp src/*/*.h src/*/*/*.h docs/*.md >/dev/null

# The activation-dominated model: 16 layers x dim 256 (8 heads, 4 kv heads), ffn 768, bytes vocabulary.
# One step: its forward/backward and the optimizer's first update reach the run's peak.
wide="--model.vocab_size=258 --model.dim=256 --model.n_layers=16 --model.n_heads=8 --model.n_kv_heads=4
      --model.ffn_dim=768 --train.micro_batch=1 --train.grad_accum=1 --train.steps=1 --train.lr=1e-4
      --data.train=$corpus --checkpoint.every=0 --train.log_every=1 --run.hang_timeout=3600"

failed=0
py=python3
[ -x .venv/bin/python3 ] && py=.venv/bin/python3
peak() {  # RUN_DIR [CONFIG T CP]: "max peak RSS MiB, last step s, per rank"; appends a JSON row to $rows
  "$py" - "$@" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1] + "/metrics.jsonl") if '"loss"' in l]
per = [b / 2**20 for b in rows[-1]["peak_rss_bytes_per_rank"]]
peak = max(r["peak_rss_bytes"] for r in rows) / 2**20
print("%.0f %.1f %s" % (peak, rows[-1]["step_seconds"], " ".join("%.0f" % b for b in per)))
if len(sys.argv) > 2:
    with open(sys.argv[1] + ".row.json", "w") as f:
        json.dump({"config": sys.argv[2], "T": int(sys.argv[3]), "cp": int(sys.argv[4]), "peak_mib": peak,
                   "peak_mib_per_rank": per, "step_s": rows[-1]["step_seconds"]}, f)
PY
}

if [ "$what" = memory ] || [ "$what" = all ]; then
  N=${RING_N:-4096}  # tokens per rank (RING_N: a quick smoke run of the script itself)
  echo "== memory: tokens per rank N = $N; model: 16 layers, dim 256, 8/4 heads, ffn 768 (fp32, no recompute)"
  echo "config | T | cp | peak RSS per rank MiB (max) | step s | per rank"
  for cfg in "N 1 $N 1" "4N 1 $((4*N)) 1" "2N 2 $((2*N)) 2" "4N 4 $((4*N)) 4"; do
    set -- $cfg
    dir=$out/mem_$1_cp$2
    rm -rf "$dir"
    threads=$(( $4 == 1 ? 2 : 1 ))
    OMP_NUM_THREADS=$threads $MPI $4 bin/lctrain input/tiny.deck $wide --run.out_dir=$dir --train.seq_len=$3 \
      --parallel.cp=$4 >"$dir.log" 2>&1 || { echo "run $1 cp$4 failed: see $dir.log"; failed=1; continue; }
    echo "($1, cp=$4) | $3 | $4 | $(peak $dir $1 $3 $4)"
  done
  "$py" - "$out" <<'PY' || failed=1
import glob, json, sys
out = sys.argv[1]
runs = {(r["config"], r["cp"]): r for r in (json.load(open(p)) for p in glob.glob(out + "/mem_*.row.json"))}
order = [("N", 1), ("4N", 1), ("2N", 2), ("4N", 4)]
missing = [k for k in order if k not in runs]
if missing:
    sys.exit(f"memory: runs missing: {missing}")
json.dump({"what": "peak RSS per rank at fixed tokens per rank (tools/measure_ring.sh memory)",
           "runs": [runs[k] for k in order]}, open(out + "/memory.json", "w"), indent=1)
base = runs[("N", 1)]["peak_mib"]
ratios = {k: runs[k]["peak_mib"] / base for k in order}
print("ratios to (N, cp=1): " + ", ".join(f"({c}, cp={p}) {r:.3f}" for (c, p), r in ratios.items()))
bad = [f"({c}, cp={p}) {ratios[(c, p)]:.3f} > 1.1" for c, p in [("2N", 2), ("4N", 4)] if ratios[(c, p)] > 1.1]
if ratios[("4N", 1)] < 3:
    bad.append(f"control (4N, cp=1) {ratios[('4N', 1)]:.3f} < 3: the measurement does not see activations")
if bad:
    sys.exit("FAIL: " + "; ".join(bad))
print("memory: OK (ring runs <= 1.1x of (N, cp=1); control >= 3x)")
PY
fi

if [ "$what" = balance ] || [ "$what" = all ]; then
  echo "== balance and overlap: tiny model, T = 8192, cp = 4, zigzag vs contiguous"
  for shard in zigzag contiguous; do
    dir=$out/balance_$shard
    rm -rf "$dir"
    OMP_NUM_THREADS=1 $MPI 4 bin/lctrain input/tiny.deck --data.train=$corpus --run.out_dir=$dir --train.seq_len=8192 \
      --train.micro_batch=1 --train.steps=3 --parallel.cp=4 --parallel.cp_sharding=$shard --checkpoint.every=0 >"$dir.log" 2>&1
    "$py" - "$dir" "$shard" <<'PY'
import json, sys
r = [json.loads(l) for l in open(sys.argv[1] + "/metrics.jsonl") if '"loss"' in l][-1]
print(f"{sys.argv[2]}: score elements per rank {r['attn_score_elements']}")
print(f"{sys.argv[2]}: attention compute s per rank {[round(x, 3) for x in r['attn_compute_s']]}")
print(f"{sys.argv[2]}: ring overlap (t_comm + t_compute - t_ring) / t_comm per rank {[round(x, 2) for x in r['ring_overlap']]}")
print(f"{sys.argv[2]}: step {r['step_seconds']:.2f} s, p2p pairs {r['p2p_pairs']}")
json.dump({"sharding": sys.argv[2], **{k: r[k] for k in ("attn_score_elements", "attn_compute_s", "ring_overlap",
                                                            "step_seconds", "p2p_pairs")}},
          open(sys.argv[1] + ".row.json", "w"))
PY
  done
  "$py" - "$out" <<'PY' || failed=1
import json, sys
out = sys.argv[1]
runs = [json.load(open(f"{out}/balance_{s}.row.json")) for s in ("zigzag", "contiguous")]
json.dump({"what": "tiny model, T = 8192, cp = 4: per-rank attention work and ring overlap (tools/measure_ring.sh balance)",
           "runs": runs}, open(out + "/balance.json", "w"), indent=1)
z = runs[0]["attn_score_elements"]
if len(set(z)) != 1:
    sys.exit(f"FAIL: zigzag score elements per rank differ: {z}")
print("balance: OK (zigzag: equal score elements on every rank)")
PY
fi

if [ "$what" = longest ] || [ "$what" = all ]; then
  T=131072
  echo "== longest context: tiny model, T = $T, cp = 4, recompute, 1 step"
  dir=$out/longest
  rm -rf "$dir"
  if OMP_NUM_THREADS=1 $MPI 4 bin/lctrain input/tiny.deck --data.train=$corpus --run.out_dir=$dir --train.seq_len=$T \
    --train.micro_batch=1 --train.steps=1 --parallel.cp=4 --train.recompute=layer --checkpoint.every=0 \
    --run.hang_timeout=7200 >"$dir.log" 2>&1; then
    echo "T=$T cp=4: peak RSS MiB (max), last step s, per rank: $(peak $dir longest $T 4)"
    cp "$dir.row.json" "$out/longest.json"
  else
    echo "FAIL: the T=$T run failed: see $dir.log"
    failed=1
  fi
fi
exit $failed
