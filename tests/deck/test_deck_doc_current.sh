#!/usr/bin/env bash
# docs/deck.md is generated from the schema that --help prints; this fails when a key was added or
# changed without regenerating it (`make docs`).
set -u
out=$(mktemp)
trap 'rm -f "$out"' EXIT
"$LCT_BIN/lctrain" --help-markdown > "$out" || { echo "lctrain --help-markdown failed"; exit 1; }
if ! diff -u "$LCT_SOURCE_DIR/docs/deck.md" "$out"; then
  echo "docs/deck.md is out of date with the deck schema: run 'make docs' and commit docs/deck.md"
  exit 1
fi
echo "docs/deck.md matches lctrain --help-markdown ($(wc -l < "$out") lines)"
