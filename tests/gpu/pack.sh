#!/usr/bin/env bash
# tests/gpu/pack.sh BUILD_DIR PACK_DIR: packs what the GPU check runs, built HERE, so that nothing
# is compiled on the GPU machine (a bare image: nvcc, CUDA libraries and PyTorch, but no MPI,
# HDF5 or Boost). The pack holds
#   bin/    lctrain, lcdata, lcconvert, the GPU test and benchmark programs, OpenMPI's mpirun/orted
#   lib/    every non-glibc, non-CUDA shared library they load (the ldd closure), OpenMPI's and
#           PMIx's plugins (lib/openmpi3, lib/pmix) and the closure of those
#   share/  OpenMPI's help texts; etc/ its MCA parameter file
#   env.sh  sets PATH, LD_LIBRARY_PATH and OpenMPI's install-directory variables to the pack
# CUDA's own libraries (cudart, cuBLAS(Lt), cuDNN, NCCL, the driver) are NOT packed: the GPU
# machine has them (toolkit or pip wheels); tests/gpu/cuda_env.sh finds them there.
# tests/gpu/test_pack.sh rehearses the pack here under `env -i`.
set -euo pipefail

BUILD=$(cd "${1:?usage: pack.sh BUILD_DIR PACK_DIR}" && pwd)
PACK=${2:?usage: pack.sh BUILD_DIR PACK_DIR}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
rm -rf "$PACK"
mkdir -p "$PACK"/{bin,lib/openmpi3,lib/pmix,lib/hwloc,share,etc}
PACK=$(cd "$PACK" && pwd)

# ---- programs ------------------------------------------------------------------------------
progs=("$BUILD/bin/lctrain" "$BUILD/bin/lcdata" "$BUILD/bin/lcconvert")
for t in test_cuda_ops bench_cuda test_comm_conformance; do
  [[ -x $BUILD/tests/$t ]] && progs+=("$BUILD/tests/$t")
done
for p in "${progs[@]}"; do
  [[ -x $p ]] || { echo "pack.sh: $p is missing: build it first (cmake --build $BUILD)" >&2; exit 1; }
  cp "$p" "$PACK/bin/"
