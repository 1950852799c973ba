# Exploration (issue 20): cwe practice with K = 1..10 common words (x F, F in 2..6) and U words once,
# RULER's cwe template with K in place of 10, answer in the causal order (second occurrences).
# Packs documents into units of 512 tokens as lcdata ruler does (BOS-led, end-of-text padding).
import re, sys, h5py, numpy as np, tokenizers
tok = tokenizers.Tokenizer.from_file("input/ruler_bpe/tokenizer.json")
src = open("src/eval/ruler_words.cpp").read()
words = sorted(set(w for s in re.findall(r'split\(\s*((?:"[^"]*"\s*)+)\)', src) for w in " ".join(re.findall(r'"([^"]*)"', s)).split()))
units, out, seed = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
rng = np.random.default_rng(seed)
U, BOS, EOT = 512, 0, 1
def doc():
    k = int(rng.integers(1, 11)); f = int(rng.integers(2, 7)); u = int(rng.integers(0, 3 * k + 6))
    ws = list(rng.choice(words, k + u, replace=False))
    lst = [w for i, w in enumerate(ws) for _ in range(f if i < k else 1)]
    rng.shuffle(lst)
    seen, order = {}, []
    for w in lst:
        seen[w] = seen.get(w, 0) + 1
        if seen[w] == 2: order.append(w)
    ctx = " ".join(f"{i + 1}. {w}" for i, w in enumerate(lst))
    p = ("Below is a numbered list of words. In these words, some appear more often than others. Memorize the ones "
         f"that appear most often.\n{ctx}\nQuestion: What are the {k} most common words in the above list? Answer: The top {k} words that appear most "
         "often in the list are:")
    a = " " + ", ".join(order)
    pi = [BOS] + tok.encode(p, add_special_tokens=False).ids; ai = tok.encode(a, add_special_tokens=False).ids + [EOT]
    return pi + ai, [0] * len(pi) + [1] * len(ai)
T, M = [], []
for _ in range(units):
    t, m = [], []
    while True:
        d, dm = doc()
        if len(t) + len(d) > U: break
        t += d; m += dm
    t += [EOT] * (U - len(t)); m += [0] * (U - len(m))
    T += t; M += m
with h5py.File(out, "w") as h:
    h["tokens"] = np.array(T, np.uint16); h["loss_mask"] = np.array(M, np.uint8)
    h["doc_offsets"] = np.arange(0, units * U + 1, U, dtype=np.int64)
    h.attrs["eod_token"] = np.int64(-1); h.attrs["format_version"] = np.int64(1)
    h.attrs["tokenizer"] = np.bytes_(b"input/ruler_bpe/tokenizer.json"); h.attrs["vocab_size"] = np.int64(3072)
print(len(words), "words;", units, "units;", sum(M), "answer tokens")
