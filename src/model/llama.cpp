#include "model/llama.h"

#include <algorithm>
#include <cmath>

#include "attention/sharding.h"
#include "core/error.h"

namespace lct {

Llama::Llama(const ModelConfig& m, const RopeConfig& r, const ModelShape& shape, Ops& ops, Comm* tp_comm,
             Comm* cp_comm)
    : cfg_(m), rope_(r), shape_(shape), ops_(ops), tp_comm_(tp_comm), cp_comm_(cp_comm) {
  const int tp = shape.tp, cp = shape.cp;
  LCT_CHECK(tp == 1 || tp_comm_, "tp > 1 needs a tp communicator");
  LCT_CHECK(cp == 1 || cp_comm_, "cp > 1 needs a cp communicator");
  const int64_t T = shape.seq_len;
  if (T % (shape.zigzag && cp > 1 ? 2 * cp : cp) != 0)
    throw InputError(str("train.seq_len = ", T, " must be divisible by ", shape.zigzag && cp > 1 ? 2 * cp : cp,
                         (shape.zigzag && cp > 1 ? " (2 * parallel.cp: zigzag sharding cuts the sequence into 2*cp chunks)"
                                                 : " (parallel.cp)")));
  B_ = shape.micro_batch;
  Tl_ = T / cp;
  N_ = B_ * Tl_;
  sp_ = tp > 1 && shape.sequence_parallel;
  if (sp_ && N_ % tp != 0)
    throw InputError(str("with sequence parallelism, the tokens per rank (micro_batch * seq_len / cp = ", N_,
                         ") must be divisible by parallel.tp = ", tp, "; change seq_len or set parallel.sequence_parallel = false"));
  Ns_ = sp_ ? N_ / tp : N_;
  C_ = m.dim;
  D_ = m.head_dim;
  Hq_ = m.n_heads / tp;
  Hkv_ = m.n_kv_heads / tp;
  F_ = m.ffn_dim / tp;

  table_ = ParamTable::build(m, tp, shape.tp_rank);
  const DType act = ops_.act_dtype(), acc = ops_.acc_dtype();
  const int64_t pad = std::max<int64_t>(1, shape.flat_padding);
  capacity_ = (table_.total + pad - 1) / pad * pad;
  params_.bind(table_, ops_.alloc(size_t(capacity_) * dtype_size(act)), act);
  grads_.bind(table_, ops_.alloc(size_t(capacity_) * dtype_size(acc)), acc);
  owned_.push_back(params_.flat.ptr);
  owned_.push_back(grads_.flat.ptr);
  weights_.bind(table_, params_, m.n_layers, m.tie_embeddings);
  gweights_.bind(table_, grads_, m.n_layers, m.tie_embeddings);

  RingShape rs;
  rs.B = B_;
  rs.T = T;
  rs.Hq = Hq_;
  rs.Hkv = Hkv_;
  rs.D = D_;
  rs.cp = cp;
  rs.zigzag = shape.zigzag;
  ring_ = std::make_unique<RingAttention>(ops_, cp_comm_, shape.cp_rank, rs);

  // RoPE tables for this rank's global positions, computed in double; a micro-batch with its own
  // layout (packed documents) brings per-sequence positions.
  pos_host_ = shard_positions(T, cp, shape.cp_rank, shape.zigzag);
  freqs_ = rope_frequencies(rope_, D_, T);
  tokens_ = alloc(DType::I32, {N_});
  targets_ = alloc(DType::I32, {N_});
  cos_all_ = alloc(acc, {N_, D_ / 2});
  sin_all_ = alloc(acc, {N_, D_ / 2});
  set_rope(pos_host_);

  x_.resize(size_t(m.n_layers + 1));
  for (auto& x : x_) x = alloc(act, {Ns_, C_});
  acts_.resize(shape.recompute ? 1 : size_t(m.n_layers));
  for (auto& a : acts_) alloc_layer_acts(a);

  lnf_ = alloc(act, {Ns_, C_});
  rstdf_ = alloc(acc, {Ns_});
  lnf_full_ = sp_ ? alloc(act, {N_, C_}) : lnf_;
  stats_ = alloc(acc, {N_, 3});
  stats_all_ = tp > 1 ? alloc(acc, {int64_t(tp), N_, 3}) : stats_;
  lse_loss_ = alloc(acc, {N_});
  if (sp_) {
    gather_buf_ = alloc(act, {N_, C_});
    reduced_ = alloc(act, {Ns_, C_});
  }
  partial_ = alloc(act, {N_, C_});

  dres_ = alloc(act, {Ns_, C_});
  dh_ = alloc(act, {N_, F_});
  dgate_ = alloc(act, {N_, F_});
  dup_ = alloc(act, {N_, F_});
  dpartial_ = alloc(act, {N_, C_});
  datt_ = alloc(act, {B_, Tl_, Hq_, D_});
  dq_ = alloc(acc, {B_, Tl_, Hq_, D_});
  dkv_ = alloc(acc, {2, B_, Tl_, Hkv_, D_});
  dq_act_ = act == acc ? dq_ : alloc(act, {B_, Tl_, Hq_, D_});
  dkv_act_ = act == acc ? dkv_ : alloc(act, {2, B_, Tl_, Hkv_, D_});
}

Llama::~Llama() {
  ring_.reset();
  for (void* p : owned_) ops_.free(p);
}

Tensor Llama::alloc(DType t, std::initializer_list<int64_t> dims) {
  Tensor x(nullptr, t, dims);
  x.ptr = ops_.alloc(x.bytes());
  owned_.push_back(x.ptr);
  return x;
}

void Llama::alloc_layer_acts(LayerActs& a) {
  const DType act = ops_.act_dtype(), acc = ops_.acc_dtype();
  a.ln1 = alloc(act, {Ns_, C_});
  a.rstd1 = alloc(acc, {Ns_});
  a.q = alloc(act, {B_, Tl_, Hq_, D_});
  a.kv = alloc(act, {2, B_, Tl_, Hkv_, D_});
  a.att = alloc(acc, {B_, Tl_, Hq_, D_});
  a.att_act = act == acc ? a.att : alloc(act, {B_, Tl_, Hq_, D_});
  a.lse = alloc(acc, {B_, Hq_, Tl_});
  a.x_mid = alloc(act, {Ns_, C_});
  a.ln2 = alloc(act, {Ns_, C_});
  a.rstd2 = alloc(acc, {Ns_});
  a.gate = alloc(act, {N_, F_});
  a.up = alloc(act, {N_, F_});
  a.h = alloc(act, {N_, F_});
}

Tensor Llama::gather(const Tensor& local) {
  if (!sp_) return local;
  tp_comm_->all_gather(local, gather_buf_);
  return gather_buf_;
}

Tensor Llama::reduce(Tensor partial, Tensor out_local) {
  if (shape_.tp == 1) return partial;
  if (!sp_) {
    tp_comm_->all_reduce(partial);
    return partial;
  }
  tp_comm_->reduce_scatter(partial, out_local);
  return out_local;
}

Tensor Llama::as_act(const Tensor& acc_tensor, const Tensor& act_buffer) {
  if (acc_tensor.ptr == act_buffer.ptr) return acc_tensor;
  ops_.convert(act_buffer, acc_tensor);
  return act_buffer;
}

void Llama::set_rope(const std::vector<int32_t>& positions) {
  const int64_t rows = int64_t(positions.size());
  LCT_CHECK(rows == Tl_ || rows == N_, "RoPE positions: ", rows, " for ", B_, " x ", Tl_, " tokens");
  std::vector<double> c, s;
  rope_tables(freqs_, positions, c, s);
  cos_ = cos_all_.slice(0, rows);
  sin_ = sin_all_.slice(0, rows);
  Tensor tmp(ops_.alloc(size_t(rows * D_ / 2) * sizeof(double)), DType::F64, {rows, D_ / 2});
  ops_.from_host(tmp, c.data());
  ops_.convert(cos_, tmp);
  ops_.from_host(tmp, s.data());
  ops_.convert(sin_, tmp);
  ops_.free(tmp.ptr);
}

void Llama::upload_batch(const MicroBatch& mb) {
  LCT_CHECK(int64_t(mb.inputs.size()) == N_ && int64_t(mb.targets.size()) == N_, "micro-batch has ",
            mb.inputs.size(), " tokens, the model expects ", N_);
  ops_.from_host(tokens_, mb.inputs.data());
  ops_.from_host(targets_, mb.targets.data());
  if (!mb.meta.empty()) {  // this micro-batch's own slots, masks and RoPE positions
    ring_->set_meta(mb.meta);
    set_rope(mb.meta.rope_positions(shape_.cp_rank));
    custom_meta_ = true;
  } else if (custom_meta_) {  // back to the plain layout
    ring_->set_meta(plain_meta(B_, shape_.seq_len, shape_.cp, shape_.zigzag ? CpSharding::Zigzag : CpSharding::Contiguous));
    set_rope(pos_host_);
    custom_meta_ = false;
  }
}

void Llama::layer_forward(int l, LayerActs& a) {
  const LayerWeights& w = weights_.layers[size_t(l)];
  const Tensor& x = x_[size_t(l)];
  // attention block
  ops_.rmsnorm_forward(a.ln1, a.rstd1, x, w.ln1, cfg_.norm_eps);
  Tensor ln1 = gather(a.ln1);
  Tensor k = a.kv.slice(0, 1).view({B_, Tl_, Hkv_, D_}), v = a.kv.slice(1, 1).view({B_, Tl_, Hkv_, D_});
  ops_.matmul_forward(a.q.view({N_, Hq_ * D_}), ln1, w.wq);
  ops_.matmul_forward(k.view({N_, Hkv_ * D_}), ln1, w.wk);
  ops_.matmul_forward(v.view({N_, Hkv_ * D_}), ln1, w.wv);
  ops_.rope_forward(a.q, cos_, sin_);
  ops_.rope_forward(k, cos_, sin_);
  ring_->forward(a.att, a.lse, a.q, a.kv);
  Tensor att = as_act(a.att, a.att_act);
  ops_.matmul_forward(partial_, att.view({N_, Hq_ * D_}), w.wo);
  ops_.add_forward(a.x_mid, x, reduce(partial_, reduced_));
  // MLP block
  ops_.rmsnorm_forward(a.ln2, a.rstd2, a.x_mid, w.ln2, cfg_.norm_eps);
  Tensor ln2 = gather(a.ln2);
  ops_.matmul_forward(a.gate, ln2, w.wgate);
  ops_.matmul_forward(a.up, ln2, w.wup);
  ops_.swiglu_forward(a.h, a.gate, a.up);
  ops_.matmul_forward(partial_, a.h, w.wdown);
  ops_.add_forward(x_[size_t(l) + 1], a.x_mid, reduce(partial_, reduced_));
}

double Llama::forward_pass() {
  // embedding (vocabulary-parallel: rows outside this rank's slice are zero until reduced)
  ops_.embedding_forward(partial_, tokens_, weights_.embed.slice(0, table_.vocab_valid), table_.vocab_begin);
  Tensor emb = reduce(partial_, reduced_);
  if (emb.ptr != x_[0].ptr) ops_.convert(x_[0], emb);
  for (int l = 0; l < cfg_.n_layers; ++l) layer_forward(l, acts_[shape_.recompute ? 0 : size_t(l)]);
  ops_.rmsnorm_forward(lnf_, rstdf_, x_.back(), weights_.norm, cfg_.norm_eps);
  if (sp_) tp_comm_->all_gather(lnf_, lnf_full_);
  ops_.lmhead_loss_forward(stats_, lnf_full_, weights_.lm_head, targets_, table_.vocab_begin, table_.vocab_valid);
  if (shape_.tp > 1) tp_comm_->all_gather(stats_, stats_all_);
  return ops_.lmhead_loss_combine(lse_loss_, stats_all_, targets_);
}

std::vector<double> Llama::token_losses() {
  const int P = shape_.tp;
  std::vector<double> lse(static_cast<size_t>(N_)), stats(static_cast<size_t>(P * N_ * 3));
  std::vector<int32_t> tg(static_cast<size_t>(N_));
  auto download = [&](const Tensor& t, std::vector<double>& out) {
    Tensor tmp(ops_.alloc(t.numel() * sizeof(double)), DType::F64, {t.numel()});
    ops_.convert(tmp, t);
    ops_.to_host(out.data(), tmp);
    ops_.free(tmp.ptr);
  };
  download(lse_loss_, lse);
  download(stats_all_, stats);
  ops_.to_host(tg.data(), targets_);
  std::vector<double> loss(static_cast<size_t>(N_));
  for (int64_t n = 0; n < N_; ++n) {
    double target_logit = 0;
    for (int p = 0; p < P; ++p) target_logit += stats[size_t((p * N_ + n) * 3 + 2)];
    loss[size_t(n)] = tg[size_t(n)] >= 0 ? lse[size_t(n)] - target_logit : std::nan("");
  }
  return loss;
}

double Llama::forward(const MicroBatch& mb) {
  upload_batch(mb);
  return forward_pass();
}

void Llama::layer_backward(int l, LayerActs& a, Tensor dres) {
  const LayerWeights& w = weights_.layers[size_t(l)];
  LayerWeights& g = gweights_.layers[size_t(l)];
  if (shape_.recompute) layer_forward(l, a);  // rebuild this layer's activations from its input
  // MLP block: dres = dL/d(layer output)
  Tensor dfull = gather(dres);
  ops_.matmul_backward(dh_, g.wdown, dfull, a.h, w.wdown);
  ops_.swiglu_backward(dgate_, dup_, dh_, a.gate, a.up);
  Tensor ln2 = gather(a.ln2);
  ops_.matmul_backward(dpartial_, g.wgate, dgate_, ln2, w.wgate);
  ops_.matmul_backward(dpartial_, g.wup, dup_, ln2, w.wup, /*accumulate_dx=*/true);
  ops_.rmsnorm_backward(dres, g.ln2, reduce(dpartial_, reduced_), a.x_mid, w.ln2, a.rstd2);
  // attention block: dres = dL/d(x_mid)
  dfull = gather(dres);
  ops_.matmul_backward(datt_.view({N_, Hq_ * D_}), g.wo, dfull, as_act(a.att, a.att_act).view({N_, Hq_ * D_}), w.wo);
  ring_->backward(dq_, dkv_, datt_, a.q, a.kv, a.att, a.lse);
  Tensor dq = as_act(dq_, dq_act_), dkv = as_act(dkv_, dkv_act_);
  Tensor dk = dkv.slice(0, 1).view({B_, Tl_, Hkv_, D_}), dv = dkv.slice(1, 1).view({B_, Tl_, Hkv_, D_});
  ops_.rope_backward(dq, cos_, sin_);
  ops_.rope_backward(dk, cos_, sin_);
  Tensor ln1 = gather(a.ln1);
  ops_.matmul_backward(dpartial_, g.wq, dq.view({N_, Hq_ * D_}), ln1, w.wq);
  ops_.matmul_backward(dpartial_, g.wk, dk.view({N_, Hkv_ * D_}), ln1, w.wk, true);
  ops_.matmul_backward(dpartial_, g.wv, dv.view({N_, Hkv_ * D_}), ln1, w.wv, true);
  ops_.rmsnorm_backward(dres, g.ln1, reduce(dpartial_, reduced_), x_[size_t(l)], w.ln1, a.rstd1);
}

double Llama::forward_backward(const MicroBatch& mb, double scale) {
  upload_batch(mb);
  const double loss = forward_pass();
  // LM head + loss: d(lnf_full) is a partial sum over vocabulary slices.
  ops_.lmhead_loss_backward(dpartial_, gweights_.lm_head, lnf_full_, weights_.lm_head, targets_, lse_loss_, scale,
                            table_.vocab_begin, table_.vocab_valid);
  ops_.zero(dres_);
  ops_.rmsnorm_backward(dres_, gweights_.norm, reduce(dpartial_, reduced_), x_.back(), weights_.norm, rstdf_);
  for (int l = int(cfg_.n_layers) - 1; l >= 0; --l) layer_backward(l, acts_[shape_.recompute ? 0 : size_t(l)], dres_);
  ops_.embedding_backward(gweights_.embed.slice(0, table_.vocab_valid), gather(dres_), tokens_, table_.vocab_begin);
  return loss;
}

}  // namespace lct
