#!/usr/bin/env bash
# tests/gpu/run.sh: the one prepared GPU check of the cuda backend (issue [cuda]).
#
# On a machine with one H100/H200 (about 8 minutes): builds the cuda backend for sm_90 only, runs
# the GPU tests (cuda vs cpu, op by op) and the benchmarks (bf16 GEMM rate, attention forward +
# backward TFLOP/s ours vs cuDNN at 8K and 32K, a ~1B-parameter layer-stack training step with
# MFU), and prints a compact summary. Logs and bench.json go to $OUT (or /tmp/lct-gpu-out).
#
#   bash tests/gpu/run.sh --prepare   # HERE, on the build machine: packs Eigen and GoogleTest
#                                     # into .gpu-deps/ (git-ignored) for a bare GPU machine
#   bash tests/gpu/run.sh             # THERE, with .gpu-deps carried along
#
# Two build paths. If the project's CMake configures (MPI, parallel HDF5, Boost, ... installed),
# it builds the targets test_cuda_ops and bench_cuda with -DLCT_CUDA_ARCHITECTURES=90 and runs
# ctest -L gpu. On a bare GPU image (nvcc, cuBLAS, and cuDNN/NCCL as pip wheels, no MPI/HDF5),
# it compiles the few files those two programs need directly with nvcc and g++ (the NCCL
# communicator needs MPI and is left out: it needs several GPUs to test anyway).
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
DEPS=$ROOT/.gpu-deps
OUTDIR=${OUT:-/tmp/lct-gpu-out}
BUILD=${LCT_GPU_BUILD:-/tmp/lct-gpu-sm90}
BUDGET=${LCT_GPU_BUDGET:-470}  # seconds for everything
JOBS=$(nproc 2>/dev/null || echo 4)
T0=$SECONDS
mkdir -p "$OUTDIR"
log() { echo "[run.sh +$((SECONDS - T0))s] $*"; }
left() { echo $((BUDGET - (SECONDS - T0))); }

if [[ "${1:-}" == "--prepare" ]]; then
  rm -rf "$DEPS"
  mkdir -p "$DEPS/include" "$DEPS/lib"
  cp -r /usr/include/eigen3 "$DEPS/include/" || exit 1
  cp -r /usr/include/gtest "$DEPS/include/" || exit 1
  cp /usr/lib/x86_64-linux-gnu/libgtest.a "$DEPS/lib/" || exit 1
  # cudnn-frontend's C++ headers (pip package nvidia-cudnn-frontend) for the cuDNN attention path.
  fe=$(python3 -c "import importlib.util,os; s=importlib.util.find_spec('cudnn'); print(os.path.join(os.path.dirname(os.path.dirname(s.origin)),'include'))" 2>/dev/null)
  if [[ -n $fe && -f $fe/cudnn_frontend.h ]]; then
    cp -r "$fe"/cudnn_frontend* "$fe"/cudnn_backend_base.h "$DEPS/include/" 2>/dev/null
    cp "$fe"/cudnn_frontend.h "$DEPS/include/"
  else
    echo "warning: cudnn-frontend headers not found (pip install nvidia-cudnn-frontend): the cuDNN path will be off"
  fi
  grep -qx '/.gpu-deps/' "$ROOT/.git/info/exclude" 2>/dev/null || echo '/.gpu-deps/' >>"$ROOT/.git/info/exclude"
  du -sh "$DEPS"
  echo "carry .gpu-deps with the GPU run (device run: carry [\".gpu-deps\"])"
  exit 0
fi

# ---- find CUDA, cuBLASLt, cuDNN and NCCL ------------------------------------------------------
NVCC=$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)
CUDA_HOME=$(cd "$(dirname "$NVCC")/.." && pwd)
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null | sed 's/^/gpu: /'
log "nvcc: $($NVCC --version | tail -1)"

