#include "infer/llama_decoder.h"

#include <algorithm>
#include <limits>

#include "attention/ring_attention.h"
#include "attention/sharding.h"
#include "core/error.h"
#include "core/timer.h"

namespace lct {

namespace {

// The cp rank that stores the next decoded token: the fewest cached tokens, lowest rank on ties
// (pads leave the ranks holding the last chunks short, so they fill up first).
int next_owner(const std::vector<int64_t>& counts) {
  return int(std::min_element(counts.begin(), counts.end()) - counts.begin());
}

}  // namespace

LlamaDecoder::LlamaDecoder(Llama& model, const RopeConfig& rope, Ops& ops, Comm* tp, Comm* cp)
    : model_(model), rope_(rope), ops_(ops), tp_(tp), cp_(cp), weights_(model), cfg_(model.config()) {
  const ModelShape& s = model.shape();
  tp_size_ = s.tp;
  cp_size_ = s.cp;
  cp_rank_ = s.cp_rank;
  zigzag_ = s.zigzag;
  sp_ = s.tp > 1 && s.sequence_parallel;
  LCT_CHECK(tp_size_ == 1 || tp_, "tp > 1 needs a tp communicator");
  LCT_CHECK(cp_size_ == 1 || cp_, "cp > 1 needs a cp communicator");
  LCT_CHECK(s.cp_a2a == 1, "decoding runs over the cp ring only (parallel.cp_comm_type = p2p); the model has an "
            "all-to-all group of ", s.cp_a2a);
  C_ = cfg_.dim;
  D_ = cfg_.head_dim;
  Hq_ = cfg_.n_heads / tp_size_;
  Hkv_ = cfg_.n_kv_heads / tp_size_;
  F_ = cfg_.ffn_dim / tp_size_;
  Vlp_ = model.table().vocab_local;
  for (int r = 0; r < tp_size_; ++r) {
    const ParamTable t = ParamTable::build(cfg_, tp_size_, r);
    vocab_begin_.push_back(t.vocab_begin);
    vocab_valid_.push_back(t.vocab_valid);
  }
  const DType act = ops_.act_dtype(), acc = ops_.acc_dtype();
  tok_ = buffers_.alloc(DType::I32, {1});
  qpos_ = buffers_.alloc(DType::I32, {1});
  cos1_ = buffers_.alloc(acc, {1, D_ / 2});
  sin1_ = buffers_.alloc(acc, {1, D_ / 2});
  rope_tmp_ = buffers_.alloc(DType::F64, {1, D_ / 2});
  x_ = buffers_.alloc(act, {1, C_});
  x_mid_ = buffers_.alloc(act, {1, C_});
  ln_ = buffers_.alloc(act, {1, C_});
  rstd_ = buffers_.alloc(acc, {1});
  q_ = buffers_.alloc(act, {1, 1, Hq_, D_});
  k_ = buffers_.alloc(act, {1, 1, Hkv_, D_});
  v_ = buffers_.alloc(act, {1, 1, Hkv_, D_});
  att_b_ = buffers_.alloc(acc, {1, 1, Hq_, D_});
  lse_b_ = buffers_.alloc(acc, {1, Hq_, 1});
  att_ = cp_size_ > 1 ? buffers_.alloc(acc, {1, 1, Hq_, D_}) : att_b_;
  lse_ = cp_size_ > 1 ? buffers_.alloc(acc, {1, Hq_, 1}) : lse_b_;
  att_act_ = act == acc ? att_ : buffers_.alloc(act, {1, 1, Hq_, D_});
  partial_ = buffers_.alloc(act, {1, C_});
  gate_ = buffers_.alloc(act, {1, F_});
  up_ = buffers_.alloc(act, {1, F_});
  h_ = buffers_.alloc(act, {1, F_});
  if (cp_size_ > 1) {
    pack_ = buffers_.alloc(acc, {Hq_ * D_ + Hq_});
    packs_ = buffers_.alloc(acc, {int64_t(cp_size_), Hq_ * D_ + Hq_});
  }
  logits_local_ = buffers_.alloc(acc, {1, Vlp_});
  logits_all_ = tp_size_ > 1 ? buffers_.alloc(acc, {int64_t(tp_size_), Vlp_}) : logits_local_;
  logits_f64_ = buffers_.alloc(DType::F64, {int64_t(tp_size_) * Vlp_});
  neg_inf_.assign(size_t(Hq_), -std::numeric_limits<double>::infinity());
  logits_host_.resize(size_t(tp_size_ * Vlp_));
  logits_.resize(size_t(cfg_.vocab_size));
}

LlamaDecoder::~LlamaDecoder() {
  cache_.reset();
  buffers_.release();
}


void LlamaDecoder::upload_rope(Tensor cos, Tensor sin, const std::vector<int32_t>& pos) {
  std::vector<double> c, s;
  rope_tables(freqs_, pos, c, s);
  OwnedBuffers scratch(ops_);
  Tensor tmp = int64_t(pos.size()) == 1 ? rope_tmp_ : scratch.alloc(DType::F64, {int64_t(pos.size()), D_ / 2});
  ops_.from_host(tmp, c.data());
  ops_.convert(cos, tmp);
  ops_.from_host(tmp, s.data());
  ops_.convert(sin, tmp);
}

Tensor LlamaDecoder::gather(const Tensor& local, const Tensor& full, bool sp) {
  if (!sp) return local;
  tp_->all_gather(local, full);
  return full;
}

Tensor LlamaDecoder::reduce(Tensor partial, Tensor out_local, bool sp) {
  if (tp_size_ == 1) return partial;
  if (!sp) {
    tp_->all_reduce(partial);
    return partial;
  }
  tp_->reduce_scatter(partial, out_local);
  return out_local;
}

Tensor LlamaDecoder::as_act(const Tensor& acc_tensor, const Tensor& act_buffer) {
  if (acc_tensor.ptr == act_buffer.ptr) return acc_tensor;
  ops_.convert(act_buffer, acc_tensor);
  return act_buffer;
}

const std::vector<double>& LlamaDecoder::prefill(const std::vector<int32_t>& prompt, int64_t max_new) {
  const double t0 = now_seconds();
  const int64_t P = int64_t(prompt.size());
  if (P == 0) throw InputError("generation needs a prompt of at least one token", true);
  for (int32_t id : prompt)
    if (id < 0 || id >= cfg_.vocab_size)
      throw InputError(str("prompt token id ", id, " is outside the model's vocabulary [0, ", cfg_.vocab_size, ")"), true);
  if (max_new < 0) throw InputError("max_new must be >= 0", true);
  cache_.reset();
  const int64_t base_bytes = ops_.allocated_bytes();

  // Layout of the padded prompt, and how many real tokens each cp rank holds.
  const int64_t m = int64_t(zigzag_ && cp_size_ > 1 ? 2 * cp_size_ : cp_size_) * tp_size_;
  const int64_t T = (P + m - 1) / m * m, Tl = T / cp_size_, N = Tl, Ns = sp_ ? N / tp_size_ : N;
  counts_.assign(size_t(cp_size_), 0);
  std::vector<int32_t> pos;
  for (int r = 0; r < cp_size_; ++r) {
    const std::vector<int32_t> p = shard_positions(T, cp_size_, r, zigzag_);
    for (int32_t x : p) counts_[size_t(r)] += x < P;
    if (r == cp_rank_) pos = p;
  }
  // The cache holds this rank's real tokens and the decoded tokens it will be assigned.
  std::vector<int64_t> fill = counts_;
  for (int64_t i = 0; i < max_new; ++i) ++fill[size_t(next_owner(fill))];
  cache_ = std::make_unique<KvCache>(ops_, cfg_.n_layers, fill[size_t(cp_rank_)], Hkv_, D_);
  max_len_ = P + max_new;
  freqs_ = rope_frequencies(rope_, D_, max_len_);

  // Real rows (position < P) form at most one run per zigzag chunk; they go to the cache.
  std::vector<std::pair<int64_t, int64_t>> runs;
  std::vector<int32_t> real;
  std::vector<int32_t> tokens(static_cast<size_t>(N));
  for (int64_t t = 0; t < N; ++t) {
    const int32_t p = pos[size_t(t)];
    tokens[size_t(t)] = p < P ? prompt[size_t(p)] : 0;  // pads: any valid id, never seen by a real token
    if (p >= P) continue;
    real.push_back(p);
    if (!runs.empty() && runs.back().first + runs.back().second == t) ++runs.back().second;
    else runs.push_back({t, 1});
  }
  const int64_t at0 = cache_->append_positions(real);

  const DType act = ops_.act_dtype(), acc = ops_.acc_dtype();
  OwnedBuffers tmp(ops_);  // this prefill's activations, freed at the end
  Tensor tokens_d = tmp.alloc(DType::I32, {N});
  ops_.from_host(tokens_d, tokens.data());
  Tensor cos = tmp.alloc(acc, {N, D_ / 2}), sin = tmp.alloc(acc, {N, D_ / 2});
  upload_rope(cos, sin, pos);
  Tensor x = tmp.alloc(act, {Ns, C_}), x_mid = tmp.alloc(act, {Ns, C_}), ln = tmp.alloc(act, {Ns, C_});
  Tensor rstd = tmp.alloc(acc, {Ns});
  Tensor full = sp_ ? tmp.alloc(act, {N, C_}) : Tensor(), reduced = sp_ ? tmp.alloc(act, {Ns, C_}) : Tensor();
  Tensor partial = tmp.alloc(act, {N, C_});
  Tensor q = tmp.alloc(act, {1, N, Hq_, D_}), kv = tmp.alloc(act, {2, 1, N, Hkv_, D_});
  Tensor att = tmp.alloc(acc, {1, N, Hq_, D_}), lse = tmp.alloc(acc, {1, Hq_, N});
  Tensor att_act = act == acc ? att : tmp.alloc(act, {1, N, Hq_, D_});
  Tensor gate = tmp.alloc(act, {N, F_}), up = tmp.alloc(act, {N, F_}), h = tmp.alloc(act, {N, F_});
  Tensor k = kv.slice(0, 1).view({1, N, Hkv_, D_}), v = kv.slice(1, 1).view({1, N, Hkv_, D_});

  RingShape rs;
  rs.B = 1;
  rs.T = T;
  rs.Hq = Hq_;
  rs.Hkv = Hkv_;
  rs.D = D_;
  rs.cp = cp_size_;
  rs.zigzag = zigzag_;
  {
    RingAttention ring(ops_, cp_, cp_rank_, rs);
    ring.count_work = false;
    const HeadWeights& head = weights_.acquire_head();
    ops_.embedding_forward(partial, tokens_d, head.embed.slice(0, vocab_valid_[size_t(model_.shape().tp_rank)]),
                           vocab_begin_[size_t(model_.shape().tp_rank)]);
    ops_.convert(x, reduce(partial, reduced, sp_));
    for (int l = 0; l < cfg_.n_layers; ++l) {
      const LayerWeights& w = weights_.acquire_layer(l);
      ops_.rmsnorm_forward(ln, rstd, x, w.ln1, cfg_.norm_eps);
      Tensor ln_full = gather(ln, full, sp_);
      ops_.matmul_forward(q.view({N, Hq_ * D_}), ln_full, w.wq);
      ops_.matmul_forward(k.view({N, Hkv_ * D_}), ln_full, w.wk);
      ops_.matmul_forward(v.view({N, Hkv_ * D_}), ln_full, w.wv);
      ops_.rope_forward(q, cos, sin);
      ops_.rope_forward(k, cos, sin);
      ring.forward(att, lse, q, kv);  // the plain causal layout of the shape: positions 0..T-1 sharded
      int64_t at = at0;
      for (const auto& [row0, count] : runs) {
        cache_->write(l, at, k, v, row0, count);
        at += count;
      }
      ops_.matmul_forward(partial, as_act(att, att_act).view({N, Hq_ * D_}), w.wo);
      ops_.add_forward(x_mid, x, reduce(partial, reduced, sp_));
      ops_.rmsnorm_forward(ln, rstd, x_mid, w.ln2, cfg_.norm_eps);
      ln_full = gather(ln, full, sp_);
      ops_.matmul_forward(gate, ln_full, w.wgate);
      ops_.matmul_forward(up, ln_full, w.wup);
      ops_.swiglu_forward(h, gate, up);
      ops_.matmul_forward(partial, h, w.wdown);
      ops_.add_forward(x, x_mid, reduce(partial, reduced, sp_));
      weights_.release_layer(l);
    }
    // The logits of position P - 1, on the cp rank that holds it; the others add zeros.
    Tensor x_full = gather(x, full, sp_);
    const auto it = std::find(pos.begin(), pos.end(), int32_t(P - 1));
    if (it != pos.end()) {
      const int64_t t = it - pos.begin();
      ops_.rmsnorm_forward(ln_, rstd_, x_full.slice(t, 1), head.norm, cfg_.norm_eps);
      ops_.matmul_forward(logits_local_, ln_, head.lm_head);
    } else {
      ops_.zero(logits_local_);
    }
    weights_.release_head();
    if (cp_size_ > 1) cp_->all_reduce(logits_local_);
  }
  // The backend's high-water mark is global: this is exact when the prefill set it (a fresh
  // backend, as the memory test uses) and an upper bound otherwise.
  times_.prefill_extra_peak_bytes = ops_.peak_allocated_bytes() - base_bytes;
  tmp.release();
  len_ = P;
  const std::vector<double>& out = assemble_logits();
  times_.prefill_s += now_seconds() - t0;
  times_.decoded = 0;
  return out;
}

void LlamaDecoder::merge_over_cp() {
  if (cp_size_ == 1) return;
  const int64_t W = Hq_ * D_ + Hq_;
  const size_t es = dtype_size(ops_.acc_dtype());
  Tensor pack_out(pack_.ptr, pack_.dtype, {Hq_ * D_}), pack_lse(static_cast<char*>(pack_.ptr) + size_t(Hq_ * D_) * es, pack_.dtype, {Hq_});
  ops_.convert(pack_out, att_b_.view({Hq_ * D_}));
  ops_.convert(pack_lse, lse_b_.view({Hq_}));
  cp_->all_gather(pack_, packs_);
  for (int r = 0; r < cp_size_; ++r) {
    char* base = static_cast<char*>(packs_.ptr) + size_t(r * W) * es;
    Tensor out_r(base, packs_.dtype, {1, 1, Hq_, D_}), lse_r(base + size_t(Hq_ * D_) * es, packs_.dtype, {1, Hq_, 1});
    if (r == 0) {
      ops_.convert(att_, out_r);
      ops_.convert(lse_, lse_r);
    } else {
      ops_.attention_merge(att_, lse_, out_r, lse_r);
    }
  }
}

const std::vector<double>& LlamaDecoder::decode(int32_t token) {
  const double t0 = now_seconds();
  LCT_CHECK(cache_, "decode() before prefill()");
  if (token < 0 || token >= cfg_.vocab_size)
    throw InputError(str("token id ", token, " is outside the model's vocabulary [0, ", cfg_.vocab_size, ")"), true);
  if (len_ >= max_len_) throw InputError(str("decode past the reserved length ", max_len_), true);
  const int32_t p = int32_t(len_);
  const int owner = next_owner(counts_);
  ops_.from_host(tok_, &token);
  ops_.from_host(qpos_, &p);
  upload_rope(cos1_, sin1_, {p});
  int64_t at = -1;
  if (owner == cp_rank_) at = cache_->append_positions({p});

  const int tp_rank = model_.shape().tp_rank;
  const HeadWeights& head = weights_.acquire_head();
  ops_.embedding_forward(partial_, tok_, head.embed.slice(0, vocab_valid_[size_t(tp_rank)]), vocab_begin_[size_t(tp_rank)]);
  ops_.convert(x_, reduce(partial_, Tensor(), false));
  for (int l = 0; l < cfg_.n_layers; ++l) {
    const LayerWeights& w = weights_.acquire_layer(l);
    ops_.rmsnorm_forward(ln_, rstd_, x_, w.ln1, cfg_.norm_eps);
    ops_.matmul_forward(q_.view({1, Hq_ * D_}), ln_, w.wq);
    ops_.matmul_forward(k_.view({1, Hkv_ * D_}), ln_, w.wk);
    ops_.matmul_forward(v_.view({1, Hkv_ * D_}), ln_, w.wv);
    ops_.rope_forward(q_, cos1_, sin1_);
    ops_.rope_forward(k_, cos1_, sin1_);
    if (at >= 0) cache_->write(l, at, k_, v_, 0, 1);
    if (cache_->size() > 0) {
      ops_.attention_forward(att_b_, lse_b_, q_, cache_->keys(l), cache_->values(l), qpos_, cache_->positions());
    } else {  // an empty shard: nothing visible (out 0, lse -inf), merged away
      ops_.zero(att_b_);
      OwnedBuffers scratch(ops_);
      Tensor tmp = scratch.alloc(DType::F64, {1, Hq_, 1});
      ops_.from_host(tmp, neg_inf_.data());
      ops_.convert(lse_b_, tmp);
    }
    merge_over_cp();
    ops_.matmul_forward(partial_, as_act(att_, att_act_).view({1, Hq_ * D_}), w.wo);
    ops_.add_forward(x_mid_, x_, reduce(partial_, Tensor(), false));
    ops_.rmsnorm_forward(ln_, rstd_, x_mid_, w.ln2, cfg_.norm_eps);
    ops_.matmul_forward(gate_, ln_, w.wgate);
    ops_.matmul_forward(up_, ln_, w.wup);
    ops_.swiglu_forward(h_, gate_, up_);
    ops_.matmul_forward(partial_, h_, w.wdown);
    ops_.add_forward(x_, x_mid_, reduce(partial_, Tensor(), false));
    weights_.release_layer(l);
  }
  ops_.rmsnorm_forward(ln_, rstd_, x_, head.norm, cfg_.norm_eps);
  ops_.matmul_forward(logits_local_, ln_, head.lm_head);
  weights_.release_head();
  ++counts_[size_t(owner)];
  ++len_;
  const std::vector<double>& out = assemble_logits();
  times_.decode_s += now_seconds() - t0;
  ++times_.decoded;
  return out;
}

const std::vector<double>& LlamaDecoder::assemble_logits() {
  if (tp_size_ > 1) tp_->all_gather(logits_local_, logits_all_);
  ops_.convert(logits_f64_, logits_all_.view({int64_t(tp_size_) * Vlp_}));
  ops_.to_host(logits_host_.data(), logits_f64_);
  for (int r = 0; r < tp_size_; ++r)
    for (int64_t i = 0; i < vocab_valid_[size_t(r)]; ++i)
      logits_[size_t(vocab_begin_[size_t(r)] + i)] = logits_host_[size_t(r * Vlp_ + i)];
  return logits_;
}

}  // namespace lct
