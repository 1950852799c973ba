// Evaluation prompts: for one context length, a needle at each depth of the grid, several samples
// per depth, built by the same generator as the training data (data/synth.h) but from the
// evaluation seed, so no prompt is a training document.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "data/synth.h"

namespace lct {

struct EvalPrompt {
  int64_t length = 0;
  int64_t depth = 0;    // percent
  int64_t sample = 0;   // index within its (length, depth) cell
  std::vector<int32_t> tokens;       // `length` tokens: haystack, question, answer
  int64_t answer_begin = 0, answer_end = 0;  // the answer tokens, scored under teacher forcing
};

// depths x samples prompts of `length` tokens, depth-major. Prompt (d, s) is document
// d * samples + s of the stream keyed by (seed, length, task, needle/control), so a prompt does not
// depend on the other lengths or depths of the grid. spec.queries must be 1.
std::vector<EvalPrompt> make_eval_prompts(const SynthSpec& spec, int64_t length, const std::vector<int64_t>& depths,
                                          int64_t samples, uint64_t seed, bool with_needle);

// The evaluation spec of `task` (passkey | niah | kv) given the training data's spec: same layout,
// key and value lengths and filler; one question; kv keeps the training needle count (else 4).
SynthSpec eval_spec_for_task(const std::string& task, const SynthSpec& train);

}  // namespace lct
