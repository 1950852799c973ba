#!/usr/bin/env bash
# make bench: op benchmarks, whole-step benchmarks of lctrain beside PyTorch, context-parallel
# scaling and the longest trainable context. Method and results: docs/PERFORMANCE.md.
#
# Environment (all optional):
#   BENCH_OUT=bench_out          results go to $BENCH_OUT/<date-time>/ (summary.md, raw JSON)
#   BENCH_THREADS="2 1"          OMP / torch thread counts of the single-rank runs
#   BENCH_CONFIGS="tiny llama50m_1k llama50m_8k"   decks under bench/configs/
#   BENCH_STEPS=5 BENCH_WARMUP=1 timed steps (median reported) and warm-up steps per run
#   BENCH_OPS=1 BENCH_TORCH=1 BENCH_SCALING=1 BENCH_LONGEST=1   0 skips that part
#   BENCH_BUDGET_GIB=16          memory budget (all ranks) of the longest-context estimate
#   BENCH_QUICK=1                tiny + llama50m_1k, 2 threads, no scaling / longest runs
#   BENCH_WAIT_IDLE=900          before each timed run, wait up to this many seconds for the CPUs to
#                                be >= 90% idle (other jobs on a shared machine skew every figure)
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-bin}
OUT_BASE=${BENCH_OUT:-bench_out}
THREADS=${BENCH_THREADS:-"2 1"}
CONFIGS=${BENCH_CONFIGS:-"tiny llama50m_1k llama50m_8k"}
STEPS=${BENCH_STEPS:-5}
WARMUP=${BENCH_WARMUP:-1}
DO_OPS=${BENCH_OPS:-1}
DO_TORCH=${BENCH_TORCH:-1}
DO_SCALING=${BENCH_SCALING:-1}
DO_LONGEST=${BENCH_LONGEST:-1}
BUDGET_GIB=${BENCH_BUDGET_GIB:-16}
WAIT_IDLE=${BENCH_WAIT_IDLE:-900}
if [ "${BENCH_QUICK:-0}" = 1 ]; then
  THREADS=2 CONFIGS="tiny llama50m_1k" DO_SCALING=0 DO_LONGEST=0
fi
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1

die() { echo "run_bench.sh: $*" >&2; exit 1; }

# Percent of CPU time idle over the next $1 seconds (all CPUs, from /proc/stat).
idle_pct() {
  local c u n s i w q sq st rest t1 i1 t2 i2
  read -r c u n s i w q sq st rest < /proc/stat
  t1=$((u + n + s + i + w + q + sq + st)) i1=$((i + w))
  sleep "$1"
  read -r c u n s i w q sq st rest < /proc/stat
  t2=$((u + n + s + i + w + q + sq + st)) i2=$((i + w))
  echo $((100 * (i2 - i1) / (t2 - t1 > 0 ? t2 - t1 : 1)))
}
# Waits until the machine is >= 90% idle (3 s samples), at most WAIT_IDLE seconds.
wait_idle() {
  local waited=0 idle
  while :; do
    idle=$(idle_pct 3)
    [ "$idle" -ge 90 ] && return 0
    [ "$waited" -ge "$WAIT_IDLE" ] && { echo "bench: still ${idle}% idle after ${waited} s; measuring anyway"; return 0; }
    [ "$waited" = 0 ] && echo "bench: waiting for the CPUs to be idle (now ${idle}% idle)"
    sleep 12; waited=$((waited + 15))
  done
}
load1() { cut -d' ' -f1 /proc/loadavg; }
for exe in lctrain lcdata; do
  [ -x "$BIN/$exe" ] || die "$BIN/$exe not found: build first (make bench does), or set BIN=<build>/bin"
done
command -v python3 >/dev/null || die "python3 is needed for the data generator and the tables"

OUT="$OUT_BASE/$(date +%Y%m%d-%H%M%S)"
mkdir -p "$OUT/runs" "$OUT/data"
echo "bench: results in $OUT"

HAVE_TORCH=0
if [ "$DO_TORCH" = 1 ] && python3 -c "import torch" 2>/dev/null; then HAVE_TORCH=1; fi
[ "$HAVE_TORCH" = 1 ] || echo "bench: torch not importable (or BENCH_TORCH=0): the PyTorch columns stay empty"

