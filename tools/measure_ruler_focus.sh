#!/usr/bin/env bash
# input/ruler_tiny_focus.deck after tools/measure_ruler.sh (docs/longctx.md, 2b): fresh training
# documents for the weighted-up tasks (seed 3), 5000 more steps from ruler_tiny's final weights, then
# tools/measure_ruler.sh's evaluation, control, summary and heatmaps on the result.
# usage: tools/measure_ruler_focus.sh [OUT]   (default out/ruler_tiny_focus/results). Env: BIN, NP as
#        tools/measure_ruler.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-build/bin}
NP=${NP:-1}
DECK=input/ruler_tiny_focus.deck
OUT=${1:-out/ruler_tiny_focus/results}
FOCUS=out/ruler_data/focus
[[ -f out/ruler_tiny/checkpoints/step_00004600.h5 ]] ||
  { echo "measure_ruler_focus: out/ruler_tiny/checkpoints/step_00004600.h5 not found; run tools/measure_ruler.sh first" >&2; exit 2; }
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-$(( $(nproc) / NP > 0 ? $(nproc) / NP : 1 ))}
mkdir -p "$FOCUS" "$OUT"
for t in niah_multikey_1 niah_multikey_2 niah_multikey_3 niah_multivalue niah_multiquery fwe cwe; do
  extra=()
  [[ $t == cwe ]] && extra=(--cwe-freq 3,1)
  "$BIN/lcdata" ruler --task "$t" --unit 1024 --docs 5000 --seed 3 "${extra[@]}" --out "$FOCUS/$t.h5" | cut -c1-160
done
rm -rf out/ruler_tiny_focus/checkpoints
T0=$(date +%s)
mpirun -np "$NP" --oversubscribe --bind-to none "$BIN/lctrain" "$DECK" | tee "$OUT/train.log" | grep -E '^(step +[0-9]*000/|checkpoint)' || true
TRAINED_S=$(( $(date +%s) - T0 )) TRAINED_THREADS=$OMP_NUM_THREADS BIN=$BIN NP=$NP DECK=$DECK tools/measure_ruler.sh "$OUT"