pip_dir() {  # the folder of a pip-installed nvidia package (nvidia.cudnn, nvidia.nccl, nvidia.cublas)
  python3 -c "import importlib,sys; m=importlib.import_module(sys.argv[1]); print(list(m.__path__)[0])" "$1" 2>/dev/null
}
LIBLINKS=$BUILD/liblinks  # unversioned .so links for pip libraries (they ship only .so.N)
mkdir -p "$LIBLINKS"
find_lib() {  # find_lib NAME HEADER PIPMODULE -> sets <NAME>_INC and <NAME>_LIB (a folder)
  local name=$1 header=$2 mod=$3 inc="" lib=""
  for d in "$CUDA_HOME/include" /usr/include /usr/local/include; do
    [[ -f $d/$header ]] && inc=$d && break
  done
  for d in "$CUDA_HOME/lib64" "$CUDA_HOME/lib" /usr/lib/x86_64-linux-gnu /usr/local/lib; do
    [[ -e $d/lib$name.so ]] && lib=$d && break
  done
  if [[ -z $inc || -z $lib ]]; then
    local p
    p=$(pip_dir "$mod")
    if [[ -n $p && -f $p/include/$header ]]; then
      inc=$p/include
      local so
      so=$(ls "$p"/lib/lib$name.so* 2>/dev/null | head -1)
      [[ -n $so ]] && ln -sf "$so" "$LIBLINKS/lib$name.so" && lib=$LIBLINKS && export LD_LIBRARY_PATH=$p/lib:${LD_LIBRARY_PATH:-}
    fi
  fi
  printf -v "${name^^}_INC" '%s' "$inc"
  printf -v "${name^^}_LIB" '%s' "$lib"
  log "$name: include ${inc:-NOT FOUND}, lib ${lib:-NOT FOUND}"
}
find_lib cublasLt cublasLt.h nvidia.cublas
find_lib cudnn cudnn_graph.h nvidia.cudnn
find_lib nccl nccl.h nvidia.nccl
export LD_LIBRARY_PATH=$CUDA_HOME/lib64:$CUDA_HOME/lib:$LIBLINKS:${LD_LIBRARY_PATH:-}

# ---- build ------------------------------------------------------------------------------------
TEST_BIN="" BENCH_BIN="" PATH_USED=""
cmake_build() {
  command -v cmake >/dev/null || return 1
  local gen=()
  command -v ninja >/dev/null && gen=(-G Ninja)
  local extra=()
  [[ -n $NCCL_INC ]] && extra+=(-DNCCL_ROOT="$(dirname "$NCCL_INC")" -DNCCL_INCLUDE_DIR="$NCCL_INC" -DNCCL_LIBRARY="$NCCL_LIB/libnccl.so")
  [[ -n $CUDNN_INC ]] && extra+=(-DCUDNN_INCLUDE_DIR="$CUDNN_INC" -DCUDNN_LIBRARY="$CUDNN_LIB/libcudnn.so")
  [[ -f $DEPS/include/cudnn_frontend.h ]] && extra+=(-DCUDNN_FRONTEND_ROOT="$DEPS")
  log "cmake configure (sm_90 only)"
  cmake -S "$ROOT" -B "$BUILD/cmake" "${gen[@]}" -DCMAKE_BUILD_TYPE=Release -DLCT_CUDA_ARCHITECTURES=90 \
    -DLCT_BUILD_BENCH=OFF -DLCT_ALLOW_MISSING_TESTS=ON -DCMAKE_CUDA_COMPILER="$NVCC" "${extra[@]}" \
    >"$OUTDIR/configure.log" 2>&1 || { log "cmake configure failed (see configure.log): direct build"; return 1; }
  grep -q "CUDA backend: ON" "$OUTDIR/configure.log" || { log "configure found no CUDA backend: direct build"; return 1; }
  log "cmake build"
  cmake --build "$BUILD/cmake" -j "$JOBS" --target test_cuda_ops bench_cuda >"$OUTDIR/build.log" 2>&1 || {
    log "cmake build failed (tail of build.log):"; tail -20 "$OUTDIR/build.log"; return 1; }
  TEST_BIN=$BUILD/cmake/tests/test_cuda_ops BENCH_BIN=$BUILD/cmake/tests/bench_cuda PATH_USED=cmake
}

