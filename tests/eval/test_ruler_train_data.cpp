// Training data for the RULER tasks (lcdata ruler, eval/ruler_train_data.h): units of exactly the
// sample length holding whole documents (BOS, RULER's prompt, the answer, end-of-text), the loss mask
// on the answer alone, answers that score 1 by RULER's rule, and the seed separation from the
// evaluation: no training prompt is an evaluation prompt, and no evaluation answer occurs in the
// training data. lcdata ruler writes exactly the generator's units and reports bad options with code 2.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <set>

#include "core/error.h"
#include "data/data_files.h"
#include "data/tokenizer.h"
#include "eval/ruler_train_data.h"
#include "test_util.h"

namespace lct {
namespace {

RulerTrainOptions options(const RulerTask& t, const Tokenizer& tok, int64_t unit, uint64_t seed, int64_t min_length = 0) {
  RulerTrainOptions o;
  o.task = &t;
  o.tokenizer = &tok;
  o.unit = unit;
  o.seed = seed;
  o.min_length = min_length;
  return o;
}

// The documents of a unit: [begin, end) of each, split at BOS.
std::vector<std::pair<size_t, size_t>> documents(const RulerTrainUnit& u, int32_t bos, int64_t padding) {
  std::vector<std::pair<size_t, size_t>> d;
  const size_t end = u.tokens.size() - size_t(padding);
  for (size_t i = 0; i < end; ++i)
    if (u.tokens[i] == bos) d.push_back({i, end});
  for (size_t k = 0; k + 1 < d.size(); ++k) d[k].second = d[k + 1].first;
  return d;
}

TEST(RulerTrainData, UnitsHoldWholeDocumentsWithTheAnswerMasked) {
  auto tok = make_tokenizer("bytes");
  for (const RulerTask& base : ruler_tasks()) {
    const RulerTask t = base.name == "cwe" ? with_cwe_frequencies(base, 3, 1, "test") : base;
    SCOPED_TRACE(t.name);
    RulerTrainOptions o = options(t, *tok, 1024, 5);
    const int64_t shortest = ruler_shortest_document(o);
    o.prepare("test");
    EXPECT_EQ(o.min_length, shortest);
    EXPECT_LT(shortest, 1024);
    EXPECT_GT(shortest, 200) << "RULER's templates alone are longer";
    int64_t docs = 0, short_docs = 0;
    for (uint64_t index = 0; index < 6; ++index) {
      const RulerTrainUnit u = make_ruler_train_unit(o, index);
      ASSERT_EQ(u.tokens.size(), 1024u);
      ASSERT_EQ(u.loss_mask.size(), 1024u);
      ASSERT_EQ(u.tokens[0], tok->bos_id());
      ASSERT_GE(u.padding, 0);
      EXPECT_LT(u.padding, shortest) << "a unit is filled while a document fits";
      for (int64_t i = 1024 - u.padding; i < 1024; ++i) {
        EXPECT_EQ(u.tokens[size_t(i)], tok->eos_id());
        EXPECT_EQ(u.loss_mask[size_t(i)], 0);
      }
      const auto docs_of = documents(u, tok->bos_id(), u.padding);
      ASSERT_EQ(int64_t(docs_of.size()), u.documents);
      ASSERT_EQ(u.inputs.size(), docs_of.size());
      for (size_t k = 0; k < docs_of.size(); ++k) {
        const auto [b, e] = docs_of[k];
        docs += 1;
        short_docs += e - b < 1024 - 200 ? 1 : 0;
        // The prompt (mask 0) is exactly the evaluation's prompt text; the answer (mask 1) follows it
        // and ends with end-of-text, and scores 1 against the prompt's references.
        size_t a = b;
        while (a < e && u.loss_mask[a] == 0) ++a;
        ASSERT_LT(a, e) << "a document without an answer";
        for (size_t i = a; i < e; ++i) EXPECT_EQ(u.loss_mask[i], 1) << "the answer is one masked run to the end";
        EXPECT_EQ(u.tokens[e - 1], tok->eos_id());
        EXPECT_EQ(tok->decode({u.tokens.begin() + long(b) + 1, u.tokens.begin() + long(a)}), u.inputs[k]);
        const std::string answer = tok->decode({u.tokens.begin() + long(a), u.tokens.begin() + long(e) - 1});
        // The references are the prompt's: every one occurs in it and in the answer.
        std::vector<std::string> refs;
        if (t.kind == RulerKind::Niah) {
          for (size_t at = answer.find_first_of("0123456789abcdef"); at != std::string::npos;) {
            const size_t end = answer.find_first_of(",.", at);
            refs.push_back(answer.substr(at, end - at));
            at = end == std::string::npos ? end : answer.find_first_of("0123456789abcdef", end);
          }
          EXPECT_EQ(int64_t(refs.size()), int64_t(t.num_q) * t.num_v) << answer;
          EXPECT_EQ(answer.back(), '.');
        }
        for (const std::string& r : refs) EXPECT_NE(u.inputs[k].find(r), std::string::npos) << r;
        EXPECT_LE(int64_t(e - a), t.tokens_to_generate) << "the answer fits in the generation budget: " << answer;
      }
      EXPECT_EQ(make_ruler_train_unit(o, index).tokens, u.tokens) << "a pure function of (options, index)";
    }
    EXPECT_GT(short_docs, 0) << "documents shorter than the unit occur (" << docs << " documents)";
    EXPECT_NE(make_ruler_train_unit(o, 0).tokens, make_ruler_train_unit(o, 1).tokens);
  }
}

// cwe's list words in order, read from the prompt: the token after each "K." token.
std::vector<std::string> list_words(const std::string& input) {
  std::vector<std::string> words;
  const std::string list = input.substr(0, input.find("\nQuestion:"));
  std::vector<std::string> tok;
  std::string w;
  for (char c : list + " ") {
    if (c == ' ' || c == '\n') {
      if (!w.empty()) tok.push_back(w);
      w.clear();
    } else {
      w += c;
    }
  }
  for (size_t i = 0; i + 1 < tok.size(); ++i)
    if (tok[i].back() == '.' && tok[i].find_first_not_of("0123456789") == tok[i].size() - 1) words.push_back(tok[i + 1]);
  return words;
}

TEST(RulerTrainData, AnswerTextScoresOneInAnOrderACausalModelCanFollow) {
  auto tok = make_tokenizer("bytes");
  for (const RulerTask& t : ruler_tasks()) {
    SCOPED_TRACE(t.name);
    const RulerSample s = make_ruler_sample(t, *tok, "", 2048, 30, 11, 2, false);
    const std::string a = ruler_answer_text(t, s);
    EXPECT_DOUBLE_EQ(ruler_score(a, s.answers), 1.0) << a;
    // key[i]: where reference i must come; the answer lists the references by increasing key.
    std::vector<size_t> key;
    if (t.kind == RulerKind::FrequentWords) {
      // Most frequent first: count each reference as a whole word of the coded text.
      const std::string text = " " + s.input.substr(0, s.input.find("\nQuestion:")) + " ";
      for (const std::string& r : s.answers) {
        size_t n = 0;
        for (size_t at = text.find(" " + r + " "); at != std::string::npos; at = text.find(" " + r + " ", at + 1)) ++n;
        key.push_back(1000000 - n);
      }
    } else if (t.kind == RulerKind::CommonWords) {
      // The item at which the reference outnumbers every other word of the list.
      const std::vector<std::string> words = list_words(s.input);
      ASSERT_GT(words.size(), s.answers.size());
      std::map<std::string, size_t> count;
      for (const std::string& w : words) ++count[w];
      size_t others = 0;
      for (const auto& [w, c] : count)
        if (std::find(s.answers.begin(), s.answers.end(), w) == s.answers.end()) others = std::max(others, c);
      for (const std::string& r : s.answers) {
        size_t seen = 0, i = 0;
        while (i < words.size() && !(words[i] == r && ++seen > others)) ++i;
        ASSERT_LT(i, words.size()) << r << " is not more frequent than the other words";
        key.push_back(i);
      }
    } else {
      for (const std::string& r : s.answers) key.push_back(s.input.find(r));  // first occurrence
    }
    for (size_t i = 0; i < s.answers.size(); ++i)
      for (size_t j = 0; j < s.answers.size(); ++j)
        if (key[i] < key[j]) {
          EXPECT_LT(a.find(s.answers[i]), a.find(s.answers[j])) << a;
        }
  }
  const RulerSample s = make_ruler_sample(ruler_task("niah_single_1", "t"), *tok, "", 1024, 50, 1, 0, false);
  EXPECT_EQ(ruler_answer_text(ruler_task("niah_single_1", "t"), s), " " + s.answers[0] + ".");
  // cwe: "red" first occurs inside "numbered" and first as an item at 1, but it outnumbers "ant"
  // (the other word) only at item 5, after "bed" does at item 4.
  RulerSample c;
  c.input = "Below is a numbered list of words.\n1. red 2. bed 3. ant 4. bed 5. red\nQuestion: What are the 10 most "
            "common words in the above list? Answer: The top 10 words that appear most often in the list are:";
  c.answers = {"red", "bed"};
  EXPECT_EQ(ruler_answer_text(ruler_task("cwe", "t"), c), " bed, red");
}

TEST(RulerTrainData, PromptLossTrainsOnAFractionOfThePrompt) {
  auto tok = make_tokenizer("bytes");
  RulerTrainOptions o = options(ruler_task("niah_single_2", "t"), *tok, 1024, 3);
  o.prepare("test");
  const RulerTrainUnit plain = make_ruler_train_unit(o, 0);
  o.prompt_loss = 0.5;
  const RulerTrainUnit half = make_ruler_train_unit(o, 0);
  EXPECT_EQ(half.tokens, plain.tokens) << "the same documents";
  int64_t answer = 0, prompt = 0, prompt_tokens = 0;
  for (size_t i = 0; i < plain.tokens.size(); ++i) {
    EXPECT_GE(half.loss_mask[i], plain.loss_mask[i]) << "the answer keeps its mask";
    answer += plain.loss_mask[i];
    if (!plain.loss_mask[i] && int64_t(i) < 1024 - plain.padding && plain.tokens[i] != tok->bos_id()) {
      prompt_tokens += 1;
      prompt += half.loss_mask[i];
    }
    if (plain.tokens[i] == tok->bos_id()) {
      EXPECT_EQ(half.loss_mask[i], 0) << "BOS is never a target";
    }
  }
  EXPECT_GT(answer, 0);
  EXPECT_NEAR(double(prompt) / double(prompt_tokens), 0.5, 0.06);
}

// The evaluation's prompts (seed 777, indexes 0 .. depths x samples) never occur in the training data,
// nor do its answers (7-digit numbers, UUIDs, 5-letter names, coded words: collisions by chance are
// negligible at these sizes); cwe's answers are words of a fixed list and are checked by prompt only.
// The same check on samples made the evaluation's way finds them, so it can fail.
TEST(RulerTrainData, NeverHoldsAnEvaluationSample) {
  auto tok = make_tokenizer("bytes");
  const std::vector<int64_t> depths = {0, 25, 50, 75, 100};
  const int64_t samples = 4, len = 1024;
  for (const RulerTask& base : ruler_tasks()) {
    const RulerTask t = base.name == "cwe" ? with_cwe_frequencies(base, 3, 1, "test") : base;
    SCOPED_TRACE(t.name);
    std::set<std::string> eval_inputs, eval_answers;
    for (size_t d = 0; d < depths.size(); ++d)
      for (int64_t k = 0; k < samples; ++k) {  // evaluate_ruler's indexes: depth-major (cwe/fwe: one cell)
        const uint64_t i = uint64_t(int64_t(d) * samples + k);
        const RulerSample s = make_ruler_sample(t, *tok, "", len, t.has_depth() ? depths[d] : 0, 777, i, false);
        eval_inputs.insert(s.input);
        if (t.kind != RulerKind::CommonWords) eval_answers.insert(s.answers.begin(), s.answers.end());
      }
    ASSERT_EQ(eval_inputs.size(), depths.size() * size_t(samples));
    auto found = [&](const std::vector<std::string>& inputs) {
      int64_t n = 0;
      for (const std::string& in : inputs) {
        n += int64_t(eval_inputs.count(in));
        for (const std::string& a : eval_answers) n += in.find(a) != std::string::npos ? 1 : 0;
      }
      return n;
    };
    // Training data with the evaluation's seed (777) and another (1): ruler_train_seed keeps both apart.
    for (uint64_t seed : {uint64_t(777), uint64_t(1)}) {
      RulerTrainOptions o = options(t, *tok, len, seed);
      o.prepare("test");
      std::vector<std::string> inputs;
      for (uint64_t index = 0; index < 40; ++index) {
        const RulerTrainUnit u = make_ruler_train_unit(o, index);
        inputs.insert(inputs.end(), u.inputs.begin(), u.inputs.end());
      }
      EXPECT_GE(inputs.size(), 40u);
      EXPECT_EQ(found(inputs), 0) << "seed " << seed << ": an evaluation prompt or answer in the training data";
    }
    std::vector<std::string> same;
    for (uint64_t i = 0; i < 3; ++i)
      same.push_back(make_ruler_sample(t, *tok, "", len, t.has_depth() ? depths[0] : 0, 777, i, false).input);
    EXPECT_GE(found(same), 3) << "samples made the evaluation's way are found";
  }
}

TEST(RulerTrainData, BadOptionsSayWhatToChange) {
  auto tok = make_tokenizer("bytes");
  RulerTrainOptions o = options(ruler_task("niah_multiquery", "t"), *tok, 512, 1);
  try {
    o.prepare("here");
    FAIL() << "a unit too short for the template";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("raise the unit"), std::string::npos) << e.what();
  }
  o.unit = 1024;
  o.min_length = 300;
  try {
    o.prepare("here");
    FAIL() << "a shortest document below the template";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("too short"), std::string::npos) << e.what();
  }
  o.min_length = 2000;
  EXPECT_THROW(o.prepare("here"), InputError);
  EXPECT_THROW(with_cwe_frequencies(ruler_task("cwe", "t"), 1, 3, "here"), InputError) << "common words less frequent";
  EXPECT_THROW(with_cwe_frequencies(ruler_task("cwe", "t"), 3, 0, "here"), InputError);
  const RulerTask cwe = with_cwe_frequencies(ruler_task("cwe", "t"), 3, 1, "here");
  EXPECT_EQ(cwe.short_freq_cw, 3);
  EXPECT_EQ(cwe.freq_ucw, 1);
}

