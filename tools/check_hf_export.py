#!/usr/bin/env python3
"""Loads an lctrain model exported with `lcconvert to-hf` in HF transformers and compares its logits
with lctrain's own (`lcconvert logits`) on the same tokens.

usage: tools/check_hf_export.py --checkpoint OUT/checkpoints/step_XXXXXXXX.h5 --hf EXPORT_DIR
                                [--tokens 64] [--seed 0] [--bin bin]
Needs torch + transformers + h5py (PyPI); not used by the tests."""
import argparse
import os
import subprocess
import sys
import tempfile

import h5py
import numpy as np
import torch
import transformers


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", required=True)
    ap.add_argument("--hf", required=True, help="directory written by lcconvert to-hf")
    ap.add_argument("--tokens", type=int, default=64)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--bin", default=os.path.join(os.path.dirname(__file__), "..", "bin"))
    a = ap.parse_args()

    model = transformers.AutoModelForCausalLM.from_pretrained(a.hf, torch_dtype=torch.float32,
                                                              attn_implementation="eager")
    model.eval()
    vocab = model.config.vocab_size
    rng = np.random.default_rng(a.seed)
    ids = rng.integers(0, vocab, size=a.tokens).tolist()

    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "logits.h5")
        subprocess.run([os.path.join(a.bin, "lcconvert"), "logits", a.checkpoint, out,
                        "--tokens", ",".join(map(str, ids))], check=True, stdout=subprocess.DEVNULL)
        with h5py.File(out, "r") as f:
            ours = f["logits"][...].astype(np.float64)

    with torch.no_grad():
        theirs = model(torch.tensor([ids])).logits[0].double().numpy()
    diff = ours - theirs
    rel = np.linalg.norm(diff) / np.linalg.norm(theirs)
    agree = float(np.mean(ours.argmax(-1) == theirs.argmax(-1)))
    print(f"transformers {transformers.__version__}, torch {torch.__version__}")
    print(f"model: {a.hf} (rope_theta {model.config.rope_theta if hasattr(model.config, 'rope_theta') else model.config.rope_parameters}, "
          f"dtype {next(model.parameters()).dtype} from the exported files)")
    print(f"tokens {a.tokens}, vocab {vocab}: relative error {rel:.3e}, max abs diff {np.abs(diff).max():.3e}, "
          f"argmax agreement {agree*100:.1f}%")
    # fp32 exports carry the weights exactly; bf16 exports round them (expect ~1e-3).
    import json
    with open(os.path.join(a.hf, "config.json")) as f:
        cfg = json.load(f)
    stored = str(cfg.get("torch_dtype") or cfg.get("dtype") or "")
    tol = 1e-2 if "bfloat16" in stored else 1e-4
    ok = rel < tol
    print(f"stored dtype {stored}: tolerance {tol:g} -> " + ("OK" if ok else "MISMATCH"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
