// Data blends (data/blend.h): Megatron's "WEIGHT PATH" parts, each dataset's share of the samples
// (within 0.02 of its weight over 10,000 samples, and within one sample at every prefix), samples
// drawn from the right files, the same union at any dp, resuming mid-run gives the same next
// samples bit for bit, and the bad inputs as one clear InputError each.
#include <gtest/gtest.h>

#include <cmath>

#include "data/blend.h"
#include "data/loader.h"
#include "data_test_util.h"

namespace lct::test {
namespace {

// Three datasets whose ids lie in disjoint ranges (so a sample tells which file it came from);
// the third carries a loss mask.
class Blend : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = scratch_dir("data_blend");
    for (int d = 0; d < 3; ++d) {
      std::vector<Document> docs = random_docs(uint64_t(d + 1), 40, 50, 300, 100, d == 2);
      for (auto& doc : docs)
        for (auto& t : doc.tokens) t += 100 * d;
      write_documents(path(d), TokenFormat::Hdf5, docs, plan_for(300, -1));
    }
  }
  std::string path(int d) const { return dir_ + "/set" + std::to_string(d) + ".h5"; }
  DataOptions opts(const std::vector<std::string>& train, int prefetch = 0) const {
    DataOptions o;
    o.train = train;
    o.vocab_size = 300;
    o.seed = 17;
    o.prefetch = prefetch;
    return o;
  }
  std::vector<std::string> blend() const {
    return {"0.5 " + path(0), "0.3 " + path(1), "0.2 " + path(2)};
  }
  std::string dir_;
};

TEST(BlendParse, WeightsFirstAsMegatronWritesThem) {
  const auto parts = parse_blend({"0.7 web/*.bin", "0.3 chat.h5 more.h5"});
  ASSERT_EQ(parts.size(), 2u);
  EXPECT_DOUBLE_EQ(parts[0].weight, 0.7);
  EXPECT_EQ(parts[0].paths, std::vector<std::string>{"web/*.bin"});
  EXPECT_EQ(parts[1].paths, (std::vector<std::string>{"chat.h5", "more.h5"}));
  const auto plain = parse_blend({"a.bin", "b/"});
  ASSERT_EQ(plain.size(), 1u);
  EXPECT_EQ(plain[0].paths, (std::vector<std::string>{"a.bin", "b/"}));
}

TEST(BlendParse, BadInputsAreOneClearError) {
  expect_input_error([] { parse_blend({"0.7x web.bin", "0.3 chat.h5"}); }, {"data.train", "'0.7x'", "not a positive number"});
  expect_input_error([] { parse_blend({"0.7 web.bin", "0.3"}); }, {"data.train", "'0.3'", "names no file"});
  expect_input_error([] { parse_blend({"web.bin", "0.3"}); }, {"'0.3'", "names no file"});
  expect_input_error([] { parse_blend({"0.7 web.bin", "chat.h5"}); }, {"'chat.h5'", "no weight"});
  expect_input_error([] { parse_blend({"-1 web.bin", "2 chat.h5"}); }, {"'-1'", "not a positive number"});
}

// Weights whose sum overflows a double still set the shares (they normalised to zeros, and the
// picker then took the datasets in turn).
TEST(BlendOrderTest, HugeWeightsKeepTheirShares) {
  const BlendOrder order({1e308, 1e308, 5e307});
  std::vector<int64_t> counts(3, 0);
  for (int64_t g = 0; g < 500; ++g) counts[size_t(order.at(g).first)]++;
  EXPECT_NEAR(double(counts[2]) / 500, 0.2, 0.01);
  EXPECT_NEAR(double(counts[0]) / 500, 0.4, 0.01);
}

TEST(BlendOrderTest, EveryPrefixHoldsTheSharesWithinOneSample) {
  const BlendOrder order({5, 3, 2});
  std::vector<int64_t> n(3, 0);
  for (int64_t g = 0; g < 20000; ++g) {
    const auto [d, j] = order.at(g);
    EXPECT_EQ(j, n[size_t(d)]) << "each dataset's samples in order";
    ++n[size_t(d)];
    for (int k = 0; k < 3; ++k)
      ASSERT_LE(std::abs(double(n[size_t(k)]) - double(g + 1) * (k == 0 ? 0.5 : k == 1 ? 0.3 : 0.2)), 1.0) << g;
  }
  // Random access far ahead equals the sequence (counts are kept every 4096 samples).
  const BlendOrder fresh({5, 3, 2});
  for (int64_t g : {int64_t(19999), int64_t(4096), int64_t(12345), int64_t(0)}) EXPECT_EQ(fresh.at(g), order.at(g));
}

