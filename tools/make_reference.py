#!/usr/bin/env python3
"""Builds tiny Llama models and their float64 forward/backward reference for the C++ model tests.

For each model in MODELS this writes tests/data/hf/<name>/:
  config.json, generation_config.json, model.safetensors   (HF save_pretrained, fp32 weights)
  reference.h5                                             (inputs, logits, loss, weights, grads; float64)

The weights are seeded random (std 0.05, embeddings std 0.5 (0.1 when tied, see WEIGHT_STD), RMSNorm weights
1 + 0.2*randn) and rounded to
fp32 before saving, so the float64 reference holds exactly the values the C++ code loads.

Float64 reference: stock HF Llama computes RMSNorm, softmax and RoPE in fp32 even when the model is float64
(explicit casts to torch.float32 / torch.float inside modeling_llama). To get a true float64 reference we run
the same HF code with the module's `torch` name swapped for a proxy whose float32 is float64 (see
fp64_everywhere). A finite-difference check on the loss then proves no fp32 rounding is left (measured: ~1e-8
relative error with the proxy, 4e-4 without it, at eps 1e-5). The stock fp32 HF logits/loss are stored too,
under /hf_fp32.

Usage: tools/make_reference.py [--out DIR] [--only NAME ...]     (CPU only; deterministic; idempotent)
"""
import argparse
import contextlib
import os
import shutil
import sys

import h5py
import numpy as np
import torch
import torch.nn.functional as F
import transformers
from transformers import LlamaConfig, LlamaForCausalLM
from transformers.models.llama import modeling_llama

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BATCH = 2
SEQ_LEN = 72  # deliberately not a power of two
MAX_POS = 256

MODELS = {
    "tiny_gqa2": dict(vocab_size=96, hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                      num_key_value_heads=2, intermediate_size=96, rms_norm_eps=1e-5, rope_theta=50000.0,
                      tie_word_embeddings=False, embed_std=0.5, seed=1001),
    "tiny_gqa4_tied": dict(vocab_size=80, hidden_size=48, num_hidden_layers=2, num_attention_heads=4,
                           num_key_value_heads=1, intermediate_size=80, rms_norm_eps=1e-6, rope_theta=12345.0,
                           tie_word_embeddings=True, embed_std=0.1, seed=1002),
    "tiny_mha": dict(vocab_size=64, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                     num_key_value_heads=2, intermediate_size=48, rms_norm_eps=1e-5, rope_theta=10000.0,
                     tie_word_embeddings=False, embed_std=0.5, seed=1003),
}
# tiny_gqa4_tied uses embedding std 0.1, not 0.5: with tied weights the LM head is the embedding, and at 0.5
# every position predicts its own input token with p ~ 1 - 2e-5 (loss 22.7, saturated softmax, a weak test).
# At 0.1 the mean top probability is ~0.34. Untied models keep 0.5 (their LM head has std 0.05).
WEIGHT_STD = 0.05
NORM_STD = 0.2
CONFIG_KEYS = ["vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "num_key_value_heads",
               "intermediate_size", "rms_norm_eps", "rope_theta", "tie_word_embeddings"]


class _Fp64Torch:
    """Stands in for the `torch` module inside modeling_llama: float32 / float mean float64."""
    float = torch.float64
    float32 = torch.float64

    def __getattr__(self, name):
        return getattr(torch, name)


@contextlib.contextmanager
def fp64_everywhere():
    saved = modeling_llama.torch
    modeling_llama.torch = _Fp64Torch()
    try:
        yield
    finally:
        modeling_llama.torch = saved


def build_config(spec):
    return LlamaConfig(
        vocab_size=spec["vocab_size"], hidden_size=spec["hidden_size"],
        num_hidden_layers=spec["num_hidden_layers"], num_attention_heads=spec["num_attention_heads"],
        num_key_value_heads=spec["num_key_value_heads"], intermediate_size=spec["intermediate_size"],
        rms_norm_eps=spec["rms_norm_eps"], rope_parameters={"rope_type": "default", "rope_theta": spec["rope_theta"]},
        tie_word_embeddings=spec["tie_word_embeddings"], max_position_embeddings=MAX_POS, hidden_act="silu",
        attention_bias=False, mlp_bias=False, attn_implementation="eager", bos_token_id=None, eos_token_id=None,
        pad_token_id=None)


