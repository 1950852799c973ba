#!/usr/bin/env python3
"""The PyTorch side of `make bench` and of the GPU bench (tests/gpu/bench.sh): the same Llama and
batch as an lctrain bench deck, trained in PyTorch (eager, F.scaled_dot_product_attention(is_causal=
True), AdamW with the deck's betas / eps / weight decay, global-norm clipping), on random tokens.
--device cpu (default): fp32. --device cuda: bf16 autocast over fp32 weights, fused AdamW, times
with CUDA synchronisation, peak memory from torch.cuda.

usage:
  bench_torch.py step DECK [--threads N] [--steps S] [--warmup W] [--micro-batch B] [--seq T] [--name N] [--json OUT]
      median step time of S timed steps after W warm-up steps, tokens/s and peak RSS
  bench_torch.py attention --batch B --seq T --heads H --kv-heads G --head-dim D [--threads N] [--json OUT]
      SDPA forward and forward+backward (causal, GQA), the same shapes as bench_ops' attention
  bench_torch.py gemm --n N [--threads N] | gemm --shapes model1b --device cuda
      torch.mm square fp32 GEMM rate (for reference); on cuda, bf16 x @ w.T on the ~1B model's
      linear shapes at 8192 tokens (the shapes bench_cuda measures through cuBLASLt)
Attention FLOPs on cuda: 4 B Hq D x (causal pairs T (T + 1) / 2) forward, 2.5x that backward.

FLOPs (the same formula as docs/PERFORMANCE.md and tools/run_bench.sh): 6 * P * tokens +
6 * n_layers * seq * dim * tokens (causal attention), where P counts the parameters of the
matrix multiplications (every linear layer and the LM head; not the embedding table or norms).
"""
import argparse
import json
import math
import os
import re
import resource
import statistics
import sys
import time


def die(msg):
    sys.stderr.write(f"bench_torch.py: {msg}\n")
    sys.exit(2)


# ---- deck (the subset of the lctrain deck syntax the bench decks use) -----------------------------

DEFAULTS = {
    "model.vocab_size": 256, "model.dim": 64, "model.n_layers": 2, "model.n_heads": 4, "model.n_kv_heads": 0,
    "model.head_dim": 0, "model.ffn_dim": 0, "model.norm_eps": 1e-5, "model.tie_embeddings": "false",
    "model.init_std": 0.02, "rope.theta": 10000.0, "train.seq_len": 256, "train.micro_batch": 1,
    "train.lr": 3e-4, "train.grad_clip": 1.0, "optim.beta1": 0.9, "optim.beta2": 0.95, "optim.eps": 1e-8,
    "optim.weight_decay": 0.1,
}


