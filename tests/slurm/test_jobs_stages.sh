#!/usr/bin/env bash
# jobs/stages.sh on a real (local, two-node) SLURM with input/slurm_stages.deck: two stages as two
# jobs chained with --dependency=afterok, stage 1 on 1 node x 2 ranks (seq_len 256, cp = 2),
# stage 2 on 2 nodes x 2 ranks (seq_len 512, cp = 4). Checks:
#   - stages.sh read the stage count from the deck and submitted stage 2 pending on stage 1;
#   - stage 1 is interrupted once (checkpoint at step 4, exit 75, requeued by its script: the
#     LCT_DEBUG_STOP_AFTER_STEP hook stands in for the signal, which test_jobs_single covers) and
#     the requeue does not release stage 2 early: afterok waits for the rerun to finish;
#   - stage 2 starts after stage 1 ended, from stage 1's final checkpoint (its log says so), and
#     its global step numbers continue (first step 9); its layout shows the 2 detected nodes.
# Exit 77 (skipped) when SLURM cannot be installed or run here (non-root, no apt-get).
set -euo pipefail
test_name=jobs_stages
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=test_jobs_lib.sh
source "$here/test_jobs_lib.sh"

jobs_setup two
# Two "nodes" on one host's cores: see test_jobs_two_node.sh.
export MPIRUN_FLAGS="$LCT_SLURM_MPIRUN_FLAGS --mca mpi_yield_when_idle 1"
deck=$src_dir/input/slurm_stages.deck
out=$work/out/slurm-stages

phase "stages.sh: submit 2 stages (afterok)"
(cd "$work" && LCT_DEBUG_STOP_AFTER_STEP=4 DECK=$deck STAGE_NODES="1 2" RANKS_PER_NODE=2 \
  bash "$jobs_dir/stages.sh" --output=%x-%j.out) >"$scratch/stages.txt" 2>&1 ||
  { show_log "$scratch/stages.txt"; fail "stages.sh failed"; }
cat "$scratch/stages.txt"
id1=$(sed -n 's/^stage 1: job \([0-9]*\) on 1 node(s) x 2 ranks$/\1/p' "$scratch/stages.txt")
id2=$(sed -n "s/^stage 2: job \\([0-9]*\\) on 2 node(s) x 2 ranks, after $id1\$/\\1/p" "$scratch/stages.txt")
if [ -z "$id1" ] || [ -z "$id2" ]; then show_log "$scratch/stages.txt"; fail "stages.sh did not submit stage 1 then stage 2 after it"; fi
[ "$(wc -l <"$scratch/stages.txt")" = 2 ] || fail "stages.sh submitted more than the deck's 2 stages"
dep=$(slurm_job_field "$id2" Dependency)
[[ "$dep" == afterok:$id1* ]] || fail "stage 2 (job $id2) has Dependency='$dep', expected afterok:$id1"
log1=$work/lct-stage1-$id1.out log2=$work/lct-stage2-$id2.out

phase "stage 1: run, interrupted at step 4, requeue, finish"
expect_job "$id1" COMPLETED 0 1 120 "$log1"
end1=$(slurm_job_field "$id1" EndTime)
grep -q "^stopping after step 4 " "$log1" || { show_log "$log1"; fail "stage 1 did not stop after step 4"; }
grep -q "^job: checkpointed on a signal; requeue job $id1" "$log1" || { show_log "$log1"; fail "stage 1 did not requeue itself"; }
grep -q "^resuming stage 1 at step 5 from .*/step_00000004.h5" "$log1" || { show_log "$log1"; fail "stage 1 did not resume at step 5"; }
grep -q "^layout: 2 ranks on 1 node(s) x 2, tp=1 cp=2 " "$log1" || { show_log "$log1"; fail "stage 1 layout is not 1 node x 2, cp = 2"; }
grep -q "^checkpoint out/slurm-stages/checkpoints/step_00000008.h5: " "$log1" || { show_log "$log1"; fail "no final checkpoint of stage 1"; }

phase "stage 2: starts from stage 1's final checkpoint"
expect_job "$id2" COMPLETED 0 0 120 "$log2"
start2=$(slurm_job_field "$id2" StartTime)
[[ ! "$start2" < "$end1" ]] || fail "stage 2 started ($start2) before stage 1 ended ($end1)"
grep -q "^stage 2 starts from out/slurm-stages/checkpoints/step_00000008.h5" "$log2" ||
  { show_log "$log2"; fail "stage 2 did not start from stage 1's final checkpoint step_00000008.h5"; }
grep -q "^layout: 4 ranks on 2 node(s) x 2, tp=1 cp=4 dp=1, ring order aware; ring hops: 2 intra-node, 2 same-rail, 0 cross-rail" "$log2" ||
  { show_log "$log2"; fail "stage 2 layout is not the detected 2 nodes x 2, cp = 4"; }
first2=$(sed -n 's/^{"step": *\([0-9]*\), *"stage": *2,.*/\1/p' "$out/metrics.jsonl" | head -n1)
last1=$(sed -n 's/^{"step": *\([0-9]*\), *"stage": *1,.*/\1/p' "$out/metrics.jsonl" | tail -n1)
[ "$last1 $first2" = "8 9" ] || fail "global steps do not continue: stage 1 ends at '$last1', stage 2 starts at '$first2'"
[ "$(json_field "$out/layout.json" nodes)" = 2 ] || fail "$out/layout.json (stage 2) does not show 2 nodes"
[ -s "$out/checkpoints/step_00000016.h5" ] || fail "no final checkpoint of stage 2 (step_00000016.h5)"
note "stage 1 (job $id1, 1 node): ended $end1 after 1 requeue; stage 2 (job $id2, 2 nodes): started $start2 at step $first2"
echo "== the chain (job logs):"
grep -hE "^(job:|stage [12]|stopping after|resuming|layout:)" "$log1" "$log2"

phase "stop"
slurm_stop
echo "PASS: $test_name (scratch: $scratch)"
