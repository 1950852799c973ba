#!/usr/bin/env bash
# ZeRO and offload measurements for docs/PERFORMANCE.md ([zero3] acceptance), on the cpu backend:
# an 8-layer model (dim 256, 8/4 heads, ffn 768, bytes vocabulary), seq 2048, recompute = layer,
# cp 2 x dp 2 (N = 4 ranks), 6 steps each at zero 0, 1, 2, 3 and zero 3 with each offload.
# Per run: the device and host bytes per category at their peak (metrics.jsonl, every rank), the
# same deck's --plan figures, the step times. Writes OUTDIR/zero.json (docs/perf/2026-12-04-zero3/
# holds the committed one that tools/doc_blocks.py turns into tables) and asserts the claims:
#   - weights + gradients + optimizer at zero 3 = (that of zero 0) / N + the gathered unit buffers
#     (weights and unit gradients of the embedding, head and two layers), within 10%
#   - with optimizer offload the device optimizer bytes are 0
#   - with activation offload the device layer-input bytes are at most two layers' inputs
#   - --plan's device bytes per category within 10% of the measured (every category, every run)
# Exit 1 when one fails. usage: tools/measure_zero.sh [OUTDIR]   (needs bin/lctrain, bin/lcdata)
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-build/measure_zero}
mkdir -p "$out"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
py=python3
[ -x .venv/bin/python3 ] && py=.venv/bin/python3
corpus=$out/corpus.h5
[ -f "$corpus" ] || bin/lcdata text --tokenizer bytes --out "$corpus" src/*/*.cpp src/*/*.h docs/*.md >/dev/null
model="--model.vocab_size=258 --model.dim=256 --model.n_layers=8 --model.n_heads=8 --model.n_kv_heads=4
       --model.ffn_dim=768 --train.seq_len=2048 --train.micro_batch=1 --train.grad_accum=1 --train.steps=6
       --train.lr=1e-4 --train.recompute=layer --parallel.cp=2 --data.train=$corpus --checkpoint.final=false
       --train.log_every=1 --run.hang_timeout=3600"
runs="z0:--parallel.zero=0 z1:--parallel.zero=1 z2:--parallel.zero=2 z3:--parallel.zero=3
      z3_offload_optimizer:--parallel.zero=3,--train.offload=optimizer
      z3_offload_activations:--parallel.zero=3,--train.offload=activations
      z3_offload_both:--parallel.zero=3,--train.offload=both"
for r in $runs; do
  [ -n "${MEASURE_ZERO_ANALYSE_ONLY:-}" ] && break  # re-analyse the runs already in OUTDIR
  name=${r%%:*}
  opts=${r#*:}
  opts=${opts//,/ }
  rm -rf "$out/$name"
  echo "== $name: mpirun -np 4 bin/lctrain input/tiny.deck <model> $opts"
  OMP_NUM_THREADS=1 mpirun --oversubscribe --bind-to none -np 4 bin/lctrain input/tiny.deck $model $opts \
    --run.out_dir="$out/$name" >"$out/$name.log" 2>&1 || { echo "$name failed: see $out/$name.log"; exit 1; }
  bin/lctrain --plan input/tiny.deck $model $opts --run.out_dir="$out/$name/plan" --world-size 4 --ranks-per-node 4 \
    >"$out/$name.plan.txt"
done
"$py" - "$out" <<'PY'
import json, statistics, subprocess, sys
out = sys.argv[1]
names = ["z0", "z1", "z2", "z3", "z3_offload_optimizer", "z3_offload_activations", "z3_offload_both"]
cats = ["weights", "gradients", "optimizer", "layer_inputs", "activations", "comm_buffers"]
N, act, acc = 4, 4, 4
runs, ok = {}, True
for n in names:
    rows = [json.loads(l) for l in open(f"{out}/{n}/metrics.jsonl") if '"loss"' in l]
    last, plan = rows[-1], json.load(open(f"{out}/{n}/plan/plan.json"))["stages"][0]
    runs[n] = {"device": {c: last["device_peak_bytes"][c] for c in cats + ["total"]},
               "host": {c: last["host_peak_bytes"][c] for c in cats + ["total"]},
               "plan_device": plan["memory_bytes"], "plan_host": plan["host_memory_bytes"],
               "step_seconds": [r["step_seconds"] for r in rows], "loss": [r["loss"] for r in rows]}
def wgo(r, rank=0):
    return sum(r["device"][c][rank] for c in ("weights", "gradients", "optimizer"))
# The unit sizes of the ZeRO layout (ParamTable units padded to N): embedding, a layer, head.
V, C, F, L = 384, 256, 768, 8  # vocabulary padded to 128 rows
pad = lambda x: (x + N - 1) // N * N
E, LY, H = pad(V * C), pad(2 * C + C * C + 2 * 128 * C + C * C + 3 * F * C), pad(C + V * C)
gathered = (E + H + 2 * LY) * (act + acc)
claims = []
z0, z3 = wgo(runs["z0"]), wgo(runs["z3"])
formula = z0 / N + gathered
claims.append(("zero 3 W+G+O = zero 0 / N + gathered unit buffers, within 10%", abs(z3 / formula - 1) <= 0.10,
               f"measured {z3} B, formula {z0} / {N} + {gathered} = {formula:.0f} B, ratio {z3 / formula:.4f}"))
for n in ("z3_offload_optimizer", "z3_offload_both"):
    d = runs[n]["device"]["optimizer"]
    claims.append((f"{n}: device optimizer bytes 0", all(b == 0 for b in d), f"device optimizer {d}"))
inputs = 2048 // 2 * C * act  # one layer input [Ns, C] on a cp 2 rank
for n in ("z3_offload_activations", "z3_offload_both"):
    d = runs[n]["device"]["layer_inputs"]
    claims.append((f"{n}: device layer inputs <= two layers' inputs", all(b <= 2 * inputs for b in d),
                   f"device layer inputs {d}, two inputs {2 * inputs} B, without offload {runs['z3']['device']['layer_inputs'][0]} B"))
worst, where, plan_ok = 0.0, "", True
for n in names:
    for c in cats:
        for rank in range(N):
            m, p = runs[n]["device"][c][rank], runs[n]["plan_device"][c]
            dev = 0.0 if m == p else (abs(p / m - 1) if m else float("inf"))
            if dev > worst:
                worst, where = dev, f"{n} {c} rank {rank}: plan {p}, measured {m}"
            plan_ok = plan_ok and dev <= 0.10
claims.append(("--plan within 10% of the measured device bytes in every category, rank and run", plan_ok,
               f"largest relative difference {worst:.2e}" + (f" ({where})" if where else "")))
med = lambda n: statistics.median(runs[n]["step_seconds"][1:])
timing = {n: {"median_step_s": med(n), "steps": runs[n]["step_seconds"]} for n in names}
commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
json.dump({"commit": commit, "N": N, "model": "8 layers, dim 256, 8/4 heads, ffn 768, vocabulary 258 (384 rows), "
           "seq 2048, cp 2 x dp 2, recompute = layer, cpu backend (fp32)",
           "units": {"embedding": E, "layer": LY, "head": H}, "gathered_bytes": gathered, "layer_input_bytes": inputs,
           "runs": runs, "timing": timing, "claims": [{"claim": c, "ok": o, "detail": d} for c, o, d in claims]},
          open(f"{out}/zero.json", "w"), indent=1)
for c, o, d in claims:
    print(("ok    " if o else "FAIL  ") + c + ": " + d)
    ok = ok and o
print("step time (median of steps 2-6): " + ", ".join(f"{n} {timing[n]['median_step_s']:.3f} s" for n in names))
sys.exit(0 if ok else 1)
PY
