#!/usr/bin/env bash
# jobs/multi_node.sbatch across two SLURM nodes (n1, n2: two slurmd on this host, MPI over
# loopback TCP) with node detection left on (parallel.ranks_per_node = 0):
#   1. the same deck on one node (-N1, 4 ranks, cp = 4): layout.json shows 1 node;
#   2. -N2 --ntasks-per-node=2 (cp = 4): MPI_Comm_split_type finds 2 nodes x 2 ranks, the
#      network-aware cp ring crosses between the nodes on one rail (ring_hops: cross_rail 0,
#      same_rail 2, intra_node 2), and every step's loss equals the one-node run's within 1e-5
#      relative (the ring order, and so the summation order, differs);
#   3. the same over UCX with the per-rank NIC selection of an InfiniBand cluster (NIC_BY_RAIL with
#      loopback as every rail's NIC, RAIL_MAP=1,0): each rank reports its rail's NIC, layout.json
#      has the mapped rails, and the losses equal run 2's bit for bit.
# Exit 77 (skipped) when SLURM cannot be installed or run here (non-root, no apt-get).
set -euo pipefail
test_name=jobs_two_node
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=test_jobs_lib.sh
source "$here/test_jobs_lib.sh"

# Each node claims 4 CPUs (the host has 2; SlurmdParameters=config_overrides), so that the one-node
# comparison run may place 4 tasks on n1.
export LCT_SLURM_CPUS=${LCT_SLURM_CPUS:-4}
jobs_setup two
# Both "nodes" share this host's cores, but each claims its own, so Open MPI does not know it is
# oversubscribed and busy-polls: ranks waiting in a collective starve the others (a 1.6 MB
# checkpoint took 12-17 s). Yielding when idle brings it back to well under a second.
export MPIRUN_FLAGS="$LCT_SLURM_MPIRUN_FLAGS --mca mpi_yield_when_idle 1"
deck=$src_dir/input/slurm_tiny.deck
steps=12
common="--parallel.cp=4 --train.steps=$steps --train.micro_batch=1 --checkpoint.every=0"

# check_layout DIR NODES: layout.json of a 4-rank cp = 4 run, detected on NODES node(s).
check_layout() {
  local dir=$1 nodes=$2 f=$1/layout.json
  [ -s "$f" ] || fail "no $f"
  [ "$(json_field "$f" world_size)" = 4 ] || fail "$f: world_size is not 4"
  [ "$(json_field "$f" cp)" = 4 ] || fail "$f: cp is not 4"
  [ "$(json_field "$f" nodes)" = "$nodes" ] || { cat "$f" >&2; fail "$f: $nodes node(s) expected"; }
  [ "$(json_field "$f" ranks_per_node)" = $((4 / nodes)) ] || { cat "$f" >&2; fail "$f: $((4 / nodes)) ranks per node expected"; }
  grep -q "^parallel.ranks_per_node = 0\b" "$dir/effective.deck" ||
    fail "$dir/effective.deck: parallel.ranks_per_node is not 0 (node detection must stay on)"
}

phase "one node: -N1 -n4 multi_node.sbatch"
id=$(EXTRA_ARGS="$common --run.out_dir=out/one" slurm_sbatch -N1 --ntasks-per-node=4 \
  --output=one.out "$jobs_dir/multi_node.sbatch" "$deck")
expect_job "$id" COMPLETED 0 0 120 "$work/one.out"
check_layout "$work/out/one" 1
[ "$(slurm_job_field "$id" NodeList)" = n1 ] || fail "the one-node job ran on $(slurm_job_field "$id" NodeList), not n1"

phase "two nodes: -N2 --ntasks-per-node=2 multi_node.sbatch"
id=$(EXTRA_ARGS="$common --run.out_dir=out/two" slurm_sbatch -N2 --ntasks-per-node=2 \
  --output=two.out "$jobs_dir/multi_node.sbatch" "$deck")
expect_job "$id" COMPLETED 0 0 120 "$work/two.out"
two=$work/out/two
check_layout "$two" 2
[ "$(slurm_job_field "$id" NodeList)" = "n[1-2]" ] || fail "the two-node job ran on $(slurm_job_field "$id" NodeList)"
f=$two/layout.json
# Ranks 0,1 on node 0 and 2,3 on node 1 (blocked: mpirun --map-by ppr:2:node), rails = local ranks.
nodes_of=$(sed -n 's/^ *"node": \([0-9]*\),$/\1/p' "$f" | paste -sd' ' -)
rails_of=$(sed -n 's/^ *"rail": \([0-9]*\),$/\1/p' "$f" | paste -sd' ' -)
[ "$nodes_of" = "0 0 1 1" ] || { cat "$f" >&2; fail "$f: nodes of ranks 0..3 are '$nodes_of', expected '0 0 1 1'"; }
[ "$rails_of" = "0 1 0 1" ] || { cat "$f" >&2; fail "$f: rails of ranks 0..3 are '$rails_of', expected '0 1 0 1'"; }
hops="$(json_field "$f" intra_node) $(json_field "$f" same_rail) $(json_field "$f" cross_rail)"
[ "$hops" = "2 2 0" ] || { cat "$f" >&2; fail "$f: ring hops intra/same-rail/cross-rail are '$hops', expected '2 2 0'"; }
grep -q "^layout: 4 ranks on 2 node(s) x 2, tp=1 cp=4 dp=1, ring order aware; ring hops: 2 intra-node, 2 same-rail, 0 cross-rail" \
  "$work/two.out" || { show_log "$work/two.out"; fail "the layout line in the job output does not show the two-node ring"; }
