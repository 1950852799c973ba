#include "eval/ruler_train_data.h"

#include <algorithm>
#include <map>
#include <optional>
#include <set>

#include "core/error.h"
#include "core/rng.h"
#include "data/tokenizer.h"
#include "eval/ruler_words.h"

namespace lct {

uint64_t ruler_train_seed(uint64_t seed) {
  uint64_t x = seed ^ 0x7275'6c65'7274'726eull;  // "ruler" "trn"
  const uint64_t h = splitmix64(x);
  return h == seed ? h ^ 1 : h;
}

namespace {

// cwe's list items in order: the word after each "K. " of "1. w 2. w ...\nQuestion".
std::vector<std::string> cwe_items(const std::string& input) {
  std::vector<std::string> items;
  const size_t end = input.find("\nQuestion:");
  size_t at = input.find("\n1. ");
  while (at != std::string::npos && at < end) {
    const size_t w = input.find(". ", at) + 2;
    const size_t e = input.find_first_of(" \n", w);
    items.push_back(input.substr(w, e - w));
    at = e;
  }
  return items;
}

// Where each reference goes in the answer (smaller first):
// - cwe: the list item at which the word is first known to be common, its (u + 1)-th occurrence
//   where u is the others' count. A causal model can mark that item when it reads it; the first
//   occurrence (RULER's natural order) cannot know yet that the word will come back. Searching the
//   prompt text instead would also find words inside the instructions ("red" in "numbered").
// - fwe: RULER's order of the references, most frequent first (each step is a maximum over counts).
// - the others: the first occurrence in the prompt (needles, values, the variable chain).
std::vector<size_t> answer_ranks(const RulerTask& t, const RulerSample& s) {
  std::vector<size_t> rank;
  if (t.kind == RulerKind::FrequentWords) {
    for (size_t i = 0; i < s.answers.size(); ++i) rank.push_back(i);
  } else if (t.kind == RulerKind::CommonWords) {
    const std::vector<std::string> items = cwe_items(s.input);
    std::map<std::string, size_t> count;
    for (const std::string& w : items) ++count[w];
    size_t others = 0;
    for (const auto& [w, c] : count)
      if (std::find(s.answers.begin(), s.answers.end(), w) == s.answers.end()) others = std::max(others, c);
    for (const std::string& a : s.answers) {
      size_t seen = 0, at = items.size();
      for (size_t i = 0; i < items.size() && at == items.size(); ++i)
        if (items[i] == a && ++seen == others + 1) at = i;
      rank.push_back(at);
    }
  } else {
    for (const std::string& a : s.answers) {
      const size_t at = s.input.find(a);
      rank.push_back(at == std::string::npos ? s.input.size() : at);
    }
  }
  return rank;
}

}  // namespace

std::string ruler_answer_text(const RulerTask& t, const RulerSample& s) {
  const std::vector<size_t> rank = answer_ranks(t, s);
  std::vector<size_t> order(s.answers.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](size_t x, size_t y) { return rank[x] < rank[y]; });
  std::string text;
  for (size_t i = 0; i < order.size(); ++i) {
    const std::string& a = s.answers[order[i]];
    switch (t.kind) {
      case RulerKind::VariableTracking: text += (i ? " " : "") + a; break;  // after "they are: "
      case RulerKind::FrequentWords: text += " " + a; break;
      default: text += (i ? ", " : " ") + a; break;
    }
  }
  if (t.kind == RulerKind::Niah) text += ".";
  return text;
}

namespace {

struct TrainDoc {
  RulerSample sample;
  std::vector<int32_t> answer;  // the answer's tokens and end-of-text
  int64_t size() const { return int64_t(sample.tokens.size() + answer.size()); }
};

// Document `index` of length at most L: RULER's filling with the answer and end-of-text in place of
// the generation budget (the sample's length grows by the budget, less the answer, until it fits).
// Empty when the task's template and answer do not fit in L.
std::optional<TrainDoc> make_doc(const RulerTrainOptions& o, uint64_t seed, int64_t L, int64_t depth, uint64_t index) {
  TrainDoc d;
  int64_t Lp = L + o.task->tokens_to_generate;
  for (int tries = 0; tries < 16; ++tries) {
    try {
      d.sample = make_ruler_sample(*o.task, *o.tokenizer, o.essay, Lp, depth, seed, index, false);
    } catch (const InputError&) {  // even an empty haystack does not fit
      return std::nullopt;
    }
    d.answer = o.tokenizer->encode(ruler_answer_text(*o.task, d.sample), false);
    d.answer.push_back(o.tokenizer->eos_id());
    if (d.size() <= L) return d;
    Lp -= d.size() - L + 16 * tries;  // the haystack comes in units (sentences, needles): step past them
  }
  return std::nullopt;
}

}  // namespace

