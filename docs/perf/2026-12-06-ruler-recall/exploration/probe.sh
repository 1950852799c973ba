#!/bin/bash
# probe.sh DECK FILE.h5 FIRST_UNIT COUNT : greedy answer to the first query of each unit's first document
DECK=$1 F=$2 U0=$3 N=$4
/work/main/.venv/bin/python - "$F" "$U0" "$N" <<'PY' > /tmp/probe_prompts.txt
import h5py, sys
f=h5py.File(sys.argv[1]); U0=int(sys.argv[2]); N=int(sys.argv[3])
L=f['tokens'].shape[0]//(f['doc_offsets'].shape[0]-1)
for u in range(U0,U0+N):
  t=f['tokens'][u*L:(u+1)*L]; m=list(f['loss_mask'][u*L:(u+1)*L])
  i=m.index(1); j=i
  while j<L and m[j]==1: j+=1
  print(','.join(str(int(x)) for x in t[:i]), '|', ','.join(str(int(x)) for x in t[i:j]))
PY
ok=0; n=0
while IFS='|' read -r p a; do p=$(echo $p); a=$(echo $a | sed 's/,1$//'); 
  g=$(OMP_NUM_THREADS=2 /work/build-cpu/bin/lctrain --generate $DECK ${CKPT:+--checkpoint $CKPT} --prompt-ids "$p" --max-new $(( $(echo $a | tr ',' '\n' | wc -l) )) --ids 2>/dev/null | tail -1)
  n=$((n+1)); [[ "$g" == "$a" ]] && ok=$((ok+1))
done < /tmp/probe_prompts.txt
echo "$(basename $F): $ok / $n exact"
