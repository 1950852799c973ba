#!/usr/bin/env bash
# Puts the cudnn-frontend C++ headers (header-only; the cuDNN attention path is written against
# them) into DEST/include, from the pinned PyPI wheel nvidia-cudnn-frontend: `pip download` only
# (nothing is installed into any Python), the wheel's sha256 checked, its include/ unpacked.
# Called by CMake at configure time (cuda/CMakeLists.txt) with DEST = <build>/_deps/cudnn-frontend;
# a no-op when DEST already holds this version. Needs python3 with pip and network to PyPI.
# Usage: tools/fetch_cudnn_frontend.sh DEST
set -euo pipefail

version=1.32.0
# The cp311 manylinux x86_64 wheel (the headers are the same in every wheel of a version; one
# fixed file keeps the fetch reproducible whatever the local Python is).
sha256=c6006556017a4d1c914c52a556c71b1267f2d6a0500f742e7b4edef539878df0

dest=${1:?usage: fetch_cudnn_frontend.sh DEST}
if [[ -f $dest/include/cudnn_frontend.h && "$(cat "$dest/VERSION" 2>/dev/null)" == "$version" ]]; then
  exit 0
fi
command -v python3 >/dev/null || { echo "fetch_cudnn_frontend: python3 (with pip) is needed" >&2; exit 1; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
python3 -m pip download --quiet --no-deps --only-binary=:all: --implementation cp --python-version 3.11 \
  --platform manylinux_2_28_x86_64 --dest "$tmp" "nvidia-cudnn-frontend==$version" >&2
wheel=$(ls "$tmp"/nvidia_cudnn_frontend-"$version"-*.whl)
echo "$sha256  $wheel" | sha256sum --check --quiet - ||
  { echo "fetch_cudnn_frontend: $wheel does not have the pinned sha256" >&2; exit 1; }

rm -rf "$dest"
mkdir -p "$dest"
python3 - "$wheel" "$dest" <<'EOF'
import sys, zipfile
wheel, dest = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(wheel) as z:
    members = [n for n in z.namelist() if n.startswith("include/")]
    if not any(n == "include/cudnn_frontend.h" for n in members):
        sys.exit("fetch_cudnn_frontend: the wheel has no include/cudnn_frontend.h")
    z.extractall(dest, members)
EOF
echo "$version" >"$dest/VERSION"
echo "fetch_cudnn_frontend: cudnn-frontend $version headers in $dest/include"
