# Exploration (issue 20): cwe practice with K = 1..10 common words (x F, F in 2..6) and U words once,
# RULER's cwe template with K in place of 10, answer in the causal order (second occurrences).
# Packs documents into units of 512 tokens as lcdata ruler does (BOS-led, end-of-text padding).
import sys, numpy as np, tokenizers
from practice_units import ruler_words, pack_and_write
tok = tokenizers.Tokenizer.from_file("input/ruler_bpe/tokenizer.json")
words = ruler_words()
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
print(len(words), "words;", units, "units;", pack_and_write(doc, units, out, U), "answer tokens")
