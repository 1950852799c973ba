#!/usr/bin/env bash
# Installs the Debian packages lctrain needs when they are missing (as root), or prints the exact
# command to run (as non-root) and fails. Usage: tools/deps.sh [extra-group...]
#   groups: build (default), slurm (the SLURM test harness), python (reference-data tools: PyPI)
set -euo pipefail

build_pkgs=(cmake g++ make pkg-config openmpi-bin libopenmpi-dev libhdf5-openmpi-dev hdf5-tools
            libeigen3-dev libboost-program-options-dev nlohmann-json3-dev libgtest-dev libbenchmark-dev)
slurm_pkgs=(slurm-wlm munge)

groups=("$@")
[ ${#groups[@]} -eq 0 ] && groups=(build)
want=()
for g in "${groups[@]}"; do
  case "$g" in
    build) want+=("${build_pkgs[@]}") ;;
    slurm) want+=("${slurm_pkgs[@]}") ;;
    *) echo "deps.sh: unknown group '$g' (build|slurm)" >&2; exit 2 ;;
  esac
done

missing=()
for p in "${want[@]}"; do
  # GoogleTest may come from the googletest source package instead of libgtest-dev.
  if [ "$p" = libgtest-dev ] && [ -f /usr/include/gtest/gtest.h ]; then continue; fi
  if [ "$p" = libbenchmark-dev ] && [ -f /usr/include/benchmark/benchmark.h ]; then continue; fi
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

[ ${#missing[@]} -eq 0 ] && exit 0

if ! command -v apt-get >/dev/null 2>&1; then
  echo "deps.sh: missing packages (${missing[*]}) and no apt-get: see docs/building.md for modules/Spack." >&2
  exit 1
fi
if [ "$(id -u)" != 0 ]; then
  echo "deps.sh: missing Debian packages. Install them with:" >&2
  echo "  sudo apt-get install -y ${missing[*]}" >&2
  exit 1
fi
echo "deps.sh: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq || true
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
