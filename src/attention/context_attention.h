// The one attention entry point of the model: context parallelism over cp = U x R ranks,
// whatever parallel.cp_comm_type is (docs/parallel.md, "Hierarchical context parallelism").
//
//   p2p (U = 1)      ring attention over the R = cp ring: forwards to RingAttention, bit for bit.
//   a2a, a2a+p2p     DeepSpeed-Ulysses all-to-all over the U ranks of a node x ring attention over
//                    the R ring positions (USP / Megatron's hierarchical cp):
//
// Per call, with this rank's Hq, Hkv heads (after tp) and Tl = T / cp tokens (the zigzag chunks of
// its sharding index cp_rank = a2a_rank + U * ring_rank), h = Hq / U, hk = max(Hkv / U, 1):
//   forward   all_to_all q   [B, Tl, Hq, D]    act  sequence -> head: each a2a member receives h
//                                                   query heads for the U x Tl tokens of its group
//             all_to_all kv  [2, B, Tl, Hkv, D] act  sequence -> head: each member receives the hk
//                                                   K/V heads its query heads read (GQA: query head
//                                                   g reads K/V head g / (Hq / Hkv)); when U > Hkv
//                                                   each K/V head goes to U / Hkv members
//             ring attention over R with (T, cp = R, h, hk, D) and the layout merge_a2a(meta, U)
//             all_to_all out [B, Tl, Hq, D]    acc  head -> sequence
//   backward  all_to_all q (act), kv (act), out (acc) sequence -> head again (nothing saved per
//             layer: memory stays flat), all_to_all dout (act: the dtype the model's dout has)
//             sequence -> head, ring backward, all_to_all dq (acc) and dkv (acc) head -> sequence;
//             the dK/dV of a replicated K/V head's copies are summed into the one head.
// So per layer and micro-batch exactly 3 all_to_all calls forward and 6 backward, plus 3 more in
// the backward's recompute of the forward under train.recompute = layer (which calls forward()).
// Each call sends send.bytes() / U to each of the U - 1 other members (Traffic::AllToAll), where
// send holds U parts of: q  B Tl h D act; kv  2 B Tl hk D act; out, dq  B Tl h D acc;
// dout  B Tl h D act; dkv  2 B Tl hk D acc.
//
// The log-sum-exp of the head layout, [B, h, U Tl], has the element count of the model's lse
// buffer [B, Hq, Tl]: forward stores it there (opaque to the model) and backward reads it back.
//
// Memory (U > 1, allocated once, shared by the layers; Mem::Activations): head-layout q and kv
// (act), out, dout-as-act, dq, dkv (out/dq/dkv acc; dout act) of B x U Tl tokens, two staging
// buffers (send, receive) of max(B Tl Hq D, 2 B Tl U hk D) acc elements each, and the inner
// RingAttention's buffers for its shape (B, T, cp = R, h, hk, D).
#pragma once

#include <memory>
#include <vector>

#include "attention/attention_meta.h"
#include "attention/ring_attention.h"
#include "ops/ops.h"
#include "ops/owned_buffers.h"
#include "parallel/comm.h"

namespace lct {

class ContextAttention {
 public:
  // shape: the model's view (cp = U x R, Hq / Hkv this rank's heads, zigzag = the sharding).
  // a2a: the U group (rank = a2a_rank = cp_rank % U; may be null when U = 1); ring: the R ring
  // (rank = ring_rank = cp_rank / U; may be null when R = 1). Until set_meta() the layout is the
  // plain one of the shape's sharding. Checks the head rules (layout.h check_cp_heads).
  ContextAttention(Ops& ops, Comm* a2a, Comm* ring, int cp_rank, const RingShape& shape, int U);
  ~ContextAttention();
  ContextAttention(const ContextAttention&) = delete;
  ContextAttention& operator=(const ContextAttention&) = delete;

  // The micro-batch's layout over cp = U x R sharding indices (attention_meta.h).
  void set_meta(const AttentionMeta& m);

  // As RingAttention: q [B, Tl, Hq, D] act, kv [2, B, Tl, Hkv, D] act in this rank's local order;
  // out [B, Tl, Hq, D] acc; lse: the model's [B, Hq, Tl] acc buffer (head layout when U > 1).
  void forward(Tensor out, Tensor lse, const Tensor& q, const Tensor& kv);
  // dq [B, Tl, Hq, D] acc, dkv [2, B, Tl, Hkv, D] acc (overwritten); dout act; out, lse as forward left them.
  void backward(Tensor dq, Tensor dkv, const Tensor& dout, const Tensor& q, const Tensor& kv, const Tensor& out,
                const Tensor& lse);

  // The inner ring's statistics (hops of the R ring; score elements of this rank's h heads),
  // plus the all-to-all calls and their time.
  RingStats& stats() { return ring_->stats; }
  void set_count_work(bool on) { ring_->count_work = on; }
  int a2a_size() const { return U_; }

 private:
  // seq -> head: src [Bx, Tl, Hsrc, D] (Bx = B, or 2B for K/V) to the head layout dst
  // [Bx, U Tl, hh, D]; part j = heads (j / f) hh .. + hh (f > 1: replicated K/V heads).
  void to_heads(Tensor dst, const Tensor& src, int64_t Bx, int64_t Hsrc, int64_t hh, int64_t f);
  // head -> seq: src [Bx, U Tl, hh, D] back to dst [Bx, Tl, Hdst, D]; the f copies of a
  // replicated head are summed.
  void to_sequence(Tensor dst, const Tensor& src, int64_t Bx, int64_t Hdst, int64_t hh, int64_t f);
  void all_to_all(const Tensor& send, Tensor recv);

  Ops& ops_;
  Comm* a2a_;
  int U_, cp_rank_;
  RingShape s_;                 // the model's view
  int64_t h_ = 0, hk_ = 0, f_ = 1;  // heads per member, K/V heads per member, K/V replication
  std::unique_ptr<RingAttention> ring_;
  OwnedBuffers buffers_{ops_};
  Tensor qh_, kvh_, outh_, douth_, dqh_, dkvh_;  // head layout, B x U Tl tokens
  void* send_ = nullptr;
  void* recv_ = nullptr;
  size_t stage_bytes_ = 0;
};

}  // namespace lct