ring=$(awk '/"rank":/ {gsub(/[^0-9]/, "", $0); r = $0} /"cp_next":/ {gsub(/[^0-9]/, "", $0); printf "%s->%s ", r, $0}' "$f")
note "two-node layout (detected): nodes of ranks 0..3: $nodes_of, rails: $rails_of, ring hops intra/same-rail/cross-rail: $hops"
note "cp ring (rank->cp_next): $ring"

phase "two nodes, per-rank NIC by rail (NIC_BY_RAIL, RAIL_MAP)"
# The InfiniBand path of multi_node.sbatch with loopback standing in for the HCAs: Open MPI over
# UCX (pml ucx; tcp here, rc on a cluster), each rank's UCX_NET_DEVICES set by the per-rank wrapper
# from its rail, and RAIL_MAP=1,0 (local rank 0 on rail 1) passed to lctrain as parallel.rail_map.
id=$(EXTRA_ARGS="$common --run.out_dir=out/rails" NIC_BY_RAIL="lo lo" RAIL_MAP="1,0" UCX_TLS=tcp,self \
  MPIRUN_FLAGS="$MPIRUN_FLAGS --mca pml_ucx_tls any --mca pml_ucx_devices any" \
  slurm_sbatch -N2 --ntasks-per-node=2 --output=rails.out "$jobs_dir/multi_node.sbatch" "$deck")
expect_job "$id" COMPLETED 0 0 120 "$work/rails.out"
check_layout "$work/out/rails" 2
f=$work/out/rails/layout.json
rails_of=$(sed -n 's/^ *"rail": \([0-9]*\),$/\1/p' "$f" | paste -sd' ' -)
[ "$rails_of" = "1 0 1 0" ] || { cat "$f" >&2; fail "$f: rails of ranks 0..3 are '$rails_of', expected '1 0 1 0' (RAIL_MAP=1,0)"; }
hops="$(json_field "$f" intra_node) $(json_field "$f" same_rail) $(json_field "$f" cross_rail)"
[ "$hops" = "2 2 0" ] || { cat "$f" >&2; fail "$f: ring hops are '$hops', expected '2 2 0'"; }
for r in 0 1 2 3; do
  node=n$((r / 2 + 1)) local=$((r % 2)) rail=$((1 - r % 2))
  grep -q "^rank $r (node $node, local rank $local): rail $rail -> UCX_NET_DEVICES=lo\$" "$work/rails.out" ||
    { show_log "$work/rails.out"; fail "rank $r: no 'rail $rail -> UCX_NET_DEVICES' line from the per-rank wrapper"; }
done
grep -q -- "--mca pml ucx " "$work/rails.out" || fail "the NIC_BY_RAIL run did not select Open MPI's UCX pml"
note "NIC_BY_RAIL run: rails of ranks 0..3: $rails_of, ring hops $hops; $(grep -c ': rail . -> UCX_NET_DEVICES=' "$work/rails.out") ranks set UCX_NET_DEVICES"

phase "compare losses (one node vs two nodes)"
losses "$work/out/one/metrics.jsonl" >"$scratch/one.losses"
losses "$two/metrics.jsonl" >"$scratch/two.losses"
losses "$work/out/rails/metrics.jsonl" >"$scratch/rails.losses"
cmp -s "$scratch/two.losses" "$scratch/rails.losses" || {
  paste "$scratch/two.losses" "$scratch/rails.losses" >&2
  fail "the NIC_BY_RAIL run (UCX) has other losses than the plain two-node run"
}
[ "$(wc -l <"$scratch/one.losses")" = $steps ] || fail "one-node run: expected $steps step rows"
join "$scratch/one.losses" "$scratch/two.losses" >"$scratch/joined.losses"
[ "$(wc -l <"$scratch/joined.losses")" = $steps ] || fail "two-node run: expected the same $steps steps"
worst=$(awk '{ d = ($2 - $3) / $2; if (d < 0) d = -d; if (d > w) w = d } END { printf "%.3g", w }' "$scratch/joined.losses")
awk -v w="$worst" 'BEGIN { exit !(w <= 1e-5) }' || {
  cat "$scratch/joined.losses" >&2
  fail "two-node losses differ from one-node losses by $worst relative (> 1e-5)"
}
note "losses, $steps steps: max relative difference one node vs two nodes = $worst; final: $(tail -n1 "$scratch/joined.losses")"

phase "stop"
slurm_stop
echo "PASS: $test_name (scratch: $scratch)"