def read_deck(path):
    """key = value lines, [section] headers, '#' comments; returns DEFAULTS updated by the file."""
    vals = dict(DEFAULTS)
    section = ""
    try:
        lines = open(path).read().splitlines()
    except OSError as e:
        die(f"cannot read deck {path}: {e.strerror}")
    for n, raw in enumerate(lines, 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        m = re.fullmatch(r"\[(\w+)\]", line)
        if m:
            section = m.group(1)
            continue
        if "=" not in line:
            die(f"{path}:{n}: expected 'key = value', got '{raw}'")
        k, v = (s.strip() for s in line.split("=", 1))
        key = k if "." in k else f"{section}.{k}"
        vals[key] = v
    return vals


def model_shape(vals):
    g = lambda k, t=int: t(vals[k])
    dim, nh = g("model.dim"), g("model.n_heads")
    kv = g("model.n_kv_heads") or nh
    hd = g("model.head_dim") or dim // nh
    ffn = g("model.ffn_dim") or (8 * dim // 3 + 31) // 32 * 32
    theta = vals["rope.theta"]
    if str(theta) == "auto":
        die("rope.theta = auto is not supported here; give a number in the bench deck")
    return dict(vocab=g("model.vocab_size"), dim=dim, n_layers=g("model.n_layers"), n_heads=nh, n_kv_heads=kv,
                head_dim=hd, ffn=ffn, eps=g("model.norm_eps", float),
                tie=str(vals["model.tie_embeddings"]).lower() == "true", init_std=g("model.init_std", float),
                theta=float(theta))


def matmul_params(s):
    per_layer = s["dim"] * s["n_heads"] * s["head_dim"] * 2 + s["dim"] * s["n_kv_heads"] * s["head_dim"] * 2 \
        + 3 * s["dim"] * s["ffn"]
    return per_layer * s["n_layers"] + s["vocab"] * s["dim"]


def step_flops(s, batch, seq):
    tokens = batch * seq
    return 6.0 * matmul_params(s) * tokens + 6.0 * s["n_layers"] * seq * s["dim"] * tokens


def peak_rss_bytes():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


# ---- model ----------------------------------------------------------------------------------------

def build_model(torch, s, seq):
    nn, F = torch.nn, torch.nn.functional

    class RMSNorm(nn.Module):
        def __init__(self, dim, eps):
            super().__init__()
            self.weight = nn.Parameter(torch.ones(dim))
            self.eps = eps

        def forward(self, x):
            return self.weight * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps))

    def rotate_half(x):
        h = x.shape[-1] // 2
        return torch.cat((-x[..., h:], x[..., :h]), dim=-1)

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            d, hd = s["dim"], s["head_dim"]
            self.ln1 = RMSNorm(d, s["eps"])
            self.q = nn.Linear(d, s["n_heads"] * hd, bias=False)
            self.k = nn.Linear(d, s["n_kv_heads"] * hd, bias=False)
            self.v = nn.Linear(d, s["n_kv_heads"] * hd, bias=False)
            self.o = nn.Linear(s["n_heads"] * hd, d, bias=False)
            self.ln2 = RMSNorm(d, s["eps"])
            self.gate = nn.Linear(d, s["ffn"], bias=False)
            self.up = nn.Linear(d, s["ffn"], bias=False)
            self.down = nn.Linear(s["ffn"], d, bias=False)

        def forward(self, x, cos, sin):
            B, T, _ = x.shape
            hd = s["head_dim"]
            h = self.ln1(x)
            q = self.q(h).view(B, T, s["n_heads"], hd).transpose(1, 2)
            k = self.k(h).view(B, T, s["n_kv_heads"], hd).transpose(1, 2)
            v = self.v(h).view(B, T, s["n_kv_heads"], hd).transpose(1, 2)
            q = q * cos + rotate_half(q) * sin
            k = k * cos + rotate_half(k) * sin
            a = F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=s["n_kv_heads"] != s["n_heads"])
            x = x + self.o(a.transpose(1, 2).reshape(B, T, -1))
            h = self.ln2(x)
            return x + self.down(F.silu(self.gate(h)) * self.up(h))

    class Llama(nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = nn.Embedding(s["vocab"], s["dim"])
            self.layers = nn.ModuleList(Block() for _ in range(s["n_layers"]))
            self.norm = RMSNorm(s["dim"], s["eps"])
            self.lm_head = nn.Linear(s["dim"], s["vocab"], bias=False)
            if s["tie"]:
                self.lm_head.weight = self.embed.weight
            for name, p in self.named_parameters():
                if p.dim() == 2:
                    nn.init.normal_(p, std=s["init_std"])
            inv = 1.0 / (s["theta"] ** (torch.arange(0, s["head_dim"], 2, dtype=torch.float64) / s["head_dim"]))
            ang = torch.outer(torch.arange(seq, dtype=torch.float64), inv)
            ang = torch.cat((ang, ang), dim=-1)
            self.register_buffer("cos", ang.cos().float(), persistent=False)
            self.register_buffer("sin", ang.sin().float(), persistent=False)

        def forward(self, idx, targets):
            x = self.embed(idx)
            for layer in self.layers:
                x = layer(x, self.cos, self.sin)
            logits = self.lm_head(self.norm(x))
            return F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1))

    return Llama()


