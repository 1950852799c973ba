#!/usr/bin/env bash
# tools/grow_layers.py (block expansion): a 2-layer checkpoint deepened to 4 layers computes the same
# function: the same first-step loss when training starts from either, and the same greedy ids.
# Also: the grown file's layers are the copies asked for (zero output projections, the rest equal
# to the copied layer), and a layer index out of range is refused. Skips (77) without the
# project's Python (h5py, numpy).
set -uo pipefail
src=${LCT_SOURCE_DIR:?} bin=${LCT_BIN:?}
py=$src/.venv/bin/python3
if ! "$py" -c "import h5py, numpy" 2>/dev/null; then
  echo "SKIP: .venv with h5py and numpy missing (make deps)"; exit 77
fi
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=1
work=$(pwd)/scratch/grow_layers
rm -rf "$work" && mkdir -p "$work" && cd "$work" || exit 1
"$bin/lcdata" text --tokenizer bytes --out tiny.h5 "$src/README.md" >/dev/null || { echo "FAIL: lcdata"; exit 1; }
cat >tiny.deck <<'DECK'
[run]
name = grow
out_dir = run2
[model]
vocab_size = 258
dim = 64
n_layers = 2
n_heads = 4
n_kv_heads = 2
[train]
seq_len = 128
micro_batch = 2
steps = 6
lr = 3e-3
warmup_steps = 1
log_every = 1
[data]
train = tiny.h5
[checkpoint]
every = 6
DECK
"$bin/lctrain" tiny.deck >train.log 2>&1 || { cat train.log; echo "FAIL: training the 2-layer model"; exit 1; }
ck=run2/checkpoints/step_00000006.h5
"$py" "$src/tools/grow_layers.py" "$ck" grown.h5 --after 0,1 || { echo "FAIL: grow_layers"; exit 1; }
fail=0
# One more step from each: the loss at step 1 is the starting weights' loss.
first_loss() { grep -o '^step *1/1 .*| loss [0-9.]*' "$1" | grep -o 'loss [0-9.]*'; }
"$bin/lctrain" tiny.deck --run.out_dir=a --train.steps=1 --model.init_from="$ck" >a.log 2>&1 || { cat a.log; exit 1; }
"$bin/lctrain" tiny.deck --run.out_dir=b --train.steps=1 --model.n_layers=4 --model.init_from=grown.h5 >b.log 2>&1 ||
  { cat b.log; exit 1; }
la=$(first_loss a.log) lb=$(first_loss b.log)
# The log names the weights it started from (trainer.cpp).
grep -q "^stage 1 starts from model.init_from = grown.h5$" b.log || { echo "FAIL: b.log does not name model.init_from"; fail=1; }
grep -q "^stage 1 starts from random weights (run.seed " train.log || { echo "FAIL: train.log does not say random weights"; fail=1; }
if [[ -z $la || $la != "$lb" ]]; then echo "FAIL: first-step loss: 2 layers '$la', grown '$lb'"; fail=1; fi
prompt=84,104,101,32,109,111,100,101,108,32
ga=$("$bin/lctrain" --generate tiny.deck --checkpoint "$ck" --prompt-ids $prompt --max-new 24 --ids 2>/dev/null | tail -1)
gb=$("$bin/lctrain" --generate tiny.deck --model.n_layers=4 --checkpoint grown.h5 --prompt-ids $prompt --max-new 24 --ids \
  2>/dev/null | tail -1)
if [[ -z $ga || $ga != "$gb" ]]; then echo "FAIL: greedy ids: 2 layers '$ga', grown '$gb'"; fail=1; fi
"$py" - "$ck" grown.h5 <<'PY' || fail=1
import sys, h5py, numpy as np
a, b = h5py.File(sys.argv[1])["model"], h5py.File(sys.argv[2])["model"]
src = {0: 0, 1: 0, 2: 1, 3: 1}  # --after 0,1: 0, copy of 0, 1, copy of 1
for j, i in src.items():
    for name in a:
        if not name.startswith(f"model.layers.{i}."):
            continue
        new = b[name.replace(f"layers.{i}.", f"layers.{j}.", 1)][()]
        zero = j % 2 == 1 and name.endswith(("o_proj.weight", "down_proj.weight"))
        assert np.array_equal(new, np.zeros_like(new) if zero else a[name][()]), (j, name)
assert not any(n.startswith("model.layers.4.") for n in b)
print("grown layers: copies of 0 and 1 with zero output projections")
PY
out=$("$py" "$src/tools/grow_layers.py" "$ck" bad.h5 --after 2 2>&1) && { echo "FAIL: --after 2 of 2 layers accepted"; fail=1; }
grep -q "layers of .* are 0..1" <<<"$out" || { echo "FAIL: --after 2: '$out'"; fail=1; }
[[ $fail == 0 ]] && echo "grow_layers: first-step $la and $(echo "$ga" | tr ',' '\n' | wc -l) greedy ids equal"
exit $fail
