// Helpers for the io tests: raw file writing, hand-made safetensors files, expected-error checks.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "core/error.h"

namespace lct::test {

inline void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), std::streamsize(bytes.size()));
}

inline std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

inline std::string u64_le(uint64_t v) {
  std::string s(8, '\0');
  for (int i = 0; i < 8; ++i) s[size_t(i)] = char((v >> (8 * i)) & 0xff);
  return s;
}

// A safetensors file from a header text and a data section.
inline std::string st_bytes(const std::string& header, const std::string& data) {
  return u64_le(header.size()) + header + data;
}
// The same with a chosen header length field.
inline std::string st_bytes_len(uint64_t len, const std::string& header, const std::string& data) {
  return u64_le(len) + header + data;
}

// Runs f and expects an InputError whose message contains every piece of `needles`.
template <class F>
void expect_input_error(F&& f, const std::vector<std::string>& needles) {
  try {
    f();
    ADD_FAILURE() << "expected an InputError containing \"" << needles.at(0) << "\"";
  } catch (const lct::InputError& e) {
    const std::string msg = e.what();
    for (const auto& n : needles) EXPECT_NE(msg.find(n), std::string::npos) << "\"" << n << "\" not in: " << msg;
  }
}

}  // namespace lct::test