// A copy practice document: BOS, the values' line, "\n", the gap, "\n|", then the answer " <line>"
// (loss mask 1) and end-of-text. Checks that shape and returns (values' line, gap text) per document.
std::vector<std::pair<std::string, std::string>> copy_documents(const RulerTrainUnit& u, const Tokenizer& tok) {
  std::vector<std::pair<std::string, std::string>> out;
  const auto docs = documents(u, tok.bos_id(), u.padding);
  EXPECT_EQ(int64_t(docs.size()), u.documents);
  for (size_t k = 0; k < docs.size(); ++k) {
    const auto [b, e] = docs[k];
    size_t a = b;
    while (a < e && u.loss_mask[a] == 0) ++a;
    const std::string prompt = tok.decode({u.tokens.begin() + long(b) + 1, u.tokens.begin() + long(a)});
    const std::string answer = tok.decode({u.tokens.begin() + long(a), u.tokens.begin() + long(e) - 1});
    EXPECT_EQ(u.tokens[e - 1], tok.eos_id());
    const std::string first = prompt.substr(0, prompt.find('\n'));
    EXPECT_EQ(first, u.inputs[k]);
    EXPECT_EQ(answer, " " + first) << "the answer is the first line again";
    EXPECT_EQ(prompt.substr(prompt.size() - 2), "\n|");
    EXPECT_GE(prompt.size(), first.size() + 3);
    out.push_back({first, prompt.substr(first.size() + 1, prompt.size() - first.size() - 3)});
  }
  return out;
}

