#!/usr/bin/env bash
# RULER-style acceptance of issue 20 (docs/longctx.md, section 2b): one small multi-task model
# (input/ruler_tiny.deck) trained on a blend of the eleven tasks' training data (lcdata ruler),
# then scored by generation at its trained length (1024) and at 1.5x / 2x, with the control (no
# needle / shuffled answers). Writes into OUT (default out/ruler_tiny/results):
#   run.log               this script's output, with the time of each phase
#   ruler_<task>.csv      scores per length x depth; ruler_<task>_control.csv the control's
#   ruler_<task>.jsonl    every prompt's generated text, references, hits and score (and _control)
#   summary.json          per task: score per length, control per length, effective length
#   ruler_heatmaps.png    all tasks' heatmaps; ruler_controls.png the controls'
# usage: tools/measure_ruler.sh [OUT]     Env: BIN (default build/bin), DECK (default
#        input/ruler_tiny.deck), NP (ranks, default 1),
#        UNITS (training units per RULER task; default: 5% over what stages 2..N read of it, from
#        their blend weights x train.steps x train.micro_batch), COPY_DOCS (the copy practice units at
#        the stages' length, the same default), COPY_GAP (that copy practice's --max-gap in tokens,
#        default 900); stage 1's copy practice has train.steps x train.micro_batch units.
#        RECALL_GAP (recall_noise_<unit>.h5's --max-gap, default 60; recall files always get the
#        default count). Stages 2..N train on blends at one length (stage 2's train.seq_len); a file
#        several stages name is made once. The data go where the deck's data.train names them, made
#        with the deck's data.tokenizer.
#        PYTHON (default: the project's .venv, else python3), TRAINED_S (seconds: skip the data and the
#        training, evaluate the deck's trained run as it stands and record TRAINED_S as its training
#        time; tools/measure_ruler_focus.sh uses it after its own training), TRAINED_THREADS (the
#        OpenMP threads per rank of that training, recorded in summary.json; default OMP_NUM_THREADS).
set -euo pipefail
cd "$(dirname "$0")/.."

BIN=${BIN:-build/bin}
DECK=${DECK:-input/ruler_tiny.deck}
NP=${NP:-1}
COPY_GAP=${COPY_GAP:-900}
RECALL_GAP=${RECALL_GAP:-60}
PYTHON=${PYTHON:-$( [[ -x .venv/bin/python3 ]] && echo .venv/bin/python3 || echo python3 )}
OUT=${1:-out/ruler_tiny/results}
for b in "$BIN/lctrain" "$BIN/lcdata"; do
  [[ -x $b ]] || { echo "measure_ruler: $b not found; build first" >&2; exit 2; }
done
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-$(( $(nproc) / NP > 0 ? $(nproc) / NP : 1 ))}
MPIRUN="mpirun -np $NP --oversubscribe --bind-to none"
source tools/ruler_data.sh  # key, ruler_data_file
RUN=$(key run.out_dir)
UNIT1=$(key stage1.train.seq_len)
UNIT=$(key stage2.train.seq_len)
TOKENIZER=$(key data.tokenizer)
TOKENIZER=${TOKENIZER:-bytes}
CWE_CW=$(key eval.cwe_freq_cw) CWE_UCW=$(key eval.cwe_freq_ucw)
TASKS=$(key eval.tasks | tr ',' ' ')
mkdir -p "$OUT"
exec > >(tee "$OUT/run.log") 2>&1
T0=$(date +%s)
stamp() { echo "== [$(( $(date +%s) - T0 )) s] $*"; }
echo "measure_ruler: $DECK, $NP rank(s) x $OMP_NUM_THREADS thread(s), $(nproc) cores, $(date -u +%Y-%m-%dT%H:%MZ)"
echo "commit $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- src tools input || echo ' (with local changes)')"

if [[ -n ${TRAINED_S:-} ]]; then
  TRAIN_S=$TRAINED_S
  stamp "evaluating the trained run $RUN (trained in $TRAIN_S s, elsewhere)"
else
  STAGE1_DATA=$(key stage1.data.train)
  STAGE1_UNITS=$(( $(key stage1.train.steps) * $(key stage1.train.micro_batch) ))
  stamp "data: lcdata ruler with $TOKENIZER, units of $UNIT tokens (seed 1; the evaluation's seed is 777), copy practice"
  rm -rf "$RUN"
  mkdir -p "$(dirname "$STAGE1_DATA")"
  "$BIN/lcdata" ruler --task copy --unit "$UNIT1" --docs "$STAGE1_UNITS" --seed 1 --tokenizer "$TOKENIZER" \
    --out "$STAGE1_DATA" | cut -c1-160
  # The blends of stage 2 and later: "W FILE, W FILE, ...". Each file gets 5% over what the stages
  # read of it (blend weight / total weight x train.steps x train.micro_batch, summed over stages).
  NSTAGES=$(grep -c '^\[stage[0-9]*\]' "$DECK")
  declare -A NEED=()
  for (( k = 2; k <= NSTAGES; k++ )); do
    read_k=$(( $(key stage$k.train.steps) * $(key stage$k.train.micro_batch) ))
    blend=$(key stage$k.data.train)
    [[ -z $blend ]] && continue  # a stage that keeps the previous data
    total_w=$(echo "$blend" | tr ',' '\n' | awk 'NF == 2 {w += $1} NF == 1 {w += 1} END {print w}')
    while read -r w f; do
      [[ -z ${f:-} ]] && { f=$w; w=1; }
      u=$(awk -v r="$read_k" -v w="$w" -v t="$total_w" 'BEGIN {u = 1.05 * r * w / t; print (u == int(u)) ? u : int(u) + 1}')
      NEED[$f]=$(( ${NEED[$f]:-0} + u ))
    done < <(echo "$blend" | tr ',' '\n')
  done
  # UNITS and COPY_DOCS override the task and copy practice counts (recall files keep theirs).
  for f in $(printf '%s\n' "${!NEED[@]}" | sort); do
    case $(basename "$f") in
      copy_*) units=${COPY_DOCS:-${NEED[$f]}} ;;
      recall_*) units=${NEED[$f]} ;;
      *) units=${UNITS:-${NEED[$f]}} ;;
    esac
    ruler_data_file "$f" "$units" 1 3
  done

  stamp "train: $DECK"
  T_TRAIN=$(date +%s)
  $MPIRUN "$BIN/lctrain" "$DECK" | grep -E '^(stage|step|checkpoint|layout|data)' || true
  [[ -f $RUN/checkpoints/latest ]] || { echo "measure_ruler: training wrote no checkpoint" >&2; exit 1; }
  TRAIN_S=$(( $(date +%s) - T_TRAIN ))
  stamp "trained in $TRAIN_S s"
