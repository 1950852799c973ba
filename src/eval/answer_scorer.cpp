#include "eval/answer_scorer.h"

#include <cmath>

#include "core/error.h"
#include "ops/owned_buffers.h"

namespace lct {

RowStats slice_row_stats(const double* logits, int64_t v_local, int64_t vocab_begin, int32_t target) {
  RowStats s;
  for (int64_t i = 0; i < v_local; ++i)
    if (logits[i] > s.max) s.max = logits[i], s.argmax = vocab_begin + i;
  for (int64_t i = 0; i < v_local; ++i) s.sum_exp += std::exp(logits[i] - s.max);
  const int64_t t = int64_t(target) - vocab_begin;
  if (target >= 0 && t >= 0 && t < v_local) s.has_target = true, s.target_logit = logits[t];
  return s;
}

RowStats combine_row_stats(const std::vector<RowStats>& slices) {
  RowStats c;
  for (const RowStats& s : slices)
    if (s.argmax >= 0 && (s.max > c.max || (s.max == c.max && s.argmax < c.argmax))) c.max = s.max, c.argmax = s.argmax;
  for (const RowStats& s : slices) {
    if (s.argmax >= 0) c.sum_exp += s.sum_exp * std::exp(s.max - c.max);
    if (s.has_target) c.has_target = true, c.target_logit = s.target_logit;
  }
  return c;
}

double row_nll(const RowStats& s) {
  LCT_CHECK(s.has_target, "row_nll without a target logit");
  return s.max + std::log(s.sum_exp) - s.target_logit;
}

std::vector<RowStats> score_answer_rows(Llama& model, Ops& ops, Comm* tp_comm, const std::vector<AnswerRow>& rows) {
  const int64_t R = int64_t(rows.size());
  if (R == 0) return {};  // every tp rank holds the same rows, so all skip together
  const Tensor hidden = model.final_hidden(), head = model.lm_head_padded();
  const int64_t C = hidden.shape[1], V = head.shape[0];
  const int64_t vocab_begin = model.table().vocab_begin;
  const DType act = ops.act_dtype(), acc = ops.acc_dtype();
  OwnedBuffers buffers(ops);  // freed on return (and when a collective throws)
  // Gather the answer rows, then logits for those rows only: [R, C] x [V_local, C]^T.
  Tensor x = buffers.alloc(act, {R, C}), logits = buffers.alloc(act, {R, V}), logits_acc = buffers.alloc(acc, {R, V});
  for (int64_t r = 0; r < R; ++r) {
    LCT_CHECK(rows[size_t(r)].row >= 0 && rows[size_t(r)].row < hidden.shape[0], "answer row out of range");
    ops.convert(x.slice(r, 1), hidden.slice(rows[size_t(r)].row, 1));
  }
  ops.matmul_forward(logits, x, head);
  ops.convert(logits_acc, logits);
  std::vector<double> host(static_cast<size_t>(R * V));
  if (acc == DType::F64) {
    ops.to_host(host.data(), logits_acc);
  } else {
    LCT_CHECK(acc == DType::F32, "accumulator dtype");
    std::vector<float> f(static_cast<size_t>(R * V));
    ops.to_host(f.data(), logits_acc);
    for (size_t i = 0; i < f.size(); ++i) host[i] = f[i];
  }
  std::vector<RowStats> local(static_cast<size_t>(R));
  for (int64_t r = 0; r < R; ++r)
    local[size_t(r)] = slice_row_stats(host.data() + r * V, model.table().vocab_valid, vocab_begin,
                                       rows[size_t(r)].target);  // padding columns are not vocabulary

  const int tp = tp_comm ? tp_comm->size() : 1;
  std::vector<RowStats> out(static_cast<size_t>(R));
  if (tp == 1) {
    for (int64_t r = 0; r < R; ++r) out[size_t(r)] = combine_row_stats({local[size_t(r)]});
  } else {
    // Five numbers per row and slice: max, argmax, sum_exp, target_logit, has_target.
    constexpr int K = 5;
    std::vector<double> mine(static_cast<size_t>(R * K));
    for (int64_t r = 0; r < R; ++r) {
      const RowStats& s = local[size_t(r)];
      double* m = mine.data() + r * K;
      m[0] = s.max, m[1] = double(s.argmax), m[2] = s.sum_exp, m[3] = s.target_logit, m[4] = s.has_target ? 1 : 0;
    }
    Tensor send = buffers.alloc(DType::F64, {R * K}), recv = buffers.alloc(DType::F64, {int64_t(tp), R * K});
    ops.from_host(send, mine.data());
    tp_comm->all_gather(send, recv);
    std::vector<double> all(size_t(tp) * size_t(R * K));
    ops.to_host(all.data(), recv);
    for (int64_t r = 0; r < R; ++r) {
      std::vector<RowStats> slices(static_cast<size_t>(tp));
      for (int i = 0; i < tp; ++i) {
        const double* m = all.data() + size_t(i) * size_t(R * K) + size_t(r * K);
        RowStats& s = slices[size_t(i)];
        s.max = m[0], s.argmax = int64_t(m[1]), s.sum_exp = m[2], s.target_logit = m[3], s.has_target = m[4] != 0;
      }
      out[size_t(r)] = combine_row_stats(slices);
    }
  }
  return out;
}

}  // namespace lct