def cmd_step(a, torch):
    vals = read_deck(a.deck)
    s = model_shape(vals)
    B = a.micro_batch or int(vals["train.micro_batch"])
    T = a.seq or int(vals["train.seq_len"])
    torch.manual_seed(1234)
    cuda = a.device == "cuda"
    model = build_model(torch, s, T)
    if cuda:
        model = model.cuda()
    decay = [p for p in model.parameters() if p.dim() == 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": float(vals["optim.weight_decay"])},
                             {"params": no_decay, "weight_decay": 0.0}],
                            lr=float(vals["train.lr"]), betas=(float(vals["optim.beta1"]), float(vals["optim.beta2"])),
                            eps=float(vals["optim.eps"]), **({"fused": True} if cuda else {}))
    clip = float(vals["train.grad_clip"])
    g = torch.Generator().manual_seed(1)
    load0 = os.getloadavg()[0]
    times, cpu, loss = [], [], float("nan")
    for i in range(a.warmup + a.steps):
        idx = torch.randint(0, s["vocab"], (B, T), generator=g)
        tgt = torch.randint(0, s["vocab"], (B, T), generator=g)
        if cuda:
            idx, tgt = idx.cuda(), tgt.cuda()
            torch.cuda.synchronize()
        t0, c0 = time.perf_counter(), time.process_time()
        opt.zero_grad(set_to_none=True)
        if cuda:
            with torch.autocast("cuda", dtype=torch.bfloat16):
                out = model(idx, tgt)
        else:
            out = model(idx, tgt)
        out.backward()
        if clip > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
        opt.step()
        loss = out.item()  # synchronises
        dt, dc = time.perf_counter() - t0, time.process_time() - c0
        if i >= a.warmup:
            times.append(dt)
            cpu.append(dc)
    med = statistics.median(times)
    flops = step_flops(s, B, T)
    r = dict(side="torch", name=a.name or os.path.splitext(os.path.basename(a.deck))[0], deck=a.deck, threads=torch.get_num_threads(), micro_batch=B, seq_len=T,
             tokens_per_step=B * T, step_seconds=times, step_seconds_median=med,
             cpu_seconds_median=statistics.median(cpu), tokens_per_s=B * T / med,
             gflops=flops / med / 1e9, flops_per_step=flops, params_matmul=matmul_params(s),
             peak_rss_bytes=peak_rss_bytes(), loss=loss, torch=torch.__version__, load=[load0, os.getloadavg()[0]],
             device=a.device)
    if cuda:
        r["peak_device_bytes"] = torch.cuda.max_memory_allocated()
        r["model_tflops"] = flops / med / 1e12
        r["mfu_989"] = flops / med / 989e12
    emit(a, r)
    print(f"torch {a.deck}: B={B} T={T} threads={r['threads']}: median step {med:.3f} s, "
          f"{r['tokens_per_s']:.1f} tokens/s, {r['gflops']:.1f} GFLOP/s, cpu {r['cpu_seconds_median']:.3f} s/step, peak RSS {r['peak_rss_bytes'] / 2**30:.2f} GiB")


def timed_cuda(torch, f, warmup, reps):
    """Median seconds of f() on the GPU (CUDA events), after warm-up calls."""
    for _ in range(warmup):
        f()
    ts = []
    for _ in range(reps):
        e0, e1 = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        e0.record()
        f()
        e1.record()
        torch.cuda.synchronize()
        ts.append(e0.elapsed_time(e1) / 1e3)
    return statistics.median(ts)


def cmd_attention_cuda(a, torch):
    F = torch.nn.functional
    B, T, H, G, D = a.batch, a.seq, a.heads, a.kv_heads, a.head_dim
    torch.manual_seed(0)
    mk = lambda h: torch.randn(B, h, T, D, device="cuda", dtype=torch.bfloat16, requires_grad=True)
    q, k, v = mk(H), mk(G), mk(G)
    do = torch.randn(B, H, T, D, device="cuda", dtype=torch.bfloat16)
    fwd_flops = 4.0 * B * H * D * T * (T + 1) / 2
    bwd_flops = 2.5 * fwd_flops
    with torch.no_grad():
        f = timed_cuda(torch, lambda: F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=G != H),
                       a.warmup, a.reps)
    o = F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=G != H)
    b = timed_cuda(torch, lambda: torch.autograd.grad(o, (q, k, v), do, retain_graph=True), a.warmup, a.reps)
    r = dict(side="torch", op="sdpa", device="cuda", B=B, T=T, Hq=H, Hkv=G, D=D, fwd_seconds=f, bwd_seconds=b,
             fwd_tflops=fwd_flops / f / 1e12, bwd_tflops=bwd_flops / b / 1e12,
             fwd_bwd_tflops=(fwd_flops + bwd_flops) / (f + b) / 1e12, torch=torch.__version__)
    emit(a, r)
    print(f"torch sdpa cuda T={T} Hq={H} Hkv={G} D={D}: fwd {r['fwd_tflops']:.1f}  bwd {r['bwd_tflops']:.1f}  "
          f"fwd+bwd {r['fwd_bwd_tflops']:.1f} TFLOP/s")


MODEL1B_SHAPES = [("q_o", 8192, 2048, 2048), ("k_v", 8192, 2048, 1024), ("gate_up", 8192, 2048, 8192),
                  ("down", 8192, 8192, 2048), ("lm_head", 8192, 2048, 128256)]


def cmd_gemm_cuda(a, torch):
    shapes = MODEL1B_SHAPES if a.shapes == "model1b" else [("square", a.n, a.n, a.n)]
    flops = secs = 0.0
    for name, N, K, M in shapes:
        x = torch.randn(N, K, device="cuda", dtype=torch.bfloat16)
        w = torch.randn(M, K, device="cuda", dtype=torch.bfloat16) * 0.02
        t = timed_cuda(torch, lambda: torch.matmul(x, w.t()), 3, 10)
        f = 2.0 * N * K * M
        flops, secs = flops + f, secs + t
        r = dict(side="torch", op="gemm", device="cuda", shape=name, N=N, K=K, M=M, seconds=t, tflops=f / t / 1e12)
        emit(a, r)
        print(f"torch matmul bf16 {name:8s} {N}x{K}x{M}: {r['tflops']:.1f} TFLOP/s")
    r = dict(side="torch", op="gemm", device="cuda", shape=a.shapes or "square", tflops=flops / secs / 1e12,
             torch=torch.__version__)
    emit(a, r)
    print(f"torch matmul bf16 {a.shapes or 'square'} FLOP-weighted: {r['tflops']:.1f} TFLOP/s")


