#!/usr/bin/env bash
# Smoke test of the SLURM harness (tests/slurm/slurm_env.sh) with a real slurmctld/slurmd:
#   1. single node: an sbatch job runs mpirun -np 2 (mpi_probe info) and completes with exit 0;
#   2. preemption through SLURM: scancel --signal=USR1 --batch -> batch trap -> mpirun -> every
#      rank -> exit 75 -> scontrol requeue -> the rerun (SLURM_RESTART_COUNT=1) exits 0;
#   3. the same with the signal from the time limit: --time=1 --signal=B:USR1@50;
#   4. two nodes (n1, n2 on this host): -N2 --ntasks-per-node=2 sees 2 nodes x 2 ranks, and the
#      preemption path reaches the ranks on the second node too.
# Exit 77 (skipped) when SLURM cannot be installed or run here (non-root, no apt, no mpicc).
# LCT_SLURM_SMOKE_TIMED=0 leaves out phase 3 (the slowest: SLURM checks time limits every 30 s).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=slurm_env.sh
source "$here/slurm_env.sh"

[ "$(id -u)" = 0 ] || slurm_skip "the SLURM smoke test runs slurmd as root; run it as root"
slurm_install
command -v mpicc >/dev/null 2>&1 || slurm_skip "mpicc not found (bash tools/deps.sh installs OpenMPI)"

if [ -n "${LCT_BINARY_DIR:-}" ]; then
  scratch=$LCT_BINARY_DIR/tests/slurm_smoke
else
  scratch=${TMPDIR:-/tmp}/lct-slurm-smoke
fi
slurm_reap_stale # a killed earlier run may still have jobs writing into $scratch
rm -rf "$scratch"
mkdir -p "$scratch"
jobs_dir=$here/jobs

fail() {
  echo "FAIL: $*" >&2
  exit 1
}

# Phase timing: phase NAME starts a phase (ending the previous one); the table prints at exit.
timings=$scratch/timings.txt
: >"$timings"
phase_name="" phase_t0=0
now() { date +%s.%N; }
phase() {
  local t
  t=$(now)
  if [ -n "$phase_name" ]; then
    awk -v n="$phase_name" -v a="$phase_t0" -v b="$t" 'BEGIN{printf "%-34s %6.1f s\n", n, b-a}' >>"$timings"
  fi
  phase_name=${1:-} phase_t0=$t
}
test_t0=$(now)
lct_on_exit() {
  phase ""
  awk -v a="$test_t0" -v b="$(now)" 'BEGIN{printf "%-34s %6.1f s\n", "total", b-a}' >>"$timings"
  echo "== slurm smoke phase timings (exit $1)"
  cat "$timings"
}

# Checks a finished job: state, exit status, restart count.
expect_job() {
  local id=$1 state=$2 exit_code=$3 restarts=$4 timeout=$5 out=$6
  if ! slurm_wait_job "$id" "$timeout" >/dev/null; then
    cat "$out" 2>/dev/null || true
    fail "job $id did not finish within ${timeout}s (state $LCT_JOB_STATE, reason $LCT_JOB_REASON)"
  fi
  if [ "$LCT_JOB_STATE $LCT_JOB_EXIT $LCT_JOB_RESTARTS" != "$state $exit_code $restarts" ]; then
    echo "----- $out" >&2
    cat "$out" >&2 2>/dev/null || true
    fail "job $id: expected '$state $exit_code $restarts' (state exit restarts)," \
      "got '$LCT_JOB_STATE $LCT_JOB_EXIT $LCT_JOB_RESTARTS' (reason $LCT_JOB_REASON)"
  fi
}

# Checks the markers of a preempt run with NRANKS ranks and its batch output.
expect_preempted_then_done() {
  local outdir=$1 nranks=$2 log=$3 r
  for ((r = 0; r < nranks; r++)); do
    grep -q "got SIGUSR1" "$outdir/preempted.0.$r" 2>/dev/null ||
      fail "rank $r did not record SIGUSR1 in the first run ($outdir/preempted.0.$r missing)"
    [ -f "$outdir/ready.1.$r" ] || fail "rank $r did not start in the requeued run"
    grep -q "finished normally" "$outdir/done.1.$r" 2>/dev/null ||
      fail "rank $r did not finish the requeued run ($outdir/done.1.$r missing)"
    [ ! -e "$outdir/preempted.1.$r" ] || fail "rank $r was preempted again in the requeued run"
  done
  grep -q "batch: mpirun exit 75" "$log" || fail "first run: mpirun did not exit 75 (see $log)"
  grep -q "batch: requeue job" "$log" || fail "first run did not requeue itself (see $log)"
  grep -q "batch: start job .* restart 1 " "$log" || fail "no requeued run (restart 1) in $log"
  grep -q "batch: mpirun exit 0" "$log" || fail "requeued run: mpirun did not exit 0 (see $log)"
}

