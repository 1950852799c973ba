# A record (2026-12-06), not a tool: greedy answers of a checkpoint to held-out training documents
# (made with lcdata ruler --seed 9), each generated word with its count in the prompt's list.
# usage: python answers.py DECK CHECKPOINT FILE.h5 cwe|fwe   (binaries under /work/build-cpu/bin,
# tokenizers and h5py in the Python that runs it)
import h5py, sys, subprocess, collections, re
from tokenizers import Tokenizer
tk=Tokenizer.from_file('/work/main/input/ruler_bpe/tokenizer.json')
deck, ck, f, task = sys.argv[1:5]
f=h5py.File(f); off=f['doc_offsets'][:]
tot=0; n=0
for d in range(len(off)-1):
    t=list(map(int,f['tokens'][off[d]:off[d+1]])); m=list(f['loss_mask'][off[d]:off[d+1]])
    if 1 not in m: continue
    i=m.index(1); j=i
    while j<len(m) and m[j]==1: j+=1
    if j-i < 8 and task=='cwe': continue
    p=t[:i]; ans=tk.decode(t[i:j])
    out=subprocess.run(['/work/build-cpu/bin/lctrain','--generate',deck,'--checkpoint',ck,'--prompt-ids',','.join(map(str,p)),'--max-new','60','--ids'],capture_output=True,text=True,env={'OMP_NUM_THREADS':'2','PATH':'/usr/bin'}).stdout.strip().splitlines()
    out=[l for l in out if re.fullmatch(r'[0-9,]+', l)]
    if not out: continue
    out=out[-1]
    ids=[int(x) for x in out.split(',') if x]
    if 1 in ids: ids=ids[:ids.index(1)]
    g=tk.decode(ids)
    text=tk.decode(p)
    if task=='cwe':
        items=re.findall(r'\d+\. (\S+)', text.split('\nQuestion')[0]); c=collections.Counter(items)
        gw=[w.strip() for w in g.split(',')]
    else:
        body=text.split('coded words.')[-1].split('\nQuestion')[0]; c=collections.Counter(body.split())
        gw=g.split()
    refs=[w.strip(' ,') for w in re.split(r'[ ,]+', ans) if w.strip(' ,')]
    sc=sum(r in g for r in refs)/len(refs); tot+=sc; n+=1
    print(f'{sc:.2f} gen:', ' '.join(f'{w}({c.get(w,0)})' for w in gw))
    print('     ref:', ' '.join(f'{w}({c.get(w,0)})' for w in refs))
    if n>=8: break
print('mean', tot/n)
