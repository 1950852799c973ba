// Fuzzing the safetensors reader (and the config.json reader): seeded random corruptions of small valid
// files must either open and read back exactly the values the file's bytes hold, or raise
// lct::InputError at open; never crash, hang or throw anything else. Each fuzz also requires minimum
// counts of both outcomes, so that a reader which rejects (or accepts) everything fails. Run it in a -DLCT_SANITIZE=ON build too (docs/hf-formats.md).
#include <gtest/gtest.h>

#include <sys/stat.h>
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <map>
#include <random>

#include "io/hf_config.h"
#include "io/safetensors.h"
#include "io_test_util.h"
#include "test_util.h"

namespace fs = std::filesystem;

namespace {

// Where the corrupted copies go: tmpfs when there is one. Truncating and rewriting a file thousands of
// times on ext4 makes the kernel flush each one (auto_da_alloc), which on a busy disk turns a 5 s test
// into minutes. Removed at the end.
struct FuzzDir {
  std::string path;
  explicit FuzzDir(const std::string& name) {
    struct stat st;
    if (::stat("/dev/shm", &st) == 0 && S_ISDIR(st.st_mode) && ::access("/dev/shm", W_OK) == 0) {
      path = "/dev/shm/lct_" + name + "_" + std::to_string(::getpid());
      std::error_code ec;
      fs::remove_all(path, ec);
      if (fs::create_directories(path, ec)) return;
    }
    path = lct::test::scratch_dir(name);
  }
  ~FuzzDir() {
    std::error_code ec;
    if (path.rfind("/dev/shm/", 0) == 0) fs::remove_all(path, ec);
  }
};

struct Outcome {
  int opened = 0, input_errors = 0;
  int64_t values_checked = 0;  // float elements compared with the file's bytes
};

// Element i of a tensor's raw little-endian bytes as float, decoded here from the dtype's definition
// (not by the reader's own conversion functions).
float decode(const std::string& bytes, uint64_t at, lct::StDType t, int64_t i) {
  switch (t) {
    case lct::StDType::F32: {
      float f;
      std::memcpy(&f, bytes.data() + at + 4 * i, 4);
      return f;
    }
    case lct::StDType::F64: {
      double d;
      std::memcpy(&d, bytes.data() + at + 8 * i, 8);
      return float(d);
    }
    case lct::StDType::BF16: {
      uint16_t h;
      std::memcpy(&h, bytes.data() + at + 2 * i, 2);
      const uint32_t u = uint32_t(h) << 16;
      float f;
      std::memcpy(&f, &u, 4);
      return f;
    }
    default: {  // F16: sign, 5-bit exponent (bias 15), 10-bit mantissa
      uint16_t h;
      std::memcpy(&h, bytes.data() + at + 2 * i, 2);
      const int e = (h >> 10) & 0x1f, m = h & 0x3ff;
      const double sign = (h & 0x8000) ? -1.0 : 1.0;
      if (e == 0x1f) return m ? std::nanf("") : float(sign * INFINITY);
      return float(sign * (e ? std::ldexp(1.0 + m / 1024.0, e - 15) : std::ldexp(m / 1024.0, -14)));
    }
  }
}

bool same_float(float a, float b) {
  if (std::isnan(a) || std::isnan(b)) return std::isnan(a) && std::isnan(b);
  return std::memcmp(&a, &b, 4) == 0;
}

bool float_dtype(lct::StDType t) {
  return t == lct::StDType::F32 || t == lct::StDType::F64 || t == lct::StDType::BF16 || t == lct::StDType::F16;
}

// Opens `path` and reads every tensor whole and a slice of it; every value read must be the one the
// file's bytes hold at the tensor's data_offsets. A file that opened has a valid header, so reading a
// float tensor must not fail; reading an integer tensor as float must be an InputError.
void open_and_read(const std::string& path, Outcome* o, const std::string& what) {
  try {
    auto r = lct::SafetensorsReader::open(path);
    std::map<std::string, std::string> files;  // shard path -> bytes
    for (const auto& t : r.tensors()) {
      const int64_t n = t.numel();
      if (!files.count(t.file)) files[t.file] = lct::test::read_bytes(t.file);
      const std::string& bytes = files[t.file];
      uint64_t hlen = 0;
      std::memcpy(&hlen, bytes.data(), 8);
      const uint64_t at = 8 + hlen + t.begin;
      EXPECT_EQ(t.end - t.begin, uint64_t(n) * lct::st_dtype_size(t.dtype)) << what << ": " << t.name;
      EXPECT_LE(8 + hlen + t.end, bytes.size()) << what << ": " << t.name;
      if (!float_dtype(t.dtype)) {
        float x;
        EXPECT_THROW(r.read_f32(t.name, 0, std::min<int64_t>(n, 1), &x), lct::InputError) << what << ": " << t.name;
        continue;
      }
      if (n > int64_t(1) << 20 || 8 + hlen + t.end > bytes.size()) continue;
      std::vector<float> buf(size_t(n) + 1);
      try {
        r.read_f32(t.name, 0, n, buf.data());
        for (int64_t i = 0; i < n; ++i)
          if (!same_float(buf[size_t(i)], decode(bytes, at, t.dtype, i))) {
            ADD_FAILURE() << what << ": " << t.name << "[" << i << "] read " << buf[size_t(i)] << ", the file holds "
                          << decode(bytes, at, t.dtype, i);
            return;
          }
        o->values_checked += n;
        if (n > 2) {
          r.read_f32(t.name, 1, n - 2, buf.data());
          for (int64_t i = 0; i < n - 2; ++i)
            if (!same_float(buf[size_t(i)], decode(bytes, at, t.dtype, i + 1))) {
              ADD_FAILURE() << what << ": " << t.name << " slice from 1, element " << i << " differs from the file";
              return;
            }
        }
      } catch (const lct::InputError& e) {
        ADD_FAILURE() << what << ": " << t.name << " (" << lct::st_dtype_name(t.dtype)
                      << ") opened but could not be read: " << e.what();
        return;
      }
      (void)r.info(t.name);
    }
    (void)r.metadata();
    ++o->opened;
  } catch (const lct::InputError&) {
    ++o->input_errors;
  } catch (const std::exception& e) {
    ADD_FAILURE() << what << ": threw a non-InputError: " << e.what();
  }
}

// One random corruption of `b`; `desc` says which, for failure messages.
void mutate(std::string& b, std::mt19937_64& rng, std::string* desc) {
  auto pick = [&](uint64_t n) { return n == 0 ? 0 : uint64_t(rng() % n); };
  uint64_t hlen = 0;
  if (b.size() >= 8) std::memcpy(&hlen, b.data(), 8);
  const uint64_t header_end = std::min<uint64_t>(b.size(), 8 + hlen);
  static const char kJsonChars[] = "{}[]\":,0123456789-+.eE \\nulltrueF";
  switch (rng() % 9) {
    case 0: {  // bit flip anywhere
      if (b.empty()) break;
      uint64_t i = pick(b.size());
      b[i] = char(b[i] ^ (1 << (rng() % 8)));
      *desc += " flip@" + std::to_string(i);
      break;
    }
    case 1:
    case 2: {  // bit flip or JSON-ish byte inside the header, where it matters most
      if (header_end <= 8) break;
      uint64_t i = 8 + pick(header_end - 8);
      if (rng() % 2)
        b[i] = char(b[i] ^ (1 << (rng() % 8)));
      else
        b[i] = kJsonChars[rng() % (sizeof(kJsonChars) - 1)];
      *desc += " hdr@" + std::to_string(i);
      break;
    }
    case 3: {  // truncate
      uint64_t n = pick(b.size() + 1);
      b.resize(n);
      *desc += " trunc" + std::to_string(n);
      break;
    }
    case 4: {  // extend with random bytes
      uint64_t n = 1 + pick(64);
      for (uint64_t i = 0; i < n; ++i) b.push_back(char(rng()));
      *desc += " ext" + std::to_string(n);
      break;
    }
    case 5: {  // header length edits
      if (b.size() < 8) break;
      uint64_t v;
      switch (rng() % 6) {
        case 0: v = hlen + 1 + pick(16); break;
        case 1: v = hlen - 1 - pick(std::min<uint64_t>(hlen, 16)); break;
        case 2: v = rng(); break;
        case 3: v = b.size() - 8 + pick(3) - 1; break;
        case 4: v = 100'000'000 + pick(3) - 1; break;
        default: v = pick(b.size()); break;
      }
      std::memcpy(&b[0], &v, 8);
      *desc += " len=" + std::to_string(v);
      break;
    }
    case 6: {  // digit edit: offsets and shapes are digits
      if (header_end <= 8) break;
      for (int tries = 0; tries < 32; ++tries) {
        uint64_t i = 8 + pick(header_end - 8);
        if (b[i] >= '0' && b[i] <= '9') {
          b[i] = char('0' + rng() % 10);
          *desc += " digit@" + std::to_string(i);
          break;
        }
      }
      break;
    }
    case 7: {  // delete or duplicate a header span
      if (header_end <= 9) break;
      uint64_t i = 8 + pick(header_end - 8), n = 1 + pick(12);
      n = std::min<uint64_t>(n, header_end - i);
      if (rng() % 2)
        b.erase(i, n);
      else
        b.insert(i, b.substr(i, n));
      *desc += " span@" + std::to_string(i);
      break;
    }
    default: {  // insert a long number
      if (header_end <= 8) break;
      uint64_t i = 8 + pick(header_end - 8);
      b.insert(i, std::string(1 + pick(25), char('0' + rng() % 10)));
      *desc += " num@" + std::to_string(i);
      break;
    }
  }
}

}  // namespace

