#!/usr/bin/env python3
"""compare_memory.py METRICS PLAN_JSON --ranks-on-device R --baseline-bytes B: a GPU run's memory
against `lctrain --plan` for the same deck (tests/gpu/check.sh, step zero3).
  1. the allocation ledger's peak bytes per category on every rank (metrics.jsonl device_peak_bytes)
     within 10% of the plan's memory_bytes (cuda rounds each allocation to 256 bytes);
  2. what cudaMemGetInfo says is in use at the last step's end, less what was in use before the job
     (B), against R x the plan's device_needed_bytes (allocations + the assumed CUDA context, NCCL
     buffers and workspaces): at most 1.1 x (the plan's margin). The ratio and the overhead per rank
     it implies are printed, to correct the plan's assumed figures (src/parallel/planner.cpp).
Exit 1 when either fails."""
import argparse, json, sys

ap = argparse.ArgumentParser()
ap.add_argument("metrics")
ap.add_argument("plan")
ap.add_argument("--ranks-on-device", type=int, default=1)
ap.add_argument("--baseline-bytes", type=int, default=0)
a = ap.parse_args()
rows = [json.loads(l) for l in open(a.metrics) if '"loss"' in l and '"event"' not in l]
last = rows[-1]
st = json.load(open(a.plan))["stages"][0]
plan = st["memory_bytes"]
ok = True
gib = lambda b: b / 2**30
for cat, want in plan.items():
    if cat == "total":
        continue
    for r, got in enumerate(last["device_peak_bytes"][cat]):
        good = (want == 0 and got == 0) or (want > 0 and abs(got / want - 1) <= 0.10)
        ok = ok and good
        if r == 0 or not good:
            print(f"  {cat:13s} rank {r}: measured {gib(got):8.3f} GiB, plan {gib(want):8.3f} GiB{'' if good else '  > 10%'}")
if max(last["device_used_bytes"]) < 0:
    print("memory vs plan: FAIL (device_used_bytes is -1: not a cuda run)")
    sys.exit(1)
used = max(last["device_used_bytes"]) - a.baseline_bytes
need = a.ranks_on_device * st["device_needed_bytes"]
alloc = a.ranks_on_device * plan["total"]
print(f"  cudaMemGetInfo in use (less {gib(a.baseline_bytes):.3f} GiB before): {gib(used):.3f} GiB for "
      f"{a.ranks_on_device} rank(s); plan {gib(need):.3f} GiB (allocations {gib(alloc):.3f} + overheads); "
      f"ratio {used / need:.3f}; measured overhead per rank {gib((used - alloc) / a.ranks_on_device):.3f} GiB vs "
      f"assumed {gib(st['device_overhead_bytes']):.3f} GiB")
ok = ok and used <= 1.1 * need
print(f"memory vs plan: {'PASS' if ok else 'FAIL'}")
sys.exit(0 if ok else 1)