def init_weights(model, gen, embed_std):
    with torch.no_grad():
        for name, p in model.named_parameters():
            noise = torch.randn(p.shape, generator=gen, dtype=torch.float64)
            if name.endswith("norm.weight"):
                value = 1.0 + NORM_STD * noise  # non-default norm weights, so a dropped norm weight is caught
            elif name == "model.embed_tokens.weight":
                value = embed_std * noise  # large enough that logits are not trivial
            else:
                value = WEIGHT_STD * noise
            p.copy_(value.to(p.dtype))


def forward_loss(model, inputs, targets):
    logits = model(input_ids=inputs, use_cache=False).logits
    b, t, v = logits.shape
    loss = F.cross_entropy(logits.reshape(b * t, v), targets.reshape(b * t))
    return logits, loss


def set_fp64_inv_freq(model):
    """The rotary buffer was computed in fp32 at construction; recompute it in float64."""
    rot = model.model.rotary_emb
    with fp64_everywhere():
        inv_freq, scaling = rot.compute_default_rope_parameters(model.config)
    assert inv_freq.dtype == torch.float64 and scaling == 1.0
    rot.inv_freq = inv_freq
    rot.original_inv_freq = inv_freq.clone()
    return inv_freq


def finite_difference_check(model, inputs, targets, gen, analytic):
    """Directional derivative of the loss along a random direction vs the analytic gradient (float64)."""
    params = dict(model.named_parameters())
    direction = {n: torch.randn(p.shape, generator=gen, dtype=torch.float64) for n, p in params.items()}
    predicted = sum(float((analytic[n] * direction[n]).sum()) for n in params)
    eps = 1e-5
    base = {n: p.detach().clone() for n, p in params.items()}
    losses = []
    with torch.no_grad(), fp64_everywhere():
        for sign in (1.0, -1.0):
            for n, p in params.items():
                p.copy_(base[n] + sign * eps * direction[n])
            losses.append(float(forward_loss(model, inputs, targets)[1]))
        for n, p in params.items():
            p.copy_(base[n])
    measured = (losses[0] - losses[1]) / (2 * eps)
    rel = abs(measured - predicted) / abs(predicted)
    return predicted, measured, rel


