// Deck parsing, validation messages, overrides, stages, the effective deck and theta = auto.
#include <gtest/gtest.h>

#include <cstdlib>
#include <functional>

#include "core/error.h"
#include "deck/config.h"
#include "deck/deck.h"
#include "deck/schema.h"

namespace lct {
namespace {

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const InputError& e) {
    EXPECT_EQ(e.code(), kExitInput);
    return e.what();
  }
  ADD_FAILURE() << "expected an InputError";
  return "";
}

TEST(Deck, SectionsAndDottedKeysBothWork) {
  Deck d = Deck::from_text("model.dim = 32\n[train]\nsteps = 7  # a comment\n\n[model]\nn_layers=3\n", "t.deck");
  EXPECT_EQ(d.get_int("train.steps"), 7);
  EXPECT_EQ(d.get_int("model.dim"), 32);
  EXPECT_EQ(d.get_int("model.n_layers"), 3);
  EXPECT_EQ(d.origin("train.steps"), "t.deck:3");
  EXPECT_TRUE(d.given("train.steps"));
  EXPECT_FALSE(d.given("train.lr"));
  EXPECT_EQ(d.get("run.device"), "cpu");  // default
}

TEST(Deck, UnknownKeyNamesFileLineAndSuggests) {
  std::string msg = error_of([] { Deck::from_text("[train]\nsteps = 3\nstepz = 3\n", "input/x.deck"); });
  EXPECT_NE(msg.find("input/x.deck:3"), std::string::npos) << msg;
  EXPECT_NE(msg.find("train.stepz"), std::string::npos) << msg;
  EXPECT_NE(msg.find("did you mean train.steps?"), std::string::npos) << msg;
  msg = error_of([] { Deck::from_text("[trian]\nsteps = 3\n", "y.deck"); });
  EXPECT_NE(msg.find("did you mean train.steps?"), std::string::npos) << msg;
  msg = error_of([] { Deck::from_text("", "z.deck", {"--model.dimm=3"}); });
  EXPECT_NE(msg.find("command line"), std::string::npos) << msg;
  EXPECT_NE(msg.find("model.dim?"), std::string::npos) << msg;
}

