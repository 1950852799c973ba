#!/usr/bin/env python3
"""Checks a `make run` result (out/demo/results/summary.json, tools/run_demo.sh) against the committed
results of three seeds: after the extension the model must beat the ablation (same training, old
theta) at 8x and 16x the stage-2 length by at least the smallest margin the three seeds showed minus
10 points, and the no-needle control must score 0% exact match at every length. The generated NIAH
(greedy decoding through the inference path, the same prompts) must be there before and after the
extension at every length, and differ from the teacher-forced exact match by no more than the
largest difference the three seeds showed plus GEN_MARGIN points. Used by .ci/run.

usage: tools/check_demo.py SUMMARY.json REFERENCE.json [REFERENCE.json ...]
"""
import json
import sys


def gaps(s):
    """after - ablation exact match (points) at 8x and 16x the shortest evaluated length."""
    L0 = s["lengths"][0]
    em = {name: s["runs"][name]["exact_match_pct"] for name in ("after", "ablation_same_theta")}
    return {k: em["after"][str(k * L0)] - em["ablation_same_theta"][str(k * L0)] for k in (8, 16)}


GEN_MARGIN = 5.0  # points: two of the 40 prompts of a length


def gen_gaps(s):
    """|generated - teacher-forced| exact match (points) per (run, length); None when not measured."""
    out = {}
    for run in ("before", "after"):
        g = s["runs"].get(f"{run}_generated")
        if g is None:
            return None
        tf = s["runs"][run]["exact_match_pct"]
        for L in s["lengths"]:
            out[(run, L)] = abs(g["exact_match_pct"][str(L)] - tf[str(L)])
    return out


def main(argv):
    if len(argv) < 3:
        sys.exit(__doc__)
    got = json.load(open(argv[1]))
    refs = [json.load(open(p)) for p in argv[2:]]
    ok = True
    g = gaps(got)
    for k in (8, 16):
        ref = [gaps(r)[k] for r in refs]
        need = min(ref) - 10
        line = (f"{k}x: after - ablation = {g[k]:.1f} points (seed {got['seed']}); required >= {need:.1f} "
                f"(seeds {', '.join(str(r['seed']) for r in refs)} gave {', '.join(f'{x:.1f}' for x in ref)}; min - 10)")
        print(("ok   " if g[k] >= need else "FAIL ") + line)
        ok &= g[k] >= need
    got_gen = gen_gaps(got)
    ref_gen = [gen_gaps(r) for r in refs]
    if got_gen is None:
        print("FAIL generated NIAH (before_generated / after_generated) missing from the summary")
        ok = False
    elif any(r is None for r in ref_gen):
        print("FAIL a reference summary has no generated NIAH")
        ok = False
    else:
        allowed = max(max(r.values()) for r in ref_gen) + GEN_MARGIN
        worst = max(got_gen.values())
        at = max(got_gen, key=got_gen.get)
        print(("ok   " if worst <= allowed else "FAIL ") +
              f"generated vs teacher-forced exact match: {worst:g} points apart at most ({at[0]}, length {at[1]}); "
              f"allowed {allowed:g} (the seeds' largest {allowed - GEN_MARGIN:g} + {GEN_MARGIN:g})")
        ok &= worst <= allowed
    control = got["runs"]["control_no_needle"]["exact_match_pct"]
    worst = max(control.values())
    print(("ok   " if worst == 0 else "FAIL ") + f"control (no needle): exact match {worst:g}% at most (must be 0%)")
    ok &= worst == 0
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
