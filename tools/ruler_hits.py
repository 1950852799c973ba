#!/usr/bin/env python3
"""Reads the RULER prediction files of an evaluation (lctrain --eval writes
<out_dir>/ruler_<task>[_control][_stageN].jsonl, docs/longctx.md section 2b) and prints, per file,
the mean score, the hit rate of each reference position (fwe's references are in frequency order,
most frequent first; cwe's are in RULER's sampled order, which carries no meaning), how many words
an answer holds among its first K (K = the number of references; words split at commas and spaces),
how many of those repeat an earlier word and how many are references, and a few generated texts.

usage: tools/ruler_hits.py DIR [--tasks cwe,fwe] [--samples 3]
"""
import argparse
import glob
import json
import os
import re


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("dir")
    ap.add_argument("--tasks", default="", help="comma-separated task names (default: every file)")
    ap.add_argument("--samples", type=int, default=3, help="generated texts shown per file")
    a = ap.parse_args()
    files = sorted(glob.glob(os.path.join(a.dir, "ruler_*.jsonl")))
    wanted = [t for t in a.tasks.split(",") if t]
    if wanted:
        files = [f for f in files if any(os.path.basename(f).startswith(f"ruler_{t}") and
                                         os.path.basename(f)[len(f"ruler_{t}")] in "._" for t in wanted)]
    if not files:
        raise SystemExit(f"ruler_hits: no ruler_*.jsonl in {a.dir}")
    for f in files:
        rows = [json.loads(line) for line in open(f, encoding="utf-8") if line.strip()]
        if not rows:
            print(f"{os.path.basename(f)}: empty")
            continue
        n = max(len(r["hits"]) for r in rows)
        rate = [sum(r["hits"][k] for r in rows if k < len(r["hits"])) / len(rows) for k in range(n)]
        mean = sum(r["score"] for r in rows) / len(rows)
        words = repeats = refs = 0
        for r in rows:
            w = [x for x in re.split(r"[,\s]+", r["pred"].lower()) if x][:len(r["outputs"])]
            words += len(w)
            repeats += len(w) - len(set(w))
            refs += len(set(w) & {x.lower() for x in r["outputs"]})
        print(f"{os.path.basename(f)}: {len(rows)} prompts, mean {100 * mean:.1f}%, hit rate by reference position "
              + " ".join(f"{100 * p:.0f}%" for p in rate))
        print(f"    first {n} words of an answer: {words / len(rows):.1f} written, "
              f"{100 * repeats / max(words, 1):.0f}% of them repeats, {refs / len(rows):.1f} distinct references")
        for r in rows[:a.samples]:
            print(f"    {r['pred'][:110]!r}  references {', '.join(r['outputs'])}")


if __name__ == "__main__":
    main()
