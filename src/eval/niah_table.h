// Results of a length x depth grid: the per-cell counts, <out_dir>/niah.csv, and the table printed
// at the end of an evaluation.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace lct {

struct EvalCell {
  int64_t length = 0, depth = 0;  // tokens, percent
  int64_t samples = 0;            // prompts in the cell
  int64_t correct = 0;            // prompts whose answer tokens are all predicted (exact match)
  int64_t tokens = 0, tokens_correct = 0;  // answer tokens, and those predicted
  double nll_sum = 0;             // sum over answer tokens of -log p(answer token)

  double accuracy() const { return samples ? double(correct) / double(samples) : 0.0; }
  double token_accuracy() const { return tokens ? double(tokens_correct) / double(tokens) : 0.0; }
  double answer_nll() const { return tokens ? nll_sum / double(tokens) : 0.0; }
};

// The CSV: header "length,depth,samples,accuracy,token_accuracy,answer_nll", one line per cell in
// grid order (lengths outer, depths inner); accuracies are fractions in [0, 1]. Without nll (scored
// by generation): no answer_nll column.
std::string niah_csv_text(const std::vector<EvalCell>& cells, bool nll = true);
// Writes the CSV atomically (path.tmp, then rename); Error naming the path on failure.
void write_niah_csv(const std::string& path, const std::vector<EvalCell>& cells, bool nll = true);
// A depth x length table of exact-match accuracy in percent, with a mean row; `title` heads it.
std::string niah_table_text(const std::vector<EvalCell>& cells, const std::string& title);

}  // namespace lct