# Submits preempt_probe.sbatch; SIGNAL_MODE is scancel (the test signals through SLURM once all
# ranks are ready) or timed (sbatch --time=1 --signal=B:USR1@50). Prints the signal latency.
run_preempt() {
  local name=$1 nranks=$2 signal_mode=$3
  shift 3
  local outdir=$LCT_SLURM_WORKDIR/$name log=$LCT_SLURM_WORKDIR/$name.out id r t0
  mkdir -p "$outdir"
  local extra=()
  [ "$signal_mode" = timed ] && extra=(--time=1 --signal=B:USR1@50)
  t0=$(now)
  id=$(slurm_sbatch --output="$log" "$@" "${extra[@]}" "$jobs_dir/preempt_probe.sbatch" \
    "$scratch/mpi_probe" "$outdir")
  for ((r = 0; r < nranks; r++)); do
    slurm_wait_file "$outdir/ready.0.$r" 60 || { cat "$log" >&2; fail "$name: rank $r never started"; }
  done
  if [ "$signal_mode" = scancel ]; then
    scancel --signal=USR1 --batch "$id"
  fi
  # timed: SLURM checks signal/time limits every 30 s, so the signal comes within ~60 s.
  expect_job "$id" COMPLETED 0 1 200 "$log"
  expect_preempted_then_done "$outdir" "$nranks" "$log"
  local t_sig
  t_sig=$(sed -n 's/^batch: USR1 at \([0-9.]*\),.*/\1/p' "$log" | head -n1)
  awk -v n="$name" -v a="$t0" -v b="$t_sig" \
    'BEGIN{printf "  (%s: USR1 reached the batch shell %.1f s after sbatch)\n", n, b-a}' >>"$timings"
}

phase "compile mpi_probe"
mpicc -O1 -Wall -Wextra -o "$scratch/mpi_probe" "$here/mpi_probe.c"

phase "start single-node cluster"
slurm_start single "$scratch/single"

phase "single: mpirun -np 2 info job"
id=$(slurm_sbatch --output=info-%j.out -N1 -n2 "$jobs_dir/info_probe.sbatch" "$scratch/mpi_probe")
expect_job "$id" COMPLETED 0 0 60 "$LCT_SLURM_WORKDIR/info-$id.out"
out=$LCT_SLURM_WORKDIR/info-$id.out
grep -q "SUMMARY size=2 nodes=1 min_node_size=2 max_node_size=2" "$out" || { cat "$out"; fail "bad topology in $out"; }
[ "$(grep -c "^rank .* slurm_node $(hostname -s)\$" "$out")" = 2 ] || { cat "$out"; fail "expected 2 rank lines in $out"; }

phase "single: preempt via scancel+requeue"
run_preempt preempt_scancel 2 scancel -N1 -n2

if [ "${LCT_SLURM_SMOKE_TIMED:-1}" != 0 ]; then
  phase "single: preempt via --signal+requeue"
  run_preempt preempt_timed 2 timed -N1 -n2
fi

phase "start two-node cluster"
slurm_start two "$scratch/two"

phase "two: -N2 --ntasks-per-node=2 info"
id=$(slurm_sbatch --output=info-%j.out -N2 --ntasks-per-node=2 "$jobs_dir/info_probe.sbatch" "$scratch/mpi_probe")
expect_job "$id" COMPLETED 0 0 90 "$LCT_SLURM_WORKDIR/info-$id.out"
out=$LCT_SLURM_WORKDIR/info-$id.out
grep -q "SUMMARY size=4 nodes=2 min_node_size=2 max_node_size=2" "$out" || { cat "$out"; fail "bad topology in $out"; }
if [ "$(grep -c ' slurm_node n1$' "$out")" != 2 ] || [ "$(grep -c ' slurm_node n2$' "$out")" != 2 ]; then
  cat "$out"
  fail "expected 2 ranks on n1 and 2 on n2 in $out"
fi

phase "two: preempt via scancel+requeue"
run_preempt preempt_scancel 4 scancel -N2 --ntasks-per-node=2

phase "stop"
slurm_stop
echo "PASS: slurm smoke (scratch: $scratch, cluster files: $LCT_SLURM_DIR)"
