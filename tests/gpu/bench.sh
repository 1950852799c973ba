#!/usr/bin/env bash
# tests/gpu/bench.sh [--only STEP[,STEP]]: the GPU benchmarks (issue 15), lctrain next to PyTorch in
# the same run, on one GPU, with the pack (see check.sh). Steps:
#   gemm   bf16 GEMM: cuBLASLt through our Ops (square, and the ~1B model's linear shapes at 8192
#          tokens) vs torch.matmul on the same shapes
#   attn   causal attention forward + backward, B = 1, 32/8 heads, D = 128, at 8K, 32K and 128K
#          tokens: our kernels, cuDNN's (model.attention_impl = cudnn), torch's SDPA
#   step   a whole training step of the ~1B Llama (tests/gpu/decks/llama1b.deck) at seq 8K and 32K:
#          lctrain (own and cuDNN attention) and tools/bench_torch.py (bf16 autocast, SDPA,
#          fused AdamW); tokens/s and MFU (docs/PERFORMANCE.md's FLOP formula) against 989
#          TFLOP/s and against the torch.matmul rate of this run
# $OUT gets bench.log, bench_cuda.json, torch.jsonl, lctrain_steps.jsonl and bench_summary.json.
# Order: what matters most first (a call cut short still returns what finished).
set -uo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
OUTDIR=${OUT:-/tmp/lct-gpu-out}
W=${LCT_GPU_WORK:-/tmp/lct-gpu-work}
ONLY=""
[[ ${1:-} == --only ]] && ONLY=",${2:?--only STEP},"
mkdir -p "$OUTDIR" "$W"
LOG=$OUTDIR/bench.log
exec > >(tee -a "$LOG") 2>&1
T0=$SECONDS
say() { echo "[bench +$((SECONDS - T0))s] $*"; }
PACK=$W/pack
if [[ ! -x $PACK/bin/lctrain ]]; then
  [[ -f $ROOT/.gpu-pack.tar.xz ]] || { say "no .gpu-pack.tar.xz (make gpu-pack on the build machine)"; exit 1; }
  mkdir -p "$PACK" && tar -C "$PACK" -xJf "$ROOT/.gpu-pack.tar.xz" --strip-components=1
fi
# shellcheck disable=SC1091
source "$PACK/env.sh"
# shellcheck disable=SC1091
source "$ROOT/tests/gpu/cuda_env.sh"
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-8}
TORCH="python3 $ROOT/tools/bench_torch.py"
TJ=$OUTDIR/torch.jsonl
LJ=$OUTDIR/lctrain_steps.jsonl
rm -f "$TJ" "$LJ"
want() { [[ -z $ONLY || $ONLY == *",$1,"* ]]; }
rc=0

sections=""
want gemm && sections=gemm
want attn && sections=${sections:+$sections,}attn
if [[ -n $sections ]]; then
  say "---- bench_cuda: $sections"
  timeout 150 bench_cuda --only "$sections" --attn-lengths 8192,32768,131072 --json "$OUTDIR/bench_cuda.json" || rc=1
fi
if want gemm; then
  say "---- torch.matmul"
  timeout 60 $TORCH gemm --device cuda --shapes model1b --json "$TJ" || rc=1
fi
if want attn; then
  say "---- torch SDPA"
  for T in 8192 32768 131072; do
    timeout 60 $TORCH attention --device cuda --batch 1 --seq $T --heads 32 --kv-heads 8 --head-dim 128 \
      --reps $((T > 65536 ? 2 : 5)) --json "$TJ" || rc=1
  done
fi
if want step; then
  say "---- whole training step, ~1B Llama"
  for T in 8192 32768; do
    for impl in own cudnn; do
      d=$W/step_${impl}_$T
      rm -rf "$d"
      timeout 70 mpirun --oversubscribe -np 1 lctrain "$ROOT/tests/gpu/decks/llama1b.deck" --run.out_dir="$d" \
        --data.train="$PACK/data/bench_tokens.bin" --train.seq_len=$T --model.attention_impl=$impl \
        >"$d.log" 2>&1 || { say "lctrain $impl T=$T failed:"; tail -5 "$d.log"; rc=1; }
      tail -2 "$d.log"
      python3 - "$d/metrics.jsonl" "$impl" "$T" >>"$LJ" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if '"event"' not in l]