TEST(RulerTrainData, CopyPracticeCopiesTheFirstLineAfterTheGap) {
  auto tok = make_tokenizer("bytes");
  for (int64_t unit : {64, 1024}) {
    CopyTrainOptions o;
    o.tokenizer = tok.get();
    o.unit = unit;
    o.max_gap = unit == 64 ? 0 : 900;
    o.prepare("test");
    int64_t longest_gap = 0;
    for (uint64_t index = 0; index < 20; ++index) {
      const RulerTrainUnit u = make_copy_train_unit(o, index);
      ASSERT_EQ(int64_t(u.tokens.size()), unit);
      for (const auto& [line, gap] : copy_documents(u, *tok)) {
        EXPECT_LE(int64_t(gap.size()), o.max_gap);
        longest_gap = std::max(longest_gap, int64_t(gap.size()));
      }
    }
    if (unit == 1024) {
      EXPECT_GT(longest_gap, 450) << "long gaps occur";
    }
  }
  CopyTrainOptions bad;
  bad.tokenizer = tok.get();
  bad.unit = 16;
  EXPECT_THROW(bad.prepare("test"), InputError);
}

// With a BPE, --max-gap counts tokens: the noise between the two copies spans up to the whole unit
// (input/ruler_bpe.deck's tokenizer packs about 4 characters of noise in a token).
TEST(RulerTrainData, CopyPracticeGapCountsTokens) {
  auto tok = make_tokenizer(test::source_dir() + "/input/ruler_bpe/tokenizer.json");
  CopyTrainOptions o;
  o.tokenizer = tok.get();
  o.unit = 512;
  o.max_gap = 450;
  o.prepare("test");
  int64_t longest_gap = 0;
  for (uint64_t index = 0; index < 20; ++index) {
    const RulerTrainUnit u = make_copy_train_unit(o, index);
    ASSERT_EQ(int64_t(u.tokens.size()), o.unit);
    for (const auto& [line, gap] : copy_documents(u, *tok)) {
      const int64_t gap_tokens = int64_t(tok->encode(gap, false).size());
      EXPECT_LE(gap_tokens, o.max_gap + 8) << gap;
      longest_gap = std::max(longest_gap, gap_tokens);
    }
  }
  EXPECT_GT(longest_gap, 300) << "gaps of most of the unit occur";
}