def make_one(name, spec, out_root):
    out_dir = os.path.join(out_root, name)
    if os.path.isdir(out_dir):
        shutil.rmtree(out_dir)  # idempotent: a rerun rewrites the folder from scratch
    os.makedirs(out_dir)

    gen = torch.Generator().manual_seed(spec["seed"])
    config = build_config(spec)
    model = LlamaForCausalLM(config).to(torch.float32).eval()
    init_weights(model, gen, spec["embed_std"])
    tokens = torch.randint(0, spec["vocab_size"], (BATCH, SEQ_LEN + 1), generator=gen, dtype=torch.int64)
    inputs, targets = tokens[:, :SEQ_LEN], tokens[:, 1:]

    # Stock HF fp32 forward (what from_pretrained users get), then save the fp32 weights.
    with torch.no_grad():
        logits32, loss32 = forward_loss(model, inputs, targets)
    model.save_pretrained(out_dir, safe_serialization=True)

    # Sanity: the saved folder reloads to bit-identical fp32 logits.
    reloaded = LlamaForCausalLM.from_pretrained(out_dir, attn_implementation="eager", dtype=torch.float32).eval()
    with torch.no_grad():
        logits_reload, _ = forward_loss(reloaded, inputs, targets)
    assert torch.equal(logits_reload, logits32), f"{name}: reloaded model gives different fp32 logits"
    if spec["tie_word_embeddings"]:
        assert reloaded.lm_head.weight.data_ptr() == reloaded.model.embed_tokens.weight.data_ptr()
    del reloaded

    # Float64 reference: fp32 weights widened exactly, HF code run with every internal fp32 cast made fp64.
    model = model.double()
    inv_freq = set_fp64_inv_freq(model)
    model.zero_grad(set_to_none=True)
    with fp64_everywhere():
        logits, loss = forward_loss(model, inputs, targets)
        loss.backward()
    assert logits.dtype == torch.float64
    grads = {n: p.grad.detach().clone() for n, p in model.named_parameters()}
    weights = {n: p.detach().clone() for n, p in model.named_parameters()}
    for n, w in weights.items():
        assert torch.equal(w, w.float().double()), f"{name}: weight {n} is not exactly representable in fp32"

    fp32_gap = float((logits.detach() - logits32.double()).abs().max())
    assert fp32_gap < 1e-4, f"{name}: fp64 reference and stock fp32 HF logits differ by {fp32_gap}"
    predicted, measured, fd_rel = finite_difference_check(model, inputs, targets, gen, grads)
    assert fd_rel < 1e-6, f"{name}: finite-difference check failed (rel {fd_rel}); fp32 rounding left in fp64 pass?"

    path = os.path.join(out_dir, "reference.h5")
    with h5py.File(path, "w", track_order=True) as f:
        for key in CONFIG_KEYS:
            value = spec[key]
            if isinstance(value, bool):
                f.attrs[key] = np.int64(int(value))
            elif isinstance(value, int):
                f.attrs[key] = np.int64(value)
            else:
                f.attrs[key] = np.float64(value)
        f.attrs["max_position_embeddings"] = np.int64(MAX_POS)
        f.attrs["head_dim"] = np.int64(spec["hidden_size"] // spec["num_attention_heads"])
        f.attrs["batch"] = np.int64(BATCH)
        f.attrs["seq_len"] = np.int64(SEQ_LEN)
        f.attrs["seed"] = np.int64(spec["seed"])
        f.attrs["init_weight_std"] = np.float64(WEIGHT_STD)
        f.attrs["init_embed_std"] = np.float64(spec["embed_std"])
        f.attrs["init_norm_std"] = np.float64(NORM_STD)
        # Fixed-length ASCII strings: simplest to read from C++ HDF5.
        f.attrs["hidden_act"] = np.bytes_("silu")
        f.attrs["rope_convention"] = np.bytes_("rotate_half")
        f.attrs["torch_version"] = np.bytes_(torch.__version__)
        f.attrs["transformers_version"] = np.bytes_(transformers.__version__)
        f.attrs["generator"] = np.bytes_("tools/make_reference.py")

        f.create_dataset("tokens", data=tokens.numpy().astype(np.int32))
        f.create_dataset("inputs", data=inputs.numpy().astype(np.int32))
        f.create_dataset("targets", data=targets.numpy().astype(np.int32))
        f.create_dataset("positions", data=np.arange(SEQ_LEN, dtype=np.int32))
        f.create_dataset("inv_freq", data=inv_freq.numpy())
        f.create_dataset("logits", data=logits.detach().numpy())
        f.create_dataset("loss", data=np.float64(loss.item()))
        hf32 = f.create_group("hf_fp32")
        hf32.attrs["note"] = np.bytes_("stock transformers fp32 forward (fp32 RoPE/RMSNorm/softmax)")
        hf32.create_dataset("logits", data=logits32.numpy())
        hf32.create_dataset("loss", data=np.float32(loss32.item()))
        wg, gg = f.create_group("weights"), f.create_group("grads")
        for n in weights:
            wg.create_dataset(n, data=weights[n].numpy())
            gg.create_dataset(n, data=grads[n].numpy())

    size = os.path.getsize(path)
    assert size < 2 * 1024 * 1024, f"{name}: reference.h5 is {size} bytes (limit 2 MB)"
    nparams = sum(w.numel() for w in weights.values())
    print(f"wrote {out_dir}/ ({', '.join(sorted(os.listdir(out_dir)))})")
    print(f"  reference.h5 {size} bytes: {len(weights)} parameters ({nparams} values), logits "
          f"{list(logits.shape)}, loss {loss.item():.12f} (fp32 HF {loss32.item():.7f}), "
          f"max |fp64 - fp32 HF logits| {fp32_gap:.2e}, finite-difference rel err {fd_rel:.1e}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=os.path.join(REPO, "tests", "data", "hf"))
    parser.add_argument("--only", nargs="*", choices=sorted(MODELS), help="models to build (default: all)")
    args = parser.parse_args()
    transformers.utils.logging.disable_progress_bar()
    torch.set_num_threads(1)  # fixed reduction order: byte-identical output on rerun
    torch.use_deterministic_algorithms(True)
    for name in args.only or MODELS:
        make_one(name, MODELS[name], args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
