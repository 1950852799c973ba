#!/usr/bin/env python3
"""Deepen an lctrain checkpoint by block expansion (LLaMA Pro, Wu et al. 2024): after each layer
named by --after, insert a copy of it whose o_proj and down_proj are zero. A zero output projection
makes the new block an identity (residual stream unchanged), so the grown model computes exactly the
old function; training then moves the copies away from it. Weights and the run's position (no optimizer state): use
the result as model.init_from with model.n_layers = old + len(--after).

usage: tools/grow_layers.py SRC.h5 DST.h5 --after 1,2
"""
import argparse
import json

import h5py
import numpy as np


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("src")
    ap.add_argument("dst")
    ap.add_argument("--after", required=True, help="comma-separated layer indexes of SRC to copy")
    a = ap.parse_args()
    with h5py.File(a.src, "r") as f:
        cfg = json.loads(f.attrs["model_config"])
        n = cfg["n_layers"]
        after = sorted(int(x) for x in a.after.split(","))
        if any(i < 0 or i >= n for i in after):
            raise SystemExit(f"grow_layers: --after {a.after}: layers of {a.src} are 0..{n - 1}")
        order = []  # (source layer, zero output projections?)
        for i in range(n):
            order.append((i, False))
            order += [(i, True)] * after.count(i)
        m = f["model"]
        with h5py.File(a.dst, "w") as g:
            for k, v in f.attrs.items():
                g.attrs[k] = v
            cfg["n_layers"] = len(order)
            g.attrs["model_config"] = np.bytes_(json.dumps(cfg, separators=(",", ":")))  # fixed-length, as lctrain writes
            g.attrs["init_from"] = np.bytes_(a.src)
            for name in f:  # the run's position (train/) as it was; no optimizer state
                if name not in ("model", "optim"):
                    f.copy(f[name], g, name)
            gm = g.create_group("model")
            for name in m:
                if not name.startswith("model.layers."):
                    gm[name] = m[name][()]
            for j, (i, zero) in enumerate(order):
                for name in m:
                    pre = f"model.layers.{i}."
                    if name.startswith(pre):
                        w = m[name][()]
                        if zero and name.endswith(("self_attn.o_proj.weight", "mlp.down_proj.weight")):
                            w = np.zeros_like(w)
                        gm[f"model.layers.{j}." + name[len(pre):]] = w
    print(f"grow_layers: {a.dst}: {n} -> {len(order)} layers (copies of {after}, output projections zero)")


if __name__ == "__main__":
    main()
