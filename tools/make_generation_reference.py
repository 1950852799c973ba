#!/usr/bin/env python3
"""Greedy-generation reference for the C++ decoder (tests/infer/test_hf_generation.cpp).

For each HF fixture in tests/data/hf/<name>/ (made by tools/make_reference.py) this finds seeded random
prompts on which HF transformers' greedy generation is unambiguous and varied, and writes
tests/data/hf/<name>/generation.h5:

  /prompt_<i>     int32 [P]        the prompt ids
  /generated_<i>  int32 [64]       generate(do_sample=False, num_beams=1, min_new_tokens=64, max_new_tokens=64)
  /logits32_<i>   float32 [64, V]  the logits each token was picked from (stock fp32 HF, with its KV cache)
  /logits64_<i>   float64 [64, V]  the same rows from ONE float64 forward over prompt + generated[:-1]
                                   (tools/make_reference.py's fp64 proxy: no fp32 rounding anywhere)
  attributes: prompts, steps, min_margin (smallest top-1 margin of the fp32 and fp64 logits over all
  steps), min_distinct, torch_version, transformers_version, generator

A prompt is kept when the top-1 margin exceeds MARGIN (1e-3) at every step in both precisions and the 64
generated ids hold at least 16 distinct ids, so any implementation within fp32 rounding must pick the same ids.
The reference is layout-independent: CTest checks it at cp 1, 2 and 4 without torch.

With --check-lctrain BIN it also runs `mpirun -np N BIN --generate ... --ids` on each fixture at
cp = 1, 2, 4 and compares the ids with HF's (needs mpirun; not part of CI).

Usage: tools/make_generation_reference.py [--only NAME ...] [--check-lctrain build/bin/lctrain]
(needs torch + transformers + h5py: a venv of its own, e.g.
 python3 -m venv /tmp/genvenv && /tmp/genvenv/bin/pip install torch transformers h5py)
"""
import argparse
import os
import subprocess
import sys
import tempfile

import h5py
import numpy as np
import torch
import transformers
from transformers import LlamaForCausalLM

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_reference import fp64_everywhere, set_fp64_inv_freq  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NAMES = ["tiny_gqa2", "tiny_gqa4_tied", "tiny_mha"]
SEEDS = {"tiny_gqa2": 4242, "tiny_gqa4_tied": 4243, "tiny_mha": 4243}  # prompt streams
STEPS = 64
MARGIN = 1e-3
MIN_DISTINCT = 16
PROMPTS = 2
PROMPT_LENGTHS = [29, 53, 17, 41, 70, 9]  # tried in turn; not multiples of 2 x cp, so the C++ prefill pads


def margins(logits):
    top2 = torch.topk(logits.double(), 2, dim=-1).values
    return (top2[:, 0] - top2[:, 1]).min().item()


def hf_generate(model, prompt):
    out = model.generate(torch.tensor([prompt]), do_sample=False, num_beams=1, min_new_tokens=STEPS,
                         max_new_tokens=STEPS, output_logits=True, return_dict_in_generate=True,
                         pad_token_id=0, eos_token_id=None)
    ids = out.sequences[0, len(prompt):].tolist()
    logits = torch.stack([l[0] for l in out.logits]).float()
    return ids, logits


def fp64_rows(model64, prompt, ids):
    seq = torch.tensor([prompt + ids[:-1]])
    with torch.no_grad(), fp64_everywhere():
        logits = model64(input_ids=seq, use_cache=False).logits[0]
    return logits[len(prompt) - 1:].clone()


