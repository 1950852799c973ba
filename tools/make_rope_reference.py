#!/usr/bin/env python3
"""Writes tests/data/rope/rope_reference.json: RoPE inverse frequencies from transformers' own functions.

Each case calls the transformers function that a Llama model with that rope_type would call
(transformers.modeling_rope_utils.ROPE_INIT_FUNCTIONS[type], or LlamaRotaryEmbedding.compute_default_rope_parameters
for "default") on a LlamaConfig built from the case's parameters. transformers computes inv_freq in fp32
(explicit torch.float / torch.float32), so each function is run twice:
  inv_freq          the same function with its module's `torch` name swapped for a proxy whose float32 is
                    float64 (see fp64_everywhere): transformers' formula, evaluated in float64;
  inv_freq_hf_fp32  the stock call, fp32 results widened to float64 (what an HF model actually uses).
Both are checked against an independent numpy float64 implementation of the formula (rel 1e-13 and 1e-6).

"ntk" (static NTK-aware, theta' = theta * factor^(d/(d-2))) is not a transformers rope type: those cases are
computed from the closed form in numpy and marked "source": "closed form". "scaling_law" cases use
theta(T) = base ** (ln(T / 2pi) / ln(T_orig / 2pi)) (Liu et al. 2023) and then the default rope.
The "positions" block gives cos/sin of position * inv_freq near 1M positions, evaluated with mpmath.

Usage: tools/make_rope_reference.py [--out FILE]    (CPU only; deterministic; idempotent)
"""
import argparse
import contextlib
import json
import math
import os
import sys

import mpmath
import numpy as np
import torch
import transformers
from transformers import LlamaConfig
from transformers import modeling_rope_utils
from transformers.models.llama import modeling_llama

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_FN = "transformers.models.llama.modeling_llama.LlamaRotaryEmbedding.compute_default_rope_parameters"


class _Fp64Torch:
    """Stands in for the `torch` module inside transformers' RoPE code: float32 / float mean float64."""
    float = torch.float64
    float32 = torch.float64

    def __getattr__(self, name):
        return getattr(torch, name)


@contextlib.contextmanager
def fp64_everywhere():
    saved = (modeling_rope_utils.torch, modeling_llama.torch)
    modeling_rope_utils.torch = modeling_llama.torch = _Fp64Torch()
    try:
        yield
    finally:
        modeling_rope_utils.torch, modeling_llama.torch = saved


def hf_function(rope_type):
    if rope_type == "default":
        return modeling_llama.LlamaRotaryEmbedding.compute_default_rope_parameters, DEFAULT_FN
    fn = modeling_rope_utils.ROPE_INIT_FUNCTIONS[rope_type]
    return fn, f"transformers.modeling_rope_utils.{fn.__name__} (ROPE_INIT_FUNCTIONS['{rope_type}'])"


def make_config(head_dim, theta, max_pos, rope_type, params):
    rope = {"rope_type": rope_type, "rope_theta": float(theta)}
    # Dynamic NTK reads the original length from max_position_embeddings; its params record it for readers only.
    skip = {"max_position_embeddings"} | ({"original_max_position_embeddings"} if rope_type == "dynamic" else set())
    rope.update({k: v for k, v in params.items() if k not in skip})
    heads = 2
    return LlamaConfig(hidden_size=head_dim * heads, num_attention_heads=heads, num_key_value_heads=heads,
                       head_dim=head_dim, max_position_embeddings=max_pos, rope_parameters=rope,
                       vocab_size=32, intermediate_size=8, num_hidden_layers=1)


def call_hf(rope_type, head_dim, theta, max_pos, params, seq_len):
    fn, fn_name = hf_function(rope_type)
    kwargs = {"seq_len": seq_len} if seq_len is not None else {}
    with fp64_everywhere():
        inv64, att64 = fn(make_config(head_dim, theta, max_pos, rope_type, params), **kwargs)
    inv32, att32 = fn(make_config(head_dim, theta, max_pos, rope_type, params), **kwargs)
    assert inv64.dtype == torch.float64 and inv32.dtype == torch.float32, (inv64.dtype, inv32.dtype)
    assert float(att64) == float(att32)
    return inv64.numpy(), inv32.double().numpy(), float(att64), fn_name


