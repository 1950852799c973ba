# Sourced by the GPU scripts: puts CUDA's libraries (cudart, cuBLAS(Lt), cuDNN, NCCL) on
# LD_LIBRARY_PATH, from the toolkit or from the pip wheels PyTorch ships (the GPU image has both
# kinds; the pack carries neither). Prints where each one came from.
lct_cuda_dirs() {
  local sp
  sp=$(python3 -c 'import site; print(" ".join(site.getsitepackages()))' 2>/dev/null)
  local lib d found
  for lib in libcudart.so.13 libcublasLt.so.13 libcublas.so.13 libnccl.so.2 libcudnn.so.9; do
    found=""
    for d in /usr/local/cuda/lib64 /usr/local/cuda/lib /usr/local/cuda/targets/x86_64-linux/lib /usr/lib/x86_64-linux-gnu; do
      [[ -e $d/$lib ]] && found=$d && break
    done
    if [[ -z $found && -n $sp ]]; then
      found=$(find $sp -path '*nvidia*' -name "$lib" 2>/dev/null | head -1)
      found=${found:+$(dirname "$found")}
    fi
    echo "cuda_env: $lib: ${found:-NOT FOUND}" >&2
    [[ -n $found ]] && echo "$found"
  done | sort -u | tr '\n' ':'
}
LCT_CUDA_LIBDIRS=$(lct_cuda_dirs)
export LD_LIBRARY_PATH=${LCT_CUDA_LIBDIRS}${LD_LIBRARY_PATH:-}
