# Sourced by tools/measure_ruler.sh and tools/measure_ruler_focus.sh: a key of the deck, and one
# training data file of a RULER blend made by its name.

# key SECTION.KEY: its value in $DECK (comments stripped; the deck's data files need not exist yet,
# so no lctrain --dry-run).
key() { awk -v want="$1" '/^\[/ {sec = substr($0, 2, index($0, "]") - 2); next}
  { sub(/#.*/, ""); if (split($0, kv, "=") >= 2) { k = kv[1]; v = substr($0, index($0, "=") + 1);
    gsub(/[ \t]/, "", k); gsub(/^[ \t]+|[ \t]+$/, "", v); if (sec "." k == want) print v } }' "$DECK"; }

# ruler_data_file FILE UNITS TASK_SEED RECALL_SEED: FILE's name says what it holds: copy_<unit>.h5
# copy practice (--max-gap COPY_GAP, seed 2), recall_<unit>.h5 / recall_noise_<unit>.h5 recall
# practice (--max-gap 0 / RECALL_GAP, seed RECALL_SEED + the gap), <task>.h5 a RULER task's data
# (seed TASK_SEED; cwe at the deck's eval.cwe_freq_cw / _ucw when set). Uses BIN, UNIT, TOKENIZER,
# COPY_GAP, RECALL_GAP, CWE_CW, CWE_UCW.
ruler_data_file() {
  local f=$1 units=$2 task_seed=$3 recall_seed=$4 t gap extra=()
  t=$(basename "$f" .h5)
  mkdir -p "$(dirname "$f")"
  case $t in
    copy_*)
      "$BIN/lcdata" ruler --task copy --unit "$UNIT" --max-gap "$COPY_GAP" --docs "$units" --seed 2 \
        --tokenizer "$TOKENIZER" --out "$f" | cut -c1-160 ;;
    recall_*)
      gap=0; [[ $t == recall_noise_* ]] && gap=$RECALL_GAP
      "$BIN/lcdata" ruler --task recall --unit "$UNIT" --max-gap "$gap" --docs "$units" --seed $(( recall_seed + gap )) \
        --tokenizer "$TOKENIZER" --out "$f" | cut -c1-160 ;;
    *)
      [[ $t == cwe && -n $CWE_CW ]] && extra=(--cwe-freq "$CWE_CW,$CWE_UCW")
      "$BIN/lcdata" ruler --task "$t" --unit "$UNIT" --docs "$units" --seed "$task_seed" --tokenizer "$TOKENIZER" \
        "${extra[@]}" --out "$f" | cut -c1-160 ;;
  esac
}