TEST(SafetensorsFuzz, RandomCorruptionsOpenOrRaiseInputError) {
  const FuzzDir fd("st_fuzz");
  const std::string& dir = fd.path;
  // Seeds: a file we write (F32, odd shapes, scalar, empty) and one safetensors.torch.save_file wrote
  // (BF16, F16, F64, I64, metadata).
  std::vector<float> a(12), c(5);
  for (size_t i = 0; i < a.size(); ++i) a[i] = float(i) * 0.5f - 2;
  for (size_t i = 0; i < c.size(); ++i) c[i] = float(i);
  float s = 3;
  lct::write_safetensors(dir + "/seed", {{"a", {3, 4}, a.data()}, {"s", {}, &s}, {"e", {0, 2}, nullptr},
                                         {"c.weight", {5}, c.data()}},
                         lct::StDType::F32);
  const std::vector<std::string> seeds = {
      lct::test::read_bytes(dir + "/seed/model.safetensors"),
      lct::test::read_bytes(lct::test::data_dir() + "/io/tensors.safetensors")};

  const int iterations = 20000;
  std::mt19937_64 rng(20240601);
  Outcome o;
  const std::string path = dir + "/fuzz.safetensors";
  for (int it = 0; it < iterations; ++it) {
    std::string b = seeds[size_t(it) % seeds.size()];
    std::string desc = "iteration " + std::to_string(it) + ":";
    const int edits = 1 + int(rng() % 3);
    for (int e = 0; e < edits; ++e) mutate(b, rng, &desc);
    lct::test::write_bytes(path, b);
    open_and_read(path, &o, desc);
    if (::testing::Test::HasFailure()) break;
  }
  std::printf("safetensors fuzz: %d corruptions, %d opened and read, %d InputError, %lld values compared\n",
              iterations, o.opened, o.input_errors, (long long)o.values_checked);
  EXPECT_EQ(o.opened + o.input_errors, iterations);
  EXPECT_GT(o.input_errors, iterations / 4);  // the corruptions do reach the validation
  EXPECT_GT(o.opened, 100);                   // and some leave a valid file
  EXPECT_GE(o.values_checked, 10 * int64_t(o.opened));  // whose values were compared with the bytes
}

