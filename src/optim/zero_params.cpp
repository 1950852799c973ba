#include "optim/zero_params.h"

#include "core/error.h"

namespace lct {

ZeroParams::ZeroParams(int zero, Ops& ops, ParamTable table, Comm* dpcp, Comm* tp, bool sequence_parallel)
    : zero_(zero),
      ops_(ops),
      table_(std::move(table)),
      dpcp_(dpcp && dpcp->size() > 1 ? dpcp : nullptr),
      tp_(tp && tp->size() > 1 ? tp : nullptr),
      sp_(sequence_parallel),
      layout_(table_, zero >= 1 && dpcp_ ? dpcp_->size() : 1, zero >= 1 && dpcp_ ? dpcp_->rank() : 0),
      gathers_(zero == 3 && layout_.parts() > 1),
      weights_pool_(ops, Mem::Weights),
      grads_pool_(ops, Mem::Gradients),
      comm_pool_(ops, Mem::CommBuffers) {
  LCT_CHECK(zero >= 0 && zero <= 3, "ZeRO stage ", zero);
  const DType act = ops_.act_dtype(), acc = ops_.acc_dtype();
  auto alloc = [&](DType t, int64_t n, Mem kind) { return Tensor(ops_.alloc(size_t(n) * dtype_size(t), kind), t, {n}); };
  if (zero_ <= 2)
    full_params_ = alloc(act, table_.total, Mem::Weights);
  else
    param_shard_ = alloc(act, layout_.size(), Mem::Weights);
  if (zero_ <= 1) {
    full_grads_ = alloc(acc, table_.total, Mem::Gradients);
    if (sharded()) grad_shard_ = alloc(acc, layout_.size(), Mem::Gradients);  // the reduce-scatter's result
  } else {
    grad_shard_ = alloc(acc, layout_.size(), Mem::Gradients);  // accumulates over micro-batches
  }
  gathered_.resize(table_.units.size());
  unit_grads_.assign(table_.units.size(), nullptr);
}

ZeroParams::~ZeroParams() {
  try {
    finish_backward();
  } catch (...) {
  }
  gathered_.clear();  // waits for gathers in flight
  for (const Tensor& t : {full_params_, full_grads_, param_shard_, grad_shard_}) ops_.free(t.ptr);
}

Tensor ZeroParams::flat_slice(const Tensor& flat, int64_t begin, int64_t len) const {
  Tensor t(static_cast<char*>(flat.ptr) + size_t(begin) * dtype_size(flat.dtype), flat.dtype, {len});
  return t;
}

// ---- weights ------------------------------------------------------------------------------------

Tensor ZeroParams::param_piece(int u) const {
  const ShardPiece& p = layout_.piece(u);
  return zero_ <= 2 ? flat_slice(full_params_, p.flat_begin, p.len) : flat_slice(param_shard_, p.shard_offset, p.len);
}

void ZeroParams::prefetch_params(int u) {
  if (!gathers_) return;
  Gathered& g = gathered_[size_t(u)];
  if (g.buf) return;  // held or on its way
  const ParamUnit& U = table_.units[size_t(u)];
  const DType act = ops_.act_dtype();
  g.buf = weights_pool_.take(size_t(U.size) * dtype_size(act));
  g.pending = dpcp_->all_gather_async(param_piece(u), Tensor(g.buf, act, {U.size}));
}

void* ZeroParams::acquire_params(int u) {
  if (zero_ <= 2) return flat_slice(full_params_, table_.units[size_t(u)].begin, 0).ptr;
  if (!gathers_) return param_piece(u).ptr;  // one rank: the shard is everything
  prefetch_params(u);
  Gathered& g = gathered_[size_t(u)];
  if (g.pending) {
    g.pending->wait();
    g.pending.reset();
  }
  ++g.refs;
  return g.buf;
}

void ZeroParams::release_params(int u) {
  if (!gathers_) return;
  Gathered& g = gathered_[size_t(u)];
  LCT_CHECK(g.refs > 0, "release of unit ", u, "'s weights, which are not acquired");
  if (--g.refs == 0) {
    weights_pool_.give(g.buf);
    g.buf = nullptr;
  }
}

void ZeroParams::gather_params() {
  if (zero_ == 0 || zero_ == 3 || !sharded()) return;
  for (const ShardPiece& p : layout_.pieces()) {
    const ParamUnit& U = table_.units[size_t(p.unit)];
    dpcp_->all_gather(param_piece(p.unit), flat_slice(full_params_, U.begin, U.size));
  }
}

std::vector<FlatRange> ZeroParams::held_ranges() const {
  if (zero_ <= 2) return {{0, table_.total}};
  return layout_.ranges();
}

void ZeroParams::upload_held(const float* host) { upload_f32(ops_, zero_ <= 2 ? full_params_ : param_shard_, host); }

// ---- gradients ----------------------------------------------------------------------------------

void ZeroParams::zero_grads() {
  finish_backward();
  ops_.zero(zero_ <= 1 ? full_grads_ : grad_shard_);
}

void* ZeroParams::acquire_grads(int u) {
  const ParamUnit& U = table_.units[size_t(u)];
  if (zero_ <= 1) return flat_slice(full_grads_, U.begin, 0).ptr;
  LCT_CHECK(!unit_grads_[size_t(u)], "unit ", u, "'s gradients acquired twice");
  const DType acc = ops_.acc_dtype();
  void* buf = grads_pool_.take(size_t(U.size) * dtype_size(acc));
  ops_.zero(Tensor(buf, acc, {U.size}));
  unit_grads_[size_t(u)] = buf;
  return buf;
}

void ZeroParams::tp_sum_norm_grads(int u, void* unit_grads) {
  if (!tp_ || !sp_) return;
  const ParamUnit& U = table_.units[size_t(u)];
  for (int i = U.first_spec; i < U.end_spec; ++i)
    if (table_.specs[size_t(i)].split == Split::None) tp_->all_reduce(unit_view(table_, i, unit_grads, ops_.acc_dtype()));
}

void ZeroParams::release_grads(int u) {
  if (zero_ <= 1) return;
  void* buf = unit_grads_[size_t(u)];
  LCT_CHECK(buf, "release of unit ", u, "'s gradients, which are not acquired");
  unit_grads_[size_t(u)] = nullptr;
  const DType acc = ops_.acc_dtype();
  const ParamUnit& U = table_.units[size_t(u)];
  const ShardPiece& p = layout_.piece(u);
  tp_sum_norm_grads(u, buf);
  const Tensor full(buf, acc, {U.size});
  if (!sharded()) {
    ops_.axpy(flat_slice(grad_shard_, p.shard_offset, p.len), 1.0, full);
    grads_pool_.give(buf);
    return;
  }
  void* result = comm_pool_.take(size_t(p.len) * dtype_size(acc));
  auto pending = dpcp_->reduce_scatter_async(full, Tensor(result, acc, {p.len}));
  reductions_.push_back({u, buf, result, std::move(pending)});
  while (reductions_.size() > 1) complete_oldest_reduction();  // one in flight beside the next unit
}

void ZeroParams::complete_oldest_reduction() {
  Reduction r = std::move(reductions_.front());
  reductions_.pop_front();
  r.pending->wait();
  const ShardPiece& p = layout_.piece(r.unit);
  const DType acc = ops_.acc_dtype();
  ops_.axpy(flat_slice(grad_shard_, p.shard_offset, p.len), 1.0, Tensor(r.result, acc, {p.len}));
  grads_pool_.give(r.grads);
  comm_pool_.give(r.result);
}

void ZeroParams::finish_backward() {
  while (!reductions_.empty()) complete_oldest_reduction();
}

Tensor ZeroParams::reduce_grads() {
  if (zero_ >= 2) {
    finish_backward();
    return grad_shard_;
  }
  // Norm weights see different tokens on each tp rank under sequence parallelism.
  if (tp_ && sp_)
    for (size_t i = 0; i < table_.specs.size(); ++i)
      if (table_.specs[i].split == Split::None) {
        const ParamSpec& s = table_.specs[i];
        tp_->all_reduce(flat_slice(full_grads_, s.offset, s.local_numel()));
      }
  if (!dpcp_) return full_grads_;
  if (zero_ == 0 || !sharded()) {
    dpcp_->all_reduce(full_grads_);
    return full_grads_;
  }
  for (const ShardPiece& p : layout_.pieces()) {
    const ParamUnit& U = table_.units[size_t(p.unit)];
    dpcp_->reduce_scatter(flat_slice(full_grads_, U.begin, U.size), flat_slice(grad_shard_, p.shard_offset, p.len));
  }
  return grad_shard_;
}

}  // namespace lct
