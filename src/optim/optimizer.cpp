#include "optim/optimizer.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"

namespace lct {

Optimizer::Optimizer(const OptimConfig& cfg, Ops& ops, ZeroParams& params, bool offload)
    : cfg_(cfg), ops_(ops), params_(params), offload_(offload) {
  const ParamTable& table = params_.table();
  for (const ShardPiece& p : layout().pieces()) {
    const ParamUnit& U = table.units[size_t(p.unit)];
    for (int i = U.first_spec; i < U.end_spec; ++i) {
      const ParamSpec& s = table.specs[size_t(i)];
      const int64_t a = std::max(p.flat_begin, s.offset), b = std::min(p.flat_begin + p.len, s.offset + s.local_numel());
      if (a < b)
        segments_.push_back({p.unit, a - p.flat_begin, p.shard_offset + (a - p.flat_begin), b - a, s.decay,
                             s.split == Split::None});
    }
  }
  const DType acc = ops_.acc_dtype();
  const int64_t n = layout().size();
  if (offload_) host_ops_ = make_cpu_ops(DType::F32);
  auto alloc = [&](DType t, int64_t count, Mem kind) {
    const size_t bytes = size_t(count) * dtype_size(t);
    return Tensor(offload_ ? ops_.alloc_host(bytes, kind) : ops_.alloc(bytes, kind), t, {count});
  };
  // On the cpu backend without offload the weights are fp32 already: they are the master weights.
  master_aliases_params_ = !offload_ && ops_.act_dtype() == acc;
  if (offload_) LCT_CHECK(acc == DType::F32, "offloading needs fp32 optimizer state");
  if (!master_aliases_params_) master_ = alloc(acc, n, Mem::Optimizer);
  m_ = alloc(acc, n, Mem::Optimizer);
  if (cfg_.name == "adamw") v_ = alloc(acc, n, Mem::Optimizer);
  if (offload_) {
    host_grads_ = alloc(acc, n, Mem::Gradients);
    host_stage_ = alloc(ops_.act_dtype(), n, Mem::Weights);
  }
  sync_master_from_params();
}

Optimizer::~Optimizer() {
  for (const Tensor& t : {master_, m_, v_, host_grads_, host_stage_})
    if (offload_)
      ops_.free_host(t.ptr);
    else
      ops_.free(t.ptr);
}

Tensor Optimizer::slice(const Tensor& t, int64_t begin, int64_t len) const {
  return Tensor(static_cast<char*>(t.ptr) + size_t(begin) * dtype_size(t.dtype), t.dtype, {len});
}

Tensor Optimizer::master_of(const Segment& s) const {
  return master_aliases_params_ ? slice(params_.param_piece(s.unit), s.piece_offset, s.len)
                                : slice(master_, s.shard_offset, s.len);
}

void Optimizer::sync_master_from_params() {
  if (master_aliases_params_) return;
  for (const ShardPiece& p : layout().pieces()) {
    Tensor dst = slice(master_, p.shard_offset, p.len);
    if (!offload_) {
      ops_.convert(dst, params_.param_piece(p.unit));
      continue;
    }
    Tensor stage = slice(host_stage_, p.shard_offset, p.len);
    ops_.to_host(stage.ptr, params_.param_piece(p.unit));
    host_ops_->convert(dst, stage);
  }
}

void Optimizer::reset_moments() {
  Ops& o = offload_ ? *host_ops_ : ops_;
  o.zero(m_);
  if (!v_.empty()) o.zero(v_);
  t_ = 0;
}

void Optimizer::params_from_master() {
  for (const ShardPiece& p : layout().pieces()) {
    if (master_aliases_params_) break;
    const Tensor src = slice(master_, p.shard_offset, p.len);
    if (!offload_) {
      ops_.convert(params_.param_piece(p.unit), src);
      continue;
    }
    Tensor stage = slice(host_stage_, p.shard_offset, p.len);
    host_ops_->convert(stage, src);
    ops_.from_host(params_.param_piece(p.unit), stage.ptr);
  }
  params_.gather_params();
}

void Optimizer::apply(Ops& ops, const Tensor& grads, double lr, double scale) {
  for (const Segment& s : segments_) {
    Tensor p = master_of(s), g = slice(grads, s.shard_offset, s.len);
    const double wd = s.decay ? cfg_.weight_decay : 0.0;
    if (cfg_.name == "adamw") {
      AdamWArgs a;
      a.lr = lr;
      a.beta1 = cfg_.beta1;
      a.beta2 = cfg_.beta2;
      a.eps = cfg_.eps;
      a.weight_decay = wd;
      a.step = t_;
      a.grad_scale = scale;
      ops.adamw_update(p, slice(m_, s.shard_offset, s.len), slice(v_, s.shard_offset, s.len), g, a);
    } else {
      ops.sgd_update(p, g, lr, wd, scale);
    }
  }
}

double Optimizer::step(double lr, double grad_clip) {
  const Tensor g = params_.reduce_grads();
  Comm* tp = params_.tp();
  // Global norm: each rank's owned elements once; replicated tensors counted on tp rank 0 only.
  double sq = 0;
  const bool count_replicated = !tp || tp->rank() == 0;
  for (const Segment& s : segments_)
    if (!s.replicated || count_replicated) sq += ops_.sum_squares(slice(g, s.shard_offset, s.len));
  if (params_.sharded()) sq = params_.dpcp()->all_reduce_scalar(sq);
  if (tp) sq = tp->all_reduce_scalar(sq);
  const double norm = std::sqrt(sq);
  if (!std::isfinite(norm))
    throw NumericalError("the gradient norm is not finite (NaN or Inf); stopping before the update", true);
  const double scale = (grad_clip > 0 && norm > grad_clip) ? grad_clip / (norm + 1e-6) : 1.0;

  ++t_;
  if (offload_) {
    ops_.to_host(host_grads_.ptr, g);  // the reduced shard, fp32
    apply(*host_ops_, host_grads_, lr, scale);
  } else {
    apply(ops_, g, lr, scale);
  }
  params_from_master();
  return norm;
}

Tensor Optimizer::state(State s) const {
  switch (s) {
    case State::Master: return master_;
    case State::Moment1: return m_;
    case State::Moment2: return v_;
  }
  return {};
}

std::vector<float> Optimizer::download(State s) const {
  std::vector<float> out(size_t(layout().size()));
  if (s == State::Master && master_aliases_params_) {  // fp32 weights: the master weights
    for (const ShardPiece& p : layout().pieces()) ops_.to_host(out.data() + p.shard_offset, params_.param_piece(p.unit));
    return out;
  }
  const Tensor t = state(s);
  LCT_CHECK(!t.empty() && t.dtype == DType::F32, "optimizer state to download");
  if (offload_)
    std::copy_n(static_cast<const float*>(t.ptr), out.size(), out.data());
  else
    ops_.to_host(out.data(), t);
  return out;
}

void Optimizer::upload(State s, const std::vector<float>& v) {
  LCT_CHECK(int64_t(v.size()) == layout().size(), "optimizer state of ", v.size(), " values for a shard of ",
            layout().size());
  if (s == State::Master && master_aliases_params_) {
    for (const ShardPiece& p : layout().pieces()) ops_.from_host(params_.param_piece(p.unit), v.data() + p.shard_offset);
    return;
  }
  const Tensor t = state(s);
  LCT_CHECK(!t.empty() && t.dtype == DType::F32, "optimizer state to upload");
  if (offload_)
    std::copy(v.begin(), v.end(), static_cast<float*>(t.ptr));
  else
    ops_.from_host(t, v.data());
}

}  // namespace lct
