#!/usr/bin/env python3
"""Makes the committed fixtures under tests/data/io/ for tests/io (safetensors and config.json readers).

Everything is written by the Hugging Face libraries themselves, so the C++ readers are tested against
real writer output, not against our own idea of the format:

  python3 tools/make_io_fixtures.py            # with transformers 5.x + torch + safetensors:
      tensors.safetensors (+ tensors.expected.json)  safetensors.torch.save_file, every float dtype
      tiny_sharded/  LlamaForCausalLM(...).save_pretrained(max_shard_size=...) in bfloat16: shards + index
                     (+ expected.json: per-tensor shape, float64 sum, sum of squares, first values)
      v5_default/ v5_llama3/ v5_yarn/ v5_dynamic/   LlamaConfig(...).save_pretrained ("rope_parameters" schema)
  /path/to/python-with-transformers-4.x tools/make_io_fixtures.py --v4
      v4_default/ v4_llama3/ v4_yarn/ v4_dynamic/   the same configs written by transformers 4.x
                     (top-level "rope_theta" + "rope_scaling", "torch_dtype"); needs no torch.

The configs in each family describe the same models, so a test can check both schemas read the same.
Outputs are deterministic (fixed seed); rerunning rewrites them. Only the order of the "__metadata__"
keys in tensors.safetensors may change between runs (safetensors does not fix it).
"""
import argparse
import json
import math
import os
import shutil

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "data", "io")

# name -> (LlamaConfig kwargs shared by both versions, rope dict or None)
SHAPE = dict(vocab_size=128, hidden_size=64, intermediate_size=96, num_hidden_layers=2, num_attention_heads=4,
             num_key_value_heads=2, max_position_embeddings=512, rms_norm_eps=1e-5)
CONFIGS = {
    "default": dict(rope_theta=3580165449.0, rope=None, bos_token_id=1, eos_token_id=2, tie_word_embeddings=True,
                    dtype="float32"),
    "llama3": dict(rope_theta=500000.0, bos_token_id=100, eos_token_id=[101, 108, 109],
                   rope=dict(rope_type="llama3", factor=8.0, low_freq_factor=1.0, high_freq_factor=4.0,
                             original_max_position_embeddings=128), dtype="bfloat16"),
    "yarn": dict(rope_theta=10000.0, bos_token_id=1, eos_token_id=2,
                 rope=dict(rope_type="yarn", factor=4.0, original_max_position_embeddings=128, beta_fast=32.0,
                           beta_slow=1.0, attention_factor=1.25), dtype="bfloat16"),
    "dynamic": dict(rope_theta=10000.0, bos_token_id=1, eos_token_id=2, rope=dict(rope_type="dynamic", factor=2.0),
                    dtype="float16"),
}


def clean_dir(path):
    if os.path.isdir(path):
        shutil.rmtree(path)
    os.makedirs(path)


def write_configs(prefix, v4):
    from transformers import LlamaConfig
    for name, spec in CONFIGS.items():
        kw = dict(SHAPE)
        kw.update({k: v for k, v in spec.items() if k not in ("rope", "dtype")})
        if spec["rope"] is not None:
            kw["rope_scaling"] = dict(spec["rope"])  # 5.x converts this to rope_parameters on save
        kw["torch_dtype" if v4 else "dtype"] = spec["dtype"]
        cfg = LlamaConfig(**kw)
        d = os.path.join(OUT, f"{prefix}_{name}")
        clean_dir(d)
        cfg.save_pretrained(d)
        print("wrote", d)


def write_tensors():
    import torch
    from safetensors.torch import save_file
    g = torch.Generator().manual_seed(1234)
    f16_vals = torch.tensor([0.0, -0.0, 1.0, -2.5, 65504.0, 6.1e-5, 5.96e-8, 3.0e-6, float("inf"), -float("inf"),
                             0.333, 1000.5], dtype=torch.float32)
    tensors = {
        "f32": torch.randn(3, 5, generator=g),
        "bf16": (torch.randn(4, 6, generator=g) * 100).to(torch.bfloat16),
        "f16": f16_vals.reshape(3, 4).to(torch.float16),
        "f64": torch.randn(7, generator=g, dtype=torch.float64),
        "i64": torch.tensor([1, -2, 3], dtype=torch.int64),
        "scalar": torch.tensor(2.5, dtype=torch.float32),
        "empty": torch.zeros(0, 4, dtype=torch.float32),
        "model.layers.0.self_attn.q_proj.weight": torch.randn(8, 4, generator=g).to(torch.bfloat16),
    }
    path = os.path.join(OUT, "tensors.safetensors")
    save_file(tensors, path, metadata={"format": "pt", "source": "tools/make_io_fixtures.py"})
    expected = {}
    for name, t in tensors.items():
        vals = t.flatten().tolist() if not t.is_floating_point() else t.to(torch.float32).flatten().tolist()
        vals = [v if math.isfinite(v) else str(v) for v in vals]  # JSON has no inf: "inf" / "-inf"
        expected[name] = {"dtype": str(t.dtype).replace("torch.", ""), "shape": list(t.shape), "values": vals}
    with open(os.path.join(OUT, "tensors.expected.json"), "w") as f:
        json.dump(expected, f, indent=1, sort_keys=True)
        f.write("\n")
    print("wrote", path)


def write_sharded_model():
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM
    torch.manual_seed(7)
    cfg = LlamaConfig(vocab_size=64, hidden_size=16, intermediate_size=32, num_hidden_layers=2, num_attention_heads=4,
                      num_key_value_heads=2, max_position_embeddings=128, rms_norm_eps=1e-5, rope_theta=500000.0,
                      tie_word_embeddings=False, bos_token_id=1, eos_token_id=2)
    model = LlamaForCausalLM(cfg).to(torch.bfloat16)
    with torch.no_grad():
        for p in model.parameters():  # norm weights are all ones by default: make every tensor distinct
            p.copy_((torch.randn(p.shape) * 0.5 + 0.1).to(p.dtype))
    d = os.path.join(OUT, "tiny_sharded")
    clean_dir(d)
    model.save_pretrained(d, max_shard_size="4KB")
    expected = {}
    for name, p in model.state_dict().items():
        v = p.detach().to(torch.float64).flatten()
        expected[name] = {"shape": list(p.shape), "sum": v.sum().item(), "sumsq": (v * v).sum().item(),
                          "first": v[:6].tolist(), "last": v[-1].item()}
    with open(os.path.join(d, "expected.json"), "w") as f:
        json.dump(expected, f, indent=1, sort_keys=True)
        f.write("\n")
    gen = os.path.join(d, "generation_config.json")
    if os.path.exists(gen):
        os.remove(gen)
    print("wrote", d, sorted(os.listdir(d)))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--v4", action="store_true", help="write the v4_* configs (run with transformers 4.x)")
    args = ap.parse_args()
    import transformers
    major = int(transformers.__version__.split(".")[0])
    os.makedirs(OUT, exist_ok=True)
    if args.v4:
        if major != 4:
            raise SystemExit(f"--v4 needs transformers 4.x, this python has {transformers.__version__}")
        write_configs("v4", v4=True)
        return
    if major < 5:
        raise SystemExit(f"needs transformers 5.x (or pass --v4), this python has {transformers.__version__}")
    write_configs("v5", v4=False)
    write_tensors()
    write_sharded_model()


if __name__ == "__main__":
    main()
