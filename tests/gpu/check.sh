#!/usr/bin/env bash
# tests/gpu/check.sh [--only STEP[,STEP]]: the GPU check of the cuda backend (issue 15), on a machine
# with one GPU, from the repository root, with the pack made on the build machine
# (`make gpu-pack`: .gpu-pack.tar.xz, carried). Nothing is compiled here. Steps:
#   env     the GPU, where CUDA's libraries come from, that every packed program resolves
#   ops     test_cuda_ops: every op, cuda vs the cpu backend, committed tolerances
#   comm    the communicator conformance suite on device buffers: nccl (1 rank), staged (4 ranks)
#   tiny    tests/gpu/decks/tiny.deck on the GPU, 20 steps, vs the cpu curve (|loss diff| <= 0.02)
#   l100m   tests/gpu/decks/llama100m.deck on the GPU, 20 steps, vs the cpu curve
#   mpi4    4 ranks on the one GPU (parallel.device_comm = mpi): tp2 x cp2 (interrupted at step 10
#           and resumed), cp4, cp4 as all-to-all 2 x ring 2, dp2 x cp2 + ZeRO-1, each vs the
#           single-rank GPU run of `tiny`
#   resume  a checkpoint written by the cpu backend (step 10) resumed on the GPU, vs the cpu curve
#   zero3   llama100m at ZeRO 3 + offload both (pinned host memory, the copy stream), dp 2 x cp 2 on
#           4 ranks of the one GPU: the loss curve vs the cpu's, and its memory vs --plan (the
#           ledger's categories within 10%; cudaMemGetInfo's bytes in use vs the plan's allocations
#           + assumed context / workspaces, tests/gpu/compare_memory.py)
# Prints a summary even when steps fail; $OUT gets check.log (everything), check.json (verdicts)
# and runs.tar.gz (metrics, and the GPU's tiny checkpoint for the cpu resume on the build machine).
set -uo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
OUTDIR=${OUT:-/tmp/lct-gpu-out}
W=${LCT_GPU_WORK:-/tmp/lct-gpu-work}
ONLY=""
[[ ${1:-} == --only ]] && ONLY=",${2:?--only STEP},"
mkdir -p "$OUTDIR" "$W"
LOG=$OUTDIR/check.log
exec > >(tee -a "$LOG") 2>&1
T0=$SECONDS
say() { echo "[check +$((SECONDS - T0))s] $*"; }

# ---- the pack and CUDA's libraries ------------------------------------------------------------
PACK=$W/pack
if [[ ! -x $PACK/bin/lctrain ]]; then
  [[ -f $ROOT/.gpu-pack.tar.xz ]] || { say "no .gpu-pack.tar.xz: make it on the build machine (make gpu-pack) and carry it"; exit 1; }
  mkdir -p "$PACK" && tar -C "$PACK" -xJf "$ROOT/.gpu-pack.tar.xz" --strip-components=1
fi
# shellcheck disable=SC1091
source "$PACK/env.sh"
# shellcheck disable=SC1091
source "$ROOT/tests/gpu/cuda_env.sh"
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-8}
say "pack $(cat "$PACK/commit" 2>/dev/null), built on the build machine; LD_LIBRARY_PATH=$LD_LIBRARY_PATH"

declare -A VERDICT SECS
ORDER=()
step() {  # step NAME TIMEOUT_S FUNCTION
  local name=$1 limit=$2 fn=$3
  [[ -n $ONLY && $ONLY != *",$name,"* ]] && return
  ORDER+=("$name")
  say "---- $name (limit ${limit}s)"
  local t=$SECONDS rc
  ( export -f "$fn"; timeout --kill-after=10 "$limit" bash -c "$fn" )
  rc=$?
  SECS[$name]=$((SECONDS - t))
  case $rc in
    0) VERDICT[$name]=PASS ;;
    77) VERDICT[$name]=SKIP ;;
    124|137) VERDICT[$name]="FAIL (timeout ${limit}s)" ;;
    *) VERDICT[$name]="FAIL (exit $rc)" ;;
  esac
  say "---- $name: ${VERDICT[$name]} in ${SECS[$name]}s"
}
export ROOT W PACK OUTDIR
MPIRUN="mpirun --oversubscribe --bind-to none -np"
export MPIRUN
lctrain1() { $MPIRUN 1 lctrain "$@"; }
export -f lctrain1

