// The sampler: sample definition, per-epoch permutations, dp slicing (the union of the dp replicas'
// streams is the dp = 1 stream), resume from a cursor at any dp and prefetch depth, loss masks.
#include <algorithm>
#include <set>

#include "data/sample_order.h"
#include "sampler_dataset.h"

namespace lct {
namespace {

using test::same_samples;
using test::sampler_options;

class Sampler : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = test::scratch_dir("data_sampler");
    test::write_sampler_dataset(dir_, &stream_, &mask_);
  }
  std::string dir_;
  std::vector<int32_t> stream_;
  std::vector<uint8_t> mask_;
};

TEST(SampleOrder, EveryEpochIsAPermutation) {
  for (int64_t n : {1, 2, 3, 5, 16, 17, 100, 1000, 4097}) {
    for (uint64_t seed : {0ull, 7ull}) {
      SampleOrder order(n, seed, true);
      std::vector<int64_t> e0, e1;
      for (int64_t g = 0; g < n; ++g) e0.push_back(order.sample_at(g));
      for (int64_t g = n; g < 2 * n; ++g) e1.push_back(order.sample_at(g));
      std::vector<int64_t> sorted = e0;
      std::sort(sorted.begin(), sorted.end());
      for (int64_t i = 0; i < n; ++i) ASSERT_EQ(sorted[size_t(i)], i) << "n " << n;
      std::sort(e1.begin(), e1.end());
      EXPECT_EQ(e1, sorted);
      if (n >= 100) {  // shuffled: a different order in the next epoch and for another seed
        std::vector<int64_t> again;
        for (int64_t g = n; g < 2 * n; ++g) again.push_back(order.sample_at(g));
        EXPECT_NE(again, e0);
        SampleOrder other(n, seed + 1, true);
        int same = 0;
        for (int64_t g = 0; g < n; ++g) same += other.sample_at(g) == e0[size_t(g)];
        EXPECT_LT(same, n / 10);
        int fixed = 0;
        for (int64_t g = 0; g < n; ++g) fixed += e0[size_t(g)] == g;
        EXPECT_LT(fixed, n / 10);
      }
    }
  }
  SampleOrder plain(10, 3, false);
  for (int64_t g = 0; g < 30; ++g) EXPECT_EQ(plain.sample_at(g), g % 10);
}

TEST_F(Sampler, SampleIsAWindowOfTheDocumentStream) {
  DataOptions opt = sampler_options(dir_, 0);
  opt.shuffle = false;
  const int64_t T = 50;
  DataLoader loader(opt, T, 3, 0, 1);
  EXPECT_EQ(loader.total_tokens(), int64_t(stream_.size()));
  EXPECT_EQ(loader.samples_per_epoch(), (int64_t(stream_.size()) - 1) / T);
  EXPECT_EQ(loader.eod_token(), test::kSamplerEod);
  EXPECT_TRUE(loader.has_loss_mask());
  for (int64_t g = 0; g < loader.samples_per_epoch(); ++g) {
    const Sample s = loader.read_sample(g);
    ASSERT_EQ(s.tokens, std::vector<int32_t>(stream_.begin() + g * T, stream_.begin() + g * T + T + 1)) << g;
    ASSERT_EQ(s.loss_mask, std::vector<uint8_t>(mask_.begin() + g * T, mask_.begin() + g * T + T + 1)) << g;
  }
  // Any range of the stream, across files and documents.
  for (int64_t b = 0; b + 300 <= int64_t(stream_.size()); b += 37) {
    std::vector<int32_t> t(300);
    std::vector<uint8_t> m(300);
    loader.stream().read(b, 300, t.data(), m.data());
    ASSERT_EQ(t, std::vector<int32_t>(stream_.begin() + b, stream_.begin() + b + 300)) << b;
    ASSERT_EQ(m, std::vector<uint8_t>(mask_.begin() + b, mask_.begin() + b + 300)) << b;
  }
  // Steps of 3 in order; global index g of epoch 1 is sample g - n again.
  const int64_t n = loader.samples_per_epoch();
  loader.seek(n - 1);
  const auto step = loader.next_step();
  EXPECT_EQ(step[0].tokens, loader.read_sample(n - 1).tokens);
  EXPECT_EQ(step[1].tokens, loader.read_sample(0).tokens);
  EXPECT_EQ(step[2].tokens, loader.read_sample(1).tokens);
  EXPECT_EQ(loader.cursor(), n + 2);
}

