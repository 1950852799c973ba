// Seeded random corruptions (bit flips, truncations, extensions) of a file of every format: each
// gives a correct read or an InputError, never a crash, a hang or an internal error. Run it in a
// sanitizer build (-DLCT_SANITIZE=ON) to catch out-of-bounds reads that happen not to crash.
// Iterations per format: LCT_DATA_FUZZ_ITERS (default 1000; the acceptance run uses 100000).
#include <hdf5.h>

#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <cstring>

#include "core/rng.h"
#include "data/data_files.h"
#include "data/loader.h"
#include "data/megatron_indexed.h"
#include "data/token_stream.h"
#include "data_test_util.h"

namespace lct {
namespace {

constexpr int32_t kVocab = 1000;

int64_t fuzz_iters() {
  const char* v = std::getenv("LCT_DATA_FUZZ_ITERS");
  return v ? std::atoll(v) : 1000;
}

// Decodes id i of a little-endian array the way the format's layout says, independently of the reader.
int64_t decode(const std::vector<uint8_t>& bytes, int64_t offset, TokenDType t, int64_t i) {
  int64_t v = 0;
  std::memcpy(&v, bytes.data() + offset + i * t.bytes, size_t(t.bytes));
  if (t.is_signed && t.bytes < 8 && ((v >> (t.bytes * 8 - 1)) & 1)) v -= int64_t(1) << (t.bytes * 8);
  return v;
}

struct Tally {
  int64_t reads = 0, errors = 0;
};

// Opens and reads everything of the (corrupted) file; checks a successful read against the bytes.
void read_and_check(const std::string& open_path, const std::string& data_path, bool use_loader, Tally* tally) {
  try {
    std::unique_ptr<TokenFile> f = open_token_file(open_path);
    const TokenFileInfo info = f->info();
    std::vector<int64_t> starts(size_t(info.num_documents + 1));
    f->read_document_starts(0, int64_t(starts.size()), starts.data());
    ASSERT_EQ(starts.front(), 0);
    ASSERT_EQ(starts.back(), info.num_tokens);
    for (size_t k = 1; k < starts.size(); ++k) ASSERT_LE(starts[k - 1], starts[k]);
    std::vector<int32_t> tokens(size_t(info.num_tokens));
    f->read_tokens(0, info.num_tokens, tokens.data(), kVocab);
    const auto bytes = test::file_bytes(data_path);
    ASSERT_LE(info.tokens_offset + info.num_tokens * info.dtype.bytes, int64_t(bytes.size()));
    for (int64_t i = 0; i < info.num_tokens; ++i)
      ASSERT_EQ(tokens[size_t(i)], decode(bytes, info.tokens_offset, info.dtype, i)) << "token " << i;
    std::vector<std::unique_ptr<TokenFile>> files;
    files.push_back(std::move(f));
    const int32_t eod = info.eod_token;
    TokenStream stream(std::move(files), eod, kVocab);
    ASSERT_EQ(stream.size(), info.num_tokens + (eod >= 0 ? info.num_documents : 0));
    std::vector<int32_t> all(size_t(stream.size()));
    std::vector<uint8_t> mask(size_t(stream.size()));
    stream.read(0, stream.size(), all.data(), mask.data());
    for (uint8_t m : mask) ASSERT_LE(m, 1);
    for (int32_t t : all) ASSERT_TRUE(t >= 0 && t < kVocab);
    if (use_loader && stream.size() >= 9) {
      DataOptions opt;
      opt.train = {open_path};
      opt.vocab_size = kVocab;
      opt.prefetch = 1;
      DataLoader loader(opt, 8, 2, 0, 1);
      for (int s = 0; s < 3; ++s) ASSERT_EQ(loader.next_step().size(), 2u);
    }
    ++tally->reads;
  } catch (const InputError& e) {
    // Names the damaged file by its path (the folder's name alone, which holds "data", does not count).
    const std::string msg = e.what();
    ASSERT_TRUE(msg.find(open_path) != std::string::npos || msg.find(data_path) != std::string::npos)
        << "the error does not name " << open_path << " or " << data_path << ": " << msg;
    ++tally->errors;
  }
}

// One corruption of `b`: flip 1-4 bits (half of them in the first 1 KiB, where headers live),
// truncate, or extend with random bytes.
std::string corrupt(std::vector<uint8_t>& b, Rng& rng) {
  const uint64_t kind = rng.below(4);
  if (kind <= 1) {
    const int flips = 1 + int(rng.below(4));
    for (int i = 0; i < flips; ++i) {
      const uint64_t span = (rng.below(2) && b.size() > 1024) ? 1024 : b.size();
      b[size_t(rng.below(span))] ^= uint8_t(1u << rng.below(8));
    }
    return "flip";
  }
  if (kind == 2) {
    b.resize(size_t(rng.below(b.size())));
    return "truncate";
  }
  const size_t n = 1 + size_t(rng.below(64));
  for (size_t i = 0; i < n; ++i) b.push_back(uint8_t(rng.next_u64()));
  return "extend";
}

std::string fuzz_dir(const std::string& name) {
  struct stat st{};
  if (::stat("/dev/shm", &st) == 0 && S_ISDIR(st.st_mode)) {
    const std::string d = str("/dev/shm/lct_", name, "_", ::getpid());
    std::filesystem::remove_all(d);
    std::filesystem::create_directories(d);
    return d;
  }
  return test::scratch_dir(name);
}

class Fuzz : public ::testing::Test {
 protected:
  // HDF5 1.10 leaks an internal reference when H5Dopen2 fails on a damaged object header; when the
  // library shuts down (at MPI_Finalize in this MPI-initialised binary) it then prints "HDF5: infinite
  // loop closing library". Harmless; LeakSanitizer is told to ignore HDF5's leaks (lsan_hdf5.supp).

