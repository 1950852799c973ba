#!/usr/bin/env bash
# Every generated block in docs/*.md equals what tools/doc_blocks.py makes from its inputs (lctrain
# --plan runs, committed results under docs/perf/). Fails with the diff and how to refresh.
set -euo pipefail
py=python3
[ -x "$LCT_SOURCE_DIR/.venv/bin/python3" ] && py=$LCT_SOURCE_DIR/.venv/bin/python3
exec "$py" "$LCT_SOURCE_DIR/tools/doc_blocks.py" check --bin "$LCT_BIN"