# ---- independent numpy float64 implementations (written from the formulas, used only as a check) ----

def np_default(d, theta):
    return 1.0 / theta ** (np.arange(0, d, 2, dtype=np.float64) / d)


def np_linear(d, theta, factor):
    return np_default(d, theta) / factor


def np_dynamic(d, theta, factor, orig, seq_len):
    seq_len = max(seq_len, orig)
    return np_default(d, theta * ((factor * seq_len / orig) - (factor - 1)) ** (d / (d - 2)))


def np_llama3(d, theta, factor, low, high, orig):
    inv = np_default(d, theta)
    wavelen = 2 * math.pi / inv
    smooth = (orig / wavelen - low) / (high - low)
    out = np.where(wavelen > orig / low, inv / factor, inv)
    medium = (wavelen >= orig / high) & (wavelen <= orig / low)
    return np.where(medium, (1 - smooth) * inv / factor + smooth * inv, out)


def yarn_range(d, theta, orig, beta_fast, beta_slow):
    def dim_for(rotations):
        return d * math.log(orig / (rotations * 2 * math.pi)) / (2 * math.log(theta))
    return max(math.floor(dim_for(beta_fast)), 0), min(math.ceil(dim_for(beta_slow)), d - 1)


def np_yarn(d, theta, factor, orig, beta_fast, beta_slow):
    low, high = yarn_range(d, theta, orig, beta_fast, beta_slow)
    if low == high:
        high += 0.001
    ramp = np.clip((np.arange(d // 2, dtype=np.float64) - low) / (high - low), 0.0, 1.0)
    extrapolation = 1.0 - ramp
    inv = np_default(d, theta)
    return (inv / factor) * (1 - extrapolation) + inv * extrapolation, 0.1 * math.log(factor) + 1.0


def max_rel(a, b):
    return float(np.max(np.abs(a - b) / np.abs(b)))


def hf_case(name, rope_type, head_dim, theta, params, max_pos, expected, seq_len=None, derived=None):
    inv64, inv32, att, fn_name = call_hf(rope_type, head_dim, theta, max_pos, params, seq_len)
    exp_inv, exp_att = expected
    assert inv64.shape == (head_dim // 2,)
    rel64, rel32 = max_rel(inv64, exp_inv), max_rel(inv32, inv64)
    assert rel64 < 1e-13, f"{name}: transformers (fp64) vs numpy formula differ by {rel64}"
    assert rel32 < 1e-6, f"{name}: transformers fp32 vs fp64 differ by {rel32}"
    assert abs(att - exp_att) < 1e-15, f"{name}: attention_factor {att} vs {exp_att}"
    case = {"name": name, "rope_type": rope_type, "source": "transformers", "function": fn_name,
            "head_dim": head_dim, "rope_theta": float(theta),
            "params": dict(params, max_position_embeddings=max_pos)}
    if seq_len is not None:
        case["seq_len"] = seq_len
    if derived:
        case["derived"] = derived
    case.update({"attention_factor": att, "inv_freq": inv64.tolist(), "inv_freq_hf_fp32": inv32.tolist(),
                 "check": {"max_rel_vs_numpy_formula": rel64, "max_rel_hf_fp32_vs_fp64": rel32}})
    return case


def transformers_cases():
    cases = []
    for d, theta in [(128, 500000.0), (64, 10000.0)]:
        cases.append(hf_case(f"default_d{d}_theta{int(theta)}", "default", d, theta, {}, 8192,
                             (np_default(d, theta), 1.0)))
    for d, theta in [(128, 500000.0), (64, 10000.0)]:
        cases.append(hf_case(f"linear_f4_d{d}_theta{int(theta)}", "linear", d, theta, {"factor": 4.0}, 8192,
                             (np_linear(d, theta, 4.0), 1.0)))

    # Dynamic NTK: transformers treats config.max_position_embeddings as the original (pre-scaling) length.
    for seq_len in (8192, 1024):
        d, theta, factor, orig = 128, 10000.0, 4.0, 2048
        scaled = theta * ((factor * max(seq_len, orig) / orig) - (factor - 1)) ** (d / (d - 2))
        cases.append(hf_case(f"dynamic_f4_orig2048_len{seq_len}", "dynamic", d, theta,
                             {"factor": factor, "original_max_position_embeddings": orig}, orig,
                             (np_dynamic(d, theta, factor, orig, seq_len), 1.0), seq_len=seq_len,
                             derived={"theta_scaled": scaled}))

    d, theta = 128, 500000.0
    l3 = {"factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0, "original_max_position_embeddings": 8192}
    cases.append(hf_case("llama3_1_d128_theta500000", "llama3", d, theta, l3, 131072,
                         (np_llama3(d, theta, 8.0, 1.0, 4.0, 8192), 1.0)))

    yarn = [  # (factor, original, theta, head_dim, beta_fast, beta_slow)
        (8.0, 4096, 10000.0, 128, None, None),
        (8.0, 4096, 500000.0, 128, None, None),
        (4.0, 4096, 10000.0, 64, None, None),
        (4.0, 4096, 500000.0, 64, None, None),
        (4.0, 4096, 10000.0, 128, 16.0, 2.0),
    ]
    for factor, orig, theta, d, bf, bs in yarn:
        params = {"factor": factor, "original_max_position_embeddings": orig}
        name = f"yarn_f{int(factor)}_orig{orig}_d{d}_theta{int(theta)}"
        if bf is not None:
            params.update(beta_fast=bf, beta_slow=bs)
            name += f"_beta{int(bf)}_{int(bs)}"
        bf_eff, bs_eff = bf or 32.0, bs or 1.0
        low, high = yarn_range(d, theta, orig, bf_eff, bs_eff)
        cases.append(hf_case(name, "yarn", d, theta, params, int(factor * orig),
                             np_yarn(d, theta, factor, orig, bf_eff, bs_eff),
                             derived={"beta_fast": bf_eff, "beta_slow": bs_eff, "truncate": True,
                                      "ramp_low": low, "ramp_high": high}))
    return cases


def ntk_cases():
    cases = []
    for d, theta, factor in [(128, 500000.0, 4.0), (64, 10000.0, 8.0)]:
        scaled = theta * factor ** (d / (d - 2))
        cases.append({"name": f"ntk_f{int(factor)}_d{d}_theta{int(theta)}", "rope_type": "ntk",
                      "source": "closed form", "function": "numpy: theta' = theta * factor**(d/(d-2)); "
                      "inv_freq = 1 / theta'**(arange(0, d, 2)/d)", "head_dim": d, "rope_theta": theta,
                      "params": {"factor": factor}, "derived": {"theta_scaled": scaled},
                      "attention_factor": 1.0, "inv_freq": np_default(d, scaled).tolist()})
    return cases


SCALING_LAW_EXPECTED = {65536: 22443169, 262144: 283461213, 524288: 1007391703, 1048576: 3580165449,
                        4194304: 45218125210}


def scaling_law_theta(seq_len, base=500000.0, orig=8192):
    return base ** (math.log(seq_len / (2 * math.pi)) / math.log(orig / (2 * math.pi)))


def scaling_law_cases():
    cases = []
    d = 128
    for seq_len, expected in SCALING_LAW_EXPECTED.items():
        exact = scaling_law_theta(seq_len)
        # Same value at 50 digits: the rounding to an integer must not depend on float64 luck.
        with mpmath.workdps(50):
            precise = mpmath.mpf(500000) ** (mpmath.log(mpmath.mpf(seq_len) / (2 * mpmath.pi)) /
                                             mpmath.log(mpmath.mpf(8192) / (2 * mpmath.pi)))
            precise_rounded = int(mpmath.nint(precise))
        rounded = round(exact)
        assert rounded == expected == precise_rounded, (seq_len, exact, precise, expected)
        inv64, inv32, att, fn_name = call_hf("default", d, float(rounded), 8192, {}, None)
        rel64 = max_rel(inv64, np_default(d, float(rounded)))
        assert rel64 < 1e-13 and att == 1.0
        cases.append({"name": f"scaling_law_T{seq_len}", "rope_type": "scaling_law",
                      "source": "scaling law + transformers default rope", "function":
                      "theta = base ** (ln(T / 2pi) / ln(T_orig / 2pi)), rounded to an integer; inv_freq from "
                      + fn_name, "head_dim": d, "rope_theta": float(rounded),
                      "params": {"base": 500000.0, "original_max_position_embeddings": 8192, "seq_len": seq_len},
                      "derived": {"theta_exact": exact, "theta_rounded": rounded},
                      "attention_factor": att, "inv_freq": inv64.tolist(), "inv_freq_hf_fp32": inv32.tolist()})
        print(f"  scaling law T={seq_len}: theta {exact:.6f} -> {rounded}")
    return cases


def positions_block():
    d, theta = 128, 3580165449.0
    positions = [0, 1, 4095, 524287, 1048575, 1048576 - 7]
    indices = list(range(8)) + list(range(d // 2 - 8, d // 2))
    inv64, _, _, fn_name = call_hf("default", d, theta, 8192, {}, None)
    inv = [float(inv64[i]) for i in indices]
    with mpmath.workdps(60):
        for i, v in zip(indices, inv):  # stored float64 inv_freq vs the exact real value
            exact = mpmath.mpf(theta) ** (-mpmath.mpf(2 * i) / d)
            assert abs((mpmath.mpf(v) - exact) / exact) < 1e-15, (i, v)
        angle, cos, sin = [], [], []
        for p in positions:
            a = [mpmath.mpf(p) * mpmath.mpf(v) for v in inv]  # exact product of the two float64 values
            angle.append([float(x) for x in a])
            cos.append([float(mpmath.cos(x)) for x in a])
            sin.append([float(mpmath.sin(x)) for x in a])
    return {"head_dim": d, "rope_theta": theta, "inv_freq_function": fn_name + " (float64)",
            "positions": positions, "freq_indices": indices, "inv_freq": inv, "angle": angle, "cos": cos, "sin": sin,
            "note": "angle[p][k] = positions[p] * inv_freq[k] (exact product of the float64 values, then rounded "
                    "to float64); cos/sin evaluated at 60 digits from the exact product, then rounded"}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=os.path.join(REPO, "tests", "data", "rope", "rope_reference.json"))
    args = parser.parse_args()
    transformers.utils.logging.set_verbosity_error()  # the configs are deliberate; no advice wanted

    cases = transformers_cases() + ntk_cases() + scaling_law_cases()
    doc = {"generator": "tools/make_rope_reference.py", "transformers_version": transformers.__version__,
           "torch_version": torch.__version__, "mpmath_version": mpmath.__version__,
           "cases": cases, "positions": positions_block()}
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(doc, f, indent=1, allow_nan=False)  # json writes floats with repr(): round-trip exact
        f.write("\n")
    with open(args.out) as f:
        back = json.load(f)
    assert back == doc, "JSON round trip changed a value"
    for c in cases:
        print(f"  {c['name']:<42} {c['rope_type']:<12} d={c['head_dim']:<4} attention_factor={c['attention_factor']}")
    print(f"wrote {args.out}: {len(cases)} cases + positions block ({os.path.getsize(args.out)} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
