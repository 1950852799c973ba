#!/usr/bin/env python3
"""Writes a synthetic llm.c token shard of uniformly random ids (for throughput runs only).

usage: make_tokens.py OUT --vocab V --tokens N [--seed S]
Header: 256 little-endian int32 (magic 20240520, version 1, token count, zeros), then uint16 ids
(vocab <= 65536) -- the GPT-2 llm.c layout that lctrain's data.format = auto reads.
"""
import argparse
import os
import random
import struct
import sys


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out")
    ap.add_argument("--vocab", type=int, required=True)
    ap.add_argument("--tokens", type=int, required=True)
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    if not 2 <= a.vocab <= 65536:
        sys.exit(f"make_tokens.py: --vocab {a.vocab} must be in [2, 65536] (uint16 llm.c shard)")
    if a.tokens < 1:
        sys.exit("make_tokens.py: --tokens must be >= 1")
    rng = random.Random(a.seed)
    header = struct.pack("<256i", 20240520, 1, a.tokens, *([0] * 253))
    tmp = a.out + ".tmp"
    with open(tmp, "wb") as f:
        f.write(header)
        left = a.tokens
        while left:
            n = min(left, 1 << 20)
            f.write(struct.pack(f"<{n}H", *(rng.randrange(a.vocab) for _ in range(n))))
            left -= n
    os.replace(tmp, a.out)


if __name__ == "__main__":
    main()
