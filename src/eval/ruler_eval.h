// RULER-style evaluation by generation (eval/ruler_tasks.h): for each length x depth cell, samples
// are generated greedily on the model (src/infer/: prefill over the cp ring, decode with the
// KV cache) and scored by RULER's string_match_all. Writes <out_dir>/ruler_<task>[_control].csv
// (the cells) and ruler_<task>[_control].jsonl (every prompt's generated text and score), prints a
// table per task and the effective length: the largest length up to which every length's mean
// score is at least RULER's threshold, 85.6% (Llama-2-7B's mean at 4K in the paper). It is a
// per-task number of this 11-task subset and NOT comparable to the 13-task RULER score.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "deck/config.h"
#include "eval/eval.h"
#include "eval/ruler_tasks.h"
#include "parallel/context.h"

namespace lct {

constexpr double kRulerThreshold = 0.856;

struct RulerCell {
  int64_t length = 0, depth = -1;  // depth -1: the task has none (cwe, fwe)
  int64_t samples = 0;
  double score_sum = 0;            // sum of per-sample string_match_all scores
  double score() const { return samples ? score_sum / double(samples) : 0.0; }
};

struct RulerGrid {
  const RulerTask* task = nullptr;
  std::vector<int64_t> lengths, depths;
  int64_t samples = 4;
  uint64_t seed = 777;
  bool control = false;
  const Tokenizer* tokenizer = nullptr;
  std::string essay;  // eval.haystack's text ("" = the built-in essay)
};

// One prompt's result, as RULER's prediction files hold it (pred/<task>.jsonl: index, pred, outputs,
// length) with our depth, score and which references the prediction contains.
struct RulerPrediction {
  int64_t length = 0, depth = -1, index = 0;
  std::vector<std::string> references;  // RULER's "outputs"
  std::string prediction;               // RULER's "pred": the generated text
  double score = 0;                     // string_match_all
  std::vector<int> hits;                // 1 where the prediction contains that reference
};
// One JSON object on one line: {"index", "length", "depth", "pred", "outputs", "hits", "score"}.
std::string ruler_prediction_json(const RulerPrediction& p);
RulerPrediction ruler_prediction_from_json(const std::string& line);  // Error on a malformed line

// Collective over ctx's world; prompts are shared out over the dp replicas. The same cells on every
// rank. `outputs` (optional) receives every prompt's generated text on the replica that made it.
// `predictions` (optional; pass it on every rank or on none: it adds a gather) receives on world
// rank 0 every prompt's result in grid order (lengths, then prompt index), and nothing elsewhere.
std::vector<RulerCell> evaluate_ruler(const RulerGrid& g, Llama& model, const RopeConfig& rope, ParallelContext& ctx,
                                      Ops& ops, std::vector<std::string>* outputs = nullptr,
                                      std::vector<RulerPrediction>* predictions = nullptr);

// Per length (in order): the mean score over its cells' samples.
std::vector<std::pair<int64_t, double>> ruler_length_means(const std::vector<RulerCell>& cells);
// The largest length L such that every length <= L has a mean >= threshold (0: none).
int64_t ruler_effective_length(const std::vector<RulerCell>& cells, double threshold = kRulerThreshold);

// JSON lines, one per prompt (ruler_prediction_json), written atomically.
void write_ruler_predictions(const std::string& path, const std::vector<RulerPrediction>& predictions);

// CSV "length,depth,samples,score" (score = mean in [0, 1]), grid order; written atomically.
std::string ruler_csv_text(const std::vector<RulerCell>& cells);
void write_ruler_csv(const std::string& path, const std::vector<RulerCell>& cells);
std::string ruler_table_text(const std::vector<RulerCell>& cells, const std::string& title);

// InputError naming eval.tasks for a name that is neither a synthetic (niah, passkey, kv) nor a RULER task.
void check_eval_task_names(const std::vector<std::string>& tasks);

// run_eval's part for the RULER names of eval.tasks: one model, loaded once with `load`.
void run_ruler_tasks(const std::vector<std::string>& tasks, const Config& c, const EvalModel& em, ParallelContext& ctx,
                     Ops& ops, const WeightLoader& load, const std::string& file_suffix);

}  // namespace lct