{
  echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "commit: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet 2>/dev/null || echo ' (+ local changes)')"
  lscpu | grep -E '^(Model name|CPU\(s\)|Thread|Core|Socket|L1d|L2|L3|Flags)' | sed 's/^Flags:.*\(avx512f\).*/Flags: ... avx512f ... (AVX-512)/'
  echo "memory: $(free -g | awk '/^Mem:/ {print $2 " GiB"}')"
  echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
  [ "$HAVE_TORCH" = 1 ] && python3 -c "import torch; print('torch', torch.__version__, 'cpu capability', torch.backends.cpu.get_cpu_capability())"
} > "$OUT/machine.txt"
cat "$OUT/machine.txt"

# ---- data: random tokens (throughput does not depend on the values) -----------------------------
head -c 4000000 /dev/urandom > "$OUT/data/random.txt"
"$BIN/lcdata" text --tokenizer bytes --out "$OUT/data/bytes.h5" "$OUT/data/random.txt" > /dev/null
python3 bench/make_tokens.py "$OUT/data/v32k.bin" --vocab 32000 --tokens 2000000
rm -f "$OUT/data/random.txt"
data_for() { case "$1" in llama50m*) echo "$OUT/data/v32k.bin" ;; *) echo "$OUT/data/bytes.h5" ;; esac; }

# ---- op level ------------------------------------------------------------------------------------
if [ "$DO_OPS" = 1 ]; then
  if [ -x "$BIN/bench_ops" ]; then
    for t in $THREADS; do
      echo "bench: op benchmarks, $t thread(s)"
      wait_idle
      OMP_NUM_THREADS=$t "$BIN/bench_ops" --benchmark_repetitions=3 --benchmark_report_aggregates_only=true \
        --benchmark_out="$OUT/ops_t$t.json" --benchmark_out_format=json
      if [ "$HAVE_TORCH" = 1 ]; then
        for bt in "4 1024" "1 8192"; do
          set -- $bt
          wait_idle
          OMP_NUM_THREADS=$t python3 tools/bench_torch.py attention --batch "$1" --seq "$2" --heads 8 --kv-heads 4 \
            --head-dim 64 --threads "$t" --json "$OUT/torch_ops.jsonl"
        done
        OMP_NUM_THREADS=$t python3 tools/bench_torch.py gemm --n 2048 --threads "$t" --json "$OUT/torch_ops.jsonl"
      fi
    done
  else
    echo "bench: $BIN/bench_ops not built (Google Benchmark not found): op benchmarks skipped"
  fi
fi

# ---- whole step ----------------------------------------------------------------------------------
run_lctrain() {  # name ranks threads deck [overrides...]
  local name=$1 ranks=$2 threads=$3 deck=$4; shift 4
  local dir="$OUT/runs/${name}_t${threads}"
  rm -rf "$dir"
  local cmd=("$BIN/lctrain" "$deck" --run.out_dir="$dir" --data.train="$(data_for "$(basename "$deck" .deck)")"
             --train.steps=$((STEPS + WARMUP)) --checkpoint.resume=none "$@")
  if [ "$ranks" -gt 1 ]; then cmd=(mpirun -np "$ranks" --bind-to none "${cmd[@]}"); fi
  echo "bench: OMP_NUM_THREADS=$threads ${cmd[*]}" | tee -a "$OUT/commands.txt"
  wait_idle
  local l0; l0=$(load1)
  if ! OMP_NUM_THREADS=$threads "${cmd[@]}" > "$dir.log" 2>&1; then
    tail -5 "$dir.log"; echo "bench: $name failed (log: $dir.log)"; return 1
  fi
  python3 bench/summarize.py record "$dir" --name "$name" --threads "$threads" --warmup "$WARMUP" \
    --load "$l0" "$(load1)" \
    --ranks "$ranks" --cp "$(grep -m1 '^parallel.cp' "$dir/effective.deck" | awk '{print $3}')" --out "$OUT/steps.jsonl"
  rm -rf "$dir/checkpoints"  # the stage-end checkpoint is not part of the benchmark
}

