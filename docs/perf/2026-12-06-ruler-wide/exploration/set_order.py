# A record (2026-12-06), not a tool: rewrites out/ruler_wide_data/{cwe,fwe}.h5 into /tmp/x6/*_set.h5
# with each answer's words in a random order (numpy seed 11). An answer is a run of loss-mask-1
# tokens ending in end-of-text (id 1); cwe's words are split at the comma (id 13), fwe's at a token
# that starts with a space. Needs h5py, numpy and tokenizers.
import h5py, numpy as np
from tokenizers import Tokenizer
tk = Tokenizer.from_file("input/ruler_bpe/tokenizer.json")
rng = np.random.default_rng(11)
for t in ["cwe", "fwe"]:
    src = h5py.File(f"out/ruler_wide_data/{t}.h5")
    tok = src["tokens"][:].copy(); m = src["loss_mask"][:].astype(np.int8)
    dm = np.diff(np.concatenate([[0], m, [0]]))
    starts, ends = np.nonzero(dm == 1)[0], np.nonzero(dm == -1)[0]
    for i, e in zip(starts, ends):
        j = e - 1
        assert tok[j] == 1
        span = [int(x) for x in tok[i:j]]
        if t == "cwe":
            groups = [[]]
            for x in span:
                if x == 13: groups.append([])
                else: groups[-1].append(x)
            rng.shuffle(groups); new = []
            for k, g in enumerate(groups): new += ([13] if k else []) + g
        else:
            groups = []
            for x in span:
                if tk.id_to_token(x).startswith("Ġ") or not groups: groups.append([x])
                else: groups[-1].append(x)
            assert len(groups) == 3
            rng.shuffle(groups); new = sum(groups, [])
        tok[i:j] = new
    with h5py.File(f"/tmp/x6/{t}_set.h5", "w") as f:
        for k in src: f[k] = tok if k == "tokens" else src[k][:]
        for k, v in src.attrs.items(): f.attrs[k] = v
