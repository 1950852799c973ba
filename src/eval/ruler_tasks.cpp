#include "eval/ruler_tasks.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <random>
#include <set>

#include "core/error.h"
#include "core/rng.h"
#include "data/tokenizer.h"
#include "eval/ruler_words.h"

namespace lct {

namespace {

RulerTask niah(const char* name, const char* haystack, const char* k, const char* v, int nk, int nv, int nq) {
  RulerTask t;
  t.name = name;
  t.kind = RulerKind::Niah;
  t.haystack = haystack;
  t.key_type = k;
  t.value_type = v;
  t.num_k = nk;
  t.num_v = nv;
  t.num_q = nq;
  t.tokens_to_generate = 128;
  return t;
}

std::vector<RulerTask> build_tasks() {
  std::vector<RulerTask> v = {
      niah("niah_single_1", "repeat", "words", "numbers", 1, 1, 1),
      niah("niah_single_2", "essay", "words", "numbers", 1, 1, 1),
      niah("niah_single_3", "essay", "words", "uuids", 1, 1, 1),
      niah("niah_multikey_1", "essay", "words", "numbers", 4, 1, 1),
      niah("niah_multikey_2", "needle", "words", "numbers", 1, 1, 1),
      niah("niah_multikey_3", "needle", "uuids", "uuids", 1, 1, 1),
      niah("niah_multivalue", "essay", "words", "numbers", 1, 4, 1),
      niah("niah_multiquery", "essay", "words", "numbers", 4, 1, 4),
  };
  RulerTask vt;
  vt.name = "vt";
  vt.kind = RulerKind::VariableTracking;
  vt.tokens_to_generate = 30;
  RulerTask cwe;
  cwe.name = "cwe";
  cwe.kind = RulerKind::CommonWords;
  cwe.tokens_to_generate = 120;
  RulerTask fwe;
  fwe.name = "fwe";
  fwe.kind = RulerKind::FrequentWords;
  fwe.tokens_to_generate = 50;
  v.push_back(vt);
  v.push_back(cwe);
  v.push_back(fwe);
  return v;
}

const char* kNoise = "The grass is green. The sky is blue. The sun is yellow. Here we go. There and back again.";

void replace_all(std::string& s, const std::string& from, const std::string& to) {
  for (size_t at = s.find(from); at != std::string::npos; at = s.find(from, at + to.size())) s.replace(at, from.size(), to);
}

std::string lower(std::string s) {
  for (char& c : s) c = char(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

uint64_t name_hash(const std::string& s) {
  uint64_t h = 1469598103934665603ull;
  for (char c : s) h = (h ^ uint64_t(uint8_t(c))) * 1099511628211ull;
  return h;
}

std::string number7(Rng& r) { return std::to_string(1000000 + r.below(9000000)); }

std::string uuid4(Rng& r) {
  const uint64_t a = r.next_u64(), b = r.next_u64();
  char buf[40];
  std::snprintf(buf, sizeof buf, "%08llx-%04llx-4%03llx-%04llx-%012llx", (unsigned long long)(a >> 32),
                (unsigned long long)((a >> 16) & 0xffff), (unsigned long long)(a & 0xfff),
                (unsigned long long)(0x8000 | (b >> 50 & 0x3fff)), (unsigned long long)(b & 0xffffffffffffull));
  return buf;
}

std::string word_key(Rng& r) {
  const auto& a = ruler_adjectives();
  const auto& n = ruler_nouns();
  return a[r.below(a.size())] + "-" + n[r.below(n.size())];
}

std::string draw(const std::string& type, Rng& r) {
  if (type == "numbers") return number7(r);
  if (type == "uuids") return uuid4(r);
  return word_key(r);
}

// The built-in essay: seeded sentences of our words (RULER uses Paul Graham's essays).
std::string builtin_sentence(uint64_t j) {
  Rng r(0xE55A7, j);
  const auto& a = ruler_adjectives();
  const auto& n = ruler_nouns();
  const auto& v = ruler_verbs();
  auto pick = [&](const std::vector<std::string>& w) { return w[r.below(w.size())]; };
  std::string s = "The " + pick(a) + " " + pick(n) + " will " + pick(v) + " with the " + pick(n);
  if (r.below(2)) s += " in the " + pick(a) + " " + pick(n);
  s += ".";
  s[0] = 'T';
  return s;
}

// The first n words of the essay (eval.haystack's text, cycled, or the built-in one), as sentences.
std::vector<std::string> essay_sentences(const std::string& essay, int64_t n) {
  std::vector<std::string> words;
  if (essay.empty()) {
    for (uint64_t j = 0; int64_t(words.size()) < n; ++j) {
      const std::string s = builtin_sentence(j);
      size_t b = 0;
      for (size_t e = s.find(' '); b < s.size(); e = s.find(' ', b)) {
        if (e == std::string::npos) e = s.size();
        words.push_back(s.substr(b, e - b));
        b = e + 1;
      }
    }
  } else {
    std::vector<std::string> all;
    std::string w;
    for (char c : essay) {
      if (std::isspace(static_cast<unsigned char>(c))) {
        if (!w.empty()) all.push_back(w);
        w.clear();
      } else {
        w += c;
      }
    }
    if (!w.empty()) all.push_back(w);
    if (all.empty()) throw InputError("eval.haystack has no words");
    for (int64_t i = 0; i < n; ++i) words.push_back(all[size_t(i) % all.size()]);
  }
  words.resize(size_t(std::max<int64_t>(0, n)));
  // Sentences end at words ending in . ? or ! (RULER splits with nltk's sent_tokenize).
  std::vector<std::string> sents;
  std::string cur;
  for (const std::string& x : words) {
    cur += (cur.empty() ? "" : " ") + x;
    const char last = x.back();
    if (last == '.' || last == '?' || last == '!') sents.push_back(cur), cur.clear();
  }
  if (!cur.empty()) sents.push_back(cur);
  return sents;
}

// Index in [0, n] where a needle at `depth` percent goes.
size_t at_depth(int64_t depth, size_t n) { return size_t(std::llround(double(n) * double(depth) / 100.0)); }

// Inserts pieces into units: `first` at index `first_at`, the rest at seeded random indexes.
std::vector<std::string> insert(std::vector<std::string> units, const std::vector<std::string>& pieces, size_t first_at,
                                Rng& r) {
  std::vector<std::pair<size_t, std::string>> place;
  for (size_t i = 0; i < pieces.size(); ++i)
    place.push_back({i == 0 ? first_at : size_t(r.below(units.size() + 1)), pieces[i]});
  std::stable_sort(place.begin(), place.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  std::vector<std::string> out;
  size_t k = 0;
  for (size_t i = 0; i <= units.size(); ++i) {
    while (k < place.size() && place[k].first == i) out.push_back(place[k++].second);
    if (i < units.size()) out.push_back(units[i]);
  }
  return out;
}

std::string join(const std::vector<std::string>& v, const std::string& sep) {
  std::string s;
  for (size_t i = 0; i < v.size(); ++i) s += (i ? sep : "") + v[i];
  return s;
}

struct Built {
  std::string input;
  std::vector<std::string> answers;
};

Built build_niah(const RulerTask& t, const std::string& essay, int64_t n, int64_t depth, Rng& r, bool control) {
  const std::string needle_fmt = "One of the special magic {type_needle_v} for {key} is: {value}.";
  const int nk = std::max(t.num_k, t.num_q);
  std::vector<std::string> keys;
  std::vector<std::vector<std::string>> values;
  std::set<std::string> used;
  for (int i = 0; i < nk; ++i) {
    std::string k;
    do k = draw(t.key_type, r);
    while (!used.insert(k).second);
    keys.push_back(k);
    values.emplace_back();
    for (int j = 0; j < t.num_v; ++j) values.back().push_back(draw(t.value_type, r));
  }
  auto needle = [&](const std::string& k, const std::string& v) {
    std::string s = needle_fmt;
    replace_all(s, "{type_needle_v}", t.value_type);
    replace_all(s, "{key}", k);
    replace_all(s, "{value}", v);
    return s;
  };
  // The queried keys are the first num_q; the first value of the first one sits at the depth.
  std::vector<std::string> pieces;
  for (int i = 0; i < nk; ++i)
    for (int j = 0; j < t.num_v; ++j)
      if (!control || i >= t.num_q) pieces.push_back(needle(keys[size_t(i)], values[size_t(i)][size_t(j)]));
  std::string context;
  if (t.haystack == "essay") {
    const std::vector<std::string> sents = essay_sentences(essay, n);
    context = join(insert(sents, pieces, at_depth(depth, sents.size()), r), " ");
  } else {
    std::vector<std::string> units;
    for (int64_t i = 0; i < n; ++i) units.push_back(t.haystack == "repeat" ? kNoise : needle(draw(t.key_type, r), draw(t.value_type, r)));
    context = join(insert(units, pieces, at_depth(depth, units.size()), r), "\n");
  }
  std::vector<std::string> q(keys.begin(), keys.begin() + t.num_q);
  const std::string query = q.size() > 1 ? join(std::vector<std::string>(q.begin(), q.end() - 1), ", ") + ", and " + q.back() : q[0];
  std::string tmpl =
      "Some special magic {type_needle_v} are hidden within the following text. Make sure to memorize it. I will quiz "
      "you about the {type_needle_v} afterwards.\n{context}\nWhat are all the special magic {type_needle_v} for {query} "
      "mentioned in the provided text? The special magic {type_needle_v} for {query} mentioned in the provided text are";
  std::string tv = t.value_type;
  if (t.num_q * t.num_v == 1) {  // RULER's singular form, replaced in this order
    replace_all(tmpl, "Some", "A");
    replace_all(tmpl, "are all", "is");
    replace_all(tmpl, "are", "is");
    replace_all(tmpl, "answers", "answer");
    tv.pop_back();
  }
  replace_all(tmpl, "{type_needle_v}", tv);
  replace_all(tmpl, "{query}", query);
  const size_t at = tmpl.find("{context}");
  Built b;
  b.input = tmpl.substr(0, at) + context + tmpl.substr(at + 9);
  for (int i = 0; i < t.num_q; ++i) b.answers.insert(b.answers.end(), values[size_t(i)].begin(), values[size_t(i)].end());
  return b;
}

Built build_vt(const RulerTask& t, int64_t n, int64_t depth, Rng& r, bool control) {
  std::set<std::string> used;
  std::vector<std::vector<std::string>> chains, vars;
  std::string value0;
  for (int c = 0; c < t.num_chains; ++c) {
    std::vector<std::string> v;
    for (int h = 0; h <= t.num_hops; ++h) {
      std::string name;
      do {
        name.clear();
        for (int i = 0; i < 5; ++i) name += char('A' + r.below(26));
      } while (!used.insert(name).second);
      v.push_back(name);
    }
    const std::string value = std::to_string(10000 + r.below(90000));
    if (c == 0) value0 = value;
    std::vector<std::string> chain = {"VAR " + v[0] + " = " + value};
    for (int h = 0; h < t.num_hops; ++h) chain.push_back("VAR " + v[size_t(h) + 1] + " = VAR " + v[size_t(h)] + " ");
    chains.push_back(chain);
    vars.push_back(v);
  }
  std::vector<std::string> sents(size_t(n), std::string(kNoise) + "\n");
  // Chain 0 starts at the depth, its later statements after it in order; other chains anywhere.
  std::vector<std::pair<size_t, std::string>> place;
  for (size_t c = control ? 1 : 0; c < chains.size(); ++c) {
    std::vector<size_t> at;
    const size_t lo = c == 0 ? at_depth(depth, sents.size()) : 0;
    at.push_back(c == 0 ? lo : lo + size_t(r.below(sents.size() + 1 - lo)));
    for (size_t j = 1; j < chains[c].size(); ++j) at.push_back(at[0] + size_t(r.below(sents.size() + 1 - at[0])));
    std::sort(at.begin() + 1, at.end());
    for (size_t j = 0; j < chains[c].size(); ++j) place.push_back({at[j], chains[c][j]});
  }
  std::stable_sort(place.begin(), place.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  std::vector<std::string> all;
  size_t k = 0;
  for (size_t i = 0; i <= sents.size(); ++i) {
    while (k < place.size() && place[k].first == i) all.push_back(place[k++].second);
    if (i < sents.size()) all.push_back(sents[i]);
  }
  std::string context = join(all, " ");
  replace_all(context, ". \n", ".\n");
  Built b;
  b.input = "Memorize and track the chain(s) of variable assignment hidden in the following text.\n\n" + context +
            "\nQuestion: Find all variables that are assigned the value " + value0 +
            " in the text above. Answer: According to the chain(s) of variable assignment in the text above, " +
            std::to_string(t.num_hops + 1) + " variables are assigned the value " + value0 + ", they are: ";
  b.answers = vars[0];
  return b;
}

// cwe's word pool: our nouns, adjectives and verbs (the first cwe_base_words() entries), then
// adjective-noun compounds for a list that needs more distinct words (RULER falls back to a larger
// English list).
size_t cwe_base_words() {
  static const size_t n = [] {
    std::vector<std::string> w = ruler_nouns();
    w.insert(w.end(), ruler_adjectives().begin(), ruler_adjectives().end());
    w.insert(w.end(), ruler_verbs().begin(), ruler_verbs().end());
    std::sort(w.begin(), w.end());
    return size_t(std::unique(w.begin(), w.end()) - w.begin());
  }();
  return n;
}

const std::vector<std::string>& cwe_pool() {
  static const std::vector<std::string> pool = [] {
    std::vector<std::string> w = ruler_nouns();
    w.insert(w.end(), ruler_adjectives().begin(), ruler_adjectives().end());
    w.insert(w.end(), ruler_verbs().begin(), ruler_verbs().end());
    std::sort(w.begin(), w.end());
    w.erase(std::unique(w.begin(), w.end()), w.end());
    Rng r(42);
    for (size_t i = w.size(); i > 1; --i) std::swap(w[i - 1], w[r.below(i)]);
    const size_t base = w.size();
    for (const auto& a : ruler_adjectives())
      for (const auto& n : ruler_nouns()) w.push_back(a + n);
    std::shuffle(w.begin() + long(base), w.end(), std::mt19937_64(7));
    return w;
  }();
  return pool;
}

template <class T> void shuffle(std::vector<T>& v, Rng& r) {
  for (size_t i = v.size(); i > 1; --i) std::swap(v[i - 1], v[r.below(i)]);
}

Built build_cwe(const RulerTask& t, int64_t length, int64_t n, Rng& r) {
  const std::vector<std::string>& pool = cwe_pool();
  n = std::min<int64_t>(n, int64_t(pool.size()));
  // RULER: random.sample(words, n) when the word list is long enough, else the larger list.
  const size_t from = size_t(n) <= cwe_base_words() ? cwe_base_words() : pool.size();
  std::vector<size_t> idx;
  std::set<size_t> seen;
  while (int64_t(idx.size()) < n) {
    const size_t i = size_t(r.below(from));
    if (seen.insert(i).second) idx.push_back(i);
  }
  const bool short_ctx = length < 4096;  // RULER: 6 vs 1 below 4096 tokens
  const int fc = short_ctx ? t.short_freq_cw : t.freq_cw, fu = short_ctx ? t.short_freq_ucw : t.freq_ucw;
  std::vector<std::string> list;
  for (int64_t i = 0; i < n; ++i)
    for (int k = 0; k < (i < t.num_cw ? fc : fu); ++k) list.push_back(pool[idx[size_t(i)]]);
  shuffle(list, r);
  std::string context;
  for (size_t i = 0; i < list.size(); ++i) context += (i ? " " : "") + std::to_string(i + 1) + ". " + list[i];
  Built b;
  b.input = "Below is a numbered list of words. In these words, some appear more often than others. Memorize the ones "
            "that appear most often.\n" + context +
            "\nQuestion: What are the 10 most common words in the above list? Answer: The top 10 words that appear most "
            "often in the list are:";
  for (int i = 0; i < t.num_cw && i < n; ++i) b.answers.push_back(pool[idx[size_t(i)]]);
  return b;
}

Built build_fwe(const RulerTask& t, int64_t length, int64_t n, Rng& r) {
  const int64_t vocab = std::max<int64_t>(5, (length - t.tokens_to_generate) / 50);
  std::set<std::string> s;
  while (int64_t(s.size()) < vocab) {
    std::string w;
    for (int i = 0; i < 6; ++i) w += char('a' + r.below(26));
    s.insert(w);
  }
  std::vector<std::string> words(s.begin(), s.end());
  shuffle(words, r);
  words[0] = "...";  // the most frequent "word" is noise
  static thread_local double zeta_alpha = 0, zeta = 0;  // Riemann zeta(alpha): pi^2/6 for RULER's alpha = 2
  if (zeta_alpha != t.alpha) {
    zeta = 0;
    for (int k = 100000; k >= 1; --k) zeta += std::pow(double(k), -t.alpha);
    zeta_alpha = t.alpha;
  }
  std::vector<std::string> list;
  for (size_t k = 0; k < words.size(); ++k) {
    const int64_t c = int64_t(double(n) * std::pow(double(k + 1), -t.alpha) / zeta);
    for (int64_t i = 0; i < c; ++i) list.push_back(words[k]);
  }
  shuffle(list, r);
  Built b;
  b.input = "Read the following coded text and track the frequency of each coded word. Find the three most frequently "
            "appeared coded words. " + join(list, " ") +
            "\nQuestion: Do not provide any explanation. Please ignore the dots '....'. What are the three most "
            "frequently appeared words in the above coded text? Answer: According to the coded text above, the three "
            "most frequently appeared words are:";
  b.answers = {words[1], words[2], words[3]};
  return b;
}

Built build(const RulerTask& t, const std::string& essay, int64_t length, int64_t n, int64_t depth, uint64_t seed,
            uint64_t index, bool control) {
  Rng r(seed ^ name_hash(t.name) ^ uint64_t(length) * 0x9e3779b97f4a7c15ull, index);
  switch (t.kind) {
    case RulerKind::Niah: return build_niah(t, essay, n, depth, r, control);
    case RulerKind::VariableTracking: return build_vt(t, n, depth, r, control);
    case RulerKind::CommonWords: return build_cwe(t, length, n, r);
    case RulerKind::FrequentWords: return build_fwe(t, length, n, r);
  }
  return {};
}

}  // namespace

RulerTask with_cwe_frequencies(RulerTask t, int freq_cw, int freq_ucw, const std::string& where) {
  if (freq_cw == 0 && freq_ucw == 0) return t;
  if (freq_ucw < 1 || freq_cw <= freq_ucw)
    throw InputError(str(where, ": cwe frequencies ", freq_cw, " (common words) and ", freq_ucw,
                         " (the others) must satisfy 1 <= the others' < the common words'; set both, or 0 and 0 "
                         "for RULER's (30 and 3, or 6 and 1 below 4096 tokens)"),
                     true);
  t.freq_cw = t.short_freq_cw = freq_cw;
  t.freq_ucw = t.short_freq_ucw = freq_ucw;
  return t;
}

const std::vector<RulerTask>& ruler_tasks() {
  static const std::vector<RulerTask> v = build_tasks();
  return v;
}

bool is_ruler_task(const std::string& name) {
  for (const RulerTask& t : ruler_tasks())
    if (t.name == name) return true;
  return false;
}

const RulerTask& ruler_task(const std::string& name, const std::string& where) {
  std::string names;
  for (const RulerTask& t : ruler_tasks()) {
    if (t.name == name) return t;
    names += (names.empty() ? "" : ", ") + t.name;
  }
  throw InputError(str(where, ": unknown task '", name, "'; RULER tasks are ", names,
                       " (qa_1/qa_2 need external data sets and are not provided)"));
}

RulerSample make_ruler_sample(const RulerTask& t, const Tokenizer& tok, const std::string& essay, int64_t length,
                              int64_t depth, uint64_t seed, uint64_t index, bool control) {
  // The largest haystack (units: essay words, noise sentences, needles, list words) that fits:
  // prompt tokens + tokens_to_generate <= length, by bisection (the prompt grows with the haystack).
  auto fits = [&](int64_t n, RulerSample* out) {
    Built b = build(t, essay, length, n, depth, seed, index, control);
    std::vector<int32_t> ids = tok.encode_with_bos(b.input, false);
    const bool ok = int64_t(ids.size()) + t.tokens_to_generate <= length;
    if (ok && out) {
      out->input = std::move(b.input);
      out->tokens = std::move(ids);
      out->answers = std::move(b.answers);
    }
    return ok;
  };
  const int64_t lo0 = t.kind == RulerKind::CommonWords ? t.num_cw : t.kind == RulerKind::FrequentWords ? 1 : 0;
  RulerSample s;
  if (!fits(lo0, &s))
    throw InputError(str("RULER task ", t.name, ": length ", length, " is too short for its template and ",
                         t.tokens_to_generate, " generated tokens; use longer eval.lengths"));
  int64_t lo = lo0, hi = std::max<int64_t>(lo0 + 1, length);
  while (hi - lo > 1) {
    const int64_t mid = lo + (hi - lo) / 2;
    (fits(mid, nullptr) ? lo : hi) = mid;
  }
  fits(lo, &s);
  if (control && (t.kind == RulerKind::CommonWords || t.kind == RulerKind::FrequentWords)) {
    // Shuffled answers: another sample's references, which this prompt does not support.
    Built other = build(t, essay, length, lo, depth, seed ^ 0x5eed0c0a7a01ull, index, false);
    s.answers = other.answers;
  }
  return s;
}

double ruler_score(const std::string& prediction, const std::vector<std::string>& references) {
  if (references.empty()) return 0;
  const std::string p = lower(prediction);
  double hit = 0;
  for (const std::string& r : references) hit += p.find(lower(r)) != std::string::npos ? 1 : 0;
  return hit / double(references.size());
}

}  // namespace lct
