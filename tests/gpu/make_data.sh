#!/usr/bin/env bash
# tests/gpu/make_data.sh LCDATA OUT_DIR: the GPU check's data, deterministic (fixed seeds):
#   OUT_DIR/gpu_data.h5      synthetic needle-in-a-haystack documents of 256 tokens (vocabulary 256)
#   OUT_DIR/bench_tokens.bin 400K random Llama-3 ids as an llm.c Llama-3 shard (the 1B bench)
set -euo pipefail
"$1" synth --task niah --length 256 --docs 600 --seed 11 --out "$2/gpu_data.h5" >/dev/null
python3 - "$2/bench_tokens.bin" <<'PY'
import random, struct, sys
n = 400_000
rng = random.Random(5)
header = [20240801, 7, n] + [0] * 253          # llm.c Llama-3 shard: magic, version, token count
with open(sys.argv[1], "wb") as f:
    f.write(struct.pack("<256i", *header))
    f.write(struct.pack("<%dI" % n, *(rng.randrange(128256) for _ in range(n))))
PY
