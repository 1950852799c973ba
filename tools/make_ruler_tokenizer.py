#!/usr/bin/env python3
"""Train the small BPE tokenizer of input/ruler_bpe.deck (docs/longctx.md, section 2b).

A byte-level model spends many tokens on one key, number or word, and a 2-3 layer model then has
to compose bytes into words before it can match or count them (what multikey, cwe and fwe ask).
This tokenizer gives the RULER tasks' words one token each: a byte-level BPE with Llama-3's
pre-tokenizer (digits in groups of 1-3, words with their leading space), trained with HF
`tokenizers` on text of the tasks' own generator (`lcdata ruler`, byte ids decoded back to text),
at seeds the evaluation (777) and the deck's training data (1, 2, 3) do not use.

usage: tools/make_ruler_tokenizer.py [--lcdata build/bin/lcdata] [--out input/ruler_bpe/tokenizer.json]
                                     [--vocab 3072] [--docs 200] [--seed 11]
                                     [--cases tests/data/tokenizer/ruler_bpe_cases.json]
Needs h5py and tokenizers (the project's .venv has tokenizers; `pip install h5py` there).
The output is committed; lctrain reads it with its own BPE (src/data/tokenizer_bpe.h), and
tests/tokenizer/test_tokenizer (RulerBpe) checks that its ids equal HF's on --cases: one document of
each task, encoded by HF with add_special_tokens=True (BOS first), with HF's decode of the ids.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

import h5py
import numpy as np
from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, processors, trainers

TASKS = ["niah_single_1", "niah_single_2", "niah_single_3", "niah_multikey_1", "niah_multikey_2",
         "niah_multikey_3", "niah_multivalue", "niah_multiquery", "vt", "cwe", "fwe", "copy"]
# Llama-3's split regex, the one src/data/tokenizer_pretok.cpp implements.
LLAMA3 = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|"
          r"\s*[\r\n]+|\s+(?!\S)|\s+")
SPECIALS = ["<|begin_of_text|>", "<|end_of_text|>"]


def task_texts(lcdata, task, docs, seed, tmp):
    """The documents of `lcdata ruler` for one task, as text (bytes tokenizer: ids < 256 are bytes)."""
    out = os.path.join(tmp, task + ".h5")
    cmd = [lcdata, "ruler", "--task", task, "--unit", "4096", "--docs", str(docs), "--seed", str(seed),
           "--out", out]
    if task == "copy":
        cmd += ["--max-gap", "2000"]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    with h5py.File(out, "r") as f:
        tokens = np.asarray(f["tokens"][:], dtype=np.int64)
        offsets = np.asarray(f["doc_offsets"][:], dtype=np.int64)
    texts = []
    for a, b in zip(offsets[:-1], offsets[1:]):
        ids = tokens[a:b]
        texts.append(bytes(int(t) for t in ids if t < 256).decode("utf-8", errors="replace"))
    return texts


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lcdata", default="build/bin/lcdata")
    ap.add_argument("--out", default="input/ruler_bpe/tokenizer.json")
    ap.add_argument("--vocab", type=int, default=3072)
    ap.add_argument("--docs", type=int, default=200, help="documents of 4096 bytes per task")
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--cases", default="tests/data/tokenizer/ruler_bpe_cases.json")
    a = ap.parse_args()

    texts, probes = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for t in TASKS:
            got = task_texts(a.lcdata, t, a.docs, a.seed, tmp)
            texts += got
            probes.append(got[0])
            print(f"{t}: {len(got)} documents, {sum(len(x) for x in got)} characters", file=sys.stderr)

    tok = Tokenizer(models.BPE(ignore_merges=True))
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(LLAMA3), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=False)])
    tok.decoder = decoders.ByteLevel()
    # BOS in front of every encoding with special tokens, as Llama-3's template does (the tasks'
    # prompts begin with it: encode_with_bos in lctrain, add_special_tokens=True in HF).
    tok.post_processor = processors.TemplateProcessing(single="<|begin_of_text|> $A",
                                                       special_tokens=[("<|begin_of_text|>", 0)])
    trainer = trainers.BpeTrainer(vocab_size=a.vocab, min_frequency=2, special_tokens=SPECIALS,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(texts, trainer)
    os.makedirs(os.path.dirname(a.out) or ".", exist_ok=True)
    tok.save(a.out)

    n_chars = sum(len(x) for x in texts)
    n_tok = sum(len(e.ids) for e in tok.encode_batch(texts))
    print(f"{a.out}: vocabulary {tok.get_vocab_size()}, {n_chars / n_tok:.2f} characters per token on the corpus")
    cases = []
    for text in probes:
        e = tok.encode(text)  # add_special_tokens=True: BOS first
        cases.append({"text": text, "ids": e.ids, "decoded": tok.decode(e.ids, skip_special_tokens=False)})
    with open(a.cases, "w") as f:
        json.dump({"generator": "tools/make_ruler_tokenizer.py", "tokenizer": a.out, "cases": cases}, f)
        f.write("\n")
    print(f"{a.cases}: {len(cases)} cases")
    sample = texts[0][:160]
    print("sample:", [tok.id_to_token(i) for i in tok.encode(sample).ids][:48])


if __name__ == "__main__":
    main()
