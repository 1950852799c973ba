// A 4 GiB llm.c shard (sparse: a header and a hole) feeds a training step with peak RSS < 256 MiB:
// the loader reads only the byte ranges of the step's samples.
#include <fcntl.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "core/memory.h"
#include "data/llmc_shard.h"
#include "data/loader.h"
#include "data_test_util.h"

namespace lct {
namespace {

TEST(DataSparse, FourGiBShardStepUnder256MiB) {
  const std::string dir = test::scratch_dir("data_sparse");
  const std::string path = dir + "/sparse_4gib.bin";
  const int64_t tokens = (int64_t(4) << 30) / 4;  // uint32 ids: 2^30 tokens = 4 GiB of data
  {
    int fd = ::open(path.c_str(), O_CREAT | O_TRUNC | O_WRONLY, 0644);
    ASSERT_GE(fd, 0);
    std::vector<int32_t> header(256, 0);
    header[0] = kLlmcMagicLlama3, header[1] = kLlmcVersionLlama3, header[2] = int32_t(tokens);
    ASSERT_EQ(::write(fd, header.data(), 1024), 1024);
    ASSERT_EQ(::ftruncate(fd, 1024 + tokens * 4), 0);  // a hole: reads as zeros, takes no disk
    // Some real ids at the far end, so the step reads data, not only the hole.
    std::vector<uint32_t> tail(2 * 65536);
    for (size_t i = 0; i < tail.size(); ++i) tail[i] = uint32_t(i % 128000);
    ASSERT_EQ(::pwrite(fd, tail.data(), tail.size() * 4, 1024 + (tokens - int64_t(tail.size())) * 4), ssize_t(tail.size() * 4));
    ::close(fd);
  }
  const int64_t before = peak_rss_bytes();
  ASSERT_GT(before, int64_t(1) << 20) << "peak RSS unreadable (" << before << "): the bound below would hold vacuously";
  DataOptions opt;
  opt.train = {path};
  opt.vocab_size = 128256;
  opt.seed = 5;
  opt.prefetch = 2;
  const int64_t T = 65536, B = 16;  // a long-context step: 16 x 65537 tokens = 4 MiB of int32
  DataLoader loader(opt, T, B, 0, 1);
  EXPECT_EQ(loader.total_tokens(), tokens);
  EXPECT_EQ(loader.samples_per_epoch(), (tokens - 1) / T);
  loader.seek(loader.samples_per_epoch() - B / 2);  // a step that ends an epoch and begins the next
  for (int s = 0; s < 3; ++s) {
    const auto step = loader.next_step();
    ASSERT_EQ(int64_t(step.size()), B);
    for (const auto& smp : step) ASSERT_EQ(int64_t(smp.tokens.size()), T + 1);
  }
  // The far end of the file (the last sample) holds the real ids.
  std::vector<int32_t> last(size_t(T + 1));
  loader.stream().read((loader.samples_per_epoch() - 1) * T, T + 1, last.data(), nullptr);
  int64_t nonzero = 0;
  for (int32_t t : last) nonzero += t != 0;
  EXPECT_GT(nonzero, 1000);
  const int64_t peak = peak_rss_bytes();
  std::printf("[ sparse  ] 4 GiB shard: peak RSS %.1f MiB (%.1f MiB before the loader)\n", double(peak) / (1 << 20),
              double(before) / (1 << 20));
  // The loader holds B x (T + 1) int32 samples (4 MiB) and prefetches two more steps; the peak
  // must show at least half of one step (pages the process already had, e.g. freed test buffers,
  // can hold the rest: the peak rose by 3.9 to 6.3 MiB in repeated runs).
  EXPECT_GE(peak, before + (int64_t(2) << 20)) << "peak RSS below what the loader holds: not a measurement";
  EXPECT_LT(peak, int64_t(256) << 20);
  std::remove(path.c_str());
}

}  // namespace
}  // namespace lct