// Recall practice: each document is needle lines (and noise lines), then queries in the tasks' own
// words, each followed by the value of the needle it names (loss mask 1) and, at the end,
// end-of-text. The query is exactly the tail of a multikey prompt (niah_multikey_2 / _3).
TEST(RulerTrainData, RecallPracticeAsksTheNeedlesKeysInTheTasksWords) {
  auto tok = make_tokenizer(test::source_dir() + "/input/ruler_bpe/tokenizer.json");
  auto query = [](const std::string& type, const std::string& k) {
    return "\nWhat is the special magic " + type + " for " + k + " mentioned in the provided text? The special magic " +
           type + " for " + k + " mentioned in the provided text is";
  };
  for (const char* task : {"niah_multikey_2", "niah_multikey_3"}) {  // the queries are the tasks' own
    const RulerSample s = make_ruler_sample(ruler_task(task, "t"), *tok, "", 512, 50, 777, 0, false);
    const std::string type = std::string(task) == "niah_multikey_2" ? "number" : "uuid";
    const std::string head = "\nWhat is the special magic " + type + " for ";
    const size_t at = s.input.rfind(head);
    ASSERT_NE(at, std::string::npos) << s.input;
    const std::string key = s.input.substr(at + head.size(), s.input.find(" mentioned", at) - at - head.size());
    EXPECT_EQ(s.input.substr(at), query(type, key));
  }
  for (int64_t max_gap : {0, 60}) {
    CopyTrainOptions o;
    o.tokenizer = tok.get();
    o.unit = 512;
    o.max_gap = max_gap;
    o.recall = true;
    o.prepare("test");
    int64_t queries = 0, uuid_docs = 0, number_docs = 0, noise_lines = 0, most_needles = 0;
    for (uint64_t index = 0; index < 30; ++index) {
      const RulerTrainUnit u = make_recall_train_unit(o, index);
      ASSERT_EQ(int64_t(u.tokens.size()), o.unit);
      const auto docs = documents(u, tok->bos_id(), u.padding);
      ASSERT_EQ(int64_t(docs.size()), u.documents);
      for (const auto& [b, e] : docs) {
        ASSERT_EQ(u.tokens[e - 1], tok->eos_id());
        EXPECT_EQ(u.loss_mask[e - 1], 1);
        // Runs of equal loss mask: the haystack with the first query, then answer, query, answer, ...
        EXPECT_EQ(u.loss_mask[b], 0) << "no loss on BOS";
        std::vector<std::string> runs;
        for (size_t i = b + 1; i < e - 1;) {
          size_t j = i;
          while (j < e - 1 && u.loss_mask[j] == u.loss_mask[i]) ++j;
          EXPECT_EQ(u.loss_mask[i], runs.size() % 2) << "the haystack and the queries carry no loss, the answers do";
          runs.push_back(tok->decode({u.tokens.begin() + long(i), u.tokens.begin() + long(j)}));
          i = j;
        }
        ASSERT_GE(runs.size(), 2u);
        ASSERT_EQ(runs.size() % 2, 0u) << "every query is followed by its answer";
        const bool uuids = runs[0].find("special magic uuids") != std::string::npos;
        const std::string type = uuids ? "uuid" : "number";
        (uuids ? uuid_docs : number_docs) += 1;
        const size_t q0 = runs[0].find("\nWhat is the special magic ");
        ASSERT_NE(q0, std::string::npos);
        std::map<std::string, std::string> value_of;  // the needles, key -> value
        std::string lines = runs[0].substr(0, q0) + "\n";
        const std::string pre = "One of the special magic " + type + "s for ";
        for (size_t p = 0, n; p < lines.size(); p = n + 1) {
          n = lines.find('\n', p);
          const std::string line = lines.substr(p, n - p);
          if (line.rfind(pre, 0) != 0) {
            EXPECT_EQ(line.find("magic"), std::string::npos) << line;
            noise_lines += 1;
            continue;
          }
          const size_t is = line.find(" is: ");
          ASSERT_NE(is, std::string::npos) << line;
          const std::string k = line.substr(pre.size(), is - pre.size());
          EXPECT_TRUE(value_of.emplace(k, line.substr(is + 5, line.size() - is - 6)).second) << "a key occurs once: " << k;
          EXPECT_EQ(line.back(), '.');
        }
        most_needles = std::max(most_needles, int64_t(value_of.size()));
        runs[0] = runs[0].substr(q0);
        std::set<std::string> asked;
        for (size_t r = 0; r < runs.size(); r += 2) {
          const std::string head = "\nWhat is the special magic " + type + " for ";
          ASSERT_EQ(runs[r].rfind(head, 0), 0u) << runs[r];
          const std::string k = runs[r].substr(head.size(), runs[r].find(" mentioned") - head.size());
          EXPECT_EQ(runs[r], query(type, k));
          ASSERT_TRUE(value_of.count(k)) << "the asked key is a needle's: " << k;
          EXPECT_TRUE(asked.insert(k).second) << "each key is asked once";
          EXPECT_EQ(runs[r + 1], " " + value_of[k] + ".");
          EXPECT_EQ(value_of[k].size(), uuids ? 36u : 7u);
          queries += 1;
        }
        EXPECT_LE(asked.size(), 8u);
      }
    }
    EXPECT_GT(uuid_docs, 5);
    EXPECT_GT(number_docs, 10);
    EXPECT_GE(most_needles, max_gap == 0 ? 20 : 8) << "the haystack holds dozens of needles (fewer with noise)";
    EXPECT_GT(queries, 4 * (uuid_docs + number_docs) / 2) << "dense: several queries per document";
    if (max_gap == 0) EXPECT_EQ(noise_lines, 0);
    else EXPECT_GT(noise_lines, 20);
  }
}

