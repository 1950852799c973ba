// The parameter store of a training run (model/param_store.h) at ZeRO stage 0-3, sharded over the
// dp x cp group (cp ranks hold identical weights, so they shard like dp ranks) with the per-unit
// layout of optim/shard_layout.h:
//
//           weights (act dtype)                   gradients (acc dtype)
//   zero 0  resident                              resident, all-reduced at the step
//   zero 1  resident                              resident, reduce-scattered unit by unit at the step
//   zero 2  resident                              one buffer per unit in backward, reduce-scattered
//                                                 to its owners as the unit's backward ends (one
//                                                 reduction in flight while the next unit computes);
//                                                 the shard accumulates over micro-batches
//   zero 3  the shard; a unit is all-gathered     as zero 2
//           into a pooled buffer when acquired
//           (the next one prefetched), released after
//
// Norm-weight gradients (replicated over tp) are summed over tp under sequence parallelism: at
// the step for zero 0 / 1, per unit and micro-batch for zero 2 / 3 (before the reduce-scatter).
#pragma once

#include <deque>
#include <memory>
#include <vector>

#include "model/param_store.h"
#include "optim/buffer_pool.h"
#include "optim/shard_layout.h"
#include "parallel/comm.h"

namespace lct {

class ZeroParams final : public ParamStore {
 public:
  // dpcp / tp may be null (size 1). table: ParamTable::build(..., unit_padding = dp x cp size) when zero >= 1.
  ZeroParams(int zero, Ops& ops, ParamTable table, Comm* dpcp, Comm* tp, bool sequence_parallel);
  ~ZeroParams() override;
  ZeroParams(const ZeroParams&) = delete;
  ZeroParams& operator=(const ZeroParams&) = delete;

  // ---- ParamStore -------------------------------------------------------------------------------
  const ParamTable& table() const override { return table_; }
  void* acquire_params(int u) override;
  void release_params(int u) override;
  void prefetch_params(int u) override;
  void* acquire_grads(int u) override;
  void release_grads(int u) override;
  void finish_backward() override;
  void zero_grads() override;
  Tensor resident_params() const override { return zero_ <= 2 ? full_params_ : Tensor(); }
  Tensor resident_grads() const override { return zero_ <= 1 ? full_grads_ : Tensor(); }
  std::vector<FlatRange> held_ranges() const override;
  void upload_held(const float* host) override;

  // ---- for the optimizer ------------------------------------------------------------------------
  int zero() const { return zero_; }
  const ShardLayout& layout() const { return layout_; }
  Comm* dpcp() const { return dpcp_; }
  Comm* tp() const { return tp_; }
  // Whether each shard element is owned by this rank alone (the norm sums over dp x cp).
  bool sharded() const { return layout_.parts() > 1; }
  // The weights of this rank's piece of unit u (act dtype, [piece.len]).
  Tensor param_piece(int u) const;
  // Completes the step's gradient reduction (zero 0: all-reduce; 1: reduce-scatter per unit;
  // 2, 3: done during backward) and returns this rank's reduced shard ([layout().size()], acc).
  Tensor reduce_grads();
  // After the update wrote the pieces: zero 1, 2 all-gather every unit (in place); 0, 3 nothing.
  void gather_params();

 private:
  struct Gathered {  // ZeRO 3: a unit's weights in a pooled buffer
    void* buf = nullptr;
    std::unique_ptr<PendingTransfer> pending;
    int refs = 0;
  };
  struct Reduction {  // ZeRO 2 / 3: a unit's gradients on their way to the owners
    int unit;
    void* grads;
    void* result;
    std::unique_ptr<PendingTransfer> pending;
  };
  Tensor flat_slice(const Tensor& flat, int64_t begin, int64_t len) const;
  void tp_sum_norm_grads(int u, void* unit_grads);
  void complete_oldest_reduction();

  int zero_;
  Ops& ops_;
  ParamTable table_;
  Comm* dpcp_;
  Comm* tp_;
  bool sp_;
  ShardLayout layout_;
  bool gathers_;                  // ZeRO 3 over more than one rank
  Tensor full_params_, full_grads_, param_shard_, grad_shard_;
  BufferPool weights_pool_, grads_pool_, comm_pool_;
  std::vector<Gathered> gathered_;
  std::vector<void*> unit_grads_;  // ZeRO 2 / 3: the buffer a unit's backward adds into
  std::deque<Reduction> reductions_;
};

}  // namespace lct
