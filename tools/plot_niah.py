#!/usr/bin/env python3
"""Draw a needle-in-a-haystack heatmap from an lctrain niah.csv (docs/longctx.md).

The NIAH convention (gkamradt): context length on x, needle depth (percent) on y, exact-match
accuracy as colour from red (0%) to green (100%), each cell annotated.

usage: tools/plot_niah.py NIAH.csv OUT.png [--title TITLE] [--metric accuracy|token_accuracy|score]
       tools/plot_niah.py A.csv B.csv ... --out OUT.png --titles "before,after,..."  (side by side)
                          [--columns N]  (N panels per row: a grid, e.g. the eleven RULER tasks)
"""
import argparse
import csv
import sys


def read_grid(path, metric):
    rows = []
    with open(path, newline="") as f:
        r = csv.DictReader(f)
        need = {"length", "depth", "samples", metric}
        if not r.fieldnames or not need.issubset(r.fieldnames):
            sys.exit(f"plot_niah: {path}: expected columns {sorted(need)}, found {r.fieldnames}")
        for line, row in enumerate(r, start=2):
            try:
                rows.append((int(row["length"]), int(row["depth"]), float(row[metric])))
            except ValueError as e:
                sys.exit(f"plot_niah: {path}:{line}: {e}")
    if not rows:
        sys.exit(f"plot_niah: {path}: no cells")
    lengths = sorted({L for L, _, _ in rows})
    depths = sorted({d for _, d, _ in rows})
    grid = [[float("nan")] * len(lengths) for _ in depths]
    for L, d, v in rows:
        grid[depths.index(d)][lengths.index(L)] = v
    return lengths, depths, grid


def length_label(n):
    return f"{n // 1024}K" if n >= 1024 and n % 1024 == 0 else str(n)


def draw(ax, lengths, depths, grid, title, first):
    from matplotlib.colors import LinearSegmentedColormap

    cmap = LinearSegmentedColormap.from_list("niah", ["#F0496E", "#EBB839", "#0CD79F"])
    im = ax.imshow(grid, cmap=cmap, vmin=0.0, vmax=1.0, aspect="auto", origin="upper")
    ax.set_xticks(range(len(lengths)))
    ax.set_xticklabels([length_label(L) for L in lengths])
    ax.set_yticks(range(len(depths)))
    ax.set_yticklabels([f"{d}%" if d >= 0 else "all" for d in depths])  # -1: a task without depth (RULER cwe, fwe)
    ax.set_xlabel("Token Limit (context length)")
    if first:
        ax.set_ylabel("Depth Percent")
    ax.set_title(title)
    for i in range(len(depths)):
        for j in range(len(lengths)):
            v = grid[i][j]
            if v == v:
                ax.text(j, i, f"{100 * v:.0f}", ha="center", va="center", fontsize=8, color="black")
    return im


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("inputs", nargs="+", help="niah.csv file(s); with one input and no --out, the second positional is the PNG")
    p.add_argument("--out", help="output image (.png or .svg)")
    p.add_argument("--title", default=None)
    p.add_argument("--titles", default=None, help="comma-separated titles, one per input")
    p.add_argument("--metric", default="accuracy", choices=["accuracy", "token_accuracy", "score"])  # score: RULER CSVs
    p.add_argument("--columns", type=int, default=0, help="panels per row (default: all in one row)")
    a = p.parse_args()
    inputs, out = a.inputs, a.out
    if out is None:
        if len(inputs) != 2:
            sys.exit("plot_niah: give NIAH.csv OUT.png, or several CSVs with --out")
        inputs, out = inputs[:1], inputs[1]
    titles = a.titles.split(",") if a.titles else [a.title or inputs[0]] * len(inputs)
    if len(titles) != len(inputs):
        sys.exit(f"plot_niah: {len(titles)} titles for {len(inputs)} inputs")

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    grids = [read_grid(path, a.metric) for path in inputs]
    cols = a.columns if a.columns > 0 else len(grids)
    rows = (len(grids) + cols - 1) // cols
    width = max(len(g[0]) for g in grids)
    fig, axes = plt.subplots(rows, cols, figsize=(1.2 + max(0.9 * width, 2.4) * cols + 1.5, 4.2 * rows), squeeze=False)
    flat = [ax for row in axes for ax in row]
    im = None
    for k, (ax, (lengths, depths, grid), title) in enumerate(zip(flat, grids, titles)):
        im = draw(ax, lengths, depths, grid, title, k % cols == 0)
    for ax in flat[len(grids):]:
        ax.axis("off")
    if rows > 1:
        fig.subplots_adjust(hspace=0.45, wspace=0.35)
    cbar = fig.colorbar(im, ax=flat, fraction=0.046 / cols ** 0.5, pad=0.02)
    cbar.set_label({"accuracy": "exact match", "token_accuracy": "answer tokens right",
                    "score": "score (RULER string_match_all)"}[a.metric])
    fig.savefig(out, dpi=110, bbox_inches="tight")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
