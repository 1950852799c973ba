#!/usr/bin/env bash
# jobs/single_node.sbatch on a real (local, one-node) SLURM with input/slurm_tiny.deck (2 ranks,
# cp = 2, 40 steps, a checkpoint every 10):
#   1. an unbroken run: the job completes (exit 0, no restart) and its checkpoints appear;
#   2. preempt-requeue-finish: once the run is going, SLURM itself signals the batch shell
#      (`scancel --signal=USR1 --batch`, what an operator or a preempting scheduler does); the
#      script forwards USR1 to mpirun, lctrain checkpoints at the end of the step and exits 75, the
#      script requeues the job, the rerun (SLURM_RESTART_COUNT=1) resumes from that checkpoint and
#      finishes with, step by step, bit for bit the losses of the unbroken run;
#   3. preemption by the scheduler: a job in a higher-priority partition takes the node
#      (PreemptType=preempt/partition_prio, PreemptMode=REQUEUE, GraceTime=0); SLURM sends SIGTERM
#      to every process of the job, requeues it itself, and the rerun resumes from the newest
#      checkpoint on disk and again ends with the unbroken run's losses bit for bit;
#   4. jobs/eval.sbatch on the trained model (lctrain --eval).
# Phases 2 and 3 run with LCT_DEBUG_HOLD_AFTER_STEP (docs/exit-codes.md): the first run holds after a
# known step until the signal comes, so that the signal or the preemption lands mid-run on a machine
# of any speed (a fast CI machine once finished all 40 steps before the scheduler preempted the job).
# Exit 77 (skipped) when SLURM cannot be installed or run here (non-root, no apt-get).
set -euo pipefail
test_name=jobs_single
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=test_jobs_lib.sh
source "$here/test_jobs_lib.sh"

# Two extra partitions on the node for phase 3: jobs in `high` preempt (requeue) jobs in `low`.
export LCT_SLURM_EXTRA_CONF="PreemptType=preempt/partition_prio
PreemptMode=REQUEUE
PartitionName=low Nodes=ALL MaxTime=INFINITE State=UP PriorityTier=1 PreemptMode=REQUEUE GraceTime=0 OverSubscribe=NO
PartitionName=high Nodes=ALL MaxTime=INFINITE State=UP PriorityTier=10 PreemptMode=OFF OverSubscribe=NO"
jobs_setup single
deck=$src_dir/input/slurm_tiny.deck
steps=40

phase "unbroken run (sbatch single_node, 2 ranks)"
id=$(EXTRA_ARGS="--run.out_dir=out/ref" slurm_sbatch -N1 --ntasks-per-node=2 --output=ref.out \
  "$jobs_dir/single_node.sbatch" "$deck")
expect_job "$id" COMPLETED 0 0 120 "$work/ref.out"
ref=$work/out/ref
for s in 20 30 40; do
  [ -s "$ref/checkpoints/step_000000$s.h5" ] || { show_log "$work/ref.out"; fail "no checkpoint step_000000$s.h5 in $ref"; }
done
[ ! -e "$ref/checkpoints/step_00000010.h5" ] || fail "checkpoint.keep_last = 3 should have removed step_00000010.h5"
[ "$(cat "$ref/checkpoints/latest")" = step_00000040.h5 ] || fail "checkpoints/latest is not step_00000040.h5"
losses "$ref/metrics.jsonl" >"$scratch/ref.losses"
[ "$(wc -l <"$scratch/ref.losses")" = $steps ] || fail "expected $steps step rows in $ref/metrics.jsonl"
step_s=$(sed -n 's/.*"step_seconds": *\([0-9.e+-]*\),.*/\1/p' "$ref/metrics.jsonl" |
  awk '{ s += $1; c++ } END { if (c) printf "%.3f", s / c }')
ck_line=$(grep -m1 "^checkpoint .*MB/s" "$work/ref.out" || true)
note "unbroken run: $steps steps, $step_s s/step; ${ck_line#checkpoint }"

