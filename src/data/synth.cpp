#include "data/synth.h"

#include <algorithm>
#include <cmath>
#include <sstream>

#include "core/error.h"
#include "core/rng.h"
#include "data/tokenizer.h"

namespace lct {

namespace {

using V = SynthVocab;
constexpr int kPhraseLen = 8;  // the phrases filler: phrases of 8 symbols

// One needle and the question about it, as token pieces.
struct Needle {
  std::vector<int32_t> tokens;         // what goes into the haystack
  std::vector<int32_t> question;       // QUERY ... up to the answer
  std::vector<int32_t> answer;         // the tokens to predict
  int64_t begin = -1;                  // position in the document (-1: not placed)
};

// The bigram chain of the markov filler: symbol f is followed by one of 4 successors, fixed for all
// files and seeds so training data and evaluation prompts share the same statistics.
int32_t markov_next(int32_t f, uint64_t pick) {
  Rng r(0x5eedf111e4ull, uint64_t(f));
  int32_t s = 0;
  for (uint64_t i = 0; i <= pick % 4; ++i) s = int32_t(r.below(V::kNumFiller));
  return s;
}

std::string digits(Rng& rng, int n) {
  std::string s;
  for (int i = 0; i < n; ++i) s += char('0' + rng.below(10));
  return s;
}

std::string letters(Rng& rng, int n) {
  std::string s;
  for (int i = 0; i < n; ++i) s += char('a' + rng.below(26));
  return s;
}

Needle synthetic_needle(const SynthSpec& s, Rng& rng, std::vector<std::vector<int32_t>>& used_keys) {
  Needle n;
  if (s.task == SynthTask::Passkey) {
    for (int i = 0; i < s.value_len; ++i) n.answer.push_back(V::kValueBegin + int32_t(rng.below(V::kDigits)));
    n.tokens = {V::kPass};
    n.tokens.insert(n.tokens.end(), n.answer.begin(), n.answer.end());
    n.tokens.push_back(V::kEnd);
    n.question = {V::kQuery, V::kPass};
    return n;
  }
  std::vector<int32_t> key;
  do {  // keys are distinct within a document (kv distractors must not answer the question)
    key.clear();
    for (int i = 0; i < s.key_len; ++i) key.push_back(V::kKeyBegin + int32_t(rng.below(V::kNumKeys)));
  } while (std::find(used_keys.begin(), used_keys.end(), key) != used_keys.end());
  used_keys.push_back(key);
  const int32_t per_class = V::kNumValues / s.value_len;  // value_classes: symbol i from the i-th sub-range
  for (int i = 0; i < s.value_len; ++i)
    n.answer.push_back(s.value_classes ? V::kValueBegin + i * per_class + int32_t(rng.below(uint64_t(per_class)))
                                       : V::kValueBegin + int32_t(rng.below(V::kNumValues)));
  n.tokens = {V::kKey};
  n.tokens.insert(n.tokens.end(), key.begin(), key.end());
  n.tokens.push_back(V::kVal);
  n.tokens.insert(n.tokens.end(), n.answer.begin(), n.answer.end());
  n.tokens.push_back(V::kEnd);
  n.question = {V::kQuery, V::kKey};
  n.question.insert(n.question.end(), key.begin(), key.end());
  n.question.push_back(V::kVal);
  return n;
}

// Text mode: the gkamradt needle ("The special magic number for <key> is: <digits>.") or the
// passkey sentence, and the matching question; the answer is " <digits>".
Needle text_needle(const SynthSpec& s, Rng& rng, std::vector<std::string>& used_keys) {
  const Tokenizer& tok = *s.tokenizer;
  const std::string d = digits(rng, s.value_len);
  std::string needle, question;
  if (s.task == SynthTask::Passkey) {
    needle = " The pass key is " + d + ". Remember it. " + d + " is the pass key.";
    question = " What is the pass key? The pass key is";
  } else {
    std::string key;
    do key = letters(rng, std::max(1, s.key_len));
    while (std::find(used_keys.begin(), used_keys.end(), key) != used_keys.end());
    used_keys.push_back(key);
    needle = " The special magic number for " + key + " is: " + d + ".";
    question = " What is the special magic number for " + key + "? The special magic number for " + key + " is:";
  }
  Needle n;
  n.tokens = tok.encode(needle, false);
  n.question = tok.encode(question, false);
  n.answer = tok.encode(" " + d, false);
  return n;
}

}  // namespace

const char* synth_task_name(SynthTask t) {
  switch (t) {
    case SynthTask::Passkey: return "passkey";
    case SynthTask::Niah: return "niah";
    case SynthTask::Kv: return "kv";
  }
  return "?";
}

SynthTask parse_synth_task(const std::string& name, const std::string& where) {
  if (name == "passkey") return SynthTask::Passkey;
  if (name == "niah") return SynthTask::Niah;
  if (name == "kv") return SynthTask::Kv;
  throw InputError(str(where, ": unknown task '", name, "'; choose passkey, niah or kv"));
}

std::string SynthSpec::describe() const {
  return str("synth:task=", synth_task_name(task), ",key_len=", key_len, ",value_len=", value_len,
             ",needles=", needles, ",min_needles=", min_needles, ",queries=", queries, ",filler=", filler,
             value_classes ? ",value_classes=1" : "");
}

SynthSpec parse_synth_description(const std::string& text, const std::string& where) {
  const std::string prefix = "synth:";
  if (text.rfind(prefix, 0) != 0)
    throw InputError(str(where, ": '", text, "' is not a synthetic-data description (made by lcdata synth)"));
  SynthSpec s;
  std::stringstream ss(text.substr(prefix.size()));
  std::string item;
  while (std::getline(ss, item, ',')) {
    const size_t eq = item.find('=');
    if (eq == std::string::npos) throw InputError(str(where, ": bad item '", item, "' in '", text, "'"));
    const std::string k = item.substr(0, eq), v = item.substr(eq + 1);
    auto num = [&] {
      try {
        return std::stoi(v);
      } catch (const std::exception&) {
        throw InputError(str(where, ": ", k, " = '", v, "' is not an integer in '", text, "'"));
      }
    };
    if (k == "task") s.task = parse_synth_task(v, where);
    else if (k == "key_len") s.key_len = num();
    else if (k == "value_len") s.value_len = num();
    else if (k == "needles") s.needles = num();
    else if (k == "min_needles") s.min_needles = num();
    else if (k == "queries") s.queries = num();
    else if (k == "filler") s.filler = v;
    else if (k == "value_classes") s.value_classes = num() != 0;
    else throw InputError(str(where, ": unknown item '", k, "' in '", text, "'"));
  }
  return s;
}

void SynthSpec::validate() const {
  if (filler != "markov" && filler != "pairs" && filler != "phrases" && filler != "random" && filler != "text")
    throw InputError(str("synth: filler '", filler, "' is not markov, pairs, phrases, random or text"));
  const bool text = filler == "text";
  if (text && (!tokenizer || text_tokens.empty()))
    throw InputError("synth: text filler needs a tokenizer and a non-empty haystack text (--text FILE --tokenizer SPEC)");
  if (value_len < 1 || value_len > 64) throw InputError(str("synth: value_len = ", value_len, " must be in [1, 64]"));
  if (task != SynthTask::Passkey && (key_len < 1 || key_len > 16))
    throw InputError(str("synth: key_len = ", key_len, " must be in [1, 16]"));
  if (task != SynthTask::Passkey && !text) {
    double keys = std::pow(double(V::kNumKeys), key_len);
    if (keys < 2.0 * needles)
      throw InputError(str("synth: ", needles, " needles need more distinct keys than key_len = ", key_len, " gives"));
  }
  if (needles < 1 || min_needles < 1 || min_needles > needles)
    throw InputError(str("synth: needles = ", needles, ", min_needles = ", min_needles,
                         ": need 1 <= min_needles <= needles"));
  if (queries < 1 || queries > needles)
    throw InputError(str("synth: queries = ", queries, " must be in [1, needles = ", needles,
                         "] (each question asks about a different needle; a document with fewer needles asks fewer)"));
  if (task != SynthTask::Kv && (needles != 1 || queries != 1))
    throw InputError(str("synth: task ", synth_task_name(task), " has one needle and one question; use task kv for more"));
  if (value_classes && (task == SynthTask::Passkey || text))
    throw InputError("synth: value classes apply to the synthetic niah and kv values, not to passkey digits or text");
  if (value_classes && value_len > V::kNumValues / 2)
    throw InputError(str("synth: value classes need value_len <= ", V::kNumValues / 2, " (each class has ",
                         V::kNumValues, " / value_len symbols)"));
  if (filler_loss < 0 || filler_loss > 1) throw InputError(str("synth: filler_loss = ", filler_loss, " must be in [0, 1]"));
}

int64_t SynthSpec::needle_tokens() const {
  return task == SynthTask::Passkey ? value_len + 2 : key_len + value_len + 3;
}

int64_t SynthSpec::query_tokens() const {
  return task == SynthTask::Passkey ? 2 + value_len : key_len + 3 + value_len;
}

double synth_token_chance(const SynthSpec& spec) {
  if (spec.filler == "text" || spec.task == SynthTask::Passkey) return 1.0 / V::kDigits;
  if (spec.value_classes) return 1.0 / double(V::kNumValues / spec.value_len);
  return 1.0 / V::kNumValues;
}

SynthDoc make_synth_doc(const SynthSpec& s, uint64_t seed, uint64_t index, double depth, bool with_needle) {
  Rng rng(seed, index);
  const bool text = s.filler == "text";
  const int n_needles = s.task == SynthTask::Kv
                            ? s.min_needles + int(rng.below(uint64_t(s.needles - s.min_needles + 1)))
                            : 1;
  const int n_queries = std::min(s.queries, n_needles);

  std::vector<Needle> needles;
  std::vector<std::vector<int32_t>> used_keys;
  std::vector<std::string> used_words;
  for (int i = 0; i < n_needles; ++i)
    needles.push_back(text ? text_needle(s, rng, used_words) : synthetic_needle(s, rng, used_keys));

  // Questions: the target (needle 0) and n_queries - 1 others, in a random order.
  std::vector<int> asked(static_cast<size_t>(n_needles));
  for (int i = 0; i < n_needles; ++i) asked[size_t(i)] = i;
  for (int i = n_needles - 1; i > 1; --i) std::swap(asked[size_t(i)], asked[size_t(1 + rng.below(uint64_t(i)))]);
  asked.resize(size_t(n_queries));
  for (int i = n_queries - 1; i > 0; --i) std::swap(asked[size_t(i)], asked[size_t(rng.below(uint64_t(i + 1)))]);

  int64_t tail = 0;
  for (int q : asked) tail += int64_t(needles[size_t(q)].question.size() + needles[size_t(q)].answer.size());
  const int32_t bos = text ? s.tokenizer->bos_id() : V::kBos;
  const int64_t b0 = bos >= 0 ? 1 : 0;
  const int64_t H = s.length - b0 - tail;  // haystack tokens
  int64_t needle_total = 0;
  for (const Needle& n : needles) needle_total += int64_t(n.tokens.size());
  if (H < 2 * needle_total)
    throw InputError(str("synth: documents of ", s.length, " tokens are too short for task ", synth_task_name(s.task),
                         " (", n_needles, " needle(s) of ", needle_total, " tokens and questions of ", tail,
                         " tokens need a haystack of at least ", 2 * needle_total, "); raise the length"));

  SynthDoc doc;
  doc.depth = depth < 0 ? 100.0 * rng.uniform() : std::min(depth, 100.0);
  // Place the target at its depth, then the distractors anywhere they do not overlap.
  std::vector<std::pair<int64_t, int64_t>> spans;  // [begin, end) of placed needles
  auto overlaps = [&](int64_t b, int64_t e) {
    for (const auto& sp : spans)
      if (b < sp.second + 1 && sp.first < e + 1) return true;  // keep one filler token between needles
    return false;
  };
  {
    Needle& t = needles[0];
    const int64_t room = H - int64_t(t.tokens.size());
    t.begin = b0 + std::llround(doc.depth / 100.0 * double(room));
    if (with_needle) spans.emplace_back(t.begin, t.begin + int64_t(t.tokens.size()));
  }
  for (size_t i = 1; i < needles.size(); ++i) {
    Needle& n = needles[i];
    const int64_t len = int64_t(n.tokens.size()), room = H - len;
    for (int attempt = 0;; ++attempt) {
      if (attempt == 10000)
        throw InputError(str("synth: cannot place ", n_needles, " needles without overlap in a haystack of ", H,
                             " tokens; raise the length or lower --needles"));
      const int64_t b = b0 + int64_t(rng.below(uint64_t(room + 1)));
      if (!overlaps(b, b + len)) {
        n.begin = b;
        spans.emplace_back(b, b + len);
        break;
      }
    }
  }

  doc.tokens.assign(size_t(s.length), 0);
  doc.loss_mask.assign(size_t(s.length), 0);
  if (b0) doc.tokens[0] = bos;
  std::vector<int8_t> is_needle(size_t(s.length), 0);
  for (size_t i = 0; i < needles.size(); ++i) {
    if (i == 0 && !with_needle) continue;
    const Needle& n = needles[i];
    for (size_t j = 0; j < n.tokens.size(); ++j) {
      doc.tokens[size_t(n.begin) + j] = n.tokens[j];
      is_needle[size_t(n.begin) + j] = 1;
    }
  }
  if (with_needle) {
    doc.needle_begin = needles[0].begin;
    doc.needle_end = needles[0].begin + int64_t(needles[0].tokens.size());
  }
  // Filler over the rest of the haystack.
  int32_t f = int32_t(rng.below(V::kNumFiller));
  size_t text_pos = text ? size_t(rng.below(s.text_tokens.size())) : 0;
  const bool phrases = s.filler == "phrases";
  std::vector<int32_t> phrase_syms;  // phrases: every phrase of the document so far, kPhraseLen symbols each
  int64_t phrase = 0;                // the phrase being written (index into phrase_syms / kPhraseLen)
  int in_phrase = 0;
  bool repeat = false;
  std::vector<uint8_t> copyable;     // symbol i of a phrase followed symbol i - 1 somewhere earlier
  int run_left = 0, in_run = 0;
  int32_t pair_a = 0, pair_b = 0;
  int64_t last = -2;
  for (int64_t p = b0; p < b0 + H; ++p) {
    if (is_needle[size_t(p)]) continue;
    int32_t tokv;
    bool predictable = true;  // can a model that read the document so far know this token?
    if (text) {
      tokv = s.text_tokens[text_pos];
      text_pos = (text_pos + 1) % s.text_tokens.size();
    } else if (s.filler == "pairs") {
      // Runs "a b a b ..." of 4..16 symbols: the next symbol is the one two back, which a
      // previous-token attention head predicts (the first half of the induction circuit).
      if (run_left == 0) {
        pair_a = int32_t(rng.below(V::kNumFiller));
        pair_b = int32_t(rng.below(V::kNumFiller));
        run_left = 4 + int(rng.below(13));
        in_run = 0;
      }
      tokv = V::kFillerBegin + (in_run % 2 == 0 ? pair_a : pair_b);
      predictable = in_run >= 2 && last == p - 1;
      ++in_run;
      --run_left;
    } else if (phrases) {
      if (in_phrase == 0) {  // a new phrase: half the time a repeat of an earlier one, else fresh
        const int64_t have = int64_t(phrase_syms.size()) / kPhraseLen;
        repeat = have > 0 && rng.uniform() < 0.5;
        if (repeat) {  // half of the repeats copy one of the last 4 phrases: short-range practice
          const int64_t back = rng.uniform() < 0.5 ? std::min<int64_t>(have, 4) : have;
          phrase = have - 1 - int64_t(rng.below(uint64_t(back)));
        } else {
          phrase = have;
          for (int i = 0; i < kPhraseLen; ++i) phrase_syms.push_back(int32_t(rng.below(V::kNumFiller)));
          copyable.resize(phrase_syms.size(), 0);
        }
      }
      tokv = V::kFillerBegin + phrase_syms[size_t(phrase * kPhraseLen + in_phrase)];
      // A repeated phrase is predictable by copying, from its second symbol on, unless a needle
      // has just interrupted it.
      const size_t at = size_t(phrase * kPhraseLen + in_phrase);
      const bool adjacent = in_phrase > 0 && last == p - 1;
      predictable = repeat && adjacent && copyable[at];
      if (adjacent) copyable[at] = 1;  // later copies can look this pair up
      if (++in_phrase == kPhraseLen) in_phrase = 0;
    } else {
      f = s.filler == "markov" ? markov_next(f, rng.next_u64()) : int32_t(rng.below(V::kNumFiller));
      tokv = V::kFillerBegin + f;
    }
    doc.tokens[size_t(p)] = tokv;
    if (s.filler_loss > 0 && predictable && rng.uniform() < s.filler_loss) doc.loss_mask[size_t(p)] = 1;
    last = p;
  }
  // Questions and answers.
  int64_t p = b0 + H;
  for (int q : asked) {
    const Needle& n = needles[size_t(q)];
    for (int32_t t : n.question) doc.tokens[size_t(p++)] = t;
    doc.answer_begin.push_back(p);
    for (int32_t t : n.answer) {
      doc.loss_mask[size_t(p)] = 1;
      doc.tokens[size_t(p++)] = t;
    }
    doc.answer_end.push_back(p);
  }
  LCT_CHECK(p == s.length, "synth document filled to ", p, " of ", s.length);
  return doc;
}

}  // namespace lct
