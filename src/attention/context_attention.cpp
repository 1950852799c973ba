#include "attention/context_attention.h"

#include <algorithm>

#include "core/error.h"
#include "core/log.h"
#include "core/timer.h"
#include "parallel/layout.h"

namespace lct {

ContextAttention::ContextAttention(Ops& ops, Comm* a2a, Comm* ring, int cp_rank, const RingShape& shape, int U)
    : ops_(ops), a2a_(a2a), U_(U), cp_rank_(cp_rank), s_(shape) {
  LCT_CHECK(U_ >= 1 && s_.cp % U_ == 0, "all-to-all size ", U_, " does not divide cp ", s_.cp);
  const int R = s_.cp / U_, ring_pos = cp_rank_ / U_;
  if (U_ == 1) {  // today's ring attention, as it was
    ring_ = std::make_unique<RingAttention>(ops_, ring, cp_rank_, s_);
    return;
  }
  check_cp_heads(s_.Hq, s_.Hkv, 1, U_);
  LCT_CHECK(a2a_ && a2a_->size() == U_ && a2a_->rank() == cp_rank_ % U_, "the all-to-all communicator of ", U_,
            " ranks must hold this rank at a2a_rank ", cp_rank_ % U_);
  LCT_CHECK(R == 1 || (ring && ring->size() == R && ring->rank() == ring_pos), "the ring communicator of ", R,
            " ranks must hold this rank at ring position ", ring_pos);
  h_ = s_.Hq / U_;
  hk_ = std::max<int64_t>(s_.Hkv / U_, 1);
  f_ = s_.Hkv >= U_ ? 1 : U_ / s_.Hkv;
  RingShape rs = s_;
  rs.cp = R;
  rs.Hq = h_;
  rs.Hkv = hk_;
  ring_ = std::make_unique<RingAttention>(ops_, R > 1 ? ring : nullptr, ring_pos, rs);
  const int64_t B = s_.B, Tl = s_.T_local(), UTl = int64_t(U_) * Tl, D = s_.D;
  const DType act = ops_.act_dtype(), acc = ops_.acc_dtype();
  qh_ = buffers_.alloc(act, {B, UTl, h_, D});
  kvh_ = buffers_.alloc(act, {2, B, UTl, hk_, D});
  outh_ = buffers_.alloc(acc, {B, UTl, h_, D});
  douth_ = buffers_.alloc(act, {B, UTl, h_, D});
  dqh_ = buffers_.alloc(acc, {B, UTl, h_, D});
  dkvh_ = buffers_.alloc(acc, {2, B, UTl, hk_, D});
  stage_bytes_ = size_t(std::max(B * Tl * s_.Hq * D, 2 * B * Tl * U_ * hk_ * D)) * dtype_size(acc);
  send_ = buffers_.alloc_bytes(stage_bytes_);
  recv_ = buffers_.alloc_bytes(stage_bytes_);
  set_meta(plain_meta(B, s_.T, s_.cp, s_.zigzag ? CpSharding::Zigzag : CpSharding::Contiguous));
  const std::string note =
      kv_replication_note(s_.Hkv, 1, U_, 2 * B * Tl * s_.Hkv * D * int64_t(dtype_size(act)));
  if (!note.empty()) info(note);
}

ContextAttention::~ContextAttention() {
  ring_.reset();
  buffers_.release();
}


void ContextAttention::set_meta(const AttentionMeta& m) {
  LCT_CHECK(m.cp == s_.cp, "attention layout over cp ", m.cp, " for context parallelism over ", s_.cp);
  ring_->set_meta(U_ == 1 ? m : merge_a2a(m, U_));
}

void ContextAttention::all_to_all(const Tensor& send, Tensor recv) {
  const double t0 = now_seconds();
  a2a_->all_to_all(send, recv);
  ++ring_->stats.a2a_calls;
  ring_->stats.a2a_s += now_seconds() - t0;
}

// Sequence -> head. The send buffer holds U parts [Bx, Tl, hh, D], part j the heads member j
// takes; after the all-to-all part i of the receive buffer holds member i's tokens, which go to
// tokens i Tl .. (i+1) Tl of the head layout (the merged ring position's local order).
void ContextAttention::to_heads(Tensor dst, const Tensor& src, int64_t Bx, int64_t Hsrc, int64_t hh, int64_t f) {
  const int64_t U = U_, Tl = s_.T_local(), D = s_.D, n = U * Bx * Tl * hh * D;
  LCT_CHECK(src.numel() == Bx * Tl * Hsrc * D && dst.numel() == n && (U / f) * hh == Hsrc, "all-to-all shapes");
  Tensor send(send_, src.dtype, {n}), recv(recv_, src.dtype, {n});
  LCT_CHECK(send.bytes() <= stage_bytes_, "all-to-all staging");
  const CopyMap pack = f == 1 ? CopyMap::of({{U, hh * D}, {Bx, Tl * Hsrc * D}, {Tl, Hsrc * D}, {hh * D, 1}})
                              : CopyMap::of({{U / f, hh * D}, {f, 0}, {Bx, Tl * Hsrc * D}, {Tl, Hsrc * D}, {hh * D, 1}});
  ops_.permute_copy(send, src, pack);
  all_to_all(send, recv);
  ops_.permute_copy(dst, recv, CopyMap::of({{Bx, Tl * hh * D}, {U, Bx * Tl * hh * D}, {Tl * hh * D, 1}}));
}

// Head -> sequence: the mirror of to_heads. Part j of the send buffer holds tokens j Tl .. of
// the head layout (member j's tokens); part i of the receive buffer holds member i's heads. The
// f members holding copies of one replicated K/V head each send its gradient: summed here.
void ContextAttention::to_sequence(Tensor dst, const Tensor& src, int64_t Bx, int64_t Hdst, int64_t hh, int64_t f) {
  const int64_t U = U_, Tl = s_.T_local(), D = s_.D, part = Bx * Tl * hh * D, n = U * part;
  LCT_CHECK(src.numel() == n && dst.numel() == Bx * Tl * Hdst * D && (U / f) * hh == Hdst, "all-to-all shapes");
  Tensor send(send_, src.dtype, {n}), recv(recv_, src.dtype, {n});
  LCT_CHECK(send.bytes() <= stage_bytes_, "all-to-all staging");
  ops_.permute_copy(send, src, CopyMap::of({{U, Tl * hh * D}, {Bx, U * Tl * hh * D}, {Tl * hh * D, 1}}));
  all_to_all(send, recv);
  const CopyMap unpack = CopyMap::of({{Bx, Tl * hh * D}, {Tl, hh * D}, {U / f, f * part}, {hh * D, 1}});
  for (int64_t r = 0; r < f; ++r)
    ops_.permute_copy(dst, recv.slice(r * part, n - r * part), unpack, /*accumulate=*/r > 0);
}

void ContextAttention::forward(Tensor out, Tensor lse, const Tensor& q, const Tensor& kv) {
  if (U_ == 1) return ring_->forward(out, lse, q, kv);
  const int64_t B = s_.B, Tl = s_.T_local(), UTl = int64_t(U_) * Tl;
  LCT_CHECK(lse.numel() == B * s_.Hq * Tl, "attention lse buffer");
  to_heads(qh_, q, B, s_.Hq, h_, 1);
  to_heads(kvh_, kv, 2 * B, s_.Hkv, hk_, f_);
  const Tensor lseh = lse.view({B, h_, UTl});
  ring_->forward(outh_, lseh, qh_, kvh_);
  to_sequence(out, outh_, B, s_.Hq, h_, 1);
}

void ContextAttention::backward(Tensor dq, Tensor dkv, const Tensor& dout, const Tensor& q, const Tensor& kv,
                                const Tensor& out, const Tensor& lse) {
  if (U_ == 1) return ring_->backward(dq, dkv, dout, q, kv, out, lse);
  const int64_t B = s_.B, Tl = s_.T_local(), UTl = int64_t(U_) * Tl;
  to_heads(qh_, q, B, s_.Hq, h_, 1);
  to_heads(kvh_, kv, 2 * B, s_.Hkv, hk_, f_);
  to_heads(outh_, out, B, s_.Hq, h_, 1);
  to_heads(douth_, dout, B, s_.Hq, h_, 1);
  ring_->backward(dqh_, dkvh_, douth_, qh_, kvh_, outh_, lse.view({B, h_, UTl}));
  to_sequence(dq, dqh_, B, s_.Hq, h_, 1);
  to_sequence(dkv, dkvh_, 2 * B, s_.Hkv, hk_, f_);
}

}  // namespace lct
