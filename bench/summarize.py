#!/usr/bin/env python3
"""Tables for `make bench` (tools/run_bench.sh) from the files of one run.

usage:
  summarize.py record RUN_DIR --name NAME --threads T --warmup W [--ranks R] [--cp C] [--load L0 L1] --out FILE.jsonl
      reads RUN_DIR/metrics.jsonl and RUN_DIR/effective.deck of an lctrain run and appends one
      line: median step time over the steps after the first W, tokens/s, model FLOPs, peak RSS
  summarize.py report BENCH_DIR
      prints the markdown tables (op level, whole step vs PyTorch, scaling) and writes
      BENCH_DIR/summary.md

The load columns give the 1-minute load average before and after each run: on this 2-core
machine anything above the run's own thread count means other jobs shared the CPUs.

FLOPs per step (the same formula on both sides): 6 * P * tokens + 6 * n_layers * seq * dim * tokens,
P = parameters of the matrix multiplications (all linear layers and the LM head; not the
embedding table or the norms), the second term the causal attention (QK^T and PV over the
seq^2 / 2 visible pairs, forward + backward). MFU = achieved GFLOP/s / the square-sgemm GFLOP/s
measured by bench_ops in the same run with the same thread count (the larger of our GEMM's and
Eigen's).
"""
import argparse
import json
import os
import statistics
import sys


def read_jsonl(path):
    if not os.path.exists(path):
        return []
    out = []
    with open(path) as f:
        for n, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError as e:
                sys.exit(f"summarize.py: {path}:{n}: not JSON ({e})")
    return out


def read_effective_deck(path):
    vals = {}
    with open(path) as f:
        for line in f:
            line = line.split("#", 1)[0].strip()
            if "=" in line and not line.startswith("stage"):
                k, v = (s.strip() for s in line.split("=", 1))
                vals[k] = v
    return vals


def model_flops(vals):
    g = lambda k: int(vals[k])
    dim, nh, kv, hd, ffn, nl, V = (g("model.dim"), g("model.n_heads"), g("model.n_kv_heads"), g("model.head_dim"),
                                   g("model.ffn_dim"), g("model.n_layers"), g("model.vocab_size"))
    P = nl * (2 * dim * nh * hd + 2 * dim * kv * hd + 3 * dim * ffn) + V * dim
    T, B = g("train.seq_len"), g("train.micro_batch") * g("train.grad_accum")
    tokens = B * T
    return P, tokens, 6.0 * P * tokens + 6.0 * nl * T * dim * tokens


def cmd_record(a):
    metrics = [m for m in read_jsonl(os.path.join(a.run_dir, "metrics.jsonl")) if "step_seconds" in m]
    if len(metrics) <= a.warmup:
        sys.exit(f"summarize.py: {a.run_dir}/metrics.jsonl has {len(metrics)} steps, need more than the "
                 f"{a.warmup} warm-up steps")
    timed = metrics[a.warmup:]
    vals = read_effective_deck(os.path.join(a.run_dir, "effective.deck"))
    P, tokens_per_replica, flops = model_flops(vals)
    med = statistics.median(m["step_seconds"] for m in timed)
    tokens = timed[0]["tokens"]  # the global batch's targets (all dp replicas)
    flops *= tokens / tokens_per_replica
    rec = dict(name=a.name, threads=a.threads, ranks=a.ranks, cp=a.cp, steps=len(timed), warmup=a.warmup,
               seq_len=int(vals["train.seq_len"]), micro_batch=int(vals["train.micro_batch"]),
               recompute=vals.get("train.recompute", "none"), tokens_per_step=tokens,
               step_seconds=[m["step_seconds"] for m in timed], step_seconds_median=med, tokens_per_s=tokens / med,
               gflops=flops / med / 1e9, flops_per_step=flops, params_matmul=P,
               peak_rss_bytes=max(m["peak_rss_bytes"] for m in timed),
               peak_rss_bytes_per_rank=max((m.get("peak_rss_bytes_per_rank") for m in timed), key=lambda v: max(v or [0])),
               loss_last=timed[-1]["loss"], load=a.load)
    with open(a.out, "a") as f:
        f.write(json.dumps(rec) + "\n")
    print(f"  {a.name} ({a.threads} thread(s), {a.ranks} rank(s)): median step {med:.3f} s over {len(timed)} steps, "
          f"{rec['tokens_per_s']:.1f} tokens/s, {rec['gflops']:.1f} GFLOP/s, peak RSS {rec['peak_rss_bytes'] / 2**30:.2f} GiB")