TEST(SafetensorsFuzz, CorruptIndex) {
  // A sharded set written by transformers; only the index text is corrupted.
  const std::string src = lct::test::data_dir() + "/io/tiny_sharded";
  const FuzzDir fd("st_fuzz_index");
  const std::string& dir = fd.path;
  for (const auto& e : fs::directory_iterator(src)) fs::copy_file(e.path(), dir + "/" + e.path().filename().string());
  const std::string idx_path = dir + "/model.safetensors.index.json";
  const std::string idx = lct::test::read_bytes(idx_path);
  std::mt19937_64 rng(7);
  Outcome o;
  const int iterations = 3000;
  static const char kChars[] = "{}[]\":,0123456789.-/ ";
  for (int it = 0; it < iterations; ++it) {
    std::string b = idx;
    for (int e = 0, n = 1 + int(rng() % 3); e < n; ++e) {
      uint64_t i = rng() % b.size();
      switch (rng() % 3) {
        case 0: b[i] = kChars[rng() % (sizeof(kChars) - 1)]; break;
        case 1: b.erase(i, 1 + rng() % 8); break;
        default: b[i] = char(b[i] ^ (1 << (rng() % 8))); break;
      }
      if (b.empty()) b = "{";
    }
    lct::test::write_bytes(idx_path, b);
    open_and_read(idx_path, &o, "index iteration " + std::to_string(it));
    if (::testing::Test::HasFailure()) break;
  }
  std::printf("index fuzz: %d corruptions, %d opened, %d InputError, %lld values compared\n", iterations, o.opened,
              o.input_errors, (long long)o.values_checked);
  EXPECT_EQ(o.opened + o.input_errors, iterations);
  EXPECT_GE(o.input_errors, 2500);  // the corruptions reach the index validation (2967 with these seeds)
  EXPECT_GE(o.opened, 15);          // and some leave a usable index, read and compared (33)
  EXPECT_GT(o.values_checked, 0);
}

