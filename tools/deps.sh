#!/usr/bin/env bash
# Installs the Debian packages lctrain needs when they are missing (as root), or prints the exact
# command to run (as non-root) and fails. Usage: tools/deps.sh [extra-group...]
#   groups: build (default), slurm (the SLURM test harness), python (the project's Python: .venv at
#   the repository root with tools/requirements.txt from PyPI, for the tests and `make run`)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)

build_pkgs=(cmake g++ make pkg-config openmpi-bin libopenmpi-dev libhdf5-openmpi-dev hdf5-tools
            libeigen3-dev libboost-program-options-dev nlohmann-json3-dev libgtest-dev libbenchmark-dev)
slurm_pkgs=(slurm-wlm munge)
python_pkgs=(python3 python3-venv)

# .venv: made from Debian's python3 when there is one (what python3-venv serves), else from python3.
# Re-made when tools/requirements.txt changed. A failed pip install only warns: the tests that need
# it then skip, and with CI=true `make test` fails on those skips (tools/run_ctest.sh).
make_venv() {
  local venv=$root/.venv req=$root/tools/requirements.txt base=python3
  if [ -x "$venv/bin/python3" ] && cmp -s "$req" "$venv/.lct-requirements"; then return 0; fi
  [ -x /usr/bin/python3 ] && base=/usr/bin/python3
  echo "deps.sh: making $venv ($base -m venv; pip install -r tools/requirements.txt)"
  rm -rf "$venv"
  if "$base" -m venv "$venv" && "$venv/bin/pip" install -q --disable-pip-version-check -r "$req"; then
    cp "$req" "$venv/.lct-requirements"
  else
    echo "deps.sh: WARNING: could not install the Python packages into $venv; tests that need them skip" >&2
  fi
}

groups=("$@")
[ ${#groups[@]} -eq 0 ] && groups=(build)
want=()
for g in "${groups[@]}"; do
  case "$g" in
    build) want+=("${build_pkgs[@]}") ;;
    slurm) want+=("${slurm_pkgs[@]}") ;;
    python) want+=("${python_pkgs[@]}") ;;
    *) echo "deps.sh: unknown group '$g' (build|slurm|python)" >&2; exit 2 ;;
  esac
done

missing=()
for p in "${want[@]}"; do
  # GoogleTest may come from the googletest source package instead of libgtest-dev.
  if [ "$p" = libgtest-dev ] && [ -f /usr/include/gtest/gtest.h ]; then continue; fi
  if [ "$p" = libbenchmark-dev ] && [ -f /usr/include/benchmark/benchmark.h ]; then continue; fi
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

venv_if_wanted() { if [[ " ${groups[*]} " == *" python "* ]]; then make_venv; fi; }
if [ ${#missing[@]} -eq 0 ]; then venv_if_wanted; exit 0; fi

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
venv_if_wanted
