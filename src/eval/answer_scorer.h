// Teacher-forced scoring of answer tokens (as EasyContext's NIAH script does): one forward pass over
// prompt + answer, then the argmax of the logits at every position that predicts an answer token.
// Only those rows of the LM head are computed. With tensor parallelism each tp rank holds the
// vocabulary rows [vocab_begin, vocab_begin + V/tp); it reduces its slice of every row to
// (max, argmax, sum of exps, target logit), and the slices are combined across tp ranks; with
// context parallelism each cp rank scores the rows it holds.
#pragma once

#include <cstdint>
#include <vector>

#include "model/llama.h"
#include "ops/ops.h"
#include "parallel/comm.h"

namespace lct {

// One row's logits over a vocabulary slice, reduced.
struct RowStats {
  double max = -1e300;      // largest logit
  int64_t argmax = -1;      // its global token id (the lowest id among equal maxima)
  double sum_exp = 0;       // sum of exp(logit - max)
  double target_logit = 0;  // logit of the target, when the slice holds it
  bool has_target = false;
};

// Reduces logits[0, V_local) of one row; global ids are vocab_begin + i.
RowStats slice_row_stats(const double* logits, int64_t v_local, int64_t vocab_begin, int32_t target);
// Combines the slices of one row (any order): the same result as slice_row_stats over the whole row.
RowStats combine_row_stats(const std::vector<RowStats>& slices);
// -log p(target) from combined stats (requires has_target).
double row_nll(const RowStats& s);

// A row of the model's local tokens [B * T/cp] that predicts an answer token.
struct AnswerRow {
  int64_t prompt = 0;  // caller's prompt index (scores are accumulated per prompt)
  int64_t row = 0;     // local token index b * T_local + t
  int32_t target = 0;  // the answer token it should predict
};

// After model.forward(): the combined stats of each row, in order. Collective over tp_comm (every
// tp rank must pass the same rows; tp_comm may be null when tp == 1).
std::vector<RowStats> score_answer_rows(Llama& model, Ops& ops, Comm* tp_comm, const std::vector<AnswerRow>& rows);

}  // namespace lct
