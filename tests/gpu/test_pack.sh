#!/usr/bin/env bash
# CTest gpu_pack_rehearsal: makes the GPU pack (tests/gpu/pack.sh) from this build and uses it as
# the bare GPU image would, under `env -i` with only the pack's environment:
#   1. ldd of every packed program and plugin resolves each library inside the pack, to glibc,
#      or to CUDA's own libraries (which the GPU machine has); nothing is "not found";
#   2. `mpirun -np 2 lctrain` (packed OpenMPI, cpu backend, cp 2) trains 3 steps of the check's
#      tiny deck on the packed data, and LD_DEBUG=files shows every object any process loaded
#      (programs, OpenMPI/PMIx/hwloc plugins included) came from those same places;
#   3. the compressed pack plus the working tree fit the device tool's 64 MiB.
set -euo pipefail
BUILD=${LCT_BINARY_DIR:?}
SRC=${LCT_SOURCE_DIR:?}
W=$BUILD/tests/pack_rehearsal
rm -rf "$W" && mkdir -p "$W"
bash "$SRC/tests/gpu/pack.sh" "$BUILD" "$W/pack" >"$W/pack.log" 2>&1 || { cat "$W/pack.log"; exit 1; }
P=$W/pack
allowed() {  # a resolved library path is fine if it is in the pack, glibc, or CUDA's
  local f=$1 b
  b=$(basename "$f")
  [[ $f == "$P"/* ]] && return 0
  [[ $b =~ ^(libc|libm|libpthread|libdl|librt|libresolv|libutil|ld-linux-x86-64)\.so ]] && return 0
  [[ $b =~ ^lib(cuda|cudart|cublas|cublasLt|cudnn.*|nccl|nvrtc|nvJitLink)\.so ]] && return 0
  return 1
}
fail=0
while read -r obj; do
  out=$(env -i PATH=/usr/bin:/bin bash -c "source '$P/env.sh'; ldd '$obj'" 2>&1 || true)
  if grep -q "not found" <<<"$out"; then echo "FAIL $obj: $(grep 'not found' <<<"$out" | tr -s ' \t' ' ')"; fail=1; fi
  while read -r lib; do
    allowed "$lib" || { echo "FAIL $obj resolves $lib outside the pack"; fail=1; }
  done < <(awk '$2 == "=>" && $3 ~ /^\// {print $3}' <<<"$out")
done < <(find "$P/bin" "$P/lib" -type f \( -perm -u+x -o -name '*.so*' \) ! -name '*.sh' ! -name commit)
echo "ldd: every program and plugin checked"

rm -rf "$W/run"
env -i PATH=/usr/bin:/bin HOME="$W" bash -c "source '$P/env.sh'; cd '$W'; LD_DEBUG=files LD_DEBUG_OUTPUT='$W/ld' \
  mpirun --bind-to none -np 2 lctrain '$SRC/tests/gpu/decks/tiny.deck' --run.device=cpu --run.out_dir='$W/run' \
  --data.train='$P/data/gpu_data.h5' --train.steps=3 --parallel.cp=2" >"$W/run.log" 2>&1 || {
  tail -30 "$W/run.log"; echo "FAIL: the packed mpirun lctrain did not run"; exit 1; }
grep -q '"step": 3' "$W/run/metrics.jsonl" || { echo "FAIL: no step 3 in metrics.jsonl"; exit 1; }
n=0
while read -r lib; do
  n=$((n + 1))
  allowed "$lib" || { echo "FAIL: a process loaded $lib from outside the pack"; fail=1; }
done < <(grep -ho 'file=/[^ ;]*' "$W"/ld.* | sed 's/^file=//' | sort -u)
((n > 20)) || { echo "FAIL: LD_DEBUG listed only $n objects: the loader trace did not work"; fail=1; }
echo "run: mpirun -np 2 lctrain from the pack trained 3 steps; $n loaded objects checked"

tar -C "$W" -cJf "$W/pack.tar.xz" pack
tree=$(cd "$SRC" && git ls-files -z 2>"$W/git.err" | xargs -0 -r stat -c %s 2>/dev/null | awk '{s+=$1} END {print s+0}') || true
[[ ${tree:-0} -gt 0 ]] || { echo "FAIL: cannot size the working tree: $(cat "$W/git.err")"; exit 1; }
bytes=$(($(stat -c %s "$W/pack.tar.xz") + tree))
echo "pack.tar.xz + working tree: $((bytes / 1048576)) MiB (limit 64)"
((bytes < 64 * 1048576)) || { echo "FAIL: over the device tool's 64 MiB"; fail=1; }
exit $fail
