#include "attention/ring_attention.h"

#include <algorithm>

#include "attention/sharding.h"
#include "core/error.h"
#include "core/timer.h"

namespace lct {
namespace {
constexpr int kTagKV = 101, kTagDKV = 102;
}

RingAttention::RingAttention(Ops& ops, Comm* cp, int ring_pos, const RingShape& shape)
    : ops_(ops), cp_(cp), pos_(ring_pos), s_(shape) {
  LCT_CHECK(s_.cp == 1 || (cp_ && cp_->size() == s_.cp), "ring size");
  const int64_t Tl = s_.T_local();
  const DType act = ops_.act_dtype(), acc = ops_.acc_dtype();
  qpos_ = buffers_.alloc(DType::I32, {s_.B * Tl});
  qstart_ = buffers_.alloc(DType::I32, {s_.B * Tl});
  kpos_all_ = buffers_.alloc(DType::I32, {int64_t(s_.cp), s_.B * Tl});
  if (s_.cp > 1) {
    for (auto& b : kv_buf_) b = buffers_.alloc(act, {2, s_.B, Tl, s_.Hkv, s_.D});
    out_tmp_ = buffers_.alloc(acc, {s_.B, Tl, s_.Hq, s_.D});
    lse_tmp_ = buffers_.alloc(acc, {s_.B, s_.Hq, Tl});
    for (auto& b : dkv_buf_) b = buffers_.alloc(acc, {2, s_.B, Tl, s_.Hkv, s_.D});
  }
  dkv_part_ = buffers_.alloc(acc, {2, s_.B, Tl, s_.Hkv, s_.D});
  set_meta(plain_meta(s_.B, s_.T, s_.cp, s_.zigzag ? CpSharding::Zigzag : CpSharding::Contiguous));
}

RingAttention::~RingAttention() {
  buffers_.release();
}


Tensor RingAttention::k_of(const Tensor& kv) const { return kv.slice(0, 1).view({s_.B, s_.T_local(), s_.Hkv, s_.D}); }
Tensor RingAttention::v_of(const Tensor& kv) const { return kv.slice(1, 1).view({s_.B, s_.T_local(), s_.Hkv, s_.D}); }

void RingAttention::set_meta(const AttentionMeta& m) {
  LCT_CHECK(m.T == s_.T && m.cp == s_.cp && m.B() == s_.B, "attention layout of ", m.B(), " x ", m.T, " slots over cp ",
            m.cp, " for a ring of ", s_.B, " x ", s_.T, " over cp ", s_.cp);
  per_row_ = m.per_row();
  doc_mask_ = m.doc_mask;
  const int64_t n = per_row_ ? s_.B * s_.T_local() : s_.T_local();
  ops_.from_host(qpos_.slice(0, n), m.positions(pos_).data());
  if (doc_mask_) ops_.from_host(qstart_.slice(0, n), m.doc_starts(pos_).data());
  visible_.assign(size_t(s_.cp), 0);
  for (int r = 0; r < s_.cp; ++r) {
    ops_.from_host(kpos_all_.slice(r, 1).view({s_.B * s_.T_local()}).slice(0, n), m.positions(r).data());
    visible_[size_t(r)] = m.visible_pairs(pos_, r);
  }
  // Every query sees itself: the local hop is never empty (the first block is written, not merged).
  LCT_CHECK(visible_[size_t(pos_)] > 0, "attention layout: ring position ", pos_, " sees none of its own keys");
}

AttnMask RingAttention::hop_mask(int src) {
  const int64_t n = per_row_ ? s_.B * s_.T_local() : s_.T_local();
  if (count_work) stats.score_elements += visible_[size_t(src)] * s_.Hq;
  return AttnMask{qpos_.slice(0, n), kpos_all_.slice(src, 1).view({s_.B * s_.T_local()}).slice(0, n),
                  doc_mask_ ? qstart_.slice(0, n) : Tensor()};
}

void RingAttention::forward(Tensor out, Tensor lse, const Tensor& q, const Tensor& kv) {
  const double t_ring = now_seconds();
  Tensor cur = kv;
  int nb = 0;
  for (int step = 0; step < s_.cp; ++step) {
    std::unique_ptr<PendingTransfer> pending;
    if (step + 1 < s_.cp) {  // the next block travels while this one is computed
      pending = cp_->exchange(cur, (pos_ + 1) % s_.cp, kv_buf_[nb], (pos_ + s_.cp - 1) % s_.cp, kTagKV);
      ++stats.blocks_sent;
      stats.max_remote_blocks = std::max(stats.max_remote_blocks, step == 0 ? 1 : 2);
    }
    const int src = (pos_ - step + s_.cp) % s_.cp;
    const double t0 = now_seconds();
    if (visible_[size_t(src)] == 0) {
      ++stats.hops_skipped;  // no local query sees this block: it only passes through
    } else if (step == 0) {
      ops_.attention_forward(out, lse, q, k_of(cur), v_of(cur), hop_mask(src));  // first block: written
    } else {
      ops_.attention_forward(out_tmp_, lse_tmp_, q, k_of(cur), v_of(cur), hop_mask(src));
      ops_.attention_merge(out, lse, out_tmp_, lse_tmp_);
    }
    ops_.synchronize();
    const double t1 = now_seconds();
    stats.compute_s += t1 - t0;
    if (pending) {
      pending->wait();
      stats.wait_s += now_seconds() - t1;
      stats.transfer_s += std::max(0.0, pending->transfer_seconds());
      cur = kv_buf_[nb];
      nb ^= 1;
    }
  }
  stats.ring_s += now_seconds() - t_ring;
}

void RingAttention::backward(Tensor dq, Tensor dkv, const Tensor& dout, const Tensor& q, const Tensor& kv,
                             const Tensor& out, const Tensor& lse) {
  const double t_ring = now_seconds();
  ops_.zero(dq);
  Tensor cur = kv;
  int nb = 0, db = 0;
  std::unique_ptr<PendingTransfer> pending_dkv;
  for (int step = 0; step < s_.cp; ++step) {
    std::unique_ptr<PendingTransfer> pending_kv;
    if (step + 1 < s_.cp) {
      pending_kv = cp_->exchange(cur, (pos_ + 1) % s_.cp, kv_buf_[nb], (pos_ + s_.cp - 1) % s_.cp, kTagKV);
      ++stats.blocks_sent;
      stats.max_remote_blocks = std::max(stats.max_remote_blocks, step == 0 ? 1 : 2);
    }
    const int src = (pos_ - step + s_.cp) % s_.cp;
    const double t0 = now_seconds();
    Tensor part = s_.cp == 1 ? dkv : dkv_part_;
    const bool skip = visible_[size_t(src)] == 0;
    if (skip) ++stats.hops_skipped;  // nothing to add: the block's accumulator passes on unchanged
    if (!skip || step == 0) ops_.zero(part);
    if (!skip) ops_.attention_backward(dq, k_of(part), v_of(part), dout, q, k_of(cur), v_of(cur), hop_mask(src), out, lse);
    ops_.synchronize();
    double t1 = now_seconds();
    stats.compute_s += t1 - t0;
    if (s_.cp > 1) {
      // This block's accumulator so far arrives from the previous rank; add ours and pass it on.
      Tensor acc = dkv_buf_[db];
      if (step == 0) {
        ops_.convert(acc, part);
      } else {
        pending_dkv->wait();
        stats.transfer_s += std::max(0.0, pending_dkv->transfer_seconds());
        if (!skip) ops_.axpy(acc, 1.0, part);
      }
      pending_dkv = cp_->exchange(acc, (pos_ + 1) % s_.cp, dkv_buf_[db ^ 1], (pos_ + s_.cp - 1) % s_.cp, kTagDKV);
      ++stats.dkv_sent;
      db ^= 1;
    }
    if (pending_kv) {
      pending_kv->wait();
      stats.transfer_s += std::max(0.0, pending_kv->transfer_seconds());
      cur = kv_buf_[nb];
      nb ^= 1;
    }
    stats.wait_s += now_seconds() - t1;
  }
  if (s_.cp > 1) {  // our own block's accumulator has come back round the ring
    pending_dkv->wait();
    ops_.convert(dkv, dkv_buf_[db]);
  }
  stats.ring_s += now_seconds() - t_ring;
}

}  // namespace lct
