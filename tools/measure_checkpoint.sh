#!/usr/bin/env bash
# Checkpoint write and read throughput (docs/checkpoint-format.md): a ~56M-parameter Llama (dim 512,
# 8 layers, vocab 32000; weights + AdamW moments = 3 x 224 MB in the file), saved after one step and
# loaded by a resumed run, at 1, 2 and 4 ranks with ZeRO-1 (each rank writes and reads its shard).
# usage: tools/measure_checkpoint.sh [OUTDIR]   (needs bin/lctrain; OUTDIR on the file system to measure)
# Its output, committed as docs/perf/<date>-checkpoint/measure_checkpoint.txt, makes the table of
# docs/checkpoint-format.md (tools/doc_blocks.py).
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-build/measure_checkpoint}
mkdir -p "$out"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=1
py=python3
[ -x .venv/bin/python3 ] && py=.venv/bin/python3  # numpy: the project's Python has it (make deps)
"$py" - "$out/tokens.bin" <<'PY'
import sys, numpy as np
n = 200000
h = np.zeros(256, dtype=np.int32); h[:3] = (20240520, 1, n)
open(sys.argv[1], "wb").write(h.tobytes() + np.random.default_rng(0).integers(0, 32000, n, dtype=np.uint16).tobytes())
PY
model="--model.vocab_size=32000 --model.dim=512 --model.n_layers=8 --model.n_heads=8 --model.n_kv_heads=4
       --model.ffn_dim=1408 --train.seq_len=64 --train.micro_batch=1 --train.grad_accum=4 --parallel.zero=1
       --data.train=$out/tokens.bin --checkpoint.keep_last=1"
echo "ranks | write s | write MB/s | read s | read MB/s (file size / wall time, collective)"
for np in 1 2 4; do
  dir=$out/np$np
  rm -rf "$dir"
  accum=$((4 / np))
  mpirun --oversubscribe --bind-to none -np $np bin/lctrain input/tiny.deck $model --train.grad_accum=$accum \
    --run.out_dir=$dir --train.steps=1 > "$dir.save.log" 2>&1
  mpirun --oversubscribe --bind-to none -np $np bin/lctrain input/tiny.deck $model --train.grad_accum=$accum \
    --run.out_dir=$dir --train.steps=2 > "$dir.load.log" 2>&1
  w=$(grep -m1 "^checkpoint " "$dir.save.log" | sed -E 's/.*: ([0-9.]+) MB in ([0-9.]+) s \(([0-9.]+) MB\/s.*/\2 \3/')
  r=$(grep -m1 "^loaded " "$dir.load.log" | sed -E 's/.* in ([0-9.]+) s on .* \(([0-9.]+) MB\/s.*/\1 \2/')
  echo "$np | $(echo $w | cut -d' ' -f1) | $(echo $w | cut -d' ' -f2) | $(echo $r | cut -d' ' -f1) | $(echo $r | cut -d' ' -f2)"
done
grep -m1 "^checkpoint " "$out/np1.save.log" | sed -E 's/.*: ([0-9.]+) MB in .*/tensor data written: \1 MB/'
ls -l $out/np1/checkpoints/*.h5 | awk '{print "file size:", $5 / 1e6, "MB"}'
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg); $(date -u +%F)"
