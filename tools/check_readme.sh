#!/usr/bin/env bash
# The README cannot rot: runs every ```sh block of README.md as written, in a scratch copy of the
# repository as a fresh clone has it (the tracked files, with uncommitted edits), each block with
# `bash -e -x` from the copy's root. CI runs it after `make test` and `make run` (.ci/run), so:
#   - the lines `make test` and `make run` are not run again here (CI has just run them);
#   - `make` reuses the build CI has just made (BUILD=<that build>): it only checks it is current
#     and links bin/ and ./lctrain in the copy.
# About half a minute on 2 cores. Exit status: 0 when every block ran, else the failing command's.
#
# usage: tools/check_readme.sh [BUILD_DIR]      (default: build, as `make` names it)
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$src/build}
[ -d "$build" ] || { echo "check_readme: no build in $build; run make first (or give the build folder)" >&2; exit 2; }
build=$(cd "$build" && pwd)
if [ "$(id -u)" = 0 ]; then  # the README says so too
  export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
fi
export BUILD=$build

scratch=$(mktemp -d "${TMPDIR:-/tmp}/lct-readme.XXXXXX")
repo=$scratch/repo
mkdir -p "$repo"
# The tracked files as they are now: `git stash create` makes a commit of the working tree without
# touching anything (empty output when it is clean).
ref=$(git -C "$src" stash create)
git -C "$src" archive "${ref:-HEAD}" | tar -x -C "$repo"

awk -v dir="$scratch" '/^```sh[ \t]*$/ {n++; f = 1; next} /^```[ \t]*$/ {f = 0; next} f {print > (dir "/block" n ".sh")}' \
  "$repo/README.md"
blocks=$(find "$scratch" -maxdepth 1 -name 'block*.sh' | wc -l)
[ "$blocks" -gt 0 ] || { echo "check_readme: no \`\`\`sh blocks in README.md" >&2; exit 1; }

t0=$(date +%s)
ran=0
for ((b = 1; b <= blocks; b++)); do
  f=$scratch/block$b.sh
  skip='^make (test|run)([[:space:]]|$)'
  while IFS= read -r line; do
    echo "check_readme: block $b: not run again (.ci/run has just run it): $line"
  done < <(grep -E "$skip" "$f" || true)
  n=$(grep -vE "$skip" "$f" | grep -cvE '^[[:space:]]*(#|$)' || true)
  [ "$n" -gt 0 ] || continue
  # Each command is echoed before it runs (set -x; bash takes PS4 from the script, not from the
  # environment, when run as root).
  { echo "PS4='+ README block $b: '"; echo "set -x"; grep -vE "$skip" "$f"; } >"$scratch/run$b.sh"
  echo "check_readme: block $b ($n command(s)), in $repo"
  if ! (cd "$repo" && bash -e "$scratch/run$b.sh"); then
    echo "check_readme: FAILED in README.md block $b (the command after the last '+ README block $b:' line)." >&2
    echo "check_readme: the copy is kept in $repo" >&2
    exit 1
  fi
  ran=$((ran + n))
done
echo "check_readme: README.md: $ran command(s) in $blocks block(s) ran as written ($(($(date +%s) - t0)) s)"
rm -rf "$scratch"