for cfg in $CONFIGS; do
  deck="bench/configs/$cfg.deck"
  [ -f "$deck" ] || die "no deck $deck"
  for t in $THREADS; do
    run_lctrain "$cfg" 1 "$t" "$deck" || true
    if [ "$HAVE_TORCH" = 1 ]; then
      echo "bench: OMP_NUM_THREADS=$t python3 tools/bench_torch.py step $deck --threads $t --steps $STEPS --warmup $WARMUP" \
        | tee -a "$OUT/commands.txt"
      wait_idle
      OMP_NUM_THREADS=$t python3 tools/bench_torch.py step "$deck" --threads "$t" --steps "$STEPS" --warmup "$WARMUP" \
        --json "$OUT/torch_steps.jsonl" || echo "bench: torch $cfg failed"
    fi
  done
done

# ---- context parallelism: cp = 1, 2, 4 at a fixed 2048 tokens per rank, one thread per rank -------
if [ "$DO_SCALING" = 1 ]; then
  for cp in 1 2 4; do
    run_lctrain "cp${cp}_seq$((2048 * cp))" "$cp" 1 bench/configs/small_cp.deck --parallel.cp="$cp" \
      --train.seq_len=$((2048 * cp)) || true
  done
  for cp in 1 2 4; do
    run_lctrain "cp${cp}_seq$((2048 * cp))_recompute" "$cp" 1 bench/configs/small_cp.deck --parallel.cp="$cp" \
      --train.seq_len=$((2048 * cp)) --train.recompute=layer || true
  done
fi

# ---- longest trainable context: cp = 4, recompute, memory per rank fitted over two lengths -------
if [ "$DO_LONGEST" = 1 ]; then
  STEPS_SAVE=$STEPS WARMUP_SAVE=$WARMUP
  STEPS=1 WARMUP=0
  for seq in 16384 32768; do
    run_lctrain "cp4_seq${seq}_longest" 4 1 bench/configs/small_cp.deck --parallel.cp=4 --train.seq_len=$seq \
      --train.recompute=layer --parallel.zero=1 || true
  done
  STEPS=$STEPS_SAVE WARMUP=$WARMUP_SAVE
  python3 - "$OUT" "$BUDGET_GIB" <<'PY' > "$OUT/longest.txt"
import json, sys
out, budget = sys.argv[1], float(sys.argv[2])
rows = [json.loads(l) for l in open(f"{out}/steps.jsonl") if "_longest" in l]
if len(rows) < 2:
    print("not measured (a run failed)"); sys.exit()
pts = sorted((r["seq_len"], max(r["peak_rss_bytes_per_rank"])) for r in rows)
(t0, m0), (t1, m1) = pts[0], pts[-1]
slope = (m1 - m0) / (t1 - t0)            # bytes per token of the full sequence, per rank
base = m0 - slope * t0
per_rank_budget = budget * 2**30 / 4
tmax = int((per_rank_budget - base) / slope)
tmax_pow2 = 1 << (tmax.bit_length() - 1)
step_s = {r["seq_len"]: r["step_seconds_median"] for r in rows}
print(f"Model bench/configs/small_cp.deck, cp = 4 (zigzag), train.recompute = layer, parallel.zero = 1, "
      f"1 thread per rank, budget {budget:g} GiB for the 4 ranks ({per_rank_budget / 2**30:g} GiB each).")
print(f"Measured peak RSS per rank: {m0 / 2**30:.3f} GiB at seq {t0}, {m1 / 2**30:.3f} GiB at seq {t1} "
      f"(one step each: {step_s[t0]:.1f} s, {step_s[t1]:.1f} s).")
print(f"Linear fit: {base / 2**20:.0f} MiB + {slope / 1024:.2f} KiB per token of the sequence, per rank.")
print(f"Longest context within the budget: {tmax} tokens (largest power of two: {tmax_pow2}), "
      f"extrapolated from the two measured lengths (memory is linear in the length: no T x T buffer).")
PY
  cat "$OUT/longest.txt"
fi

python3 bench/summarize.py report "$OUT"