TEST_F(Blend, SharesFollowTheWeightsAndSamplesComeFromTheirFiles) {
  DataLoader loader(opts(blend()), 64, 100, 0, 1);
  EXPECT_EQ(loader.num_datasets(), 3u);
  EXPECT_TRUE(loader.has_loss_mask());
  std::vector<int64_t> n(3, 0);
  for (int64_t g = 0; g < 10000; ++g) {
    const Sample s = loader.read_sample(g);
    ++n[size_t(s.dataset)];
    for (int32_t t : s.tokens) ASSERT_EQ(t / 100, s.dataset) << "sample " << g << " read from another dataset's file";
    if (s.dataset != 2)
      for (uint8_t m : s.loss_mask) ASSERT_EQ(m, 1) << "a dataset without a mask trains on every token";
  }
  const double w[3] = {0.5, 0.3, 0.2};
  for (int d = 0; d < 3; ++d) {
    const double share = double(n[size_t(d)]) / 10000.0;
    EXPECT_NEAR(share, w[d], 0.02) << "dataset " << d;
    std::printf("dataset %d: weight %.2f, share %.4f over 10,000 samples\n", d, w[d], share);
  }
}

TEST_F(Blend, ResumingGivesTheSameNextSamples) {
  DataLoader a(opts(blend(), 2), 64, 8, 0, 1);
  for (int s = 0; s < 7; ++s) a.next_step();
  const int64_t cursor = a.cursor();
  const std::vector<Sample> want = a.next_step();
  DataLoader b(opts(blend(), 2), 64, 8, 0, 1);
  b.seek(cursor);
  const std::vector<Sample> got = b.next_step();
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    EXPECT_EQ(got[i].tokens, want[i].tokens) << i;
    EXPECT_EQ(got[i].loss_mask, want[i].loss_mask) << i;
    EXPECT_EQ(got[i].dataset, want[i].dataset) << i;
  }
}

TEST_F(Blend, TheSameUnionAtAnyDp) {
  DataLoader one(opts(blend()), 64, 8, 0, 1);
  DataLoader r0(opts(blend()), 64, 8, 0, 2), r1(opts(blend()), 64, 8, 1, 2);
  for (int s = 0; s < 5; ++s) {
    const auto all = one.next_step(), a = r0.next_step(), b = r1.next_step();
    for (size_t i = 0; i < 4; ++i) {
      EXPECT_EQ(a[i].tokens, all[i].tokens);
      EXPECT_EQ(b[i].tokens, all[4 + i].tokens);
    }
  }
}

TEST_F(Blend, AnUnweightedListIsTheOldSampler) {
  // One dataset: seed and order as before blends (the trainer's existing runs are unchanged).
  DataLoader joined(opts({path(0), path(1)}), 64, 8, 0, 1);
  EXPECT_EQ(joined.num_datasets(), 1u);
  SampleOrder order(joined.samples_per_epoch(), 17, true);
  for (int64_t g = 0; g < 20; ++g) {
    const Sample s = joined.read_sample(g);
    std::vector<int32_t> t(65);
    joined.stream().read(order.sample_at(g) * 64, 65, t.data(), nullptr);
    EXPECT_EQ(s.tokens, t);
  }
}

// The end-of-document token is the one the parts agree on, whichever part names it: a first part
// without an eod_token attribute must not hide the second part's (it did: the loader took part 1's).
TEST_F(Blend, TheEndOfDocumentTokenComesFromAnyPart) {
  std::vector<Document> docs = random_docs(9, 40, 50, 250, 100, false);
  write_documents(dir_ + "/with_eod.h5", TokenFormat::Hdf5, docs, plan_for(300, 299));
  for (const auto& order : {std::vector<std::string>{"1 " + path(0), "1 " + dir_ + "/with_eod.h5"},
                            std::vector<std::string>{"1 " + dir_ + "/with_eod.h5", "1 " + path(0)}}) {
    DataLoader l(opts(order), 64, 8, 0, 1);
    EXPECT_EQ(l.eod_token(), 299) << order[0];
  }
}

TEST_F(Blend, AGlobThatMatchesNothingNamesThePart) {
  expect_input_error([&] { DataLoader l(opts({"0.5 " + path(0), "0.5 " + dir_ + "/none*.h5"}), 64, 8, 0, 1); },
                     {"none*.h5"});
}

}  // namespace
}  // namespace lct::test
