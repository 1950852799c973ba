#include "eval/prompts.h"

#include "core/error.h"
#include "core/rng.h"

namespace lct {

std::vector<EvalPrompt> make_eval_prompts(const SynthSpec& spec, int64_t length, const std::vector<int64_t>& depths,
                                          int64_t samples, uint64_t seed, bool with_needle) {
  LCT_CHECK(spec.queries == 1, "evaluation prompts ask one question");
  SynthSpec s = spec;
  s.length = length;
  s.filler_loss = 0;
  // One stream per (length, task, needle or control): a grid that adds a length or a depth leaves
  // the other prompts as they were.
  uint64_t key = seed ^ 0x6576616c5f6e6961ull;  // "eval_nia"
  key ^= splitmix64(key) + uint64_t(length);
  key ^= splitmix64(key) + uint64_t(s.task) * 2 + (with_needle ? 1 : 0);
  std::vector<EvalPrompt> out;
  for (size_t d = 0; d < depths.size(); ++d)
    for (int64_t k = 0; k < samples; ++k) {
      SynthDoc doc = make_synth_doc(s, key, uint64_t(d) * uint64_t(samples) + uint64_t(k), double(depths[d]), with_needle);
      EvalPrompt p;
      p.length = length;
      p.depth = depths[d];
      p.sample = k;
      p.tokens = std::move(doc.tokens);
      p.answer_begin = doc.answer_begin.at(0);
      p.answer_end = doc.answer_end.at(0);
      out.push_back(std::move(p));
    }
  return out;
}

SynthSpec eval_spec_for_task(const std::string& task, const SynthSpec& train) {
  SynthSpec s = train;
  s.task = parse_synth_task(task, "eval.tasks");
  s.queries = 1;
  s.filler_loss = 0;
  if (s.task == SynthTask::Kv) {
    if (train.task != SynthTask::Kv) s.needles = 4;
    s.min_needles = s.needles;
  } else {
    s.needles = s.min_needles = 1;
  }
  if (s.task == SynthTask::Passkey && train.task != SynthTask::Passkey) s.value_len = 5;
  if (s.task != SynthTask::Passkey && train.task == SynthTask::Passkey) s.value_len = 4;
  s.validate();
  return s;
}

}  // namespace lct
