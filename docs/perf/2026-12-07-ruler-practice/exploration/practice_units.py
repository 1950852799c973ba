# Shared by cwe_practice.py and mark_practice.py (records of issue 20's exploration, 2026-12-07):
# the word list of src/eval/ruler_words.cpp, and documents packed into units of U tokens as
# lcdata ruler packs them (BOS-led documents, end-of-text padding without loss) in its HDF5 layout.
import re
import h5py
import numpy as np

EOT = 1


def ruler_words():
    src = open("src/eval/ruler_words.cpp").read()
    return sorted(set(w for s in re.findall(r'split\(\s*((?:"[^"]*"\s*)+)\)', src)
                      for w in " ".join(re.findall(r'"([^"]*)"', s)).split()))


def pack_and_write(doc, units, out, U, one=False):
    """Fills `units` units of U tokens with doc() -> (tokens, mask) documents (one per unit with
    `one`; a document longer than U is drawn again) and writes them to `out`. Returns the mask's sum."""
    T, M = [], []
    for _ in range(units):
        t, m = [], []
        while True:
            d, dm = doc()
            if len(d) > U: continue
            if len(t) + len(d) > U: break
            t += d; m += dm
            if one: break
        t += [EOT] * (U - len(t)); m += [0] * (U - len(m))
        T += t; M += m
    with h5py.File(out, "w") as h:
        h["tokens"] = np.array(T, np.uint16); h["loss_mask"] = np.array(M, np.uint8)
        h["doc_offsets"] = np.arange(0, units * U + 1, U, dtype=np.int64)
        h.attrs["eod_token"] = np.int64(-1); h.attrs["format_version"] = np.int64(1)
        h.attrs["tokenizer"] = np.bytes_(b"input/ruler_bpe/tokenizer.json"); h.attrs["vocab_size"] = np.int64(3072)
    return sum(M)
