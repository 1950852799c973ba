// Synthetic long-context retrieval documents (`lcdata synth` and the evaluation's prompts): passkey
// retrieval, needle in a haystack and key-value recall, over a filler that reveals nothing about the
// answer. Every document is a pure function of (spec, seed, index), so files are reproducible, any
// document can be made on its own, and the evaluation builds its prompts with the same code as the
// training data. Layout and rationale: docs/longctx.md.
//
// A document of exactly `length` tokens (synthetic vocabulary):
//   BOS  filler ... NEEDLE ... filler ...  QUERY ANSWER [QUERY ANSWER ...]
//   niah / kv needle:  KEY k1..kK VAL v1..vV END     query:  QUERY KEY k1..kK VAL | v1..vV
//   passkey needle:    PASS d1..dV END               query:  QUERY PASS | d1..dV
// The answer (after "|") ends the document; only answer tokens have loss mask 1 (plus a seeded
// fraction of filler tokens when filler_loss > 0). The answer can only be predicted by finding the
// needle: an induction (look back and copy) task. Documents are exactly train.seq_len long, so each
// training sample (seq_len + 1 tokens from position i * seq_len) is one document; the extra target
// is the next document's BOS, which has mask 0.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace lct {

class Tokenizer;

// The synthetic vocabulary (fixed ids; 256 tokens).
struct SynthVocab {
  static constexpr int32_t kBos = 0;
  static constexpr int32_t kKey = 2, kVal = 3, kEnd = 4, kPass = 5, kQuery = 6;  // markers (7..15 reserved)
  static constexpr int32_t kValueBegin = 16, kNumValues = 64;     // value symbols 16..79 (passkey digits: 16..25)
  static constexpr int32_t kKeyBegin = 80, kNumKeys = 64;         // key symbols 80..143
  static constexpr int32_t kFillerBegin = 144, kNumFiller = 112;  // filler symbols 144..255
  static constexpr int32_t kDigits = 10;
  static constexpr int64_t kVocabSize = 256;
};

enum class SynthTask { Passkey, Niah, Kv };
const char* synth_task_name(SynthTask t);
// "passkey" | "niah" | "kv"; InputError naming `where` otherwise.
SynthTask parse_synth_task(const std::string& name, const std::string& where);

struct SynthSpec {
  SynthTask task = SynthTask::Niah;
  int64_t length = 256;        // tokens per document
  int key_len = 2;             // niah/kv: key symbols per needle (text mode: letters of the key word)
  int value_len = 4;           // niah/kv: value symbols; passkey: digits (text mode: digits everywhere)
  // niah/kv: the i-th value symbol comes from its own sub-range of 64 / value_len symbols, so each
  // answer token can be found by one attention lookup ("the class-i symbol of the needle") instead
  // of an induction circuit (look up the previous answer token, copy its successor). Learnable in
  // minutes by a tiny model; chance per answer token value_len / 64.
  bool value_classes = false;
  int needles = 4;             // kv: needles per document (the target and distractors)
  int min_needles = 4;         // kv training documents draw the count uniformly in [min_needles, needles]
  int queries = 1;             // kv: questions at the end (<= needles); niah/passkey: 1
  // markov: a fixed bigram chain (4 successors per symbol); phrases: 8-symbol phrases, each a
  // repeat of an earlier phrase of the document with probability 1/2 (half of the repeats
  // copy one of the last 4 phrases, half any earlier one), else fresh random symbols
  // (repeats are predictable by copying: induction practice all over the haystack); pairs: runs
  // "a b a b ..." (predictable from two back); random: uniform symbols; text: a window of a
  // tokenized text.
  std::string filler = "markov";
  // Fraction of filler tokens given loss mask 1 (seeded per token); with phrases, only the tokens
  // that copying can predict (a symbol of a repeated phrase whose predecessor it followed in an earlier copy).
  double filler_loss = 0;

  // Text mode (filler == "text"): prompts written in words through a tokenizer; needles and
  // questions follow the gkamradt / passkey templates (docs/longctx.md).
  const Tokenizer* tokenizer = nullptr;
  std::vector<int32_t> text_tokens;  // the tokenized haystack text (a window of it, cycled, is the filler)

  // The attribute recorded in the file's `tokenizer` field for synthetic files, e.g.
  // "synth:task=kv,key_len=2,value_len=4,needles=4,min_needles=1,queries=4,filler=markov".
  std::string describe() const;
  // Checks the values (InputError naming the option and the fix).
  void validate() const;
  // Tokens of the needle and of one question + answer (for the length check).
  int64_t needle_tokens() const;
  int64_t query_tokens() const;
};

// Parses describe()'s text back into a spec (the synthetic layout of a training file); InputError
// naming `where` when it is not a synth description.
SynthSpec parse_synth_description(const std::string& text, const std::string& where);

struct SynthDoc {
  std::vector<int32_t> tokens;
  std::vector<uint8_t> loss_mask;   // one 0/1 per token
  int64_t needle_begin = -1;        // the target needle's first token (-1: no needle, the control)
  int64_t needle_end = -1;
  std::vector<int64_t> answer_begin;  // per question: [answer_begin, answer_end) holds its answer
  std::vector<int64_t> answer_end;
  double depth = 0;                   // where the target needle sits, percent of the haystack
};

// Document `index` of the stream keyed by `seed`. depth in [0, 100] puts the target needle at that
// percentage of the haystack (0: right after BOS, 100: right before the questions); depth < 0 draws
// it uniformly (training data). with_needle = false leaves the needles out but keeps the questions
// and answers (the no-needle control: the answer is unknowable, accuracy should be at chance).
SynthDoc make_synth_doc(const SynthSpec& spec, uint64_t seed, uint64_t index, double depth, bool with_needle);

// Exact-match accuracy a model that knows nothing gets per answer token: 1 / (symbols an answer
// token is drawn from). An answer of n tokens is guessed with probability chance^n.
double synth_token_chance(const SynthSpec& spec);

}  // namespace lct