s_env() {
  nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv,noheader || exit 1
  local bad=0 p
  for p in "$PACK"/bin/*; do
    [[ -L $p || $(basename "$p") == ompi_info ]] && continue
    if ldd "$p" | grep -q "not found"; then echo "$p: $(ldd "$p" | grep 'not found' | tr -s ' \t' ' ')"; bad=1; fi
  done
  ldd "$PACK/bin/lctrain" | grep -E "cuda|cublas|nccl|cudnn|libmpi|hdf5" | sed 's/^/  /'
  $MPIRUN 2 hostname || bad=1
  exit $bad
}
s_ops() { test_cuda_ops --gtest_color=no; }
s_comm() {
  $MPIRUN 1 test_comm_conformance --gtest_color=no --gtest_filter='*nccl*:*staged_cuda*' || exit 1
  $MPIRUN 4 test_comm_conformance --gtest_color=no --gtest_filter='*staged_cuda*'
}
DATA=$PACK/data/gpu_data.h5
# LCT_CHECK_DEVICE=cpu rehearses the training steps' plumbing on the build machine.
DEVICE=${LCT_CHECK_DEVICE:-cuda}
export DATA DEVICE
s_tiny() {
  rm -rf "$W/tiny"
  lctrain1 "$ROOT/tests/gpu/decks/tiny.deck" --run.device="$DEVICE" --run.out_dir="$W/tiny" --data.train="$DATA" || exit 1
  python3 "$ROOT/tests/gpu/compare_losses.py" "$W/tiny/metrics.jsonl" "$ROOT/tests/gpu/ref/tiny_cpu.json" --name "tiny cuda vs cpu"
}
s_l100m() {
  rm -rf "$W/l100m"
  lctrain1 "$ROOT/tests/gpu/decks/llama100m.deck" --run.device="$DEVICE" --run.out_dir="$W/l100m" --data.train="$DATA" || exit 1
  python3 "$ROOT/tests/gpu/compare_losses.py" "$W/l100m/metrics.jsonl" "$ROOT/tests/gpu/ref/llama100m_cpu.json" \
    --name "llama100m cuda vs cpu"
}
s_mpi4() {
  local ref=$W/tiny/metrics.jsonl fail=0 d
  [[ -f $ref ]] || { echo "needs the tiny step's run"; exit 1; }
  local common=("$ROOT/tests/gpu/decks/tiny.deck" --run.device="$DEVICE" --data.train="$DATA" --parallel.device_comm=mpi)
  d=$W/tp2cp2
  rm -rf "$d"
  # Interrupted after step 10 (exit 75, checkpoint), then resumed from it by the same command.
  LCT_DEBUG_STOP_AFTER_STEP=10 $MPIRUN 4 lctrain "${common[@]}" --run.out_dir="$d" --parallel.tp=2 --parallel.cp=2
  [[ $? == 75 ]] || { echo "tp2 x cp2: expected exit 75 after the step-10 checkpoint"; fail=1; }
  $MPIRUN 4 lctrain "${common[@]}" --run.out_dir="$d" --parallel.tp=2 --parallel.cp=2 || fail=1
  python3 "$ROOT/tests/gpu/compare_losses.py" "$d/metrics.jsonl" "$ref" --name "tp2 x cp2 (resumed at 11) vs 1 rank" || fail=1
  d=$W/cp4
  rm -rf "$d"
  $MPIRUN 4 lctrain "${common[@]}" --run.out_dir="$d" --parallel.cp=4 || fail=1
  python3 "$ROOT/tests/gpu/compare_losses.py" "$d/metrics.jsonl" "$ref" --name "cp4 vs 1 rank" || fail=1
  d=$W/cp4u2
  rm -rf "$d"
  # Hierarchical cp: all-to-all over pairs (device permute_copy, staged all_to_all) x ring of 2.
  $MPIRUN 4 lctrain "${common[@]}" --run.out_dir="$d" --parallel.cp=4 --parallel.cp_comm_type=a2a+p2p \
    --parallel.hierarchical_cp_sizes=2,2 || fail=1
  python3 "$ROOT/tests/gpu/compare_losses.py" "$d/metrics.jsonl" "$ref" --name "cp4 as U2 x R2 vs 1 rank" || fail=1
  d=$W/dp2cp2
  rm -rf "$d"
  # dp 2 doubles the samples per step: half the accumulation keeps the global batch.
  $MPIRUN 4 lctrain "${common[@]}" --run.out_dir="$d" --parallel.cp=2 --train.grad_accum=1 --parallel.zero=1 || fail=1
  python3 "$ROOT/tests/gpu/compare_losses.py" "$d/metrics.jsonl" "$ref" --name "dp2 x cp2 zero1 vs 1 rank" || fail=1
  exit $fail
}
s_resume() {
  local d=$W/resume
  rm -rf "$d"
  lctrain1 "$ROOT/tests/gpu/decks/tiny.deck" --run.device="$DEVICE" --run.out_dir="$d" --data.train="$DATA" \
    --checkpoint.resume="$PACK/data/tiny_cpu_step10.h5" || exit 1
  python3 "$ROOT/tests/gpu/compare_losses.py" "$d/metrics.jsonl" "$ROOT/tests/gpu/ref/tiny_cpu.json" --steps 11:20 \
    --name "cpu checkpoint (step 10) resumed on cuda vs cpu"
}
s_zero3() {
  local d=$W/zero3 fail=0 base
  rm -rf "$d"
  # dp 2 x micro_batch 2 keeps llama100m's 4 sequences per step; 4 ranks share the GPU (staged comm).
  local ov=(--run.device=cuda --data.train="$DATA" --parallel.device_comm=mpi --parallel.cp=2 --train.micro_batch=2
            --parallel.zero=3 --train.offload=both --train.recompute=layer)
  base=$(( $(nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits | head -1) * 1048576 ))
  $MPIRUN 4 lctrain "$ROOT/tests/gpu/decks/llama100m.deck" "${ov[@]}" --run.out_dir="$d" || exit 1
  python3 "$ROOT/tests/gpu/compare_losses.py" "$d/metrics.jsonl" "$ROOT/tests/gpu/ref/llama100m_cpu.json" \
    --name "llama100m zero3 + offload both, dp2 x cp2 on one GPU vs cpu" || fail=1
  lctrain --plan "$ROOT/tests/gpu/decks/llama100m.deck" "${ov[@]}" --world-size 4 --ranks-per-node 4 \
    --run.out_dir="$d/plan" >"$d/plan.txt" || exit 1
  grep -A14 "^memory per rank" "$d/plan.txt"
  python3 "$ROOT/tests/gpu/compare_memory.py" "$d/metrics.jsonl" "$d/plan/plan.json" --ranks-on-device 4 \
    --baseline-bytes "$base" || fail=1
  exit $fail
}
export -f s_env s_ops s_comm s_tiny s_l100m s_mpi4 s_resume s_zero3

step env 40 s_env
step ops 120 s_ops
step comm 60 s_comm
step tiny 40 s_tiny
step l100m 60 s_l100m
step mpi4 100 s_mpi4
step resume 30 s_resume
step zero3 120 s_zero3

# ---- results ----------------------------------------------------------------------------------
( cd "$W" && tar -czf "$OUTDIR/runs.tar.gz" --ignore-failed-read */metrics.jsonl */layout.json \
    tiny/checkpoints/step_00000020.h5 2>/dev/null )
{
  echo "{"
  echo "  \"script\": \"tests/gpu/check.sh\", \"seconds\": $((SECONDS - T0)), \"pack_commit\": \"$(cat "$PACK/commit" 2>/dev/null)\","
  echo "  \"gpu\": \"$(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>/dev/null | head -1)\","
  echo "  \"steps\": {"
  n=0
  for s in "${ORDER[@]}"; do
    n=$((n + 1))
    echo "    \"$s\": {\"verdict\": \"${VERDICT[$s]}\", \"seconds\": ${SECS[$s]}}$([[ $n -lt ${#ORDER[@]} ]] && echo ,)"
  done
  echo "  }"
  echo "}"
} >"$OUTDIR/check.json"
echo
echo "==================== GPU check summary ($((SECONDS - T0)) s) ===================="
grep -E "^\[  FAILED  \].*\)$|: (PASS|FAIL)$|worst \|loss diff\||cudaMemGetInfo in use" "$LOG" | sort -u | head -40
for s in "${ORDER[@]}"; do printf '  %-7s %-22s %4ss\n' "$s" "${VERDICT[$s]}" "${SECS[$s]}"; done
for s in "${ORDER[@]}"; do [[ ${VERDICT[$s]} == PASS || ${VERDICT[$s]} == SKIP ]] || exit 1; done
exit 0
