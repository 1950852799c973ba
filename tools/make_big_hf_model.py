#!/usr/bin/env python3
"""Writes a Llama-shaped HF model directory of a given size for the lcconvert memory measurement
(tools/measure_lcconvert.sh): config.json and F32 safetensors shards with an index, random values,
one shard in memory at a time.  Usage: make_big_hf_model.py OUTDIR [--layers N] [--shard-mb MB]"""
import argparse
import json
import os

import numpy as np
from safetensors.numpy import save_file


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--layers", type=int, default=6)
    ap.add_argument("--shard-mb", type=int, default=200)
    a = ap.parse_args()
    V, C, H, KV, F = 32000, 2048, 16, 8, 5632
    D = C // H
    shapes = [("model.embed_tokens.weight", (V, C))]
    for l in range(a.layers):
        p = f"model.layers.{l}."
        shapes += [(p + "input_layernorm.weight", (C,)), (p + "self_attn.q_proj.weight", (H * D, C)),
                   (p + "self_attn.k_proj.weight", (KV * D, C)), (p + "self_attn.v_proj.weight", (KV * D, C)),
                   (p + "self_attn.o_proj.weight", (C, H * D)), (p + "post_attention_layernorm.weight", (C,)),
                   (p + "mlp.gate_proj.weight", (F, C)), (p + "mlp.up_proj.weight", (F, C)),
                   (p + "mlp.down_proj.weight", (C, F))]
    shapes += [("model.norm.weight", (C,)), ("lm_head.weight", (V, C))]
    shards, cur, size = [[]], 0, 0
    for name, shape in shapes:
        b = 4 * int(np.prod(shape))
        if shards[-1] and cur + b > a.shard_mb * 10**6:
            shards.append([])
            cur = 0
        shards[-1].append((name, shape))
        cur += b
        size += b
    os.makedirs(a.out, exist_ok=True)
    rng = np.random.default_rng(0)
    wm = {}
    for k, shard in enumerate(shards):
        fname = f"model-{k + 1:05d}-of-{len(shards):05d}.safetensors"
        tensors = {n: (rng.standard_normal(s, dtype=np.float32) * 0.02) for n, s in shard}
        save_file(tensors, os.path.join(a.out, fname), metadata={"format": "pt"})
        wm.update({n: fname for n, _ in shard})
    json.dump({"metadata": {"total_size": size}, "weight_map": wm},
              open(os.path.join(a.out, "model.safetensors.index.json"), "w"), indent=2)
    json.dump({"architectures": ["LlamaForCausalLM"], "model_type": "llama", "vocab_size": V, "hidden_size": C,
               "num_hidden_layers": a.layers, "num_attention_heads": H, "num_key_value_heads": KV,
               "intermediate_size": F, "max_position_embeddings": 8192, "rms_norm_eps": 1e-5,
               "rope_theta": 500000.0, "tie_word_embeddings": False, "hidden_act": "silu",
               "torch_dtype": "float32"}, open(os.path.join(a.out, "config.json"), "w"), indent=2)
    print(f"{a.out}: {len(shapes)} tensors, {size / 1e6:.1f} MB in {len(shards)} F32 shards, largest tensor "
          f"{max(4 * int(np.prod(s)) for _, s in shapes) / 1e6:.1f} MB")


if __name__ == "__main__":
    main()
