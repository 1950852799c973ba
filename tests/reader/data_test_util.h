// Helpers for the data-module tests: fixtures, small token files written on the fly, file bytes.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/error.h"
#include "data/prepare.h"
#include "test_util.h"

namespace lct::test {

inline std::string formats_dir() { return data_dir() + "/formats"; }

inline nlohmann::json expected_fixtures() {
  std::ifstream in(formats_dir() + "/expected.json");
  EXPECT_TRUE(bool(in)) << "missing tests/data/formats/expected.json (tools/make_data_fixtures.py)";
  return nlohmann::json::parse(in);
}

inline std::vector<uint8_t> file_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

inline void write_bytes(const std::string& path, const std::vector<uint8_t>& b) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(b.data()), std::streamsize(b.size()));
}

// Documents of ids below vocab, seeded, lengths in [min_len, max_len].
inline std::vector<Document> random_docs(uint64_t seed, int n, int min_len, int max_len, int32_t vocab,
                                         bool with_mask = false) {
  uint64_t x = seed * 0x9e3779b97f4a7c15ull + 1;
  auto next = [&] {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    return x;
  };
  std::vector<Document> docs(static_cast<size_t>(n));
  for (auto& d : docs) {
    const int len = min_len + int(next() % uint64_t(max_len - min_len + 1));
    for (int i = 0; i < len; ++i) d.tokens.push_back(int32_t(next() % uint64_t(vocab)));
    if (with_mask)
      for (int i = 0; i < len; ++i) d.loss_mask.push_back(uint8_t(next() % 3 != 0));
  }
  return docs;
}

inline WriterPlan plan_for(int64_t vocab, int32_t eod, const std::string& tokenizer = "test") {
  WriterPlan p;
  p.vocab_size = vocab;
  p.eod_token = eod;
  p.tokenizer = tokenizer;
  p.dtype = {0, false};
  return p;
}

// Runs fn and expects an InputError whose message contains every piece of `needles`.
template <class Fn>
void expect_input_error(Fn fn, const std::vector<std::string>& needles) {
  try {
    fn();
    ADD_FAILURE() << "expected an InputError containing '" << (needles.empty() ? "" : needles[0]) << "'";
  } catch (const InputError& e) {
    for (const auto& n : needles)
      EXPECT_NE(std::string(e.what()).find(n), std::string::npos) << "message: " << e.what() << "\nmissing: " << n;
  }
}

}  // namespace lct::test