timed = rows[2:] or rows  # steps 1-2 warm up (allocation, cuBLASLt plans, cuDNN graphs)
print(json.dumps({"side": "lctrain", "attention_impl": sys.argv[2], "seq_len": int(sys.argv[3]),
                  "tokens_per_s": statistics.median(r["tokens_per_s"] for r in timed),
                  "step_seconds_median": statistics.median(r["step_seconds"] for r in timed),
                  "peak_device_bytes": max(r.get("peak_device_bytes", 0) for r in rows),
                  "steps_timed": len(timed), "loss_last": rows[-1]["loss"]}))
PY
    done
    timeout 120 $TORCH step "$ROOT/tests/gpu/decks/llama1b.deck" --device cuda --seq $T --steps 4 --warmup 2 \
      --name "torch_1b_$T" --json "$TJ" || rc=1
  done
fi

# ---- summary: MFU from one FLOP formula for both sides -----------------------------------------
python3 - "$OUTDIR" <<'PY'
import glob, json, os, sys
out = sys.argv[1]
cuda = {}
for f in glob.glob(os.path.join(out, "bench_cuda*.json")):
    cuda.update(json.load(open(f)))
torch_rows = [json.loads(l) for l in open(os.path.join(out, "torch.jsonl"))] if os.path.exists(os.path.join(out, "torch.jsonl")) else []
lct_rows = [json.loads(l) for l in open(os.path.join(out, "lctrain_steps.jsonl"))] if os.path.exists(os.path.join(out, "lctrain_steps.jsonl")) else []
# ~1B model: 16 layers, d 2048, 16 q / 8 kv heads of 128, ffn 8192, vocab 128256 (untied)
L, C, Hq, Hkv, D, F, V = 16, 2048, 16, 8, 128, 8192, 128256
matmul = L * (2 * C * Hq * D + 2 * C * Hkv * D + 3 * C * F) + V * C
flops_per_token = lambda T: 6 * matmul + 6 * L * T * C
tm = [r for r in torch_rows if r.get("op") == "gemm" and r.get("shape") == "model1b"]
torch_gemm = tm[-1]["tflops"] * 1e12 if tm else None
s = {"gemm": {"cublaslt_model1b_tflops": cuda.get("gemm_model1b_tflops"),
              "torch_matmul_model1b_tflops": torch_gemm / 1e12 if torch_gemm else None,
              "cublaslt_square_tflops": {k: v for k, v in cuda.items() if k.startswith("gemm_tflops_")}}}
if s["gemm"]["cublaslt_model1b_tflops"] and torch_gemm:
    s["gemm"]["ratio_vs_torch"] = s["gemm"]["cublaslt_model1b_tflops"] * 1e12 / torch_gemm
att = {}
for T in (8192, 32768, 131072):
    row = {"own": cuda.get(f"attn_own_{T}_fwdbwd_tflops"), "cudnn": cuda.get(f"attn_cudnn_{T}_fwdbwd_tflops")}
    tr = [r for r in torch_rows if r.get("op") == "sdpa" and r.get("T") == T]
    row["torch_sdpa"] = tr[-1]["fwd_bwd_tflops"] if tr else None
    if row["own"] and row["cudnn"]:
        row["own_vs_cudnn"] = row["own"] / row["cudnn"]
    att[str(T)] = row
s["attention_fwd_bwd_tflops"] = att
steps = []
for T in (8192, 32768):
    fl = flops_per_token(T)
    for r in [r for r in lct_rows if r["seq_len"] == T]:
        steps.append({"side": "lctrain", "attention": r["attention_impl"], "seq_len": T, "tokens_per_s": r["tokens_per_s"],
                      "mfu_989": r["tokens_per_s"] * fl / 989e12,
                      "mfu_vs_torch_matmul": r["tokens_per_s"] * fl / torch_gemm if torch_gemm else None,
                      "peak_device_bytes": r["peak_device_bytes"]})
    for r in [r for r in torch_rows if r.get("seq_len") == T and r.get("side") == "torch" and "tokens_per_s" in r]:
        steps.append({"side": "torch", "attention": "sdpa", "seq_len": T, "tokens_per_s": r["tokens_per_s"],
                      "mfu_989": r["tokens_per_s"] * fl / 989e12,
                      "mfu_vs_torch_matmul": r["tokens_per_s"] * fl / torch_gemm if torch_gemm else None,
                      "peak_device_bytes": r.get("peak_device_bytes")})
s["step_1b"] = steps
s["flop_formula"] = "6 * matmul_params * tokens + 6 * n_layers * seq_len * d_model * tokens (causal attention; recompute not counted)"
json.dump(s, open(os.path.join(out, "bench_summary.json"), "w"), indent=1)
print(json.dumps(s, indent=1))
PY
say "done (exit $rc)"
exit $rc