phase "preempt (scancel --signal=USR1 --batch), requeue, resume"
pre=$work/out/preempt
t_submit=$(date +%s.%N)
id=$(EXTRA_ARGS="--run.out_dir=out/preempt" LCT_DEBUG_HOLD_AFTER_STEP=3 slurm_sbatch -N1 --ntasks-per-node=2 \
  --output=preempt.out "$jobs_dir/single_node.sbatch" "$deck")
# Signal once the run holds after step 3: mid-run, well before the end.
wait_metrics_step "$pre/metrics.jsonl" 3 90 || { show_log "$work/preempt.out"; fail "the run never reached step 3"; }
t_signal=$(date +%s.%N)
scancel --signal=USR1 --batch "$id"
expect_job "$id" COMPLETED 0 1 180 "$work/preempt.out"
t_done=$(date +%s.%N)
log=$work/preempt.out
grep -q "^job: SIGUSR1 at .*forwarding USR1 to mpirun" "$log" || { show_log "$log"; fail "the batch shell did not get USR1"; }
stop_step=$(sed -n 's/^stopping after step \([0-9]*\) on signal 10 .*/\1/p' "$log" | head -n1)
[ -n "$stop_step" ] || { show_log "$log"; fail "lctrain did not stop on the signal ('stopping after step N on signal 10')"; }
[ "$stop_step" = 3 ] || { show_log "$log"; fail "lctrain held after step 3 (LCT_DEBUG_HOLD_AFTER_STEP) but stopped after step $stop_step"; }
ck=$(printf 'step_%08d.h5' "$stop_step")
grep -q "^checkpoint .*/$ck: .* MB in .* s (.* MB/s, 2 ranks)" "$log" || { show_log "$log"; fail "no checkpoint $ck written on the signal"; }
grep -q "^job: lctrain exit 75 " "$log" || { show_log "$log"; fail "lctrain did not exit 75 after the signal"; }
grep -q "^job: checkpointed on a signal; requeue job $id" "$log" || { show_log "$log"; fail "the job did not requeue itself"; }
grep -q "^job: $id restart 1 " "$log" || { show_log "$log"; fail "no rerun with SLURM_RESTART_COUNT=1"; }
grep -q "^resuming stage 1 at step $((stop_step + 1)) from .*/$ck" "$log" || { show_log "$log"; fail "the rerun did not resume at step $((stop_step + 1)) from $ck"; }
grep -q "^job: lctrain exit 0 " "$log" || { show_log "$log"; fail "the rerun did not finish with exit 0"; }
losses "$pre/metrics.jsonl" >"$scratch/preempt.losses"
if ! cmp -s "$scratch/ref.losses" "$scratch/preempt.losses"; then
  diff "$scratch/ref.losses" "$scratch/preempt.losses" >&2 || true
  fail "the preempted run's losses differ from the unbroken run's (step loss: < unbroken, > preempted)"
fi
final=$(tail -n1 "$scratch/ref.losses")
# Times from the job log (1 s resolution): USR1 in the batch shell, exit 75, rerun start.
t_usr1=$(sed -n 's/^job: SIGUSR1 at \([0-9-]* [0-9:]*\),.*/\1/p' "$log" | head -n1)
t_stop=$(sed -n 's/^job: lctrain exit 75 at \(.*\)$/\1/p' "$log" | head -n1)
t_restart=$(sed -n 's/^job: [0-9]* restart 1 on .* at \([0-9-]* [0-9:]*\) .*/\1/p' "$log" | head -n1)
secs() { date -d "$1" +%s; }
note "preempt: signal sent while the run held after step 3, lctrain stopped after step $stop_step (checkpoint $ck);" \
  "USR1 -> exit 75: $(($(secs "$t_stop") - $(secs "$t_usr1"))) s, exit 75 -> rerun started:" \
  "$(($(secs "$t_restart") - $(secs "$t_stop"))) s (cred_expire=${LCT_SLURM_CRED_EXPIRE:-5})"