TEST(Deck, BadValuesNameKeyValueAndRange) {
  std::string msg = error_of([] { Deck::from_text("train.steps = ten\n", "a.deck"); });
  EXPECT_NE(msg.find("a.deck:1"), std::string::npos) << msg;
  EXPECT_NE(msg.find("train.steps = 'ten'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("integer >= 0"), std::string::npos) << msg;
  msg = error_of([] { Deck::from_text("run.device = tpu\n", "a.deck"); });
  EXPECT_NE(msg.find("one of cpu|cuda"), std::string::npos) << msg;
  msg = error_of([] { Deck::from_text("optim.beta1 = 1.5\n", "a.deck"); });
  EXPECT_NE(msg.find("in [0, 1]"), std::string::npos) << msg;
  msg = error_of([] { Deck::from_text("model.tie_embeddings = maybe\n", "a.deck"); });
  EXPECT_NE(msg.find("true or false"), std::string::npos) << msg;
  msg = error_of([] { Deck::from_text("[train]\nsteps = 1\nsteps = 2\n", "a.deck"); });
  EXPECT_NE(msg.find("given twice"), std::string::npos) << msg;
  msg = error_of([] { Deck::from_text("[train\nsteps = 1\n", "a.deck"); });
  EXPECT_NE(msg.find("a.deck:1"), std::string::npos) << msg;
  msg = error_of([] { Deck::from_text("train.steps\n", "a.deck"); });
  EXPECT_NE(msg.find("expected 'key = value'"), std::string::npos) << msg;
  msg = error_of([] { Deck::from_file("/nonexistent/dir/deck.ini"); });
  EXPECT_NE(msg.find("/nonexistent/dir/deck.ini"), std::string::npos) << msg;
}

TEST(Deck, EnvironmentExpansion) {
  setenv("LCT_TEST_SCRATCH", "/tmp/scratch", 1);
  Deck d = Deck::from_text("run.out_dir = ${LCT_TEST_SCRATCH}/run1\n", "e.deck");
  EXPECT_EQ(d.get("run.out_dir"), "/tmp/scratch/run1");
  std::string msg = error_of([] { Deck::from_text("run.out_dir = ${LCT_SURELY_UNSET_VAR}/x\n", "e.deck"); });
  EXPECT_NE(msg.find("LCT_SURELY_UNSET_VAR"), std::string::npos) << msg;
  EXPECT_NE(msg.find("e.deck:1"), std::string::npos) << msg;
}

TEST(Deck, CommandLineOverridesWin) {
  Deck d = Deck::from_text("[train]\nsteps = 3\n", "o.deck", {"--train.steps=10", "--train.lr", "0.01"});
  EXPECT_EQ(d.get_int("train.steps"), 10);
  EXPECT_DOUBLE_EQ(d.get_float("train.lr"), 0.01);
  EXPECT_EQ(d.origin("train.steps"), "command line");
  EXPECT_NE(error_of([] { Deck::from_text("", "o.deck", {"--train.steps"}); }).find("has no value"), std::string::npos);
}

TEST(Deck, StagesOverrideAnyKey) {
  Deck d = Deck::from_text(
      "train.seq_len = 256\nrope.theta = auto\nrope.base_theta = 500000\nrope.base_context = 8192\n"
      "[stage1]\ntrain.seq_len = 65536\n[stage2]\ntrain.seq_len = 262144\nparallel.cp = 8\n",
      "s.deck", {"--stage2.train.steps=24"});
  ASSERT_EQ(d.num_stages(), 2);
  Deck s1 = resolved_stage(d, 1), s2 = resolved_stage(d, 2);
  EXPECT_EQ(s1.get("rope.theta"), "22443169");
  EXPECT_EQ(s2.get("rope.theta"), "283461213");
  EXPECT_EQ(s2.get_int("parallel.cp"), 8);
  EXPECT_EQ(s1.get_int("parallel.cp"), 1);
  EXPECT_EQ(s2.get_int("train.steps"), 24);
  std::string msg = error_of([] { Deck::from_text("[stage2]\ntrain.steps = 1\n", "g.deck"); });
  EXPECT_NE(msg.find("[stage1]"), std::string::npos) << msg;
  msg = error_of([] { Deck::from_text("[stage1]\ntrain.stepz = 1\n", "g.deck"); });
  EXPECT_NE(msg.find("did you mean train.steps?"), std::string::npos) << msg;
  // [stage01] is not a second name of [stage1] (its values silently replaced stage 1's).
  msg = error_of([] { Deck::from_text("[stage1]\ntrain.steps = 1\n[stage01]\ntrain.steps = 2\n", "g.deck"); });
  EXPECT_NE(msg.find("g.deck:4"), std::string::npos) << msg;
}

// A command-line value wins over the deck's [stageN] values of that key too (a user who runs a
// staged deck with --train.steps=2 gets 2 steps per stage); --stageN.key sets one stage.
TEST(Deck, CommandLineOverridesWinOverStageSections) {
  const char* text = "train.seq_len = 256\n[stage1]\ntrain.seq_len = 512\ntrain.steps = 9\n[stage2]\ntrain.seq_len = 1024\n";
  Deck d = Deck::from_text(text, "s.deck", {"--stage2.train.seq_len=2048", "--train.seq_len=128", "--train.steps=2"});
  ASSERT_EQ(d.num_stages(), 2);
  EXPECT_EQ(d.stage(1).get_int("train.seq_len"), 128);
  EXPECT_EQ(d.stage(1).get_int("train.steps"), 2);
  EXPECT_EQ(d.stage(1).origin("train.seq_len"), "command line");
  EXPECT_EQ(d.stage(2).get_int("train.seq_len"), 2048);  // the stage's own override, given on the command line
  EXPECT_EQ(d.stage(2).get_int("train.steps"), 2);
  Deck plain = Deck::from_text(text, "s.deck");
  EXPECT_EQ(plain.stage(1).get_int("train.seq_len"), 512);
  EXPECT_EQ(plain.stage(2).get_int("train.seq_len"), 1024);
}

// Boost keeps spaces inside a section header's brackets ("[ model ]" names " model "): an input
// error naming the line, not a disagreement between our scan and Boost's.
TEST(Deck, SectionHeaderWithSpacesIsAnInputError) {
  std::string msg = error_of([] { Deck::from_text("[ model ]\ndim = 64\n", "sp.deck"); });
  EXPECT_NE(msg.find("sp.deck:1"), std::string::npos) << msg;
  EXPECT_NE(msg.find("write [model]"), std::string::npos) << msg;
  msg = error_of([] { Deck::from_text("[ ]\ndim = 64\n", "sp.deck"); });
  EXPECT_NE(msg.find("sp.deck:1"), std::string::npos) << msg;
}

TEST(Deck, AByteOrderMarkIsNotPartOfTheFirstLine) {
  Deck d = Deck::from_text("\xEF\xBB\xBF[train]\nsteps = 7\n", "bom.deck");
  EXPECT_EQ(d.get_int("train.steps"), 7);
}

TEST(Deck, ADirectoryIsNotADeck) {
  std::string msg = error_of([] { Deck::from_file("/tmp"); });
  EXPECT_NE(msg.find("'/tmp' is a directory"), std::string::npos) << msg;
}

TEST(Deck, ScalingLawThetaIsExactInteger) {
  struct {
    int64_t T;
    const char* theta;
  } cases[] = {{65536, "22443169"}, {262144, "283461213"}, {524288, "1007391703"},
               {1048576, "3580165449"}, {4194304, "45218125210"}};
  for (auto c : cases) {
    Deck d = Deck::from_text("rope.theta = auto\n", "t.deck", {"--train.seq_len=" + std::to_string(c.T)});
    resolve_deck(d);
    EXPECT_EQ(d.get("rope.theta"), c.theta) << c.T;
  }
  EXPECT_EQ(format_number(3580165449.0), "3580165449");
  EXPECT_EQ(format_number(45218125210.0), "45218125210");
}

TEST(Deck, EffectiveDeckReproducesTheRun) {
  Deck d = Deck::from_text("[model]\ndim = 48\nn_heads = 4\nn_kv_heads = 2\n[train]\nsteps = 5\n", "r.deck");
  resolve_deck(d);
  const std::string eff = d.effective_text();
  EXPECT_NE(eff.find("train.steps = 5\n"), std::string::npos);
  EXPECT_NE(eff.find("model.head_dim = 12\n"), std::string::npos);
  EXPECT_NE(eff.find("model.ffn_dim = 128\n"), std::string::npos);
  Deck again = Deck::from_text(eff, "effective.deck");
  for (const auto& spec : deck_schema()) EXPECT_EQ(again.get(spec.key), d.get(spec.key)) << spec.key;
}

TEST(Deck, ModelShapeChecks) {
  Deck d = Deck::from_text("model.n_heads = 4\nmodel.n_kv_heads = 3\n", "m.deck");
  EXPECT_NE(error_of([&] { resolve_deck(d); }).find("model.n_kv_heads"), std::string::npos);
  Deck e = Deck::from_text("model.dim = 30\nmodel.n_heads = 4\n", "m.deck");
  EXPECT_NE(error_of([&] { resolve_deck(e); }).find("not divisible"), std::string::npos);
}

// parallel.cp_comm_type and parallel.hierarchical_cp_sizes (issue 19): U x R = cp, derived for
// p2p (1 x cp) and a2a (cp x 1), required for a2a+p2p; inconsistent sizes name both keys.
TEST(Deck, ContextParallelSplit) {
  auto split = [](const std::string& text) {
    Deck d = Deck::from_text(text, "cp.deck");
    resolve_deck(d);
    const Config c = config_from_deck(d);
    return std::make_pair(c.parallel.cp_a2a, c.parallel.cp_ring);
  };
  EXPECT_EQ(split("parallel.cp = 8\n"), std::make_pair(1, 8));
  EXPECT_EQ(split("parallel.cp = 8\nparallel.cp_comm_type = a2a\n"), std::make_pair(8, 1));
  EXPECT_EQ(split("parallel.cp = 8\nparallel.cp_comm_type = a2a+p2p\nparallel.hierarchical_cp_sizes = 2,4\n"),
            std::make_pair(2, 4));
  EXPECT_EQ(split("parallel.cp = 8\nparallel.hierarchical_cp_sizes = 1,8\n"), std::make_pair(1, 8));
  EXPECT_EQ(split("parallel.cp = 4\nparallel.cp_comm_type = a2a\nparallel.hierarchical_cp_sizes = 4,1\n"),
            std::make_pair(4, 1));
  for (const char* bad : {"parallel.cp = 8\nparallel.cp_comm_type = a2a+p2p\n",
                          "parallel.cp = 8\nparallel.cp_comm_type = a2a+p2p\nparallel.hierarchical_cp_sizes = 2,2\n",
                          "parallel.cp = 8\nparallel.cp_comm_type = a2a+p2p\nparallel.hierarchical_cp_sizes = 8\n",
                          "parallel.cp = 8\nparallel.hierarchical_cp_sizes = 2,4\n",
                          "parallel.cp = 8\nparallel.cp_comm_type = a2a\nparallel.hierarchical_cp_sizes = 2,4\n"}) {
    const std::string m = error_of([&] { split(bad); });
    EXPECT_NE(m.find("parallel.hierarchical_cp_sizes"), std::string::npos) << bad << ": " << m;
    EXPECT_NE(m.find("parallel.cp"), std::string::npos) << bad << ": " << m;
    EXPECT_NE(m.find("parallel.cp_comm_type"), std::string::npos) << bad << ": " << m;
  }
}

TEST(Schema, EveryDefaultIsValid) {
  for (const auto& spec : deck_schema()) {
    EXPECT_NO_THROW(validate_value(spec.key, spec.def, "schema")) << spec.key;
    EXPECT_FALSE(spec.doc.empty()) << spec.key;
  }
}

}  // namespace
}  // namespace lct
