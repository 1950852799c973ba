// Training data for RULER's synthetic tasks (`lcdata ruler`, docs/longctx.md section 2b): the
// evaluation's prompts (eval/ruler_tasks.h, the same generator) followed by the answer the model
// should generate and the end-of-text token, with a loss mask on that answer. Documents are packed
// into units of exactly `unit` tokens (= train.seq_len, so each training sample is one unit); a unit
// holds whole documents, each beginning with BOS (train with data.bos_token and
// data.reset_attention_mask / reset_position_ids so that a document sees only itself), padded at its
// end with end-of-text tokens that carry no loss.
//
// A document of length L is filled as RULER fills a context, with the answer in place of the
// generation budget: the largest haystack for which prompt + answer + end-of-text <= L. The first
// document of a unit has L = unit half of the time, else L uniform in [min_length, unit]; each later
// one takes the room left while that is at least min_length.
//
// Seed separation: training samples come from ruler_train_seed(seed), a hash of the seed that is
// never the evaluation's seed itself, and from indexes (unit * kRulerDocsPerUnit + k) that the
// evaluation's grid does not reach; tests/eval/test_ruler_train_data checks that no training
// prompt equals an evaluation prompt of the grid.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "eval/ruler_tasks.h"

namespace lct {

constexpr uint64_t kRulerDocsPerUnit = 64;

// The seed a training stream draws its samples from (a keyed hash of `seed`).
uint64_t ruler_train_seed(uint64_t seed);

// The text the model is trained to generate after the prompt's answer prefix, RULER-style
// (" 1234567." / " 1234567, 2345678, ..." for the needles, "ABCDE FGHIJ ..." for vt after its
// "they are: ", " w1, w2, ..." for cwe, " w1 w2 w3" for fwe). The references come in an order a
// causal model can follow: needles and variables as they first occur in the prompt, cwe's words as
// they first become more frequent than any other word of the list, fwe's most frequent first.
// ruler_score(answer text, references) is 1.
std::string ruler_answer_text(const RulerTask& t, const RulerSample& s);

struct RulerTrainOptions {
  const RulerTask* task = nullptr;
  const Tokenizer* tokenizer = nullptr;
  std::string essay;               // eval.haystack's text ("" = the built-in essay), as the evaluation uses
  int64_t unit = 1024;             // tokens per unit (= train.seq_len)
  int64_t min_length = 0;          // shortest document (0 = ruler_shortest_document)
  uint64_t seed = 1;
  // Fraction of the prompt's tokens (after BOS) given loss mask 1 too, seeded per token: language
  // modelling on the prompts (0 = loss on the answer only).
  double prompt_loss = 0;
  // Checks the values (min_length <= unit and long enough for the task's template; InputError naming
  // `where`, the task and the fix) and sets min_length when it is 0.
  void prepare(const std::string& where);
};

struct RulerTrainUnit {
  std::vector<int32_t> tokens;     // exactly `unit` tokens
  std::vector<uint8_t> loss_mask;  // one 0/1 per token: 1 on the answer and its end-of-text token
  int64_t documents = 0, answer_tokens = 0, padding = 0;  // padding: the end-of-text tokens after the last document
  std::vector<std::string> inputs; // the prompts it holds (tests: seed separation)
};

// Copy practice (lcdata ruler --task copy; not a RULER task): documents
//   BOS <s> "\n" <gap: RULER's noise sentences, about G tokens of them> "\n|" " <s>" end-of-text
// with the loss mask on " <s>" and end-of-text, where <s> is 1 to 4 values in the tasks' formats
// (7-digit numbers, UUIDs, 5-letter names, adjective-noun keys, 6-letter coded words) and G is
// uniform in [0, max_gap] tokens (the noise is cut to G x its characters per token: G characters
// with the bytes tokenizer, about 4 G with a BPE). Every RULER task ends by copying such values from far back in its
// prompt; a tiny model does not learn that look-back-and-copy from the tasks' prompts alone within
// the budget of tools/measure_ruler.sh (docs/longctx.md). Packed into units as the tasks' documents.
struct CopyTrainOptions {
  const Tokenizer* tokenizer = nullptr;
  int64_t unit = 64;
  int64_t max_gap = 0;  // tokens of noise between the two copies (characters with bytes)
  uint64_t seed = 1;
  double noise_chars_per_token = 0;  // set by prepare(): the copy noise's characters per token
  bool recall = false;  // recall practice (make_recall_train_unit): prepare() checks its shortest document
  void prepare(const std::string& where);  // InputError naming `where` and the fix
};
RulerTrainUnit make_copy_train_unit(const CopyTrainOptions& o, uint64_t index);

// Recall practice (lcdata ruler --task recall; not a RULER task): dense key -> value retrieval in the
// multikey tasks' own words. A document is
//   BOS <N needles, one per line: "One of the special magic numbers for <key> is: <value>.">
//   then Q queries, each "\nWhat is the special magic number for <key> mentioned in the provided text?
//   The special magic number for <key> mentioned in the provided text is" " <value>."
// with the loss mask on every " <value>." and the final end-of-text: Q keys (1 to 8, in random
// order) of the N are asked; the queries take at most half of the document. Keys and values as
// niah_multikey_1/2 (adjective-noun word / 7-digit number) or, in a third of the documents,
// niah_multikey_3 (UUID / UUID); with max_gap > 0 a line of up to that many tokens of RULER's noise
// sentences goes before every needle but the first (multikey_1 has text between its needles). A
// multikey document trains one answer; matching a key among dozens needs many more (docs/longctx.md).
// Options: CopyTrainOptions with recall = true, prepared.
RulerTrainUnit make_recall_train_unit(const CopyTrainOptions& o, uint64_t index);

// The shortest document the task's template and answer allow (unit + 1: none fits in a unit).
int64_t ruler_shortest_document(const RulerTrainOptions& o);

// Unit `index` of the stream (options prepared): a pure function of (options, index). Each document's depth is uniform
// in [0, 100].
RulerTrainUnit make_ruler_train_unit(const RulerTrainOptions& o, uint64_t index);

}  // namespace lct
