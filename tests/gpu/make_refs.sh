#!/usr/bin/env bash
# tests/gpu/make_refs.sh [BUILD_DIR]: the cpu backend's loss curves that the GPU check compares
# with (tests/gpu/ref/<deck>_cpu.json: loss and grad_norm per step), from the decks in
# tests/gpu/decks on the data of tests/gpu/make_data.sh. Run on the build machine whenever those
# decks, the data or the model's numerics change; commit the JSON files.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BUILD=$(cd "${1:-$ROOT/build}" && pwd)
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
bash "$ROOT/tests/gpu/make_data.sh" "$BUILD/bin/lcdata" "$W"
for deck in tiny llama100m; do
  "$BUILD/bin/lctrain" "$ROOT/tests/gpu/decks/$deck.deck" --run.out_dir="$W/$deck" --data.train="$W/gpu_data.h5" \
    --run.device=cpu >"$W/$deck.log" 2>&1 || { cat "$W/$deck.log"; exit 1; }
  python3 - "$W/$deck/metrics.jsonl" "$ROOT/tests/gpu/ref/${deck}_cpu.json" "$deck" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if '"step"' in l and '"event"' not in l]
out = {"deck": "tests/gpu/decks/%s.deck" % sys.argv[3], "device": "cpu (fp32)",
       "made_by": "tests/gpu/make_refs.sh", "loss": [r["loss"] for r in rows],
       "grad_norm": [r["grad_norm"] for r in rows]}
json.dump(out, open(sys.argv[2], "w"), indent=1)
print(sys.argv[3], "steps", len(rows), "loss", rows[0]["loss"], "->", rows[-1]["loss"])
PY
done
