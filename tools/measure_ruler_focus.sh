#!/usr/bin/env bash
# A focus deck after tools/measure_ruler.sh (docs/longctx.md, 2b): more steps from a trained run's
# final weights (the deck's model.init_from) on a blend that weights up the weak tasks. The deck's
# data files under a focus/ folder are made fresh here (tasks: seed 3, where measure_ruler.sh uses 1;
# recall practice: seed 1003 + gap, where it uses 3 + gap: documents the first run did not see),
# the others are the first run's; then tools/measure_ruler.sh's evaluation, control, summary and
# heatmaps on the result.
# usage: tools/measure_ruler_focus.sh [OUT]   (default <run.out_dir>/results). Env: BIN, NP as
#        tools/measure_ruler.sh; DECK (default input/ruler_tiny_focus.deck); FOCUS_UNITS (units per
#        focus file, default 5000); RECALL_GAP (recall_noise_*.h5's --max-gap, default 60).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-build/bin}
NP=${NP:-1}
DECK=${DECK:-input/ruler_tiny_focus.deck}
FOCUS_UNITS=${FOCUS_UNITS:-5000}
RECALL_GAP=${RECALL_GAP:-60}
source tools/ruler_data.sh  # key, ruler_data_file
RUN=$(key run.out_dir)
OUT=${1:-$RUN/results}
INIT=$(key model.init_from)
UNIT=$(key train.seq_len)
TOKENIZER=$(key data.tokenizer)
TOKENIZER=${TOKENIZER:-bytes}
CWE_CW=$(key eval.cwe_freq_cw) CWE_UCW=$(key eval.cwe_freq_ucw)
[[ -f $INIT ]] || { echo "measure_ruler_focus: $INIT (model.init_from) not found; run tools/measure_ruler.sh first" >&2; exit 2; }
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-$(( $(nproc) / NP > 0 ? $(nproc) / NP : 1 ))}
mkdir -p "$OUT"
COPY_GAP=${COPY_GAP:-900}  # copy practice under focus/ (none in the shipped focus decks)
for f in $(key data.train | tr ',' '\n' | awk '{print $NF}' | grep '/focus/'); do
  ruler_data_file "$f" "$FOCUS_UNITS" 3 1003
done
rm -rf "$RUN/checkpoints"
T0=$(date +%s)
mpirun -np "$NP" --oversubscribe --bind-to none "$BIN/lctrain" "$DECK" | tee "$OUT/train.log" | grep -E '^(step +[0-9]*000/|checkpoint)' || true
TRAINED_S=$(( $(date +%s) - T0 )) TRAINED_THREADS=$OMP_NUM_THREADS BIN=$BIN NP=$NP DECK=$DECK tools/measure_ruler.sh "$OUT"
