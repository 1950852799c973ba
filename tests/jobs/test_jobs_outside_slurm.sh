#!/bin/bash
# jobs/*.sbatch and jobs/stages.sh outside SLURM, as a user tries them first (from a folder with
# bin/ -> the build's executables and data/tiny.h5, no SLURM_* variables):
#   - no deck: a usage message and exit 2 on stderr, never "unbound variable" (set -u);
#   - DRY_RUN=1 with a deck: the mpirun line, `lctrain --dry-run` for the job's world size, exit 0;
#     a layout that cannot work for that world size: lctrain's message and exit 2;
#   - single_node.sbatch for real with a stop after step 2: exit 75 and the "not a SLURM job" line;
#   - SITE_ENV_FILE is sourced (under set -u, with unset variables in it), a missing one is exit 2;
#   - each .sbatch has one site-settings block with partition, account, GPUs, CPUs per task, time,
#     modules and an environment file;
#   - stages.sh: DECK unset -> exit 2; DRY_RUN=1 checks every stage and prints the sbatch lines.
set -u
src=${LCT_SOURCE_DIR:?}
bin=${LCT_BIN:?}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
for v in $(compgen -e | grep '^SLURM_' || true); do unset "$v"; done
unset OMP_NUM_THREADS DECK STAGE EXTRA_ARGS LCTRAIN RANKS_PER_NODE

