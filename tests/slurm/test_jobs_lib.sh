# shellcheck shell=bash
# Shared pieces of the jobs/ tests (test_jobs_*.sh): source it after setting `test_name`.
#   jobs_setup MODE     root/slurm/binaries checks, scratch dir, cluster (single|two), tiny data
#   phase NAME          timing table printed at exit
#   fail MSG            prints MSG (and the named logs) and exits 1
#   expect_job ID STATE EXIT RESTARTS TIMEOUT LOG
#   losses FILE         "step loss" lines of metrics.jsonl, the last row of each step
#   json_field FILE KEY first "KEY": value of a JSON file written one key per line (layout.json)
# Exit 77 (skipped) when SLURM cannot run here (see slurm_env.sh).

_jobs_lib_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=slurm_env.sh
source "$_jobs_lib_dir/slurm_env.sh"

# Set here, used by the test scripts (test_name is the caller's).
src_dir=${LCT_SOURCE_DIR:-$(cd "$_jobs_lib_dir/../.." && pwd)}
# shellcheck disable=SC2034
jobs_dir=$src_dir/jobs

fail() {
  echo "FAIL [${test_name:?}]: $*" >&2
  exit 1
}

# Prints a log to stderr (for failure messages).
show_log() {
  local f
  for f in "$@"; do
    echo "----- $f" >&2
    cat "$f" >&2 2>/dev/null || echo "(missing)" >&2
  done
}

# Phase timing: `phase NAME` starts a phase (ending the previous one); the table prints at exit.
_jobs_now() { date +%s.%N; }
phase_name="" phase_t0=0 test_t0=$(_jobs_now)
phase() {
  local t
  t=$(_jobs_now)
  if [ -n "$phase_name" ]; then
    awk -v n="$phase_name" -v a="$phase_t0" -v b="$t" 'BEGIN{printf "%-44s %6.1f s\n", n, b-a}' >>"$timings"
  fi
  if [ -s "$timings.notes" ]; then
    cat "$timings.notes" >>"$timings"
    : >"$timings.notes"
  fi
  phase_name=${1:-} phase_t0=$t
}
# Extra lines in the timing table (measurements), printed under the current phase's line.
note() { echo "  $*" >>"$timings.notes"; }
lct_on_exit() {
  phase ""
  awk -v a="$test_t0" -v b="$(_jobs_now)" 'BEGIN{printf "%-44s %6.1f s\n", "total", b-a}' >>"$timings"
  echo "== $test_name phase timings (exit $1)"
  cat "$timings"
}

# jobs_setup MODE: skips (77) without root/SLURM; fails without the lctrain/lcdata binaries; makes
# the scratch dir, starts the cluster (single|two) with jobs running in $work, and writes the tiny
# token file $work/data/tiny.h5 that the input/slurm_*.deck decks read.
jobs_setup() {
  local mode=$1
  [ "$(id -u)" = 0 ] || slurm_skip "the SLURM job tests run slurmd as root; run them as root"
  slurm_install
  LCT_BIN=${LCT_BIN:-$src_dir/build/bin}
  local b
  for b in lctrain lcdata; do
    [ -x "$LCT_BIN/$b" ] || fail "$LCT_BIN/$b not found: build it (cmake --build <build> --target $b) or set LCT_BIN"
  done
  export LCTRAIN=$LCT_BIN/lctrain
  if [ -n "${LCT_BINARY_DIR:-}" ]; then
    scratch=$LCT_BINARY_DIR/tests/$test_name
  else
    scratch=${TMPDIR:-/tmp}/lct-$test_name
  fi
  slurm_reap_stale # a killed earlier run may still have jobs writing into $scratch
  rm -rf "$scratch"
  mkdir -p "$scratch"
  timings=$scratch/timings.txt
  : >"$timings"
  : >"$timings.notes"
  phase "start $mode cluster"
  slurm_start "$mode" "$scratch/work"
  work=$LCT_SLURM_WORKDIR
  phase "make data (lcdata text --tokenizer bytes)"
  mkdir -p "$work/data"
  "$LCT_BIN/lcdata" text --tokenizer bytes --out "$work/data/tiny.h5" "$src_dir"/README.md "$src_dir"/docs/*.md \
    >"$scratch/lcdata.log" 2>&1 || { show_log "$scratch/lcdata.log"; fail "lcdata text failed"; }
}

# expect_job ID STATE EXIT RESTARTS TIMEOUT LOG: waits for the job and checks how it ended.
expect_job() {
  local id=$1 state=$2 exit_code=$3 restarts=$4 timeout=$5 log=$6
  if ! slurm_wait_job "$id" "$timeout" >/dev/null; then
    show_log "$log"
    fail "job $id did not finish within ${timeout}s (state $LCT_JOB_STATE, reason $LCT_JOB_REASON)"
  fi
  if [ "$LCT_JOB_STATE $LCT_JOB_EXIT $LCT_JOB_RESTARTS" != "$state $exit_code $restarts" ]; then
    show_log "$log"
    fail "job $id: expected '$state $exit_code $restarts' (state exit restarts)," \
      "got '$LCT_JOB_STATE $LCT_JOB_EXIT $LCT_JOB_RESTARTS' (reason $LCT_JOB_REASON)"
  fi
}

# losses METRICS: "step loss" per step, from the step rows of metrics.jsonl (event rows have no
# "loss" right after "stage_step"); a resumed run appends, so the last row of a step wins. The loss
# is the text lctrain wrote (shortest round-trip form of the double): equal text = equal bits.
losses() {
  sed -n 's/^{"step": *\([0-9]*\), *"stage": *[0-9]*, *"stage_step": *[0-9]*, *"loss": *\([^,]*\),.*/\1 \2/p' "$1" |
    awk '{last[$1] = $2; if (!($1 in seen)) { seen[$1] = 1; order[n++] = $1 } }
         END { for (i = 0; i < n; i++) print order[i], last[order[i]] }'
}

# json_field FILE KEY: the value of the first "KEY": in FILE (layout.json is written one key a line).
json_field() {
  sed -n "s/^ *\"$2\": \([^,]*\),\{0,1\}\$/\1/p" "$1" | head -n1
}

# wait_metrics_step METRICS STEP TIMEOUT: waits until metrics.jsonl has a row of step >= STEP.
wait_metrics_step() {
  local f=$1 want=$2 timeout=$3 t0=$SECONDS last
  while :; do
    last=$(losses "$f" 2>/dev/null | tail -n1 | cut -d' ' -f1)
    [ -n "$last" ] && [ "$last" -ge "$want" ] && return 0
    [ $((SECONDS - t0)) -lt "$timeout" ] || return 124
    sleep 0.1
  done
}