  void run(TokenFormat format) {
    // The corrupted copies go to tmpfs when there is one: rewriting a file in place on ext4 flushes
    // it to disk each time (auto_da_alloc), which would make the run I/O-bound.
    const std::string dir = fuzz_dir(str("data_fuzz_", format_name(format)));
    const std::string orig = test::scratch_dir(str("data_fuzz_", format_name(format), "_orig"));
    const bool mask = format == TokenFormat::Hdf5;
    const auto docs = test::random_docs(42, 6, 0, 40, kVocab - 1, mask);
    const std::string name = format == TokenFormat::Hdf5 ? "/f.h5" : format == TokenFormat::Llmc ? "/f.bin" : "/f";
    write_documents(orig + name, format, docs, test::plan_for(kVocab, kVocab - 1));
    std::vector<std::string> parts = {name};
    if (format == TokenFormat::Megatron) parts = {"/f.idx", "/f.bin"};
    std::vector<std::vector<uint8_t>> originals;
    for (const auto& p : parts) originals.push_back(test::file_bytes(orig + p));
    const int64_t iters = fuzz_iters();
    Tally tally;
    for (int64_t it = 0; it < iters; ++it) {
      Rng rng(0xf022, uint64_t(it) * 3 + uint64_t(format));
      const size_t which = size_t(rng.below(parts.size()));
      for (size_t i = 0; i < parts.size(); ++i) {
        auto b = originals[i];
        if (i == which) corrupt(b, rng);
        test::write_bytes(dir + parts[i], b);
      }
      const std::string open_path = format == TokenFormat::Megatron ? dir + "/f.idx" : dir + name;
      const std::string data_path = format == TokenFormat::Megatron ? dir + "/f.bin" : dir + name;
      try {
        read_and_check(open_path, data_path, it % 97 == 0, &tally);
      } catch (const std::exception& e) {
        FAIL() << format_name(format) << " iteration " << it << ": not an InputError: " << e.what();
      }
      // Nothing of a damaged file may stay open inside the HDF5 library.
      const ssize_t open_ids = H5Fget_obj_count(H5F_OBJ_ALL, H5F_OBJ_ALL);
      if (open_ids != 0) FAIL() << format_name(format) << " iteration " << it << ": " << open_ids << " HDF5 ids left open";
      if (::testing::Test::HasFatalFailure()) {
        ADD_FAILURE() << format_name(format) << " iteration " << it << " (seed stream " << it * 3 + int(format) << ")";
        return;
      }
    }
    std::printf("[ fuzz    ] %s: %lld corruptions: %lld read correctly, %lld InputError\n", format_name(format),
                (long long)iters, (long long)tally.reads, (long long)tally.errors);
    EXPECT_EQ(tally.reads + tally.errors, iters);
    // Both outcomes in numbers (at 1000: llmc 424 / 576, megatron 101 / 899, hdf5 292 / 708), so a
    // reader that rejects everything, or accepts everything, fails.
    EXPECT_GE(tally.reads, iters / 20);
    EXPECT_GE(tally.errors, iters / 4);
    if (dir.rfind("/dev/shm/", 0) == 0) std::filesystem::remove_all(dir);
  }
};

TEST_F(Fuzz, Llmc) { run(TokenFormat::Llmc); }
TEST_F(Fuzz, Megatron) { run(TokenFormat::Megatron); }
TEST_F(Fuzz, Hdf5) { run(TokenFormat::Hdf5); }

}  // namespace
}  // namespace lct
