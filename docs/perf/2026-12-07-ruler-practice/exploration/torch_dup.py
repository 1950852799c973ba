# Exploration (issue 20): the same "mark the repeats" training in PyTorch + HF Llama, to tell a
# hard task from a trainer defect. Usage: torch_dup.py DATA.h5 STEPS [dim layers heads theta]
import sys, math, h5py, numpy as np, torch
from transformers import LlamaConfig, LlamaForCausalLM
torch.manual_seed(1); torch.set_num_threads(2)
f = h5py.File(sys.argv[1]); steps = int(sys.argv[2])
dim, layers, heads, theta = (int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), float(sys.argv[6])) if len(sys.argv) > 6 else (128, 3, 4, 10000.0)
tok = torch.tensor(f["tokens"][:].astype(np.int64)); msk = torch.tensor(f["loss_mask"][:].astype(np.float32))
T = 128; n = tok.numel() // T; tok = tok[: n * T].view(n, T); msk = msk[: n * T].view(n, T)
cfg = LlamaConfig(vocab_size=3072, hidden_size=dim, intermediate_size=3 * dim, num_hidden_layers=layers,
                  num_attention_heads=heads, num_key_value_heads=heads, max_position_embeddings=T,
                  rope_theta=theta, tie_word_embeddings=True, attention_bias=False)
m = LlamaForCausalLM(cfg)
opt = torch.optim.AdamW(m.parameters(), lr=1e-3, betas=(0.9, 0.95), eps=1e-8, weight_decay=0)
B = 32; acc = []
for s in range(steps):
    lr = 1e-3 * (s + 1) / 30 if s < 30 else 1e-4 + 0.5 * (1e-3 - 1e-4) * (1 + math.cos(math.pi * (s - 30) / (steps - 30)))
    for g in opt.param_groups: g["lr"] = lr
    i = torch.arange(s * B, (s + 1) * B) % n
    x = tok[i]; logits = m(input_ids=x).logits[:, :-1]
    y = x[:, 1:]; w = msk[i][:, 1:]
    l = (torch.nn.functional.cross_entropy(logits.reshape(-1, 3072), y.reshape(-1), reduction="none") * w.reshape(-1)).sum() / w.sum()
    opt.zero_grad(); l.backward(); torch.nn.utils.clip_grad_norm_(m.parameters(), 1.0); opt.step()
    acc.append(l.item())
    if (s + 1) % 50 == 0: print(f"step {s + 1} loss {np.mean(acc[-50:]):.4f}", flush=True)