awk -v a="$t_submit" -v b="$t_signal" -v c="$t_done" \
  'BEGIN{printf "  preempt: sbatch -> scancel %.1f s, scancel -> COMPLETED after requeue %.1f s\n", b-a, c-b}' >>"$timings.notes"
note "final step/loss (unbroken = preempted, bit for bit): $final"
echo "== the preempt-requeue-finish cycle (from $log):"
grep -E "^(job:|stopping after|resuming|stage 1:)|/$ck: " "$log"

phase "preemption by a higher-priority partition (SIGTERM, requeued by SLURM)"
log=$work/low.out
id=$(EXTRA_ARGS="--run.out_dir=out/low" LCT_DEBUG_HOLD_AFTER_STEP=11 slurm_sbatch -p low -N1 --ntasks-per-node=2 \
  --output=low.out "$jobs_dir/single_node.sbatch" "$deck")
# Preempt after the periodic checkpoint of step 10 (the run holds after step 11), so that the rerun
# has one to resume from.
wait_metrics_step "$work/out/low/metrics.jsonl" 11 90 || { show_log "$log"; fail "the low-priority run never reached step 11"; }
hid=$(slurm_sbatch -p high -N1 -n2 --output=high.out --wrap "echo high-priority job ran; sleep 1")
expect_job "$hid" COMPLETED 0 0 90 "$work/high.out"
expect_job "$id" COMPLETED 0 1 180 "$log"
grep -q "CANCELLED AT .* DUE TO PREEMPTION" "$log" || { show_log "$log"; fail "the low-priority job was not preempted"; }
grep -q "^job: $id restart 1 " "$log" || { show_log "$log"; fail "SLURM did not requeue the preempted job"; }
resumed=$(sed -n 's/^resuming stage 1 at step \([0-9]*\) from .*/\1/p' "$log" | head -n1)
if [ -z "$resumed" ] || [ "$resumed" -lt 11 ]; then
  show_log "$log"
  fail "the requeued run did not resume from a checkpoint of step >= 10"
fi
losses "$work/out/low/metrics.jsonl" >"$scratch/low.losses"
if ! cmp -s "$scratch/ref.losses" "$scratch/low.losses"; then
  diff "$scratch/ref.losses" "$scratch/low.losses" >&2 || true
  fail "the run preempted by the scheduler has other losses than the unbroken run"
fi
note "scheduler preemption (GraceTime=0): SIGTERM to all job processes, mpirun exit" \
  "$(sed -n 's/^job: lctrain exit \([0-9]*\) .*/\1/p' "$log" | head -n1), requeued by SLURM;" \
  "rerun resumed at step $resumed; losses = unbroken run's, bit for bit"

phase "eval.sbatch (lctrain --eval)"
rm -f "$ref"/*.csv  # the CSV checked below must be this job's
id=$(EXTRA_ARGS="--run.out_dir=out/ref --eval.lengths=256,512 --eval.depths=0,50,100 --eval.samples=1" \
  slurm_sbatch -N1 --ntasks-per-node=2 --output=eval.out "$jobs_dir/eval.sbatch" "$deck")
slurm_wait_job "$id" 120 >/dev/null || { show_log "$work/eval.out"; fail "eval job $id did not finish"; }
[ "$LCT_JOB_STATE $LCT_JOB_EXIT" = "COMPLETED 0" ] || { show_log "$work/eval.out"; fail "eval job: $LCT_JOB_STATE exit $LCT_JOB_EXIT"; }
ls "$ref"/*.csv >/dev/null 2>&1 || { show_log "$work/eval.out"; fail "eval wrote no CSV in $ref"; }

phase "stop"
slurm_stop
echo "PASS: $test_name (scratch: $scratch)"
