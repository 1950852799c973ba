#!/usr/bin/env python3
"""compare_losses.py RUN REF [--tol 0.02] [--steps A:B] [--name NAME]: the per-step loss of a run
(RUN: its metrics.jsonl, or a reference JSON with a "loss" list) against a reference (same forms),
|difference| <= tol at every compared step. Prints one line per step and a verdict; exit 1 on a
miss or a missing step. Steps are 1-based global step numbers."""
import argparse, json, sys


def losses(path):
    if path.endswith(".json"):
        d = json.load(open(path))
        return {i + 1: v for i, v in enumerate(d["loss"])}
    out = {}
    for line in open(path):
        r = json.loads(line)
        if "event" not in r and "step" in r:
            out[int(r["step"])] = float(r["loss"])
    return out


ap = argparse.ArgumentParser()
ap.add_argument("run")
ap.add_argument("ref")
ap.add_argument("--tol", type=float, default=0.02)
ap.add_argument("--steps", default="")
ap.add_argument("--name", default="")
a = ap.parse_args()
run, ref = losses(a.run), losses(a.ref)
lo, hi = (int(x) for x in a.steps.split(":")) if a.steps else (min(ref), max(ref))
worst, ok = 0.0, True
for s in range(lo, hi + 1):
    if s not in run or s not in ref:
        print(f"  step {s}: missing ({'run' if s not in run else 'reference'})")
        ok = False
        continue
    d = abs(run[s] - ref[s])
    worst = max(worst, d)
    ok = ok and d <= a.tol
    print(f"  step {s:3d}: {run[s]:.5f} vs {ref[s]:.5f}  |diff| {d:.5f}{'' if d <= a.tol else '  > tol'}")
print(f"{a.name or a.run}: steps {lo}..{hi}, worst |loss diff| {worst:.5f} (tol {a.tol}): {'PASS' if ok else 'FAIL'}")
sys.exit(0 if ok else 1)