int64_t ruler_shortest_document(const RulerTrainOptions& o) {
  // The longest of a few samples' shortest documents (keys, values and answers vary in length).
  const uint64_t seed = ruler_train_seed(o.seed);
  auto fits = [&](int64_t L) {
    for (uint64_t i = 0; i < 8; ++i)
      if (!make_doc(o, seed, L, int64_t(i) * 100 / 7, i)) return false;
    return true;
  };
  if (!fits(o.unit)) return o.unit + 1;
  int64_t lo = 1, hi = o.unit;  // fits(hi); !fits(lo) (one token holds no prompt)
  while (hi - lo > 1) {
    const int64_t mid = lo + (hi - lo) / 2;
    (fits(mid) ? hi : lo) = mid;
  }
  return hi;
}

void RulerTrainOptions::prepare(const std::string& where) {
  LCT_CHECK(task && tokenizer, "RulerTrainOptions without a task or a tokenizer");
  if (unit < 2) throw InputError(str(where, ": the unit (train.seq_len) must be at least 2 tokens"));
  if (tokenizer->bos_id() < 0 || tokenizer->eos_id() < 0)
    throw InputError(str(where, ": the tokenizer ", tokenizer->name(), " has no begin-of-text or end-of-text token"));
  if (min_length > unit)
    throw InputError(str(where, ": the shortest document (", min_length, " tokens) is longer than the unit of ", unit,
                         " tokens (train.seq_len); every document must fit in one training sample"));
  const int64_t shortest = ruler_shortest_document(*this);
  if (shortest > unit)
    throw InputError(str(where, ": the task's template and answer do not fit in a unit of ", unit,
                         " tokens; raise the unit (train.seq_len)"));
  if (min_length > 0 && min_length < shortest)
    throw InputError(str(where, ": documents of ", min_length, " tokens are too short for the task's template and "
                         "answer (the shortest is ", shortest, " tokens); raise the shortest length"));
  if (min_length == 0) min_length = shortest;
}

namespace {

// Values of the practice documents in the tasks' formats: a version-4-shaped UUID, a 7-digit number,
// an adjective-noun key.
std::string practice_uuid(Rng& r) {
  const char* hex = "0123456789abcdef";
  std::string s;
  for (int i = 0; i < 36; ++i) s += (i == 8 || i == 13 || i == 18 || i == 23) ? '-' : i == 14 ? '4' : hex[r.below(16)];
  return s;
}

std::string practice_number(Rng& r) { return std::to_string(1000000 + r.below(9000000)); }

std::string practice_word_key(Rng& r) {
  const auto& a = ruler_adjectives();
  const auto& n = ruler_nouns();
  return a[r.below(a.size())] + "-" + n[r.below(n.size())];
}

std::string copy_value(Rng& r) {
  auto letters = [&](int n, char a, int k) {
    std::string s;
    for (int i = 0; i < n; ++i) s += char(a + r.below(uint64_t(k)));
    return s;
  };
  switch (r.below(5)) {
    case 0: return practice_number(r);
    case 1: return practice_uuid(r);
    case 2: return letters(5, 'A', 26);
    case 3: return practice_word_key(r);
    default: return letters(6, 'a', 26);
  }
}

const char* kCopyNoise = "The grass is green. The sky is blue. The sun is yellow. Here we go. There and back again. ";

// Characters per token of the copy noise: exactly 1 with the bytes tokenizer; a BPE packs several,
// and --max-gap counts tokens, so a gap can span the whole unit whatever the tokenizer.
double copy_noise_chars_per_token(const Tokenizer& tok) {
  std::string noise;
  while (noise.size() < 4096) noise += kCopyNoise;
  return double(noise.size()) / double(std::max<size_t>(1, tok.encode(noise, false).size()));
}

// The copy noise cycled and cut to `chars` characters.
std::string copy_noise(int64_t chars) {
  std::string noise;
  while (int64_t(noise.size()) < chars) noise += kCopyNoise;
  noise.resize(size_t(chars));
  return noise;
}

// Recall practice in the multikey tasks' words: a needle line, and a query as the tasks end their prompt.
std::string recall_needle(const std::string& type, const std::string& k, const std::string& v) {
  return "One of the special magic " + type + "s for " + k + " is: " + v + ".";
}

std::string recall_query(const std::string& type, const std::string& k) {
  return "\nWhat is the special magic " + type + " for " + k + " mentioned in the provided text? The special magic " +
         type + " for " + k + " mentioned in the provided text is";
}

}  // namespace