fi

stamp "eval: the tasks by generation"
$MPIRUN "$BIN/lctrain" --eval "$DECK" | grep -vE '^\s+(niah|vt|cwe|fwe)\S* length [0-9]+:' || true
stamp "eval: the control (no needle; cwe and fwe scored against another sample's answers)"
$MPIRUN "$BIN/lctrain" --eval "$DECK" --eval.no_needle=true | grep -vE '^\s+(niah|vt|cwe|fwe)\S* length [0-9]+:' || true
LAST=$(grep -c '^\[stage[0-9]*\]' "$DECK" || true)  # the evaluated stage: the last (its CSVs carry _stageN with several)
SUFFIX=$( (( LAST > 1 )) && echo "_stage$LAST" || true)
for t in $TASKS; do
  cp "$RUN/ruler_$t$SUFFIX.csv" "$OUT/ruler_$t.csv"
  cp "$RUN/ruler_${t}_control$SUFFIX.csv" "$OUT/ruler_${t}_control.csv"
  cp "$RUN/ruler_$t$SUFFIX.jsonl" "$OUT/ruler_$t.jsonl"
  cp "$RUN/ruler_${t}_control$SUFFIX.jsonl" "$OUT/ruler_${t}_control.jsonl"
done

stamp "summary"
"$PYTHON" - "$OUT" "$DECK" "$TRAIN_S" "$NP" "${TRAINED_THREADS:-$OMP_NUM_THREADS}" $TASKS <<'EOF'
import csv, json, sys
out, deck, train_s, np_, threads, *tasks = sys.argv[1:]
THRESHOLD = 0.856  # RULER's (Llama-2-7B's mean at 4K)
def means(path):
    acc = {}
    for r in csv.DictReader(open(path)):
        a = acc.setdefault(int(r["length"]), [0, 0.0])
        a[0] += int(r["samples"]); a[1] += float(r["score"]) * int(r["samples"])
    return {L: s / n for L, (n, s) in sorted(acc.items())}
summary = {"deck": deck, "train_seconds": int(train_s), "ranks": int(np_), "threads_per_rank": int(threads),
           "threshold": THRESHOLD, "tasks": {}}
print(f"{'task':17} {'trained length':>15} {'control':>8} {'effective length':>17}   all lengths")
for t in tasks:
    m, c = means(f"{out}/ruler_{t}.csv"), means(f"{out}/ruler_{t}_control.csv")
    lengths = sorted(m)
    eff = 0
    for L in lengths:
        if m[L] < THRESHOLD: break
        eff = L
    L0 = lengths[0]
    summary["tasks"][t] = {"trained_length": L0, "score_pct": {str(L): round(100 * v, 2) for L, v in m.items()},
                           "control_pct": {str(L): round(100 * v, 2) for L, v in c.items()}, "effective_length": eff,
                           "samples_per_length": sum(int(r["samples"]) for r in csv.DictReader(open(f"{out}/ruler_{t}.csv")) if int(r["length"]) == L0)}
    print(f"{t:17} {100 * m[L0]:14.1f}% {100 * max(c.values()):7.1f}% {eff if eff else 'none':>17}   " +
          " / ".join(f"{100 * m[L]:.0f}%" for L in lengths))
ok = all(s["score_pct"][str(s["trained_length"])] >= 90 and max(s["control_pct"].values()) <= 5
         for s in summary["tasks"].values())
summary["acceptance_met"] = ok
print(f"acceptance (>= 90% at the trained length, control <= 5%, every task): {'met' if ok else 'NOT met'}")
with open(f"{out}/summary.json", "w") as f:
    json.dump(summary, f, indent=1)
    f.write("\n")
EOF
CSVS=() CTRL=() TITLES=""
for t in $TASKS; do CSVS+=("$OUT/ruler_$t.csv"); CTRL+=("$OUT/ruler_${t}_control.csv"); TITLES+="${TITLES:+,}$t"; done
"$PYTHON" tools/plot_niah.py "${CSVS[@]}" --metric score --out "$OUT/ruler_heatmaps.png" --titles "$TITLES" --columns 4
"$PYTHON" tools/plot_niah.py "${CTRL[@]}" --metric score --out "$OUT/ruler_controls.png" --titles "$TITLES" --columns 4
stamp "done: $OUT"
