// The synthetic retrieval generator (data/synth.h) and `lcdata synth`: determinism, the document
// layout (needle at its depth, question and answer at the end), the loss mask, the controls, the
// phrases filler's "predictable" mask, text mode, and errors.
#include <gtest/gtest.h>

#include <algorithm>
#include <set>

#include "core/error.h"
#include "data/data_files.h"
#include "data/synth.h"
#include "data/tokenizer.h"
#include "test_util.h"

namespace lct {
namespace {

using V = SynthVocab;

bool is_value(int32_t t) { return t >= V::kValueBegin && t < V::kValueBegin + V::kNumValues; }
bool is_filler(int32_t t) { return t >= V::kFillerBegin && t < V::kFillerBegin + V::kNumFiller; }

SynthSpec niah(int64_t length) {
  SynthSpec s;
  s.task = SynthTask::Niah;
  s.length = length;
  s.needles = s.min_needles = 1;
  return s;
}

TEST(Synth, SameSeedAndIndexGiveTheSameDocument) {
  const SynthSpec s = niah(256);
  const SynthDoc a = make_synth_doc(s, 7, 3, -1, true), b = make_synth_doc(s, 7, 3, -1, true);
  EXPECT_EQ(a.tokens, b.tokens);
  EXPECT_EQ(a.loss_mask, b.loss_mask);
  EXPECT_EQ(a.needle_begin, b.needle_begin);
  EXPECT_NE(a.tokens, make_synth_doc(s, 7, 4, -1, true).tokens) << "another index";
  EXPECT_NE(a.tokens, make_synth_doc(s, 8, 3, -1, true).tokens) << "another seed";
}

TEST(Synth, NiahLayoutAnswerAndMask) {
  const SynthSpec s = niah(200);
  for (uint64_t i = 0; i < 50; ++i) {
    const SynthDoc d = make_synth_doc(s, 1, i, -1, true);
    ASSERT_EQ(int64_t(d.tokens.size()), 200);
    ASSERT_EQ(d.loss_mask.size(), d.tokens.size());
    EXPECT_EQ(d.tokens[0], V::kBos);
    EXPECT_EQ(d.loss_mask[0], 0) << "BOS is never a target (it is the extra target of the previous sample)";
    // The needle: KEY k1 k2 VAL v1..v4 END.
    ASSERT_GE(d.needle_begin, 1);
    ASSERT_EQ(d.needle_end - d.needle_begin, s.needle_tokens());
    const int32_t* n = d.tokens.data() + d.needle_begin;
    EXPECT_EQ(n[0], V::kKey);
    EXPECT_EQ(n[3], V::kVal);
    EXPECT_EQ(n[8], V::kEnd);
    // One question at the end, answered by the needle's value, and the answer ends the document.
    ASSERT_EQ(d.answer_begin.size(), 1u);
    EXPECT_EQ(d.answer_end[0], 200);
    EXPECT_EQ(d.answer_end[0] - d.answer_begin[0], 4);
    const int64_t q = d.answer_begin[0] - 5;  // QUERY KEY k1 k2 VAL
    EXPECT_EQ(d.tokens[size_t(q)], V::kQuery);
    EXPECT_EQ(d.tokens[size_t(q + 1)], V::kKey);
    EXPECT_EQ(d.tokens[size_t(q + 2)], n[1]);
    EXPECT_EQ(d.tokens[size_t(q + 3)], n[2]);
    EXPECT_EQ(d.tokens[size_t(q + 4)], V::kVal);
    for (int k = 0; k < 4; ++k) {
      EXPECT_EQ(d.tokens[size_t(d.answer_begin[0] + k)], n[4 + k]);
      EXPECT_TRUE(is_value(n[4 + k]));
    }
    // Loss mask: exactly the answer tokens (filler_loss = 0).
    for (int64_t p = 0; p < 200; ++p) {
      EXPECT_EQ(d.loss_mask[size_t(p)], p >= d.answer_begin[0] ? 1 : 0) << "position " << p;
    }
    // Everything else in the haystack is filler.
    for (int64_t p = 1; p < q; ++p) {
      if (p < d.needle_begin || p >= d.needle_end) {
        EXPECT_TRUE(is_filler(d.tokens[size_t(p)])) << p;
      }
    }
  }
}

TEST(Synth, DepthPlacesTheNeedle) {
  const SynthSpec s = niah(300);
  const int64_t haystack_end = 300 - s.query_tokens();  // first token of the question
  const SynthDoc top = make_synth_doc(s, 1, 0, 0, true), bottom = make_synth_doc(s, 1, 0, 100, true);
  EXPECT_EQ(top.needle_begin, 1) << "depth 0: right after BOS";
  EXPECT_EQ(bottom.needle_end, haystack_end) << "depth 100: right before the question";
  const SynthDoc mid = make_synth_doc(s, 1, 0, 50, true);
  const double center = double(mid.needle_begin - 1) / double(haystack_end - 1 - s.needle_tokens());
  EXPECT_NEAR(center, 0.5, 0.01);
  EXPECT_DOUBLE_EQ(mid.depth, 50);
}

TEST(Synth, NoNeedleControlKeepsTheQuestionAndHidesTheAnswer) {
  const SynthSpec s = niah(256);
  for (uint64_t i = 0; i < 20; ++i) {
    const SynthDoc with = make_synth_doc(s, 5, i, 30, true), without = make_synth_doc(s, 5, i, 30, false);
    EXPECT_EQ(without.needle_begin, -1);
    const int64_t q = without.answer_begin[0] - 5;
    // The question and answer are those of the needle version; the haystack has no KEY/VAL.
    for (int64_t p = q; p < 256; ++p) EXPECT_EQ(without.tokens[size_t(p)], with.tokens[size_t(p)]);
    for (int64_t p = 1; p < q; ++p) {
      EXPECT_TRUE(is_filler(without.tokens[size_t(p)]));
    }
  }
}

TEST(Synth, KvDistractorsHaveDistinctKeysAndQuestionsAskPlacedNeedles) {
  SynthSpec s;
  s.task = SynthTask::Kv;
  s.length = 512;
  s.needles = 6;
  s.min_needles = 2;
  s.queries = 3;
  s.validate();
  std::set<int> counts;
  for (uint64_t i = 0; i < 40; ++i) {
    const SynthDoc d = make_synth_doc(s, 2, i, -1, true);
    std::vector<std::vector<int32_t>> keys;
    std::vector<std::vector<int32_t>> values;
    for (size_t p = 0; p + 8 < d.tokens.size(); ++p)
      if (d.tokens[p] == V::kKey && d.tokens[p + 3] == V::kVal && d.tokens[p + 8] == V::kEnd) {
        keys.push_back({d.tokens[p + 1], d.tokens[p + 2]});
        values.push_back({d.tokens.begin() + long(p) + 4, d.tokens.begin() + long(p) + 8});
      }
    counts.insert(int(keys.size()));
    std::set<std::vector<int32_t>> distinct(keys.begin(), keys.end());
    EXPECT_EQ(distinct.size(), keys.size());
    EXPECT_EQ(d.answer_begin.size(), std::min<size_t>(3, keys.size()));
    for (size_t k = 0; k < d.answer_begin.size(); ++k) {
      const int64_t a = d.answer_begin[k];
      const std::vector<int32_t> key = {d.tokens[size_t(a - 3)], d.tokens[size_t(a - 2)]};
      auto it = std::find(keys.begin(), keys.end(), key);
      ASSERT_NE(it, keys.end());
      const std::vector<int32_t> answer(d.tokens.begin() + a, d.tokens.begin() + d.answer_end[k]);
      EXPECT_EQ(answer, values[size_t(it - keys.begin())]);
    }
  }
  EXPECT_GE(counts.size(), 3u) << "the needle count varies in [min_needles, needles]";
}

TEST(Synth, PasskeyUsesDigits) {
  SynthSpec s;
  s.task = SynthTask::Passkey;
  s.length = 128;
  s.needles = s.min_needles = 1;
  s.value_len = 5;
  const SynthDoc d = make_synth_doc(s, 1, 0, 50, true);
  EXPECT_EQ(d.tokens[size_t(d.needle_begin)], V::kPass);
  EXPECT_EQ(d.answer_end[0] - d.answer_begin[0], 5);
  for (int64_t p = d.answer_begin[0]; p < d.answer_end[0]; ++p) {
    EXPECT_GE(d.tokens[size_t(p)], V::kValueBegin);
    EXPECT_LT(d.tokens[size_t(p)], V::kValueBegin + V::kDigits);
  }
  EXPECT_DOUBLE_EQ(synth_token_chance(s), 0.1);
}

TEST(Synth, PhrasesMaskOnlyTokensACopyCanPredict) {
  SynthSpec s = niah(512);
  s.filler = "phrases";
  s.filler_loss = 1;
  int64_t masked = 0;
  for (uint64_t i = 0; i < 20; ++i) {
    const SynthDoc d = make_synth_doc(s, 3, i, -1, true);
    for (int64_t p = 1; p < d.answer_begin[0]; ++p) {
      if (!d.loss_mask[size_t(p)]) continue;
      ++masked;
      ASSERT_TRUE(is_filler(d.tokens[size_t(p)]));
      // Some earlier occurrence of the previous token is followed by this token (a copy source).
      bool found = false;
      for (int64_t q = 1; q + 1 < p && !found; ++q)
        found = d.tokens[size_t(q)] == d.tokens[size_t(p - 1)] && d.tokens[size_t(q + 1)] == d.tokens[size_t(p)];
      EXPECT_TRUE(found) << "doc " << i << " position " << p;
    }
  }
  EXPECT_GT(masked, 20 * 100) << "about 40% of the haystack is copyable";
}

TEST(Synth, DescriptionRoundTripsAndErrorsNameTheProblem) {
  SynthSpec s;
  s.task = SynthTask::Kv;
  s.needles = 8;
  s.min_needles = 1;
  s.queries = 4;
  s.filler = "phrases";
  const SynthSpec r = parse_synth_description(s.describe(), "test");
  EXPECT_EQ(r.describe(), s.describe());
  EXPECT_THROW(parse_synth_description("bytes", "f.h5"), InputError);
  EXPECT_THROW(parse_synth_description("synth:task=nope", "f.h5"), InputError);
  EXPECT_THROW(parse_synth_task("needle", "--task"), InputError);
  SynthSpec bad = niah(25);
  try {
    make_synth_doc(bad, 1, 0, -1, true);
    FAIL() << "a 25-token document cannot hold the needle and the question";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("too short"), std::string::npos) << e.what();
  }
  bad = niah(256);
  bad.queries = 2;
  EXPECT_THROW(bad.validate(), InputError) << "niah asks one question";
}

TEST(Synth, TextModeWritesTheGkamradtNeedleThroughATokenizer) {
  auto tok = make_tokenizer("bytes");
  SynthSpec s = niah(600);
  s.filler = "text";
  s.tokenizer = tok.get();
  s.value_len = 7;
  s.key_len = 5;
  s.text_tokens = tok->encode("The grass is green. The sky is blue. The sun is yellow. Here we go. ", false);
  s.validate();
  const SynthDoc d = make_synth_doc(s, 1, 0, 40, true);
  ASSERT_EQ(d.tokens.size(), 600u);
  const std::string text = tok->decode(d.tokens);
  const std::string answer = tok->decode({d.tokens.begin() + d.answer_begin[0], d.tokens.end()});
  ASSERT_EQ(answer.size(), 8u);  // " " + 7 digits
  EXPECT_NE(text.find("The special magic number for "), std::string::npos);
  EXPECT_NE(text.find(" is:" + answer + "."), std::string::npos) << "the needle holds the answer";
  EXPECT_NE(text.find("? The special magic number for "), std::string::npos) << "the question";
  EXPECT_EQ(text.substr(text.size() - answer.size()), answer) << "the answer ends the prompt";
  EXPECT_EQ(d.tokens[0], tok->bos_id());
}

// ---- lcdata synth ---------------------------------------------------------------------------

std::string lcdata() { return test::bin_dir() + "/../tests/lcdata_under_test"; }

TEST(LcdataSynth, WritesDocumentsOfExactlyTheLengthWithAMask) {
  const std::string dir = test::scratch_dir("lcdata_synth");
  const std::string out = dir + "/kv.h5";
  auto r = test::run_command(lcdata() + " synth --task kv --length 128 --docs 10 --needles 3 --min-needles 1 --queries 2"
                                        " --filler phrases --filler-loss 0.5 --seed 9 --out " + out);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  auto f = open_token_file(out);
  const TokenFileInfo& info = f->info();
  EXPECT_EQ(info.num_tokens, 1280);
  EXPECT_EQ(info.num_documents, 10);
  EXPECT_EQ(info.vocab_size, 256);
  EXPECT_EQ(info.eod_token, -1) << "documents are whole samples: nothing joins them";
  ASSERT_TRUE(info.has_loss_mask);
  const SynthSpec spec = parse_synth_description(info.tokenizer, out);
  EXPECT_EQ(spec.task, SynthTask::Kv);
  EXPECT_EQ(spec.needles, 3);
  EXPECT_EQ(spec.min_needles, 1);
  EXPECT_EQ(spec.filler, "phrases");
  std::vector<int64_t> starts(11);
  f->read_document_starts(0, 11, starts.data());
  for (int i = 0; i <= 10; ++i) EXPECT_EQ(starts[size_t(i)], 128 * i);
  // The file holds exactly the generator's documents.
  SynthSpec s = spec;
  s.length = 128;
  s.filler_loss = 0.5;
  std::vector<int32_t> tokens(128);
  std::vector<uint8_t> mask(128);
  for (int i = 0; i < 10; ++i) {
    f->read_tokens(128 * i, 128, tokens.data(), 256);
    f->read_loss_mask(128 * i, 128, mask.data());
    const SynthDoc d = make_synth_doc(s, 9, uint64_t(i), -1, true);
    EXPECT_EQ(tokens, d.tokens) << "document " << i;
    EXPECT_EQ(mask, d.loss_mask) << "document " << i;
  }
  // Deterministic: the same command writes the same bytes.
  const std::string again = dir + "/kv2.h5";
  r = test::run_command(lcdata() + " synth --task kv --length 128 --docs 10 --needles 3 --min-needles 1 --queries 2"
                                   " --filler phrases --filler-loss 0.5 --seed 9 --out " + again);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  auto g = open_token_file(again);
  std::vector<int32_t> a(1280), b(1280);
  f->read_tokens(0, 1280, a.data(), 0);
  g->read_tokens(0, 1280, b.data(), 0);
  EXPECT_EQ(a, b);
}

TEST(LcdataSynth, BadOptionsExitWithCode2AndSayWhy) {
  const std::string dir = test::scratch_dir("lcdata_synth_bad");
  auto r = test::run_command(lcdata() + " synth --task haystack --out " + dir + "/x.h5");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.output.find("unknown task 'haystack'"), std::string::npos) << r.output;
  r = test::run_command(lcdata() + " synth --task niah --length 24 --docs 1 --out " + dir + "/x.h5");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.output.find("too short"), std::string::npos) << r.output;
  r = test::run_command(lcdata() + " synth --task niah --out " + dir + "/x.bin");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.output.find("hdf5"), std::string::npos) << r.output;
  r = test::run_command(lcdata() + " synth --task niah --length 64 --docs 1 --depth 120 --out " + dir + "/x.h5");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.output.find("--depth"), std::string::npos) << r.output;
}

}  // namespace
}  // namespace lct
