# The long-distance copy data of exploration runs g and l (data/gapcopy.h5): 6000 units of 1024
# tokens of documents BOS + s + "\n" + noise (0-900 chars) + "\n|" then " " + s + end-of-text (loss
# on that), s = 1-4 values in the RULER tasks' formats; then
#   lcdata tokens --out data/gapcopy.h5 --vocab-size 258 gapcopy.jsonl
# (lcdata ruler --task copy is the C++ version the committed recipe uses.)
import json, random
r = random.Random(5)
noise = "The grass is green. The sky is blue. The sun is yellow. Here we go. There and back again."
adj = "able acid angry autumn awake bad bitter black blue boiling bright broken brown busy calm careful cheap clean clear cold".split()
noun = "account actor airport album anchor animal answer apple arch army arrow artist baby badge bakery balloon band bank barn".split()
def item():
    k = r.randrange(5)
    if k == 0: return str(r.randint(1000000, 9999999))
    if k == 1:
        h = lambda n: ''.join(r.choice('0123456789abcdef') for _ in range(n))
        return f"{h(8)}-{h(4)}-4{h(3)}-{h(4)}-{h(12)}"
    if k == 2: return ''.join(r.choice('ABCDEFGHIJKLMNOPQRSTUVWXYZ') for _ in range(5))
    if k == 3: return r.choice(adj) + '-' + r.choice(noun)
    return ''.join(r.choice('abcdefghijklmnopqrstuvwxyz') for _ in range(6))
with open('gapcopy.jsonl','w') as f:
    for i in range(6000):
        toks, mask = [], []
        while True:
            s = ' '.join(item() for _ in range(r.randint(1, 4)))
            room = 1024 - len(toks)
            need = 2 + 2 * len(s) + 4
            if need > room: break
            gap = r.randint(0, min(900, room - need))
            filler = (noise + ' ') * (gap // len(noise) + 1)
            filler = filler[:gap]
            text_a = s + '\n' + filler + '\n|'
            doc = [256] + [ord(c) for c in text_a]
            m = [0] * len(doc)
            ans = [ord(c) for c in ' ' + s] + [257]
            toks += doc + ans; mask += m + [1] * len(ans)
            if 1024 - len(toks) < 60: break
        toks += [257] * (1024 - len(toks)); mask += [0] * (1024 - len(mask))
        f.write(json.dumps({"tokens": toks, "loss_mask": mask}) + "\n")