direct_build() {
  [[ -n $CUBLASLT_INC ]] || { log "no cuBLASLt: cannot build"; return 1; }
  local eigen=/usr/include/eigen3 gtest_inc=/usr/include gtest_lib=""
  [[ -d $DEPS/include/eigen3 ]] && eigen=$DEPS/include/eigen3
  [[ -d $DEPS/include/gtest ]] && gtest_inc=$DEPS/include
  for f in "$DEPS/lib/libgtest.a" /usr/lib/x86_64-linux-gnu/libgtest.a /usr/lib/libgtest.a /usr/local/lib/libgtest.a; do
    [[ -f $f ]] && gtest_lib=$f && break
  done
  [[ -d $eigen && -n $gtest_lib ]] || { log "Eigen or GoogleTest missing: run 'bash tests/gpu/run.sh --prepare' on the build machine and carry .gpu-deps"; return 1; }
  local O=$BUILD/direct
  mkdir -p "$O"
  local defs=(-DLCT_HAVE_CUDA=1)
  local incs=(-I"$ROOT/src" -I"$ROOT" -I"$ROOT/tests/support" -I"$ROOT/tests/gpu" -isystem "$eigen" -isystem "$gtest_inc"
              -isystem "$CUDA_HOME/include" -isystem "$CUBLASLT_INC")
  local libs=(-L"$CUDA_HOME/lib64" -L"$CUDA_HOME/lib" -L"$CUBLASLT_LIB" -lcudart -lcublasLt)
  local fe_inc=""
  for d in "$DEPS/include" "$(python3 -c "import importlib.util,os; s=importlib.util.find_spec('cudnn'); print(os.path.join(os.path.dirname(os.path.dirname(s.origin)),'include'))" 2>/dev/null)"; do
    [[ -n $d && -f $d/cudnn_frontend.h ]] && fe_inc=$d && break
  done
  if [[ -n $CUDNN_INC && -n $CUDNN_LIB && -n $fe_inc ]]; then
    defs+=(-DLCT_HAVE_CUDNN=1 -DLCT_HAVE_CUDNN_FRONTEND=1); incs+=(-isystem "$CUDNN_INC" -isystem "$fe_inc")
    libs+=(-ldl)  # libcudnn.so.9 is loaded at run time (LD_LIBRARY_PATH)
    export LD_LIBRARY_PATH=$CUDNN_LIB:$LD_LIBRARY_PATH
  else
    log "cuDNN attention path off (cuDNN: ${CUDNN_INC:-none}, cudnn-frontend headers: ${fe_inc:-none})"
  fi
  local cxx=(g++ -std=c++17 -O2 -march=native -fopenmp -Wall -Wextra -Wno-unknown-pragmas "${defs[@]}" "${incs[@]}")
  local srcs=("$ROOT"/src/core/*.cpp "$ROOT"/src/ops/*.cpp "$ROOT"/src/ops/cpu/*.cpp "$ROOT"/cuda/cuda_ops.cpp
              "$ROOT"/cuda/device.cpp "$ROOT"/cuda/gemm.cpp "$ROOT"/cuda/cudnn_attention.cpp
              "$ROOT"/tests/support/test_main_plain.cpp "$ROOT"/tests/support/test_util.cpp
              "$ROOT"/tests/gpu/test_cuda_ops.cpp "$ROOT"/tests/gpu/bench_cuda.cpp)
  log "direct build: ${#srcs[@]} C++ files + 3 .cu files (sm_90), $JOBS jobs"
  export O ROOT
  {
    for s in "${srcs[@]}"; do
      echo "${cxx[*]} -DLCT_TEST_SOURCE_DIR='\"$ROOT\"' -DLCT_TEST_BINARY_DIR='\"$O\"' -c $s -o $O/$(basename "$s").o"
    done
    for s in "$ROOT"/cuda/*.cu; do
      echo "$NVCC -std=c++17 -O3 -arch=sm_90 -lineinfo -Xcompiler=-Wall,-Wextra -DLCT_HAVE_CUDA=1 -I$ROOT/src -I$ROOT -c $s -o $O/$(basename "$s").o"
    done
  } >"$O/commands.txt"
  xargs -d '\n' -P "$JOBS" -I{} sh -c '{}' <"$O/commands.txt" >"$OUTDIR/build.log" 2>&1 || {
    log "direct build failed (tail of build.log):"; tail -30 "$OUTDIR/build.log"; return 1; }
  local lib_objs=()
  for o in "$O"/*.o; do
    case $(basename "$o") in test_cuda_ops.cpp.o|bench_cuda.cpp.o|test_main_plain.cpp.o|test_util.cpp.o) ;; *) lib_objs+=("$o") ;; esac
  done
  g++ -fopenmp -o "$O/test_cuda_ops" "$O/test_cuda_ops.cpp.o" "$O/test_main_plain.cpp.o" "$O/test_util.cpp.o" \
    "${lib_objs[@]}" "$gtest_lib" "${libs[@]}" -lpthread >>"$OUTDIR/build.log" 2>&1 &&
  g++ -fopenmp -o "$O/bench_cuda" "$O/bench_cuda.cpp.o" "${lib_objs[@]}" "${libs[@]}" -lpthread >>"$OUTDIR/build.log" 2>&1 || {
    log "direct link failed (tail of build.log):"; tail -30 "$OUTDIR/build.log"; return 1; }
  TEST_BIN=$O/test_cuda_ops BENCH_BIN=$O/bench_cuda PATH_USED=direct
}

# LCT_GPU_DIRECT=1 skips the CMake attempt.
if [[ ${LCT_GPU_DIRECT:-0} == 1 ]] || ! cmake_build; then
  direct_build || { log "BUILD FAILED"; exit 1; }
fi
grep -E "warning" "$OUTDIR/build.log" | grep -v "deprecated-gpu-targets" | head -20 | sed 's/^/build warning: /'
log "built ($PATH_USED): $TEST_BIN, $BENCH_BIN"

# ---- GPU tests --------------------------------------------------------------------------------
log "GPU tests"
test_rc=0
if [[ $PATH_USED == cmake ]]; then
  (cd "$BUILD/cmake" && timeout 200 ctest -L gpu --output-on-failure -j1) >"$OUTDIR/tests.log" 2>&1 || test_rc=$?
fi
OMP_NUM_THREADS=$JOBS timeout 200 "$TEST_BIN" >"$OUTDIR/test_cuda_ops.log" 2>&1 || test_rc=$?
grep -E "^\[       OK|^\[  FAILED  \].*ms\)$|Failure|Expected|actual|Which is|error:|threw|terminate|Skipped|no usable GPU" "$OUTDIR/test_cuda_ops.log" | sort -u | head -60

# ---- benchmarks -------------------------------------------------------------------------------
remaining=$(left)
bench_rc=0
if ((remaining > 60)); then
  log "benchmarks (${remaining}s left)"
  quick=()
  ((remaining < 200)) && quick=(--quick)
  timeout $((remaining - 10)) "$BENCH_BIN" "${quick[@]}" --json "$OUTDIR/bench.json" 2>&1 | tee "$OUTDIR/bench.txt"
  bench_rc=${PIPESTATUS[0]}
else
  log "no time left for the benchmarks"
fi

# ---- summary ----------------------------------------------------------------------------------
echo
echo "==================== summary (tests/gpu/run.sh, $((SECONDS - T0)) s) ===================="
echo "build: $PATH_USED, sm_90"
passed=$(grep -cE "^\[       OK \].*ms\)$" "$OUTDIR/test_cuda_ops.log")
failed=$(grep -cE "^\[  FAILED  \].*ms\)$" "$OUTDIR/test_cuda_ops.log")
skipped=$(grep -cE "^\[  SKIPPED \].*ms\)$" "$OUTDIR/test_cuda_ops.log")
echo "tests: $passed passed, $failed failed, $skipped skipped (exit $test_rc)"
grep -E "^\[  FAILED  \].*ms\)$" "$OUTDIR/test_cuda_ops.log" | sed 's/^/  /'
[[ -f $OUTDIR/bench.txt ]] && grep -E "^(gemm|attn|step) " "$OUTDIR/bench.txt" | sed 's/^/  /'
echo "bench exit: $bench_rc; files in $OUTDIR"
[[ $test_rc == 0 && $bench_rc == 0 ]]