void CopyTrainOptions::prepare(const std::string& where) {
  LCT_CHECK(tokenizer, "CopyTrainOptions without a tokenizer");
  if (tokenizer->bos_id() < 0 || tokenizer->eos_id() < 0)
    throw InputError(str(where, ": the tokenizer ", tokenizer->name(), " has no begin-of-text or end-of-text token"));
  if (unit < 32) throw InputError(str(where, ": copy and recall practice need units of at least 32 tokens (--unit)"));
  if (max_gap < 0 || max_gap > unit) throw InputError(str(where, ": --max-gap ", max_gap, " must be in [0, --unit]"));
  noise_chars_per_token = copy_noise_chars_per_token(*tokenizer);
  if (recall) {  // the longest of a few one-needle, one-query UUID documents must fit in a unit
    Rng r(0x726563616c6cull);
    int64_t shortest = 0;
    for (int i = 0; i < 8; ++i) {
      const std::string k = practice_uuid(r), v = practice_uuid(r);
      const int64_t n = int64_t(tokenizer->encode_with_bos(recall_needle("uuid", k, v), false).size() +
                                tokenizer->encode(recall_query("uuid", k), false).size() +
                                tokenizer->encode(" " + v + ".", false).size()) + 1;
      shortest = std::max(shortest, n);
    }
    if (unit < shortest + 4)
      throw InputError(str(where, ": recall practice needs units of at least ", shortest + 4, " tokens with the tokenizer ",
                           tokenizer->name(), " (a UUID needle and its query); raise --unit"));
  }
}

RulerTrainUnit make_copy_train_unit(const CopyTrainOptions& o, uint64_t index) {
  Rng r(ruler_train_seed(o.seed) ^ 0x636f7079ull, index);  // "copy"
  const Tokenizer& tok = *o.tokenizer;
  LCT_CHECK(o.noise_chars_per_token > 0, "CopyTrainOptions::prepare() was not called");
  RulerTrainUnit u;
  for (uint64_t k = 0; k < kRulerDocsPerUnit * 4; ++k) {
    const int64_t room = o.unit - int64_t(u.tokens.size());
    if (room < 12) break;
    // Values while the two copies fit, then the gap in what is left.
    std::string s;
    const int want = 1 + int(r.below(4));
    for (int i = 0, tries = 0; i < want && tries < 16; ++tries) {
      const std::string v = copy_value(r);
      const std::string t = s.empty() ? v : s + " " + v;
      if (int64_t(2 * t.size()) + 6 > room) {
        if (s.empty()) continue;  // a shorter value may fit
        break;
      }
      s = t;
      ++i;
    }
    if (s.empty()) break;
    const int64_t left = room - int64_t(2 * s.size()) - 6;
    const int64_t gap_tokens = int64_t(r.below(uint64_t(std::min(left, o.max_gap) + 1)));
    const int64_t gap = int64_t(double(gap_tokens) * o.noise_chars_per_token);  // characters: the same number with bytes
    const std::string filler = copy_noise(gap);
    std::vector<int32_t> prompt = tok.encode_with_bos(s + "\n" + filler + "\n|", false);
    std::vector<int32_t> answer = tok.encode(" " + s, false);
    answer.push_back(tok.eos_id());
    if (int64_t(prompt.size() + answer.size()) > room) break;  // a tokenizer with more than one token per byte
    for (int32_t t : prompt) u.tokens.push_back(t), u.loss_mask.push_back(0);
    for (int32_t t : answer) u.tokens.push_back(t), u.loss_mask.push_back(1);
    u.documents += 1;
    u.answer_tokens += int64_t(answer.size());
    u.inputs.push_back(s);
  }
  if (u.documents == 0) throw Error(kExitFailure, str("copy practice: unit ", index, " holds no document"));
  u.padding = o.unit - int64_t(u.tokens.size());
  u.tokens.resize(size_t(o.unit), tok.eos_id());
  u.loss_mask.resize(size_t(o.unit), 0);
  return u;
}