// Any gap up to the unit and the bytes tokenizer (a UUID needle and its query are ~300 bytes): every
// unit holds documents; a unit too short for one UUID document is an input error naming --unit.
TEST(RulerTrainData, RecallPracticeFitsAnyGapAndSaysWhenTheUnitIsTooShort) {
  auto tok = make_tokenizer("bytes");
  CopyTrainOptions o;
  o.tokenizer = tok.get();
  o.unit = 1024;
  o.max_gap = 1024;
  o.recall = true;
  o.prepare("test");
  for (uint64_t index = 0; index < 200; ++index) {
    const RulerTrainUnit u = make_recall_train_unit(o, index);
    ASSERT_EQ(int64_t(u.tokens.size()), o.unit);
    EXPECT_GE(u.documents, 1);
  }
  CopyTrainOptions small = o;
  small.unit = 128;
  small.max_gap = 0;
  try {
    small.prepare("lcdata ruler --task recall");
    ADD_FAILURE() << "a 128-byte unit holds no UUID document";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("raise --unit"), std::string::npos) << e.what();
  }
}

// ---- lcdata ruler ---------------------------------------------------------------------------

std::string lcdata() { return test::bin_dir() + "/../tests/lcdata_under_test"; }

TEST(LcdataRuler, WritesTheGeneratorsUnits) {
  const std::string dir = test::scratch_dir("lcdata_ruler");
  const std::string out = dir + "/vt.h5";
  auto r = test::run_command(lcdata() + " ruler --task vt --unit 768 --docs 5 --seed 4 --prompt-loss 0.25 --out " + out);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("data.bos_token = 256"), std::string::npos) << r.output;
  auto f = open_token_file(out);
  const TokenFileInfo& info = f->info();
  EXPECT_EQ(info.num_tokens, 5 * 768);
  EXPECT_EQ(info.num_documents, 5);
  EXPECT_EQ(info.vocab_size, 258);
  EXPECT_EQ(info.eod_token, -1);
  ASSERT_TRUE(info.has_loss_mask);
  auto tok = make_tokenizer("bytes");
  RulerTrainOptions o = options(ruler_task("vt", "t"), *tok, 768, 4);
  o.prompt_loss = 0.25;
  o.prepare("test");
  std::vector<int32_t> tokens(768);
  std::vector<uint8_t> mask(768);
  for (int i = 0; i < 5; ++i) {
    f->read_tokens(768 * i, 768, tokens.data(), 258);
    f->read_loss_mask(768 * i, 768, mask.data());
    const RulerTrainUnit u = make_ruler_train_unit(o, uint64_t(i));
    EXPECT_EQ(tokens, u.tokens) << "unit " << i;
    EXPECT_EQ(mask, u.loss_mask) << "unit " << i;
  }
}

