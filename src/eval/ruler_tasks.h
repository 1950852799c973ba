// RULER's synthetic tasks (NVIDIA RULER, arXiv 2404.06654; scripts/synthetic.yaml, data/synthetic/
// constants.py), generated as text and scored by generation: niah_single_1..3, niah_multikey_1..3,
// niah_multivalue, niah_multiquery, vt, cwe, fwe (qa_1/qa_2 need external data sets: not here).
// RULER's templates with the answer prefix appended (its "base" model template), its needle and
// noise sentences, its tokens_to_generate (niah 128, vt 30, cwe 120, fwe 50, counted in the model's
// tokens), and its filling rule: the largest haystack with prompt + tokens_to_generate <= length.
// Differences from RULER (docs/longctx.md): our word lists (eval/ruler_words.h); the essay haystack is
// eval.haystack's text or, without one, seeded sentences of those words (RULER: Paul Graham's
// essays); no in-context example before vt/cwe; needles go at the grid's depth (the first needle of
// the first queried key; the others at seeded random places), where RULER samples depths.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace lct {

class Tokenizer;

enum class RulerKind { Niah, VariableTracking, CommonWords, FrequentWords };

struct RulerTask {
  std::string name;
  RulerKind kind = RulerKind::Niah;
  // niah: haystack repeat | essay | needle; keys and values words | numbers | uuids
  std::string haystack = "essay", key_type = "words", value_type = "numbers";
  int num_k = 1, num_v = 1, num_q = 1;
  int num_chains = 1, num_hops = 4;        // vt
  int freq_cw = 30, freq_ucw = 3, num_cw = 10;  // cwe at >= 4096 tokens
  int short_freq_cw = 6, short_freq_ucw = 1;     // cwe below 4096 tokens (RULER's rule)
  double alpha = 2.0;                      // fwe: Zipf exponent
  int64_t tokens_to_generate = 128;
  bool has_depth() const { return kind == RulerKind::Niah || kind == RulerKind::VariableTracking; }
};

// cwe with both frequencies set at every length (RULER's --freq_cw / --freq_ucw; RULER itself
// replaces them by 6 and 1 below 4096 tokens): a scaled-down configuration for short contexts
// (eval.cwe_freq_cw / eval.cwe_freq_ucw, lcdata ruler --cwe-freq). 0 keeps RULER's values. InputError
// unless 1 <= freq_ucw < freq_cw (the common words must be the more frequent).
RulerTask with_cwe_frequencies(RulerTask t, int freq_cw, int freq_ucw, const std::string& where);

// The eleven tasks, in RULER's order.
const std::vector<RulerTask>& ruler_tasks();
bool is_ruler_task(const std::string& name);
// InputError naming `where` and listing the tasks for an unknown name.
const RulerTask& ruler_task(const std::string& name, const std::string& where);

struct RulerSample {
  std::string input;                 // the prompt text (template + answer prefix)
  std::vector<int32_t> tokens;       // BOS + input through the tokenizer
  std::vector<std::string> answers;  // references, all of which the output must contain
};

// Sample `index` of (task, length, depth) from `seed`: a pure function of its arguments. depth is a
// percentage (ignored by cwe/fwe). control: the niah needles of the queried keys and the vt chain
// are left out (the answer cannot be found), and cwe/fwe are scored against another sample's answers.
// InputError when even an empty haystack does not fit in `length` (naming the task and the length).
RulerSample make_ruler_sample(const RulerTask& task, const Tokenizer& tok, const std::string& essay, int64_t length,
                              int64_t depth, uint64_t seed, uint64_t index, bool control);

// RULER's string_match_all: the fraction of references that occur in the prediction, ignoring case.
double ruler_score(const std::string& prediction, const std::vector<std::string>& references);

}  // namespace lct
