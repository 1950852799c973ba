// RULER-style task generation and scoring (no model): every task fills its length as RULER does
// (prompt + tokens_to_generate <= length, and no room for more haystack), uses RULER's templates,
// hides its answers in the prompt (and not in the no-needle control), places the needle at the
// depth, is a pure function of its seed; scoring is RULER's string_match_all; the effective length.
#include <gtest/gtest.h>

#include <map>

#include "core/error.h"
#include "data/tokenizer.h"
#include "eval/ruler_eval.h"
#include "eval/ruler_tasks.h"

namespace lct {
namespace {

int count(const std::string& s, const std::string& w) {
  int n = 0;
  for (size_t at = s.find(w); at != std::string::npos; at = s.find(w, at + 1)) ++n;
  return n;
}

TEST(RulerTasks, FillTheLengthAndHideTheAnswers) {
  auto tok = make_tokenizer("bytes");
  ASSERT_EQ(ruler_tasks().size(), 11u);
  for (const RulerTask& t : ruler_tasks()) {
    for (int64_t len : {2048, 8192}) {
      SCOPED_TRACE(t.name + " length " + std::to_string(len));
      const RulerSample s = make_ruler_sample(t, *tok, "", len, 50, 7, 3, false);
      EXPECT_LE(int64_t(s.tokens.size()) + t.tokens_to_generate, len);
      // One more haystack unit (a noise sentence ~90 bytes, an essay word, a list entry) would not fit.
      EXPECT_GT(int64_t(s.tokens.size()) + t.tokens_to_generate, len - 150);
      EXPECT_EQ(s.tokens[0], tok->bos_id());
      ASSERT_FALSE(s.answers.empty());
      for (const std::string& a : s.answers) EXPECT_NE(s.input.find(a), std::string::npos) << a;
      EXPECT_DOUBLE_EQ(ruler_score(s.input, s.answers), 1.0);
      const RulerSample again = make_ruler_sample(t, *tok, "", len, 50, 7, 3, false);
      EXPECT_EQ(again.tokens, s.tokens);
      EXPECT_NE(make_ruler_sample(t, *tok, "", len, 50, 7, 4, false).input, s.input);
      const RulerSample ctl = make_ruler_sample(t, *tok, "", len, 50, 7, 3, true);
      EXPECT_LT(ruler_score(ctl.input, ctl.answers), t.kind == RulerKind::Niah ? 0.01 : 0.5)
          << "the control's answers are not in its prompt";
    }
  }
}

TEST(RulerTasks, RulerTemplates) {
  auto tok = make_tokenizer("bytes");
  const RulerSample s1 = make_ruler_sample(ruler_task("niah_single_1", "t"), *tok, "", 1024, 0, 1, 0, false);
  EXPECT_EQ(s1.input.rfind("A special magic number is hidden within the following text. Make sure to memorize it. I "
                           "will quiz you about the number afterwards.\nOne of the special magic numbers for ",
                           0),
            0u)
      << "depth 0: the needle opens the haystack\n" << s1.input.substr(0, 300);
  EXPECT_NE(s1.input.find("\nThe grass is green. The sky is blue. The sun is yellow. Here we go. There and back again.\n"),
            std::string::npos);
  EXPECT_NE(s1.input.find("mentioned in the provided text is"), std::string::npos);
  EXPECT_EQ(s1.answers.size(), 1u);
  EXPECT_EQ(s1.answers[0].size(), 7u);

  const RulerSample mq = make_ruler_sample(ruler_task("niah_multiquery", "t"), *tok, "", 2048, 100, 1, 0, false);
  EXPECT_EQ(mq.answers.size(), 4u);
  EXPECT_NE(mq.input.find("What are all the special magic numbers for "), std::string::npos);
  EXPECT_NE(mq.input.find(", and "), std::string::npos);
  const size_t q = mq.input.find("What are all the special magic numbers for ");
  EXPECT_LT(mq.input.rfind("One of the special magic numbers for ", q), q);

  const RulerSample mk3 = make_ruler_sample(ruler_task("niah_multikey_3", "t"), *tok, "", 2048, 50, 1, 0, false);
  EXPECT_EQ(mk3.answers[0].size(), 36u) << "a UUID";
  EXPECT_GT(count(mk3.input, "One of the special magic uuids for "), 5) << "a haystack of needles";

  const RulerSample mv = make_ruler_sample(ruler_task("niah_multivalue", "t"), *tok, "", 2048, 50, 1, 0, false);
  EXPECT_EQ(mv.answers.size(), 4u);

  const RulerSample vt = make_ruler_sample(ruler_task("vt", "t"), *tok, "", 1024, 0, 1, 0, false);
  EXPECT_EQ(vt.answers.size(), 5u);
  EXPECT_EQ(vt.input.rfind("Memorize and track the chain(s) of variable assignment hidden in the following text.\n\nVAR ", 0), 0u);
  EXPECT_NE(vt.input.find("5 variables are assigned the value "), std::string::npos);
  for (size_t i = 1; i < 5; ++i)
    EXPECT_LT(vt.input.find("VAR " + vt.answers[i - 1] + " "), vt.input.find("VAR " + vt.answers[i] + " = VAR " + vt.answers[i - 1]))
        << "the chain is in order";

  // cwe below 4096 tokens: the 10 common words 6 times each, the others once.
  const RulerSample cwe = make_ruler_sample(ruler_task("cwe", "t"), *tok, "", 2048, 50, 1, 0, false);
  ASSERT_EQ(cwe.answers.size(), 10u);
  for (const std::string& w : cwe.answers) EXPECT_EQ(count(cwe.input, ". " + w + " ") + count(cwe.input, ". " + w + "\n"), 6) << w;

  // fwe: the answers are the 2nd to 4th most frequent coded words ('...' is the first).
  const RulerSample fwe = make_ruler_sample(ruler_task("fwe", "t"), *tok, "", 2048, 50, 1, 0, false);
  ASSERT_EQ(fwe.answers.size(), 3u);
  EXPECT_GT(count(fwe.input, " " + fwe.answers[0]), count(fwe.input, " " + fwe.answers[1]));
  EXPECT_GT(count(fwe.input, " " + fwe.answers[1]), count(fwe.input, " " + fwe.answers[2]));
  EXPECT_GT(count(fwe.input, "... "), count(fwe.input, " " + fwe.answers[0]));
}

TEST(RulerTasks, DepthPlacesTheNeedle) {
  auto tok = make_tokenizer("bytes");
  const RulerTask& t = ruler_task("niah_single_2", "t");
  double prev = -1;
  for (int64_t d : {0, 25, 50, 75, 100}) {
    const RulerSample s = make_ruler_sample(t, *tok, "", 4096, d, 1, 0, false);
    const double at = double(s.input.find(s.answers[0])) / double(s.input.size());
    EXPECT_GT(at, prev) << d;
    EXPECT_NEAR(at, 0.9 * double(d) / 100.0, 0.12) << d;
    prev = at;
  }
}

TEST(RulerTasks, ScoreAndEffectiveLength) {
  EXPECT_DOUBLE_EQ(ruler_score("The numbers are 123 and ABC-def.", {"123", "abc-DEF", "999"}), 2.0 / 3.0);
  EXPECT_DOUBLE_EQ(ruler_score("", {"1"}), 0.0);
  std::vector<RulerCell> cells;
  for (auto [len, s] : std::vector<std::pair<int64_t, double>>{{256, 1.0}, {512, 0.9}, {1024, 0.5}, {2048, 0.95}}) {
    RulerCell c;
    c.length = len;
    c.samples = 10;
    c.score_sum = 10 * s;
    cells.push_back(c);
  }
  EXPECT_EQ(ruler_effective_length(cells), 512) << "the first length below 85.6% ends it";
  cells[0].score_sum = 8.5;
  EXPECT_EQ(ruler_effective_length(cells), 0);
  EXPECT_EQ(ruler_csv_text({cells[1]}), "length,depth,samples,score\n512,-1,10,0.900000\n");
}

TEST(RulerTasks, InputErrors) {
  auto tok = make_tokenizer("bytes");
  EXPECT_THROW(ruler_task("qa_1", "eval.tasks"), InputError);
  EXPECT_THROW(make_ruler_sample(ruler_task("niah_single_1", "t"), *tok, "", 200, 0, 1, 0, false), InputError);
  EXPECT_THROW(check_eval_task_names({"niah", "vt", "niah_single_9"}), InputError);
  EXPECT_NO_THROW(check_eval_task_names({"niah", "passkey", "kv", "vt", "cwe", "niah_multikey_3"}));
  EXPECT_THROW(check_eval_task_names({"fwe", "vt", "fwe"}), InputError);  // listed twice
}

}  // namespace
}  // namespace lct