TEST(LcdataRuler, WritesRecallPracticeUnits) {
  const std::string dir = test::scratch_dir("lcdata_ruler_recall");
  const std::string tk = test::source_dir() + "/input/ruler_bpe/tokenizer.json";
  auto r = test::run_command(lcdata() + " ruler --task recall --unit 512 --max-gap 60 --docs 4 --seed 3 --tokenizer " + tk +
                             " --out " + dir + "/recall.h5");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("recall practice"), std::string::npos) << r.output;
  auto tok = make_tokenizer(tk);
  CopyTrainOptions o;
  o.tokenizer = tok.get();
  o.unit = 512;
  o.max_gap = 60;
  o.seed = 3;
  o.recall = true;
  o.prepare("test");
  auto f = open_token_file(dir + "/recall.h5");
  std::vector<int32_t> tokens(512);
  std::vector<uint8_t> mask(512);
  for (int i = 0; i < 4; ++i) {
    f->read_tokens(512 * i, 512, tokens.data(), tok->vocab_size());
    f->read_loss_mask(512 * i, 512, mask.data());
    const RulerTrainUnit u = make_recall_train_unit(o, uint64_t(i));
    EXPECT_EQ(tokens, u.tokens) << "unit " << i;
    EXPECT_EQ(mask, u.loss_mask) << "unit " << i;
  }
}

