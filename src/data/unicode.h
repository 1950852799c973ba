// UTF-8 decoding and the code point classes the tokenizer's pre-tokenizer patterns use.
//
// Decoding is lenient: a byte that does not start a valid, complete, shortest-form UTF-8 sequence
// becomes one code unit of its own (kInvalidCp, class kOther), so every input byte lands in exactly one
// unit and nothing is lost; the byte-level BPE then encodes that raw byte like any other.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace lct {

enum class CpClass : uint8_t {
  kOther = 0,   // none of the below: punctuation, symbols, marks, controls, unassigned, invalid bytes
  kLetter = 1,  // \p{L}
  kNumber = 2,  // \p{N}
  kSpace = 3,   // \s: the Unicode White_Space property
};

// One decoded unit of a UTF-8 string.
struct CodeUnit {
  uint32_t cp;      // code point, or kInvalidCp for a byte that is not valid UTF-8
  uint32_t offset;  // byte offset of its first byte
  CpClass cls;
};

inline constexpr uint32_t kInvalidCp = 0xFFFFFFFFu;

// The class of a code point (kOther for kInvalidCp).
CpClass cp_class(uint32_t cp);

// Length of the valid UTF-8 sequence that starts at s[i], or 0 if there is none there; sets *cp.
int utf8_sequence(std::string_view s, size_t i, uint32_t* cp);

// Decodes s into units (appended to *out after clearing it). Offsets are relative to s.
void utf8_decode(std::string_view s, std::vector<CodeUnit>* out);

// Appends the UTF-8 encoding of a code point.
void utf8_append(uint32_t cp, std::string* out);

// Replaces each maximal invalid subsequence with U+FFFD, as Rust's String::from_utf8_lossy and
// Python's bytes.decode(errors="replace") do (Unicode's "substitution of maximal subparts").
std::string utf8_lossy(std::string_view bytes);

}  // namespace lct