def cmd_attention(a, torch):
    if a.device == "cuda":
        return cmd_attention_cuda(a, torch)
    F = torch.nn.functional
    B, T, H, G, D = a.batch, a.seq, a.heads, a.kv_heads, a.head_dim
    torch.manual_seed(0)
    q = torch.randn(B, H, T, D, requires_grad=True)
    k = torch.randn(B, G, T, D, requires_grad=True)
    v = torch.randn(B, G, T, D, requires_grad=True)
    do = torch.randn(B, H, T, D)
    fwd_flops = 2.0 * B * H * T * T * D  # causal: half of 4 B H T^2 D
    fwd, both = [], []
    for i in range(a.warmup + a.reps):
        t0 = time.perf_counter()
        with torch.no_grad():
            F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=G != H)
        t1 = time.perf_counter()
        o = F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=G != H)
        o.backward(do)
        t2 = time.perf_counter()
        q.grad = k.grad = v.grad = None
        if i >= a.warmup:
            fwd.append(t1 - t0)
            both.append(t2 - t1)
    f, fb = statistics.median(fwd), statistics.median(both)
    r = dict(side="torch", op="sdpa", threads=torch.get_num_threads(), B=B, T=T, Hq=H, Hkv=G, D=D,
             fwd_seconds=f, fwd_bwd_seconds=fb, fwd_gflops=fwd_flops / f / 1e9, fwd_bwd_gflops=3 * fwd_flops / fb / 1e9)
    emit(a, r)
    print(f"torch sdpa B={B} T={T} Hq={H} Hkv={G} D={D} threads={r['threads']}: fwd {f * 1e3:.1f} ms "
          f"({r['fwd_gflops']:.1f} GFLOP/s), fwd+bwd {fb * 1e3:.1f} ms ({r['fwd_bwd_gflops']:.1f} GFLOP/s)")


def cmd_gemm(a, torch):
    if a.device == "cuda":
        return cmd_gemm_cuda(a, torch)
    n = a.n
    x, y = torch.randn(n, n), torch.randn(n, n)
    ts = []
    for i in range(a.warmup + a.reps):
        t0 = time.perf_counter()
        torch.mm(x, y)
        if i >= a.warmup:
            ts.append(time.perf_counter() - t0)
    med = statistics.median(ts)
    r = dict(side="torch", op="gemm", n=n, threads=torch.get_num_threads(), seconds=med, gflops=2.0 * n ** 3 / med / 1e9)
    emit(a, r)
    print(f"torch mm n={n} threads={r['threads']}: {r['gflops']:.1f} GFLOP/s")


def emit(a, r):
    if a.json:
        with open(a.json, "a") as f:
            f.write(json.dumps(r) + "\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    st = sub.add_parser("step")
    st.add_argument("deck")
    st.add_argument("--steps", type=int, default=5)
    st.add_argument("--warmup", type=int, default=2)
    st.add_argument("--micro-batch", type=int, default=0)
    st.add_argument("--seq", type=int, default=0)
    st.add_argument("--name", default="", help="the name of the row in the report (default: the deck's file name)")
    at = sub.add_parser("attention")
    for k in ("batch", "seq", "heads", "kv-heads", "head-dim"):
        at.add_argument("--" + k, type=int, required=True)
    at.add_argument("--reps", type=int, default=5)
    at.add_argument("--warmup", type=int, default=1)
    gm = sub.add_parser("gemm")
    gm.add_argument("--n", type=int, default=2048)
    gm.add_argument("--reps", type=int, default=5)
    gm.add_argument("--warmup", type=int, default=1)
    gm.add_argument("--shapes", default="", help="model1b: the ~1B model's linear shapes (cuda)")
    for p in (st, at, gm):
        p.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
        p.add_argument("--threads", type=int, default=int(os.environ.get("OMP_NUM_THREADS", "2")))
        p.add_argument("--json", default="")
    a = ap.parse_args()
    if a.cmd == "step" and (a.steps < 1 or a.warmup < 0):
        die("--steps must be >= 1 and --warmup >= 0")
    try:
        import torch
    except ImportError:
        die("torch is not installed (pip install torch); the lctrain side of make bench runs without it")
    torch.set_num_threads(a.threads)
    {"step": cmd_step, "attention": cmd_attention, "gemm": cmd_gemm}[a.cmd](a, torch)


if __name__ == "__main__":
    main()