namespace {

// One recall document of at most L tokens (empty when not even one needle and its query fit).
struct RecallDoc {
  std::vector<int32_t> tokens;
  std::vector<uint8_t> loss_mask;
  int64_t answer_tokens = 0;
  std::string prompt;
};

RecallDoc make_recall_doc(const CopyTrainOptions& o, Rng& r, int64_t L, bool uuids) {
  const Tokenizer& tok = *o.tokenizer;
  const std::string type = uuids ? "uuid" : "number";
  int want_q = 1 + int(r.below(8));
  std::vector<std::string> lines;  // needles, and noise lines between them
  std::vector<std::pair<std::string, std::string>> needles;
  std::set<std::string> keys;
  auto query = [&](const std::string& k) { return recall_query(type, k); };
  // Grow the haystack on an estimate (pieces encoded alone), then build and trim on the exact count.
  // The queries take at most half of the document, so that the haystack holds dozens of needles.
  int64_t estimate = 0;
  while (needles.size() < 256) {
    std::string k;
    do k = uuids ? practice_uuid(r) : practice_word_key(r);
    while (!keys.insert(k).second);
    const std::string v = uuids ? practice_uuid(r) : practice_number(r);
    const std::string line = recall_needle(type, k, v);
    const int64_t add = int64_t(tok.encode(line + "\n", false).size());
    if (needles.empty()) {  // the queries' room, from the first key and value's size
      const int64_t per_query = int64_t(tok.encode(query(k) + " " + v + ".", false).size()) + 2;
      want_q = int(std::max<int64_t>(1, std::min<int64_t>(want_q, L / 2 / per_query)));
      estimate = 2 + want_q * per_query;  // BOS, end-of-text
    } else if (estimate + add > L) {
      break;
    }
    // Noise before every needle but the first, within the room this needle leaves.
    if (o.max_gap > 0 && !needles.empty()) {
      const int64_t room = L - estimate - add;
      const int64_t gap = int64_t(double(r.below(uint64_t(std::min(o.max_gap, room)) + 1)) * o.noise_chars_per_token);
      std::string noise = copy_noise(gap);
      while (!noise.empty() && noise.back() == ' ') noise.pop_back();
      const int64_t noise_tokens = noise.empty() ? 0 : int64_t(tok.encode(noise + "\n", false).size());
      if (!noise.empty() && estimate + add + noise_tokens <= L) {
        lines.push_back(noise);
        estimate += noise_tokens;
      }
    }
    estimate += add;
    needles.push_back({k, v});
    lines.push_back(line);
  }
  while (!needles.empty()) {
    std::vector<size_t> asked(needles.size());
    for (size_t i = 0; i < asked.size(); ++i) asked[i] = i;
    for (size_t i = asked.size(); i > 1; --i) std::swap(asked[i - 1], asked[r.below(i)]);
    asked.resize(std::min(asked.size(), size_t(want_q)));
    RecallDoc d;
    std::string text;
    for (size_t i = 0; i < lines.size(); ++i) text += (i ? "\n" : "") + lines[i];
    d.prompt = text;
    d.tokens = tok.encode_with_bos(text, false);
    d.loss_mask.assign(d.tokens.size(), 0);
    for (size_t q : asked) {
      for (int32_t t : tok.encode(query(needles[q].first), false)) d.tokens.push_back(t), d.loss_mask.push_back(0);
      for (int32_t t : tok.encode(" " + needles[q].second + ".", false)) {
        d.tokens.push_back(t), d.loss_mask.push_back(1);
        d.answer_tokens += 1;
      }
    }
    d.tokens.push_back(tok.eos_id()), d.loss_mask.push_back(1);
    d.answer_tokens += 1;
    if (int64_t(d.tokens.size()) <= L) return d;
    // Over: drop the last needle (the last line) and the noise before it.
    lines.pop_back();
    needles.pop_back();
    if (!lines.empty() && lines.back().rfind("One of the special magic ", 0) != 0) lines.pop_back();  // noise
  }
  return {};
}

}  // namespace

