#!/usr/bin/env python3
"""Checks that transformers loads config.json files the way lctrain meant them.

  python3 tools/check_hf_config.py DIR [DIR ...]

Each DIR holds a config.json (written by lct::write_hf_config) and may hold lct_expected.json: the values
lctrain meant ({"rope_theta", "rope_type", "factor", ..., "hidden_size", ..., "dtype"}). The script loads
DIR with transformers.AutoConfig (4.x or 5.x, whichever this python has; no torch needed), normalises
what transformers resolved (4.x: rope_theta + rope_scaling; 5.x: rope_parameters) and compares it with
lct_expected.json: numbers exactly, so rope_theta 3580165449 must come back as 3580165449. It prints one
line per DIR and any warning transformers logged, and exits 1 on a mismatch or a load failure.
tests/io/test_hf_config.cpp runs it when python3 has transformers; run it by hand with another python
(e.g. a venv with transformers 4.46) to check the other major version.
"""
import json
import logging
import os
import sys

ROPE_KEYS = ["factor", "low_freq_factor", "high_freq_factor", "original_max_position_embeddings", "beta_fast",
             "beta_slow", "attention_factor"]
SHAPE_KEYS = ["model_type", "vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads",
              "num_key_value_heads", "intermediate_size", "head_dim", "max_position_embeddings", "rms_norm_eps",
              "tie_word_embeddings", "bos_token_id", "eos_token_id"]


class Collect(logging.Handler):
    def __init__(self):
        super().__init__(logging.WARNING)
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())


def resolved(cfg, major):
    """What transformers will build the model from, in one flat dict."""
    out = {k: getattr(cfg, k, None) for k in SHAPE_KEYS}
    if major >= 5:
        rp = dict(cfg.rope_parameters or {})
        out["rope_theta"] = rp.get("rope_theta")
    else:
        rp = dict(cfg.rope_scaling or {})
        out["rope_theta"] = cfg.rope_theta
    out["rope_type"] = rp.get("rope_type", rp.get("type", "default"))
    for k in ROPE_KEYS:
        if rp.get(k) is not None:
            out[k] = rp[k]
    dt = getattr(cfg, "dtype", None) if major >= 5 else getattr(cfg, "torch_dtype", None)
    out["dtype"] = None if dt is None else str(dt).replace("torch.", "")
    return out


def main(dirs):
    import transformers
    from transformers import AutoConfig
    major = int(transformers.__version__.split(".")[0])
    handler = Collect()
    logging.getLogger("transformers").addHandler(handler)
    failed = 0
    for d in dirs:
        handler.messages.clear()
        try:
            cfg = AutoConfig.from_pretrained(d)
        except Exception as e:  # noqa: BLE001 - report any load failure
            print(f"FAIL {d}: transformers {transformers.__version__} could not load it: {e}")
            failed += 1
            continue
        got = resolved(cfg, major)
        exp_path = os.path.join(d, "lct_expected.json")
        problems = []
        if type(cfg).__name__ != "LlamaConfig":
            problems.append(f"config class {type(cfg).__name__}, expected LlamaConfig")
        if os.path.exists(exp_path):
            with open(exp_path) as f:
                exp = json.load(f)
            for k, v in exp.items():
                g = got.get(k)
                if isinstance(v, list) and not isinstance(g, list) and g is not None:
                    g = [g]
                if g != v or (type(g) is bool) != (type(v) is bool):
                    problems.append(f"{k}: transformers has {g!r}, lctrain meant {v!r}")
        status = "FAIL" if problems else "ok"
        failed += bool(problems)
        print(f"{status} {d} (transformers {transformers.__version__}): theta {got['rope_theta']!r}, "
              f"rope {got['rope_type']}, dtype {got['dtype']}")
        for p in problems:
            print("   ", p)
        for m in handler.messages:
            print("    transformers warned:", m.splitlines()[0])
    return 1 if failed else 0


if __name__ == "__main__":
    if len(sys.argv) < 2:
        print(__doc__)
        sys.exit(2)
    sys.exit(main(sys.argv[1:]))
