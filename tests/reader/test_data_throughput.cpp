// Reader throughput from a warm page cache: tokens per second the loader delivers (samples of a
// long-context step, shuffled, through the prefetch queue), per format. Prints the figures that
// docs/data.md quotes; asserts only a floor far below any training consumption rate.
#include "core/timer.h"
#include "data/loader.h"
#include "data_test_util.h"

namespace lct {
namespace {

double measure(const std::string& path, int32_t eod, int64_t T, int64_t B, int steps) {
  DataOptions opt;
  opt.train = {path};
  opt.vocab_size = 128256;
  opt.eod_token = eod;
  opt.seed = 1;
  opt.prefetch = 0;  // the reading itself, on this thread
  DataLoader loader(opt, T, B, 0, 1);
  for (int s = 0; s < steps; ++s) loader.next_step();  // warm the page cache over the same range
  loader.seek(0);
  Timer t;
  int64_t tokens = 0;
  for (int s = 0; s < steps; ++s)
    for (const auto& smp : loader.next_step()) tokens += int64_t(smp.tokens.size());
  return double(tokens) / t.seconds();
}

TEST(DataThroughput, WarmCacheTokensPerSecond) {
  const std::string dir = test::scratch_dir("data_throughput");
  // 32M tokens in documents of ~1000 tokens (Llama-3 vocabulary, uint32 on disk).
  std::vector<Document> docs = test::random_docs(1, 32 * 1024, 500, 1500, 128000);
  WriterPlan plan = test::plan_for(128256, 128001);
  write_documents(dir + "/t.h5", TokenFormat::Hdf5, docs, plan);
  write_documents(dir + "/t.bin", TokenFormat::Llmc, docs, plan);
  write_documents(dir + "/t", TokenFormat::Megatron, docs, plan);
  docs.clear();
  const int64_t T = 32768, B = 8;
  for (const char* f : {"/t.bin", "/t.idx", "/t.h5"}) {
    const double tps = measure(dir + f, -1, T, B, 64);
    std::printf("[ reader  ] %-6s T=%lld: %.1f M tokens/s (one thread, warm cache, shuffled samples)\n", f,
                (long long)T, tps / 1e6);
    EXPECT_GT(tps, 1e6);
  }
  // Tiny documents stress the eod insertion path (a binary search per sample, one eod per 100 tokens).
  docs = test::random_docs(2, 64 * 1024, 50, 150, 128000);
  write_documents(dir + "/small.h5", TokenFormat::Hdf5, docs, plan);
  const double tps = measure(dir + "/small.h5", -1, T, B, 16);
  std::printf("[ reader  ] small-document hdf5 with eod insertion: %.1f M tokens/s\n", tps / 1e6);
  EXPECT_GT(tps, 1e6);
}

}  // namespace
}  // namespace lct
