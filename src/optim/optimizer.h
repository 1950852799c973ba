// The optimizer step across ranks: gradients are reduced over dp x cp (weights are replicated over
// cp), norm-weight gradients over tp under sequence parallelism; the global gradient norm is
// clipped; AdamW (decoupled weight decay, none on norm weights) or SGD updates fp32 master weights.
// With zero = 1 the master weights and moments are sharded over dp x cp: reduce-scatter the
// gradients, update this rank's shard, all-gather the weights.
#pragma once

#include <cstdint>
#include <vector>

#include "deck/config.h"
#include "model/llama.h"
#include "ops/ops.h"
#include "parallel/comm.h"

namespace lct {

class Optimizer {
 public:
  // dpcp / tp may be null (size 1). The model's flat buffers must be padded to a multiple of the
  // dp x cp size (ModelShape::flat_padding) when zero = 1.
  Optimizer(const OptimConfig& cfg, int zero, Ops& ops, Llama& model, Comm* dpcp, Comm* tp);
  ~Optimizer();
  Optimizer(const Optimizer&) = delete;
  Optimizer& operator=(const Optimizer&) = delete;

  // Reduces, clips (grad_clip 0 = off) and applies one update. Returns the global gradient norm
  // before clipping; a non-finite norm throws NumericalError on every rank (nothing is updated).
  double step(double lr, double grad_clip);

  // Master weights from the current parameters (after initialisation or loading weights).
  void sync_master_from_params();
  // Restart AdamW's moments and bias correction (a new stage by default).
  void reset_moments();

  // This rank's slice of the flat parameter space [shard_begin, shard_begin + shard_size) that it
  // updates and whose master/moments it holds (everything when zero = 0).
  int64_t shard_begin() const { return begin_; }
  int64_t shard_size() const { return size_; }
  Tensor master() const { return master_; }
  Tensor moment1() const { return m_; }
  Tensor moment2() const { return v_; }
  int64_t t() const { return t_; }
  void set_t(int64_t t) { t_ = t; }
  // After master / moments were overwritten (checkpoint load): push master into the parameters.
  void params_from_master();

 private:
  struct Segment {
    int64_t begin, len;  // in the flat parameter space
    bool decay, replicated;
  };
  Tensor slice(const Tensor& flat, int64_t begin, int64_t len) const;

  OptimConfig cfg_;
  int zero_;
  Ops& ops_;
  Llama& model_;
  Comm* dpcp_;
  Comm* tp_;
  int64_t begin_ = 0, size_ = 0;
  std::vector<Segment> segments_;   // owned range, cut at parameter boundaries
  std::vector<int> replicated_;     // indices of tp-replicated parameters (norm weights)
  Tensor master_, m_, v_, grad_shard_;
  bool master_aliases_params_ = false;
  int64_t t_ = 0;
  std::vector<void*> owned_;
};

}  // namespace lct
