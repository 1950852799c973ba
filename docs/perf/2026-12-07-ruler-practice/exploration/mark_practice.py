# Exploration (issue 20): "mark the repeats" practice. cwe-like numbered lists where a word seen
# before is followed by "*", and fwe-like coded texts where a coded word is followed by "+" (new)
# or "*" (seen before). Loss only on the token after each word: a dense signal for the
# duplicate-detection feature that cwe and fwe need at a word's position.
import sys, string, numpy as np, tokenizers
from practice_units import ruler_words, pack_and_write
tok = tokenizers.Tokenizer.from_file("input/ruler_bpe/tokenizer.json")
words = ruler_words()
kind, units, out, seed = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
rng = np.random.default_rng(seed)
U, BOS, EOT = int(sys.argv[5]) if len(sys.argv) > 5 else 512, 0, 1
enc = lambda s: tok.encode(s, add_special_tokens=False).ids
def fwe_doc():
    n = int(rng.integers(40, 170))
    vocab = ["".join(rng.choice(list(string.ascii_lowercase), 6)) for _ in range(max(5, n // 5))]
    k = np.arange(1, len(vocab) + 1); cnt = (n * k ** -2.0 / (np.pi ** 2 / 6)).astype(int)
    lst = [w if i else "..." for i, (w, c) in enumerate(zip(vocab, cnt)) for _ in range(c)]
    rng.shuffle(lst)
    t = [BOS] + enc("Read the following coded text. A coded word is marked + the first time and * when it appeared before.")
    m = [0] * len(t); seen = set()
    for w in lst:
        piece = enc(" " + w); t += piece; m += [0] * len(piece)
        if w != "...":
            t.append(enc("*" if w in seen else "+")[0]); m.append(1); seen.add(w)
    return t, m
def cwe_doc():
    # loss on the token after each word: "*" after a repeat, else the next item's number token
    k = int(rng.integers(1, 11)); f = int(rng.integers(2, 7)); u = int(rng.integers(0, 30))
    ws = list(rng.choice(words, k + u, replace=False))
    lst = [w for i, w in enumerate(ws) for _ in range(f if i < k else 1)]
    rng.shuffle(lst)
    t = [BOS] + enc("Below is a numbered list of words. A word that appeared before is marked with *.\n")
    m = [0] * len(t); seen = set(); target_next = False
    for i, w in enumerate(lst):
        piece = enc(f"{' ' if i else ''}{i + 1}.") + enc(" " + w)
        t += piece; m += [1 if (target_next and j == 0) else 0 for j in range(len(piece))]
        target_next = False
        if w in seen: t.append(enc("*")[0]); m.append(1)
        else: target_next = True
        seen.add(w)
    t.append(EOT); m.append(1 if target_next else 0)
    return t, m
doc = cwe_doc if kind == "cwe" else fwe_doc
print(kind, units, "units;", pack_and_write(doc, units, out, U, one=len(sys.argv) > 6), "loss tokens")