TEST(LcdataRuler, BadOptionsExitWithCode2AndSayWhy) {
  const std::string dir = test::scratch_dir("lcdata_ruler_bad");
  auto r = test::run_command(lcdata() + " ruler --task qa_1 --unit 1024 --out " + dir + "/x.h5");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.output.find("unknown task 'qa_1'"), std::string::npos) << r.output;
  r = test::run_command(lcdata() + " ruler --task niah_single_1 --unit 256 --docs 1 --out " + dir + "/x.h5");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.output.find("raise the unit"), std::string::npos) << r.output;
  r = test::run_command(lcdata() + " ruler --task niah_single_1 --unit 1024 --out " + dir + "/x.bin");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.output.find("hdf5"), std::string::npos) << r.output;
  r = test::run_command(lcdata() + " ruler --task niah_single_1 --unit 1024 --cwe-freq 3,1 --out " + dir + "/x.h5");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.output.find("--task cwe only"), std::string::npos) << r.output;
  r = test::run_command(lcdata() + " ruler --task cwe --unit 1024 --cwe-freq 3 --out " + dir + "/x.h5");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.output.find("CW,UCW"), std::string::npos) << r.output;
  r = test::run_command(lcdata() + " ruler --task niah_single_1 --out " + dir + "/x.h5");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.output.find("--unit"), std::string::npos) << r.output;
  r = test::run_command(lcdata() + " ruler --task niah_single_1 --unit 1024 --max-gap 10 --out " + dir + "/x.h5");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.output.find("--task copy and recall only"), std::string::npos) << r.output;
  r = test::run_command(lcdata() + " ruler --task copy --unit 64 --max-gap 100 --out " + dir + "/x.h5");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.output.find("--max-gap"), std::string::npos) << r.output;
  r = test::run_command(lcdata() + " ruler --task recall --unit 128 --out " + dir + "/x.h5");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.output.find("raise --unit"), std::string::npos) << r.output;
  r = test::run_command(lcdata() + " ruler --task copy --unit 64 --docs 4 --out " + dir + "/copy.h5");
  EXPECT_EQ(r.exit_code, 0) << r.output;
}

}  // namespace
}  // namespace lct
