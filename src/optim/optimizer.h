// The optimizer step across ranks, over the parameter store of a run (optim/zero_params.h):
// gradients reduced over dp x cp as the ZeRO stage says (weights are replicated over cp),
// norm-weight gradients over tp under sequence parallelism; the global gradient norm is clipped;
// AdamW (decoupled weight decay, none on norm weights) or SGD updates the fp32 master weights of
// this rank's shard (everything at zero 0), which then become the act-dtype weights (all-gathered
// at zero 1 and 2; at zero 3 the shard is what the rank keeps).
// With offload, the master weights and moments live in host memory and the update runs on the
// CPU (ZeRO-Offload): the reduced gradient shard goes to the host, the new weights come back.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "deck/config.h"
#include "ops/ops.h"
#include "optim/zero_params.h"

namespace lct {

class Optimizer {
 public:
  Optimizer(const OptimConfig& cfg, Ops& ops, ZeroParams& params, bool offload);
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
  // After master weights were set (checkpoint load): they become the weights every rank uses.
  void params_from_master();

  // This rank's shard of the flat parameter space (optim/shard_layout.h; everything at zero 0).
  const ShardLayout& layout() const { return params_.layout(); }
  // The shard's master weights / moments as host fp32 in shard order (checkpoints), and back.
  enum class State { Master, Moment1, Moment2 };
  bool has_moments() const { return cfg_.name == "adamw"; }
  std::vector<float> download(State s) const;
  void upload(State s, const std::vector<float>& v);
  int64_t t() const { return t_; }
  void set_t(int64_t t) { t_ = t; }

 private:
  struct Segment {  // a piece of one tensor inside this rank's piece of a unit
    int unit;
    int64_t piece_offset, shard_offset, len;
    bool decay, replicated;
  };
  Tensor slice(const Tensor& t, int64_t begin, int64_t len) const;
  Tensor state(State s) const;                         // the shard buffer (unless master aliases the weights)
  Tensor master_of(const Segment& s) const;
  void apply(Ops& ops, const Tensor& grads, double lr, double scale);

  OptimConfig cfg_;
  Ops& ops_;
  ZeroParams& params_;
  bool offload_;
  std::unique_ptr<Ops> host_ops_;  // offload: the cpu kernels on host memory
  std::vector<Segment> segments_;
  Tensor master_, m_, v_;          // [shard]; on the host when offloading
  Tensor host_grads_, host_stage_;  // offload: the reduced gradients; the act-dtype weights on their way back
  bool master_aliases_params_ = false;
  int64_t t_ = 0;
};

}  // namespace lct