work=$(pwd)/scratch/jobs_outside_slurm
rm -rf "$work"
mkdir -p "$work/data"
cd "$work" || exit 1
ln -s "$bin" bin
"$bin/lcdata" text --tokenizer bytes --out data/tiny.h5 "$src/README.md" "$src"/docs/*.md >lcdata.log 2>&1 ||
  { cat lcdata.log; echo "FAIL: lcdata"; exit 1; }

failures=0
fail() {
  echo "FAIL: $*"
  failures=$((failures + 1))
}
# run NAME CMD...: runs CMD, keeps its output in $out and exit status in $rc.
run() {
  local name=$1
  shift
  rc=0
  out=$("$@" 2>&1) || rc=$?
  printf '%s\n' "--- $name (exit $rc)" "$out" >>"$work/all.log"
}
expect() { # expect WHAT RC PATTERN...: exit code and fixed strings in $out
  local what=$1 want=$2
  shift 2
  [ "$rc" = "$want" ] || fail "$what: exit $rc, expected $want: $out"
  for p in "$@"; do grep -qF -- "$p" <<<"$out" || fail "$what: no '$p' in: $out"; done
  if grep -q "unbound variable" <<<"$out"; then fail "$what: 'unbound variable': $out"; fi
}

deck=$src/input/slurm_tiny.deck
for j in single_node multi_node eval; do
  script=$src/jobs/$j.sbatch
  run "$j: no deck" bash "$script"
  expect "$j without a deck" 2 "$j.sbatch: no deck given" "usage: sbatch jobs/$j.sbatch DECK"
  run "$j: missing deck" bash "$script" nope.deck
  expect "$j with a missing deck" 2 "DECK=nope.deck: no such file"
  run "$j: dry" env DRY_RUN=1 RANKS_PER_NODE=2 bash "$script" "$deck" --train.steps=4
  expect "$j DRY_RUN=1" 0 "job: (no SLURM job) restart 0" "job: mpirun -np 2 --map-by ppr:2:node --bind-to core" \
    "$work/bin/lctrain" "--dry-run for 2 ranks, 2 per node" "# lctrain --dry-run $deck: valid" \
    "layout for 2 ranks on nodes of 2 ranks" "job: lctrain --dry-run exit 0"
  # cp = 4 needs 4 ranks: the 2-rank job would fail right after the queue wait.
  run "$j: dry, bad layout" env DRY_RUN=1 RANKS_PER_NODE=2 bash "$script" "$deck" --parallel.cp=4
  expect "$j DRY_RUN=1, cp = 4 on 2 ranks" 2 \
    "parallel.tp * parallel.cp = 1 * 4 = 4 does not divide the world size 2" "job: lctrain --dry-run exit 2"
  # The site-settings block.
  block=$(sed -n '/^# ==== site settings/,/^# ==== end of site settings/p' "$script")
  [ "$(grep -c '^# ==== site settings' "$script")" = 1 ] || fail "$j: not exactly one site-settings block"
  # shellcheck disable=SC2016  # literal text
  for key in '--partition=' '--account=' '--gpus-per-node=' '--cpus-per-task=' '#SBATCH --time=' \
    'SITE_MODULES=${SITE_MODULES:-}' 'SITE_ENV_FILE=${SITE_ENV_FILE:-}'; do
    grep -qF -- "$key" <<<"$block" || fail "$j: the site-settings block has no '$key'"
  done
done

# The environment file: sourced before anything else (its PATH is used), set -u does not trip on it.
cat >site-env.sh <<'ENV'
export LCT_SITE_MARK=loaded${SOME_UNSET_VARIABLE}
ENV
run "site env" env DRY_RUN=1 RANKS_PER_NODE=2 SITE_ENV_FILE="$work/site-env.sh" bash "$src/jobs/single_node.sbatch" "$deck"
expect "SITE_ENV_FILE" 0 "job: sourced $work/site-env.sh" "job: lctrain --dry-run exit 0"
run "site env missing" env DRY_RUN=1 SITE_ENV_FILE="$work/none.sh" bash "$src/jobs/single_node.sbatch" "$deck"
expect "a missing SITE_ENV_FILE" 2 "SITE_ENV_FILE=$work/none.sh: no such file"

# A real run outside SLURM that is stopped after step 2 (the test hook of a stop signal): exit 75
# and the script's own "not a SLURM job" branch.
run "single_node outside SLURM, stopped" env RANKS_PER_NODE=2 BIND_TO=none MPIRUN_FLAGS=--oversubscribe \
  OMP_NUM_THREADS=1 LCT_DEBUG_STOP_AFTER_STEP=2 bash "$src/jobs/single_node.sbatch" "$deck" --train.steps=4 \
  --checkpoint.every=0 --run.out_dir=out/stopped
expect "single_node outside SLURM" 75 "stopping after step 2" "job: lctrain exit 75" \
  "job: checkpointed on a signal; not a SLURM job, so run this again to resume"
[ -f out/stopped/checkpoints/step_00000002.h5 ] || fail "no checkpoint at step 2"

# stages.sh
stages=$src/jobs/stages.sh
run "stages: no DECK" bash "$stages"
expect "stages.sh without DECK" 2 "stages.sh: DECK is not set"
run "stages: dry" env DRY_RUN=1 DECK="$src/input/slurm_stages.deck" STAGE_NODES="1 2" RANKS_PER_NODE=2 LCTRAIN="$bin/lctrain" \
  bash "$stages" -p gpu
expect "stages.sh DRY_RUN=1" 0 "stage 1: (dry run) sbatch --parsable --nodes=1 --ntasks-per-node=2" \
  "stage 2: (dry run) sbatch --parsable --nodes=2 --ntasks-per-node=2" "--dependency=afterok:<stage 1 job>"
# Stage 2 (cp = 4) on one node of 2 ranks cannot work: found before anything is submitted.
run "stages: bad stage" env DRY_RUN=1 DECK="$src/input/slurm_stages.deck" STAGE_NODES="1 1" RANKS_PER_NODE=2 \
  LCTRAIN="$bin/lctrain" bash "$stages"
expect "stages.sh with stage 2 on 2 ranks" 2 "stage 2: parallel.tp * parallel.cp = 1 * 4 = 4 does not divide the world size 2" \
  "nothing submitted"
grep -q "(dry run)" <<<"$out" && fail "stages.sh printed sbatch lines although stage 2 failed"

if [ "$failures" -gt 0 ]; then
  echo "$failures failure(s); all output in $work/all.log"
  exit 1
fi
echo "PASS: jobs/ outside SLURM (3 batch scripts + stages.sh)"
