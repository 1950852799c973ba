# The stage-1 copy data of exploration runs w, g and l (data/copy.h5): 20000 documents of 64 tokens,
# BOS + s + "|" + s (s: 8 to 28 random [a-z0-9]), loss on the second s; then
#   lcdata tokens --out data/copy.h5 --vocab-size 258 copy.jsonl
import json, random
r = random.Random(1)
with open('copy.jsonl','w') as f:
    for i in range(20000):
        n = r.randint(8, 28)
        s = ''.join(r.choice('abcdefghijklmnopqrstuvwxyz0123456789') for _ in range(n))
        text = s + '|' + s
        toks = [256] + [ord(c) for c in text]
        toks += [257] * (64 - len(toks))
        mask = [0] * (2 + n) + [1] * n + [0] * (64 - 2 - 2 * n)
        f.write(json.dumps({"tokens": toks[:64], "loss_mask": mask[:64]}) + "\n")