def make_one(name, seed):
    folder = os.path.join(REPO, "tests/data/hf", name)
    model = LlamaForCausalLM.from_pretrained(folder, attn_implementation="eager", dtype=torch.float32).eval()
    model64 = LlamaForCausalLM.from_pretrained(folder, attn_implementation="eager", dtype=torch.float32).eval().double()
    set_fp64_inv_freq(model64)
    vocab = model.config.vocab_size
    gen = torch.Generator().manual_seed(seed)
    kept = []
    tries = 0
    while len(kept) < PROMPTS:
        length = PROMPT_LENGTHS[tries % len(PROMPT_LENGTHS)]
        tries += 1
        if tries > 100:
            print(f"{name}: skipped: no prompt in 100 tries meets the margin / distinct-id rules (its greedy output "
                  "repeats a few ids); no generation.h5")
            path = os.path.join(folder, "generation.h5")
            if os.path.exists(path):
                os.remove(path)
            return None
        prompt = torch.randint(0, vocab, (length,), generator=gen).tolist()
        with torch.no_grad():
            ids, l32 = hf_generate(model, prompt)
        l64 = fp64_rows(model64, prompt, ids)
        if not torch.equal(l64.argmax(-1), torch.tensor(ids)):
            continue  # a near tie somewhere: fp64 picks another id (the margin rule would reject it too)
        m = min(margins(l32), margins(l64))
        distinct = len(set(ids))
        if m > MARGIN and distinct >= MIN_DISTINCT:
            kept.append((prompt, ids, l32.numpy(), l64.numpy(), m, distinct))
            print(f"{name}: prompt {len(kept)}: {length} tokens, min margin {m:.4g}, {distinct} distinct ids, "
                  f"max |fp32 - fp64| {np.abs(l32.numpy() - l64.numpy()).max():.3g}")
    path = os.path.join(folder, "generation.h5")
    with h5py.File(path, "w", track_order=True) as f:
        for i, (prompt, ids, l32, l64, _, _) in enumerate(kept):
            f.create_dataset(f"prompt_{i}", data=np.array(prompt, dtype=np.int32))
            f.create_dataset(f"generated_{i}", data=np.array(ids, dtype=np.int32))
            f.create_dataset(f"logits32_{i}", data=l32.astype(np.float32))
            f.create_dataset(f"logits64_{i}", data=l64.astype(np.float64))
        f.attrs["prompts"] = np.int64(len(kept))
        f.attrs["steps"] = np.int64(STEPS)
        f.attrs["min_margin"] = np.float64(min(k[4] for k in kept))
        f.attrs["min_distinct"] = np.int64(min(k[5] for k in kept))
        f.attrs["torch_version"] = np.bytes_(torch.__version__)
        f.attrs["transformers_version"] = np.bytes_(transformers.__version__)
        f.attrs["generator"] = np.bytes_("tools/make_generation_reference.py")
    print(f"wrote {path}")
    return kept


def check_lctrain(lctrain, name, kept):
    folder = os.path.join(REPO, "tests/data/hf", name)
    env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1", OMP_NUM_THREADS="1")
    with tempfile.TemporaryDirectory() as tmp:
        deck = os.path.join(tmp, "generate.deck")
        with open(deck, "w") as f:
            f.write(f"[run]\nout_dir = {tmp}/out\n")
        for cp in (1, 2, 4):
            for i, (prompt, ids, *_rest) in enumerate(kept):
                cmd = ["mpirun", "-np", str(cp), "--oversubscribe", lctrain, "--generate", deck, "--checkpoint", folder,
                       "--prompt-ids", ",".join(map(str, prompt)), "--max-new", str(STEPS), "--ids",
                       f"--parallel.cp={cp}"]
                out = subprocess.run(cmd, env=env, capture_output=True, text=True)
                if out.returncode != 0:
                    sys.exit(f"{name} cp {cp}: lctrain failed ({out.returncode}):\n{out.stderr}")
                got = [int(x) for x in out.stdout.strip().splitlines()[-1].split(",")]
                status = "equal" if got == ids else "DIFFERENT"
                print(f"{name} prompt {i} cp {cp}: lctrain --generate ids {status} to HF's")
                if got != ids:
                    sys.exit(1)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--only", nargs="*", default=NAMES)
    ap.add_argument("--check-lctrain", default="")
    a = ap.parse_args()
    torch.set_num_threads(1)
    for name in a.only:
        kept = make_one(name, SEEDS[name])
        if kept and a.check_lctrain:
            check_lctrain(os.path.abspath(a.check_lctrain), name, kept)


if __name__ == "__main__":
    main()