done
strip --strip-debug "$PACK"/bin/* 2>/dev/null || true

# ---- OpenMPI (Debian layout, found through ompi_info) ----------------------------------------
ompi_path() { ompi_info --path "$1" --parsable | sed -n "s/^path:$1://p"; }
OMPI_BIN=$(dirname "$(readlink -f "$(command -v orterun || command -v mpirun)")")
cp "$(readlink -f "$OMPI_BIN/orterun")" "$PACK/bin/orterun"
ln -s orterun "$PACK/bin/mpirun"
cp "$(readlink -f "$OMPI_BIN/orted")" "$PACK/bin/orted"
cp "$(readlink -f "$(command -v ompi_info)")" "$PACK/bin/ompi_info"
PKGLIB=$(ompi_path pkglibdir)
PKGDATA=$(ompi_path pkgdatadir)
SYSCONF=$(ompi_path sysconfdir)
# Plugins for fabrics a one-node run does not use (InfiniBand verbs, UCX, OFI, PSM) and OpenSHMEM
# pull in large libraries: leave them out (env.sh selects the shared-memory and TCP transports).
skip_plugin() {
  local deps
  deps=$(ldd "$1" 2>/dev/null || true)
  grep -qE 'libucp|libucs|libfabric|libibverbs|libpsm|libinfinipath|librdmacm|libnl-|liboshmem' <<<"$deps"
}
for so in "$PKGLIB"/*.so; do
  skip_plugin "$so" || cp "$so" "$PACK/lib/openmpi3/"
done
PMIX_PLUGINS=$(dirname "$(readlink -f "$(ldconfig -p | awk '/libpmix.so.2 /{print $NF; exit}')")")/pmix
[[ -d $PMIX_PLUGINS ]] || PMIX_PLUGINS=$(ls -d /usr/lib/x86_64-linux-gnu/pmix*/lib/pmix 2>/dev/null | head -1)
for so in "$PMIX_PLUGINS"/*.so; do
  skip_plugin "$so" || cp "$so" "$PACK/lib/pmix/"
done
cp -r "$PKGDATA" "$PACK/share/openmpi"
cp "$SYSCONF"/openmpi-mca-params.conf "$PACK/etc/" 2>/dev/null || touch "$PACK/etc/openmpi-mca-params.conf"

# ---- the library closure -----------------------------------------------------------------------
# glibc and CUDA stay outside; everything else a packed program or plugin loads comes along.
is_system() { [[ $(basename "$1") =~ ^(libc|libm|libpthread|libdl|librt|libresolv|libutil|ld-linux-x86-64|linux-vdso)\.so ]]; }
is_cuda() { [[ $(basename "$1") =~ ^lib(cuda|cudart|cublas|cublasLt|cudnn.*|nccl|nvrtc|nvJitLink)\.so ]]; }
declare -A seen=()
queue=("$PACK"/bin/* "$PACK"/lib/openmpi3/*.so "$PACK"/lib/pmix/*.so)
while ((${#queue[@]})); do
  f=${queue[0]}
  queue=("${queue[@]:1}")
  [[ -L $f ]] && continue
  while read -r name path; do
    [[ -n $path && -e $path ]] || continue
    if is_system "$path" || is_cuda "$path"; then continue; fi
    [[ -n ${seen[$name]:-} ]] && continue
    seen[$name]=1
    cp -L "$path" "$PACK/lib/$name"
    queue+=("$PACK/lib/$name")
  done < <(ldd "$f" 2>/dev/null | awk '$2 == "=>" && $3 ~ /^\// {print $1, $3}')
done

# ---- the check's data and the cpu checkpoint it resumes on the GPU -----------------------------
mkdir -p "$PACK/data"
bash "$ROOT/tests/gpu/make_data.sh" "$BUILD/bin/lcdata" "$PACK/data"
TMPRUN=$(mktemp -d)
OMP_NUM_THREADS=${OMP_NUM_THREADS:-2} "$BUILD/bin/lctrain" "$ROOT/tests/gpu/decks/tiny.deck" --run.device=cpu \
  --run.out_dir="$TMPRUN" --data.train="$PACK/data/gpu_data.h5" --train.steps=20 >"$TMPRUN.log" 2>&1 ||
  { cat "$TMPRUN.log"; exit 1; }
cp "$TMPRUN/checkpoints/step_00000010.h5" "$PACK/data/tiny_cpu_step10.h5"
rm -rf "$TMPRUN" "$TMPRUN.log"

# ---- environment ---------------------------------------------------------------------------
cat >"$PACK/env.sh" <<'EOF'
# Source this to use the pack: its programs, libraries and OpenMPI installation.
P=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
export PATH=$P/bin:$PATH
export LD_LIBRARY_PATH=$P/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
# OpenMPI reads its install directories from these (opal installdirs "env" component).
export OPAL_PREFIX=$P OPAL_EXEC_PREFIX=$P OPAL_BINDIR=$P/bin OPAL_SBINDIR=$P/bin OPAL_LIBEXECDIR=$P/bin
export OPAL_LIBDIR=$P/lib OPAL_PKGLIBDIR=$P/lib/openmpi3 OPAL_DATAROOTDIR=$P/share OPAL_DATADIR=$P/share
export OPAL_PKGDATADIR=$P/share/openmpi OPAL_SYSCONFDIR=$P/etc OPAL_INCLUDEDIR=$P/include
export OMPI_MCA_mca_base_component_path=$P/lib/openmpi3 PMIX_MCA_mca_base_component_path=$P/lib/pmix
export PMIX_PREFIX=$P PMIX_PKGLIBDIR=$P/lib/pmix PMIX_MCA_pmix_mca_base_component_path=$P/lib/pmix
export HWLOC_PLUGINS_PATH=$P/lib/hwloc  # none: hwloc's GL/OpenCL/PCI plugins are optional
export OMPI_MCA_mca_base_param_files=$P/etc/openmpi-mca-params.conf
# One node, shared memory and loopback TCP only; no single-copy mechanism (CMA/XPMEM is refused
# under gVisor and in many containers).
export OMPI_MCA_btl=self,vader,tcp OMPI_MCA_btl_tcp_if_include=lo OMPI_MCA_oob_tcp_if_include=lo
export OMPI_MCA_btl_vader_single_copy_mechanism=none OMPI_MCA_pml=ob1
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
EOF
(cd "$PACK" && git -C "$ROOT" rev-parse HEAD >commit 2>/dev/null || true)
du -sh "$PACK" | sed 's/^/pack: /'
