// Ring attention over the cp communicator: every rank computes attention of its queries against
// each K/V block in turn while the blocks travel round the ring (context parallelism).
//
// Forward: cp steps; at each step the block in hand is sent to the next rank and the following one
// received from the previous rank (non-blocking, double buffer: at most two remote blocks are held)
// while attention against the block in hand is computed; partial results merge by log-sum-exp in
// the acc dtype (the first block is written, not merged). Backward recomputes from the saved
// log-sum-exp: dQ accumulates locally; each block's dK/dV accumulator travels with it and returns
// to its owner. Only KV heads travel (GQA). cp = 1 runs the same code with no transfers.
//
// Masking comes from the micro-batch's descriptor (attention_meta.h, set_meta): which slots each
// ring position holds and, with packed documents, where each query's document starts. A hop whose
// K/V block no local query can see is skipped on the compute side (the block still travels on)
// and counted (RingStats::hops_skipped, metrics.jsonl).
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "attention/attention_meta.h"
#include "core/tensor.h"
#include "ops/ops.h"
#include "ops/owned_buffers.h"
#include "parallel/comm.h"

namespace lct {

struct RingShape {
  int64_t B = 1, T = 0;  // sequences per micro-batch and FULL sequence length
  int64_t Hq = 1, Hkv = 1, D = 1;  // this rank's heads (after tp split)
  int cp = 1;
  bool zigzag = true;
  int64_t T_local() const { return T / cp; }
};

struct RingStats {
  int64_t score_elements = 0;   // visible (query, key) pairs computed, summed over heads and batch
  int64_t hops_skipped = 0;     // ring hops (forward and backward) whose block no local query sees
  int64_t blocks_sent = 0;      // K/V blocks sent (forward and backward)
  int64_t dkv_sent = 0;         // dK/dV accumulators sent
  int max_remote_blocks = 0;    // remote K/V blocks held at once
  double compute_s = 0, wait_s = 0, transfer_s = 0, ring_s = 0;
  int64_t a2a_calls = 0;        // all-to-all calls of ContextAttention (U > 1), forward and backward
  double a2a_s = 0;             // their time, packing excluded
  void reset() { *this = RingStats(); }
};

class RingAttention {
 public:
  // cp may be null when shape.cp == 1. ring_pos is this rank's position in the ring.
  // Until set_meta() the layout is plain causal attention over the shape's sharding.
  RingAttention(Ops& ops, Comm* cp, int ring_pos, const RingShape& shape);
  ~RingAttention();
  RingAttention(const RingAttention&) = delete;
  RingAttention& operator=(const RingAttention&) = delete;

  // The micro-batch's layout (B rows of T slots, cp ring positions as the shape's): uploads this
  // rank's query positions and document starts and every ring position's key positions, and
  // counts the visible pairs of each hop. Copied: `m` need not outlive the call.
  void set_meta(const AttentionMeta& m);

  // q: [B, Tl, Hq, D] act, this rank's queries in the layout's local order; kv: [2, B, Tl, Hkv, D]
  // act (K then V). out: [B, Tl, Hq, D] acc; lse: [B, Hq, Tl] acc.
  void forward(Tensor out, Tensor lse, const Tensor& q, const Tensor& kv);
  // dq: [B, Tl, Hq, D] acc (overwritten); dkv: [2, B, Tl, Hkv, D] acc (overwritten) for the local block.
  void backward(Tensor dq, Tensor dkv, const Tensor& dout, const Tensor& q, const Tensor& kv, const Tensor& out,
                const Tensor& lse);

  RingStats stats;
  bool count_work = true;  // fill stats.score_elements (host-side counting)

 private:
  Tensor k_of(const Tensor& kv) const;
  Tensor v_of(const Tensor& kv) const;
  // The mask of the hop whose block started at ring position `src`; counts its work.
  AttnMask hop_mask(int src);

  Ops& ops_;
  Comm* cp_;
  int pos_;
  RingShape s_;
  bool per_row_ = false, doc_mask_ = false;
  std::vector<int64_t> visible_;  // per source ring position: visible (query, key) pairs, all rows
  OwnedBuffers buffers_{ops_};
  // Device positions: qpos_/qstart_ [B, Tl] (or [Tl]); kpos_all_ [cp][B, Tl] (or [cp][Tl]).
  Tensor qpos_, qstart_, kpos_all_;
  Tensor kv_buf_[2], out_tmp_, lse_tmp_, dkv_part_, dkv_buf_[2];
};

}  // namespace lct