TEST(HfConfigFuzz, CorruptConfigOpensOrRaisesInputError) {
  const FuzzDir fd("cfg_fuzz");
  const std::string& dir = fd.path;
  std::mt19937_64 rng(11);
  int ok = 0, bad = 0;
  const int iterations = 3000;
  static const char kChars[] = "{}[]\":,0123456789.-eE nultrfas";
  for (const std::string name : {"v4_llama3", "v5_yarn"}) {
    const std::string text = lct::test::read_bytes(lct::test::data_dir() + "/io/" + name + "/config.json");
    for (int it = 0; it < iterations; ++it) {
      std::string b = text;
      for (int e = 0, n = 1 + int(rng() % 3); e < n; ++e) {
        uint64_t i = rng() % b.size();
        if (rng() % 2)
          b[i] = kChars[rng() % (sizeof(kChars) - 1)];
        else
          b.erase(i, 1 + rng() % 6);
        if (b.empty()) b = "{";
      }
      lct::test::write_bytes(dir + "/config.json", b);
      try {
        lct::HfLlamaConfig c = lct::read_hf_config(dir);
        (void)lct::hf_config_to_json(c).dump();
        ++ok;
      } catch (const lct::InputError&) {
        ++bad;
      } catch (const std::exception& e) {
        ADD_FAILURE() << name << " iteration " << it << ": threw a non-InputError: " << e.what() << "\n" << b;
        return;
      }
    }
  }
  std::printf("config fuzz: %d corruptions, %d read, %d InputError\n", 2 * iterations, ok, bad);
  EXPECT_EQ(ok + bad, 2 * iterations);
  EXPECT_GE(bad, 3000);  // the corruptions reach the validation (4803 with these seeds)
  EXPECT_GE(ok, 500);     // and some still read (1197)
}