TEST_F(Sampler, DpReplicasTogetherGiveTheDp1Stream) {
  const int64_t T = 24, B = 8;
  DataLoader ref(sampler_options(dir_, 2), T, B, 0, 1);
  const int64_t n = ref.samples_per_epoch();
  const int steps = int(2 * n / B) + 3;  // crosses two epoch boundaries, mid-step
  ASSERT_NE(n % B, 0);
  std::vector<std::vector<Sample>> want;
  for (int s = 0; s < steps; ++s) want.push_back(ref.next_step());
  std::set<std::vector<int32_t>> epoch0;
  for (int64_t g = 0; g < n; ++g) epoch0.insert(want[size_t(g / B)][size_t(g % B)].tokens);
  EXPECT_EQ(int64_t(epoch0.size()), n) << "an epoch visits each sample once";
  for (int dp : {2, 4}) {
    std::vector<std::unique_ptr<DataLoader>> ranks;
    for (int r = 0; r < dp; ++r)
      ranks.push_back(std::make_unique<DataLoader>(sampler_options(dir_, r % 3), T, B, r, dp));
    for (int s = 0; s < steps; ++s) {
      std::vector<Sample> joined;
      for (int r = 0; r < dp; ++r) {
        auto part = ranks[size_t(r)]->next_step();
        EXPECT_EQ(int64_t(part.size()), B / dp);
        joined.insert(joined.end(), part.begin(), part.end());
      }
      ASSERT_TRUE(same_samples(joined, want[size_t(s)])) << "dp " << dp << " step " << s;
    }
  }
}

TEST_F(Sampler, ResumesFromACursorAtAnyDpAndPrefetchDepth) {
  const int64_t T = 31, B = 4;
  DataLoader a(sampler_options(dir_, 3), T, B, 0, 1);
  for (int s = 0; s < 7; ++s) a.next_step();
  const int64_t c = a.cursor();
  EXPECT_EQ(c, 7 * B);
  const auto next = a.next_step();
  const auto after = a.next_step();
  for (int dp : {1, 2, 4}) {
    for (int prefetch : {2, 5}) {
      std::vector<Sample> joined, joined_after;
      for (int r = 0; r < dp; ++r) {
        DataLoader b(sampler_options(dir_, prefetch), T, B, r, dp);
        b.next_step();  // prefetch has run ahead from 0; seek drops it
        b.seek(c);
        EXPECT_EQ(b.cursor(), c);
        auto part = b.next_step();
        joined.insert(joined.end(), part.begin(), part.end());
        part = b.next_step();
        joined_after.insert(joined_after.end(), part.begin(), part.end());
      }
      EXPECT_TRUE(same_samples(joined, next)) << "dp " << dp << " prefetch " << prefetch;
      EXPECT_TRUE(same_samples(joined_after, after)) << "dp " << dp << " prefetch " << prefetch;
    }
  }
  // A cursor that is not a multiple of the step, and one far into a later epoch.
  for (int64_t cur : {int64_t(5), 1000 * a.samples_per_epoch() + 3}) {
    DataLoader b(sampler_options(dir_, 2), T, B, 0, 1);
    b.seek(cur);
    const auto step = b.next_step();
    for (int64_t j = 0; j < B; ++j) EXPECT_EQ(step[size_t(j)].tokens, a.read_sample(cur + j).tokens);
  }
}

TEST_F(Sampler, SeedAndShuffleChangeTheOrderOnly) {
  const int64_t T = 40, B = 1;  // one epoch is a whole number of steps
  DataLoader a(sampler_options(dir_, 2, 1), T, B, 0, 1), b(sampler_options(dir_, 2, 2), T, B, 0, 1);
  std::multiset<std::vector<int32_t>> sa, sb;
  bool differ = false;
  for (int64_t s = 0; s < a.samples_per_epoch() / B; ++s) {
    auto x = a.next_step(), y = b.next_step();
    differ = differ || !same_samples(x, y);
    for (auto& v : x) sa.insert(v.tokens);
    for (auto& v : y) sb.insert(v.tokens);
  }
  EXPECT_TRUE(differ);
  EXPECT_EQ(sa, sb);
}

TEST_F(Sampler, FilesWithoutMaskGiveEmptyMasksAndExplicitEodJoinsShards) {
  DataOptions opt;
  opt.train = {test::formats_dir() + "/llmc_gpt2.bin", test::formats_dir() + "/llmc_llama3.bin"};
  opt.prefetch = 1;
  DataLoader plain(opt, 16, 2, 0, 1);
  EXPECT_EQ(plain.eod_token(), -1);
  for (const auto& s : plain.next_step()) EXPECT_TRUE(s.loss_mask.empty());
  const int64_t n_plain = plain.total_tokens();
  opt.eod_token = 5;  // set explicitly: follows each shard (one document each)
  opt.shuffle = false;
  DataLoader joined(opt, 16, 2, 0, 1);
  EXPECT_EQ(joined.total_tokens(), n_plain + 2);
  const int64_t n0 = joined.stream().file(0).info().num_tokens;
  int32_t t = -1;
  joined.stream().read(n0, 1, &t, nullptr);
  EXPECT_EQ(t, 5);
}

TEST_F(Sampler, ConflictingEodAttributesNeedAnExplicitChoice) {
  write_documents(dir_ + "/d_other.h5", TokenFormat::Hdf5, test::random_docs(9, 3, 5, 30, 600), test::plan_for(700, 600));
  test::expect_input_error([&] { DataLoader(sampler_options(dir_, 0), 16, 2, 0, 1); }, {"d_other.h5", "eod_token 600", "699"});
  DataOptions opt = sampler_options(dir_, 0);
  opt.eod_token = 3;
  DataLoader loader(opt, 16, 2, 0, 1);
  EXPECT_EQ(loader.eod_token(), 3);
}

}  // namespace
}  // namespace lct