# ---- report -------------------------------------------------------------------------------------

def gbench(path):
    """name -> (real time in ms, counters) from a Google Benchmark JSON file (medians when repeated)."""
    if not os.path.exists(path):
        return {}
    with open(path) as f:
        d = json.load(f)
    scale = {"ns": 1e-6, "us": 1e-3, "ms": 1.0, "s": 1e3}
    out, runs = {}, {}
    for b in d.get("benchmarks", []):
        base = b.get("run_name", b["name"])
        if b.get("run_type") == "aggregate":
            if b.get("aggregate_name") == "median":
                out[base] = (b["real_time"] * scale[b["time_unit"]], b)
        else:
            runs.setdefault(base, []).append((b["real_time"] * scale[b["time_unit"]], b))
    for base, rs in runs.items():
        if base not in out:
            rs.sort(key=lambda r: r[0])
            out[base] = rs[len(rs) // 2]
    return out


def gemm_rate(ops, prefix="BM_sgemm"):
    rates = [b.get("GFLOP/s", 0) for name, (_, b) in ops.items() if name.startswith(prefix) and "n:2048" in name]
    return max(rates) if rates else float("nan")


def fmt(x, nd=1):
    if x is None or (isinstance(x, float) and x != x):
        return "-"
    return f"{x:.{nd}f}"


def load_str(l):
    return f"{l[0]:.1f}-{l[1]:.1f}" if l else "-"


def gib(b):
    return f"{b / 2**30:.2f}"


def cmd_report(a):
    d = a.bench_dir
    lines = []
    P = lines.append
    machine = os.path.join(d, "machine.txt")
    if os.path.exists(machine):
        P("### Machine\n\n```\n" + open(machine).read().strip() + "\n```\n")
    thread_counts = sorted({int(f[len("ops_t"):-len(".json")]) for f in os.listdir(d)
                            if f.startswith("ops_t") and f.endswith(".json")}, reverse=True)
    rates = {t: gemm_rate(gbench(os.path.join(d, f"ops_t{t}.json"))) for t in thread_counts}
    eigen_rates = {t: gemm_rate(gbench(os.path.join(d, f"ops_t{t}.json")), "BM_sgemm_eigen") for t in thread_counts}
    torch_ops = read_jsonl(os.path.join(d, "torch_ops.jsonl"))

    # op level
    for t in thread_counts:
        ops = gbench(os.path.join(d, f"ops_t{t}.json"))
        with open(os.path.join(d, f"ops_t{t}.json")) as f:
            la = json.load(f).get("context", {}).get("load_avg", [])
        P(f"### Op level, {t} thread(s) (bench_ops, median of 3 repetitions, real time; load average at start "
          f"{', '.join(f'{x:.1f}' for x in la)})\n")
        P("| benchmark | time (ms) | rate |")
        P("|---|---:|---:|")
        for name, (ms, b) in ops.items():
            rate = next(((k, v) for k, v in b.items() if k in ("GFLOP/s", "GB/s")), None)
            P(f"| {name.replace('/real_time', '')} | {fmt(ms, 2)} | {fmt(rate[1]) + ' ' + rate[0] if rate else ''} |")
        P(f"\nMachine fp32 GEMM rate ({t} thread(s)): {fmt(rates[t])} GFLOP/s (best square sgemm, n = 2048; "
          f"Eigen's alone: {fmt(eigen_rates[t])} GFLOP/s).\n")
        att = [r for r in torch_ops if r.get("op") == "sdpa" and r["threads"] == t]
        if att:
            P(f"Attention forward+backward vs PyTorch SDPA ({t} thread(s), causal, Hq 8, Hkv 4, D 64):\n")
            P("| B x T | lctrain fwd (ms) | torch fwd (ms) | lctrain fwd+bwd (ms) | torch fwd+bwd (ms) | fwd+bwd speed-up |")
            P("|---|---:|---:|---:|---:|---:|")
            for r in att:
                key = f"B:{r['B']}/T:{r['T']}/tile:64"
                f_ms = ops.get(f"BM_attention_fwd/{key}/real_time", (None,))[0]
                fb_ms = ops.get(f"BM_attention_fwd_bwd/{key}/real_time", (None,))[0]
                sp = (r["fwd_bwd_seconds"] * 1e3 / fb_ms) if fb_ms else None
                P(f"| {r['B']} x {r['T']} | {fmt(f_ms)} | {fmt(r['fwd_seconds'] * 1e3)} | {fmt(fb_ms)} | "
                  f"{fmt(r['fwd_bwd_seconds'] * 1e3)} | {fmt(sp, 2)}x |")
            P("")
        mm = [r for r in torch_ops if r.get("op") == "gemm" and r["threads"] == t]
        if mm:
            P(f"torch.mm n = {mm[0]['n']} ({t} thread(s)): {fmt(mm[0]['gflops'])} GFLOP/s.\n")

    # whole step
    steps = read_jsonl(os.path.join(d, "steps.jsonl"))
    torch_steps = read_jsonl(os.path.join(d, "torch_steps.jsonl"))
    single = [s for s in steps if s["ranks"] == 1 and not s["name"].startswith("cp")]
    if single:
        P("### Whole training step (lctrain, 1 rank) vs PyTorch eager, the same model, batch and thread count\n")
        P("| config | threads | tokens/step | lctrain step (s) | lctrain tokens/s | GFLOP/s | MFU | peak RSS (GiB) | "
          "of Eigen GEMM | torch step (s) | torch tokens/s | torch MFU | torch peak RSS (GiB) | lctrain / torch | "
          "load (lctrain; torch) |")
        P("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
        for s in single:
            rate = rates.get(s["threads"], float("nan"))
            tr = next((r for r in torch_steps if r["name"] == s["name"] and r["threads"] == s["threads"]), None)
            ratio = s["tokens_per_s"] / tr["tokens_per_s"] if tr else None
            P(f"| {s['name']} | {s['threads']} | {s['tokens_per_step']} | {fmt(s['step_seconds_median'], 3)} | "
              f"{fmt(s['tokens_per_s'])} | {fmt(s['gflops'])} | {fmt(100 * s['gflops'] / rate)}% | "
              f"{gib(s['peak_rss_bytes'])} | {fmt(100 * s['gflops'] / eigen_rates.get(s['threads'], float('nan')))}% | "
              f"{fmt(tr['step_seconds_median'], 3) if tr else '-'} | "
              f"{fmt(tr['tokens_per_s']) if tr else '-'} | "
              f"{fmt(100 * tr['gflops'] / rate) + '%' if tr else '-'} | {gib(tr['peak_rss_bytes']) if tr else '-'} | "
              f"{fmt(ratio, 2) + 'x' if ratio else '-'} | {load_str(s.get('load'))}; "
              f"{load_str(tr.get('load') if tr else None)} |")
        P("")

    # scaling
    scal = [s for s in steps if s["name"].startswith("cp")]
    if scal:
        P("### Context parallelism (ring attention), fixed tokens per rank\n")
        P("| run | cp | seq | tokens/rank | recompute | step (s) | tokens/s | time per token (ms) | peak RSS per rank (GiB) | total RSS (GiB) | load |")
        P("|---|---:|---:|---:|---|---:|---:|---:|---:|---:|---|")
        for s in scal:
            per_rank = s["peak_rss_bytes_per_rank"] or [s["peak_rss_bytes"]]
            P(f"| {s['name']} | {s['cp']} | {s['seq_len']} | {s['seq_len'] // max(s['cp'], 1)} | {s['recompute']} | "
              f"{fmt(s['step_seconds_median'], 3)} | {fmt(s['tokens_per_s'])} | "
              f"{fmt(1e3 * s['step_seconds_median'] / s['tokens_per_step'], 3)} | {gib(max(per_rank))} | "
              f"{gib(sum(per_rank))} | {load_str(s.get('load'))} |")
        P("")
    longest = os.path.join(d, "longest.txt")
    if os.path.exists(longest):
        P("### Longest trainable context under the memory budget\n\n" + open(longest).read().strip() + "\n")
    text = "\n".join(lines) + "\n"
    with open(os.path.join(d, "summary.md"), "w") as f:
        f.write(text)
    print(text)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("record")
    r.add_argument("run_dir")
    r.add_argument("--name", required=True)
    r.add_argument("--threads", type=int, required=True)
    r.add_argument("--warmup", type=int, required=True)
    r.add_argument("--ranks", type=int, default=1)
    r.add_argument("--cp", type=int, default=1)
    r.add_argument("--out", required=True)
    r.add_argument("--load", nargs=2, type=float, default=None, metavar=("START", "END"),
                   help="1-minute load average before and after the run")
    p = sub.add_parser("report")
    p.add_argument("bench_dir")
    a = ap.parse_args()
    {"record": cmd_record, "report": cmd_report}[a.cmd](a)


if __name__ == "__main__":
    main()