RulerTrainUnit make_recall_train_unit(const CopyTrainOptions& o, uint64_t index) {
  Rng r(ruler_train_seed(o.seed) ^ 0x726563616c6cull, index);  // "recall"
  LCT_CHECK(o.noise_chars_per_token > 0, "CopyTrainOptions::prepare() was not called");
  RulerTrainUnit u;
  for (uint64_t k = 0; k < kRulerDocsPerUnit; ++k) {
    const int64_t room = o.unit - int64_t(u.tokens.size());
    // As the tasks' units: the first document fills the unit half of the time.
    const int64_t L = (k == 0 && r.below(2)) ? room / 4 + int64_t(r.below(uint64_t(room - room / 4 + 1))) : room;
    const bool uuids = r.below(3) == 0;  // multikey_3's UUID keys and values, else multikey_1/2's words and numbers
    RecallDoc d = make_recall_doc(o, r, L, uuids);
    if (d.tokens.empty() && u.documents == 0) d = make_recall_doc(o, r, room, uuids);  // a short first length held none
    if (d.tokens.empty()) break;
    u.tokens.insert(u.tokens.end(), d.tokens.begin(), d.tokens.end());
    u.loss_mask.insert(u.loss_mask.end(), d.loss_mask.begin(), d.loss_mask.end());
    u.documents += 1;
    u.answer_tokens += d.answer_tokens;
    u.inputs.push_back(d.prompt);
  }
  if (u.documents == 0) throw Error(kExitFailure, str("recall practice: unit ", index, " holds no document"));
  u.padding = o.unit - int64_t(u.tokens.size());
  u.tokens.resize(size_t(o.unit), o.tokenizer->eos_id());
  u.loss_mask.resize(size_t(o.unit), 0);
  return u;
}

RulerTrainUnit make_ruler_train_unit(const RulerTrainOptions& o, uint64_t index) {
  const uint64_t seed = ruler_train_seed(o.seed);
  Rng r(seed ^ 0x756e6974ull, index);  // "unit": the unit's own choices (lengths, depths, prompt-loss tokens)
  LCT_CHECK(o.min_length > 0, "RulerTrainOptions::prepare() was not called");
  const int64_t lo = o.min_length;
  RulerTrainUnit u;
  u.tokens.reserve(size_t(o.unit));
  int64_t L = r.below(2) ? o.unit : lo + int64_t(r.below(uint64_t(o.unit - lo + 1)));
  for (uint64_t k = 0; k < kRulerDocsPerUnit; ++k) {
    const int64_t depth = int64_t(r.below(101));
    std::optional<TrainDoc> made = make_doc(o, seed, L, depth, index * kRulerDocsPerUnit + k);
    if (!made && u.documents == 0) made = make_doc(o, seed, o.unit, depth, index * kRulerDocsPerUnit + k);
    if (!made) break;
    const TrainDoc& d = *made;
    const RulerSample& s = d.sample;
    LCT_CHECK(!s.tokens.empty() && s.tokens[0] == o.tokenizer->bos_id(), "a RULER prompt that does not begin with BOS");
    for (size_t i = 0; i < s.tokens.size(); ++i) {
      u.tokens.push_back(s.tokens[i]);
      u.loss_mask.push_back(i > 0 && o.prompt_loss > 0 && r.uniform() < o.prompt_loss ? 1 : 0);
    }
    for (int32_t a : d.answer) {
      u.tokens.push_back(a);
      u.loss_mask.push_back(1);
    }
    u.documents += 1;
    u.answer_tokens += int64_t(d.answer.size());
    u.inputs.push_back(s.input);
    L = o.unit - int64_t(u.tokens.size());
    if (L < lo) break;
  }
  if (u.documents == 0)
    throw Error(kExitFailure, str("RULER training data (", o.task->name, "): unit ", index,
                                  " holds no document: the sample does not fit in ", o.unit, " tokens"));
  u.padding = o.unit - int64_t(u.tokens.size());
  u.tokens.resize(size_t(o.unit), o.tokenizer->eos_id());  // padding: end-of-text tokens without loss
  u.loss_mask.resize(size_t(o.unit), 0);
  return u;
}

}  // namespace lct
