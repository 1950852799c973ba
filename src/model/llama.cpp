#include "model/llama.h"

#include <algorithm>
#include <cmath>

#include "attention/sharding.h"
#include "core/error.h"

namespace lct {

Llama::Llama(const ModelConfig& m, const RopeConfig& r, const ModelShape& shape, Ops& ops, Comm* tp_comm,
             Comm* cp_comm, ParamStore* store, Comm* a2a_comm)
    : cfg_(m), rope_(r), shape_(shape), ops_(ops), tp_comm_(tp_comm), cp_comm_(cp_comm), store_(store) {
  const int tp = shape.tp, cp = shape.cp, U = shape.cp_a2a;
  LCT_CHECK(tp == 1 || tp_comm_, "tp > 1 needs a tp communicator");
  LCT_CHECK(U >= 1 && cp % U == 0, "the all-to-all size ", U, " must divide cp ", cp);
  LCT_CHECK(cp / U == 1 || cp_comm_, "a ring of cp / U > 1 ranks needs a ring communicator");
  LCT_CHECK(U == 1 || a2a_comm, "cp_a2a > 1 needs an all-to-all communicator");
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

  table_ = ParamTable::build(m, tp, shape.tp_rank, shape.unit_padding);
  const DType act = ops_.act_dtype(), acc = ops_.acc_dtype();
  if (!store_) {
    own_store_ = std::make_unique<ResidentParams>(ops_, table_);
    store_ = own_store_.get();
  }
  LCT_CHECK(store_->table().total == table_.total && store_->table().units.size() == table_.units.size(),
            "the parameter store's table is not this model's");
  if (!store_->resident_params().empty()) params_.bind(table_, store_->resident_params().ptr, act);
  if (!store_->resident_grads().empty()) grads_.bind(table_, store_->resident_grads().ptr, acc);
  embed_i_ = table_.index("model.embed_tokens.weight");
  norm_i_ = table_.index("model.norm.weight");
  head_i_ = m.tie_embeddings ? embed_i_ : table_.index("lm_head.weight");

  RingShape rs;
  rs.B = B_;
  rs.T = T;
  rs.Hq = Hq_;
  rs.Hkv = Hkv_;
  rs.D = D_;
  rs.cp = cp;
  rs.zigzag = shape.zigzag;
  if (U > 1 && (Hq_ % U != 0 || (Hkv_ % U != 0 && U % Hkv_ != 0)))
    check_cp_heads(m.n_heads, m.n_kv_heads, tp, U);  // throws the message naming the keys
  attn_ = std::make_unique<ContextAttention>(ops_, a2a_comm, cp_comm_, shape.cp_rank, rs, U);

  // RoPE tables for this rank's global positions, computed in double; a micro-batch with its own
  // layout (packed documents) brings per-sequence positions.
  pos_host_ = shard_positions(T, cp, shape.cp_rank, shape.zigzag);
  freqs_ = rope_frequencies(rope_, D_, T);
  tokens_ = buffers_.alloc(DType::I32, {N_});
  targets_ = buffers_.alloc(DType::I32, {N_});
  cos_all_ = buffers_.alloc(acc, {N_, D_ / 2});
  sin_all_ = buffers_.alloc(acc, {N_, D_ / 2});
  set_rope(pos_host_);

  LCT_CHECK(!shape.offload_layer_inputs || shape.recompute, "offloading layer inputs needs recompute");
  inputs_ = std::make_unique<LayerInputs>(ops_, m.n_layers, Ns_, C_, shape.offload_layer_inputs);
  acts_.resize(shape.recompute ? 1 : size_t(m.n_layers));
  for (auto& a : acts_) alloc_layer_acts(a);

  lnf_ = buffers_.alloc(act, {Ns_, C_});
  rstdf_ = buffers_.alloc(acc, {Ns_});
  lnf_full_ = sp_ ? buffers_.alloc(act, {N_, C_}) : lnf_;
  stats_ = buffers_.alloc(acc, {N_, 3});
  stats_all_ = tp > 1 ? buffers_.alloc(acc, {int64_t(tp), N_, 3}) : stats_;
  lse_loss_ = buffers_.alloc(acc, {N_});
  if (sp_) {
    gather_buf_ = buffers_.alloc(act, {N_, C_});
    reduced_ = buffers_.alloc(act, {Ns_, C_});
  }
  partial_ = buffers_.alloc(act, {N_, C_});

  dres_ = buffers_.alloc(act, {Ns_, C_});
  dh_ = buffers_.alloc(act, {N_, F_});
  dgate_ = buffers_.alloc(act, {N_, F_});
  dup_ = buffers_.alloc(act, {N_, F_});
  dpartial_ = buffers_.alloc(act, {N_, C_});
  datt_ = buffers_.alloc(act, {B_, Tl_, Hq_, D_});
  dq_ = buffers_.alloc(acc, {B_, Tl_, Hq_, D_});
  dkv_ = buffers_.alloc(acc, {2, B_, Tl_, Hkv_, D_});
  dq_act_ = act == acc ? dq_ : buffers_.alloc(act, {B_, Tl_, Hq_, D_});
  dkv_act_ = act == acc ? dkv_ : buffers_.alloc(act, {2, B_, Tl_, Hkv_, D_});
}

Llama::~Llama() {
  attn_.reset();
  inputs_.reset();
  buffers_.release();
}

ParamBuffer& Llama::params() {
  LCT_CHECK(!params_.flat.empty(), "the parameters are not resident (ZeRO 3): use the parameter store");
  return params_;
}

ParamBuffer& Llama::grads() {
  LCT_CHECK(!grads_.flat.empty(), "the gradients are not resident (ZeRO 2/3): use the parameter store");
  return grads_;
}

Tensor Llama::lm_head_padded() const {
  LCT_CHECK(!params_.flat.empty(), "the parameters are not resident (ZeRO 3)");
  return params_.views[size_t(head_i_)];
}


void Llama::alloc_layer_acts(LayerActs& a) {
  const DType act = ops_.act_dtype(), acc = ops_.acc_dtype();
  a.ln1 = buffers_.alloc(act, {Ns_, C_});
  a.rstd1 = buffers_.alloc(acc, {Ns_});
  a.q = buffers_.alloc(act, {B_, Tl_, Hq_, D_});
  a.kv = buffers_.alloc(act, {2, B_, Tl_, Hkv_, D_});
  a.att = buffers_.alloc(acc, {B_, Tl_, Hq_, D_});
  a.att_act = act == acc ? a.att : buffers_.alloc(act, {B_, Tl_, Hq_, D_});
  a.lse = buffers_.alloc(acc, {B_, Hq_, Tl_});
  a.x_mid = buffers_.alloc(act, {Ns_, C_});
  a.ln2 = buffers_.alloc(act, {Ns_, C_});
  a.rstd2 = buffers_.alloc(acc, {Ns_});
  a.gate = buffers_.alloc(act, {N_, F_});
  a.up = buffers_.alloc(act, {N_, F_});
  a.h = buffers_.alloc(act, {N_, F_});
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
  OwnedBuffers scratch(ops_);
  Tensor tmp = scratch.alloc(DType::F64, {rows, D_ / 2});
  ops_.from_host(tmp, c.data());
  ops_.convert(cos_, tmp);
  ops_.from_host(tmp, s.data());
  ops_.convert(sin_, tmp);
}

void Llama::upload_batch(const MicroBatch& mb) {
  LCT_CHECK(int64_t(mb.inputs.size()) == N_ && int64_t(mb.targets.size()) == N_, "micro-batch has ",
            mb.inputs.size(), " tokens, the model expects ", N_);
  ops_.from_host(tokens_, mb.inputs.data());
  ops_.from_host(targets_, mb.targets.data());
  if (!mb.meta.empty()) {  // this micro-batch's own slots, masks and RoPE positions
    attn_->set_meta(mb.meta);
    set_rope(mb.meta.rope_positions(shape_.cp_rank));
    custom_meta_ = true;
  } else if (custom_meta_) {  // back to the plain layout
    attn_->set_meta(plain_meta(B_, shape_.seq_len, shape_.cp, shape_.zigzag ? CpSharding::Zigzag : CpSharding::Contiguous));
    set_rope(pos_host_);
    custom_meta_ = false;
  }
}

void Llama::layer_forward(int l, LayerActs& a, const LayerWeights& w, const Tensor& x, Tensor out) {
  (void)l;
  // attention block
  ops_.rmsnorm_forward(a.ln1, a.rstd1, x, w.ln1, cfg_.norm_eps);
  Tensor ln1 = gather(a.ln1);
  Tensor k = a.kv.slice(0, 1).view({B_, Tl_, Hkv_, D_}), v = a.kv.slice(1, 1).view({B_, Tl_, Hkv_, D_});
  ops_.matmul_forward(a.q.view({N_, Hq_ * D_}), ln1, w.wq);
  ops_.matmul_forward(k.view({N_, Hkv_ * D_}), ln1, w.wk);
  ops_.matmul_forward(v.view({N_, Hkv_ * D_}), ln1, w.wv);
  ops_.rope_forward(a.q, cos_, sin_);
  ops_.rope_forward(k, cos_, sin_);
  attn_->forward(a.att, a.lse, a.q, a.kv);
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
  Tensor mlp = reduce(partial_, reduced_);
  if (!out.empty()) ops_.add_forward(out, a.x_mid, mlp);
}

double Llama::forward_pass(bool keep_head) {
  const DType act = ops_.act_dtype();
  const int L = int(cfg_.n_layers), head = table_.head_unit();
  // embedding (vocabulary-parallel: rows outside this rank's slice are zero until reduced)
  void* eb = store_->acquire_params(0);
  store_->prefetch_params(L > 0 ? ParamTable::layer_unit(0) : head);
  ops_.embedding_forward(partial_, tokens_, view(embed_i_, eb, act).slice(0, table_.vocab_valid), table_.vocab_begin);
  if (lm_head_unit() != 0) store_->release_params(0);
  Tensor emb = reduce(partial_, reduced_);
  Tensor x0 = inputs_->write(0);
  if (emb.ptr != x0.ptr) ops_.convert(x0, emb);
  inputs_->written(0);
  for (int l = 0; l < L; ++l) {
    void* w = store_->acquire_params(ParamTable::layer_unit(l));
    store_->prefetch_params(l + 1 < L ? ParamTable::layer_unit(l + 1) : head);
    layer_forward(l, acts_[shape_.recompute ? 0 : size_t(l)], layer_weights(table_, l, w, act), inputs_->get(l),
                  inputs_->write(l + 1));
    inputs_->written(l + 1);
    store_->release_params(ParamTable::layer_unit(l));
  }
  void* hb = store_->acquire_params(head);
  void* lb = lm_head_unit() == head ? hb : eb;
  ops_.rmsnorm_forward(lnf_, rstdf_, inputs_->get(L), view(norm_i_, hb, act), cfg_.norm_eps);
  if (sp_) tp_comm_->all_gather(lnf_, lnf_full_);
  ops_.lmhead_loss_forward(stats_, lnf_full_, view(head_i_, lb, act), targets_, table_.vocab_begin,
                           table_.vocab_valid);
  if (!keep_head) {
    store_->release_params(head);
    if (lm_head_unit() == 0) store_->release_params(0);
  }
  if (shape_.tp > 1) tp_comm_->all_gather(stats_, stats_all_);
  return ops_.lmhead_loss_combine(lse_loss_, stats_all_, targets_);
}

std::vector<double> Llama::token_losses() {
  const int P = shape_.tp;
  std::vector<double> lse(static_cast<size_t>(N_)), stats(static_cast<size_t>(P * N_ * 3));
  std::vector<int32_t> tg(static_cast<size_t>(N_));
  auto download = [&](const Tensor& t, std::vector<double>& out) {
    OwnedBuffers scratch(ops_);
    Tensor tmp = scratch.alloc(DType::F64, {t.numel()});
    ops_.convert(tmp, t);
    ops_.to_host(out.data(), tmp);
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
  return forward_pass(false);
}

void Llama::layer_backward(int l, LayerActs& a, Tensor dres) {
  const int u = ParamTable::layer_unit(l);
  const Tensor x = inputs_->for_backward(l);
  const LayerWeights w = layer_weights(table_, l, store_->acquire_params(u), ops_.act_dtype());
  if (l > 0) store_->prefetch_params(ParamTable::layer_unit(l - 1));
  const LayerWeights g = layer_weights(table_, l, store_->acquire_grads(u), ops_.acc_dtype());
  if (shape_.recompute) layer_forward(l, a, w, x, Tensor());  // rebuild this layer's activations from its input
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
  attn_->backward(dq_, dkv_, datt_, a.q, a.kv, a.att, a.lse);
  Tensor dq = as_act(dq_, dq_act_), dkv = as_act(dkv_, dkv_act_);
  Tensor dk = dkv.slice(0, 1).view({B_, Tl_, Hkv_, D_}), dv = dkv.slice(1, 1).view({B_, Tl_, Hkv_, D_});
  ops_.rope_backward(dq, cos_, sin_);
  ops_.rope_backward(dk, cos_, sin_);
  Tensor ln1 = gather(a.ln1);
  ops_.matmul_backward(dpartial_, g.wq, dq.view({N_, Hq_ * D_}), ln1, w.wq);
  ops_.matmul_backward(dpartial_, g.wk, dk.view({N_, Hkv_ * D_}), ln1, w.wk, true);
  ops_.matmul_backward(dpartial_, g.wv, dv.view({N_, Hkv_ * D_}), ln1, w.wv, true);
  ops_.rmsnorm_backward(dres, g.ln1, reduce(dpartial_, reduced_), x, w.ln1, a.rstd1);
  store_->release_grads(u);
  store_->release_params(u);
}

double Llama::forward_backward(const MicroBatch& mb, double scale) {
  upload_batch(mb);
  const double loss = forward_pass(true);
  const DType act = ops_.act_dtype(), acc = ops_.acc_dtype();
  const int L = int(cfg_.n_layers), head = table_.head_unit(), lu = lm_head_unit();
  // The final norm and LM head are still acquired from the forward (tied: the embedding too).
  void* hb = store_->acquire_params(head);
  void* hg = store_->acquire_grads(head);
  void* lb = lu == head ? hb : store_->acquire_params(0);
  void* lg = lu == head ? hg : store_->acquire_grads(0);
  if (L > 0) store_->prefetch_params(ParamTable::layer_unit(L - 1));
  // LM head + loss: d(lnf_full) is a partial sum over vocabulary slices.
  ops_.lmhead_loss_backward(dpartial_, view(head_i_, lg, acc), lnf_full_, view(head_i_, lb, act), targets_, lse_loss_,
                            scale, table_.vocab_begin, table_.vocab_valid);
  ops_.zero(dres_);
  ops_.rmsnorm_backward(dres_, view(norm_i_, hg, acc), reduce(dpartial_, reduced_), inputs_->get(L),
                        view(norm_i_, hb, act), rstdf_);
  store_->release_grads(head);
  for (int k = 0; k < 2; ++k) store_->release_params(head);  // the forward's acquire and this one
  if (lu == 0)
    for (int k = 0; k < 2; ++k) store_->release_params(0);
  for (int l = L - 1; l >= 0; --l) layer_backward(l, acts_[shape_.recompute ? 0 : size_t(l)], dres_);
  void* eg = lu == 0 ? lg : store_->acquire_grads(0);
  ops_.embedding_backward(view(embed_i_, eg, acc).slice(0, table_.vocab_valid), gather(dres_), tokens_,
                          table_.vocab_begin);
  store_->release_grads(0);
  store_->finish_backward();
  return loss;
}

}  // namespace lct
