#include "optim/optimizer.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"

namespace lct {

Optimizer::Optimizer(const OptimConfig& cfg, int zero, Ops& ops, Llama& model, Comm* dpcp, Comm* tp)
    : cfg_(cfg), zero_(zero), ops_(ops), model_(model), dpcp_(dpcp && dpcp->size() > 1 ? dpcp : nullptr),
      tp_(tp && tp->size() > 1 ? tp : nullptr) {
  const ParamTable& table = model_.table();
  const int64_t cap = model_.flat_capacity();
  const int P = dpcp_ ? dpcp_->size() : 1;
  if (zero_ == 1 && P > 1) {
    LCT_CHECK(cap % P == 0, "flat buffer ", cap, " not padded to a multiple of dp x cp = ", P);
    size_ = cap / P;
    begin_ = size_ * dpcp_->rank();
  } else {
    begin_ = 0;
    size_ = cap;
  }
  for (size_t i = 0; i < table.specs.size(); ++i) {
    const ParamSpec& p = table.specs[i];
    if (p.split == Split::None) replicated_.push_back(int(i));
    const int64_t a = std::max(begin_, p.offset), b = std::min(begin_ + size_, p.offset + p.local_numel());
    if (a < b) segments_.push_back({a, b - a, p.decay, p.split == Split::None});
  }
  const DType acc = ops_.acc_dtype();
  auto alloc = [&](int64_t n) {
    Tensor t(ops_.alloc(size_t(n) * dtype_size(acc)), acc, {n});
    owned_.push_back(t.ptr);
    return t;
  };
  // On the cpu backend the parameters are already fp32: the master weights are the parameters.
  master_aliases_params_ = ops_.act_dtype() == acc;
  master_ = master_aliases_params_ ? slice(model_.params().flat, begin_, size_) : alloc(size_);
  m_ = alloc(size_);
  if (cfg_.name == "adamw") v_ = alloc(size_);
  if (zero_ == 1 && P > 1) grad_shard_ = alloc(size_);
  sync_master_from_params();
}

Optimizer::~Optimizer() {
  for (void* p : owned_) ops_.free(p);
}

Tensor Optimizer::slice(const Tensor& flat, int64_t begin, int64_t len) const {
  Tensor t = flat;
  t.ptr = static_cast<char*>(flat.ptr) + size_t(begin) * dtype_size(flat.dtype);
  t.ndim = 1;
  t.shape[0] = len;
  return t;
}

void Optimizer::sync_master_from_params() {
  if (!master_aliases_params_) ops_.convert(master_, slice(model_.params().flat, begin_, size_));
}

void Optimizer::reset_moments() {
  ops_.zero(m_);
  if (!v_.empty()) ops_.zero(v_);
  t_ = 0;
}

void Optimizer::params_from_master() {
  Tensor params = model_.params().flat;
  if (!master_aliases_params_) ops_.convert(slice(params, begin_, size_), master_);
  if (zero_ == 1 && dpcp_) {
    Tensor full = slice(params, 0, size_ * dpcp_->size());
    dpcp_->all_gather(slice(params, begin_, size_), full);
  }
}

double Optimizer::step(double lr, double grad_clip) {
  Tensor grads = model_.grads().flat;
  // Norm weights see different tokens on each tp rank under sequence parallelism.
  if (tp_ && model_.shape().sequence_parallel)
    for (int i : replicated_) tp_->all_reduce(model_.grads().views[size_t(i)]);
  // Sum over dp x cp: each rank's gradients are partial sums of the globally normalised loss.
  Tensor g = slice(grads, begin_, size_);
  if (dpcp_) {
    if (zero_ == 1) {
      dpcp_->reduce_scatter(slice(grads, 0, size_ * dpcp_->size()), grad_shard_);
      g = grad_shard_;
    } else {
      dpcp_->all_reduce(slice(grads, 0, model_.flat_capacity()));
    }
  }
  // Global norm: each rank's owned range once; replicated tensors counted on tp rank 0 only.
  double sq = 0;
  const bool count_replicated = !tp_ || tp_->rank() == 0;
  for (const Segment& s : segments_)
    if (!s.replicated || count_replicated) sq += ops_.sum_squares(slice(g, s.begin - begin_, s.len));
  if (zero_ == 1 && dpcp_) sq = dpcp_->all_reduce_scalar(sq);
  if (tp_) sq = tp_->all_reduce_scalar(sq);
  const double norm = std::sqrt(sq);
  if (!std::isfinite(norm))
    throw NumericalError("the gradient norm is not finite (NaN or Inf); stopping before the update", true);
  const double scale = (grad_clip > 0 && norm > grad_clip) ? grad_clip / (norm + 1e-6) : 1.0;

  ++t_;
  for (const Segment& s : segments_) {
    Tensor p = slice(master_, s.begin - begin_, s.len), gs = slice(g, s.begin - begin_, s.len);
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
      ops_.adamw_update(p, slice(m_, s.begin - begin_, s.len), slice(v_, s.begin - begin_, s.len), gs, a);
    } else {
      ops_.sgd_update(p, gs, lr, wd, scale);
    }
  }
  params_from_master();
  return norm;
}

}  // namespace lct
