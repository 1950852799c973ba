#!/usr/bin/env bash
# Ring attention measurements for docs/PERFORMANCE.md ([ring] acceptance):
#   memory  - peak RSS per rank at fixed tokens per rank: (N, cp=1), (4N, cp=1) control,
#             (2N, cp=2), (4N, cp=4), with a model whose activations dominate
#   balance - causal score elements and attention time per rank, zigzag vs contiguous
#   longest - training steps at T = 131072 with cp = 4 on the tiny model
# usage: tools/measure_ring.sh [memory|balance|longest|all] [OUTDIR]   (needs bin/lctrain, bin/lcdata)
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
wide="--model.vocab_size=258 --model.dim=256 --model.n_layers=16 --model.n_heads=8 --model.n_kv_heads=4
      --model.ffn_dim=768 --train.micro_batch=1 --train.grad_accum=1 --train.steps=2 --train.lr=1e-4
      --data.train=$corpus --checkpoint.every=0 --train.log_every=1 --run.hang_timeout=3600"

peak() {  # max peak_rss over ranks and steps, MiB; and the step time of the last step
  python3 - "$1" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1] + "/metrics.jsonl") if '"loss"' in l]
print("%.0f %.1f %s" % (max(r["peak_rss_bytes"] for r in rows) / 2**20, rows[-1]["step_seconds"],
                        " ".join("%.0f" % (b / 2**20) for b in rows[-1]["peak_rss_bytes_per_rank"])))
PY
}

if [ "$what" = memory ] || [ "$what" = all ]; then
  N=4096
  echo "== memory: tokens per rank N = $N; model: 16 layers, dim 256, 8/4 heads, ffn 768 (fp32, no recompute)"
  echo "config | T | cp | peak RSS per rank MiB (max) | step s | per rank"
  for cfg in "N 1 $N 1" "4N 1 $((4*N)) 1" "2N 2 $((2*N)) 2" "4N 4 $((4*N)) 4"; do
    set -- $cfg
    dir=$out/mem_$1_cp$2
    rm -rf "$dir"
    threads=$(( $4 == 1 ? 2 : 1 ))
    OMP_NUM_THREADS=$threads $MPI $4 bin/lctrain input/tiny.deck $wide --run.out_dir=$dir --train.seq_len=$3 \
      --parallel.cp=$4 >"$dir.log" 2>&1 || { echo "run $1 cp$4 failed: see $dir.log"; continue; }
    echo "($1, cp=$4) | $3 | $4 | $(peak $dir)"
  done
fi

if [ "$what" = balance ] || [ "$what" = all ]; then
  echo "== balance and overlap: tiny model, T = 8192, cp = 4, zigzag vs contiguous"
  for shard in zigzag contiguous; do
    dir=$out/balance_$shard
    rm -rf "$dir"
    OMP_NUM_THREADS=1 $MPI 4 bin/lctrain input/tiny.deck --data.train=$corpus --run.out_dir=$dir --train.seq_len=8192 \
      --train.micro_batch=1 --train.steps=3 --parallel.cp=4 --parallel.cp_sharding=$shard --checkpoint.every=0 >"$dir.log" 2>&1
    python3 - "$dir" "$shard" <<'PY'
import json, sys
r = [json.loads(l) for l in open(sys.argv[1] + "/metrics.jsonl") if '"loss"' in l][-1]
print(f"{sys.argv[2]}: score elements per rank {r['attn_score_elements']}")
print(f"{sys.argv[2]}: attention compute s per rank {[round(x, 3) for x in r['attn_compute_s']]}")
print(f"{sys.argv[2]}: ring overlap (t_comm + t_compute - t_ring) / t_comm per rank {[round(x, 2) for x in r['ring_overlap']]}")
print(f"{sys.argv[2]}: step {r['step_seconds']:.2f} s, p2p pairs {r['p2p_pairs']}")
PY
  done
fi

if [ "$what" = longest ] || [ "$what" = all ]; then
  T=131072
  echo "== longest context: tiny model, T = $T, cp = 4, recompute, 2 steps"
  dir=$out/longest
  rm -rf "$dir"
  OMP_NUM_THREADS=1 $MPI 4 bin/lctrain input/tiny.deck --data.train=$corpus --run.out_dir=$dir --train.seq_len=$T \
    --train.micro_batch=1 --train.steps=2 --parallel.cp=4 --train.recompute=layer --checkpoint.every=0 \
    --run.hang_timeout=7200 >"$dir.log" 2>&1
  echo "T=$T cp=4: peak RSS MiB (max), last step s, per rank: $(peak $dir)"
fi
