#!/bin/bash
# Progressive training as Gradient ran it: one SLURM job per stage of a multi-stage deck, each on
# its own number of nodes, chained with --dependency=afterok. Stage N runs `lctrain --stage N`,
# which starts from the final checkpoint of stage N-1 in run.out_dir (and, after a preemption,
# resumes its own newest checkpoint: a requeued stage keeps its job id, so the next stage still
# waits for it). Run it on a login node (it only submits):
#
#   DECK=input/my-stages.deck jobs/stages.sh [sbatch options for every stage, e.g. -A proj -p gpu]
#   DECK=input/my-stages.deck STAGE_NODES="1 2" RANKS_PER_NODE=8 jobs/stages.sh
#
# Parameters (environment):
#   DECK            a deck with [stage1] ... [stageN] sections (docs/deck.md), required
#   STAGE_NODES     nodes of each stage, space-separated, stage 1 first (default: the table below)
#   RANKS_PER_NODE  MPI ranks (GPUs) per node (default 8)
#   FIRST_STAGE     first stage to submit (default 1; e.g. 3 to continue a chain that stopped)
#   LAST_STAGE      last stage to submit (default: the deck's stage count)
#   AFTER           a job id the first submitted stage waits for (afterok), optional
#   JOB_SCRIPT      batch script of a stage (default: multi_node.sbatch next to this file)
#   LCTRAIN         lctrain, to read the deck's stage count with --dry-run (default: ./bin/lctrain,
#                   else lctrain in PATH); the jobs get it too
#   SBATCH          sbatch command (default sbatch)
#   DRY_RUN=1       check every stage and print the sbatch commands; submit nothing
#   EXTRA_ARGS, MPIRUN_FLAGS, NIC_BY_RAIL, RAIL_MAP, OMP_NUM_THREADS, ...: passed on to every stage
#                   job (see the job script's header)
# Before submitting anything, each stage is checked with `lctrain --dry-run --stage N --world-size
# <its nodes x RANKS_PER_NODE>` (layout, data files, start paths), so a bad stage 3 fails here and
# not after stages 1-2 waited in the queue and trained.
# Prints one line per stage: "stage N: job ID on NODES node(s) x R ranks[, after JOB]".
# Exit status: 0 when every stage was submitted; 2 on bad parameters; sbatch's status otherwise.
set -euo pipefail

# Nodes per stage of Gradient's Llama-3 8B 1048K run (8-GPU nodes): 65K on 8 GPUs, 262K on 32,
# 524K and 1048K on 512 (long-context-facts; the model card). Override with STAGE_NODES.
DEFAULT_STAGE_NODES="1 4 64 64"

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
die() {
  echo "stages.sh: $*" >&2
  exit 2
}

[ -n "${DECK:-}" ] || die "DECK is not set: DECK=input/my-stages.deck jobs/stages.sh"
[ -f "$DECK" ] || die "DECK=$DECK: no such file (relative paths are relative to $(pwd))"
RANKS_PER_NODE=${RANKS_PER_NODE:-8}
JOB_SCRIPT=${JOB_SCRIPT:-$here/multi_node.sbatch}
SBATCH=${SBATCH:-sbatch}
if [ -z "${LCTRAIN:-}" ]; then
  if [ -x ./bin/lctrain ]; then LCTRAIN=$(pwd)/bin/lctrain; else LCTRAIN=lctrain; fi
fi
export LCTRAIN

# The deck's stage count: lctrain --dry-run prints every key of stage N as "stageN.key = value".
# shellcheck disable=SC2086  # EXTRA_ARGS is a word list on purpose
effective=$("$LCTRAIN" --dry-run "$DECK" ${EXTRA_ARGS:-}) ||
  die "'$LCTRAIN --dry-run $DECK ${EXTRA_ARGS:-}' failed (message above); fix the deck or set LCTRAIN"
nstages=$(sed -n 's/^stage\([0-9][0-9]*\)\..*/\1/p' <<<"$effective" | sort -n | tail -n1)
nstages=${nstages:-1}

read -r -a nodes <<<"${STAGE_NODES:-$DEFAULT_STAGE_NODES}"
FIRST_STAGE=${FIRST_STAGE:-1}
LAST_STAGE=${LAST_STAGE:-$nstages}
[[ "$FIRST_STAGE" =~ ^[1-9][0-9]*$ && "$LAST_STAGE" =~ ^[1-9][0-9]*$ ]] ||
  die "FIRST_STAGE=$FIRST_STAGE and LAST_STAGE=$LAST_STAGE must be positive integers"
[ "$LAST_STAGE" -le "$nstages" ] || die "LAST_STAGE=$LAST_STAGE but $DECK defines $nstages stage(s)"
[ "$FIRST_STAGE" -le "$LAST_STAGE" ] || die "FIRST_STAGE=$FIRST_STAGE is after LAST_STAGE=$LAST_STAGE"
[ "${#nodes[@]}" -ge "$LAST_STAGE" ] ||
  die "STAGE_NODES='${nodes[*]}' gives ${#nodes[@]} node count(s) but stage $LAST_STAGE is to run; give one per stage"

for ((s = FIRST_STAGE; s <= LAST_STAGE; s++)); do
  n=${nodes[$((s - 1))]}
  [[ "$n" =~ ^[1-9][0-9]*$ ]] || die "STAGE_NODES: '$n' (stage $s) is not a node count"
  # shellcheck disable=SC2086  # EXTRA_ARGS is a word list on purpose
  "$LCTRAIN" --dry-run "$DECK" ${EXTRA_ARGS:-} --stage "$s" --world-size $((n * RANKS_PER_NODE)) \
    --ranks-per-node "$RANKS_PER_NODE" >/dev/null ||
    die "stage $s on $n node(s) x $RANKS_PER_NODE ranks: lctrain --dry-run failed (message above); nothing submitted"
done

dep=${AFTER:-}
for ((s = FIRST_STAGE; s <= LAST_STAGE; s++)); do
  n=${nodes[$((s - 1))]}
  opts=(--parsable --nodes="$n" --ntasks-per-node="$RANKS_PER_NODE" --job-name="lct-stage$s"
    --export="ALL,DECK=$DECK,STAGE=$s,RANKS_PER_NODE=$RANKS_PER_NODE")
  # afterok: start only when the previous stage ended with exit 0; kill-on-invalid-dep: if it
  # fails for good, cancel this stage instead of leaving it pending forever.
  [ -z "$dep" ] || opts+=(--dependency="afterok:$dep" --kill-on-invalid-dep=yes)
  if [ "${DRY_RUN:-0}" = 1 ]; then
    echo "stage $s: (dry run) $SBATCH ${opts[*]} $* $JOB_SCRIPT"
    dep="<stage $s job>"
    continue
  fi
  id=$("$SBATCH" "${opts[@]}" "$@" "$JOB_SCRIPT" | cut -d';' -f1)
  [[ "$id" =~ ^[0-9]+$ ]] || die "sbatch did not return a job id for stage $s (got '$id')"
  echo "stage $s: job $id on $n node(s) x $RANKS_PER_NODE ranks${dep:+, after $dep}"
  dep=$id
done
